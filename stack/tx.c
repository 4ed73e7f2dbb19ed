/* TX path of a worker: lwIP's link output turns each frame into an mbuf
 * chain, marks checksum offloads, and queues it; dpn_tx_flush sends the
 * batch with one tx_burst per poll iteration. Headers and small or
 * copied-on-send data are copied into the first mbuf; TCP payload that
 * lwIP references in an mbuf (dpn_send_buf) goes out in place, as an
 * indirect mbuf on that buffer, so neither the first send nor a
 * retransmission copies it. */
#include <string.h>

#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_memcpy.h>
#include <rte_prefetch.h>
#include <rte_tcp.h>

#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

#include "buf.h"
#include "cksum.h"
#include "capture.h"
#include "fault.h"
#include "tcp_fast.h"
#include "tcp_pcbs.h"
#include "trace.h"
#include "worker.h"

void dpn_tx_flush(struct dpn_worker *w) {
    /* The memif peer is leaving (memif_bye.c): keep them; dpnetd left with
     * the port: dpn_close drops them. */
    if (unlikely(w->bye_parked || w->port_gone))
        return;
    if (unlikely(w->fault != NULL))
        dpn_fault_tx(w);
    uint16_t n = w->tx_n, sent = 0, held = w->tx_held;
    if (unlikely(w->cap != NULL) && n > held) /* what came since the last flush */
        dpn_cap_frames(w->cap, w->tx_pkts + held, (uint16_t)(n - held), w->queue_id, DPN_CAP_OUT);
    DPN_TRACE(w, DPN_T_TX_CALL);
    /* Again only while the ring takes some: a full one stays full for
     * longer than a retry, which only pulls its indexes from the peer's
     * cache (memif: both cores then slow down). */
    for (int tries = 0; sent < n && tries < 4; tries++) {
        uint16_t k = rte_eth_tx_burst(w->port_id, w->queue_id, w->tx_pkts + sent, n - sent);
        sent += k;
        if (k == 0)
            break;
    }
    w->st.tx_pkts += sent;
    /* A full ring (the peer is slower): keep the rest for the next
     * iteration instead of dropping it, which would cost TCP a timeout.
     * When the batch itself is full, linkoutput says ERR_MEM and lwIP keeps
     * its segments queued: backpressure, not loss. */
    w->tx_n = (uint16_t)(n - sent);
    w->tx_held = w->tx_n;
    if (unlikely(sent < n)) {
        memmove(w->tx_pkts, w->tx_pkts + sent, (size_t)(n - sent) * sizeof(w->tx_pkts[0]));
        /* Once per spell of a full ring, not per retry: a port whose link
         * is not up yet (a memif waiting for its peer) refuses the first
         * frame on every iteration, 36 M times a second here. */
        if (held == 0)
            w->st.tx_full++;
    }
    if (sent > 0)
        DPN_TRACE(w, DPN_T_TX_DONE);
}

/* Frames still waiting at shutdown (a peer that stopped reading). */
void dpn_tx_drop_all(struct dpn_worker *w) {
    if (w->tx_n > 0) {
        w->st.tx_dropped += w->tx_n;
        rte_pktmbuf_free_bulk(w->tx_pkts, w->tx_n);
    }
    w->tx_n = w->tx_held = 0;
}

/* A TCP frame refused for a full ring: lwIP keeps its segment (unsent,
 * or an ACK owed), but nothing would make it try again before the next
 * segment of that connection or its retransmission timeout, and with
 * the peer waiting for this very data neither comes soon: a stall of an
 * RTO and a collapsed window. Its connection goes on a list, found again
 * by its 4-tuple (the pcb may be gone by then), and tcp_output runs for
 * it once the ring has room. */
static bool list_blocked(struct dpn_worker *w, struct tcp_pcb *pcb, uint32_t rip, uint16_t rport,
                         uint16_t lport) {
    struct dpn_pcb_ext *x = pcb != NULL ? dpn_pcbs_ext(pcb) : NULL;
    if (x == NULL)
        return false; /* no connection (an RST for one gone) */
    if (x->tx_blocked)
        return true;
    if (w->blocked_n == DPN_TX_BLOCKED)
        return false; /* full of closed ones' entries: its timer recovers it */
    x->tx_blocked = true;
    w->blocked[(w->blocked_head + w->blocked_n++) % DPN_TX_BLOCKED] =
        (struct dpn_tx_blocked){pcb, rip, rport, lport};
    return true;
}

