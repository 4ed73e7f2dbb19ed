/* TIME_WAIT outside lwIP (tcp_tw.h): a FIFO of entries in arrival order,
 * which is also expiry order since every entry lives 2 MSL, and a chained
 * hash on the 4-tuple for the receive path. All memory is allocated once;
 * entries ended early stay in the FIFO, marked dead, until they reach its
 * head. */
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"

#include "buf.h"
#include "tcp_tw.h"
#include "worker.h"

#define TW_BUCKETS (DPN_TW_MAX * 2u)
#define TW_MS (2u * TCP_MSL)

struct tw_ent {
    uint32_t rip; /* network order; 0: dead (ended early, or never used) */
    uint16_t rport, lport;
    uint32_t snd_nxt, rcv_nxt;
    uint32_t expire_ms;
    uint32_t next;    /* hash chain: index + 1, 0 ends it */
    uint32_t rcv_wnd; /* the window we last announced, in bytes */
    uint16_t wnd;     /* ... as the window field of our ACKs carries it */
};

struct dpn_tw {
    uint32_t head, tail; /* FIFO positions; slot = position % DPN_TW_MAX */
    uint32_t n;          /* live entries */
    uint32_t bucket[TW_BUCKETS];
    struct tw_ent ent[DPN_TW_MAX];
};

int dpn_tw_new(struct dpn_tw **twp) {
    *twp = dpn_zalloc(sizeof(struct dpn_tw));
    return *twp == NULL ? -1 : 0;
}

void dpn_tw_free(struct dpn_tw *tw) {
    dpn_free(tw);
}

unsigned dpn_tw_count(const struct dpn_tw *tw) {
    return tw == NULL ? 0 : tw->n;
}

static inline uint32_t tw_hash(uint32_t rip, uint16_t rport, uint16_t lport) {
    uint64_t k = ((uint64_t)rip << 32) | ((uint32_t)rport << 16) | lport;
    return (uint32_t)((k * 0x9e3779b97f4a7c15ull) >> 40) % TW_BUCKETS;
}

/* The entry's index + 1, or 0; *link: the chain link pointing at it. */
static uint32_t tw_find(const struct dpn_tw *tw, uint32_t rip, uint16_t rport, uint16_t lport,
                        const uint32_t **link) {
    const uint32_t *l = &tw->bucket[tw_hash(rip, rport, lport)];
    while (*l != 0) {
        const struct tw_ent *e = &tw->ent[*l - 1];
        if (e->rip == rip && e->rport == rport && e->lport == lport)
            break;
        l = &e->next;
    }
    if (link != NULL)
        *link = l;
    return *l;
}

static void tw_unlink(struct dpn_tw *tw, uint32_t idx1) {
    struct tw_ent *e = &tw->ent[idx1 - 1];
    const uint32_t *l;
    if (e->rip == 0 || tw_find(tw, e->rip, e->rport, e->lport, &l) != idx1)
        return;
    *(uint32_t *)l = e->next;
    e->rip = 0;
    tw->n--;
}

bool dpn_tw_has(const struct dpn_tw *tw, uint32_t rip, uint16_t rport, uint16_t lport) {
    return tw->n > 0 && tw_find(tw, rip, rport, lport, NULL) != 0;
}

void dpn_tw_end(struct dpn_tw *tw, uint32_t rip, uint16_t rport, uint16_t lport) {
    uint32_t i = tw->n > 0 ? tw_find(tw, rip, rport, lport, NULL) : 0;
    if (i != 0)
        tw_unlink(tw, i);
}

void dpn_tw_clear(struct dpn_tw *tw) {
    memset(tw->bucket, 0, sizeof(tw->bucket));
    tw->head = tw->tail = tw->n = 0;
}

static void tw_pop(struct dpn_tw *tw) {
    tw_unlink(tw, tw->head % DPN_TW_MAX + 1);
    tw->head++;
}

void dpn_tw_expire(struct dpn_tw *tw, uint32_t now_ms) {
    while (tw->head != tw->tail) {
        const struct tw_ent *e = &tw->ent[tw->head % DPN_TW_MAX];
        if (e->rip != 0 && (int32_t)(now_ms - e->expire_ms) < 0)
            break;
        tw_pop(tw);
    }
}

