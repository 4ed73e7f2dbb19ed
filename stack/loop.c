/* The worker loop: rx_burst -> lwIP -> callbacks -> flush writes ->
 * tx_burst, lwIP timers from the TSC, and the idle policy of the poll mode.
 * Reads like l3fwd's main loop on purpose. */
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_interrupts.h>
#include <rte_lcore.h>
#include <rte_ring.h>

#include "lwip/memp.h"
#include "lwip/sys.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/timeouts.h"

#include "capture.h"
#include "fault.h"
#include "tcp_pcbs.h"
#include "tcp_rto.h"
#include "tapsig.h"
#include "tcp_tw.h"
#include "trace.h"
#include "worker.h"

/* Arm the RX interrupt of every queue we read; false (none armed) when
 * one fails. */
static bool arm_rx_intr(struct dpn_worker *w) {
    for (uint16_t q = 0; q < w->rx_queues; q++) {
        if (dpn_port_intr_enable(w->port_id, w->queue_id + q) != 0) {
            while (q-- > 0)
                dpn_port_intr_disable(w->port_id, w->queue_id + q);
            return false;
        }
    }
    return true;
}

static bool rx_pending(struct dpn_worker *w) {
    for (uint16_t q = 0; q < w->rx_queues; q++)
        if (rte_eth_rx_queue_count(w->port_id, w->queue_id + q) > 0)
            return true;
    return false;
}

/* Sleep until a frame arrives or the next lwIP timer is due, at most
 * sleep_max_us: on the RX interrupt where the PMD has one, else a back-off
 * that doubles from 10 us. Only called after spin_us without traffic. */
static void idle_sleep(struct dpn_worker *w) {
    uint32_t max_us = w->cfg.sleep_max_us;
    uint32_t timer_ms = sys_timeouts_sleeptime();
    if (timer_ms != SYS_TIMEOUTS_SLEEPTIME_INFINITE && timer_ms * 1000ull < max_us)
        max_us = timer_ms * 1000u;
    uint64_t app_us = dpn_timers_next_us(w, rte_rdtsc());
    if (app_us < max_us)
        max_us = (uint32_t)app_us;
    w->st.idle_sleeps++;
    /* net_tap: our queues' fds; attached there, also our wake-up eventfd */
    if (w->sleep_fd >= 0) {
        if (w->env->sleep_begin == NULL || w->env->sleep_begin(w)) {
            struct epoll_event ev;
            int r = epoll_wait(w->sleep_fd, &ev, 1, (int)((max_us + 999) / 1000));
            /* net_tap: a frame whose RX signal never came (O_ASYNC off
             * at the time, an increment of the PMD's non-atomic trigger
             * lost) would wait, readable, while the PMD skips the read
             * and epoll wakes us again and again; without the signal the
             * sender's retransmissions queue behind it unread. Readable
             * is enough to read. */
            if (r > 0 && w->tapsig != NULL)
                dpn_tapsig_kick(w->tapsig);
            if (w->env->sleep_end != NULL)
                w->env->sleep_end(w);
        }
        return;
    }
    if (w->caps.rx_intr && arm_rx_intr(w)) {
        /* Frames that arrived before the interrupts were armed are still
         * seen: rx_burst runs again before we wait. */
        if (!rx_pending(w)) {
            struct rte_epoll_event ev;
            int ms = (int)((max_us + 999) / 1000);
            rte_epoll_wait(RTE_EPOLL_PER_THREAD, &ev, 1, ms);
        }
        for (uint16_t q = 0; q < w->rx_queues; q++)
            dpn_port_intr_disable(w->port_id, w->queue_id + q);
        return;
    }
    uint32_t us = w->backoff_us < max_us ? w->backoff_us : max_us;
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};
    nanosleep(&ts, NULL);
    if (w->backoff_us < max_us)
        w->backoff_us *= 2;
}

static inline void on_idle(struct dpn_worker *w, uint64_t now) {
    if (w->cfg.poll == DPN_POLL_BUSY)
        return;
    if (w->idle_since_tsc == 0) {
        w->idle_since_tsc = now;
        w->backoff_us = 10;
        return;
    }
    if (now - w->idle_since_tsc >= w->spin_tsc)
        idle_sleep(w);
}