/* The connection frame p belongs to, listed (true) or not one we list. */
static bool note_blocked(struct dpn_worker *w, const struct pbuf *p) {
    const uint8_t *f = p->payload;
    if (p->len < 14 + 20 + 20 || f[12] != 0x08 || f[13] != 0x00 || f[14 + 9] != IP_PROTO_TCP)
        return false;
    const uint8_t *th = f + 14 + (f[14] & 0xf) * 4u;
    if (th + 4 > f + p->len)
        return false;
    uint32_t rip;
    memcpy(&rip, f + 14 + 16, 4);
    uint16_t lport = (uint16_t)(th[0] << 8 | th[1]), rport = (uint16_t)(th[2] << 8 | th[3]);
    return list_blocked(w, dpn_pcbs_find(rip, rport, lport), rip, rport, lport);
}

/* lwIP's tcp_output asks first (config/lwip-tcp-output-hold.patch): while
 * connections wait in line for room in the TX ring, another's output joins
 * the back of the line before lwIP builds a segment only to see it refused
 * (at 8192 connections x 8: 5.7 M such tcp_output runs in 5 s, each with
 * its headers, route and checksum). */
int dpn_tcp_output_hold(struct tcp_pcb *pcb) {
    /* Our netif is the default one (netif.c), and lwIP's one per process.
     * Not the pcb's callback argument: a half-open pcb's is its listener,
     * which may be gone. */
    struct dpn_worker *w = netif_default != NULL ? netif_default->state : NULL;
    if (w == NULL)
        return 0;
    /* Its turn in the line (retrying) is as good as an empty line. */
    if (likely(w->blocked_n == 0) || w->tx_retrying)
        return dpn_tcp_fast_output(w, pcb);
    return list_blocked(w, pcb, ip4_addr_get_u32(ip_2_ip4(&pcb->remote_ip)), pcb->remote_port,
                        pcb->local_port);
}

/* What the connection k places behind the head of the line will touch,
 * loaded in steps as its turn comes closer: its pcb; its entry in the
 * index and its first unsent segment; that segment's pbuf; the data.
 * A connection waited behind thousands of others, so all of it has left
 * the cache, and taken one by one these misses come one after another.
 * Only prefetches and reads of lwIP's static pools: a pcb, segment or
 * pbuf freed meanwhile is harmless here. */
#define RETRY_AHEAD 12
static inline const struct tcp_pcb *ahead(const struct dpn_worker *w, uint32_t k) {
    return w->blocked[(w->blocked_head + k) % DPN_TX_BLOCKED].pcb;
}
static inline void retry_prefetch(const struct dpn_worker *w) {
    if (RETRY_AHEAD < w->blocked_n) {
        const char *pc = (const char *)ahead(w, RETRY_AHEAD);
        for (size_t off = 0; off < sizeof(struct tcp_pcb); off += RTE_CACHE_LINE_SIZE)
            rte_prefetch0(pc + off);
    }
    if (RETRY_AHEAD * 2 / 3 < w->blocked_n) {
        const struct tcp_pcb *pcb = ahead(w, RETRY_AHEAD * 2 / 3);
        dpn_pcbs_ext_prefetch(pcb);
        rte_prefetch0(pcb->unsent);
    }
    if (RETRY_AHEAD / 3 < w->blocked_n) {
        const struct tcp_seg *seg = ahead(w, RETRY_AHEAD / 3)->unsent;
        if (seg != NULL)
            rte_prefetch0(seg->p);
    }
    if (RETRY_AHEAD / 6 < w->blocked_n) {
        const struct tcp_seg *seg = ahead(w, RETRY_AHEAD / 6)->unsent;
        const struct pbuf *p = seg != NULL ? seg->p : NULL;
        if (p != NULL) /* header and data: one piece when tcp_write copied */
            for (uint32_t off = 0; off < p->len && off < 24 * RTE_CACHE_LINE_SIZE;
                 off += RTE_CACHE_LINE_SIZE)
                rte_prefetch0((const char *)p->payload + off);
    }
}

/* Oldest first, while the batch has room; a connection refused again goes
 * to the back. A FIFO ring: every connection waits its turn, and with
 * thousands listed nothing is copied around per retry. */
