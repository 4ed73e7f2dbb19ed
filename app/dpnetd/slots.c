/* Worker slots and port bindings: attach, bind, unbind, and getting
 * everything back when a worker leaves or dies (queue, ports, rules and the
 * mbufs it held). Control code: runs in dpnetd's main thread only. The
 * tables are dpnetd's own (dpnetd.h); shared memory gets copies. */
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
#include <rte_memzone.h>
#include <rte_random.h>

#include "buf.h"
#include "dpnetd.h"
#include "log.h"

#define RING_SIZE 2048

/* Slot i's TX pool; after a rebuild it gets a new name (the old pool may
 * still be in use: rebuild_pool), published in the slot for its worker. */
static void pool_name(char *buf, size_t n, uint16_t i, uint32_t gen) {
    if (gen == 0)
        snprintf(buf, n, "dpnd_q%u", i);
    else
        snprintf(buf, n, "dpnd_q%u.%u", i, gen);
}

static struct rte_mempool *make_pool(const struct dpn_config *cfg, uint16_t i, uint32_t gen) {
    char name[DPN_NAME];
    pool_name(name, sizeof(name), i, gen);
    return dpn_pool_create(name, cfg->mbufs, cfg->mbuf_cache, cfg->mtu, (int)rte_socket_id());
}

