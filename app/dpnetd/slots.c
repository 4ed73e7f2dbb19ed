/* Worker slots and port bindings: attach, bind, unbind, and getting
 * everything back when a worker leaves or dies (queue, ports, rules and the
 * mbufs it held). Control code: runs in dpnetd's main thread only. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_random.h>

#include "buf.h"
#include "dpnetd.h"
#include "log.h"

#define RING_SIZE 2048

static void pool_name(char *buf, size_t n, uint16_t i) {
    snprintf(buf, n, "dpnd_q%u", i);
}

static struct rte_mempool *make_pool(const struct dpn_config *cfg, uint16_t i) {
    char name[DPN_NAME];
    pool_name(name, sizeof(name), i);
    return dpn_pool_create(name, cfg->mbufs, cfg->mbuf_cache, cfg->mtu, (int)rte_socket_id());
}

int dpnd_slots_init(struct dpnd *d, const struct dpn_config *cfg) {
    for (uint16_t i = 1; i < d->nq; i++) {
        struct dpn_slot *s = &d->shm->slots[i];
        struct dpnd_slot *ds = &d->slots[i];
        char name[DPN_NAME];
        snprintf(name, sizeof(name), "dpnd_ring%u", i);
        ds->ring =
            rte_ring_create(name, RING_SIZE, (int)rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
        ds->pool = make_pool(cfg, i);
        ds->pidfd = -1;
        if (ds->ring == NULL || ds->pool == NULL) {
            DPN_LOG(ERR, app, "cannot create the ring or pool of slot %u: %s", i,
                    rte_strerror(rte_errno));
            return -DPN_ENOMEM;
        }
        snprintf(s->ring, sizeof(s->ring), "%s", name);
        pool_name(s->pool, sizeof(s->pool), i);
        s->queue = i;
        s->eph_lo = (uint16_t)(DPN_EPH_BASE + i * DPN_EPH_PER_SLOT);
        s->eph_hi = (uint16_t)(s->eph_lo + DPN_EPH_PER_SLOT - 1);
    }
    return 0;
}

static int pidfd_open(int pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int free_lcore(const struct dpnd *d) {
    int id = 0;
    for (bool used = true; used; id += used) {
        used = id == (int)rte_lcore_id();
        for (uint16_t i = 1; i < d->nq && !used; i++)
            used = d->shm->slots[i].state != DPN_SLOT_FREE && d->shm->slots[i].lcore == id;
    }
    return id;
}

int dpnd_slot_attach(struct dpnd *d, int pid, int lcore, const char *app, uint16_t *slot,
                     uint64_t *token, char *why, size_t n) {
    uint16_t free_slot = 0;
    if (lcore == (int)rte_lcore_id()) {
        snprintf(why, n,
                 "lcore %d is dpnetd's own: give the worker another lcore id (e.g. "
                 "--lcores=%d@CPU)",
                 lcore, lcore + 1);
        return EBUSY;
    }
    for (uint16_t i = 1; i < d->nq; i++) {
        const struct dpn_slot *s = &d->shm->slots[i];
        if (s->state == DPN_SLOT_FREE) {
            if (free_slot == 0)
                free_slot = i;
            continue;
        }
        if (s->pid == pid) {
            snprintf(why, n, "process %d is already attached (slot %u)", pid, i);
            return EEXIST;
        }
        /* Mempool caches are per lcore id: two processes on one id corrupt them. */
        if (s->lcore == lcore) {
            snprintf(why, n,
                     "lcore %d is used by worker pid %d (%s): give each worker its own lcore "
                     "id, e.g. --lcores=%d@CPU",
                     lcore, s->pid, s->app, free_lcore(d));
            return EBUSY;
        }
    }
    if (free_slot == 0) {
        snprintf(why, n, "no queue left: all %u worker queues are taken (raise daemon.queues)",
                 d->nq - 1);
        return ENOSPC;
    }
    int fd = pidfd_open(pid);
    if (fd < 0) {
        snprintf(why, n, "cannot watch pid %d: %s", pid, strerror(errno));
        return ESRCH;
    }
    struct dpn_slot *s = &d->shm->slots[free_slot];
    struct dpnd_slot *ds = &d->slots[free_slot];
    rte_ring_reset(ds->ring);
    ds->pidfd = fd;
    ds->attached_tsc = rte_rdtsc();
    s->gen = (s->gen + 1) & 0xffffff;
    s->pid = pid;
    s->lcore = lcore;
    snprintf(s->app, sizeof(s->app), "%s", app);
    memset(&s->wr, 0, sizeof(s->wr));
    s->ring_enq = s->ring_full = 0;
    uint64_t tok = 0;
    if (getrandom(&tok, sizeof(tok), 0) != sizeof(tok))
        tok = rte_rand(); /* never expected; still unguessable enough for a local peer */
    *token = ds->token = tok | 1;
    __atomic_store_n(&s->state, DPN_SLOT_ATTACHED, __ATOMIC_RELEASE);
    d->sw->eph_slot[free_slot] = (uint8_t)free_slot;
    for (int k = 0; k < 2 && d->hw; k++) {
        char why[128];
        ds->eph_rule[k] =
            dpn_flow_add_range(d->port_id, d->shm->ip, k ? DPN_PROTO_UDP : DPN_PROTO_TCP, s->eph_lo,
                               (uint16_t) ~(DPN_EPH_PER_SLOT - 1), s->queue, why, sizeof(why));
        if (ds->eph_rule[k] == NULL)
            DPN_LOG(INFO, app, "slot %u: ports %u-%u/%s steered in software (%s)", free_slot,
                    s->eph_lo, s->eph_hi, k ? "udp" : "tcp", why);
    }
    *slot = free_slot;
    DPN_LOG(INFO, app, "slot %u: %s (pid %d, lcore %d) attached, queue %u, ports %u-%u", free_slot,
            app, pid, lcore, s->queue, s->eph_lo, s->eph_hi);
    return 0;
}