/* Free mbufs in the RX pool, cheap enough for every millisecond.
 * rte_mempool_avail_count also reads the cache of each of RTE_MAX_LCORE
 * (128) lcores: 128 scattered cache lines every millisecond on both ends
 * of a round trip, right where the p99.9 of a 1.3 us ping-pong lives. For
 * a ring-based pool, its ring plus our own cache; other lcores' caches are
 * left out, so the estimate errs low (copy a little early, never late). */
static unsigned pool_free_estimate(const struct rte_mempool *mp) {
    if (strncmp(rte_mempool_get_ops(mp->ops_index)->name, "ring", 4) != 0)
        return rte_mempool_avail_count(mp);
    unsigned n = rte_ring_count(mp->pool_data);
    unsigned lc = rte_lcore_id();
    if (mp->cache_size != 0 && lc < RTE_MAX_LCORE)
        n += mp->local_cache[lc].len;
    return n;
}

static inline void run_timers(struct dpn_worker *w, uint64_t now) {
    if (now < w->next_timer_tsc)
        return;
    sys_check_timeouts();
    dpn_tcp_rto_tick();       /* after lwIP's RTO check: our RTO policy for its next one */
    dpn_pcbs_ooseq_recount(); /* lwIP's timer frees stale out-of-order data */
    dpn_tw_expire(w->tw, sys_now());
    if (w->timers.n > 0)
        dpn_timers_run(w, now);
    if (w->env->tick != NULL)
        w->env->tick(w);
    w->rx_low = pool_free_estimate(w->rx_pool) < w->rx_low_water;
    if (w->send_zc)
        dpn_send_mbufs_refill(w, pool_free_estimate(w->pool));
    w->next_timer_tsc = now + w->tsc_per_ms;
}

/* Received frames through lwIP, whatever their source: capture, fault
 * injection (tests) and tracing see every one. pkts has room for DPN_BURST * 2. */
static inline uint16_t rx_deliver(struct dpn_worker *w, struct rte_mbuf **pkts, uint16_t n) {
    if (n > 0)
        DPN_TRACE(w, DPN_T_RX_DONE);
    if (unlikely(w->cap != NULL) && n > 0)
        dpn_cap_frames(w->cap, pkts, n, w->queue_id, DPN_CAP_IN);
    if (unlikely(w->fault != NULL)) /* may release held frames when none came */
        n = dpn_fault_rx(w, pkts, n, DPN_BURST * 2);
    if (n > 0)
        dpn_rx_burst(w, pkts, n);
    return n;
}

/* One burst from one of our queues; what our environment keeps of it. */
static inline uint16_t rx_queue(struct dpn_worker *w, uint16_t q, struct rte_mbuf **pkts,
                                bool *full) {
    uint16_t n = rte_eth_rx_burst(w->port_id, q, pkts, DPN_BURST);
    *full |= n == DPN_BURST;
    if (n > 0 && w->env->rx_keep != NULL)
        n = w->env->rx_keep(w, pkts, n);
    if (n > 0 || unlikely(w->fault != NULL))
        n = rx_deliver(w, pkts, n);
    return n;
}

/* One iteration: receive a burst, run due timers, flush writes, send.
 * Returns the number of frames received. */
