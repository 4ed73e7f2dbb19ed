/* dpnetd's control IPC over rte_mp. The rte_mp thread only copies each
 * request onto a ring; the main thread validates and answers it, so all
 * daemon state has one writer. Workers are not trusted: every field is
 * checked (size, ABI, type, slot, token, the sender's pid, strings, ranges)
 * and anything wrong gets an error reply, never a crash. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>

#include "lwip/etharp.h"

#include "dpnetd.h"
#include "log.h"

#define CTL_RING 256

struct ctl_item {
    struct rte_mp_msg msg;
    char peer[PATH_MAX];
};

static struct rte_ring *ctl_ring;

/* rte_mp thread: no daemon state touched here. */
static int on_msg(const struct rte_mp_msg *msg, const void *peer) {
    struct ctl_item *it = malloc(sizeof(*it));
    if (it == NULL)
        return 0;
    it->msg = *msg;
    snprintf(it->peer, sizeof(it->peer), "%s", (const char *)peer);
    if (rte_ring_mp_enqueue(ctl_ring, it) != 0)
        free(it); /* the worker times out and says so */
    return 0;
}

int dpnd_ctl_init(struct dpnd *d) {
    ctl_ring = rte_ring_create("dpnd_ctl", CTL_RING, (int)rte_socket_id(), RING_F_SC_DEQ);
    if (ctl_ring == NULL)
        return -DPN_ENOMEM;
    d->ctl_ring = ctl_ring;
    if (rte_mp_action_register(DPN_MP_ACTION, on_msg) != 0) {
        DPN_LOG(ERR, app, "cannot register the control IPC: %s", rte_strerror(rte_errno));
        return -DPN_EIO;
    }
    return 0;
}

void dpnd_ctl_fini(struct dpnd *d) {
    rte_mp_action_unregister(DPN_MP_ACTION);
    void *it;
    while (rte_ring_dequeue(d->ctl_ring, &it) == 0)
        free(it);
}

/* The sender's pid, from the name of its rte_mp socket ("mp_socket_<pid>_<n>"). */
static int peer_pid(const char *peer) {
    const char *p = strstr(peer, "mp_socket_");
    if (p == NULL)
        return -1;
    char *end;
    long pid = strtol(p + 10, &end, 10);
    return (*end == '_' && pid > 0 && pid <= INT_MAX) ? (int)pid : -1;
}

static bool good_string(const char *s, size_t n) {
    size_t len = strnlen(s, n);
    if (len == 0 || len == n)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return false;
    return true;
}

static int fail(struct dpn_rep *rep, int err, const char *fmt, const char *arg) {
    snprintf(rep->msg, sizeof(rep->msg), fmt, arg);
    return err;
}

static int do_attach(struct dpnd *d, const struct dpn_req *rq, int pid, struct dpn_rep *rep) {
    if (!good_string(rq->attach.version, sizeof(rq->attach.version)) ||
        strcmp(rq->attach.version, DPN_VERSION) != 0) {
        char v[17];
        snprintf(v, sizeof(v), "%s",
                 good_string(rq->attach.version, 16) ? rq->attach.version : "?");
        snprintf(rep->msg, sizeof(rep->msg), "version mismatch: dpnetd %s, worker %s", DPN_VERSION,
                 v);
        return EPROTONOSUPPORT;
    }
    if (!good_string(rq->attach.app, sizeof(rq->attach.app)))
        return fail(rep, EINVAL, "%s", "bad application name");
    if (rq->attach.pid != pid)
        return fail(rep, EPERM, "%s", "pid does not match the sender");
    if (rq->attach.lcore < 0 || rq->attach.lcore >= RTE_MAX_LCORE)
        return fail(rep, EINVAL, "%s", "lcore id out of range");
    uint16_t slot;
    uint64_t token;
    int err = dpnd_slot_attach(d, pid, rq->attach.lcore, rq->attach.app, &slot, &token, rep->msg,
                               sizeof(rep->msg));
    if (err == 0) {
        rep->slot = slot;
        rep->queue = d->shm->slots[slot].queue;
        rep->token = token;
    }
    return err;
}

static int do_resolve(struct dpnd *d, uint32_t ip_be) {
    ip4_addr_t a;
    ip4_addr_set_u32(&a, ip_be);
    if (ip_be == 0 ||
        !ip4_addr_netcmp(&a, netif_ip4_addr(&d->w->netif), netif_ip4_netmask(&d->w->netif)))
        return EINVAL; /* workers resolve next hops only: on our subnet */
    return etharp_query(&d->w->netif, &a, NULL) == ERR_OK ? 0 : EAGAIN;
}

