/* TCP header prediction (tcp_fast.h): the common segment of an established
 * connection -- the next in sequence, no options, ACK (and PSH) only, its
 * ACK new or the last one again -- is taken here without lwIP's ethernet,
 * IPv4 and TCP input: the state changes below are the ones tcp_receive
 * makes for this case, then the same callbacks in the same order, then
 * tcp_output as at the end of tcp_input. Anything else (SYN, FIN, RST,
 * options, a hole, a window to trim, duplicate ACKs, a retransmission in
 * progress, a zero window) goes lwIP's way, which is also where the input
 * guard of tcp_guard.c lives: a segment taken here passes that guard by
 * construction (its sequence number is RCV.NXT, its data fits the window,
 * its ACK is in [SND.UNA, SND.NXT]).
 *
 * What must stay equal to lwIP 2.1.3's tcp_receive (test_tcp_fast_path in
 * test_api.c compares every field against it): the window update rule
 * (RFC 793 with SND.WL1/WL2), congestion control (RFC 3465, lwIP's L of 2
 * segments), the retransmission estimator (Jacobson's, in slow-timer
 * ticks), delayed ACKs (every second segment) and keep-alive's timer. */
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

#include "buf.h"
#include "cksum.h"
#include "tcp_fast.h"
#include "tcp_pcbs.h"
#include "trace.h"
#include "worker.h"

/* Whether the segment is one we take: the checks before any state changes. */
static inline bool predicted(const struct tcp_pcb *pcb, uint32_t seq, uint32_t ack, uint32_t len) {
    if (pcb == NULL || pcb->state != ESTABLISHED || seq != pcb->rcv_nxt || len > pcb->rcv_wnd ||
        pcb->ooseq != NULL || pcb->refused_data != NULL || pcb->persist_backoff != 0 ||
        (pcb->flags & (TF_RXCLOSED | TF_INFR | TF_RTO)) != 0)
        return false;
    if (ack == pcb->lastack) /* with no data it may be a duplicate ACK: lwIP counts those */
        return len > 0;
    if (!TCP_SEQ_BETWEEN(ack, pcb->lastack + 1, pcb->snd_nxt))
        return false;
    /* What the ACK covers is in unacked: lwIP also looks in unsent, which
     * holds sent segments only after a retransmission moved them there. */
    return pcb->unsent == NULL || TCP_SEQ_GEQ(lwip_ntohl(pcb->unsent->tcphdr->seqno), ack);
}

/* New data acknowledged: what tcp_receive does for an ACK in
 * (SND.UNA, SND.NXT]. Returns the bytes freed for the sent callback. */
static tcpwnd_size_t ack_new(struct dpn_worker *w, struct tcp_pcb *pcb, uint32_t ack) {
    tcpwnd_size_t acked = (tcpwnd_size_t)(ack - pcb->lastack);
    pcb->nrtx = 0;
    pcb->rto = (s16_t)((pcb->sa >> 3) + pcb->sv);
    pcb->dupacks = 0;
    pcb->lastack = ack;
    if (pcb->cwnd < pcb->ssthresh) {
        /* slow start: at most two segments per ACK (RFC 3465 2.2, L = 2) */
        tcpwnd_size_t inc = LWIP_MIN(acked, (tcpwnd_size_t)(2 * pcb->mss));
        TCP_WND_INC(pcb->cwnd, inc);
    } else {
        /* congestion avoidance: one segment per window acknowledged */
        TCP_WND_INC(pcb->bytes_acked, acked);
        if (pcb->bytes_acked >= pcb->cwnd) {
            pcb->bytes_acked = (tcpwnd_size_t)(pcb->bytes_acked - pcb->cwnd);
            TCP_WND_INC(pcb->cwnd, pcb->mss);
        }
    }
    tcpwnd_size_t freed = 0;
    struct tcp_seg *seg = pcb->unacked;
    while (seg != NULL && TCP_SEQ_LEQ(lwip_ntohl(seg->tcphdr->seqno) + TCP_TCPLEN(seg), ack)) {
        struct tcp_seg *next = seg->next;
        pcb->snd_queuelen = (u16_t)(pcb->snd_queuelen - pbuf_clen(seg->p));
        freed = (tcpwnd_size_t)(freed + seg->len);
        dpn_later_seg(w, seg);
        seg = next;
    }
    pcb->unacked = seg; /* taken from the head only: unacked_tail stays right */
    pcb->rtime = seg == NULL ? -1 : 0;
    pcb->polltmr = 0;
    if (pcb->unsent == NULL)
        pcb->unsent_oversize = 0;
    pcb->snd_buf = (tcpwnd_size_t)(pcb->snd_buf + freed);
    return freed;
}

