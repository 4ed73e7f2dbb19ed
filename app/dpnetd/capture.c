/* dpnetctl capture, dpnetd's side: one capture at a time, owned by the
 * control connection that asked for it. dpnetd writes the file (the
 * sender's own descriptor, taken with pidfd_getfd: written with the
 * sender's rights, never a path dpnetd would open as root); each worker in
 * the capture copies its frames to its slot's ring ("dpnd_cap<N>", abi.h),
 * dpnetd its own frames to a ring in its own memory, and one writer thread
 * (stack/capture_ctl.c) merges them into the file.
 *
 * Which workers: all (and dpnetd), one slot, or one application's, kept
 * right as workers come and go (dpnd_cap_sync after every attach and
 * release, and from the periodic check). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_memzone.h>

#include "capture.h"
#include "dpnetd.h"
#include "log.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

struct dpnd_capture {
    struct dpn_capw *cw;
    struct dpnd_conn *conn; /* who asked: told when it ends; NULL once it closed */
    uint32_t seq;           /* of the request, echoed in the last reply */
    uint16_t slot;          /* 0: every worker, and dpnetd */
    char app[DPN_APP_NAME]; /* "": any application */
    bool ending;
    uint64_t end_tsc;
    struct dpn_cap_ring *own; /* dpnetd's frames (template of every ring's header) */
    const struct rte_memzone *zone[DPN_MAX_SLOTS];
    bool on[DPN_MAX_SLOTS];
};

static struct dpnd_capture cap;

static bool wanted(const struct dpnd *d, uint16_t i) {
    const struct dpnd_slot *ds = &d->slots[i];
    return cap.cw != NULL && !cap.ending && ds->state == DPN_SLOT_ATTACHED &&
           (cap.slot == 0 || cap.slot == i) &&
           (cap.app[0] == '\0' || strncmp(cap.app, ds->app, sizeof(cap.app)) == 0);
}

static struct dpn_cap_ring *slot_ring(uint16_t i) {
    if (cap.zone[i] == NULL) {
        char name[DPN_NAME];
        snprintf(name, sizeof(name), DPN_CAP_ZONE, i);
        cap.zone[i] = rte_memzone_lookup(name);
        if (cap.zone[i] == NULL)
            cap.zone[i] = rte_memzone_reserve(name, sizeof(struct dpn_cap_ring),
                                              (int)rte_socket_id(), RTE_MEMZONE_SIZE_HINT_ONLY);
        if (cap.zone[i] == NULL) {
            DPN_LOG(WARNING, app, "capture: no memory for the ring of slot %u", i);
            return NULL;
        }
    }
    return cap.zone[i]->addr;
}

static void slot_set(struct dpnd *d, uint16_t i, bool on) {
    struct dpnd_slot *ds = &d->slots[i];
    struct dpn_cap_ring *r = slot_ring(i);
    if (r == NULL)
        return;
    if (on) { /* the header first, then the word that makes the worker read it */
        r->snaplen = cap.own->snaplen;
        r->ninsns = cap.own->ninsns;
        memcpy(r->insns, cap.own->insns, sizeof(r->insns));
    }
    ds->cap_gen += ((ds->cap_gen & 1) != on);
    dpnd_publish_slot(d, i);
    dpn_capw_source(cap.cw, i, r, on);
    cap.on[i] = on;
}

void dpnd_cap_sync(struct dpnd *d) {
    for (uint16_t i = 1; i < d->nq; i++)
        if (cap.cw != NULL && wanted(d, i) != cap.on[i])
            slot_set(d, i, !cap.on[i]);
}

/* ---- the request ---- */

static int fail(struct dpn_rep *rep, int err, const char *why) {
    snprintf(rep->msg, sizeof(rep->msg), "%s", why);
    return err;
}

/* The sender's descriptor fd, ours now: a file or a pipe open for writing. */
static int take_fd(const struct dpnd_conn *c, int32_t fd, struct dpn_rep *rep) {
    int pidfd = c->pidfd >= 0 ? c->pidfd : (int)syscall(SYS_pidfd_open, c->pid, 0);
    int ours = pidfd >= 0 && fd >= 0 ? (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0) : -1;
    int err = errno;
    if (pidfd >= 0 && pidfd != c->pidfd)
        close(pidfd);
    if (ours < 0) {
        snprintf(rep->msg, sizeof(rep->msg), "cannot take the capture file's descriptor: %s",
                 strerror(err));
        return -1;
    }
    struct stat st;
    int fl = fcntl(ours, F_GETFL);
    if (fstat(ours, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode)) || fl < 0 ||
        (fl & O_ACCMODE) == O_RDONLY) {
        close(ours);
        fail(rep, 0, "the capture file must be a file or pipe open for writing");
        return -1;
    }
    return ours;
}

static bool allowed(const struct dpnd_conn *c) {
    return c->uid == 0 || c->uid == (uint32_t)geteuid();
}

