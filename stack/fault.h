/* Fault injection between the worker and its queue, for tests: seeded and
 * reproducible drop, duplicate, reorder, corrupt, delay (with jitter) and
 * link-down periods, on RX, TX or both. Compiled in, off by default (one
 * predictable branch per burst), switched on by `--fault SPEC` or the
 * config key fault.spec, like DPDK's own test PMDs. The kernel here has no
 * netem; this is what the robustness tests use instead.
 *
 * SPEC: comma-separated key=value, e.g.
 *   "drop=0.05,dup=0.01,reorder=0.02,corrupt=0.01,delay=200:100,seed=7,dir=both"
 *   drop, dup, reorder, corrupt  probability per frame, 0..1
 *   delay=US[:JITTER]            hold each frame US +- JITTER microseconds
 *   down=AT:FOR                  the link is down FOR ms, AT ms after the first
 *                                TCP frame received
 *   seed=N                       PRNG seed (same seed, same faults)
 *   dir=rx|tx|both               where faults apply (default both) */
#ifndef DPNET_FAULT_H
#define DPNET_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rte_mbuf.h>

struct dpn_worker;

struct dpn_fault_counters {
    uint64_t dropped, duplicated, reordered, corrupted, delayed, down_dropped;
};

/* Set up from w->cfg.fault (no-op when empty). 0 or -DPN_E*. */
int dpn_fault_init(struct dpn_worker *w);
void dpn_fault_fini(struct dpn_worker *w);

/* Apply RX faults to a received burst in place; returns the new count
 * (frames held for delay or reorder come back in later calls). */
uint16_t dpn_fault_rx(struct dpn_worker *w, struct rte_mbuf **pkts, uint16_t n, uint16_t cap);
/* Apply TX faults to w->tx_pkts[0..tx_n) before they are sent. */
void dpn_fault_tx(struct dpn_worker *w);
void dpn_fault_counters(const struct dpn_worker *w, struct dpn_fault_counters *c);

#endif
