/* dpnetd: owns the port, hands queues and ports to workers, programs the
 * steering, and answers ARP, ICMP and unclaimed traffic with its own lwIP
 * on queue 0 (the netd of Kaufmann's thesis, on DPDK).
 *
 *   dpnetd <EAL options> -- -c FILE | --ip ADDR/LEN [--queues N]
 *          [--steering auto|hardware|software] [--poll busy|hybrid|interrupt]
 */
#include <errno.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_pdump.h>
#include <rte_interrupts.h>
#include <rte_malloc.h>
#include <rte_memzone.h>
#include <rte_random.h>

#include "lwip/etharp.h"
#include "lwip/timeouts.h"

#include "buf.h"
#include "capture.h"
#include "dpnetd.h"
#include "log.h"
#include "neigh.h"
#include "neigh_pub.h"
#include "tapsig.h"

#define TAP_MAX_QUEUES 4 /* net_tap aborts with more than 8 RX+TX queue fds (PLATFORM.md) */

static struct dpnd D;
static char **args; /* dpn_setup_eal's argument vector, kept (LeakSanitizer) */

static void publish(struct dpnd *d);

/* ---- neighbor table: lwIP's ARP cache, published for the workers ---- */

/* lwIP's cache goes into our own copy of the table (the writer's probing
 * reads entries: it must not read what another process wrote), and every
 * entry of the shared table that differs from it is written again under
 * its seqlock, so a scribbled entry lasts until the next sync at most. */
static void neigh_sync(struct dpnd *d) {
    dpn_neigh_publish(d->neigh, &d->w->netif);
    for (unsigned i = 0; i < DPN_NEIGH_SIZE; i++) {
        struct dpn_neigh want = d->neigh[i], *e = &d->shm->neigh[i];
        want.seq = d->neigh_seq[i];
        if (memcmp(&want, e, sizeof(want)) == 0)
            continue;
        __atomic_store_n(&e->seq, want.seq + 1, __ATOMIC_RELAXED);
        rte_atomic_thread_fence(__ATOMIC_RELEASE);
        e->ip = want.ip;
        e->mac = want.mac;
        e->valid = want.valid;
        d->neigh_seq[i] = want.seq + 2;
        __atomic_store_n(&e->seq, want.seq + 2, __ATOMIC_RELEASE);
    }
}

/* ---- the data path of the daemon: receive, steer, or handle itself ---- */

static void tag_all(struct rte_mbuf *m, uint32_t tag) {
    for (; m != NULL; m = m->next)
        ((struct dpn_pbuf *)rte_mbuf_to_priv(m))->tag = tag;
}

/* rte_ring_sp_enqueue_burst, without trusting the shared header: size and
 * mask are our copy's, the head is ours (single producer); only the
 * consumer's tail is read, and a wrong tail costs that worker frames, never
 * a write outside the ring. */
static unsigned ring_put(struct dpnd_slot *ds, struct rte_mbuf **pkts, unsigned n) {
    struct rte_ring *r = ds->ring;
    uint32_t head = ds->ring_head, cap = ds->ring_hdr.capacity, mask = ds->ring_hdr.mask;
    uint32_t room = cap + __atomic_load_n(&r->cons.tail, __ATOMIC_ACQUIRE) - head;
    void **elems = (void **)&r[1];
    if (room > cap)
        room = cap;
    if (n > room)
        n = room;
    for (unsigned i = 0; i < n; i++)
        elems[(head + i) & mask] = pkts[i];
    head += n;
    ds->ring_head = head;
    __atomic_store_n(&r->prod.head, head, __ATOMIC_RELAXED);
    __atomic_store_n(&r->prod.tail, head, __ATOMIC_RELEASE);
    return n;
}

static void hand_over(struct dpnd *d, uint16_t slot, struct rte_mbuf **pkts, unsigned n) {
    struct dpnd_slot *ds = &d->slots[slot];
    unsigned k = ring_put(ds, pkts, n);
    ds->ring_enq += k;
    /* A sleeping worker sees frames on its ring only when woken: it sets
     * `sleeping` and then looks at the ring, we publish the ring and then
     * look at `sleeping` (a full fence on both sides). A worker that lies
     * about it only sleeps longer. */
    if (ds->wake_fd >= 0 && k > 0) {
        rte_atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (__atomic_load_n(&d->shm->slots[slot].wr.sleeping, __ATOMIC_RELAXED)) {
            uint64_t one = 1;
            ssize_t rc = write(ds->wake_fd, &one, sizeof(one));
            (void)rc; /* EAGAIN: the counter is full, so it is awake anyway */
        }
    }
    if (unlikely(k < n)) { /* the worker is not keeping up: drop, TCP recovers */
        ds->ring_full += n - k;
        for (unsigned i = k; i < n; i++)
            dpn_mbuf_drop(pkts[i]);
    }
}

