/* A standalone worker's environment (env.h): it owns its port, its lwIP
 * does ARP, and every port is its own to take. */
#include <string.h>

#include <rte_ethdev.h>
#include <rte_random.h>

#include "lwip/etharp.h"
#include "netif/ethernet.h"

#include "env.h"
#include "worker.h"

/* lwIP's table is searched linearly: try the entry that answered last. */
static bool neigh(struct dpn_worker *w, uint32_t nh, struct rte_ether_addr *mac) {
    ip4_addr_t *ip;
    struct netif *nif;
    struct eth_addr *eth;
    if (etharp_get_entry((size_t)w->arp_hint, &ip, &nif, &eth) && ip4_addr_get_u32(ip) == nh) {
        memcpy(mac, eth, sizeof(*mac));
        /* Our frames skip etharp_output, which asks again for an entry in
         * use before it expires (config/lwip-etharp-used.patch). */
        etharp_dpnet_used(&w->netif, (size_t)w->arp_hint);
        return true;
    }
    ip4_addr_t want;
    ip4_addr_set_u32(&want, nh);
    const ip4_addr_t *ipr;
    ssize_t i = etharp_find_addr(&w->netif, &want, &eth, &ipr);
    if (i < 0)
        return false;
    w->arp_hint = (int)i;
    memcpy(mac, eth, sizeof(*mac));
    etharp_dpnet_used(&w->netif, (size_t)i);
    return true;
}

static int bind_port(struct dpn_worker *w, uint8_t proto, uint16_t port, bool listen) {
    (void)w, (void)proto, (void)port, (void)listen;
    return 0;
}

static void unbind_port(struct dpn_worker *w, uint8_t proto, uint16_t port) {
    (void)w, (void)proto, (void)port;
}

/* lwIP's ephemeral range, from a random start. */
#define EPH_LO 0xc000u
#define EPH_HI 0xffffu
static uint16_t eph_port(struct dpn_worker *w) {
    if (w->tcp_eph_next < EPH_LO)
        w->tcp_eph_next = (uint16_t)(EPH_LO + rte_rand() % (EPH_HI - EPH_LO + 1));
    uint16_t p = w->tcp_eph_next;
    w->tcp_eph_next = p == EPH_HI ? EPH_LO : (uint16_t)(p + 1);
    return p;
}

/* The port is ours alone: nobody else reads its counters. */
static uint64_t rx_nombuf(const struct dpn_worker *w) {
    struct rte_eth_stats es;
    return rte_eth_stats_get(w->port_id, &es) == 0 ? es.rx_nombuf : 0;
}

const struct dpn_env dpn_env_standalone = {
    .name = "standalone",
    .own_arp = true,
    .neigh = neigh,
    .output = etharp_output,
    .input = ethernet_input,
    .bind = bind_port,
    .unbind = unbind_port,
    .eph_port = eph_port,
    .eph_span = EPH_HI - EPH_LO + 1,
    .rx_nombuf = rx_nombuf,
};
