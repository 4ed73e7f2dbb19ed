/* The lwIP netif of a worker: addresses from the config, MAC and MTU from
 * the port, checksum work split between the NIC and lwIP. */
#include <string.h>

#include "lwip/etharp.h"
#include "lwip/init.h"
#include "lwip/netif.h"
#include "netif/ethernet.h"

#include "env.h"
#include "log.h"
#include "worker.h"

uint32_t dpn_next_hop(const struct dpn_worker *w, uint32_t dst_be) {
    uint32_t dst = rte_be_to_cpu_32(dst_be);
    uint32_t mask = w->cfg.prefix_len == 0 ? 0 : ~0u << (32 - w->cfg.prefix_len);
    if ((dst & mask) == (w->cfg.ip & mask) || w->cfg.gateway == 0)
        return dst_be;
    return rte_cpu_to_be_32(w->cfg.gateway);
}

bool dpn_l2_dst(struct dpn_worker *w, uint32_t dst_be, struct rte_ether_addr *mac) {
    uint32_t dst = rte_be_to_cpu_32(dst_be);
    uint32_t host = w->cfg.prefix_len >= 31 ? 0 : ~0u >> w->cfg.prefix_len;
    if (dst >= 0xe0000000u || (host != 0 && (dst & host) == host))
        return false; /* multicast, limited or directed broadcast */
    return w->env->neigh(w, dpn_next_hop(w, dst_be), mac);
}

static err_t netif_init_cb(struct netif *nif) {
    struct dpn_worker *w = nif->state;
    nif->name[0] = 'd';
    nif->name[1] = 'p';
    nif->mtu = w->caps.mtu;
    nif->hwaddr_len = ETH_HWADDR_LEN;
    memcpy(nif->hwaddr, w->mac.addr_bytes, ETH_HWADDR_LEN);
    nif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHERNET | NETIF_FLAG_LINK_UP;
    /* Standalone, ARP is ours; attached, dpnetd's (we read its table), and
     * NETIF_FLAG_ETHARP comes after netif_set_up (ethernet_input wants it
     * for IPv4), so no gratuitous ARP. */
    if (w->env->own_arp)
        nif->flags |= NETIF_FLAG_ETHARP;
    nif->output = w->env->output;
    nif->linkoutput = dpn_linkoutput;

    /* Generate in software what the NIC does not; receive checks are done
     * per frame in rx.c (NIC flags or software), except ICMP's. */
    u16_t flags = NETIF_CHECKSUM_CHECK_ICMP | NETIF_CHECKSUM_GEN_ICMP;
    if (!w->caps.tx_ip_cksum)
        flags |= NETIF_CHECKSUM_GEN_IP;
    if (!w->caps.tx_tcp_cksum && !w->caps.tx_none)
        flags |= NETIF_CHECKSUM_GEN_TCP;
    if (!w->caps.tx_udp_cksum && !w->caps.tx_none)
        flags |= NETIF_CHECKSUM_GEN_UDP; /* else 0: IPv4's "no checksum" */
    NETIF_SET_CHECKSUM_CTRL(nif, flags);
    return ERR_OK;
}

int dpn_netif_setup(struct dpn_worker *w) {
    w->max_frame = (uint32_t)w->caps.mtu + RTE_ETHER_HDR_LEN;
    /* Enough free mbufs to refill the RX ring and send a full batch. */
    w->rx_low_water = (uint32_t)w->cfg.rx_desc + DPN_TX_BATCH + 2 * DPN_BURST;
    if (w->rx_pool == NULL)
        w->rx_pool = w->pool;
    /* TCP data in mbufs pays where the NIC reads each frame by DMA: no CPU
     * copy after the application's. A software port copies every frame
     * anyway (memif into its ring, net_tap into the kernel): over memif
     * bulk was 3% slower from mbufs than copied (docs/api.md section 5). */
    w->send_zc = w->cfg.send_zc == 2 || (w->cfg.send_zc == 1 && dpn_port_on_pci(w->port_id));
    dpn_send_mbufs_refill(w, rte_mempool_avail_count(w->pool));
    w->tcp_fast = w->cfg.tcp_fast_path != 0;
    DPN_LOG(INFO, stack, "port %u: TCP data sent from mbufs (tcp.send_zc %u): %s", w->port_id,
            w->cfg.send_zc, w->send_zc ? "yes" : "no");
    ip4_addr_t ip, mask, gw;
    uint32_t m = w->cfg.prefix_len == 0 ? 0 : ~0u << (32 - w->cfg.prefix_len);
    ip4_addr_set_u32(&ip, lwip_htonl(w->cfg.ip));
    ip4_addr_set_u32(&mask, lwip_htonl(m));
    ip4_addr_set_u32(&gw, lwip_htonl(w->cfg.gateway));
    if (netif_add(&w->netif, &ip, &mask, &gw, w, netif_init_cb, w->env->input) == NULL)
        return -DPN_EINVAL;
    netif_set_default(&w->netif);
    netif_set_up(&w->netif); /* standalone: announces us with a gratuitous ARP */
    w->netif.flags |= NETIF_FLAG_ETHARP;
    return 0;
}