void dpn_tx_retry_blocked(struct dpn_worker *w) {
    for (uint32_t k = 0; k < RETRY_AHEAD && k < w->blocked_n; k++)
        rte_prefetch0(ahead(w, k));
    for (uint32_t n = w->blocked_n; n > 0 && w->tx_n < DPN_TX_BATCH; n--) {
        retry_prefetch(w);
        struct dpn_tx_blocked b = w->blocked[w->blocked_head];
        w->blocked_head = (w->blocked_head + 1) % DPN_TX_BLOCKED;
        w->blocked_n--;
        struct dpn_pcb_ext *x = dpn_pcbs_ext_of(b.pcb, b.rip, b.rport, b.lport);
        if (x == NULL || !x->tx_blocked)
            continue; /* gone (or reused) meanwhile */
        struct tcp_pcb *pcb = b.pcb;
        x->tx_blocked = false;
        w->tx_retrying = true;
        tcp_output(pcb); /* refused again: listed again, at the back */
        w->tx_retrying = false;
    }
}

/* Segments per frame: within every PMD's limit (ixgbe takes 40). */
#define TX_SEGS 8

/* The mbuf holding q's bytes when q may go out in place, else NULL. The
 * tag comes from tcp_write (tcp.c); the range check makes a stale one
 * harmless. Every piece boundary stays at an even offset of the frame:
 * net_tap sums each piece on its own for its checksum offload. */
static inline struct rte_mbuf *zc_source(const struct pbuf *q, uint32_t off, uint16_t segs) {
    if (!(q->flags & DPN_PBUF_FLAG_ZC) || q->len < DPN_ZC_MIN || segs >= TX_SEGS || (off & 1) ||
        (q->next != NULL && (q->len & 1)))
        return NULL;
    struct rte_mbuf *s = q->dpn_src;
    const char *b = s->buf_addr, *d = q->payload;
    if (!RTE_MBUF_DIRECT(s) || s->priv_size != DPN_MBUF_PRIV_SIZE || d < b ||
        d + q->len > b + s->buf_len)
        return NULL;
    return s;
}

/* An indirect mbuf on s's bytes [d, d + len): s stays allocated until the
 * PMD has sent it, whatever lwIP or the application free meanwhile. */
static inline struct rte_mbuf *zc_piece(struct rte_mempool *pool, struct rte_mbuf *s, const void *d,
                                        uint16_t len) {
    struct rte_mbuf *mi = rte_pktmbuf_alloc(pool);
    if (unlikely(mi == NULL))
        return NULL;
    rte_pktmbuf_attach(mi, s);
    mi->ol_flags = RTE_MBUF_F_INDIRECT; /* not s's receive flags */
    mi->data_off = (uint16_t)((const char *)d - (const char *)s->buf_addr);
    mi->data_len = len;
    mi->pkt_len = len;
    return mi;
}

/* tcp.send_zc: a segment whose data is one whole buffer of ours (a piece
 * of dpn_send, a dpn_send_buf buffer, an echoed frame) goes out in that
 * buffer. lwIP's headers are written in front of the data (where the
 * received frame had its own, or in the headroom) and the mbuf goes to the
 * PMD with one more reference, lwIP keeping its own for retransmission: no
 * mbuf to allocate, no byte copied but the headers, one descriptor. Only
 * while nobody else holds the mbuf: a frame of it still in the batch, the
 * ring or a fault delay line keeps its headers, and a retransmission then
 * takes the path below. */
static inline struct rte_mbuf *in_place(const struct pbuf *p) {
    const struct pbuf *q = p->next;
    struct rte_mbuf *s = dpn_zc_whole(q, p->len);
    if (s == NULL)
        return NULL;
    char *h = (char *)q->payload - p->len;
    rte_memcpy(h, p->payload, p->len);
    dpn_zc_frame(s, h, (uint32_t)p->len + q->len);
    return s;
}

/* TSO: a TCP segment that continues the last frame of the batch (the same
 * connection, the next sequence number, the same ACK, window and options,
 * no flag but ACK and PSH) joins it, and the PMD cuts the frame again at
 * the first segment's size. Segments join only while every one before is
 * of that size, so the frames on the wire are lwIP's own, bit for bit but
 * the IP ID; a shorter one closes the frame. */
#define TSO_MAX_SEGS 32 /* net_tap's GSO takes 64 pieces; ixgbe 40 descriptors */