bool dpn_tcp_fast(struct dpn_worker *w, struct rte_mbuf *m, const struct rte_ipv4_hdr *ip,
                  uint32_t ip_len) {
    const struct rte_tcp_hdr *th = (const struct rte_tcp_hdr *)(ip + 1);
    if (ip_len < sizeof(*ip) + sizeof(*th) ||
        RTE_ETHER_HDR_LEN + ip_len != rte_pktmbuf_data_len(m) || th->data_off != 0x50 ||
        (th->tcp_flags & ~RTE_TCP_PSH_FLAG) != RTE_TCP_ACK_FLAG)
        return false;
    struct tcp_pcb *pcb =
        dpn_pcbs_find(ip->src_addr, rte_be_to_cpu_16(th->src_port), rte_be_to_cpu_16(th->dst_port));
    uint32_t seq = rte_be_to_cpu_32(th->sent_seq);
    uint32_t ack = rte_be_to_cpu_32(th->recv_ack);
    uint32_t len = ip_len - (uint32_t)(sizeof(*ip) + sizeof(*th));
    if (!predicted(pcb, seq, ack, len))
        return false;
    tcpwnd_size_t wnd = SND_WND_SCALE(pcb, (tcpwnd_size_t)rte_be_to_cpu_16(th->rx_win));
    if (wnd == 0) /* lwIP's output starts the persist timer */
        return false;

    w->st.tcp_fast++;
    /* The window: from the newest segment (RFC 793: SND.WL1, SND.WL2). */
    if (TCP_SEQ_LT(pcb->snd_wl1, seq) || (pcb->snd_wl1 == seq && TCP_SEQ_LT(pcb->snd_wl2, ack)) ||
        (pcb->snd_wl2 == ack && wnd > pcb->snd_wnd)) {
        pcb->snd_wnd = wnd;
        if (pcb->snd_wnd_max < wnd)
            pcb->snd_wnd_max = wnd;
        pcb->snd_wl1 = seq;
        pcb->snd_wl2 = ack;
    }
    tcpwnd_size_t freed = ack != pcb->lastack ? ack_new(w, pcb, ack) : (pcb->dupacks = 0, 0);
    if (pcb->rttest != 0 && TCP_SEQ_LT(pcb->rtseq, ack)) {
        /* Jacobson's estimator, in slow-timer ticks: sa is 8x the
         * smoothed RTT, sv 4x its mean deviation. */
        s16_t d = (s16_t)((s16_t)(tcp_ticks - pcb->rttest) - (pcb->sa >> 3));
        pcb->sa = (s16_t)(pcb->sa + d);
        if (d < 0)
            d = (s16_t)-d;
        d = (s16_t)(d - (pcb->sv >> 2));
        pcb->sv = (s16_t)(pcb->sv + d);
        pcb->rto = (s16_t)((pcb->sa >> 3) + pcb->sv);
        pcb->rttest = 0;
    }
    pcb->tmr = tcp_ticks; /* the peer is alive: keep-alive and idle timers start again */
    pcb->keep_cnt_sent = 0;
    pcb->persist_probe = 0;

    struct pbuf *p = NULL;
    if (len > 0) {
        pcb->rcv_nxt += len;
        pcb->rcv_wnd -= len;
        tcp_update_rcv_ann_wnd(pcb);
        tcp_ack(pcb); /* delayed: every second segment, or with our answer */
        p = dpn_pbuf_wrap_seg(m);
        pbuf_remove_header(p, RTE_ETHER_HDR_LEN + sizeof(*ip) + sizeof(*th));
        if (th->tcp_flags & RTE_TCP_PSH_FLAG)
            p->flags |= PBUF_FLAG_PUSH;
    } else {
        dpn_mbuf_drop(m);
    }

    /* The callbacks as tcp_input calls them, sent then recv, with pcb as
     * tcp_input_pcb meanwhile (config/lwip-tcp-fast.patch). */
    tcp_fast_begin(pcb);
    err_t err = ERR_OK;
    while (freed > 0) {
        u16_t n = (u16_t)LWIP_MIN(freed, 0xffffu);
        freed = (tcpwnd_size_t)(freed - n);
        TCP_EVENT_SENT(pcb, n, err);
        if (err == ERR_ABRT)
            goto gone;
    }
    if (tcp_fast_closed(pcb))
        goto gone;
    if (p != NULL) {
        struct pbuf *d = p;
        p = NULL;
        if (pcb->flags & TF_RXCLOSED) { /* closed for reading in sent(): lwIP resets */
            pbuf_free(d);
            tcp_abort(pcb);
            goto gone;
        }
        TCP_EVENT_RECV(pcb, d, ERR_OK, err);
        if (err == ERR_ABRT)
            goto gone;
        if (err != ERR_OK)
            pcb->refused_data = d;
    }
    tcp_input_pcb = NULL;
    if (!tcp_fast_closed(pcb))
        tcp_output(pcb);
gone:
    tcp_input_pcb = NULL;
    if (p != NULL)
        pbuf_free(p);
    return true;
}

