/* A deliberately broken worker: a DPDK secondary of dpnetd that sends
 * malformed, out-of-bounds and unauthorised control requests over dpnetd's
 * control socket. Every one must be rejected with the expected error, and
 * dpnetd must keep answering. Prints "ok - ..." / "not ok - ..." lines.
 *
 *   badctl <EAL options> -- TAKEN_PORT [--trust APP SECRET] [--scribble SECONDS SPARE_SLOT]
 *
 * TAKEN_PORT: a TCP port another application holds. --trust: the cases of
 * issue 14 besides: spoofed pid and application (APP: a running application,
 * SECRET: its DPNET_APP_SECRET), another uid (65534), descriptor floods,
 * request floods, quotas, RESOLVE floods. --scribble: random writes into
 * every shared structure of dpnet's own (the dpnd_shm memzone, slots,
 * bindings, neighbor table, the headers of the worker rings but
 * SPARE_SLOT's) for SECONDS while attached with UDP port 4001 bound; dpnetd
 * may misroute, never crash. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_memzone.h>
#include <rte_random.h>
#include <rte_ring.h>

#include "abi.h"
#include "dpnet.h"

static int failures;
static uint32_t seq;
static struct dpn_shm *shm;

static void result(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void result(bool ok, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("%s - ", ok ? "ok" : "not ok");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    failures += !ok;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int conn_open(void) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s", rte_eal_get_runtime_dir(), DPN_CTL_SOCKET);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        fprintf(stderr, "badctl: connect %s: %s\n", a.sun_path, strerror(errno));
        exit(1);
    }
    return fd;
}

/* Wait up to ms for a reply with sequence s: its err, -1 when none came, -2
 * when dpnetd closed the connection. */
static int wait_reply(int fd, uint32_t s, struct dpn_rep *rep, int ms) {
    double end = now_s() + ms / 1000.0;
    while (now_s() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)((end - now_s()) * 1000) + 1) <= 0)
            continue;
        ssize_t n = recv(fd, rep, sizeof(*rep), MSG_DONTWAIT);
        if (n == 0)
            return -2;
        if (n == (ssize_t)sizeof(*rep) && rep->seq == s) {
            rep->msg[sizeof(rep->msg) - 1] = '\0';
            return rep->err;
        }
    }
    return -1;
}

/* Send raw bytes (the first 4 after abi/type/slot/token are not touched:
 * raw means raw); returns the reply's err, -1 when nothing came back. */
static int send_raw(int fd, const void *param, size_t len, struct dpn_rep *rep) {
    memset(rep, 0, sizeof(*rep));
    if (send(fd, param, len, MSG_NOSIGNAL) != (ssize_t)len)
        return -2;
    uint32_t s = 0; /* what dpnetd echoes: the bytes of seq the message has */
    size_t at = offsetof(struct dpn_req, seq);
    if (len > at)
        memcpy(&s, (const char *)param + at, len - at < sizeof(s) ? len - at : sizeof(s));
    return wait_reply(fd, s, rep, 2000);
}

static int send_req(int fd, struct dpn_req *rq, struct dpn_rep *rep) {
    rq->seq = ++seq;
    return send_raw(fd, rq, sizeof(*rq), rep);
}

static void expect(const char *name, int got, int want, const struct dpn_rep *rep) {
    result(got == want, "control request: %s -> %d (want %d)%s%s", name, got, want,
           rep->msg[0] ? ": " : "", rep->msg);
}

static struct dpn_req base(uint16_t type) {
    struct dpn_req rq;
    memset(&rq, 0, sizeof(rq));
    rq.abi = DPN_ABI_VERSION;
    rq.type = type;
    return rq;
}

static struct dpn_req attach_req(const char *app) {
    struct dpn_req rq = base(DPN_REQ_ATTACH);
    rq.attach.pid = getpid();
    rq.attach.lcore = (int32_t)rte_lcore_id();
    snprintf(rq.attach.app, sizeof(rq.attach.app), "%s", app);
    snprintf(rq.attach.version, sizeof(rq.attach.version), "%s", DPN_VERSION);
    return rq;
}