struct tso_hdrs {
    struct rte_ipv4_hdr *ip;
    struct rte_tcp_hdr *tcp;
    uint16_t hlen, plen; /* headers from the Ethernet header on; TCP payload */
};

static inline bool tso_parse(struct rte_mbuf *m, struct tso_hdrs *h) {
    struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
    if (m->data_len < sizeof(*eth) + 40 || eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))
        return false;
    h->ip = (struct rte_ipv4_hdr *)(eth + 1);
    if (h->ip->version_ihl != 0x45 || h->ip->next_proto_id != IPPROTO_TCP ||
        (h->ip->fragment_offset &
         rte_cpu_to_be_16(RTE_IPV4_HDR_OFFSET_MASK | RTE_IPV4_HDR_MF_FLAG)))
        return false;
    h->tcp = (struct rte_tcp_hdr *)(h->ip + 1);
    h->hlen = (uint16_t)(sizeof(*eth) + 20 + (h->tcp->data_off >> 4) * 4);
    if (h->hlen > m->data_len || m->pkt_len <= h->hlen ||
        (h->tcp->tcp_flags & ~RTE_TCP_PSH_FLAG) != RTE_TCP_ACK_FLAG)
        return false;
    h->plen = (uint16_t)(m->pkt_len - h->hlen);
    return true;
}

static bool tso_join(struct dpn_worker *w, struct rte_mbuf *m) {
    struct rte_mbuf *f = w->tx_pkts[w->tx_n - 1];
    struct tso_hdrs a, b;
    if (!tso_parse(f, &a) || !tso_parse(m, &b) || a.hlen != b.hlen)
        return false;
    uint16_t seg = (f->ol_flags & RTE_MBUF_F_TX_TCP_SEG) ? f->tso_segsz : a.plen;
    uint32_t fp = f->pkt_len - a.hlen; /* f's payload: a.plen is cut to 16 bits */
    if (fp % seg != 0 || b.plen > seg || fp / seg >= TSO_MAX_SEGS ||
        f->pkt_len + b.plen > 65535u + sizeof(struct rte_ether_hdr) ||
        f->nb_segs + m->nb_segs > w->caps.tx_tso_segs ||
        rte_be_to_cpu_32(b.tcp->sent_seq) != rte_be_to_cpu_32(a.tcp->sent_seq) + fp ||
        a.ip->src_addr != b.ip->src_addr || a.ip->dst_addr != b.ip->dst_addr ||
        a.tcp->src_port != b.tcp->src_port || a.tcp->dst_port != b.tcp->dst_port ||
        a.tcp->recv_ack != b.tcp->recv_ack || a.tcp->rx_win != b.tcp->rx_win ||
        a.ip->type_of_service != b.ip->type_of_service ||
        a.ip->time_to_live != b.ip->time_to_live ||
        memcmp(a.tcp + 1, b.tcp + 1, a.hlen - sizeof(struct rte_ether_hdr) - 40) != 0)
        return false;
    bool first = !(f->ol_flags & RTE_MBUF_F_TX_TCP_SEG);
    if (w->caps.tx_tso_l2 && seg + a.hlen > w->caps.mtu)
        return false; /* net_tap would refuse it (tcp.c: tso_clamp_mss) */
    /* m's payload: after its headers in its first mbuf (copied bytes), or
     * from its second mbuf on when the first holds only the headers. */
    uint8_t flags = b.tcp->tcp_flags; /* b points into m, which may be freed below */
    struct rte_mbuf *pay = m;
    if (m->data_len == b.hlen) {
        pay = m->next;
        pay->nb_segs = (uint16_t)(m->nb_segs - 1);
        pay->pkt_len = b.plen;
        m->next = NULL;
        m->nb_segs = 1;
        rte_pktmbuf_free(m);
    } else {
        rte_pktmbuf_adj(m, b.hlen);
    }
    rte_pktmbuf_lastseg(f)->next = pay;
    f->nb_segs = (uint16_t)(f->nb_segs + pay->nb_segs);
    f->pkt_len += pay->pkt_len;
    a.tcp->tcp_flags |= flags; /* PSH moves to the last segment */
    a.ip->total_length = rte_cpu_to_be_16((uint16_t)(f->pkt_len - sizeof(struct rte_ether_hdr)));
    if (first) {
        f->ol_flags |= RTE_MBUF_F_TX_TCP_SEG;
        f->tso_segsz = seg;
        f->l4_len = (uint64_t)(a.tcp->data_off >> 4) * 4;
        w->st.tx_tso_frames++;
        w->st.tx_tso_segs++;
    }
    w->st.tx_tso_segs++;
    /* With TSO the pseudo-header sum leaves the length out (each segment's
     * differs): the PMD adds it. */
    a.tcp->cksum = rte_ipv4_phdr_cksum(a.ip, f->ol_flags);
    return true;
}