/* Validate and carry out one request; returns 0 or a positive errno. */
int dpnd_ctl_handle(struct dpnd *d, const struct rte_mp_msg *msg, const char *peer,
                    struct dpn_rep *rep, bool *reply) {
    const struct dpn_req *rq = (const struct dpn_req *)msg->param;
    int pid = peer_pid(peer);
    *reply = true;
    if (msg->len_param != (int)sizeof(*rq))
        return fail(rep, EINVAL, "%s", "malformed request (wrong size)");
    if (rq->abi != DPN_ABI_VERSION)
        return fail(rep, EPROTONOSUPPORT, "%s", "ABI version mismatch: update the worker");
    if (pid < 0)
        return fail(rep, EPERM, "%s", "unknown sender");
    if (rq->type == DPN_REQ_ATTACH)
        return do_attach(d, rq, pid, rep);
    if (rq->type <= DPN_REQ_ATTACH || rq->type >= DPN_REQ_MAX)
        return fail(rep, EINVAL, "%s", "unknown request type");
    const struct dpn_slot *s = rq->slot < d->nq ? &d->shm->slots[rq->slot] : NULL;
    if (rq->slot == 0 || s == NULL || s->state != DPN_SLOT_ATTACHED || s->pid != pid ||
        d->slots[rq->slot].pidfd < 0 || rq->token == 0)
        return fail(rep, EPERM, "%s", "not attached");
    /* The token lives only in dpnetd's private memory (shared memory is readable by
     * every secondary): another process cannot speak for this worker. */
    if (rq->token != d->slots[rq->slot].token)
        return fail(rep, EPERM, "%s", "bad token");
    switch (rq->type) {
    case DPN_REQ_BIND:
    case DPN_REQ_UNBIND:
        if (rq->bind.proto != DPN_PROTO_TCP && rq->bind.proto != DPN_PROTO_UDP)
            return fail(rep, EINVAL, "%s", "protocol must be TCP or UDP");
        if (rq->bind.port == 0)
            return fail(rep, EINVAL, "%s", "port 0");
        return rq->type == DPN_REQ_BIND ? dpnd_bind(d, rq->slot, rq->bind.proto, rq->bind.port,
                                                    rep->msg, sizeof(rep->msg))
                                        : dpnd_unbind(d, rq->slot, rq->bind.proto, rq->bind.port,
                                                      rep->msg, sizeof(rep->msg));
    case DPN_REQ_CONNECT:
        if (rq->bind.port < s->eph_lo || rq->bind.port > s->eph_hi)
            return fail(rep, EACCES, "%s", "local port outside this worker's range");
        return 0; /* the worker's whole range is steered to it already */
    case DPN_REQ_RESOLVE:
        *reply = false; /* one-way: the worker polls the neighbor table */
        return do_resolve(d, rq->resolve.ip);
    case DPN_REQ_DETACH:
        dpnd_slot_release(d, rq->slot, "detached");
        return 0;
    case DPN_REQ_STATS:
        snprintf(rep->msg, sizeof(rep->msg),
                 "slot %u queue %u: %" PRIu64 " frames steered to it, %" PRIu64
                 " dropped on a full ring; dpnetd: %" PRIu64 " frames received",
                 rq->slot, s->queue, s->ring_enq, s->ring_full, d->shm->rx_pkts);
        return 0;
    }
    return EINVAL;
}

void dpnd_ctl_poll(struct dpnd *d) {
    struct ctl_item *it;
    while (rte_ring_sc_dequeue(d->ctl_ring, (void **)&it) == 0) {
        struct rte_mp_msg out;
        struct dpn_rep rep;
        bool reply;
        memset(&out, 0, sizeof(out));
        memset(&rep, 0, sizeof(rep));
        d->shm->ctl_requests++;
        rep.err = dpnd_ctl_handle(d, &it->msg, it->peer, &rep, &reply);
        /* A hostile worker must not flood the log: the first rejections, then a sample. */
        if (rep.err != 0 && (++d->shm->ctl_rejected <= 20 || d->shm->ctl_rejected % 1000 == 0)) {
            DPN_LOG(NOTICE, app, "request from %s rejected: %s", it->peer,
                    rep.msg[0] ? rep.msg : strerror(rep.err));
        }
        if (reply) {
            snprintf(out.name, sizeof(out.name), "%s", DPN_MP_ACTION);
            out.len_param = sizeof(rep);
            memcpy(out.param, &rep, sizeof(rep));
            rte_mp_reply(&out, it->peer);
        }
        free(it);
    }
}
