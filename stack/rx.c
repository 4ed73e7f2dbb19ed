/* RX path of a worker: burst from the queue, checksum decision, zero-copy
 * wrap as pbufs, into lwIP. No allocation, lock or syscall here. */
#include <rte_ethdev.h>
#include <rte_memcpy.h>
#include <rte_prefetch.h>
#include <rte_tcp.h>

#include "lwip/netif.h"
#include "lwip/priv/tcp_priv.h"

#include "arp_guard.h"
#include "buf.h"
#include "cksum.h"
#include "tcp_fast.h"
#include "tcp_pcbs.h"
#include "tcp_tw.h"
#include "worker.h"

/* The TCP header of an IPv4 frame (NULL if it is not one or too short),
 * and the segment's sequence length (payload + SYN + FIN). */
static inline const uint8_t *tcp_peek(const struct rte_mbuf *m, uint32_t *tcplen) {
    const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
    uint32_t len = rte_pktmbuf_data_len(m);
    if (len < RTE_ETHER_HDR_LEN + 20 + 20 || p[12] != 0x08 || p[13] != 0x00 ||
        p[RTE_ETHER_HDR_LEN + 9] != IPPROTO_TCP)
        return NULL;
    uint32_t ihl = (p[RTE_ETHER_HDR_LEN] & 0xf) * 4u;
    const uint8_t *th = p + RTE_ETHER_HDR_LEN + ihl;
    if (ihl < 20 || len < RTE_ETHER_HDR_LEN + ihl + 20)
        return NULL;
    uint32_t iplen = (uint32_t)(p[RTE_ETHER_HDR_LEN + 2] << 8 | p[RTE_ETHER_HDR_LEN + 3]);
    uint32_t thl = (th[12] >> 4) * 4u;
    *tcplen = iplen >= ihl + thl ? iplen - ihl - thl : 0;
    *tcplen += !!(th[13] & RTE_TCP_SYN_FLAG) + !!(th[13] & RTE_TCP_FIN_FLAG);
    return th;
}

/* A frame whose first segment is too short for the IPv4 or ARP header its
 * type announces. lwIP 2.1.3 reads these headers before checking that they
 * are there (ip4_input: the length fields; etharp_input: all of it), that
 * is past the frame's end into what the mbuf held before, then drops the
 * frame or acts on stale bytes. */
static inline bool short_l3(const struct rte_mbuf *m) {
    const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
    uint32_t len = rte_pktmbuf_data_len(m);
    if (len < RTE_ETHER_HDR_LEN || p[12] != 0x08) /* ethernet_input drops the short ones */
        return false;
    if (p[13] == 0x00)
        return len < RTE_ETHER_HDR_LEN + 20;
    if (p[13] == 0x06)
        return len < RTE_ETHER_HDR_LEN + 28;
    return false;
}

/* The pool is nearly empty: received data held by the application or by
 * lwIP (zero-copy) would starve the RX ring, and then the ACKs that free it
 * could not arrive -- a deadlock. Copy the frame into lwIP's heap instead
 * and give the mbuf back at once. */
static struct pbuf *copy_out(struct dpn_worker *w, struct rte_mbuf *m) {
    struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)rte_pktmbuf_pkt_len(m), PBUF_RAM);
    if (p != NULL) {
        /* rte_pktmbuf_read copies only what spans segments; else it
         * returns a pointer into the mbuf, which is about to go. */
        const void *d = rte_pktmbuf_read(m, 0, rte_pktmbuf_pkt_len(m), p->payload);
        if (d != p->payload)
            rte_memcpy(p->payload, d, rte_pktmbuf_pkt_len(m));
        w->st.rx_copied++;
    }
    dpn_mbuf_drop(m);
    return p;
}

/* A unicast UDP datagram to a port one of our sockets holds goes to it
 * directly: lwIP's ethernet, IPv4 and UDP input would only find the same
 * socket (we bind no address and never connect). Anything unusual (no
 * socket, short or inconsistent lengths) stays on lwIP's path. True when
 * delivered. */
static inline bool udp_fast(struct dpn_worker *w, struct rte_mbuf *m, const struct rte_ipv4_hdr *ip,
                            uint16_t ip_len) {
    const struct rte_udp_hdr *uh = (const struct rte_udp_hdr *)(ip + 1);
    struct dpn_udp *u = w->udp_ports[rte_be_to_cpu_16(uh->dst_port)];
    if (u == NULL || ip_len < 28 || RTE_ETHER_HDR_LEN + (uint32_t)ip_len > rte_pktmbuf_pkt_len(m) ||
        rte_be_to_cpu_16(uh->dgram_len) != ip_len - 20)
        return false;
    struct pbuf *pb = dpn_pbuf_wrap(m);
    if (unlikely(pb == NULL)) {
        w->st.rx_dropped++;
        return true;
    }
    dpn_udp_deliver(u, pb, ip->src_addr, uh->src_port, ip_len);
    return true;
}