/* Steer a burst: each frame to its worker's ring, or to our own lwIP. */
static void steer_burst(struct dpnd *d, struct rte_mbuf **pkts, uint16_t n, bool *arp) {
    struct rte_mbuf *own[DPN_BURST], *to[DPN_MAX_SLOTS][DPN_BURST];
    uint16_t nto[DPN_MAX_SLOTS] = {0}, nown = 0;
    uint32_t touched = 0;
    for (uint16_t i = 0; i < n; i++) {
        uint8_t b;
        uint16_t slot = dpn_sw_classify(d->sw, pkts[i], &b);
        /* The table is private and holds only slots < nq; checked anyway,
         * as slot indexes the arrays below. */
        const struct dpnd_slot *s = &d->slots[slot < d->nq ? slot : 0];
        if (slot != 0 && slot < d->nq && s->state == DPN_SLOT_ATTACHED) {
            tag_all(pkts[i], dpn_tag(slot, s->gen));
            to[slot][nto[slot]++] = pkts[i];
            touched |= 1u << slot;
            d->bind[b].hits++;
        } else {
            tag_all(pkts[i], 0); /* ours (it may come back from a worker with its tag) */
            own[nown++] = pkts[i];
            if (rte_pktmbuf_mtod(pkts[i], struct rte_ether_hdr *)->ether_type ==
                RTE_BE16(RTE_ETHER_TYPE_ARP))
                *arp = true;
        }
    }
    while (touched != 0) {
        uint16_t slot = (uint16_t)__builtin_ctz(touched);
        touched &= touched - 1;
        hand_over(d, slot, to[slot], nto[slot]);
    }
    d->st.to_daemon += nown;
    if (unlikely(d->w->cap != NULL) && nown > 0) /* what we keep is ours to capture */
        dpn_cap_frames(d->w->cap, own, nown, 0, DPN_CAP_IN);
    if (nown > 0 && d->exc_port >= 0)
        nown = dpnd_exc_divert(d, own, nown);
    if (nown > 0)
        dpn_rx_burst(d->w, own, nown);
}

/* A live worker polls its own queue (software steering: abi.h workers_poll;
 * rules: the frames they steer there are its). dpnetd polls queue 0 and the
 * queues of no live worker: what a dead one left there, or what a rule still
 * sent there as it went, is steered again rather than left in the ring. */
static bool polls_queue(const struct dpnd *d, uint16_t q) {
    return q == 0 || d->slots[q].state != DPN_SLOT_ATTACHED;
}

static uint16_t rx_queue(struct dpnd *d, uint16_t q, bool *arp) {
    struct rte_mbuf *pkts[DPN_BURST];
    if (!polls_queue(d, q))
        return 0;
    uint16_t n = rte_eth_rx_burst(d->port_id, q, pkts, DPN_BURST);
    d->st.rx_pkts += n;
    if (n > 0)
        steer_burst(d, pkts, n, arp);
    return n;
}

/* Is p an mbuf of our RX pool? The ring is in shared memory: anything in it
 * may have been written by any process. */
