/* SYN cookies (RFC 4987), decided before lwIP as TIME_WAIT is (rx.c).
 *
 * When a listener's backlog of half-open connections is full, lwIP drops
 * new SYNs, and a flood of spoofed SYNs locks real clients out until the
 * half-open ones time out. Instead the SYN gets a SYN-ACK whose sequence
 * number is a cookie, and no state is kept: the cookie is a keyed hash of
 * the 4-tuple, the client's ISN and a 64 s time slot, plus that slot and
 * the client's MSS rounded down to one of four values:
 *
 *   bits 31..27 time slot   26..25 MSS index   24..0 MAC (SipHash, secret key)
 *
 * An ACK for no known connection whose ACK number - 1 is a valid cookie
 * made less than two slots ago opens the connection: we hand lwIP the SYN
 * it dropped (rebuilt, with the cookie as its ISN and its SYN-ACK muted),
 * and then the ACK itself, which completes the handshake as usual.
 * Like Linux's cookies without timestamps, these carry no window scaling
 * (the connection uses unscaled windows, up to 64 KiB). */
#include <rte_ip.h>
#include <rte_tcp.h>

#include "lwip/inet_chksum.h"
#include "lwip/ip.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "netif/ethernet.h"

#include "buf.h"
#include "port_internal.h"
#include "tcp_pcbs.h"
#include "worker.h"

#define SLOT_SHIFT 16                /* 65.5 s per time slot */
#define ACTIVE_MS (2u << SLOT_SHIFT) /* cookies sent this recently: check ACKs */
static const uint16_t msstab[4] = {536, 1200, 1440, 1460};

static uint32_t cookie_mac(uint32_t rip, uint16_t rport, uint16_t lport, uint32_t isn,
                           uint32_t slot) {
    uint64_t m0 = ((uint64_t)rip << 32) | isn;
    uint64_t m1 = ((uint64_t)rport << 48) | ((uint64_t)lport << 32) | slot;
    return (uint32_t)dpn_cookie_hash(m0, m1) & 0x1ffffffu;
}

static uint32_t cookie_make(uint32_t rip, uint16_t rport, uint16_t lport, uint32_t isn,
                            unsigned mss_idx, uint32_t now) {
    uint32_t slot = now >> SLOT_SHIFT;
    return (slot & 0x1fu) << 27 | (uint32_t)mss_idx << 25 |
           cookie_mac(rip, rport, lport, isn, slot);
}

/* The MSS the cookie carries, or 0 when it is not one of ours (or too old). */
static uint16_t cookie_check(uint32_t rip, uint16_t rport, uint16_t lport, uint32_t isn,
                             uint32_t cookie, uint32_t now) {
    for (uint32_t age = 0; age < 2; age++) {
        uint32_t slot = (now >> SLOT_SHIFT) - age;
        if ((cookie >> 27) == (slot & 0x1fu) &&
            (cookie & 0x1ffffffu) == cookie_mac(rip, rport, lport, isn, slot))
            return msstab[(cookie >> 25) & 3u];
    }
    return 0;
}

static struct tcp_pcb_listen *listener(uint16_t port) {
    struct tcp_pcb_listen *l = tcp_listen_pcbs.listen_pcbs;
    while (l != NULL && l->local_port != port)
        l = l->next;
    return l;
}

/* The peer's MSS option, or 536 (RFC 1122) without one. */
static uint16_t syn_mss(const uint8_t *th, uint32_t avail) {
    uint32_t hl = (th[12] >> 4) * 4u;
    if (hl > avail)
        hl = avail;
    for (uint32_t i = 20; i < hl;) {
        uint8_t kind = th[i];
        if (kind == 0)
            break;
        if (kind == 1 || i + 1 >= hl) {
            i++;
            continue;
        }
        uint8_t len = th[i + 1];
        if (len < 2 || i + len > hl)
            break;
        if (kind == 2 && len == 4)
            return (uint16_t)(th[i + 2] << 8 | th[i + 3]);
        i += len;
    }
    return 536;
}

static struct eth_addr reply_mac;

static err_t to_reply_mac(struct netif *nif, struct pbuf *p, const ip4_addr_t *dst) {
    (void)dst;
    return ethernet_output(nif, p, (const struct eth_addr *)nif->hwaddr, &reply_mac, ETHTYPE_IP);
}

/* Our SYN-ACK carrying the cookie, through lwIP's IP output, to the MAC the
 * SYN came from: a flood from an address nobody answers ARP for would
 * otherwise fill lwIP's ARP queue for it, and every further SYN-ACK would
 * walk that queue (ARP_QUEUE_LEN entries) to be appended and dropped.
 * ERR_MEM when the TX batch was full. */
