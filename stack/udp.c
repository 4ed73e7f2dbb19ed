/* UDP sockets of the public API on lwIP's raw UDP. */
#include <stdlib.h>

#include "lwip/udp.h"

#include "abi.h"
#include "buf.h"
#include "cksum.h"
#include "trace.h"
#include "worker.h"

#define UDP_HDRS (RTE_ETHER_HDR_LEN + sizeof(struct rte_ipv4_hdr) + sizeof(struct rte_udp_hdr))

/* A source no datagram may come from, so none is answered (RFC 1122
 * 3.2.1.3; what lwIP's ip4_input drops and Linux's martian sources):
 * 0.0.0.0/8, loopback, multicast and class E (with 255.255.255.255), our
 * subnet's broadcast, our own address. src in host order. An echo to one
 * would go to a whole subnet or group, or back to ourselves. */
static inline bool bad_src(const struct dpn_worker *w, uint32_t src) {
    uint8_t top = (uint8_t)(src >> 24);
    if (top == 0 || top == 127 || top >= 224 || src == w->cfg.ip)
        return true;
    uint32_t host = w->cfg.prefix_len >= 31 ? 0 : ~0u >> w->cfg.prefix_len;
    return host != 0 && (src & host) == host && (src & ~host) == (w->cfg.ip & ~host);
}

static void rx_drop(struct pbuf *p, uint64_t *counter) {
    (*counter)++;
    pbuf_free(p);
}

static void lw_udp_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr,
                        u16_t port) {
    struct dpn_udp *u = arg;
    (void)pcb;
    if (u == NULL) {
        pbuf_free(p);
        return;
    }
    /* lwIP dropped broadcast and multicast sources; not our own address. */
    if (unlikely(bad_src(u->w, lwip_ntohl(ip4_addr_get_u32(ip_2_ip4(addr)))))) {
        rx_drop(p, &u->w->st.udp_bad_src);
        return;
    }
    if (u->recv == NULL) { /* a send-only socket */
        rx_drop(p, &u->w->st.udp_unread);
        return;
    }
    DPN_TRACE(u->w, DPN_T_APP_IN);
    u->recv(u->ctx, u, (struct dpn_buf *)p, lwip_ntohl(ip4_addr_get_u32(ip_2_ip4(addr))), port);
    DPN_TRACE(u->w, DPN_T_APP_OUT);
}

void dpn_udp_deliver(struct dpn_udp *u, struct pbuf *p, uint32_t src_be, uint16_t sport_be,
                     uint16_t ip_len) {
    if (unlikely(bad_src(u->w, rte_be_to_cpu_32(src_be)))) {
        rx_drop(p, &u->w->st.udp_bad_src);
        return;
    }
    if (unlikely(u->recv == NULL)) { /* a send-only socket */
        rx_drop(p, &u->w->st.udp_unread);
        return;
    }
    pbuf_realloc(p, (u16_t)(RTE_ETHER_HDR_LEN + ip_len)); /* Ethernet padding off */
    pbuf_remove_header(p, UDP_HDRS);
    DPN_TRACE(u->w, DPN_T_APP_IN);
    u->recv(u->ctx, u, (struct dpn_buf *)p, rte_be_to_cpu_32(src_be), rte_be_to_cpu_16(sport_be));
    DPN_TRACE(u->w, DPN_T_APP_OUT);
}

int dpn_udp_bind(struct dpn_worker *w, uint16_t port, dpn_udp_recv_fn recv, void *ctx,
                 struct dpn_udp **up) {
    if (w == NULL || up == NULL)
        return -DPN_EINVAL;
    struct dpn_udp *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return -DPN_ENOMEM;
    u->pcb = udp_new_ip_type(IPADDR_TYPE_V4);
    if (u->pcb == NULL) {
        free(u);
        return -DPN_ENOMEM;
    }
    err_t e = ERR_USE;
    if (port == 0) /* our environment's ephemeral ports (attached: steered to us) */
        for (unsigned i = 0; i < w->env->eph_span && e == ERR_USE; i++)
            e = udp_bind(u->pcb, IP4_ADDR_ANY, w->env->eph_port(w));
    else
        e = udp_bind(u->pcb, IP4_ADDR_ANY, port);
    int rc = e == ERR_OK ? 0 : e == ERR_USE ? -DPN_EADDRINUSE : -DPN_EINVAL;
    if (rc == 0 && port == 0 && w->env->eph_used != NULL)
        w->env->eph_used(w, DPN_PROTO_UDP, u->pcb->local_port);
    if (rc == 0 && port != 0)
        rc = w->env->bind(w, DPN_PROTO_UDP, port, false);
    if (rc != 0) {
        udp_remove(u->pcb);
        free(u);
        return rc;
    }
    u->w = w;
    u->ctl_port = port;
    u->recv = recv;
    u->ctx = ctx;
    udp_recv(u->pcb, lw_udp_recv, u);
    w->udp_ports[u->pcb->local_port] = u;
    *up = u;
    return 0;
}

static int max_payload(const struct dpn_udp *u) {
    return u->w->netif.mtu - 20 - 8; /* no IP fragmentation (IP_FRAG 0) */
}

static int send_pbuf(struct dpn_udp *u, struct pbuf *p, uint32_t ip, uint16_t port) {
    ip_addr_t dst;
    ip_addr_set_ip4_u32(&dst, lwip_htonl(ip));
    err_t e = udp_sendto(u->pcb, p, &dst, port);
    switch (e) {
    case ERR_OK:
        return 0;
    case ERR_MEM:
    case ERR_BUF:
        return -DPN_ENOMEM;
    case ERR_RTE:
        return -DPN_EHOSTUNREACH;
    default:
        return -DPN_EIO;
    }
}