static bool our_mbuf(const struct dpnd *d, const void *p) {
    size_t lo = 0, hi = d->nobj;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (d->objs[mid] < (uintptr_t)p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < d->nobj && d->objs[lo] == (uintptr_t)p;
}

/* A worker's return ring (single producer: the worker; single consumer: us,
 * with our own tail and the ring's size as created). Only our RX pool's
 * mbufs that carry the worker's tag are taken; anything else is counted and
 * left alone. */
static uint16_t ret_take(struct dpnd *d, uint16_t slot, bool *arp) {
    struct dpnd_slot *ds = &d->slots[slot];
    struct rte_ring *r = ds->ret;
    uint32_t tail = ds->ret_tail, mask = ds->ret_hdr.mask;
    uint32_t avail = __atomic_load_n(&r->prod.tail, __ATOMIC_ACQUIRE) - tail;
    if (avail == 0)
        return 0;
    if (avail > ds->ret_hdr.capacity)
        avail = ds->ret_hdr.capacity;
    if (avail > DPN_BURST)
        avail = DPN_BURST;
    struct rte_mbuf *pkts[DPN_BURST];
    void **elems = (void **)&r[1];
    uint32_t tag = dpn_tag(slot, ds->gen);
    uint16_t n = 0;
    for (uint32_t i = 0; i < avail; i++) {
        struct rte_mbuf *m = elems[(tail + i) & mask];
        struct dpn_pbuf *dp = our_mbuf(d, m) ? (struct dpn_pbuf *)rte_mbuf_to_priv(m) : NULL;
        if (dp != NULL && dp->tag == tag && m->nb_segs == 1 && m->next == NULL) {
            dp->tag = 0; /* taken: the same mbuf twice in a burst is refused */
            pkts[n++] = m;
        } else {
            ds->ret_refused++;
        }
    }
    tail += avail;
    ds->ret_tail = tail;
    __atomic_store_n(&r->cons.head, tail, __ATOMIC_RELAXED);
    __atomic_store_n(&r->cons.tail, tail, __ATOMIC_RELEASE);
    ds->ret_taken += n;
    d->st.rx_pkts += n;
    if (n > 0)
        steer_burst(d, pkts, n, arp);
    return n;
}

/* Software steering: frames we put on a dead worker's ring that it never
 * took. Its consumer tail is the dead worker's word, so only our RX pool's
 * mbufs that still carry its tag are taken, each once: whatever carries
 * the tag is the dead worker's alone, and nobody else's once taken. */
static void ring_resteer(struct dpnd *d, uint16_t slot, bool *arp) {
    struct dpnd_slot *ds = &d->slots[slot];
    struct rte_ring *r = ds->ring;
    uint32_t head = ds->ring_head, cap = ds->ring_hdr.capacity, mask = ds->ring_hdr.mask;
    uint32_t n = head - __atomic_load_n(&r->cons.tail, __ATOMIC_ACQUIRE);
    void **elems = (void **)&r[1];
    uint32_t tag = dpn_tag(slot, ds->gen);
    if (n > cap)
        n = cap;
    for (uint32_t i = n; i > 0;) {
        struct rte_mbuf *pkts[DPN_BURST];
        uint16_t k = 0;
        for (; i > 0 && k < DPN_BURST; i--) {
            struct rte_mbuf *m = elems[(head - i) & mask];
            struct dpn_pbuf *dp = our_mbuf(d, m) ? (struct dpn_pbuf *)rte_mbuf_to_priv(m) : NULL;
            if (dp != NULL && dp->tag == tag && m->nb_segs == 1 && m->next == NULL) {
                dp->tag = 0;
                pkts[k++] = m;
            }
        }
        if (k > 0)
            steer_burst(d, pkts, k, arp);
    }
}

/* A slot just released (its worker left or died): what waits for it or
 * from it goes where steering says now (a live worker of the binding, or
 * dpnetd, which answers a dead worker's connections with RST) instead of
 * being dropped: its return ring, its ring, its RX queue (bounded by the
 * queue's size). The slot is no longer ATTACHED, so none goes back to it. */
void dpnd_slot_drain(struct dpnd *d, uint16_t slot) {
    bool arp = false;
    const struct dpnd_slot *ds = &d->slots[slot];
    for (unsigned k = 0; k <= ds->ret_hdr.capacity / DPN_BURST; k++)
        if (ret_take(d, slot, &arp) == 0)
            break;
    ring_resteer(d, slot, &arp);
    for (unsigned k = 0; k <= d->w->cfg.rx_desc / DPN_BURST; k++)
        if (rx_queue(d, slot, &arp) < DPN_BURST)
            break;
    if (arp)
        neigh_sync(d);
}

/* dpnetd sleeps at most this long whatever poll.sleep_max_us says: its
 * control socket and the 100 ms liveness checks are served from this loop. */
#define DPND_SLEEP_MAX_US 100000u
#define DPND_CTL_EV UINT32_MAX /* idle_ep's tag of the control socket's epoll */
/* Wake-ups in a row on an RX interrupt with no frame behind them: the
 * interrupt source is broken (a net_tap whose interface was deleted reports
 * an error on its fd for ever), sleep on a timer instead of spinning. */
#define DPND_EMPTY_WAKEUPS 1000

static void check_port(struct dpnd *d);

/* Sleeps in a row that ran to their end although a frame came meanwhile
 * (the next pass found it), with no RX event in between: the armed RX
 * interrupt never fires (e1000's em under vfio MSI-X: it programs no
 * IVAR). Then naps of poll.sleep_max_us, as without interrupts. */
#define DPND_SILENT_SLEEPS 16

static void empty_wakeups_warn(struct dpnd *d) {
    DPN_LOG(WARNING, app,
            "port %u: its RX event keeps firing with no frame: sleeping on a timer instead",
            d->port_id);
    check_port(d);
}

/* The control socket's epoll sits in DPDK's per-thread epoll set beside the
 * RX interrupts, so a request wakes a sleeping dpnetd. */
static struct rte_epoll_event ctl_ev;
static void ctl_wake_register(struct dpnd *d) {
    if (d->ctl_ep < 0 || !d->w->caps.rx_intr)
        return;
    ctl_ev.epdata.event = EPOLLIN;
    if (rte_epoll_ctl(RTE_EPOLL_PER_THREAD, EPOLL_CTL_ADD, d->ctl_ep, &ctl_ev) != 0) {
        close(d->ctl_ep); /* then dpnetd sleeps at most poll.sleep_max_us */
        d->ctl_ep = -1;
    }
}

/* Sleeping, on the queues dpnetd polls and on nothing else (a worker's
 * frames must not wake it). Two kinds of PMD:
 * - net_tap: each queue's fd is its tun fd, readable while frames wait, and
 *   cannot be armed: dpnetd sleeps on those fds and the control socket in
 *   its own epoll (idle_ep).
 * - RX interrupts (ixgbe, e1000, virtio): an eventfd written once per armed
 *   interrupt. dpnetd arms the queues it polls, sleeps in DPDK's per-thread
 *   epoll, which holds those queues only (and reads their eventfds), and
 *   disarms them. ixgbe keeps one mask of armed queues for the whole port
 *   (intr->mask; ixgbe_dev_rxq_interrupt_setup sets all 16 at start, and
 *   every rx_queue_intr_enable writes the whole mask to EIMS), so every queue
 *   is disarmed here first: arming queue 0 then re-arms no worker's queue. */
static void idle_init(struct dpnd *d) {
    for (uint16_t q = 0; q < DPN_MAX_SLOTS; q++) {
        d->qfd[q] = -1;
        d->q_in_ep[q] = false;
        d->q_in_rte[q] = q == 0 && d->w->caps.rx_intr; /* dpn_port_open added it */
    }
    if (!d->w->caps.rx_intr)
        return;
    for (uint16_t q = 0; q < d->nq; q++)
        dpn_port_intr_disable(d->port_id, q);
    bool level = true;
    for (uint16_t q = 0; q < d->nq; q++)
        level = level && (d->qfd[q] = dpn_port_rx_fd(d->port_id, q)) >= 0;
    if (!level)
        return;
    d->idle_ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = DPND_CTL_EV};
    if (d->idle_ep >= 0 &&
        (d->ctl_ep < 0 || epoll_ctl(d->idle_ep, EPOLL_CTL_ADD, d->ctl_ep, &ev) != 0)) {
        close(d->idle_ep);
        d->idle_ep = -1;
    }
    /* net_tap: we sleep on its queue fds, so its signal per frame only costs
     * (it also went to us for every frame of the workers' queues). */
    if (d->idle_ep >= 0 && d->tapsig != NULL)
        dpn_tapsig_quiet_always(d->tapsig);
}

