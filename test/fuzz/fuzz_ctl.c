/* libFuzzer harness of dpnetd's control request validation: arbitrary
 * requests on arbitrary control connections into dpnd_ctl_handle
 * (app/dpnetd/ctl.c) and through it the slot and binding code
 * (app/dpnetd/slots.c), against a daemon set up as dpnetd's setup() does
 * minus the port and the socket: shared area, private steering table, rings
 * and pools of 3 worker slots, and its lwIP (a worker on net_null) for
 * RESOLVE.
 *
 * Input: messages, each [sel] [pid?] [len?] [param: sizeof(struct dpn_req)
 * bytes, zeros past the input's end]. sel bits 0-1, the connection (its pid
 * and uid are what the kernel would say): 0 our pid, uid 0; 1 our parent's
 * pid (alive, another process), uid 0; 2 a pid from 4 bytes ([pid], taken
 * while that connection is not attached), uid 0; 3 our pid, uid 65534.
 * Bits 2-7 repair what a random message rarely gets right, so the deeper
 * checks are reached: 2 the token of the connection's slot, 3 the ABI
 * version, 4 the length (else [len] byte), 5 the attach pid (= the
 * connection's), 6 the version string, 7 the slot (= the connection's).
 *
 * After every message the reply must be a string, the published bindings
 * must match dpnetd's private ones and the steering table; after each input
 * every slot is released and nothing may be left: bindings, table entries,
 * pidfds, connections' slots, mbufs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_malloc.h>

#include "lwip/etharp.h"

#include "buf.h"
#include "dpnetd.h"
#include "fuzz_common.h"

#define NQ 4

static struct dpnd D;
static struct fz_base base;
static unsigned base_rx;
static uint8_t zero_idx[2][65536];

/* main.c's: a released slot's frames steered again. Here nothing puts
 * frames on the rings, and what a ring holds is reclaimed by its tag. */
void dpnd_slot_drain(struct dpnd *d, uint16_t slot) {
    (void)d;
    (void)slot;
}

/* capture.c's: a capture takes a descriptor out of the sender's process
 * (pidfd_getfd) and writes a file; the fuzzer's senders are made up, so
 * the requests are refused here and capture.c is tested end to end
 * (t_capture.sh). */
int dpnd_cap_request(struct dpnd *d, struct dpnd_conn *c, const struct dpn_req *rq,
                     struct dpn_rep *rep) {
    (void)d, (void)c, (void)rq, (void)rep;
    return EOPNOTSUPP;
}
int dpnd_cap_stop_request(struct dpnd *d, const struct dpnd_conn *c, struct dpn_rep *rep) {
    (void)d, (void)c, (void)rep;
    return ENOENT;
}
void dpnd_cap_conn_closed(struct dpnd *d, const struct dpnd_conn *c) {
    (void)d, (void)c;
}
void dpnd_cap_sync(struct dpnd *d) {
    (void)d;
}

static void setup(void) {
    struct dpnd *d = &D;
    d->w = fz_init("fuzz_ctl");
    d->port_id = d->w->port_id;
    d->nq = NQ;
    d->exc_port = -1;
    d->hw = false;
    d->shm = rte_zmalloc("fz_shm", sizeof(*d->shm), RTE_CACHE_LINE_SIZE);
    d->sw = calloc(1, sizeof(*d->sw)); /* private, as in dpnetd */
    d->ctl_fd = -1;
    for (unsigned k = 0; k < DPND_MAX_CONNS; k++)
        d->conns[k].fd = d->conns[k].pidfd = -1;
    struct dpn_config cfg = d->w->cfg;
    cfg.mbufs = 1024; /* small: a release walks the RX pool */
    cfg.mbuf_cache = 32;
    d->rx_pool = dpn_pool_create("fz_rx", cfg.mbufs, cfg.mbuf_cache, cfg.mtu, (int)rte_socket_id());
    if (d->shm == NULL || d->sw == NULL || d->rx_pool == NULL || dpnd_slots_init(d, &cfg) != 0)
        FZ_DIE("cannot set up the daemon's memory");
    /* main.c: publish() */
    struct dpn_shm *s = d->shm;
    s->abi = DPN_ABI_VERSION;
    snprintf(s->version, sizeof(s->version), "%s", DPN_VERSION);
    s->daemon_pid = getpid();
    s->nb_queues = d->nq;
    s->ip = rte_cpu_to_be_32(d->w->cfg.ip);
    s->slots[0].state = DPN_SLOT_ATTACHED;
    s->slots[0].pid = getpid();
    s->slots[0].lcore = (int32_t)rte_lcore_id();
    d->sw->ip_be = s->ip;
}