int dpnd_cap_request(struct dpnd *d, struct dpnd_conn *c, const struct dpn_req *rq,
                     struct dpn_rep *rep) {
    char why[160];
    if (!allowed(c))
        return fail(rep, EPERM, "capture is for root and dpnetd's user: the frames are everyone's");
    if (cap.cw != NULL)
        return fail(rep, EBUSY, "a capture is running already (one at a time)");
    if (rq->capture.slot >= d->nq)
        return fail(rep, EINVAL, "no such worker slot");
    if (rq->capture.port != DPN_CAP_ANY_PORT && rq->capture.port != d->port_id) {
        snprintf(rep->msg, sizeof(rep->msg), "dpnetd drives DPDK port %u only", d->port_id);
        return EINVAL;
    }
    if (memchr(rq->capture.app, '\0', sizeof(rq->capture.app)) == NULL ||
        memchr(rq->capture.filter, '\0', sizeof(rq->capture.filter)) == NULL)
        return fail(rep, EINVAL, "application name or filter not terminated");
    if (cap.own == NULL && (cap.own = dpn_zalloc(sizeof(*cap.own))) == NULL)
        return fail(rep, ENOMEM, "no memory for the capture ring");
    if (dpn_cap_compile(cap.own, rq->capture.filter, rq->capture.snaplen, why, sizeof(why)) != 0)
        return fail(rep, EINVAL, why);
    int fd = take_fd(c, rq->capture.fd, rep);
    if (fd < 0)
        return EBADF;
    cap.cw = dpn_capw_open(fd, d->port_id, rq->capture.count, rq->capture.duration_ms, "dpnetd",
                           why, sizeof(why));
    if (cap.cw == NULL)
        return fail(rep, EIO, why);
    cap.conn = c;
    cap.seq = rq->seq;
    cap.slot = rq->capture.slot;
    snprintf(cap.app, sizeof(cap.app), "%s", rq->capture.app);
    cap.ending = false;
    memset(cap.on, 0, sizeof(cap.on));
    if (cap.slot == 0 && cap.app[0] == '\0') { /* dpnetd's own frames too */
        d->w->cap = dpn_cap_start(cap.own, why, sizeof(why));
        if (d->w->cap != NULL)
            dpn_capw_source(cap.cw, 0, cap.own, true);
    }
    dpnd_cap_sync(d);
    unsigned n = 0;
    for (uint16_t i = 1; i < d->nq; i++)
        n += cap.on[i];
    snprintf(rep->msg, sizeof(rep->msg), "capturing from %u worker%s%s", n, n == 1 ? "" : "s",
             d->w->cap != NULL ? " and dpnetd" : "");
    DPN_LOG(INFO, app, "capture for pid %d: %s", c->pid, rep->msg);
    return 0;
}

/* ---- the end ---- */

/* Producers off, the writer told to finish; the reply waits for it. */
static void cap_end(struct dpnd *d) {
    if (cap.cw == NULL || cap.ending)
        return;
    cap.ending = true;
    cap.end_tsc = rte_rdtsc();
    dpnd_cap_sync(d); /* every slot off */
    dpn_cap_stop(d->w->cap);
    d->w->cap = NULL;
    dpn_capw_source(cap.cw, 0, cap.own, false);
    dpn_capw_stop(cap.cw);
}

int dpnd_cap_stop_request(struct dpnd *d, const struct dpnd_conn *c, struct dpn_rep *rep) {
    if (cap.cw == NULL || cap.conn != c)
        return fail(rep, ENOENT, "this connection runs no capture");
    cap_end(d);
    return 0;
}

void dpnd_cap_conn_closed(struct dpnd *d, const struct dpnd_conn *c) {
    if (cap.cw != NULL && cap.conn == c) {
        cap.conn = NULL;
        cap_end(d);
    }
}

/* From the periodic check: a count or duration reached, a writer that
 * finished (or that a reader left stuck for 2 s): the last reply. */
void dpnd_cap_check(struct dpnd *d) {
    if (cap.cw == NULL)
        return;
    dpnd_cap_sync(d);
    if (!cap.ending && dpn_capw_done(cap.cw))
        cap_end(d);
    if (!cap.ending ||
        (!dpn_capw_finished(cap.cw) && rte_rdtsc() - cap.end_tsc < 2 * rte_get_tsc_hz()))
        return;
    struct dpn_rep rep;
    memset(&rep, 0, sizeof(rep));
    char why[128];
    dpn_capw_close(cap.cw, &rep.frames, &rep.dropped, why, sizeof(why));
    cap.cw = NULL;
    rep.seq = cap.seq;
    rep.err = why[0] != '\0' ? EIO : 0;
    snprintf(rep.msg, sizeof(rep.msg), "%s", why[0] != '\0' ? why : "capture ended");
    DPN_LOG(INFO, app, "capture ended: %" PRIu64 " frames written, %" PRIu64 " lost%s%s",
            rep.frames, rep.dropped, why[0] ? ": " : "", why);
    if (cap.conn != NULL && cap.conn->fd >= 0)
        (void)!send(cap.conn->fd, &rep, sizeof(rep), MSG_DONTWAIT | MSG_NOSIGNAL);
    cap.conn = NULL;
}

void dpnd_cap_fini(struct dpnd *d) {
    if (cap.cw == NULL)
        return;
    cap_end(d);
    uint64_t f, l;
    char why[128];
    dpn_capw_close(cap.cw, &f, &l, why, sizeof(why));
    cap.cw = NULL;
}