/* ---- bindings ---- */

static uint8_t find_binding(const struct dpnd *d, uint8_t proto, uint16_t port) {
    return d->sw->idx[proto == DPN_PROTO_UDP][port];
}

/* Make the steering of binding b match its worker set: hardware rule if the
 * PMD takes it, otherwise the software table. */
static void steer_binding(struct dpnd *d, uint8_t b) {
    struct dpn_binding *pb = &d->shm->bindings[b];
    struct dpn_sw_target *t = &d->sw->tgt[b];
    uint16_t queues[DPN_MAX_SLOTS];
    unsigned nq = 0;
    for (uint16_t i = 1; i < d->nq; i++)
        if (pb->slots & (1u << i))
            queues[nq++] = i;
    if (d->hw) {
        char why[128];
        dpn_flow_del(d->port_id, d->bind[b].rule);
        d->bind[b].rule = nq == 0 ? NULL
                                  : dpn_flow_add(d->port_id, d->shm->ip, pb->proto, pb->port,
                                                 queues, nq, why, sizeof(why));
        if (nq > 0 && d->bind[b].rule == NULL)
            DPN_LOG(WARNING, app,
                    "port %u/%s: hardware refused the rule (%s); steering in "
                    "software",
                    pb->port, pb->proto == DPN_PROTO_TCP ? "tcp" : "udp", why);
        pb->hw = d->bind[b].rule != NULL;
    }
    /* The software entry stays valid either way: frames that reach queue 0
     * before a rule takes effect still find their worker. */
    for (unsigned i = 0; i < nq; i++)
        t->slot[i] = (uint8_t)queues[i];
    __atomic_store_n(&t->n, (uint8_t)nq, __ATOMIC_RELEASE);
}

