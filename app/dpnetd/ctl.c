/* dpnetd's control channel: an AF_UNIX SOCK_SEQPACKET socket of its own in
 * the EAL runtime directory (DPN_CTL_SOCKET), polled without blocking from
 * the main thread, so all daemon state has one writer and no queue of
 * requests lives anywhere another process could reach.
 *
 * Why not DPDK's rte_mp: its sender is named by the path of a socket the
 * sender bound (any pid can be claimed), its messages carry descriptors,
 * and its requests would need a queue shared with rte_mp's thread. Here the
 * kernel says who is behind each connection (SO_PEERCRED: pid, uid;
 * SO_PEERPIDFD where it has it), one connection is one worker (quotas, rate
 * limits and round-robin service are per connection), descriptors sent
 * along are never received (recvmsg without a control buffer: the kernel
 * drops them), and a connection closing says the worker is gone.
 *
 * Workers are not trusted: every field is checked (size, ABI, type, the
 * connection's own slot, token, pid, strings, ranges) and anything wrong
 * gets an error reply, never a crash. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_jhash.h>

#include "lwip/etharp.h"

#include "dpnetd.h"
#include "log.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5 */
#endif

#define CTL_RATE 1000    /* requests per second, per connection */
#define CTL_BURST 64     /* ... taken at once */
#define CTL_POLL_MAX 64  /* requests served per poll, all connections together */
#define CTL_ACCEPT_MAX 8 /* connections accepted per poll */
#define ARP_RATE 20      /* ARP requests per second one worker may cause */
#define ARP_BURST 10
#define ARP_PER_IP_MS 100 /* one ARP request per next hop per 100 ms, whoever asks */
#define LOG_FIRST                                                                                  \
    20 /* rejections logged before sampling (a hostile worker must not flood the log) */

static bool log_sampled(uint64_t *count) {
    ++*count;
    return *count <= LOG_FIRST || *count % 1000 == 0;
}

/* Generic cell rate algorithm: may one more event happen now, at rate per
 * second with a burst of burst? Takes it if so. */
static bool gcra(uint64_t *tat, uint64_t now, unsigned rate, unsigned burst) {
    uint64_t interval = rte_get_tsc_hz() / rate, t = *tat > now ? *tat : now;
    if (t - now > interval * (burst - 1))
        return false;
    *tat = t + interval;
    return true;
}

static bool gcra_ready(uint64_t tat, uint64_t now, unsigned rate, unsigned burst) {
    return gcra(&tat, now, rate, burst);
}

/* ---- the socket ---- */

static int ep_add(int ep, int fd) {
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

int dpnd_ctl_init(struct dpnd *d) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int n = snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s", rte_eal_get_runtime_dir(),
                     DPN_CTL_SOCKET);
    if (n < 0 || (size_t)n >= sizeof(a.sun_path)) {
        fprintf(stderr, "dpnetd: runtime directory %s: path too long for a socket\n",
                rte_eal_get_runtime_dir());
        return -DPN_EINVAL;
    }
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -DPN_EIO;
    /* A socket left by a dpnetd that died: EAL made sure we are the only
     * primary of this prefix, so nobody else serves it. */
    unlink(a.sun_path);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 64) != 0) {
        fprintf(stderr, "dpnetd: cannot listen on %s: %s\n", a.sun_path, strerror(errno));
        close(fd);
        return -DPN_EIO;
    }
    snprintf(d->ctl_path, sizeof(d->ctl_path), "%s", a.sun_path);
    d->ctl_fd = fd;
    /* Readable when a worker connects or asks: dpnetd's idle sleep wakes on it. */
    d->ctl_ep = epoll_create1(EPOLL_CLOEXEC);
    if (d->ctl_ep >= 0 && ep_add(d->ctl_ep, fd) != 0) {
        close(d->ctl_ep);
        d->ctl_ep = -1;
    }
    return 0;
}

static void conn_close(struct dpnd *d, struct dpnd_conn *c) {
    dpnd_cap_conn_closed(d, c);
    if (c->slot != 0) {
        /* dpnd_slots_check releases it: as "died" once the process is gone
         * (a kill -9 closes the socket just before), else after 200 ms. */
        struct dpnd_slot *ds = &d->slots[c->slot];
        ds->conn = NULL;
        ds->closed_tsc = rte_rdtsc();
    }
    if (c->fd >= 0)
        close(c->fd);
    if (c->pidfd >= 0)
        close(c->pidfd);
    c->fd = c->pidfd = -1;
    c->slot = 0;
    c->lcore = -1;
}