/* Was it the control socket that woke us (not an RX interrupt)? */
static bool ctl_woke(const struct dpnd *d, const struct rte_epoll_event *ev, int n) {
    for (int i = 0; i < n; i++)
        if (ev[i].fd == d->ctl_ep)
            return true;
    return false;
}

/* How long dpnetd may sleep: until lwIP's next timer or the next 100 ms
 * check when every source of work wakes it (RX queues, the control
 * socket); else poll.sleep_max_us, the worst a frame may wait. */
static uint32_t sleep_us(const struct dpnd *d, uint64_t now, bool woken) {
    const struct dpn_worker *w = d->w;
    woken = woken && d->ctl_ep >= 0 && d->exc_port < 0 && !d->ctl_deferred;
    uint32_t us = woken ? DPND_SLEEP_MAX_US : RTE_MIN(w->cfg.sleep_max_us, DPND_SLEEP_MAX_US);
    uint32_t timer_ms = sys_timeouts_sleeptime();
    if (timer_ms != SYS_TIMEOUTS_SLEEPTIME_INFINITE && timer_ms * 1000ull < us)
        us = timer_ms * 1000u;
    uint64_t check_us =
        d->next_check_tsc > now ? (d->next_check_tsc - now) * 1000000 / rte_get_tsc_hz() : 0;
    return woken && check_us < us ? (uint32_t)check_us + 1 : us;
}

/* Our own epoll holds the fd of every queue we poll and the control
 * socket's (net_tap). False when there is none. */
static bool idle_ep_sync(struct dpnd *d) {
    if (d->idle_ep < 0)
        return false;
    for (uint16_t q = 0; q < d->nq; q++) {
        bool want = polls_queue(d, q);
        if (want && d->qfd[q] < 0)
            return false;
        if (want == d->q_in_ep[q])
            continue;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = q};
        if (epoll_ctl(d->idle_ep, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, d->qfd[q], &ev) != 0)
            return false;
        d->q_in_ep[q] = want;
    }
    return true;
}

/* DPDK's per-thread epoll holds the interrupt of every queue we poll and
 * of no other (PMDs with RX interrupts). False when one would not go in. */
static bool rte_ep_sync(struct dpnd *d) {
    for (uint16_t q = 0; q < d->nq; q++) {
        bool want = polls_queue(d, q);
        if (want == d->q_in_rte[q])
            continue;
        if (dpn_port_intr_watch(d->port_id, q, want) != 0)
            return false;
        d->q_in_rte[q] = want;
    }
    return true;
}