/* ---- output: tcp_output's common case ---- */

#define HDRS (RTE_ETHER_HDR_LEN + sizeof(struct rte_ipv4_hdr))

/* The TCP checksum is ours to make: the NIC does not, and the port wants one. */
static inline bool tcp_sum_ours(const struct dpn_worker *w) {
    return !w->caps.tx_tcp_cksum && !w->caps.tx_none;
}

/* Our Ethernet and IPv4 headers at f, for tlen bytes of TCP (lwIP's
 * header and the data). */
static struct rte_ipv4_hdr *put_hdrs(struct dpn_worker *w, const struct tcp_pcb *pcb, uint8_t *f,
                                     uint32_t tlen, const struct rte_ether_addr *dmac) {
    struct rte_ether_hdr *eth = (struct rte_ether_hdr *)f;
    struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
    eth->dst_addr = *dmac;
    eth->src_addr = w->mac;
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    *ip = (struct rte_ipv4_hdr){.version_ihl = RTE_IPV4_VHL_DEF,
                                .type_of_service = pcb->tos,
                                .total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + tlen)),
                                .packet_id = rte_cpu_to_be_16(w->ip_id++),
                                .fragment_offset =
                                    rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG), /* never fragmented */
                                .time_to_live = pcb->ttl,
                                .next_proto_id = IPPROTO_TCP,
                                .src_addr = ip4_addr_get_u32(ip_2_ip4(&pcb->local_ip)),
                                .dst_addr = ip4_addr_get_u32(ip_2_ip4(&pcb->remote_ip))};
    return ip;
}

/* The offload flags, and the checksums the NIC does not make; sum is the
 * raw sum of the TCP header and data (used when the TCP sum is ours). */
static void put_sums(struct dpn_worker *w, struct rte_mbuf *m, struct rte_ipv4_hdr *ip,
                     uint32_t sum) {
    dpn_cksum_tx_prepare(m, w->caps.tx_ip_cksum, w->caps.tx_tcp_cksum, false);
    if (!w->caps.tx_ip_cksum)
        ip->hdr_checksum = dpn_ipv4_cksum(ip);
    if (tcp_sum_ours(w)) {
        struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(ip + 1);
        sum = dpn_cksum_fold(sum) + (uint32_t)dpn_ipv4_phdr_sum(ip);
        th->cksum = (uint16_t)~dpn_cksum_fold(sum);
    }
}

/* Segment seg of pcb as a frame in one new mbuf: our Ethernet and IPv4
 * headers, then lwIP's TCP header and the data copied, the checksums the
 * NIC does not make summed over the finished frame. NULL when it would
 * not fit one mbuf (lwIP's path chains it). */