struct att {
    int fd;
    uint16_t slot;
    uint64_t token;
};

static struct dpn_req slot_req(const struct att *a, uint16_t type) {
    struct dpn_req rq = base(type);
    rq.slot = a->slot;
    rq.token = a->token;
    return rq;
}

static int bind_port(const struct att *a, uint8_t proto, uint16_t port, bool bind,
                     struct dpn_rep *rep) {
    struct dpn_req rq = slot_req(a, bind ? DPN_REQ_BIND : DPN_REQ_UNBIND);
    rq.bind.proto = proto;
    rq.bind.port = port;
    return send_req(a->fd, &rq, rep);
}

static int detach(struct att *a, struct dpn_rep *rep) {
    struct dpn_req rq = slot_req(a, DPN_REQ_DETACH);
    return send_req(a->fd, &rq, rep);
}

/* ---- the basic cases (t_daemon.sh) ---- */

/* The lcore ids dpnetd hands out before a worker's EAL starts
 * (stack/eal_lcore.c): free ones, held per connection. */
static void lcore_cases(void) {
    int f1 = conn_open(), f2 = conn_open();
    struct dpn_rep rep;
    struct dpn_req rq = base(DPN_REQ_LCORE);
    int rc = send_req(f1, &rq, &rep);
    int id = rep.lcore;
    bool held = false;
    for (unsigned i = 0; i < shm->nb_queues && i < DPN_MAX_SLOTS; i++)
        held |= shm->slots[i].state == DPN_SLOT_ATTACHED && shm->slots[i].lcore == id;
    result(rc == 0 && id >= 0 && id < RTE_MAX_LCORE && !held,
           "control request: LCORE gives an id no worker and not dpnetd has (%d)", id);
    rq = base(DPN_REQ_LCORE);
    rc = send_req(f1, &rq, &rep);
    result(rc == 0 && rep.lcore == id, "control request: LCORE again on that connection: %d",
           rep.lcore);
    rq = base(DPN_REQ_LCORE);
    rc = send_req(f2, &rq, &rep);
    result(rc == 0 && rep.lcore >= 0 && rep.lcore != id,
           "control request: LCORE on another connection gives another id (%d)", rep.lcore);
    struct dpn_req a = attach_req("badctl-lcore");
    a.attach.lcore = id;
    rc = send_req(f2, &a, &rep);
    result(rc == EBUSY && strstr(rep.msg, "about to attach") != NULL,
           "control request: attach on an id held for another connection -> %d (want %d): %s", rc,
           EBUSY, rep.msg);
    close(f1);
    close(f2);
}