static void tw_add(struct dpn_tw *tw, const struct tcp_pcb *pcb, uint32_t now_ms) {
    uint32_t rip = ip4_addr_get_u32(ip_2_ip4(&pcb->remote_ip));
    if (rip == 0)
        return;
    if (tw->tail - tw->head == DPN_TW_MAX)
        tw_pop(tw); /* full: the oldest ends early */
    uint32_t idx1 = tw->tail % DPN_TW_MAX + 1;
    struct tw_ent *e = &tw->ent[idx1 - 1];
    tw->tail++;
    uint32_t wnd = RCV_WND_SCALE(pcb, pcb->rcv_ann_wnd);
    *e = (struct tw_ent){.rip = rip,
                         .rport = pcb->remote_port,
                         .lport = pcb->local_port,
                         .snd_nxt = pcb->snd_nxt,
                         .rcv_nxt = pcb->rcv_nxt,
                         .expire_ms = now_ms + TW_MS,
                         .rcv_wnd = pcb->rcv_ann_wnd,
                         .wnd = (uint16_t)(wnd > 0xffff ? 0xffff : wnd)};
    uint32_t *b = &tw->bucket[tw_hash(rip, e->rport, e->lport)];
    e->next = *b;
    *b = idx1;
    tw->n++;
}

void dpn_tw_absorb(struct dpn_worker *w) {
    uint32_t now = sys_now();
    /* New TIME_WAIT pcbs go to the list's head; we empty it each time, so
     * taking from the head never walks it. */
    while (tcp_tw_pcbs != NULL) {
        struct tcp_pcb *pcb = tcp_tw_pcbs;
        tcp_tw_pcbs = pcb->next;
        struct dpn_conn *c = pcb->callback_arg;
        if (c != NULL) /* lw_recv normally let go already */
            c->pcb = NULL;
        tw_add(w->tw, pcb, now);
        /* lwIP purged its queues when it entered TIME_WAIT (tcp_process). */
        tcp_free(pcb);
    }
}

/* An empty segment as the old connection would send it, through lwIP's own
 * output (route, ARP, checksums) with a pcb that lives for this call. */
static void tw_reply(struct dpn_worker *w, const struct tw_ent *e, bool rst, uint32_t seq,
                     uint32_t ack) {
    struct tcp_pcb t;
    memset(&t, 0, sizeof(t));
    t.state = TIME_WAIT;
    t.ttl = TCP_TTL;
    ip_addr_set_ip4_u32(&t.local_ip, lwip_htonl(w->cfg.ip));
    ip_addr_set_ip4_u32(&t.remote_ip, e->rip);
    t.local_port = e->lport;
    t.remote_port = e->rport;
    if (rst) {
        tcp_rst(&t, seq, ack, &t.local_ip, &t.remote_ip, t.local_port, t.remote_port);
        return;
    }
    t.snd_nxt = e->snd_nxt;
    t.rcv_nxt = e->rcv_nxt;
#if LWIP_WND_SCALE
    t.rcv_scale = 0; /* e->wnd is the field's value already */
#endif
    t.rcv_ann_wnd = e->wnd;
    tcp_send_empty_ack(&t);
}

bool dpn_tw_input(struct dpn_worker *w, struct rte_mbuf *m, const uint8_t *th, uint32_t tcplen) {
    struct dpn_tw *tw = w->tw;
    if (likely(tw->n == 0))
        return false;
    const uint8_t *ip = rte_pktmbuf_mtod_offset(m, const uint8_t *, RTE_ETHER_HDR_LEN);
    uint32_t rip;
    memcpy(&rip, ip + 12, 4);
    uint16_t rport = (uint16_t)(th[0] << 8 | th[1]), lport = (uint16_t)(th[2] << 8 | th[3]);
    uint32_t idx1 = tw_find(tw, rip, rport, lport, NULL);
    if (idx1 == 0)
        return false;
    const struct tw_ent *e = &tw->ent[idx1 - 1];
    uint32_t seq, ackno;
    memcpy(&seq, th + 4, 4);
    memcpy(&ackno, th + 8, 4);
    seq = rte_be_to_cpu_32(seq);
    ackno = rte_be_to_cpu_32(ackno);
    uint8_t flags = th[13];
    if (flags & RTE_TCP_RST_FLAG) { /* RFC 1337 */
    } else if (flags & RTE_TCP_SYN_FLAG) {
        if (!(flags & RTE_TCP_ACK_FLAG) && TCP_SEQ_GT(seq, e->rcv_nxt)) {
            tw_unlink(tw, idx1); /* a new incarnation: lwIP takes it */
            return false;
        }
        if (TCP_SEQ_BETWEEN(seq, e->rcv_nxt, e->rcv_nxt + e->rcv_wnd))
            tw_reply(w, e, true, ackno, seq + tcplen); /* lwIP's answer */
        else
            tw_reply(w, e, false, 0, 0);
    } else if (tcplen > 0) {
        tw_reply(w, e, false, 0, 0); /* a retransmitted FIN: our ACK was lost */
    }
    dpn_mbuf_drop(m);
    return true;
}