static struct rte_mbuf *frame(struct dpn_worker *w, const struct tcp_pcb *pcb,
                              const struct tcp_seg *seg, const struct rte_ether_addr *dmac) {
    uint32_t tlen = seg->p->tot_len;
    struct rte_mbuf *m = rte_pktmbuf_alloc(w->pool);
    if (unlikely(m == NULL))
        return NULL;
    if (HDRS + tlen > rte_pktmbuf_tailroom(m)) {
        rte_pktmbuf_free(m);
        return NULL;
    }
    uint8_t *f = rte_pktmbuf_mtod(m, uint8_t *);
    struct rte_ipv4_hdr *ip = put_hdrs(w, pcb, f, tlen, dmac);
    /* The TCP sum from the source pieces (lwIP's header, its checksum
     * field 0, and the data, in the cache: the data was usually received
     * just now) rather than from the copy: the copy's lines are often
     * still on their way into the cache (the pool's mbufs cycle through
     * more memory than it holds at thousands of connections), and reading
     * them back waited for each. */
    bool tcp_sw = tcp_sum_ours(w);
    uint32_t sum = 0, off = 0;
    uint8_t *d = f + HDRS;
    for (const struct pbuf *q = seg->p; q != NULL; q = q->next) {
        if (tcp_sw) {
            uint16_t part = dpn_raw_cksum(q->payload, q->len);
            sum += (off & 1) ? (uint16_t)(part << 8 | part >> 8) : part;
        }
        rte_memcpy(d, q->payload, q->len);
        d += q->len;
        off += q->len;
    }
    m->data_len = (uint16_t)(HDRS + tlen);
    m->pkt_len = m->data_len;
    put_sums(w, m, ip, sum);
    return m;
}

/* tcp.send_zc: a segment whose data is one whole buffer of ours (a piece
 * of dpn_send, a dpn_send_buf buffer, an echoed frame) goes out in that
 * buffer, as tx.c's in_place sends it on lwIP's path: the headers are
 * written in front of the data and the mbuf goes with one more reference,
 * lwIP keeping its own for retransmission. Only while nobody else holds
 * the mbuf (a frame of it still in the batch or the ring keeps its
 * headers); NULL, and the segment is copied, otherwise. */
static struct rte_mbuf *in_place(struct dpn_worker *w, const struct tcp_pcb *pcb,
                                 const struct tcp_seg *seg, const struct rte_ether_addr *dmac) {
    const struct pbuf *p = seg->p, *q = p->next;
    struct rte_mbuf *s = dpn_zc_whole(q, HDRS + p->len);
    if (s == NULL)
        return NULL;
    uint8_t *d = q->payload, *f = d - HDRS - p->len;
    struct rte_ipv4_hdr *ip = put_hdrs(w, pcb, f, p->len + (uint32_t)q->len, dmac);
    rte_memcpy(f + HDRS, p->payload, p->len); /* lwIP's TCP header: an even length */
    uint32_t sum = 0;
    if (tcp_sum_ours(w))
        sum = (uint32_t)dpn_raw_cksum(p->payload, p->len) + dpn_raw_cksum(d, q->len);
    dpn_zc_frame(s, f, HDRS + p->len + q->len);
    put_sums(w, s, ip, sum);
    return s;
}

/* Data tx.c would send from its own mbuf rather than copy (zc_source). */
static bool zc_data(const struct pbuf *p) {
    for (const struct pbuf *q = p->next; q != NULL; q = q->next)
        if ((q->flags & DPN_PBUF_FLAG_ZC) && q->len >= DPN_ZC_MIN)
            return true;
    return false;
}