static void malformed(int *fdp) {
    struct dpn_rep rep;
    struct dpn_req rq = base(DPN_REQ_BIND);
    char big[600];
    int fd = *fdp;
    expect("a 10-byte request", send_raw(fd, &rq, 10, &rep), EINVAL, &rep);
    memset(big, 0, sizeof(big));
    memcpy(big, &rq, sizeof(rq));
    expect("a 600-byte request", send_raw(fd, big, sizeof(big), &rep), EINVAL, &rep);
    rq.abi = 999;
    expect("another ABI version", send_req(fd, &rq, &rep), EPROTONOSUPPORT, &rep);
    rq = base(0);
    expect("request type 0", send_req(fd, &rq, &rep), EINVAL, &rep);
    rq = base(200);
    expect("request type 200", send_req(fd, &rq, &rep), EINVAL, &rep);
    rq = base(DPN_REQ_BIND);
    rq.slot = 1;
    rq.bind.proto = DPN_PROTO_TCP;
    rq.bind.port = 7;
    expect("bind before attach", send_req(fd, &rq, &rep), EPERM, &rep);
    rq.slot = 60000;
    rq.token = 1;
    expect("slot 60000", send_req(fd, &rq, &rep), EPERM, &rep);
    rq = base(DPN_REQ_DETACH);
    rq.slot = 1;
    rq.token = 0x1234567;
    expect("detach of another worker's slot", send_req(fd, &rq, &rep), EPERM, &rep);
    rq = base(DPN_REQ_RESOLVE);
    rq.slot = 1;
    expect("resolve without attaching", send_req(fd, &rq, &rep), EPERM, &rep);

    rq = attach_req("badctl");
    rq.attach.pid = 1;
    expect("attach claiming pid 1", send_req(fd, &rq, &rep), EPERM, &rep);
    rq = attach_req("badctl");
    memset(rq.attach.app, 'A', sizeof(rq.attach.app));
    expect("an unterminated application name", send_req(fd, &rq, &rep), EINVAL, &rep);
    rq = attach_req("bad name");
    expect("an application name with a space", send_req(fd, &rq, &rep), EINVAL, &rep);
    rq = attach_req("badctl");
    snprintf(rq.attach.version, sizeof(rq.attach.version), "9.9.9");
    expect("a mismatched library version", send_req(fd, &rq, &rep), EPROTONOSUPPORT, &rep);
    rq = attach_req("badctl");
    rq.attach.lcore = -5;
    expect("lcore -5", send_req(fd, &rq, &rep), EINVAL, &rep);
    rq.attach.lcore = 1 << 20;
    expect("lcore 1048576", send_req(fd, &rq, &rep), EINVAL, &rep);
    rq.attach.lcore = 0; /* dpnetd's own (its -l 0) */
    expect("dpnetd's own lcore", send_req(fd, &rq, &rep), EBUSY, &rep);

    /* An empty message reads as the end of the connection: dpnetd closes it. */
    memset(&rep, 0, sizeof(rep));
    int got = send(fd, "", 0, MSG_NOSIGNAL) == 0 ? wait_reply(fd, 0, &rep, 2000) : -3;
    expect("an empty message (the connection is closed)", got, -2, &rep);
    close(fd);
    *fdp = fd = conn_open();

    /* Random garbage, many times: all rejected, nothing crashes. */
    int bad = 0;
    char junk[sizeof(struct dpn_req) + 64];
    for (int i = 0; i < 2000; i++) {
        size_t len = 1 + rte_rand() % sizeof(junk);
        for (size_t k = 0; k < sizeof(junk); k++)
            junk[k] = (char)rte_rand();
        if (i % 2 == 0) { /* half get past the size and ABI checks */
            uint32_t abi = DPN_ABI_VERSION;
            memcpy(junk, &abi, sizeof(abi));
            len = sizeof(struct dpn_req);
            /* The requests any connection may make (a free lcore, the
             * connection list, a capture) can be well-formed by chance
             * (3 in 65536 types; about one run in 30 drew one): those
             * become a BIND, which needs an attached worker. */
            uint16_t type;
            memcpy(&type, junk + offsetof(struct dpn_req, type), sizeof(type));
            if (type == DPN_REQ_LCORE || type == DPN_REQ_CONNS || type == DPN_REQ_CAPTURE ||
                type == DPN_REQ_CAPTURE_STOP) {
                type = DPN_REQ_BIND;
                memcpy(junk + offsetof(struct dpn_req, type), &type, sizeof(type));
            }
        }
        uint32_t s = ++seq;
        memcpy(junk + offsetof(struct dpn_req, seq), &s, sizeof(s));
        int got = send_raw(fd, junk, len, &rep);
        bad += got == 0 || got < 0;
    }
    memset(&rep, 0, sizeof(rep));
    expect("2000 random requests (count accepted or unanswered)", bad, 0, &rep);
}