void dpnd_ctl_fini(struct dpnd *d) {
    for (unsigned k = 0; k < DPND_MAX_CONNS; k++)
        if (d->conns[k].fd >= 0)
            conn_close(d, &d->conns[k]);
    if (d->ctl_fd >= 0) {
        close(d->ctl_fd);
        unlink(d->ctl_path);
    }
    if (d->ctl_ep >= 0)
        close(d->ctl_ep);
    d->ctl_fd = d->ctl_ep = -1;
}

/* A free place for a new connection: a free entry, else the oldest one that
 * never attached (a flood of idle connections cannot lock workers out). */
static struct dpnd_conn *conn_place(struct dpnd *d) {
    struct dpnd_conn *old = NULL;
    for (unsigned k = 0; k < DPND_MAX_CONNS; k++) {
        struct dpnd_conn *c = &d->conns[k];
        if (c->fd < 0)
            return c;
        if (c->slot == 0 && (old == NULL || c->since_tsc < old->since_tsc))
            old = c;
    }
    if (old != NULL) {
        if (log_sampled(&d->st.ctl_rejected))
            DPN_LOG(NOTICE, app, "control: %d connections open: closing pid %d's oldest idle one",
                    DPND_MAX_CONNS, old->pid);
        conn_close(d, old);
    }
    return old;
}

static void accept_new(struct dpnd *d) {
    for (int k = 0; k < CTL_ACCEPT_MAX; k++) {
        int fd = accept4(d->ctl_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct ucred cr;
        socklen_t len = sizeof(cr);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || cr.pid <= 0) {
            close(fd); /* a sender outside our pid namespace has no pid we could watch */
            continue;
        }
        unsigned same = 0;
        for (unsigned i = 0; i < DPND_MAX_CONNS; i++)
            same += d->conns[i].fd >= 0 && d->conns[i].pid == cr.pid;
        struct dpnd_conn *c = same < DPND_CONNS_PER_PID ? conn_place(d) : NULL;
        if (c == NULL) {
            if (log_sampled(&d->st.ctl_rejected))
                DPN_LOG(NOTICE, app, "control: connection from pid %d refused (%s)", cr.pid,
                        same >= DPND_CONNS_PER_PID ? "it has too many" : "no room");
            close(fd);
            continue;
        }
        int pidfd = -1;
        len = sizeof(pidfd);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) != 0)
            pidfd = -1; /* older kernel: pidfd_open at attach */
        uint64_t now = rte_rdtsc();
        *c = (struct dpnd_conn){.fd = fd,
                                .pid = cr.pid,
                                .uid = cr.uid,
                                .pidfd = pidfd,
                                .lcore = -1,
                                .since_tsc = now,
                                .ctl_tat = now,
                                .arp_tat = now};
        if (d->ctl_ep >= 0)
            ep_add(d->ctl_ep, fd); /* close() takes it out again */
    }
}

/* ---- requests ---- */

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

static int do_attach(struct dpnd *d, struct dpnd_conn *c, const struct dpn_req *rq,
                     struct dpn_rep *rep) {
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
    if (rq->attach.pid != c->pid) {
        snprintf(rep->msg, sizeof(rep->msg),
                 "pid %d is not the sender's: the kernel says this connection is pid %d",
                 rq->attach.pid, c->pid);
        return EPERM;
    }
    if (rq->attach.lcore < 0 || rq->attach.lcore >= RTE_MAX_LCORE)
        return fail(rep, EINVAL, "%s", "lcore id out of range");
    if (c->slot != 0) {
        snprintf(rep->msg, sizeof(rep->msg), "this connection is attached already (slot %u)",
                 c->slot);
        return EEXIST;
    }
    /* An id held for another connection's worker (DPN_REQ_LCORE) is taken;
     * the attached workers' ids dpnd_slot_attach checks. */
    for (unsigned k = 0; k < DPND_MAX_CONNS; k++) {
        const struct dpnd_conn *o = &d->conns[k];
        if (o != c && o->fd >= 0 && o->slot == 0 && o->lcore == rq->attach.lcore) {
            snprintf(rep->msg, sizeof(rep->msg),
                     "lcore %d is held for a worker about to attach (pid %d): give each worker "
                     "its own lcore id, e.g. --lcores=%d@CPU",
                     rq->attach.lcore, o->pid, dpnd_free_lcore(d));
            return EBUSY;
        }
    }
    int pidfd = c->pidfd >= 0 ? fcntl(c->pidfd, F_DUPFD_CLOEXEC, 0) : -1;
    uint16_t slot;
    uint64_t token;
    int err = dpnd_slot_attach(d, c->pid, c->uid, pidfd, rq->attach.lcore, rq->attach.app,
                               rq->attach.secret, &slot, &token, rep->msg, sizeof(rep->msg));
    if (err == 0) {
        struct dpnd_slot *ds = &d->slots[slot];
        c->slot = slot;
        c->lcore = -1; /* the slot holds it now */
        ds->conn = c;
        rep->slot = slot;
        rep->queue = slot;
        rep->token = token;
        rep->tag = dpn_tag(slot, ds->gen);
        rep->eph_lo = ds->eph_lo;
        rep->eph_hi = ds->eph_hi;
        dpnd_cap_sync(d);
    }
    return err;
}