int dpn_tcp_fast_output(struct dpn_worker *w, struct tcp_pcb *pcb) {
    struct tcp_seg *seg = pcb->unsent;
    /* What lwIP's path must do: no TSO join here, a fault layer or a
     * waiting line sees every frame, SYN_SENT sends no ACK. */
    if (seg == NULL || !w->tcp_fast || w->caps.tx_tso || w->fault != NULL ||
        (w->blocked_n > 0 && !w->tx_retrying) ||
        (pcb->state != ESTABLISHED && pcb->state != CLOSE_WAIT) || !(pcb->flags & TF_NODELAY) ||
        (pcb->flags & (TF_INFR | TF_RTO)) != 0 || ip_addr_isany(&pcb->local_ip))
        return 0;
    uint32_t wnd = LWIP_MIN(pcb->snd_wnd, pcb->cwnd);
    if (lwip_ntohl(seg->tcphdr->seqno) - pcb->lastack + seg->len > wnd)
        return 0; /* lwIP's persist timer decides */
    struct tcp_seg *tail = pcb->unacked != NULL ? pcb->unacked_tail : NULL;
    if (tail != NULL && (tail->next != NULL || TCP_SEQ_LT(lwip_ntohl(seg->tcphdr->seqno),
                                                          lwip_ntohl(tail->tcphdr->seqno))))
        return 0; /* a retransmission goes before the tail: lwIP's */
    struct rte_ether_addr dmac;
    if (!dpn_l2_dst(w, ip4_addr_get_u32(ip_2_ip4(&pcb->remote_ip)), &dmac))
        return 0; /* lwIP asks ARP */
    pcb->persist_backoff = 0;
    while (seg != NULL && lwip_ntohl(seg->tcphdr->seqno) - pcb->lastack + seg->len <= wnd &&
           w->tx_n < DPN_TX_BATCH) {
        if ((seg->flags & (TF_SEG_OPTS_MSS | TF_SEG_OPTS_TS | TF_SEG_OPTS_WND_SCALE |
                           TF_SEG_OPTS_SACK_PERM)) != 0 ||
            (TCPH_FLAGS(seg->tcphdr) & (TCP_SYN | TCP_RST)) != 0 || seg->p->ref != 1)
            return 0; /* lwIP's path from here on */
        /* What tcp_output_segment fills in, then our frame instead of its
         * IPv4, ARP and Ethernet output. */
        TCPH_SET_FLAG(seg->tcphdr, TCP_ACK);
        seg->tcphdr->ackno = lwip_htonl(pcb->rcv_nxt);
        seg->tcphdr->wnd = lwip_htons(TCPWND_MIN16(RCV_WND_SCALE(pcb, pcb->rcv_ann_wnd)));
        u16_t off = (u16_t)((u8_t *)seg->tcphdr - (u8_t *)seg->p->payload);
        seg->p->len = (u16_t)(seg->p->len - off);
        seg->p->tot_len = (u16_t)(seg->p->tot_len - off);
        seg->p->payload = seg->tcphdr;
        seg->tcphdr->chksum = 0;
        struct rte_mbuf *m = w->send_zc ? in_place(w, pcb, seg, &dmac) : NULL;
        if (m != NULL) {
            w->st.tx_zc_segs++;
            w->st.tx_zc_bytes += seg->p->next->len;
        } else if (w->caps.tx_multi_seg && zc_data(seg->p)) {
            return 0; /* tx.c sends its big pieces in place (indirect mbufs) */
        } else {
            m = frame(w, pcb, seg, &dmac);
            if (m == NULL)
                return 0;
        }
        pcb->rcv_ann_right_edge = pcb->rcv_nxt + pcb->rcv_ann_wnd;
        if (pcb->rtime < 0)
            pcb->rtime = 0;
        if (pcb->rttest == 0) {
            pcb->rttest = tcp_ticks;
            pcb->rtseq = lwip_ntohl(seg->tcphdr->seqno);
        }
        DPN_TRACE(w, DPN_T_LINK_OUT);
        w->st.tx_bytes += m->pkt_len;
        w->st.tcp_fast_out++;
        w->tx_pkts[w->tx_n++] = m;
        /* What tcp_output does after a segment went out. */
        pcb->unsent = seg->next;
        if (pcb->unsent == NULL)
            pcb->unsent_tail = NULL;
        tcp_clear_flags(pcb, TF_ACK_DELAY | TF_ACK_NOW);
        uint32_t end = lwip_ntohl(seg->tcphdr->seqno) + TCP_TCPLEN(seg);
        if (TCP_SEQ_LT(pcb->snd_nxt, end))
            pcb->snd_nxt = end;
        seg->next = NULL;
        if (pcb->unacked == NULL)
            pcb->unacked = seg;
        else
            pcb->unacked_tail->next = seg;
        pcb->unacked_tail = seg;
        seg = pcb->unsent;
    }
    if (seg != NULL && w->tx_n == DPN_TX_BATCH)
        return 0; /* lwIP's link output flushes the batch */
    if (pcb->unsent == NULL)
        pcb->unsent_oversize = 0;
    tcp_clear_flags(pcb, TF_NAGLEMEMERR);
    return 1;
}