static void legacy_rte_mp(void) {
    /* The old rte_mp action is gone: a request there, whatever socket path
     * it comes from, reaches nothing of dpnetd's. */
    struct rte_mp_msg msg;
    struct rte_mp_reply reply;
    struct timespec ts = {.tv_sec = 1};
    memset(&msg, 0, sizeof(msg));
    snprintf(msg.name, sizeof(msg.name), "dpnd_ctl");
    struct dpn_req rq = attach_req("badctl-mp");
    msg.len_param = sizeof(rq);
    memcpy(msg.param, &rq, sizeof(rq));
    int rc = rte_mp_request_sync(&msg, &reply, &ts);
    int n = rc == 0 ? reply.nb_received : 0;
    if (rc == 0 && reply.nb_received > 0)
        free(reply.msgs);
    result(n == 0, "an rte_mp control request (dpnd_ctl) is not answered (%d replies)", n);
}

static bool attach_ok(int fd, const char *app, struct att *a) {
    struct dpn_rep rep;
    struct dpn_req rq = attach_req(app);
    int rc = send_req(fd, &rq, &rep);
    result(rc == 0, "a well-formed attach works (%d%s%s)", rc, rep.msg[0] ? ": " : "", rep.msg);
    a->fd = fd;
    a->slot = rep.slot;
    a->token = rep.token;
    return rc == 0;
}

static void worker_requests(struct att *a, uint16_t taken) {
    struct dpn_rep rep;
    struct dpn_req rq = attach_req("badctl");
    expect("a second attach on one connection", send_req(a->fd, &rq, &rep), EEXIST, &rep);
    int fd2 = conn_open();
    expect("a second attach of one process", send_req(fd2, &rq, &rep), EEXIST, &rep);
    struct dpn_req b = slot_req(a, DPN_REQ_BIND);
    b.bind.proto = DPN_PROTO_TCP;
    b.bind.port = 4000;
    expect("a slot request on another connection of the same process", send_req(fd2, &b, &rep),
           EPERM, &rep);
    close(fd2);
    b.token = a->token ^ 2;
    expect("a wrong token", send_req(a->fd, &b, &rep), EPERM, &rep);
    b.token = a->token;
    b.slot = (uint16_t)(a->slot == 1 ? 2 : 1);
    expect("another slot's number", send_req(a->fd, &b, &rep), EPERM, &rep);
    b.slot = a->slot;
    b.bind.proto = 99;
    expect("protocol 99", send_req(a->fd, &b, &rep), EINVAL, &rep);
    b.bind.proto = DPN_PROTO_TCP;
    b.bind.port = 0;
    expect("port 0", send_req(a->fd, &b, &rep), EINVAL, &rep);
    b.bind.port = 60000;
    expect("a port in the ephemeral range", send_req(a->fd, &b, &rep), EACCES, &rep);
    b.bind.port = taken;
    int rc = send_req(a->fd, &b, &rep);
    expect("a port another application holds", rc, EADDRINUSE, &rep);
    result(strstr(rep.msg, "held by application") != NULL, "the refusal names the holder (%s)",
           rep.msg);
    b.type = DPN_REQ_UNBIND;
    b.bind.port = 4001;
    expect("unbind of a port never bound", send_req(a->fd, &b, &rep), ENOENT, &rep);
    b.type = DPN_REQ_CONNECT;
    b.bind.port = 80;
    expect("connect from outside the worker's range", send_req(a->fd, &b, &rep), EACCES, &rep);
    b.type = DPN_REQ_BIND;
    b.bind.port = 4000;
    expect("a free port binds", send_req(a->fd, &b, &rep), 0, &rep);
    b.type = DPN_REQ_STATS;
    rc = send_req(a->fd, &b, &rep);
    result(rc == 0 && strstr(rep.msg, "frames steered to it") != NULL,
           "the stats request answers (%s)", rep.msg);
}

/* ---- --trust ---- */

