/* TX path of a worker: lwIP's link output copies each frame into one mbuf
 * (lwIP keeps its own segments for retransmission), marks checksum offloads,
 * and queues it; dpn_tx_flush sends the batch with one tx_burst per poll
 * iteration. */
#include <string.h>

#include <rte_ethdev.h>
#include <rte_memcpy.h>

#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

#include "buf.h"
#include "cksum.h"
#include "capture.h"
#include "fault.h"
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
    uint16_t n = w->tx_n, sent = 0;
    if (unlikely(w->cap != NULL) && n > w->tx_held) /* what came since the last flush */
        dpn_cap_frames(w->cap, w->tx_pkts + w->tx_held, (uint16_t)(n - w->tx_held), w->queue_id,
                       DPN_CAP_OUT);
    DPN_TRACE(w, DPN_T_TX_CALL);
    for (int tries = 0; sent < n && tries < 4; tries++)
        sent += rte_eth_tx_burst(w->port_id, w->queue_id, w->tx_pkts + sent, n - sent);
    w->st.tx_pkts += sent;
    /* A full ring (the peer is slower): keep the rest for the next
     * iteration instead of dropping it, which would cost TCP a timeout.
     * When the batch itself is full, linkoutput says ERR_MEM and lwIP keeps
     * its segments queued: backpressure, not loss. */
    w->tx_n = (uint16_t)(n - sent);
    w->tx_held = w->tx_n;
    if (unlikely(sent < n)) {
        memmove(w->tx_pkts, w->tx_pkts + sent, (size_t)(n - sent) * sizeof(w->tx_pkts[0]));
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
static void note_blocked(struct dpn_worker *w, const struct pbuf *p) {
    const uint8_t *f = p->payload;
    if (p->len < 14 + 20 + 20 || f[12] != 0x08 || f[13] != 0x00 || f[14 + 9] != IP_PROTO_TCP)
        return;
    const uint8_t *th = f + 14 + (f[14] & 0xf) * 4u;
    if (th + 4 > f + p->len)
        return;
    uint32_t rip;
    memcpy(&rip, f + 14 + 16, 4);
    uint16_t lport = (uint16_t)(th[0] << 8 | th[1]), rport = (uint16_t)(th[2] << 8 | th[3]);
    struct tcp_pcb *pcb = dpn_pcbs_find(rip, rport, lport);
    struct dpn_pcb_ext *x = pcb != NULL ? dpn_pcbs_ext(pcb) : NULL;
    if (x == NULL || x->tx_blocked || w->blocked_n == DPN_TX_BLOCKED)
        return; /* listed already, or the list is full: its timer recovers it */
    x->tx_blocked = true;
    w->blocked[w->blocked_n++] = (struct dpn_tx_blocked){pcb, rip, rport, lport};
}

void dpn_tx_retry_blocked(struct dpn_worker *w) {
    static struct dpn_tx_blocked todo[DPN_TX_BLOCKED]; /* one worker per process */
    uint16_t n = w->blocked_n, i = 0;
    memcpy(todo, w->blocked, n * sizeof(todo[0]));
    w->blocked_n = 0;
    for (; i < n && w->tx_n < DPN_TX_BATCH; i++) {
        struct tcp_pcb *pcb = dpn_pcbs_find(todo[i].rip, todo[i].rport, todo[i].lport);
        struct dpn_pcb_ext *x = pcb == todo[i].pcb ? dpn_pcbs_ext(pcb) : NULL;
        if (x == NULL || !x->tx_blocked)
            continue; /* gone (or reused) meanwhile */
        x->tx_blocked = false;
        tcp_output(pcb); /* refused again: listed again */
    }
    for (; i < n && w->blocked_n < DPN_TX_BLOCKED; i++) /* the batch filled up: next time */
        w->blocked[w->blocked_n++] = todo[i];
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
    struct rte_mbuf *m = rte_pktmbuf_alloc(w->pool);
    if (unlikely(m == NULL)) {
        w->st.tx_dropped++;
        return ERR_MEM;
    }
    char *dst = rte_pktmbuf_append(m, p->tot_len);
    if (unlikely(dst == NULL)) {
        rte_pktmbuf_free(m);
        w->st.tx_dropped++;
        return ERR_BUF;
    }
    for (const struct pbuf *q = p; q != NULL; q = q->next) {
        rte_memcpy(dst, q->payload, q->len);
        dst += q->len;
    }
    dpn_cksum_tx_prepare(m, w->caps.tx_ip_cksum, w->caps.tx_tcp_cksum, w->caps.tx_udp_cksum);
    w->st.tx_bytes += p->tot_len;
    w->tx_pkts[w->tx_n++] = m;
    return ERR_OK;
}