/* The common UDP datagram and TCP segment (tcp_fast.h) go around lwIP's
 * ethernet and IPv4 input: plain IPv4 (no options, no fragment) to our
 * address, checksums already verified. True when taken. */
static inline bool l4_fast(struct dpn_worker *w, struct rte_mbuf *m) {
    const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
    const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(p + RTE_ETHER_HDR_LEN);
    if (rte_pktmbuf_data_len(m) < RTE_ETHER_HDR_LEN + 28 || p[12] != 0x08 || p[13] != 0x00 ||
        ip->version_ihl != RTE_IPV4_VHL_DEF ||
        (ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_OFFSET_MASK | RTE_IPV4_HDR_MF_FLAG)) ||
        ip->dst_addr != rte_cpu_to_be_32(w->cfg.ip))
        return false;
    uint16_t ip_len = rte_be_to_cpu_16(ip->total_length);
    if (ip->next_proto_id == IPPROTO_UDP)
        return udp_fast(w, m, ip, ip_len);
    if (ip->next_proto_id == IPPROTO_TCP && w->tcp_fast && m->nb_segs == 1)
        return dpn_tcp_fast(w, m, ip, ip_len);
    return false;
}

/* A multi-segment frame lwIP can take as a chain: no empty segment (its
 * pbuf_copy of a chain ending in one fails an assertion when an echo is
 * queued for ARP) and its headers in the first segment (ICMP errors copy
 * the IP header and 8 bytes, up to 60 + 8, from the first pbuf alone).
 * Anything else is copied into one pbuf (docs/lwip-asserts.md). */
static bool chain_plain(const struct rte_mbuf *m) {
    uint32_t need = RTE_MIN(rte_pktmbuf_pkt_len(m), (uint32_t)(RTE_ETHER_HDR_LEN + 60 + 60));
    if (rte_pktmbuf_data_len(m) < need)
        return false;
    for (const struct rte_mbuf *s = m; s != NULL; s = s->next)
        if (rte_pktmbuf_data_len(s) == 0)
            return false;
    return true;
}

/* A TCP segment whose checksum field is 0: likely sent by a peer with
 * port.csum none (a true sum of 0 is written as 0xffff only by UDP). */
static bool csum_zero(const struct rte_mbuf *m) {
    const size_t hl = sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr);
    if (rte_pktmbuf_data_len(m) < hl + sizeof(struct rte_tcp_hdr))
        return false;
    const struct rte_ipv4_hdr *ip =
        rte_pktmbuf_mtod_offset(m, const struct rte_ipv4_hdr *, sizeof(struct rte_ether_hdr));
    const struct rte_tcp_hdr *t = rte_pktmbuf_mtod_offset(m, const struct rte_tcp_hdr *, hl);
    return ip->version_ihl == 0x45 && ip->next_proto_id == IPPROTO_TCP && t->cksum == 0;
}

static inline void rx_one(struct dpn_worker *w, struct rte_mbuf *m, bool low) {
    w->st.rx_bytes += rte_pktmbuf_pkt_len(m);
    if (unlikely(w->bye_on) && unlikely(dpn_bye_input(w, m))) /* a memif peer leaving */
        return;
    /* Larger than the MTU allows: never ours (and never echoed back larger). */
    if (unlikely(!dpn_cksum_rx_check(m, w->caps.rx_trust) ||
                 rte_pktmbuf_pkt_len(m) > w->max_frame || short_l3(m))) {
        w->csum0_drops += csum_zero(m); /* dpn_close gives the hint */
        w->st.rx_dropped++;
        dpn_mbuf_drop(m);
        return;
    }
    if (unlikely(!dpn_arp_guard(w, m))) /* a locked neighbor's MAC stays (arp_guard.h) */
        return;
    /* A chain lwIP could not take as it is goes the slow way (copied). */
    if (likely(!low) && likely(m->nb_segs == 1 || chain_plain(m)) && l4_fast(w, m))
        return;
    uint32_t tcplen;
    const uint8_t *th = tcp_peek(m, &tcplen);
    /* TIME_WAIT lives outside lwIP (tcp_tw.h): its segments stop here. */
    if (th != NULL && dpn_tw_input(w, m, th, tcplen))
        return;
    /* SYN cookies when a backlog is full (tcp_cookie.c), also before lwIP. */
    if (th != NULL && dpn_syncookie_input(w, m, th))
        return;
    bool copy = low || unlikely(m->nb_segs > 1 && !chain_plain(m));
    struct pbuf *p = likely(!copy) ? dpn_pbuf_wrap(m) : copy_out(w, m);
    if (unlikely(p == NULL)) {
        w->st.rx_dropped++;
        return;
    }
    /* ethernet_input consumes p in every case (frees it on error). */
    w->netif.input(p, &w->netif);
    dpn_pcbs_after_input(); /* out-of-order data held now (tcp_pcbs.h) */
}