/* The frame p in a new mbuf: headers copied, data copied or referenced. */
static err_t build(struct dpn_worker *w, const struct pbuf *p, struct rte_mbuf **out) {
    struct rte_mbuf *m = rte_pktmbuf_alloc(w->pool);
    if (unlikely(m == NULL)) {
        w->st.tx_dropped++;
        return ERR_MEM;
    }
    /* cur takes copied bytes; tail is the chain's last segment. The first
     * pbuf (the headers) is always copied: offloads read them from m. */
    struct rte_mbuf *cur = m, *tail = m;
    uint32_t off = 0;
    for (const struct pbuf *q = p; q != NULL; off += q->len, q = q->next) {
        struct rte_mbuf *s = q != p && w->caps.tx_multi_seg ? zc_source(q, off, m->nb_segs) : NULL;
        struct rte_mbuf *mi = s != NULL ? zc_piece(w->pool, s, q->payload, q->len) : NULL;
        if (mi != NULL) {
            tail->next = mi;
            tail = mi;
            cur = NULL;
            m->nb_segs++;
            w->st.tx_zc_segs++;
            w->st.tx_zc_bytes += q->len;
        } else {
            if (cur == NULL || rte_pktmbuf_tailroom(cur) < q->len) {
                struct rte_mbuf *n = rte_pktmbuf_alloc(w->pool);
                if (unlikely(n == NULL || rte_pktmbuf_tailroom(n) < q->len)) {
                    rte_pktmbuf_free(n);
                    rte_pktmbuf_free(m);
                    w->st.tx_dropped++;
                    return n == NULL ? ERR_MEM : ERR_BUF;
                }
                tail->next = n;
                tail = cur = n;
                m->nb_segs++;
            }
            rte_memcpy(rte_pktmbuf_mtod_offset(cur, char *, cur->data_len), q->payload, q->len);
            cur->data_len = (uint16_t)(cur->data_len + q->len);
        }
    }
    m->pkt_len = p->tot_len;
    *out = m;
    return ERR_OK;
}

err_t dpn_linkoutput(struct netif *netif, struct pbuf *p) {
    struct dpn_worker *w = netif->state;
    DPN_TRACE(w, DPN_T_LINK_OUT);
    if (unlikely(w->tx_n == DPN_TX_BATCH)) {
        dpn_tx_flush(w);
        if (w->tx_n == DPN_TX_BATCH) { /* the ring is full and so is our batch */
            w->st.tx_blocked++;
            note_blocked(w, p);
            return ERR_MEM;
        }
    }
    /* While connections wait in line, the others' TCP output joins the
     * back of it: first come, first served. Before, the connections the
     * peer answered fastest filled each batch again at once and the listed
     * ones waited, past their peers' RTO (8192 connections x 8 over memif:
     * 42k spurious time-outs in 5 s, p99 130 ms). */
    if (unlikely(w->blocked_n > 0) && !w->tx_retrying && note_blocked(w, p)) {
        w->st.tx_blocked++;
        return ERR_MEM;
    }
    struct rte_mbuf *m = w->send_zc ? in_place(p) : NULL;
    if (m != NULL) {
        w->st.tx_zc_segs++;
        w->st.tx_zc_bytes += p->next->len;
    } else {
        err_t e = build(w, p, &m);
        if (unlikely(e != ERR_OK))
            return e;
    }
    w->st.tx_bytes += p->tot_len;
    if (w->caps.tx_tso && w->tx_n > w->tx_held && likely(w->fault == NULL) && tso_join(w, m))
        return ERR_OK;
    dpn_cksum_tx_prepare(m, w->caps.tx_ip_cksum, w->caps.tx_tcp_cksum, w->caps.tx_udp_cksum);
    w->tx_pkts[w->tx_n++] = m;
    return ERR_OK;
}
