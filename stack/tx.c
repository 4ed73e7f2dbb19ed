/* TX path of a worker: lwIP's link output copies each frame into one mbuf
 * (lwIP keeps its own segments for retransmission), marks checksum offloads,
 * and queues it; dpn_tx_flush sends the batch with one tx_burst per poll
 * iteration. */
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
    /* A full ring empties quickly: retry a bounded number of times, then
     * count the rest as dropped (TCP retransmits; UDP is best effort). */
    for (int tries = 0; sent < n && tries < 64; tries++)
        sent += rte_eth_tx_burst(w->port_id, w->queue_id, w->tx_pkts + sent, n - sent);
    if (unlikely(sent < n)) {
        w->st.tx_dropped += n - sent;
        rte_pktmbuf_free_bulk(w->tx_pkts + sent, n - sent);
    }
    w->st.tx_pkts += sent;
    w->tx_n = 0;
    if (sent > 0)
        DPN_TRACE(w, DPN_T_TX_DONE);
}

err_t dpn_linkoutput(struct netif *netif, struct pbuf *p) {
    struct dpn_worker *w = netif->state;
    DPN_TRACE(w, DPN_T_LINK_OUT);
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
    if (unlikely(w->tx_n == DPN_TX_BATCH))
        dpn_tx_flush(w);
    return ERR_OK;
}