int dpn_udp_sendto(struct dpn_udp *u, const void *data, size_t len, uint32_t ip, uint16_t port) {
    if (u == NULL || (data == NULL && len > 0) || ip == 0 || port == 0)
        return -DPN_EINVAL;
    if (len > (size_t)max_payload(u))
        return -DPN_EMSGSIZE;
    /* PBUF_TRANSPORT leaves room for the headers: one pbuf, one copy into
     * the frame later. */
    struct pbuf *p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)len, PBUF_RAM);
    if (p == NULL)
        return -DPN_ENOMEM;
    if (len > 0)
        pbuf_take(p, data, (u16_t)len);
    int rc = send_pbuf(u, p, ip, port);
    pbuf_free(p);
    return rc;
}

/* The buffer's own mbuf becomes the frame: the headers are written in front
 * of the payload (where a received datagram's headers were) and the mbuf
 * goes to the TX batch. No lwIP, no allocation, no copy -- what testpmd's
 * 5tswap does, for any buffer we own alone whose destination MAC is known.
 * False (nothing done) when that does not hold: lwIP's path then. */
static bool send_in_place(struct dpn_udp *u, struct pbuf *p, uint32_t ip, uint16_t port) {
    struct dpn_worker *w = u->w;
    struct rte_mbuf *m = dpn_pbuf_mbuf(p);
    /* Direct mbufs only: an indirect or external buffer may be shared, and
     * its ol_flags say how to free it (found by fuzz_rx, whose frames sit
     * in external buffers). */
    if (m == NULL || p->next != NULL || p->ref != 1 || m->next != NULL || !RTE_MBUF_DIRECT(m) ||
        rte_mbuf_refcnt_read(m) != 1 || w->tx_n == DPN_TX_BATCH || unlikely(w->fault != NULL))
        return false;
    uint8_t *payload = p->payload;
    if (payload < (uint8_t *)m->buf_addr + UDP_HDRS)
        return false;
    struct rte_ether_addr dmac;
    uint32_t dst = rte_cpu_to_be_32(ip);
    if (!dpn_l2_dst(w, dst, &dmac))
        return false;
    uint16_t len = p->len;
    struct rte_ether_hdr *eth = (struct rte_ether_hdr *)(payload - UDP_HDRS);
    struct rte_ipv4_hdr *iph = (struct rte_ipv4_hdr *)(eth + 1);
    struct rte_udp_hdr *uh = (struct rte_udp_hdr *)(iph + 1);
    eth->dst_addr = dmac;
    eth->src_addr = w->mac;
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    *iph = (struct rte_ipv4_hdr){
        .version_ihl = RTE_IPV4_VHL_DEF,
        .total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*iph) + sizeof(*uh) + len)),
        .fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG), /* never fragmented */
        .time_to_live = u->pcb->ttl,
        .next_proto_id = IPPROTO_UDP,
        .src_addr = rte_cpu_to_be_32(w->cfg.ip),
        .dst_addr = dst};
    *uh = (struct rte_udp_hdr){.src_port = rte_cpu_to_be_16(u->pcb->local_port),
                               .dst_port = rte_cpu_to_be_16(port),
                               .dgram_len = rte_cpu_to_be_16((uint16_t)(sizeof(*uh) + len))};
    m->data_off = (uint16_t)((uint8_t *)eth - (uint8_t *)m->buf_addr);
    m->data_len = m->pkt_len = (uint32_t)(UDP_HDRS + len);
    m->ol_flags = 0; /* what the NIC said about it as a received frame */
    if (w->caps.tx_ip_cksum) {
        dpn_cksum_tx_prepare(m, true, false, w->caps.tx_udp_cksum);
    } else {
        iph->hdr_checksum = dpn_ipv4_cksum(iph);
    }
    if (!(m->ol_flags & RTE_MBUF_F_TX_UDP_CKSUM) && !w->caps.tx_none) {
        uint32_t sum = dpn_raw_cksum(uh, sizeof(*uh) + len);
        sum += dpn_ipv4_phdr_sum(iph);
        uint16_t c = (uint16_t)~dpn_cksum_fold(sum);
        uh->dgram_cksum = c == 0 ? 0xffff : c;
    }
    /* The pbuf lives in the mbuf's private area: nothing to free but the
     * mbuf, which the driver frees once sent. dpnetd's tag goes now. */
    ((struct dpn_pbuf *)p)->tag = 0;
    DPN_TRACE(w, DPN_T_LINK_OUT);
    w->st.tx_bytes += m->pkt_len;
    w->tx_pkts[w->tx_n++] = m;
    return true;
}

int dpn_udp_sendto_buf(struct dpn_udp *u, struct dpn_buf *b, uint32_t ip, uint16_t port) {
    struct pbuf *p = (struct pbuf *)b;
    if (u == NULL || p == NULL || ip == 0 || port == 0)
        return -DPN_EINVAL;
    if (p->tot_len > max_payload(u))
        return -DPN_EMSGSIZE;
    if (send_in_place(u, p, ip, port))
        return 0;
    int rc = send_pbuf(u, p, ip, port);
    if (rc == 0)
        pbuf_free(p); /* the frame was built (copied) synchronously */
    return rc;
}

void dpn_udp_set_ctx(struct dpn_udp *u, void *ctx) {
    u->ctx = ctx;
}

void *dpn_udp_ctx(const struct dpn_udp *u) {
    return u->ctx;
}

void dpn_udp_close(struct dpn_udp *u) {
    if (u == NULL)
        return;
    if (u->ctl_port != 0)
        u->w->env->unbind(u->w, DPN_PROTO_UDP, u->ctl_port);
    u->w->udp_ports[u->pcb->local_port] = NULL;
    udp_remove(u->pcb);
    free(u);
}