static int hexval(const char *s, uint8_t *out) {
    for (int i = 0; i < DPN_SECRET_LEN; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* Run fn in a child process; returns its failures (its lines are its own). */
static int in_child(void (*fn)(void *), void *arg) {
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        failures = 0;
        fn(arg);
        fflush(stdout);
        _exit(failures > 100 ? 100 : failures);
    }
    int st = 0;
    waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

static int spoof_fd;
static void spoof_child(void *arg) {
    (void)arg;
    struct dpn_rep rep;
    struct dpn_req rq = attach_req("badctl-fork");
    rq.attach.pid = getpid(); /* true for the child, not for the connection */
    expect("attach by a child over its parent's connection (spoofed pid)",
           send_req(spoof_fd, &rq, &rep), EPERM, &rep);
}

struct trust_args {
    const char *app;
    uint8_t secret[DPN_SECRET_LEN];
    int hold_fd; /* pipe: the child holds its slot until this closes */
};

static void other_uid_child(void *arg) {
    struct trust_args *t = arg;
    if (setgid(65534) != 0 || setuid(65534) != 0) {
        result(false, "setuid(65534): %s", strerror(errno));
        return;
    }
    int fd = conn_open();
    struct dpn_rep rep;
    struct dpn_req rq = attach_req(t->app);
    rq.attach.lcore = 100;
    memcpy(rq.attach.secret, t->secret, DPN_SECRET_LEN);
    expect("uid 65534 joining a root application, with its secret", send_req(fd, &rq, &rep), EPERM,
           &rep);
    rq = attach_req("nobody-app");
    rq.attach.lcore = 100;
    struct att a = {.fd = fd};
    int rc = send_req(fd, &rq, &rep);
    expect("uid 65534 attaching an application of its own", rc, 0, &rep);
    a.slot = rep.slot;
    a.token = rep.token;
    expect("uid 65534 binding port 80", bind_port(&a, DPN_PROTO_TCP, 80, true, &rep), EACCES, &rep);
    expect("uid 65534 binding port 4100", bind_port(&a, DPN_PROTO_TCP, 4100, true, &rep), 0, &rep);
    /* Hold the slot (quota check in the parent), then leave without a word. */
    char c;
    if (read(t->hold_fd, &c, 1) < 0)
        result(false, "hold pipe");
}

static void root_child_attach(void *arg) {
    (void)arg;
    int fd = conn_open();
    struct dpn_rep rep;
    struct dpn_req rq = attach_req("badctl-extra");
    rq.attach.lcore = 101;
    expect("attach when every worker queue is taken", send_req(fd, &rq, &rep), ENOSPC, &rep);
}

static void spoofed_app(int fd, struct trust_args *t) {
    struct dpn_rep rep;
    struct dpn_req rq = attach_req(t->app);
    for (int i = 0; i < DPN_SECRET_LEN; i++)
        rq.attach.secret[i] = (uint8_t)(t->secret[i] ^ 0x5a);
    int rc = send_req(fd, &rq, &rep);
    expect("joining a running application with a wrong secret (spoofed app)", rc, EPERM, &rep);
    result(strstr(rep.msg, "secret") != NULL, "... and told a secret is needed");
    rq = attach_req(t->app);
    rc = send_req(fd, &rq, &rep);
    expect("joining it with no secret", rc, EPERM, &rep);
    rq = attach_req(t->app);
    memcpy(rq.attach.secret, t->secret, DPN_SECRET_LEN);
    rc = send_req(fd, &rq, &rep);
    expect("joining it with its secret (same uid)", rc, 0, &rep);
    if (rc == 0) {
        struct att a = {.fd = fd, .slot = rep.slot, .token = rep.token};
        expect("... and leaving again", detach(&a, &rep), 0, &rep);
    }
}

static int fd_count(int pid) {
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    int n = 0;
    if (d == NULL)
        return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void fd_flood(int fd) {
    int dpid = shm->daemon_pid, before = fd_count(dpid), fds[8], refused = 0;
    for (int i = 0; i < 8; i++)
        fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    for (int m = 0; m < 300; m++) {
        struct dpn_req rq = base(DPN_REQ_STATS);
        rq.seq = ++seq;
        char cbuf[CMSG_SPACE(sizeof(fds))];
        memset(cbuf, 0, sizeof(cbuf));
        struct iovec iov = {.iov_base = &rq, .iov_len = sizeof(rq)};
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(fds));
        memcpy(CMSG_DATA(c), fds, sizeof(fds));
        struct dpn_rep rep;
        if (sendmsg(fd, &mh, MSG_NOSIGNAL) == sizeof(rq) &&
            wait_reply(fd, rq.seq, &rep, 2000) == EINVAL)
            refused++;
    }
    for (int i = 0; i < 8; i++)
        close(fds[i]);
    int after = fd_count(dpid);
    result(refused == 300, "300 requests carrying 8 descriptors each: %d refused (want 300)",
           refused);
    result(before > 0 && after == before,
           "dpnetd holds as many descriptors as before the flood (%d before, %d after)", before,
           after);
}

static void request_flood(void) {
    int a = conn_open(), b = conn_open();
    int flags = fcntl(a, F_GETFL);
    fcntl(a, F_SETFL, flags | O_NONBLOCK);
    struct dpn_req rq = base(200); /* rejected: every one is answered */
    unsigned sent = 0, answered = 0;
    struct dpn_rep rep;
    double t0 = now_s(), tb = 0;
    int got_b = -1;
    while (now_s() - t0 < 2.0) {
        rq.seq = ++seq;
        if (send(a, &rq, sizeof(rq), MSG_NOSIGNAL | MSG_DONTWAIT) == sizeof(rq))
            sent++;
        while (recv(a, &rep, sizeof(rep), MSG_DONTWAIT) > 0)
            answered++;
        if (got_b == -1 && now_s() - t0 > 0.5) { /* the flood is on: another worker asks */
            struct dpn_req q = base(0);
            double t1 = now_s();
            got_b = send_req(b, &q, &rep);
            tb = now_s() - t1;
        }
    }
    double el = now_s() - t0;
    result(got_b == EINVAL,
           "another connection is answered during a request flood (%d in %.0f ms; the flood: %u "
           "sent, %u answered in %.1f s)",
           got_b, tb * 1000, sent, answered, el);
    /* dpnetd serves 1000 requests per second per connection, 64 at once. */
    result(answered <= 1000 * el + 64 + 50, "the flood was rate limited (%.0f answers/s)",
           answered / el);
    close(a);
    close(b);
}

static void quotas(struct att *me) {
    struct dpn_rep rep;
    int ok = 0, rc = 0;
    for (uint16_t p = 5000; p < 5000 + 64 && rc == 0; p++)
        ok += (rc = bind_port(me, DPN_PROTO_UDP, p, true, &rep)) == 0;
    result(ok == 64, "64 ports bound by one worker (%d)", ok);
    expect("a 65th port (per-worker quota)", bind_port(me, DPN_PROTO_UDP, 5064, true, &rep), ENOSPC,
           &rep);
    for (uint16_t p = 5000; p < 5000 + 64; p++)
        bind_port(me, DPN_PROTO_UDP, p, false, &rep);
    /* Connections: 4 per process (we hold one). */
    int fds[4], closed = 0;
    for (int i = 0; i < 4; i++) {
        fds[i] = conn_open();
        struct dpn_req q = base(0);
        int r = send_req(fds[i], &q, &rep);
        closed += r == -2 || r == -1;
        if (i < 3 && r != EINVAL)
            result(false, "connection %d of this process refused (%d)", i + 2, r);
    }
    result(closed == 1, "a 5th connection from one process is closed (%d closed)", closed);
    for (int i = 0; i < 4; i++)
        close(fds[i]);
    /* RESOLVE: each may be an ARP broadcast. */
    usleep(300000);
    uint64_t s0 = shm->arp_sent, h0 = shm->arp_throttled;
    double t0 = now_s();
    for (int i = 0; i < 1000; i++) {
        struct dpn_req q = slot_req(me, DPN_REQ_RESOLVE);
        uint32_t ip = rte_be_to_cpu_32(shm->ip);
        q.resolve.ip = rte_cpu_to_be_32((ip & ~0xffu) | (uint32_t)(100 + i % 100));
        q.seq = ++seq;
        if (send(me->fd, &q, sizeof(q), MSG_NOSIGNAL) != sizeof(q))
            break;
    }
    struct dpn_req q = slot_req(me, DPN_REQ_STATS); /* all before it were read */
    send_req(me->fd, &q, &rep);
    double el = now_s() - t0;
    usleep(300000); /* published every 100 ms */
    uint64_t sent = shm->arp_sent - s0, held = shm->arp_throttled - h0;
    result(sent <= 10 + 20 * el + 1 && held > 0,
           "1000 RESOLVEs of 100 addresses in %.1f s: %" PRIu64 " ARP requests sent, %" PRIu64
           " held back (at most 20/s per worker)",
           el, sent, held);
}

static void trust(int fd, const char *app, const char *secret_hex, uint16_t taken) {
    struct trust_args t = {.app = app};
    (void)taken;
    if (hexval(secret_hex, t.secret) != 0) {
        result(false, "--trust: the secret must be 32 hex digits");
        return;
    }
    spoof_fd = fd;
    failures += in_child(spoof_child, NULL);
    spoofed_app(fd, &t);
    fd_flood(fd);
    request_flood();
    struct att me;
    if (!attach_ok(fd, "badctl", &me))
        return;
    quotas(&me);
    int hold[2];
    if (pipe(hold) != 0)
        return;
    t.hold_fd = hold[0];
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        close(hold[1]);
        failures = 0;
        other_uid_child(&t);
        fflush(stdout);
        _exit(failures);
    }
    close(hold[0]);
    /* Wait (bounded) until the other uid's worker holds the last queue. */
    for (int i = 0; i < 50; i++) {
        int n = 0;
        for (unsigned s = 1; s < shm->nb_queues && s < DPN_MAX_SLOTS; s++)
            n += shm->slots[s].state == DPN_SLOT_ATTACHED;
        if (n == shm->nb_queues - 1)
            break;
        usleep(100000);
    }
    failures += in_child(root_child_attach, NULL);
    close(hold[1]);
    int st = 0;
    waitpid(p, &st, 0);
    failures += WIFEXITED(st) ? WEXITSTATUS(st) : 100;
    struct dpn_rep rep;
    expect("detach", detach(&me, &rep), 0, &rep);
}

/* ---- --scribble ---- */

static void scribble(void *base, size_t len, unsigned n) {
    for (unsigned i = 0; i < n; i++)
        ((uint8_t *)base)[rte_rand() % len] = (uint8_t)rte_rand();
}

static void scribble_run(int fd, double secs, unsigned spare) {
    struct att me;
    struct dpn_rep rep;
    if (!attach_ok(fd, "badctl-scribble", &me))
        return;
    expect("UDP port 4001 binds", bind_port(&me, DPN_PROTO_UDP, 4001, true, &rep), 0, &rep);
    struct rte_ring *rings[DPN_MAX_SLOTS] = {0};
    unsigned nr = 0;
    for (unsigned i = 1; i < DPN_MAX_SLOTS; i++) {
        char name[32];
        snprintf(name, sizeof(name), "dpnd_ring%u", i);
        if (i != spare && (rings[nr] = rte_ring_lookup(name)) != NULL)
            nr++;
    }
    unsigned long writes = 0;
    double t0 = now_s();
    while (now_s() - t0 < secs) {
        scribble(shm, sizeof(*shm), 64);
        /* Targeted: what dpnetd once read back. */
        unsigned s = 1 + (unsigned)(rte_rand() % (DPN_MAX_SLOTS - 1));
        shm->slots[s].state = (uint32_t)rte_rand();
        shm->slots[s].gen = (uint32_t)rte_rand();
        shm->slots[s].pid = (int32_t)rte_rand();
        shm->slots[s].lcore = (int32_t)rte_rand();
        shm->slots[s].queue = (uint16_t)rte_rand();
        unsigned b = (unsigned)(rte_rand() % (DPN_MAX_BINDINGS + 1));
        shm->bindings[b].proto = (uint8_t)rte_rand();
        shm->bindings[b].port = (uint16_t)rte_rand();
        shm->bindings[b].slots = (uint16_t)rte_rand();
        shm->neigh[rte_rand() % DPN_NEIGH_SIZE].seq |= 1; /* left odd */
        shm->nb_queues = (uint16_t)rte_rand();
        for (unsigned i = 0; i < nr; i++) {
            scribble(rings[i], sizeof(struct rte_ring), 8);
            rings[i]->mask = (uint32_t)rte_rand();
            rings[i]->size = (uint32_t)rte_rand();
            rings[i]->capacity = (uint32_t)rte_rand();
            rings[i]->cons.tail = (uint32_t)rte_rand();
            rings[i]->prod.head = (uint32_t)rte_rand();
        }
        writes += 64 + 13 + nr * 13;
        usleep(1000);
    }
    result(true, "%lu random writes into dpnd_shm and %u worker rings' headers in %.0f s", writes,
           nr, secs);
    /* dpnetd publishes its tables again every 100 ms. */
    bool back = false;
    for (int i = 0; i < 20 && !back; i++) {
        usleep(100000);
        back = shm->magic == DPN_SHM_MAGIC && shm->abi == DPN_ABI_VERSION &&
               shm->slots[me.slot].state == DPN_SLOT_ATTACHED &&
               shm->slots[me.slot].pid == getpid();
    }
    result(back, "dpnetd published its own view again (magic, our slot)");
    struct dpn_req q = slot_req(&me, DPN_REQ_STATS);
    int rc = send_req(fd, &q, &rep);
    result(rc == 0, "dpnetd still answers (%s)", rep.msg);
    expect("detach after the scribbling", detach(&me, &rep), 0, &rep);
}

int main(int argc, char **argv) {
    int n = rte_eal_init(argc, argv);
    if (n < 0) {
        fprintf(stderr, "badctl: EAL init failed\n");
        return 1;
    }
    argc -= n;
    argv += n; /* argv[0] = program name, "--" consumed */
    if (argc < 2) {
        fprintf(stderr,
                "usage: badctl <EAL> -- TAKEN_PORT [--trust APP SECRET] [--scribble SECONDS "
                "SPARE_SLOT]\n");
        return 2;
    }
    const struct rte_memzone *mz = rte_memzone_lookup(DPN_SHM_NAME);
    if (mz == NULL) {
        fprintf(stderr, "badctl: no dpnetd\n");
        return 1;
    }
    shm = mz->addr;
    uint16_t taken = (uint16_t)atoi(argv[1]);
    int fd = conn_open();
    if (argc >= 5 && strcmp(argv[2], "--scribble") == 0) {
        scribble_run(fd, atof(argv[3]), (unsigned)atoi(argv[4]));
    } else if (argc >= 5 && strcmp(argv[2], "--trust") == 0) {
        trust(fd, argv[3], argv[4], taken);
    } else {
        legacy_rte_mp();
        lcore_cases();
        malformed(&fd);
        struct att me;
        if (!attach_ok(fd, "badctl", &me))
            return 1;
        worker_requests(&me, taken);
        struct dpn_rep rep;
        expect("detach", detach(&me, &rep), 0, &rep);
        struct dpn_req b = slot_req(&me, DPN_REQ_BIND);
        b.bind.proto = DPN_PROTO_TCP;
        b.bind.port = 4002;
        expect("a request after detach", send_req(fd, &b, &rep), EPERM, &rep);
    }
    close(fd);
    rte_eal_cleanup();
    return failures == 0 ? 0 : 1;
}