/* What input will touch first for each segment, loaded for the whole burst
 * before the first segment is handled (tcp_pcbs.c finds the pcbs): the
 * connection (the pcb's callback argument), then what an ACK frees (the
 * oldest unacknowledged segment, the oldest zero-copy buffer), the last
 * segment still waiting to be sent (an answer joins it) and the
 * application's context. With thousands of connections each of these is
 * a cache miss, and handled one by one they come one after another. */
/* The last segment waiting to be sent, as tcp_write finds it. */
static inline const struct tcp_seg *unsent_last(const struct tcp_pcb *pcb) {
    return pcb->unsent_tail != NULL ? pcb->unsent_tail : pcb->unsent;
}

static void prefetch_burst(struct rte_mbuf **pkts, uint16_t n) {
    struct tcp_pcb *pcbs[DPN_BURST * 2];
    n = RTE_MIN(n, (uint16_t)RTE_DIM(pcbs)); /* the rest are handled unprefetched */
    dpn_pcbs_prefetch(pkts, n, pcbs);
    for (uint16_t i = 0; i < n; i++)
        if (pcbs[i] != NULL && pcbs[i]->callback_arg != NULL)
            rte_prefetch0(pcbs[i]->callback_arg);
    for (uint16_t i = 0; i < n; i++) {
        if (pcbs[i] == NULL)
            continue;
        if (pcbs[i]->unacked != NULL)
            rte_prefetch0(pcbs[i]->unacked);
        /* Output waiting for room in the ring: a write joins its last
         * segment. */
        if (unsent_last(pcbs[i]) != NULL)
            rte_prefetch0(unsent_last(pcbs[i]));
        /* Accepted and connected pcbs carry their dpn_conn (tcp.c); a
         * half-open one its listener's, which may be gone. */
        const struct dpn_conn *c = pcbs[i]->callback_arg;
        if (c == NULL || pcbs[i]->state == LISTEN || pcbs[i]->state == SYN_RCVD ||
            c->pcb != pcbs[i]) {
            pcbs[i] = NULL;
            continue;
        }
        if (c->zc_head != NULL) { /* the mbuf whose private area holds it (buf.h) */
            /* Both lines: freeing it reads next and pool from the second. */
            const char *m = (const char *)c->zc_head - sizeof(struct rte_mbuf);
            rte_prefetch0(m);
            rte_prefetch0(m + RTE_CACHE_LINE_SIZE);
        }
        if (c->ctx != NULL) { /* two lines: contexts seldom fit in one */
            rte_prefetch0(c->ctx);
            rte_prefetch0((const char *)c->ctx + RTE_CACHE_LINE_SIZE);
        }
    }
    for (uint16_t i = 0; i < n; i++) { /* the data of the oldest unacked segment */
        if (pcbs[i] == NULL)
            continue;
        const struct dpn_conn *c = pcbs[i]->callback_arg;
        if (pcbs[i]->unacked != NULL) { /* its sequence number is in its header */
            rte_prefetch0(pcbs[i]->unacked->p);
            rte_prefetch0(pcbs[i]->unacked->tcphdr);
        }
        if (unsent_last(pcbs[i]) != NULL)
            rte_prefetch0(unsent_last(pcbs[i])->p);
        if (c->zc_head != NULL)
            rte_prefetch0(c->zc_head);
    }
}

void dpn_rx_burst(struct dpn_worker *w, struct rte_mbuf **pkts, uint16_t n) {
    w->st.rx_pkts += n;
    bool low = w->rx_low; /* updated once a millisecond (loop.c) */
    if (n > 1)
        prefetch_burst(pkts, n);
    for (uint16_t i = 0; i < n; i++) {
        if (i + 1 < n)
            rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
        rx_one(w, pkts[i], low);
    }
    if (unlikely(tcp_tw_pcbs != NULL))
        dpn_tw_absorb(w); /* only input puts pcbs in TIME_WAIT */
}
