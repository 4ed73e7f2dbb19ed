/* The lwIP netif of a worker: addresses from the config, MAC and MTU from
 * the port, checksum work split between the NIC and lwIP. */
#include <string.h>

#include "lwip/etharp.h"
#include "lwip/init.h"
#include "lwip/netif.h"
#include "netif/ethernet.h"

#include "neigh.h"
#include "worker.h"

bool dpn_l2_dst(struct dpn_worker *w, uint32_t dst_be, struct rte_ether_addr *mac) {
    uint32_t dst = rte_be_to_cpu_32(dst_be);
    uint32_t host = w->cfg.prefix_len >= 31 ? 0 : ~0u >> w->cfg.prefix_len;
    if (dst >= 0xe0000000u || (host != 0 && (dst & host) == host))
        return false; /* multicast, limited or directed broadcast */
    uint32_t nh = dpn_next_hop(w, dst_be);
    if (w->att != NULL)
        return dpn_attach_neigh(w, nh, mac);
    /* lwIP's table is searched linearly: try the entry that answered last. */
    ip4_addr_t *ip;
    struct netif *nif;
    struct eth_addr *eth;
    if (etharp_get_entry((size_t)w->arp_hint, &ip, &nif, &eth) && ip4_addr_get_u32(ip) == nh) {
        memcpy(mac, eth, sizeof(*mac));
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
    return true;
}

static err_t netif_init_cb(struct netif *nif) {
    struct dpn_worker *w = nif->state;
    nif->name[0] = 'd';
    nif->name[1] = 'p';
    nif->mtu = w->caps.mtu;
    nif->hwaddr_len = ETH_HWADDR_LEN;
    memcpy(nif->hwaddr, w->mac.addr_bytes, ETH_HWADDR_LEN);
    nif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHERNET | NETIF_FLAG_LINK_UP;
    if (w->att == NULL) {
        nif->flags |= NETIF_FLAG_ETHARP;
        nif->output = etharp_output;
    } else {
        /* ARP is dpnetd's: we read its table. NETIF_FLAG_ETHARP is set after
         * netif_set_up (ethernet_input wants it for IPv4), so no gratuitous ARP. */
        nif->output = dpn_attach_output;
    }
    nif->linkoutput = dpn_linkoutput;

    /* Generate in software what the NIC does not; receive checks are done
     * per frame in rx.c (NIC flags or software), except ICMP's. */
    u16_t flags = NETIF_CHECKSUM_CHECK_ICMP | NETIF_CHECKSUM_GEN_ICMP;
    if (!w->caps.tx_ip_cksum)
        flags |= NETIF_CHECKSUM_GEN_IP;
    if (!w->caps.tx_tcp_cksum)
        flags |= NETIF_CHECKSUM_GEN_TCP;
    if (!w->caps.tx_udp_cksum)
        flags |= NETIF_CHECKSUM_GEN_UDP;
    NETIF_SET_CHECKSUM_CTRL(nif, flags);
    return ERR_OK;
}

/* Attached: dpnetd answers ARP for the host; a worker that saw an ARP frame
 * (it should not: steering keeps them on queue 0) must stay silent. */
static err_t attached_input(struct pbuf *p, struct netif *nif) {
    const uint8_t *f = p->payload;
    if (p->len < 14 || f[12] != 0x08 || f[13] != 0x00) {
        pbuf_free(p);
        return ERR_OK;
    }
    return ethernet_input(p, nif);
}

int dpn_netif_setup(struct dpn_worker *w) {
    w->max_frame = (uint32_t)w->caps.mtu + RTE_ETHER_HDR_LEN;
    /* Enough free mbufs to refill the RX ring and send a full batch. */
    w->rx_low_water = (uint32_t)w->cfg.rx_desc + DPN_TX_BATCH + 2 * DPN_BURST;
    if (w->rx_pool == NULL)
        w->rx_pool = w->pool;
    ip4_addr_t ip, mask, gw;
    uint32_t m = w->cfg.prefix_len == 0 ? 0 : ~0u << (32 - w->cfg.prefix_len);
    ip4_addr_set_u32(&ip, lwip_htonl(w->cfg.ip));
    ip4_addr_set_u32(&mask, lwip_htonl(m));
    ip4_addr_set_u32(&gw, lwip_htonl(w->cfg.gateway));
    if (netif_add(&w->netif, &ip, &mask, &gw, w, netif_init_cb,
                  w->att != NULL ? attached_input : ethernet_input) == NULL)
        return -DPN_EINVAL;
    netif_set_default(&w->netif);
    netif_set_up(&w->netif); /* standalone: announces us with a gratuitous ARP */
    w->netif.flags |= NETIF_FLAG_ETHARP;
    return 0;
}

/* dpnetd: publish lwIP's ARP cache in the shared neighbor table; entries
 * lwIP dropped become invalid for the workers too (they ask again). */
void dpn_neigh_publish(struct dpn_neigh *t, struct netif *nif) {
    ip4_addr_t *ip;
    struct netif *n;
    struct eth_addr *eth;
    for (size_t i = 0; i < ARP_TABLE_SIZE; i++)
        if (etharp_get_entry(i, &ip, &n, &eth)) {
            struct rte_ether_addr mac;
            memcpy(mac.addr_bytes, eth->addr, RTE_ETHER_ADDR_LEN);
            dpn_neigh_update(t, ip4_addr_get_u32(ip), &mac, true);
        }
    for (unsigned i = 0; i < DPN_NEIGH_SIZE; i++) {
        struct dpn_neigh *e = &t[i];
        struct eth_addr *mac;
        const ip4_addr_t *found;
        ip4_addr_t a;
        ip4_addr_set_u32(&a, e->ip);
        if (e->ip != 0 && e->valid && etharp_find_addr(nif, &a, &mac, &found) < 0)
            dpn_neigh_update(t, e->ip, NULL, false);
    }
}
