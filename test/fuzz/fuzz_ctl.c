/* libFuzzer harness of dpnetd's control request validation: arbitrary
 * rte_mp messages from arbitrary senders into dpnd_ctl_handle
 * (app/dpnetd/ctl.c) and through it the slot and binding code
 * (app/dpnetd/slots.c), against a daemon set up as dpnetd's setup() does
 * minus the port: shared area, steering table, rings and pools of 3 worker
 * slots, and its lwIP (a worker on net_null) for RESOLVE.
 *
 * Input: messages, each [sel] [peer] [len?] [param: sizeof(struct dpn_req)
 * bytes, zeros past the input's end]. sel bits 0-1, the sender's socket
 * path: 0 ".../mp_socket_<our pid>_<n>" ([n] byte), 1 the same with our
 * parent's pid (alive, another process), 2 a pid from 4 bytes, 3 a literal
 * path ([len] + up to 63 bytes). Bits 2-6 repair what a random message
 * rarely gets right, so the deeper checks are reached: 2 the token of the
 * slot it names, 3 the ABI version, 4 the length (else [len] byte), 5 the
 * attach pid (= the pid the path names), 6 the version string.
 *
 * After every message the reply must be a string and the published
 * bindings must match the steering table; after each input every slot is
 * released and nothing may be left: bindings, table entries, pidfds, mbufs. */
#include <stdint.h>
#include <stdio.h>
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

static void setup(void) {
    struct dpnd *d = &D;
    d->w = fz_init("fuzz_ctl");
    d->port_id = d->w->port_id;
    d->nq = NQ;
    d->rx_queues = NQ;
    d->exc_port = -1;
    d->hw = false;
    d->shm = rte_zmalloc("fz_shm", sizeof(*d->shm), RTE_CACHE_LINE_SIZE);
    d->sw = rte_zmalloc("fz_sw", sizeof(*d->sw), RTE_CACHE_LINE_SIZE);
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
    for (uint16_t i = 1; i < NQ; i++)
        s->slots[i].lcore = -1;
}

