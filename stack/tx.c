/* TX path of a worker: lwIP's link output copies each frame into one mbuf
 * (lwIP keeps its own segments for retransmission), marks checksum offloads,
 * and queues it; dpn_tx_flush sends the batch with one tx_burst per poll
 * iteration. */
#include <string.h>

#include <rte_ethdev.h>
#include <rte_memcpy.h>

#include "lwip/pbuf.h"

#include "buf.h"
#include "cksum.h"
#include "fault.h"
#include "trace.h"
#include "worker.h"

void dpn_tx_flush(struct dpn_worker *w) {
    if (unlikely(w->fault != NULL))
        dpn_fault_tx(w);
    uint16_t n = w->tx_n, sent = 0;
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

err_t dpn_linkoutput(struct netif *netif, struct pbuf *p) {
    struct dpn_worker *w = netif->state;
    DPN_TRACE(w, DPN_T_LINK_OUT);
    if (unlikely(w->tx_n == DPN_TX_BATCH)) {
        dpn_tx_flush(w);
        if (w->tx_n == DPN_TX_BATCH)
            return ERR_MEM; /* the ring is full and so is our batch */
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
