/* Leaving a memif link without crashing the peer (DPDK 22.11's net_memif).
 *
 * When one side of a memif link disconnects, the other side's EAL interrupt
 * thread unmaps the shared regions while its polling thread may be inside
 * rx_burst or tx_burst on them: nothing in the driver orders the two, and
 * the poller dies (about 1 run in 15 of a busy-polling echoserver whose
 * client exits). So a dpnet worker that closes a memif port first says so
 * in a frame of its own (ethertype 0x88B5, "local experimental"); the peer
 * answers and then keeps away from the driver's bursts until the link has
 * gone down and come up again (or 500 ms pass without it going down), and
 * only then does the leaving side close its port. A peer that is killed
 * cannot say goodbye: that race stays DPDK's. */
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>

#include "log.h"
#include "worker.h"

#define BYE_ETHERTYPE 0x88B5
#define BYE_PARK_MS 500 /* parked at most this long unless the link goes down */
#define BYE_WAIT_MS 200 /* the leaving side waits this long for the answer */
#define BYE_RESEND_MS 20
static const char bye_magic[10] = "dpnet-bye";
enum { BYE = 1, BYE_ACK = 2 };

void dpn_bye_init(struct dpn_worker *w) {
    w->bye_on = strcmp(w->caps.driver, "net_memif") == 0;
}

/* True when the ring took the frame. */
static bool bye_send(struct dpn_worker *w, uint8_t type) {
    struct rte_mbuf *m = rte_pktmbuf_alloc(w->pool);
    if (m == NULL)
        return false;
    uint8_t *f = (uint8_t *)rte_pktmbuf_append(m, 60);
    if (f == NULL) {
        rte_pktmbuf_free(m);
        return false;
    }
    memset(f, 0, 60);
    memset(f, 0xff, 6);
    memcpy(f + 6, w->mac.addr_bytes, 6);
    f[12] = BYE_ETHERTYPE >> 8;
    f[13] = BYE_ETHERTYPE & 0xff;
    memcpy(f + 14, bye_magic, sizeof(bye_magic));
    f[14 + sizeof(bye_magic)] = type;
    if (rte_eth_tx_burst(w->port_id, w->queue_id, &m, 1) == 1)
        return true;
    rte_pktmbuf_free(m);
    return false;
}

/* 0 when m is not ours, else BYE or BYE_ACK. */
static int bye_type(const struct rte_mbuf *m) {
    const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);
    if (rte_pktmbuf_data_len(m) < 14 + sizeof(bye_magic) + 1 || f[12] != BYE_ETHERTYPE >> 8 ||
        f[13] != (BYE_ETHERTYPE & 0xff) || memcmp(f + 14, bye_magic, sizeof(bye_magic)) != 0)
        return 0;
    return f[14 + sizeof(bye_magic)];
}

bool dpn_bye_input(struct dpn_worker *w, struct rte_mbuf *m) {
    int t = bye_type(m);
    if (t == 0)
        return false;
    rte_pktmbuf_free(m);
    if (t == BYE && !w->bye_parked) {
        /* Before we stop touching the driver. The leaving side drains our
         * ring while it waits, so a full ring frees up within microseconds. */
        uint64_t end = rte_rdtsc() + w->tsc_per_ms;
        while (!bye_send(w, BYE_ACK) && rte_rdtsc() < end)
            ;
        w->bye_parked = true;
        w->bye_saw_down = false;
        w->bye_since_tsc = rte_rdtsc();
        DPN_LOG(INFO, stack, "port %u: the memif peer is leaving; waiting for the link to go",
                w->port_id);
    }
    return true;
}

bool dpn_bye_parked(struct dpn_worker *w, uint64_t now) {
    struct rte_eth_link link;
    if (rte_eth_link_get_nowait(w->port_id, &link) != 0)
        return true;
    if (link.link_status == RTE_ETH_LINK_DOWN)
        w->bye_saw_down = true;
    else if (w->bye_saw_down || now - w->bye_since_tsc > BYE_PARK_MS * w->tsc_per_ms)
        w->bye_parked = false; /* a new connection (fresh regions), or the peer stayed */
    return w->bye_parked;
}

void dpn_bye_leave(struct dpn_worker *w) {
    if (!w->bye_on || w->bye_parked)
        return;
    struct rte_eth_link link;
    if (rte_eth_link_get_nowait(w->port_id, &link) != 0 || link.link_status == RTE_ETH_LINK_DOWN)
        return;
    /* The ring may still be full of what we sent last (a worker that
     * aborts 4096 connections sends 4096 RSTs): the goodbye goes as soon as
     * the peer makes room, and again every BYE_RESEND_MS until answered,
     * else the peer was left polling a link we close (t_memif: 1 client of
     * 9 in a CI run). A peer already parked ignores the repeats. */
    uint64_t now = rte_rdtsc(), end = now + BYE_WAIT_MS * w->tsc_per_ms, next = now;
    while ((now = rte_rdtsc()) < end) {
        if (now >= next)
            next = bye_send(w, BYE) ? now + BYE_RESEND_MS * w->tsc_per_ms : now;
        struct rte_mbuf *pkts[DPN_BURST];
        uint16_t n = rte_eth_rx_burst(w->port_id, w->queue_id, pkts, DPN_BURST);
        bool acked = false;
        for (uint16_t i = 0; i < n; i++) {
            acked = acked || bye_type(pkts[i]) == BYE_ACK;
            rte_pktmbuf_free(pkts[i]);
        }
        if (acked)
            return;
    }
    DPN_LOG(NOTICE, stack, "port %u: the memif peer did not answer our goodbye in %d ms",
            w->port_id, BYE_WAIT_MS);
}