/* Before EAL starts in the worker: an lcore id of its own (mempool caches
 * are per lcore id and shared by every process), held for this connection
 * until it attaches on it or closes. Asking again gives the same. */
static int do_lcore(struct dpnd *d, struct dpnd_conn *c, struct dpn_rep *rep) {
    if (c->slot != 0)
        return fail(rep, EEXIST, "%s", "this connection is attached already");
    if (c->lcore < 0)
        c->lcore = dpnd_free_lcore(d);
    if (c->lcore < 0)
        return fail(rep, ENOSPC, "%s", "no free lcore id left");
    rep->lcore = c->lcore;
    return 0;
}

/* dpnetctl conns: every attached worker lists its connections in its
 * memzone within a millisecond or so (attach.c); the reply says which
 * request number each slot's listing will carry. Costs the workers a walk
 * of their connections, so it shares the connection's request rate. */
static int do_conns(struct dpnd *d, struct dpn_rep *rep) {
    unsigned n = 0;
    for (uint16_t i = 1; i < d->nq; i++) {
        if (d->slots[i].state != DPN_SLOT_ATTACHED)
            continue;
        d->slots[i].conns_req++;
        dpnd_publish_slot(d, i);
        n++;
    }
    snprintf(rep->msg, sizeof(rep->msg), "%u workers asked", n);
    return 0;
}

/* One-way: the worker polls the neighbor table. Each request may become an
 * ARP broadcast: at most one per next hop per ARP_PER_IP_MS whoever asks,
 * and ARP_RATE per second per worker. */
static int do_resolve(struct dpnd *d, struct dpnd_conn *c, uint32_t ip_be) {
    ip4_addr_t a;
    struct eth_addr *mac;
    const ip4_addr_t *found;
    ip4_addr_set_u32(&a, ip_be);
    if (ip_be == 0 || ip_be == d->sw->ip_be ||
        !ip4_addr_netcmp(&a, netif_ip4_addr(&d->w->netif), netif_ip4_netmask(&d->w->netif)))
        return EINVAL; /* workers resolve next hops only: on our subnet */
    if (etharp_find_addr(&d->w->netif, &a, &mac, &found) >= 0)
        return 0; /* known: published at the next sync */
    uint64_t now = rte_rdtsc();
    struct dpnd_arp_recent *r = &d->arp_recent[rte_jhash_1word(ip_be, 0) % RTE_DIM(d->arp_recent)];
    if ((r->ip == ip_be && now - r->tsc < rte_get_tsc_hz() / 1000 * ARP_PER_IP_MS) ||
        !gcra(&c->arp_tat, now, ARP_RATE, ARP_BURST)) {
        d->st.arp_throttled++;
        return 0;
    }
    r->ip = ip_be;
    r->tsc = now;
    d->st.arp_sent++;
    return etharp_query(&d->w->netif, &a, NULL) == ERR_OK ? 0 : EAGAIN;
}

/* The worker's eventfd, taken from its process (pidfd_getfd: the pidfd is
 * kernel-proven, and we only take what the worker names). It must be an
 * eventfd; we make our copy non-blocking, so a full counter costs a wake-up,
 * never a stuck daemon. */