static void idle(struct dpnd *d, uint64_t now) {
    struct dpn_worker *w = d->w;
    w->st.idle_sleeps++;
    if (d->empty_wakeups < DPND_EMPTY_WAKEUPS && idle_ep_sync(d)) {
        struct epoll_event ev[DPN_MAX_SLOTS + 1];
        uint32_t us = sleep_us(d, now, true);
        int rc = epoll_wait(d->idle_ep, ev, RTE_DIM(ev), (int)((us + 999) / 1000));
        bool ctl = false;
        for (int i = 0; i < rc; i++)
            ctl |= ev[i].data.u32 == DPND_CTL_EV;
        if (rc > 0 && !ctl) {
            d->st.rx_wakeups++;
            d->empty_wakeups++; /* the next pass reads the frames (got resets the count) */
        }
        if (d->empty_wakeups == DPND_EMPTY_WAKEUPS)
            empty_wakeups_warn(d);
        return;
    }
    if (w->caps.rx_intr && d->idle_ep < 0 && d->empty_wakeups < DPND_EMPTY_WAKEUPS &&
        d->silent_sleeps < DPND_SILENT_SLEEPS && rte_ep_sync(d)) {
        struct rte_epoll_event ev[DPN_MAX_SLOTS];
        bool armed = true;
        int rc = 0;
        uint32_t us = sleep_us(d, now, true);
        for (uint16_t q = 0; q < d->nq; q++)
            armed = armed && (!polls_queue(d, q) || dpn_port_intr_enable(d->port_id, q) == 0);
        if (armed)
            rc = rte_epoll_wait(RTE_EPOLL_PER_THREAD, ev, DPN_MAX_SLOTS, (int)((us + 999) / 1000));
        for (uint16_t q = 0; q < d->nq; q++)
            if (polls_queue(d, q))
                dpn_port_intr_disable(d->port_id, q);
        if (armed && rc == 0) {
            d->slept_out = true; /* run() tells whether a frame came meanwhile */
            return;
        }
        if (armed && rc > 0 && !ctl_woke(d, ev, rc)) {
            d->st.rx_wakeups++;
            d->silent_sleeps = 0;
        }
        if (armed && rc > 0 && (ctl_woke(d, ev, rc) || ++d->empty_wakeups < DPND_EMPTY_WAKEUPS))
            return; /* woken: the next pass reads the frames (got resets the count) */
        if (d->empty_wakeups == DPND_EMPTY_WAKEUPS)
            empty_wakeups_warn(d);
    }
    uint32_t us = sleep_us(d, now, false);
    /* tv_nsec must stay below one second (sleep_max_us may be 1000000). */
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* Ten times a second: is the port's kernel interface still there? A net_tap
 * whose interface was deleted receives nothing ever again: say so and stop.
 * (Moving that interface out of dpnetd's namespace looks the same: it is
 * the port dpnetd serves, keep it where dpnetd runs.) */
static void check_port(struct dpnd *d) {
    if (d->if_index == 0)
        return;
    char name[IF_NAMESIZE];
    if (if_indextoname(d->if_index, name) != NULL || errno != ENXIO)
        return;
    fprintf(stderr, "dpnetd: the interface of port %u (ifindex %u) is gone: stopping\n", d->port_id,
            d->if_index);
    d->w->stop = 1;
}

static void run(struct dpnd *d) {
    struct dpn_worker *w = d->w;
    uint64_t hz = rte_get_tsc_hz(), next_timer = 0, idle_since = 0;
    while (!w->stop) {
        uint64_t now = rte_rdtsc();
        uint16_t n = 0, most = 0;
        bool arp = false;
        if (d->tapsig != NULL)
            dpn_tapsig_before(d->tapsig);
        for (uint16_t q = 0; q < d->nq; q++) {
            uint16_t k = rx_queue(d, q, &arp);
            n += k;
            most = k > most ? k : most;
        }
        for (uint16_t q = 1; q < d->nq && !d->hw; q++)
            if (d->slots[q].state == DPN_SLOT_ATTACHED)
                n += ret_take(d, q, &arp);
        if (d->tapsig != NULL)
            dpn_tapsig_after(d->tapsig, most, DPN_BURST);
        if (d->exc_port >= 0)
            dpnd_exc_poll(d);
        if (arp)
            neigh_sync(d);
        if (now >= next_timer) {
            sys_check_timeouts();
            dpnd_ctl_poll(d);
            next_timer = now + w->tsc_per_ms;
        }
        if (now >= d->next_check_tsc) {
            dpnd_slots_check(d);
            dpnd_cap_check(d);
            dpnd_pools_reap(d);
            neigh_sync(d);
            publish(d);
            check_port(d);
            d->next_check_tsc = now + hz / 10;
        }
        if (w->tx_n > 0)
            dpn_tx_flush(w);
        if (n > 0)
            d->empty_wakeups = 0;
        if (unlikely(d->slept_out)) {
            d->slept_out = false;
            if (n > 0 && ++d->silent_sleeps == DPND_SILENT_SLEEPS)
                DPN_LOG(WARNING, app,
                        "port %u: its armed RX interrupt never fired while frames came: "
                        "napping poll.sleep_max_us (%u us) instead",
                        d->port_id, w->cfg.sleep_max_us);
        }
        if (n > 0 || w->cfg.poll == DPN_POLL_BUSY) {
            idle_since = 0;
        } else if (idle_since == 0) {
            idle_since = now;
        } else if (now - idle_since > w->spin_tsc) {
            idle(d, now);
            dpnd_ctl_poll(d);
        }
    }
}

/* ---- set-up ---- */

static int check_queues(struct dpnd *d, const struct dpn_config *cfg, uint16_t pid) {
    struct rte_eth_dev_info info;
    if (rte_eth_dev_info_get(pid, &info) != 0)
        return -DPN_ENODEV;
    uint16_t max = RTE_MIN(info.max_rx_queues, info.max_tx_queues);
    if (strstr(info.driver_name, "tap") != NULL && max > TAP_MAX_QUEUES)
        max = TAP_MAX_QUEUES;
    if (max > DPN_MAX_SLOTS)
        max = DPN_MAX_SLOTS;
    if (cfg->queues > max) {
        fprintf(stderr, "dpnetd: daemon.queues %u: port %u (%s) allows at most %u\n", cfg->queues,
                pid, info.driver_name, max);
        return -DPN_EINVAL;
    }
    d->nq = cfg->queues;
    return 0;
}

static int find_port_id(const struct dpn_config *cfg, uint16_t *pid) {
    if (cfg->device[0] == '\0') {
        RTE_ETH_FOREACH_DEV(*pid) return 0;
        return -DPN_ENODEV;
    }
    char name[RTE_ETH_NAME_MAX_LEN];
    dpn_port_dev_name(cfg->device, name, sizeof(name));
    return rte_eth_dev_get_port_by_name(name, pid) == 0 ? 0 : -DPN_ENODEV;
}

/* Rules where the port takes them: the kernel's on net_tap (an eBPF
 * program, any kernel with bpf()), else the hardware's (rte_flow); else
 * dpnetd reads every queue and steers in software. */
static int choose_steering(struct dpnd *d, enum dpn_steer_mode mode) {
    char kwhy[160] = "not tried", hwhy[160] = "not tried";
    d->rules = NULL;
    if ((mode == DPN_STEER_AUTO || mode == DPN_STEER_KERNEL) &&
        dpn_tun_steer_open(d->port_id, d->sw->ip_be, kwhy, sizeof(kwhy)) == 0)
        d->rules = &dpn_rules_tun;
    if (d->rules == NULL && (mode == DPN_STEER_AUTO || mode == DPN_STEER_HARDWARE) &&
        dpn_flow_probe(d->port_id, d->sw->ip_be, 1, hwhy, sizeof(hwhy)) == 0)
        d->rules = &dpn_rules_rte_flow;
    if (d->rules == &dpn_rules_rte_flow) {
        d->catch_all = dpn_flow_catch_all(d->port_id, 0, hwhy, sizeof(hwhy));
        if (d->catch_all == NULL)
            DPN_LOG(INFO, app,
                    "no catch-all rule (%s): unmatched frames go where the PMD puts them", hwhy);
    }
    d->hw = d->rules != NULL;
    if (mode == DPN_STEER_HARDWARE && !d->hw) {
        fprintf(stderr, "dpnetd: steering = hardware, but port %u takes no flow rules: %s\n",
                d->port_id, hwhy);
        return -DPN_ENOTSUP;
    }
    if (mode == DPN_STEER_KERNEL && !d->hw) {
        fprintf(stderr, "dpnetd: steering = kernel, but port %u cannot steer in the kernel: %s\n",
                d->port_id, kwhy);
        return -DPN_ENOTSUP;
    }
    if (mode == DPN_STEER_AUTO && !d->hw)
        DPN_LOG(INFO, app, "no kernel steering (%s), no flow rules (%s): steering in software",
                kwhy, hwhy);
    return 0;
}

static const char *steering_name(const struct dpnd *d) {
    return d->hw ? d->rules->name : "software";
}

/* All of the shared area from dpnetd's own state: at start, and every 100 ms
 * (whatever another process wrote there lasts that long at most). */
static void publish(struct dpnd *d) {
    struct dpn_shm *s = d->shm;
    struct dpn_worker *w = d->w;
    s->abi = DPN_ABI_VERSION;
    snprintf(s->version, sizeof(s->version), "%s", DPN_VERSION);
    s->daemon_pid = getpid();
    s->port_id = d->port_id;
    s->nb_queues = d->nq;
    s->mtu = w->caps.mtu;
    s->prefix_len = w->cfg.prefix_len;
    s->ip = rte_cpu_to_be_32(w->cfg.ip);
    s->gateway = rte_cpu_to_be_32(w->cfg.gateway);
    s->mac = w->mac;
    s->tx_ip_cksum = w->caps.tx_ip_cksum;
    s->tx_tcp_cksum = w->caps.tx_tcp_cksum;
    s->tx_udp_cksum = w->caps.tx_udp_cksum;
    s->rx_l4_cksum = w->caps.rx_l4_cksum;
    s->tx_multi_seg = w->caps.tx_multi_seg;
    s->tx_tso = w->caps.tx_tso;
    s->tx_tso_segs = w->caps.tx_tso_segs;
    s->tx_tso_l2 = w->caps.tx_tso_l2;
    s->rx_trust = w->caps.rx_trust;
    s->tx_none = w->caps.tx_none;
    s->hw_steering = d->hw;
    s->workers_poll = !d->hw;
    snprintf(s->steering, sizeof(s->steering), "%s", steering_name(d));
    char dev[RTE_ETH_NAME_MAX_LEN] = "";
    rte_eth_dev_get_name_by_port(d->port_id, dev);
    snprintf(s->port_dev, sizeof(s->port_dev), "%s", dev);
    s->port_pci = dpn_port_on_pci(d->port_id);
    struct rte_eth_stats es;
    if (rte_eth_stats_get(d->port_id, &es) == 0) {
        struct dpn_port_stats *ps = &s->port_stats;
        *ps = (struct dpn_port_stats){.ipackets = es.ipackets,
                                      .opackets = es.opackets,
                                      .ibytes = es.ibytes,
                                      .obytes = es.obytes,
                                      .imissed = es.imissed,
                                      .ierrors = es.ierrors,
                                      .oerrors = es.oerrors,
                                      .rx_nombuf = es.rx_nombuf};
        for (unsigned q = 0; q < DPN_MAX_SLOTS && q < RTE_ETHDEV_QUEUE_STAT_CNTRS; q++) {
            ps->q_ipackets[q] = es.q_ipackets[q];
            ps->q_opackets[q] = es.q_opackets[q];
        }
    }
    s->slots[0].state = DPN_SLOT_ATTACHED;
    s->slots[0].pid = getpid();
    s->slots[0].lcore = (int32_t)rte_lcore_id();
    snprintf(s->slots[0].app, sizeof(s->slots[0].app), "dpnetd");
    dpnd_publish_all(d);
    if (!d->stop)
        __atomic_store_n(&s->magic, DPN_SHM_MAGIC, __ATOMIC_RELEASE);
}

static void note_obj(struct rte_mempool *mp, void *arg, void *obj, unsigned idx) {
    (void)mp;
    (void)idx;
    struct dpnd *d = arg;
    d->objs[d->nobj++] = (uintptr_t)obj;
}

static int cmp_uptr(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* Every mbuf of our RX pool, sorted: what a return ring may hold. */
static int index_pool(struct dpnd *d) {
    d->objs = calloc(d->rx_pool->size, sizeof(*d->objs));
    if (d->objs == NULL)
        return -1;
    d->nobj = 0;
    rte_mempool_obj_iter(d->rx_pool, note_obj, d);
    qsort(d->objs, d->nobj, sizeof(*d->objs), cmp_uptr);
    return 0;
}

static int setup(struct dpnd *d, struct dpn_config *cfg) {
    uint16_t pid;
    d->exc_port = -1;
    d->ctl_fd = -1;
    d->ctl_ep = d->idle_ep = -1;
    for (unsigned k = 0; k < DPND_MAX_CONNS; k++)
        d->conns[k].fd = d->conns[k].pidfd = -1;
    if (find_port_id(cfg, &pid) != 0) {
        fprintf(stderr, "dpnetd: no DPDK port for '%s' (set port.device)\n", cfg->device);
        return -DPN_ENODEV;
    }
    int rc = check_queues(d, cfg, pid);
    if (rc != 0)
        return rc;
    const struct rte_memzone *mz =
        rte_memzone_reserve(DPN_SHM_NAME, sizeof(struct dpn_shm), (int)rte_socket_id(), 0);
    d->sw = calloc(1, sizeof(*d->sw)); /* private: it indexes our arrays */
    d->rx_pool = dpn_pool_create(DPN_RX_POOL, cfg->mbufs + (unsigned)d->nq * cfg->rx_desc,
                                 cfg->mbuf_cache, cfg->mtu, (int)rte_socket_id());
    if (mz == NULL || d->sw == NULL || d->rx_pool == NULL) {
        fprintf(stderr, "dpnetd: cannot allocate shared memory: %s (reserve more hugepages)\n",
                rte_strerror(rte_errno));
        return -DPN_ENOMEM;
    }
    d->shm = mz->addr;
    memset(d->shm, 0, sizeof(*d->shm));
    if (index_pool(d) != 0)
        return -DPN_ENOMEM;
    d->sw->ip_be = rte_cpu_to_be_32(cfg->ip);
    d->sw->flow_key = (uint32_t)rte_rand();
    if ((rc = dpnd_slots_init(d, cfg)) != 0 || (rc = dpn_worker_new(cfg, &d->w)) != 0)
        return rc;
    struct rte_mempool *pools[DPN_MAX_SLOTS];
    for (uint16_t q = 0; q < d->nq; q++)
        pools[q] = d->rx_pool; /* workers tag the ones they hold (hardware steering) */
    d->w->pool = d->rx_pool;
    /* Queue 0's interrupt goes into the per-thread epoll now, the others as
     * dpnetd polls them (rte_ep_sync): e1000's em has one for the port. */
    rc = dpn_port_open(cfg, d->nq, pools, 1, &d->port_id, &d->w->caps, &d->w->mac);
    if (rc != 0)
        return rc;
    struct rte_eth_dev_info info;
    if (rte_eth_dev_info_get(d->port_id, &info) == 0)
        d->if_index = info.if_index;
    d->tapsig = dpn_tapsig_open(d->port_id); /* net_tap: no signal per frame under load */
    if ((rc = choose_steering(d, cfg->steering)) != 0)
        return rc;
    publish(d);
    if ((rc = dpn_stack_start(d->w)) != 0 || (rc = dpnd_exc_open(d, cfg)) != 0 ||
        (rc = dpnd_ctl_init(d)) != 0)
        return rc;
    ctl_wake_register(d);
    idle_init(d);
    dpnd_telemetry_init(d);
    /* dpdk-dumpcap (Debian's dpdk package) asks us to copy what this
     * process receives and sends: queue 0's frames, not the workers'
     * (dpnetctl capture sees those). */
    if (rte_pdump_init() != 0)
        DPN_LOG(WARNING, app, "rte_pdump_init: %s (dpdk-dumpcap will not work)",
                rte_strerror(rte_errno));
    return 0;
}

static unsigned attached_slots(const struct dpnd *d, uint16_t *slot) {
    unsigned n = 0;
    for (uint16_t i = 1; i < d->nq; i++)
        if (d->slots[i].state == DPN_SLOT_ATTACHED)
            slot[n++] = i;
    return n;
}

/* Workers poll and send on the port's queues: closing it under them would
 * pull the rings from under their bursts. With their control connections
 * closed they stop touching it within a millisecond and say so (a worker
 * that lies only harms itself). Returns how many are still running without
 * having said so after DPND_PARK_WAIT_MS (stopped, or stuck in a callback);
 * their slots are marked in busy. */
#define DPND_PARK_WAIT_MS 1000
static unsigned wait_parked(const struct dpnd *d, const uint16_t *slot, unsigned n, bool *busy) {
    unsigned left = n;
    for (unsigned ms = 0; left > 0; ms++) {
        left = 0;
        for (unsigned k = 0; k < n; k++) {
            const struct dpnd_slot *ds = &d->slots[slot[k]];
            bool parked = __atomic_load_n(&d->shm->slots[slot[k]].wr.parked, __ATOMIC_ACQUIRE);
            busy[slot[k]] = !parked && !(kill(ds->pid, 0) != 0 && errno == ESRCH);
            left += busy[slot[k]];
        }
        if (left == 0 || ms == DPND_PARK_WAIT_MS)
            break;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return left;
}

static void help(const char *prog) {
    printf("usage: %s [EAL options] -- [options]\n"
           "\n"
           "dpnetd, the dpnet control daemon: the DPDK primary process that owns one port.\n"
           "It hands out RX/TX queue pairs, ports and lcore ids to workers (DPDK\n"
           "secondaries with the same --file-prefix), installs flow rules (kernel eBPF\n"
           "steering on net_tap, rte_flow on NICs that take them) or steers in software,\n"
           "and answers ARP and ICMP itself. dpnetctl looks inside it, dpnet-run starts\n"
           "workers; the README says how each part works.\n"
           "\n"
           "EAL options (DPDK's; %s -h lists them all): -l CPU (its lcore and CPU),\n"
           "--file-prefix NAME (workers use the same), --vdev DEVICE or -a PCI-ADDRESS\n"
           "(the port), --no-pci (virtual ports only).\n"
           "\n"
           "Options (each also a key of the config file):\n",
           prog, prog);
    dpn_config_help(stdout);
    printf("\n"
           "Signals: SIGINT or SIGTERM stop it: workers are told, the port is closed once\n"
           "they let go of it (at most 1 s; a worker that does not keeps it open).\n"
           "Files: its control socket dpnetd_ctl and telemetry socket in DPDK's runtime\n"
           "directory (/var/run/dpdk/PREFIX); /etc/dpnet/dpnetd.conf with the package's\n"
           "dpnetd.service. Exit status: 0 after a clean stop, 1 on a set-up error.\n");
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0) {
            help(argv[0]);
            return 0;
        }
    struct dpn_config cfg;
    int rc = dpn_setup_eal(&argc, &argv, &cfg, true);
    args = argv;
    if (rc != 0)
        return 1;
    if (argc > 1) {
        fprintf(stderr, "dpnetd: unknown option '%s'\n", argv[1]);
        rte_eal_cleanup();
        return 1;
    }
    if (setup(&D, &cfg) != 0) {
        rte_eal_cleanup();
        return 1;
    }
    char ip[16];
    uint32_t a = cfg.ip;
    snprintf(ip, sizeof(ip), "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
    printf("dpnetd: serving %s/%u on port %u with %u worker queues, %s steering\n", ip,
           cfg.prefix_len, D.port_id, D.nq - 1, steering_name(&D));
    fflush(stdout);
    run(&D);

    /* Workers notice their control connection closing and stop (dpnetctl the magic). */
    D.stop = 1;
    __atomic_store_n(&D.shm->magic, 0, __ATOMIC_RELEASE);
    uint16_t left[DPN_MAX_SLOTS];
    unsigned nleft = attached_slots(&D, left);
    dpnd_cap_fini(&D); /* the file complete before the connection that asked closes */
    dpnd_ctl_fini(&D);
    bool busy[DPN_MAX_SLOTS] = {false};
    unsigned nbusy = wait_parked(&D, left, nleft, busy);
    for (uint16_t i = 1; i < D.nq; i++) {
        if (busy[i])
            DPN_LOG(ERR, app,
                    "slot %u: %s (pid %d) still uses the port %u ms after dpnetd stopped: "
                    "leaving the port open under it",
                    i, D.slots[i].app, D.slots[i].pid, DPND_PARK_WAIT_MS);
        else if (D.slots[i].state == DPN_SLOT_ATTACHED)
            dpnd_slot_release(&D, i, "left behind at shutdown");
    }
    printf("dpnetd: rx %" PRIu64 " frames, %" PRIu64 " to itself, %" PRIu64
           " control requests (%" PRIu64 " rejected), %" PRIu64
           " ARP requests for workers (%" PRIu64 " held back)\n",
           D.st.rx_pkts, D.st.to_daemon, D.st.ctl_requests, D.st.ctl_rejected, D.st.arp_sent,
           D.st.arp_throttled);
    if (nbusy > 0)
        return 0; /* no port stop, no close, no EAL clean-up: they still use it all */
    if (D.exc_port >= 0)
        dpn_port_close((uint16_t)D.exc_port);
    dpn_tapsig_close(D.tapsig);
    if (D.rules == &dpn_rules_tun)
        dpn_tun_steer_close();
    dpn_flow_del(D.port_id, D.catch_all);
    rte_pdump_uninit();
    dpn_port_close(D.port_id);
    rte_eal_cleanup();
    return 0;
}