int dpnd_bind(struct dpnd *d, uint16_t slot, uint8_t proto, uint16_t port, char *why, size_t n) {
    const struct dpn_slot *s = &d->shm->slots[slot];
    const char *pname = proto == DPN_PROTO_TCP ? "tcp" : "udp";
    if (port >= DPN_EPH_BASE) {
        snprintf(why, n,
                 "port %u/%s is in the ephemeral range %u-65535 that dpnetd hands to "
                 "workers for outgoing connections",
                 port, pname, DPN_EPH_BASE);
        return EACCES;
    }
    uint8_t b = find_binding(d, proto, port);
    if (b != 0) {
        struct dpn_binding *pb = &d->shm->bindings[b];
        if (strcmp(pb->app, s->app) != 0) {
            int owner = 0;
            for (uint16_t i = 1; i < d->nq; i++)
                if (pb->slots & (1u << i))
                    owner = d->shm->slots[i].pid;
            snprintf(why, n, "port %u/%s is held by application '%s' (pid %d)", port, pname,
                     pb->app, owner);
            return EADDRINUSE;
        }
        if (pb->slots & (1u << slot)) {
            snprintf(why, n, "port %u/%s is already bound by this worker", port, pname);
            return EADDRINUSE;
        }
        pb->slots |= (uint16_t)(1u << slot);
        steer_binding(d, b);
        DPN_LOG(INFO, app, "port %u/%s -> %s (+ slot %u, %u workers, %s)", port, pname, s->app,
                slot, d->sw->tgt[b].n, pb->hw ? "hardware rule" : "software");
        return 0;
    }
    unsigned k = 1;
    while (k <= DPN_MAX_BINDINGS && d->shm->bindings[k].proto != 0)
        k++;
    if (k > DPN_MAX_BINDINGS) {
        snprintf(why, n, "too many bound ports (%d)", DPN_MAX_BINDINGS);
        return ENOSPC;
    }
    b = (uint8_t)k;
    struct dpn_binding *pb = &d->shm->bindings[b];
    memset(pb, 0, sizeof(*pb));
    pb->port = port;
    pb->slots = (uint16_t)(1u << slot);
    memcpy(pb->app, s->app, sizeof(pb->app));
    pb->proto = proto;
    steer_binding(d, b);
    __atomic_store_n(&d->sw->idx[proto == DPN_PROTO_UDP][port], b, __ATOMIC_RELEASE);
    DPN_LOG(INFO, app, "port %u/%s -> %s (slot %u, %s)", port, pname, s->app, slot,
            pb->hw ? "hardware rule" : "software");
    return 0;
}

static void drop_from_binding(struct dpnd *d, uint8_t b, uint16_t slot) {
    struct dpn_binding *pb = &d->shm->bindings[b];
    pb->slots &= (uint16_t) ~(1u << slot);
    steer_binding(d, b);
    if (pb->slots == 0) {
        __atomic_store_n(&d->sw->idx[pb->proto == DPN_PROTO_UDP][pb->port], 0, __ATOMIC_RELEASE);
        pb->proto = 0;
    }
}

int dpnd_unbind(struct dpnd *d, uint16_t slot, uint8_t proto, uint16_t port, char *why, size_t n) {
    uint8_t b = find_binding(d, proto, port);
    if (b == 0 || !(d->shm->bindings[b].slots & (1u << slot))) {
        snprintf(why, n, "port %u is not bound by this worker", port);
        return ENOENT;
    }
    drop_from_binding(d, b, slot);
    return 0;
}

/* ---- leaving and dying ---- */

struct reclaim {
    uint32_t tag;
    unsigned freed;
};

static void reclaim_mbuf(struct rte_mempool *mp, void *arg, void *obj, unsigned idx) {
    (void)mp;
    (void)idx;
    struct reclaim *r = arg;
    struct rte_mbuf *m = obj;
    struct dpn_pbuf *dp = (struct dpn_pbuf *)rte_mbuf_to_priv(m);
    if (dp->tag != r->tag)
        return;
    dp->tag = 0;
    m->next = NULL;
    m->nb_segs = 1;
    rte_mbuf_refcnt_set(m, 1);
    rte_pktmbuf_free_seg(m);
    r->freed++;
}