uint16_t dpn_poll_once(struct dpn_worker *w, uint64_t now) {
    struct rte_mbuf *pkts[DPN_BURST * 2]; /* room for frames fault injection adds */
    uint16_t n = 0;
    w->in_poll = true;
    DPN_TRACE(w, DPN_T_RX_CALL);
    bool parked = (unlikely(w->bye_parked) && dpn_bye_parked(w, now)) || unlikely(w->port_gone);
    if (likely(w->poll_queue) && likely(!parked)) {
        if (unlikely(w->tapsig != NULL))
            dpn_tapsig_before(w->tapsig);
        bool full = false;
        n = rx_queue(w, w->queue_id, pkts, &full);
        /* net_tap's guard queues (tapsteer.h) are read on every iteration
         * while queue 0 is quiet, else on every 16th: an empty read of one
         * costs a system call, two per iteration of a loaded server. A SYN
         * waits 16 iterations at most, and under a flood the established
         * connections on queue 0 come first, as the guard queues intend. */
        if (w->rx_queues > 1 && (n == 0 || ++w->guard_turn >= 16)) {
            w->guard_turn = 0;
            for (uint16_t q = 1; q < w->rx_queues; q++)
                n += rx_queue(w, w->queue_id + q, pkts, &full);
        }
        if (unlikely(w->tapsig != NULL))
            dpn_tapsig_after(w->tapsig, full ? DPN_BURST : n > 0, DPN_BURST);
    }
    if (w->env->rx_more != NULL) { /* attached: what dpnetd steered to us in software */
        uint16_t k = w->env->rx_more(w, pkts, DPN_BURST);
        if (k > 0)
            n += rx_deliver(w, pkts, k);
    }
    run_timers(w, now);
    if (unlikely(w->resume != NULL)) { /* dpn_read_start: held data, from here */
        dpn_tcp_resume(w);
        n++; /* work done: no idle sleep now */
    }
    if (w->dirty_n > 0)
        dpn_tcp_flush_dirty(w);
    if (w->tx_n > 0 || unlikely(w->fault != NULL))
        dpn_tx_flush(w);
    /* Refused output goes again as soon as the batch has room, not once
     * the ring has taken everything: under a peer that is always behind,
     * that moment rarely comes and blocked connections waited past their
     * RTO (8192 connections x 8: p99.9 0.2-0.4 s, spurious time-outs). */
    if (unlikely(w->blocked_n > 0 || w->cookie_q_n > 0) && w->tx_n < DPN_TX_BATCH / 2) {
        dpn_syncookie_retry(w);
        dpn_tx_retry_blocked(w);
        dpn_tx_flush(w);
    }
    w->in_poll = false;
    if (w->later_n > 0 || w->later_segs != NULL)
        dpn_later_release(w);
    if (unlikely(w->trace != NULL))
        dpn_trace_iteration(w);
    return n;
}

int dpn_run(struct dpn_worker *w) {
    w->next_timer_tsc = 0;
    w->idle_since_tsc = 0;
    uint64_t now = rte_rdtsc();
    unsigned empty = 0;
    while (!w->stop) {
        uint16_t n = dpn_poll_once(w, now);
        w->st.polls++;
        if (n > 0) {
            w->idle_since_tsc = 0;
        } else if (w->cfg.poll != DPN_POLL_BUSY) {
            on_idle(w, now); /* may sleep: the clock is read again below */
        } else if (++empty < 8) {
            /* Busy and empty: the TSC is read on every 8th such iteration
             * only. Reading it costs about as much as the rest of an empty
             * iteration here (12 ns of ~40), and a frame waits half an
             * iteration on average before it is seen; timers only need
             * the millisecond. */
            continue;
        }
        empty = 0;
        now = rte_rdtsc();
    }
    return 0;
}

int dpn_poll(struct dpn_worker *w) {
    uint16_t n = dpn_poll_once(w, rte_rdtsc());
    w->st.polls++;
    return n;
}

int dpn_wait_fd(struct dpn_worker *w) {
    /* Attached, dpnetd writes our wake-up only while we say we sleep. */
    if (w->att != NULL || w->sleep_fd < 0)
        return -1;
    /* The fd wakes the caller. net_tap's real-time signal per frame would
     * interrupt the program's own system calls (EINTR) and cost a handler
     * per frame: reading every poll is cheaper here (kecho over the tap
     * through libdpnet-posix.so: p50 18 us quiet, 58 us with the signal
     * blocked during sleeps). */
    if (w->tapsig != NULL)
        dpn_tapsig_quiet_always(w->tapsig);
    return w->sleep_fd;
}

void dpn_stop(struct dpn_worker *w) {
    w->stop = 1;
}

/* Application timers ride on lwIP's timeout list (one timer wheel). */
int dpn_timer_add(struct dpn_worker *w, uint32_t ms, dpn_timer_fn fn, void *arg) {
    (void)w;
    if (fn == NULL)
        return -DPN_EINVAL;
    /* lwIP asserts (aborts) when its timeout pool is empty: look first. One
     * thread, so the slot freed here is the one sys_timeout takes. */
    void *slot = memp_malloc(MEMP_SYS_TIMEOUT);
    if (slot == NULL)
        return -DPN_ENOMEM;
    memp_free(MEMP_SYS_TIMEOUT, slot);
    sys_timeout(ms, fn, arg);
    return 0;
}

void dpn_timer_cancel(struct dpn_worker *w, dpn_timer_fn fn, void *arg) {
    (void)w;
    sys_untimeout(fn, arg);
}