/* The published bindings and the classifier's table say the same. */
static void check_bindings(void) {
    const struct dpnd *d = &D;
    for (unsigned b = 1; b <= DPN_MAX_BINDINGS; b++) {
        const struct dpn_binding *pb = &d->shm->bindings[b];
        if (pb->proto == 0)
            continue;
        if (pb->proto != DPN_PROTO_TCP && pb->proto != DPN_PROTO_UDP)
            FZ_DIE("binding %u: protocol %u", b, pb->proto);
        if (d->sw->idx[pb->proto == DPN_PROTO_UDP][pb->port] != b)
            FZ_DIE("binding %u (port %u) is not in the steering table", b, pb->port);
        if (pb->slots == 0 || (pb->slots & 1))
            FZ_DIE("binding %u: workers %#x", b, pb->slots);
        const struct dpn_sw_target *t = &d->sw->tgt[b];
        if (t->n != __builtin_popcount(pb->slots))
            FZ_DIE("binding %u: %u targets for workers %#x", b, t->n, pb->slots);
        for (unsigned i = 0; i < t->n; i++)
            if (t->slot[i] >= NQ || !(pb->slots & (1u << t->slot[i])) ||
                d->shm->slots[t->slot[i]].state != DPN_SLOT_ATTACHED)
                FZ_DIE("binding %u: target slot %u is not one of its attached workers", b,
                       t->slot[i]);
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
    char peer[128];
    int self = getpid();
    int pid = self;
    switch (sel & 3) {
    case 0:
    case 1:
        pid = (sel & 3) == 0 ? self : getppid();
        take(p, n, &b, 1);
        snprintf(peer, sizeof(peer), "/var/run/dpdk/fz/mp_socket_%d_%u", pid, b);
        break;
    case 2: {
        uint8_t x[4] = {0};
        take(p, n, x, 4);
        pid = (int)((uint32_t)x[0] << 24 | (uint32_t)x[1] << 16 | (uint32_t)x[2] << 8 | x[3]);
        snprintf(peer, sizeof(peer), "/var/run/dpdk/fz/mp_socket_%d_1", pid);
        break;
    }
    case 3: {
        pid = -1; /* whatever the path says */
        take(p, n, &b, 1);
        size_t k = take(p, n, peer, b % 64);
        peer[k] = '\0';
        break;
    }
    }
    struct rte_mp_msg msg;
    memset(&msg, 0, sizeof(msg));
    snprintf(msg.name, sizeof(msg.name), "%s", DPN_MP_ACTION);
    msg.len_param = (int)sizeof(struct dpn_req);
    if (!(sel & 0x10)) {
        take(p, n, &b, 1);
        msg.len_param = b;
    }
    take(p, n, msg.param, sizeof(struct dpn_req));
    struct dpn_req *rq = (struct dpn_req *)msg.param;
    if (sel & 0x04)
        rq->token = D.slots[rq->slot % DPN_MAX_SLOTS].token;
    if (sel & 0x08)
        rq->abi = DPN_ABI_VERSION;
    if (sel & 0x20)
        rq->attach.pid = pid >= 0 ? pid : self;
    if (sel & 0x40)
        snprintf(rq->attach.version, sizeof(rq->attach.version), "%s", DPN_VERSION);

    struct dpn_rep rep;
    bool reply = false;
    memset(&rep, 0, sizeof(rep));
    int err = dpnd_ctl_handle(&D, &msg, peer, &rep, &reply);
    if (err < 0)
        FZ_DIE("negative error %d", err);
    if (strnlen(rep.msg, sizeof(rep.msg)) == sizeof(rep.msg))
        FZ_DIE("reply message not terminated");
    if (!reply && !(rq->type == DPN_REQ_RESOLVE && msg.len_param == (int)sizeof(*rq)))
        FZ_DIE("no reply to a request of type %u", rq->type);
    if (err == 0 && rq->type == DPN_REQ_ATTACH) {
        const struct dpn_slot *s = rep.slot < NQ ? &D.shm->slots[rep.slot] : NULL;
        if (s == NULL || rep.slot == 0 || s->state != DPN_SLOT_ATTACHED ||
            (pid >= 0 && s->pid != pid) || rep.token == 0 || rep.token != D.slots[rep.slot].token ||
            D.slots[rep.slot].pidfd < 0)
            FZ_DIE("attach accepted into a bad slot %u", rep.slot);
    }
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
    while (size > 0)
        message(&data, &size);
    for (uint16_t i = 1; i < NQ; i++)
        if (D.shm->slots[i].state != DPN_SLOT_FREE)
            dpnd_slot_release(&D, i, "fuzz run over");
    for (unsigned b = 1; b <= DPN_MAX_BINDINGS; b++)
        if (D.shm->bindings[b].proto != 0)
            FZ_DIE("binding %u (port %u) left after every worker left", b, D.shm->bindings[b].port);
    if (memcmp(D.sw->idx, zero_idx, sizeof(zero_idx)) != 0)
        FZ_DIE("steering table entries left after every worker left");
    for (uint16_t i = 0; i < DPN_MAX_SLOTS; i++)
        if (D.sw->eph_slot[i] != 0 || D.slots[i].token != 0 ||
            (i > 0 && i < NQ && D.slots[i].pidfd >= 0))
            FZ_DIE("slot %u not released", i);
    if (rte_mempool_avail_count(D.rx_pool) != base_rx)
        FZ_DIE("daemon RX pool: %u free, %u at the baseline", rte_mempool_avail_count(D.rx_pool),
               base_rx);
    etharp_cleanup_netif(&D.w->netif);
    unit_tx_drop(D.w);
    fz_base_check(D.w, &base);
    return 0;
}