/* The connections of one input: fresh (no slot, no rate history). */
static void conns_reset(void) {
    int pids[4] = {getpid(), getppid(), getpid() + 1000000, getpid()};
    uint32_t uids[4] = {0, 0, 0, 65534};
    for (unsigned k = 0; k < 4; k++)
        D.conns[k] =
            (struct dpnd_conn){.fd = -1, .pid = pids[k], .uid = uids[k], .pidfd = -1, .lcore = -1};
    memset(D.arp_recent, 0, sizeof(D.arp_recent));
}

/* dpnetd's bindings, their published copies and the classifier's table say the same. */
static void check_bindings(void) {
    const struct dpnd *d = &D;
    for (unsigned b = 1; b <= DPN_MAX_BINDINGS; b++) {
        const struct dpnd_binding *db = &d->bind[b];
        const struct dpn_binding *pb = &d->shm->bindings[b];
        if (pb->proto != db->proto || pb->port != db->port || pb->slots != db->slots)
            FZ_DIE("binding %u: published copy differs", b);
        if (db->proto == 0)
            continue;
        if (db->proto != DPN_PROTO_TCP && db->proto != DPN_PROTO_UDP)
            FZ_DIE("binding %u: protocol %u", b, db->proto);
        if (d->sw->idx[db->proto == DPN_PROTO_UDP][db->port] != b)
            FZ_DIE("binding %u (port %u) is not in the steering table", b, db->port);
        if (db->slots == 0 || (db->slots & 1))
            FZ_DIE("binding %u: workers %#x", b, db->slots);
        const struct dpn_sw_target *t = &d->sw->tgt[b];
        if (t->n != __builtin_popcount(db->slots))
            FZ_DIE("binding %u: %u targets for workers %#x", b, t->n, db->slots);
        for (unsigned i = 0; i < t->n; i++)
            if (t->slot[i] >= NQ || !(db->slots & (1u << t->slot[i])) ||
                d->slots[t->slot[i]].state != DPN_SLOT_ATTACHED ||
                strcmp(d->slots[t->slot[i]].app, db->app) != 0)
                FZ_DIE("binding %u: target slot %u is not one of its attached workers", b,
                       t->slot[i]);
        if (db->port < 1024)
            for (unsigned i = 0; i < t->n; i++)
                if (d->slots[t->slot[i]].uid != 0)
                    FZ_DIE("port %u bound by uid %u", db->port, d->slots[t->slot[i]].uid);
    }
}

/* Take the next len bytes, or fewer at the end of the input. */
static size_t take(const uint8_t **p, size_t *n, void *dst, size_t len) {
    size_t k = len < *n ? len : *n;
    memcpy(dst, *p, k);
    *p += k;
    *n -= k;
    return k;
}

