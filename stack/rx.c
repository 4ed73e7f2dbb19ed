/* RX path of a worker: burst from the queue, checksum decision, zero-copy
 * wrap as pbufs, into lwIP. No allocation, lock or syscall here. */
#include <rte_ethdev.h>
#include <rte_prefetch.h>

#include "lwip/netif.h"

#include "buf.h"
#include "cksum.h"
#include "worker.h"

static inline void rx_one(struct dpn_worker *w, struct rte_mbuf *m) {
    w->st.rx_bytes += rte_pktmbuf_pkt_len(m);
    if (unlikely(!dpn_cksum_rx_ok(m))) {
        w->st.rx_dropped++;
        dpn_mbuf_drop(m);
        return;
    }
    struct pbuf *p = dpn_pbuf_wrap(m);
    /* ethernet_input consumes p in every case (frees it on error). */
    w->netif.input(p, &w->netif);
}

void dpn_rx_burst(struct dpn_worker *w, struct rte_mbuf **pkts, uint16_t n) {
    w->st.rx_pkts += n;
    for (uint16_t i = 0; i < n; i++) {
        if (i + 1 < n)
            rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
        rx_one(w, pkts[i]);
    }
}