int dpnd_slots_init(struct dpnd *d, const struct dpn_config *cfg) {
    for (uint16_t i = 1; i < d->nq; i++) {
        struct dpnd_slot *ds = &d->slots[i];
        char name[DPN_NAME];
        snprintf(name, sizeof(name), "dpnd_ring%u", i);
        ds->ring =
            rte_ring_create(name, RING_SIZE, (int)rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
        snprintf(name, sizeof(name), "dpnd_ret%u", i);
        ds->ret =
            rte_ring_create(name, RING_SIZE, (int)rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
        ds->pool = make_pool(cfg, i, 0);
        snprintf(name, sizeof(name), DPN_CONNS_ZONE, i);
        ds->conns = rte_memzone_reserve(name, sizeof(struct dpn_conns), (int)rte_socket_id(), 0);
        ds->pidfd = -1;
        ds->wake_fd = -1;
        if (ds->ring == NULL || ds->ret == NULL || ds->pool == NULL || ds->conns == NULL) {
            DPN_LOG(ERR, app, "cannot create the ring or pool of slot %u: %s", i,
                    rte_strerror(rte_errno));
            return -DPN_ENOMEM;
        }
        /* Its header as created: any process may scribble on the shared one. */
        ds->ring_hdr = *ds->ring;
        ds->ring_head = 0;
        ds->ret_hdr = *ds->ret;
        ds->ret_tail = 0;
        ds->lcore = -1;
        ds->eph_lo = (uint16_t)(DPN_EPH_BASE + i * DPN_EPH_PER_SLOT);
        ds->eph_hi = (uint16_t)(ds->eph_lo + DPN_EPH_PER_SLOT - 1);
        dpnd_publish_slot(d, i);
    }
    return 0;
}

/* Back to the ring as created (size, mask, flags from our copy, empty). */
static void ring_reset(struct dpnd_slot *ds) {
    memcpy(ds->ring, &ds->ring_hdr, sizeof(ds->ring_hdr));
    ds->ring_head = 0;
    memcpy(ds->ret, &ds->ret_hdr, sizeof(ds->ret_hdr)); /* what it held there is tagged */
    ds->ret_tail = 0;
}

/* ---- publishing: private tables -> shared copies ---- */

void dpnd_publish_slot(struct dpnd *d, uint16_t i) {
    struct dpn_slot *s = &d->shm->slots[i];
    const struct dpnd_slot *ds = &d->slots[i];
    if (i == 0 || i >= d->nq)
        return;
    s->gen = ds->gen;
    s->pid = ds->pid;
    s->lcore = ds->lcore;
    s->queue = i;
    s->eph_lo = ds->eph_lo;
    s->eph_hi = ds->eph_hi;
    s->eph_rules = (uint8_t)((ds->eph_rule[0] != NULL) | (ds->eph_rule[1] != NULL) << 1);
    s->pad8 = 0;
    memcpy(s->app, ds->app, sizeof(s->app));
    snprintf(s->ring, sizeof(s->ring), "dpnd_ring%u", i);
    pool_name(s->pool, sizeof(s->pool), i, ds->pool_gen);
    s->ring_enq = ds->ring_enq;
    s->ring_full = ds->ring_full;
    __atomic_store_n(&s->conns_req, ds->conns_req, __ATOMIC_RELEASE);
    __atomic_store_n(&s->cap_gen, ds->cap_gen, __ATOMIC_RELEASE);
    __atomic_store_n(&s->state, ds->state, __ATOMIC_RELEASE);
}

void dpnd_publish_binding(struct dpnd *d, unsigned b) {
    struct dpn_binding *pb = &d->shm->bindings[b];
    const struct dpnd_binding *db = &d->bind[b];
    pb->hw = db->hw;
    pb->port = db->port;
    pb->slots = db->slots;
    pb->pad = 0;
    memcpy(pb->app, db->app, sizeof(pb->app));
    pb->hits = db->hits;
    pb->proto = db->proto;
}

void dpnd_publish_all(struct dpnd *d) {
    for (uint16_t i = 1; i < d->nq; i++)
        dpnd_publish_slot(d, i);
    for (unsigned b = 0; b <= DPN_MAX_BINDINGS; b++)
        dpnd_publish_binding(d, b);
    struct dpn_shm *s = d->shm;
    s->rx_pkts = d->st.rx_pkts;
    s->to_daemon = d->st.to_daemon;
    s->ctl_requests = d->st.ctl_requests;
    s->ctl_rejected = d->st.ctl_rejected;
    s->to_kernel = d->st.to_kernel;
    s->from_kernel = d->st.from_kernel;
    s->exc_drops = d->st.exc_drops;
    s->arp_sent = d->st.arp_sent;
    s->arp_throttled = d->st.arp_throttled;
    s->ctl_deferred = d->st.ctl_deferred;
    s->idle_sleeps = d->w->st.idle_sleeps;
    s->rx_wakeups = d->st.rx_wakeups;
    uint32_t n = 0;
    for (unsigned k = 0; k < DPND_MAX_CONNS; k++)
        n += d->conns[k].fd >= 0;
    s->ctl_conns = n;
}

static int pidfd_open(int pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Is lcore id taken: dpnetd's, an attached worker's, or held for a worker
 * about to attach (DPN_REQ_LCORE)? */
static bool lcore_taken(const struct dpnd *d, int id) {
    if (id == (int)rte_lcore_id())
        return true;
    for (uint16_t i = 1; i < d->nq; i++)
        if (d->slots[i].state != DPN_SLOT_FREE && d->slots[i].lcore == id)
            return true;
    for (unsigned k = 0; k < DPND_MAX_CONNS; k++) {
        const struct dpnd_conn *c = &d->conns[k];
        if (c->fd >= 0 && c->slot == 0 && c->lcore == id)
            return true;
    }
    return false;
}

int dpnd_free_lcore(const struct dpnd *d) {
    for (int id = 0; id < RTE_MAX_LCORE; id++)
        if (!lcore_taken(d, id))
            return id;
    return -1;
}

static bool same_secret(const uint8_t *a, const uint8_t *b) {
    uint8_t x = 0;
    for (unsigned i = 0; i < DPN_SECRET_LEN; i++)
        x |= a[i] ^ b[i];
    return x == 0;
}

/* A process joins a running application only as the same user and with the
 * application's secret (its first worker's, passed on by dpnet-run). */
static int may_join(const struct dpnd *d, uint32_t uid, const char *app, const uint8_t *secret,
                    char *why, size_t n) {
    for (uint16_t i = 1; i < d->nq; i++) {
        const struct dpnd_slot *o = &d->slots[i];
        if (o->state != DPN_SLOT_ATTACHED || strcmp(o->app, app) != 0)
            continue;
        if (o->uid != uid) {
            snprintf(why, n, "application '%s' belongs to another user (uid %u)", app, o->uid);
            return EPERM;
        }
        if (!same_secret(o->secret, secret)) {
            snprintf(why, n,
                     "application '%s' is already running (pid %d): a worker joins it only "
                     "with its secret (start the workers together with tools/dpnet-run, or "
                     "give each the same " DPN_APP_SECRET_ENV ")",
                     app, o->pid);
            return EPERM;
        }
        return 0;
    }
    return 0;
}

int dpnd_slot_attach(struct dpnd *d, int pid, uint32_t uid, int pidfd, int lcore, const char *app,
                     const uint8_t *secret, uint16_t *slot, uint64_t *token, char *why, size_t n) {
    uint16_t free_slot = 0;
    int err = 0;
    if (lcore == (int)rte_lcore_id()) {
        snprintf(why, n,
                 "lcore %d is dpnetd's own: give the worker another lcore id (e.g. "
                 "--lcores=%d@CPU)",
                 lcore, dpnd_free_lcore(d));
        err = EBUSY;
        goto out;
    }
    for (uint16_t i = 1; i < d->nq; i++) {
        const struct dpnd_slot *s = &d->slots[i];
        if (s->state == DPN_SLOT_FREE) {
            if (free_slot == 0)
                free_slot = i;
            continue;
        }
        if (s->pid == pid) {
            snprintf(why, n, "process %d is already attached (slot %u)", pid, i);
            err = EEXIST;
            goto out;
        }
        /* Mempool caches are per lcore id: two processes on one id corrupt them. */
        if (s->lcore == lcore) {
            snprintf(why, n,
                     "lcore %d is used by worker pid %d (%s): give each worker its own lcore "
                     "id, e.g. --lcores=%d@CPU",
                     lcore, s->pid, s->app, dpnd_free_lcore(d));
            err = EBUSY;
            goto out;
        }
    }
    if ((err = may_join(d, uid, app, secret, why, n)) != 0)
        goto out;
    if (free_slot == 0) {
        snprintf(why, n, "no queue left: all %u worker queues are taken (raise daemon.queues)",
                 d->nq - 1);
        err = ENOSPC;
        goto out;
    }
    if (pidfd < 0 && (pidfd = pidfd_open(pid)) < 0) {
        snprintf(why, n, "cannot watch pid %d: %s", pid, strerror(errno));
        err = ESRCH;
        goto out;
    }
    struct dpnd_slot *ds = &d->slots[free_slot];
    ring_reset(ds);
    ds->pidfd = pidfd;
    pidfd = -1;
    ds->attached_tsc = rte_rdtsc();
    ds->closed_tsc = 0;
    ds->gen = (ds->gen + 1) & 0xffffff;
    ds->pid = pid;
    ds->uid = uid;
    ds->lcore = lcore;
    snprintf(ds->app, sizeof(ds->app), "%s", app);
    memcpy(ds->secret, secret, DPN_SECRET_LEN);
    ds->nbind = 0;
    memset(&d->shm->slots[free_slot].wr, 0, sizeof(d->shm->slots[free_slot].wr));
    ds->ring_enq = ds->ring_full = 0;
    uint64_t tok = 0;
    if (getrandom(&tok, sizeof(tok), 0) != sizeof(tok))
        tok = rte_rand(); /* never expected; still unguessable enough for a local peer */
    *token = ds->token = tok | 1;
    ds->state = DPN_SLOT_ATTACHED;
    dpnd_publish_slot(d, free_slot);
    d->sw->eph_slot[free_slot] = (uint8_t)free_slot;
    for (int k = 0; k < 2 && d->hw; k++) {
        char why[128];
        ds->eph_rule[k] = d->rules->add_range(
            d->port_id, d->sw->ip_be, k ? DPN_PROTO_UDP : DPN_PROTO_TCP, ds->eph_lo,
            (uint16_t) ~(DPN_EPH_PER_SLOT - 1), free_slot, why, sizeof(why));
        if (ds->eph_rule[k] == NULL)
            DPN_LOG(INFO, app, "slot %u: ports %u-%u/%s steered in software (%s)", free_slot,
                    ds->eph_lo, ds->eph_hi, k ? "udp" : "tcp", why);
    }
    *slot = free_slot;
    DPN_LOG(INFO, app, "slot %u: %s (pid %d, uid %u, lcore %d) attached, queue %u, ports %u-%u",
            free_slot, app, pid, uid, lcore, free_slot, ds->eph_lo, ds->eph_hi);
out:
    if (pidfd >= 0)
        close(pidfd);
    return err;
}

/* ---- bindings ---- */

static uint8_t find_binding(const struct dpnd *d, uint8_t proto, uint16_t port) {
    return d->sw->idx[proto == DPN_PROTO_UDP][port];
}

/* Make the steering of binding b match its worker set: a rule if the
 * PMD takes it, otherwise the software table. */
static void steer_binding(struct dpnd *d, uint8_t b) {
    struct dpnd_binding *db = &d->bind[b];
    struct dpn_sw_target *t = &d->sw->tgt[b];
    uint16_t queues[DPN_MAX_SLOTS];
    unsigned nq = 0;
    for (uint16_t i = 1; i < d->nq; i++)
        if (db->slots & (1u << i))
            queues[nq++] = i;
    if (d->hw) {
        char why[128];
        d->rules->del(d->port_id, db->rule);
        db->rule = nq == 0 ? NULL
                           : d->rules->add(d->port_id, d->sw->ip_be, db->proto, db->port, queues,
                                           nq, why, sizeof(why));
        if (nq > 0 && db->rule == NULL)
            DPN_LOG(WARNING, app,
                    "port %u/%s: hardware refused the rule (%s); steering in "
                    "software",
                    db->port, db->proto == DPN_PROTO_TCP ? "tcp" : "udp", why);
        db->hw = db->rule != NULL;
    }
    /* A rule to one worker gives way to software when a second joins: the
     * connections it carried never met the software table, and stay with
     * that worker while it lives (steer.h). */
    if (db->hw && nq == 1)
        db->rule_slot = (uint8_t)queues[0];
    else if (db->rule_slot != 0 && !(db->slots & (1u << db->rule_slot)))
        db->rule_slot = 0;
    t->owner = db->hw ? 0 : db->rule_slot;
    /* The software entry stays valid either way: frames that reach queue 0
     * before a rule takes effect still find their worker. */
    for (unsigned i = 0; i < nq; i++)
        t->slot[i] = (uint8_t)queues[i];
    t->n = (uint8_t)nq;
    dpnd_publish_binding(d, b);
}

int dpnd_bind(struct dpnd *d, uint16_t slot, uint8_t proto, uint16_t port, char *why, size_t n) {
    struct dpnd_slot *s = &d->slots[slot];
    const char *pname = proto == DPN_PROTO_TCP ? "tcp" : "udp";
    if (port >= DPN_EPH_BASE) {
        snprintf(why, n,
                 "port %u/%s is in the ephemeral range %u-65535 that dpnetd hands to "
                 "workers for outgoing connections",
                 port, pname, DPN_EPH_BASE);
        return EACCES;
    }
    if (port < 1024 && s->uid != 0) { /* as Linux: privileged ports */
        snprintf(why, n, "port %u/%s is below 1024: only uid 0 may bind it (worker uid %u)", port,
                 pname, s->uid);
        return EACCES;
    }
    uint8_t b = find_binding(d, proto, port);
    if (b != 0 && strcmp(d->bind[b].app, s->app) != 0) {
        struct dpnd_binding *db = &d->bind[b];
        int owner = 0;
        for (uint16_t i = 1; i < d->nq; i++)
            if (db->slots & (1u << i))
                owner = d->slots[i].pid;
        snprintf(why, n, "port %u/%s is held by application '%s' (pid %d)", port, pname, db->app,
                 owner);
        return EADDRINUSE;
    }
    if (b != 0 && (d->bind[b].slots & (1u << slot))) {
        snprintf(why, n, "port %u/%s is already bound by this worker", port, pname);
        return EADDRINUSE;
    }
    if (s->nbind >= DPND_BIND_PER_SLOT) {
        snprintf(why, n, "this worker holds %u ports already: the most one worker may hold",
                 s->nbind);
        return ENOSPC;
    }
    if (b != 0) {
        struct dpnd_binding *db = &d->bind[b];
        db->slots |= (uint16_t)(1u << slot);
        s->nbind++;
        steer_binding(d, b);
        DPN_LOG(INFO, app, "port %u/%s -> %s (+ slot %u, %u workers, %s)", port, pname, s->app,
                slot, d->sw->tgt[b].n, db->hw ? d->rules->name : "software");
        return 0;
    }
    unsigned k = 1;
    while (k <= DPN_MAX_BINDINGS && d->bind[k].proto != 0)
        k++;
    if (k > DPN_MAX_BINDINGS) {
        snprintf(why, n, "too many bound ports (%d)", DPN_MAX_BINDINGS);
        return ENOSPC;
    }
    b = (uint8_t)k;
    struct dpnd_binding *db = &d->bind[b];
    memset(db, 0, sizeof(*db));
    db->port = port;
    db->slots = (uint16_t)(1u << slot);
    memcpy(db->app, s->app, sizeof(db->app));
    db->proto = proto;
    s->nbind++;
    steer_binding(d, b);
    __atomic_store_n(&d->sw->idx[proto == DPN_PROTO_UDP][port], b, __ATOMIC_RELEASE);
    DPN_LOG(INFO, app, "port %u/%s -> %s (slot %u, %s)", port, pname, s->app, slot,
            db->hw ? d->rules->name : "software");
    return 0;
}

static void drop_from_binding(struct dpnd *d, uint8_t b, uint16_t slot) {
    struct dpnd_binding *db = &d->bind[b];
    db->slots &= (uint16_t) ~(1u << slot);
    d->slots[slot].nbind--;
    if (db->slots == 0) {
        __atomic_store_n(&d->sw->idx[db->proto == DPN_PROTO_UDP][db->port], 0, __ATOMIC_RELEASE);
        db->proto = 0;
    }
    steer_binding(d, b);
}

int dpnd_unbind(struct dpnd *d, uint16_t slot, uint8_t proto, uint16_t port, char *why, size_t n) {
    uint8_t b = find_binding(d, proto, port);
    if (b == 0 || !(d->bind[b].slots & (1u << slot))) {
        snprintf(why, n, "port %u is not bound by this worker", port);
        return ENOENT;
    }
    drop_from_binding(d, b, slot);
    return 0;
}

/* An outgoing connection from port of slot's range, which no range rule
 * covers: a rule for that port, replacing the oldest of the slot's last
 * DPND_PORT_RULES. Whatever has no rule (refused, replaced) still reaches
 * the worker through dpnetd's software steering of the range. */
void dpnd_port_rule(struct dpnd *d, uint16_t slot, uint8_t proto, uint16_t port) {
    struct dpnd_slot *ds = &d->slots[slot];
    int k = proto == DPN_PROTO_UDP;
    if (d->rules == NULL || ds->eph_rule[k] != NULL)
        return;
    for (unsigned j = 0; j < DPND_PORT_RULES; j++)
        if (ds->port_rule[k][j] != NULL && ds->port_rule_port[k][j] == port)
            return;
    unsigned j = ds->port_rule_next[k]++ % DPND_PORT_RULES;
    d->rules->del(d->port_id, ds->port_rule[k][j]);
    char why[128];
    ds->port_rule[k][j] =
        d->rules->add(d->port_id, d->sw->ip_be, proto, port, &slot, 1, why, sizeof(why));
    ds->port_rule_port[k][j] = port;
    if (ds->port_rule[k][j] == NULL)
        DPN_LOG(DEBUG, app, "slot %u: port %u/%s steered in software (%s)", slot, port,
                k ? "udp" : "tcp", why);
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
static void flush_cache(struct rte_mempool *mp, int lcore) { /* lcore: ours, checked at attach */
    if (mp != NULL && lcore >= 0 && lcore < RTE_MAX_LCORE && mp->cache_size > 0)
        rte_mempool_cache_flush(&mp->local_cache[lcore], mp);
}

static bool pidfd_exited(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return fd >= 0 && poll(&p, 1, 0) > 0;
}

/* The worker's TX pool is its alone: a new one replaces it whole. */
/* Retired pools whose mbufs have all come back are freed. */
void dpnd_pools_reap(struct dpnd *d) {
    for (uint16_t i = 1; i < d->nq; i++) {
        struct dpnd_slot *ds = &d->slots[i];
        for (unsigned k = 0; k < DPND_RETIRED; k++) {
            struct rte_mempool *mp = ds->retired[k];
            if (mp != NULL && rte_mempool_avail_count(mp) == mp->size) {
                rte_mempool_free(mp);
                ds->retired[k] = NULL;
            }
        }
    }
}

/* A worker gone with mbufs of its TX pool out: a fresh pool for the next
 * one. The old pool is not freed while any of its mbufs is out: a PMD
 * without tx_done_cleanup or queue restart (e1000) keeps sent mbufs in its
 * TX ring and frees them later, even at the port's stop; freed memory
 * there would crash dpnetd. It is retired (freed by dpnd_pools_reap once
 * whole), and the new pool has a name of its own. */
static void rebuild_pool(struct dpnd *d, uint16_t i) {
    struct dpnd_slot *ds = &d->slots[i];
    unsigned n = ds->pool->size, avail = rte_mempool_avail_count(ds->pool);
    rte_eth_tx_done_cleanup(d->port_id, i, 0); /* PMDs that keep sent mbufs: let go */
    avail = rte_mempool_avail_count(ds->pool);
    if (avail == n)
        return; /* all back (RX queues post dpnetd's RX pool, with rules too) */
    dpnd_pools_reap(d);
    unsigned k = 0;
    while (k < DPND_RETIRED && ds->retired[k] != NULL)
        k++;
    if (k == DPND_RETIRED) {
        DPN_LOG(WARNING, app,
                "slot %u: pool not rebuilt (%u of %u mbufs out; %u older pools "
                "still wait for theirs)",
                i, n - avail, n, DPND_RETIRED);
        return;
    }
    struct dpn_config cfg = d->w->cfg;
    cfg.mbufs = n;
    struct rte_mempool *mp = make_pool(&cfg, i, ds->pool_gen + 1);
    if (mp == NULL) {
        DPN_LOG(ERR, app, "slot %u: cannot rebuild its pool: %s", i, rte_strerror(rte_errno));
        return;
    }
    ds->retired[k] = ds->pool;
    ds->pool = mp;
    ds->pool_gen++;
    DPN_LOG(INFO, app, "slot %u: pool rebuilt as %s (%u of %u mbufs were out)", i, mp->name,
            n - avail, n);
}

void dpnd_slot_release(struct dpnd *d, uint16_t i, const char *reason) {
    struct dpnd_slot *ds = &d->slots[i];
    ds->state = DPN_SLOT_RECLAIM;
    dpnd_publish_slot(d, i);
    dpnd_cap_sync(d);
    d->sw->eph_slot[i] = 0;
    for (int k = 0; k < 2 && d->rules != NULL; k++) {
        d->rules->del(d->port_id, ds->eph_rule[k]);
        ds->eph_rule[k] = NULL;
        for (unsigned j = 0; j < DPND_PORT_RULES; j++) {
            d->rules->del(d->port_id, ds->port_rule[k][j]);
            ds->port_rule[k][j] = NULL;
        }
    }
    for (unsigned b = 1; b <= DPN_MAX_BINDINGS; b++)
        if (d->bind[b].proto != 0 && (d->bind[b].slots & (1u << i)))
            drop_from_binding(d, (uint8_t)b, i);
    if (d->rules != NULL)
        d->rules->forget_queue(d->port_id, i);
    dpn_sw_flows_forget(d->sw, i);
    dpnd_slot_drain(d, i);
    /* Its process gone, perhaps inside rx_burst or tx_burst: the queues
     * start afresh where the PMD can (before the TX pool is counted: the
     * TX ring's mbufs go back to it). */
    if (pidfd_exited(ds->pidfd) || (kill(ds->pid, 0) != 0 && errno == ESRCH)) {
        int rc = dpn_port_queue_restart(d->port_id, i);
        if (rc != 0 && rc != -ENOTSUP)
            DPN_LOG(WARNING, app, "slot %u: cannot restart its queues: %s", i, rte_strerror(-rc));
    }
    /* Frames still queued for it and frames it held carry its tag. */
    ring_reset(ds);
    flush_cache(d->rx_pool, ds->lcore);
    flush_cache(ds->pool, ds->lcore);
    struct reclaim r = {.tag = dpn_tag(i, ds->gen)};
    rte_mempool_obj_iter(d->rx_pool, reclaim_mbuf, &r);
    rebuild_pool(d, i);
    if (ds->pidfd >= 0)
        close(ds->pidfd);
    ds->pidfd = -1;
    if (ds->wake_fd >= 0)
        close(ds->wake_fd);
    ds->wake_fd = -1;
    ds->token = 0;
    if (ds->conn != NULL)
        ds->conn->slot = 0;
    ds->conn = NULL;
    ds->closed_tsc = 0;
    DPN_LOG(INFO, app, "slot %u: %s (pid %d) %s; %u mbufs recovered", i, ds->app, ds->pid, reason,
            r.freed);
    ds->pid = 0;
    ds->uid = 0;
    ds->lcore = -1;
    ds->app[0] = '\0';
    memset(ds->secret, 0, sizeof(ds->secret));
    ds->nbind = 0;
    ds->state = DPN_SLOT_FREE;
    dpnd_publish_slot(d, i);
}

/* Ten times a second: which workers died? A worker whose control connection
 * closed is released when its process is gone too (a kill -9 closes the
 * socket a moment before the process is reaped), or after 200 ms. */
void dpnd_slots_check(struct dpnd *d) {
    uint64_t now = rte_rdtsc(), hz = rte_get_tsc_hz();
    for (uint16_t i = 1; i < d->nq; i++) {
        struct dpnd_slot *ds = &d->slots[i];
        if (ds->state != DPN_SLOT_ATTACHED)
            continue;
        if (pidfd_exited(ds->pidfd))
            dpnd_slot_release(d, i, "died");
        else if (ds->closed_tsc != 0 && now - ds->closed_tsc > hz / 5)
            dpnd_slot_release(d, i, "closed its control connection");
    }
}