static void message(const uint8_t **p, size_t *n) {
    uint8_t sel = 0, b = 0;
    take(p, n, &sel, 1);
    struct dpnd_conn *c = &D.conns[sel & 3];
    if ((sel & 3) == 2) {
        uint8_t x[4] = {0};
        take(p, n, x, 4);
        if (c->slot == 0)
            c->pid =
                (int)((uint32_t)x[0] << 24 | (uint32_t)x[1] << 16 | (uint32_t)x[2] << 8 | x[3]);
    }
    uint8_t param[sizeof(struct dpn_req)];
    size_t len = sizeof(param);
    memset(param, 0, sizeof(param));
    if (!(sel & 0x10)) {
        take(p, n, &b, 1);
        len = b;
    }
    take(p, n, param, sizeof(param));
    struct dpn_req *rq = (struct dpn_req *)param;
    if (sel & 0x04)
        rq->token = D.slots[c->slot % DPN_MAX_SLOTS].token;
    if (sel & 0x08)
        rq->abi = DPN_ABI_VERSION;
    if (sel & 0x20)
        rq->attach.pid = c->pid;
    if (sel & 0x40)
        snprintf(rq->attach.version, sizeof(rq->attach.version), "%s", DPN_VERSION);
    if (sel & 0x80)
        rq->slot = c->slot;

    struct dpn_rep rep;
    bool reply = false;
    memset(&rep, 0, sizeof(rep));
    uint16_t type = rq->type;
    int err = dpnd_ctl_handle(&D, c, param, len, &rep, &reply); /* reads <= sizeof(param) */
    if (err < 0)
        FZ_DIE("negative error %d", err);
    if (strnlen(rep.msg, sizeof(rep.msg)) == sizeof(rep.msg))
        FZ_DIE("reply message not terminated");
    if (!reply && !(type == DPN_REQ_RESOLVE && len == sizeof(*rq)))
        FZ_DIE("no reply to a request of type %u", type);
    if (err == 0 && type == DPN_REQ_ATTACH) {
        const struct dpnd_slot *s = rep.slot < NQ ? &D.slots[rep.slot] : NULL;
        if (s == NULL || rep.slot == 0 || s->state != DPN_SLOT_ATTACHED || s->pid != c->pid ||
            s->uid != c->uid || c->slot != rep.slot || s->conn != c || rep.token == 0 ||
            rep.token != s->token || s->pidfd < 0)
            FZ_DIE("attach accepted into a bad slot %u", rep.slot);
    }
    for (unsigned k = 0; k < 4; k++)
        if (D.conns[k].slot != 0 && D.slots[D.conns[k].slot].conn != &D.conns[k])
            FZ_DIE("connection %u holds slot %u, which is not its", k, D.conns[k].slot);
    check_bindings();
    unit_tx_drop(D.w); /* RESOLVE's ARP requests */
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    setup();
    fz_base_take(D.w, &base);
    base_rx = rte_mempool_avail_count(D.rx_pool);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    conns_reset();
    while (size > 0)
        message(&data, &size);
    for (uint16_t i = 1; i < NQ; i++)
        if (D.slots[i].state != DPN_SLOT_FREE)
            dpnd_slot_release(&D, i, "fuzz run over");
    for (unsigned b = 1; b <= DPN_MAX_BINDINGS; b++)
        if (D.bind[b].proto != 0 || D.shm->bindings[b].proto != 0)
            FZ_DIE("binding %u (port %u) left after every worker left", b, D.bind[b].port);
    for (unsigned k = 0; k < 4; k++)
        if (D.conns[k].slot != 0)
            FZ_DIE("connection %u still holds slot %u", k, D.conns[k].slot);
    if (memcmp(D.sw->idx, zero_idx, sizeof(zero_idx)) != 0)
        FZ_DIE("steering table entries left after every worker left");
    for (uint16_t i = 0; i < DPN_MAX_SLOTS; i++)
        if (D.sw->eph_slot[i] != 0 || D.slots[i].token != 0 || D.slots[i].nbind != 0 ||
            D.slots[i].conn != NULL || (i > 0 && i < NQ && D.slots[i].pidfd >= 0))
            FZ_DIE("slot %u not released", i);
    if (rte_mempool_avail_count(D.rx_pool) != base_rx)
        FZ_DIE("daemon RX pool: %u free, %u at the baseline", rte_mempool_avail_count(D.rx_pool),
               base_rx);
    etharp_cleanup_netif(&D.w->netif);
    unit_tx_drop(D.w);
    fz_base_check(D.w, &base);
    return 0;
}