static int take_wake_fd(struct dpnd_slot *s, int32_t fd, struct dpn_rep *rep) {
    if (s->pidfd < 0 || fd < 0)
        return fail(rep, EINVAL, "%s", "no fd, or no pidfd for this worker");
    int ours = (int)syscall(SYS_pidfd_getfd, s->pidfd, fd, 0);
    if (ours < 0)
        return fail(rep, errno, "cannot take the worker's fd: %s", strerror(errno));
    char path[64], link[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", ours);
    ssize_t k = readlink(path, link, sizeof(link) - 1);
    if (k <= 0 || (link[k] = '\0', strcmp(link, "anon_inode:[eventfd]") != 0) ||
        fcntl(ours, F_SETFL, O_NONBLOCK) != 0) {
        close(ours);
        return fail(rep, EINVAL, "%s", "the fd is not an eventfd");
    }
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    s->wake_fd = ours;
    return 0;
}

static int do_slot_request(struct dpnd *d, struct dpnd_conn *c, const struct dpn_req *rq,
                           struct dpn_rep *rep, bool *reply) {
    struct dpnd_slot *s = &d->slots[c->slot];
    switch (rq->type) {
    case DPN_REQ_BIND:
    case DPN_REQ_UNBIND:
        if (rq->bind.proto != DPN_PROTO_TCP && rq->bind.proto != DPN_PROTO_UDP)
            return fail(rep, EINVAL, "%s", "protocol must be TCP or UDP");
        if (rq->bind.port == 0)
            return fail(rep, EINVAL, "%s", "port 0");
        return rq->type == DPN_REQ_BIND ? dpnd_bind(d, c->slot, rq->bind.proto, rq->bind.port,
                                                    rep->msg, sizeof(rep->msg))
                                        : dpnd_unbind(d, c->slot, rq->bind.proto, rq->bind.port,
                                                      rep->msg, sizeof(rep->msg));
    case DPN_REQ_CONNECT:
        if (rq->bind.proto != DPN_PROTO_TCP && rq->bind.proto != DPN_PROTO_UDP)
            return fail(rep, EINVAL, "%s", "protocol must be TCP or UDP");
        if (rq->bind.port < s->eph_lo || rq->bind.port > s->eph_hi)
            return fail(rep, EACCES, "%s", "local port outside this worker's range");
        dpnd_port_rule(d, c->slot, rq->bind.proto, rq->bind.port);
        return 0;
    case DPN_REQ_RESOLVE:
        *reply = false;
        return do_resolve(d, c, rq->resolve.ip);
    case DPN_REQ_DETACH:
        dpnd_slot_release(d, c->slot, "detached"); /* clears c->slot */
        return 0;
    case DPN_REQ_WAKE:
        return take_wake_fd(s, rq->wake.fd, rep);
    case DPN_REQ_STATS:
        snprintf(rep->msg, sizeof(rep->msg),
                 "slot %u queue %u: %" PRIu64 " frames steered to it, %" PRIu64
                 " dropped on a full ring; dpnetd: %" PRIu64 " frames received",
                 c->slot, c->slot, s->ring_enq, s->ring_full, d->st.rx_pkts);
        return 0;
    }
    return fail(rep, EINVAL, "%s", "unknown request type");
}

int dpnd_ctl_handle(struct dpnd *d, struct dpnd_conn *c, const void *buf, size_t len,
                    struct dpn_rep *rep, bool *reply) {
    struct dpn_req rq;
    memset(&rq, 0, sizeof(rq));
    memcpy(&rq, buf, len < sizeof(rq) ? len : sizeof(rq));
    *reply = true;
    rep->seq = rq.seq;
    if (len != sizeof(rq))
        return fail(rep, EINVAL, "%s", "malformed request (wrong size)");
    if (rq.abi != DPN_ABI_VERSION)
        return fail(rep, EPROTONOSUPPORT, "%s", "ABI version mismatch: update the worker");
    if (rq.type == DPN_REQ_ATTACH)
        return do_attach(d, c, &rq, rep);
    if (rq.type == DPN_REQ_LCORE)
        return do_lcore(d, c, rep);
    if (rq.type == DPN_REQ_CONNS)
        return do_conns(d, rep);
    if (rq.type == DPN_REQ_CAPTURE)
        return dpnd_cap_request(d, c, &rq, rep);
    if (rq.type == DPN_REQ_CAPTURE_STOP) { /* the capture's last reply says the rest */
        int err = dpnd_cap_stop_request(d, c, rep);
        *reply = err != 0;
        return err;
    }
    if (rq.type <= DPN_REQ_ATTACH || rq.type >= DPN_REQ_MAX)
        return fail(rep, EINVAL, "%s", "unknown request type");
    /* A connection speaks for the slot it attached and no other. */
    if (c->slot == 0 || c->slot >= d->nq || d->slots[c->slot].state != DPN_SLOT_ATTACHED)
        return fail(rep, EPERM, "%s", "not attached");
    if (rq.slot != c->slot)
        return fail(rep, EPERM, "%s", "that slot is not this connection's");
    if (rq.token == 0 || rq.token != d->slots[c->slot].token)
        return fail(rep, EPERM, "%s", "bad token");
    return do_slot_request(d, c, &rq, rep, reply);
}

/* ---- serving the connections ---- */

/* Read and answer one request of c; false when it had none (or is closed). */
static bool serve_one(struct dpnd *d, struct dpnd_conn *c, uint64_t now) {
    if (!gcra_ready(c->ctl_tat, now, CTL_RATE, CTL_BURST)) {
        d->st.ctl_deferred++; /* left in its socket: the sender waits, others do not */
        d->ctl_deferred = true;
        return false;
    }
    union {
        struct dpn_req rq;
        uint8_t raw[512];
    } in;
    struct iovec iov = {.iov_base = in.raw, .iov_len = sizeof(in.raw)};
    /* No control buffer: descriptors sent along are dropped by the kernel,
     * never installed here (MSG_CTRUNC says some came). */
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n = recvmsg(c->fd, &mh, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return false;
    if (n <= 0) {
        conn_close(d, c);
        return false;
    }
    gcra(&c->ctl_tat, now, CTL_RATE, CTL_BURST);
    struct dpn_rep rep;
    bool reply;
    memset(&rep, 0, sizeof(rep));
    d->st.ctl_requests++;
    size_t len = (mh.msg_flags & MSG_TRUNC) ? sizeof(in.raw) + 1 : (size_t)n;
    if (mh.msg_flags & MSG_CTRUNC) { /* it came with descriptors: not carried out */
        reply = true;
        rep.seq = in.rq.seq;
        rep.err = fail(&rep, EINVAL, "%s", "control messages carry no descriptors (dropped)");
    } else {
        rep.err = dpnd_ctl_handle(d, c, in.raw, len, &rep, &reply);
    }
    if (rep.err != 0 && log_sampled(&d->st.ctl_rejected))
        DPN_LOG(NOTICE, app, "request from pid %d (uid %u) rejected: %s", c->pid, c->uid,
                rep.msg[0] ? rep.msg : strerror(rep.err));
    /* A worker that does not read its replies loses them, nothing else. */
    if (reply && c->fd >= 0 && send(c->fd, &rep, sizeof(rep), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
        errno != EAGAIN)
        conn_close(d, c);
    return true;
}

/* Accept, then serve ready connections round robin, one request each per
 * pass, at most CTL_POLL_MAX in all: one busy worker cannot hold up others. */
void dpnd_ctl_poll(struct dpnd *d) {
    struct pollfd p[DPND_MAX_CONNS + 1];
    unsigned idx[DPND_MAX_CONNS + 1], np = 0;
    if (d->ctl_fd < 0)
        return;
    p[np] = (struct pollfd){.fd = d->ctl_fd, .events = POLLIN};
    idx[np++] = DPND_MAX_CONNS;
    for (unsigned k = 0; k < DPND_MAX_CONNS; k++) {
        unsigned i = (d->ctl_rr + k) % DPND_MAX_CONNS;
        if (d->conns[i].fd >= 0) {
            p[np] = (struct pollfd){.fd = d->conns[i].fd, .events = POLLIN};
            idx[np++] = i;
        }
    }
    d->ctl_deferred = false;
    if (poll(p, np, 0) <= 0)
        return;
    d->ctl_rr = (d->ctl_rr + 1) % DPND_MAX_CONNS;
    uint64_t now = rte_rdtsc();
    unsigned budget = CTL_POLL_MAX;
    for (bool any = true; any && budget > 0;) {
        any = false;
        for (unsigned j = 1; j < np && budget > 0; j++) {
            struct dpnd_conn *c = &d->conns[idx[j]];
            if (p[j].revents == 0 || c->fd != p[j].fd)
                continue;
            if (serve_one(d, c, now)) {
                any = true;
                budget--;
            } else {
                p[j].revents = 0; /* drained, throttled or closed */
            }
        }
    }
    if (p[0].revents & POLLIN)
        accept_new(d);
}