static err_t send_synack(struct dpn_worker *w, const struct dpn_cookie_reply *r) {
    struct pbuf *p = pbuf_alloc(PBUF_IP, TCP_HLEN + 4, PBUF_RAM);
    if (p == NULL)
        return ERR_BUF;
    struct tcp_hdr *h = p->payload;
    h->src = lwip_htons(r->lport);
    h->dest = lwip_htons(r->rport);
    h->seqno = lwip_htonl(r->seq);
    h->ackno = lwip_htonl(r->ack);
    TCPH_HDRLEN_FLAGS_SET(h, 6, TCP_SYN | TCP_ACK);
    h->wnd = lwip_htons((u16_t)LWIP_MIN(w->cfg.tcp_rcvbuf, 0xffffu));
    h->chksum = 0;
    h->urgp = 0;
    uint16_t mss = (uint16_t)LWIP_MIN(TCP_MSS, w->netif.mtu - 40u);
    uint8_t *o = (uint8_t *)(h + 1);
    o[0] = 2;
    o[1] = 4;
    o[2] = (uint8_t)(mss >> 8);
    o[3] = (uint8_t)mss;
    ip_addr_t src, dst;
    ip_addr_set_ip4_u32(&src, lwip_htonl(w->cfg.ip));
    ip_addr_set_ip4_u32(&dst, r->rip);
    IF__NETIF_CHECKSUM_ENABLED(&w->netif, NETIF_CHECKSUM_GEN_TCP) {
        h->chksum = ip_chksum_pseudo(p, IP_PROTO_TCP, p->tot_len, &src, &dst);
    }
    memcpy(&reply_mac, &r->mac, sizeof(reply_mac));
    netif_output_fn out = w->netif.output;
    w->netif.output = to_reply_mac;
    err_t err = ip_output_if(p, &src, &dst, TCP_TTL, 0, IP_PROTO_TCP, &w->netif);
    w->netif.output = out;
    pbuf_free(p);
    if (err == ERR_OK)
        w->st.syn_cookies++;
    return err;
}

/* A connect storm (8192 clients at once over memif) fills the ring with
 * SYN-ACKs faster than the peer takes them; a refused one was lost, and
 * its client waited a SYN time-out (1 s, then 2, 4, ...) to try again:
 * rounds of that made such a storm take 8-16 s. Queued instead, sent as
 * the ring drains; a full queue (a flood) drops the newest. */
static void queue_synack(struct dpn_worker *w, const struct dpn_cookie_reply *r) {
    if (w->cookie_q_n == DPN_COOKIE_Q) {
        w->st.tx_dropped++;
        return;
    }
    w->cookie_q[(w->cookie_q_head + w->cookie_q_n++) % DPN_COOKIE_Q] = *r;
}

void dpn_syncookie_retry(struct dpn_worker *w) {
    while (w->cookie_q_n > 0 && w->tx_n < DPN_TX_BATCH) {
        if (send_synack(w, &w->cookie_q[w->cookie_q_head]) == ERR_MEM)
            return; /* the batch filled after all: it stays first */
        w->cookie_q_head = (w->cookie_q_head + 1) % DPN_COOKIE_Q;
        w->cookie_q_n--;
    }
}

static err_t mute_output(struct netif *nif, struct pbuf *p, const ip4_addr_t *dst) {
    (void)nif;
    (void)p;
    (void)dst;
    return ERR_OK;
}

/* The SYN lwIP dropped, rebuilt from the ACK's addresses: the client's
 * ISN, the MSS the cookie kept, no other option. lwIP makes the half-open
 * connection with the cookie as our ISN; its SYN-ACK (already sent, as the
 * cookie) is muted, and the backlog does not count it. */