/* What the worker freed last sits in its lcore's cache of each pool; nobody
 * else uses that lcore id (checked at attach), so the daemon may empty it. */
static void flush_cache(struct rte_mempool *mp, int lcore) {
    if (mp != NULL && lcore >= 0 && lcore < RTE_MAX_LCORE && mp->cache_size > 0)
        rte_mempool_cache_flush(&mp->local_cache[lcore], mp);
}

/* The worker's TX pool is its alone: a new one replaces it whole. */
static void rebuild_pool(struct dpnd *d, uint16_t i) {
    struct dpnd_slot *ds = &d->slots[i];
    unsigned n = ds->pool->size, avail = rte_mempool_avail_count(ds->pool);
    rte_eth_tx_done_cleanup(d->port_id, i, 0); /* PMDs that keep sent mbufs: let go */
    if (d->hw || avail == n)
        return; /* all back; with hardware steering the RX queue posts this pool's mbufs */
    struct dpn_config cfg = d->w->cfg;
    cfg.mbufs = n;
    rte_mempool_free(ds->pool);
    ds->pool = make_pool(&cfg, i);
    if (ds->pool == NULL)
        DPN_LOG(ERR, app, "slot %u: cannot rebuild its pool: %s", i, rte_strerror(rte_errno));
    else
        DPN_LOG(INFO, app, "slot %u: pool rebuilt (%u of %u mbufs were held)", i, n - avail, n);
}

void dpnd_slot_release(struct dpnd *d, uint16_t i, const char *reason) {
    struct dpn_slot *s = &d->shm->slots[i];
    struct dpnd_slot *ds = &d->slots[i];
    __atomic_store_n(&s->state, DPN_SLOT_RECLAIM, __ATOMIC_RELEASE);
    d->sw->eph_slot[i] = 0;
    for (int k = 0; k < 2; k++) {
        dpn_flow_del(d->port_id, ds->eph_rule[k]);
        ds->eph_rule[k] = NULL;
    }
    for (unsigned b = 1; b <= DPN_MAX_BINDINGS; b++)
        if (d->shm->bindings[b].proto != 0 && (d->shm->bindings[b].slots & (1u << i)))
            drop_from_binding(d, (uint8_t)b, i);
    /* Frames still queued for it and frames it held carry its tag. */
    rte_ring_reset(ds->ring);
    flush_cache(d->rx_pool, s->lcore);
    flush_cache(ds->pool, s->lcore);
    struct reclaim r = {.tag = dpn_tag(i, s->gen)};
    rte_mempool_obj_iter(d->rx_pool, reclaim_mbuf, &r);
    rebuild_pool(d, i);
    if (ds->pidfd >= 0)
        close(ds->pidfd);
    ds->pidfd = -1;
    ds->token = 0;
    DPN_LOG(INFO, app, "slot %u: %s (pid %d) %s; %u mbufs recovered", i, s->app, s->pid, reason,
            r.freed);
    s->pid = 0;
    s->lcore = -1;
    s->app[0] = '\0';
    __atomic_store_n(&s->state, DPN_SLOT_FREE, __ATOMIC_RELEASE);
}

/* Ten times a second: which workers died? */
void dpnd_slots_check(struct dpnd *d) {
    for (uint16_t i = 1; i < d->nq; i++) {
        struct dpnd_slot *ds = &d->slots[i];
        if (d->shm->slots[i].state != DPN_SLOT_ATTACHED || ds->pidfd < 0)
            continue;
        struct pollfd p = {.fd = ds->pidfd, .events = POLLIN};
        if (poll(&p, 1, 0) > 0)
            dpnd_slot_release(d, i, "died");
    }
}