static void replay_syn(struct dpn_worker *w, struct tcp_pcb_listen *l, const struct rte_mbuf *m,
                       const uint8_t *th, uint32_t isn, uint32_t cookie, uint16_t mss) {
    const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);
    const uint16_t len = RTE_ETHER_HDR_LEN + 20 + 24;
    struct pbuf *p = pbuf_alloc(PBUF_RAW, len, PBUF_RAM);
    if (p == NULL)
        return;
    uint8_t *b = p->payload;
    memcpy(b, f, RTE_ETHER_HDR_LEN);
    struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(b + RTE_ETHER_HDR_LEN);
    const struct rte_ipv4_hdr *oip = (const struct rte_ipv4_hdr *)(f + RTE_ETHER_HDR_LEN);
    *ip = (struct rte_ipv4_hdr){.version_ihl = RTE_IPV4_VHL_DEF,
                                .total_length = rte_cpu_to_be_16(20 + 24),
                                .time_to_live = oip->time_to_live,
                                .next_proto_id = IPPROTO_TCP,
                                .src_addr = oip->src_addr,
                                .dst_addr = oip->dst_addr};
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    struct rte_tcp_hdr *t = (struct rte_tcp_hdr *)(ip + 1);
    *t = (struct rte_tcp_hdr){.src_port = ((const struct rte_tcp_hdr *)th)->src_port,
                              .dst_port = ((const struct rte_tcp_hdr *)th)->dst_port,
                              .sent_seq = rte_cpu_to_be_32(isn),
                              .data_off = 6 << 4,
                              .tcp_flags = RTE_TCP_SYN_FLAG,
                              .rx_win = ((const struct rte_tcp_hdr *)th)->rx_win};
    uint8_t *o = (uint8_t *)(t + 1);
    o[0] = 2;
    o[1] = 4;
    o[2] = (uint8_t)(mss >> 8);
    o[3] = (uint8_t)mss;
    t->cksum = rte_ipv4_udptcp_cksum(ip, t);

    u8_t pending = l->accepts_pending;
    l->accepts_pending = 0;
    netif_output_fn out = w->netif.output;
    w->netif.output = mute_output;
    dpn_tcp_isn_force(true, cookie);
    w->netif.input(p, &w->netif);
    dpn_tcp_isn_force(false, 0);
    w->netif.output = out;
    l->accepts_pending = pending;
    /* p is lwIP's now (changed in place, freed): the tuple from the ACK. */
    struct tcp_pcb *npcb = dpn_pcbs_find(oip->src_addr, (uint16_t)(th[0] << 8 | th[1]),
                                         (uint16_t)(th[2] << 8 | th[3]));
    if (npcb != NULL && (npcb->flags & TF_BACKLOGPEND))
        tcp_clear_flags(npcb, TF_BACKLOGPEND);
}

bool dpn_syncookie_input(struct dpn_worker *w, struct rte_mbuf *m, const uint8_t *th) {
    uint8_t fl =
        th[13] & (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG | RTE_TCP_RST_FLAG | RTE_TCP_FIN_FLAG);
    bool syn = fl == RTE_TCP_SYN_FLAG;
    bool ack = (fl & ~RTE_TCP_FIN_FLAG) == RTE_TCP_ACK_FLAG;
    if (likely(!syn && !(ack && w->cookies_active)))
        return false;
    uint32_t now = sys_now();
    if (ack && now - w->cookie_sent_ms >= ACTIVE_MS) {
        w->cookies_active = false;
        return false;
    }
    const uint8_t *ip = rte_pktmbuf_mtod_offset(m, const uint8_t *, RTE_ETHER_HDR_LEN);
    uint32_t rip, seq, ackno;
    memcpy(&rip, ip + 12, 4);
    memcpy(&seq, th + 4, 4);
    memcpy(&ackno, th + 8, 4);
    seq = rte_be_to_cpu_32(seq);
    ackno = rte_be_to_cpu_32(ackno);
    uint16_t rport = (uint16_t)(th[0] << 8 | th[1]), lport = (uint16_t)(th[2] << 8 | th[3]);
    struct tcp_pcb_listen *l = listener(lport);
    if (l == NULL || dpn_pcbs_find(rip, rport, lport) != NULL)
        return false; /* lwIP's: a RST, or a segment of a connection */
    if (syn) {
        if (l->accepts_pending < l->backlog)
            return false;
        uint16_t mss =
            syn_mss(th, rte_pktmbuf_data_len(m) - (uint32_t)(th - ip) - RTE_ETHER_HDR_LEN);
        unsigned idx = 3;
        while (idx > 0 && msstab[idx] > mss)
            idx--;
        struct dpn_cookie_reply r = {.rip = rip,
                                     .seq = cookie_make(rip, rport, lport, seq, idx, now),
                                     .ack = seq + 1,
                                     .rport = rport,
                                     .lport = lport};
        memcpy(&r.mac, rte_pktmbuf_mtod_offset(m, const uint8_t *, 6), sizeof(r.mac));
        /* Behind those already waiting, to keep their order. */
        if (w->cookie_q_n > 0 || send_synack(w, &r) == ERR_MEM)
            queue_synack(w, &r);
        w->cookie_sent_ms = now;
        w->cookies_active = true;
        dpn_mbuf_drop(m);
        return true;
    }
    uint16_t mss = cookie_check(rip, rport, lport, seq - 1, ackno - 1, now);
    if (mss == 0)
        return false; /* lwIP answers with a RST */
    replay_syn(w, l, m, th, seq - 1, ackno - 1, mss);
    w->st.syn_cookies_ok++;
    return false; /* and now the ACK, to the half-open connection */
}
