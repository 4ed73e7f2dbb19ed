/* dpnetctl capture: ask dpnetd for a packet capture and wait for its end.
 * No EAL here: only dpnetd's control socket. The file is opened here, with
 * the caller's rights, and dpnetd writes it through its own copy of the
 * descriptor (pidfd_getfd); Ctrl-C ends the capture and dpnetd says how
 * many frames it wrote. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "abi.h"
#include "dpnetctl.h"
#include "eal_lcore.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
    (void)sig;
    interrupted = 1;
}

static int bad(const char *what) {
    fprintf(stderr, "dpnetctl capture: %s\n", what);
    return 2;
}

static bool num(const char *s, unsigned long max, unsigned long *v) {
    char *end;
    errno = 0;
    *v = strtoul(s, &end, 10);
    return s[0] >= '0' && s[0] <= '9' && *end == '\0' && errno == 0 && *v <= max;
}

struct cap_args {
    const char *file;
    struct dpn_req rq;
};

/* Options, then the filter's words (tcpdump's syntax, joined by spaces). */
static int parse(int argc, char **argv, struct cap_args *a) {
    unsigned long v;
    size_t flen = 0;
    a->rq.capture.port = DPN_CAP_ANY_PORT;
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        bool has = val != NULL;
        if (!strcmp(o, "-w") && has) {
            a->file = argv[++i];
        } else if (!strcmp(o, "--worker") && has && num(val, DPN_MAX_SLOTS - 1, &v) && v > 0) {
            a->rq.capture.slot = (uint16_t)v, i++;
        } else if (!strcmp(o, "--app") && has && strlen(val) < DPN_APP_NAME && val[0] != '\0') {
            snprintf(a->rq.capture.app, sizeof(a->rq.capture.app), "%s", argv[++i]);
        } else if (!strcmp(o, "--port") && has && num(val, UINT16_MAX - 1, &v)) {
            a->rq.capture.port = (uint16_t)v, i++;
        } else if ((!strcmp(o, "--count") || !strcmp(o, "-c")) && has && num(val, UINT32_MAX, &v)) {
            a->rq.capture.count = (uint32_t)v, i++;
        } else if (!strcmp(o, "--duration") && has && num(val, UINT32_MAX / 1000, &v)) {
            a->rq.capture.duration_ms = (uint32_t)(v * 1000), i++;
        } else if ((!strcmp(o, "--snaplen") || !strcmp(o, "-s")) && has &&
                   num(val, DPN_CAP_SNAP_MAX, &v)) {
            a->rq.capture.snaplen = (uint16_t)v, i++;
        } else if (o[0] == '-') {
            fprintf(stderr, "dpnetctl capture: bad option or value: %s%s%s\n", o, has ? " " : "",
                    has ? val : "");
            return 2;
        } else { /* a word of the filter */
            size_t k = strlen(o);
            if (flen + k + 2 > sizeof(a->rq.capture.filter))
                return bad("the filter is too long (at most 175 characters)");
            if (flen > 0)
                a->rq.capture.filter[flen++] = ' ';
            memcpy(a->rq.capture.filter + flen, o, k + 1);
            flen += k;
        }
    }
    if (a->file == NULL)
        return bad("-w FILE is required (FILE may be - for standard output)");
    if (a->rq.capture.slot != 0 && a->rq.capture.app[0] != '\0')
        return bad("--worker and --app exclude each other");
    return 0;
}

static int open_out(const char *file) {
    if (!strcmp(file, "-")) {
        if (isatty(STDOUT_FILENO)) {
            fprintf(stderr, "dpnetctl capture: standard output is a terminal; pipe it to "
                            "tcpdump -r - or tshark -r -\n");
            return -1;
        }
        return STDOUT_FILENO;
    }
    /* Captures hold other people's traffic: readable by their owner only. */
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        fprintf(stderr, "dpnetctl capture: cannot open %s: %s\n", file, strerror(errno));
    return fd;
}

static int ctl_connect(const char *prefix) {
    char dir[PATH_MAX];
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    dpn_eal_runtime_dir(prefix, dir, sizeof(dir));
    if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, DPN_CTL_SOCKET) >=
        sizeof(sa.sun_path))
        return -1;
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        fd = -1;
    }
    if (fd < 0)
        fprintf(stderr, "dpnetctl capture: cannot reach dpnetd's control socket %s: %s\n",
                sa.sun_path, strerror(errno));
    return fd;
}

/* The next reply to seq, or -1 when the connection ended or timeout_ms
 * passed (-1 = no limit; a signal ends the wait too, returning 1). */
static int wait_reply(int fd, uint32_t seq, int timeout_ms, struct dpn_rep *rep) {
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR)
            return 1;
        if (r <= 0)
            return -1;
        ssize_t k = recv(fd, rep, sizeof(*rep), 0);
        if (k != (ssize_t)sizeof(*rep))
            return -1;
        if (rep->seq == seq)
            return 0;
    }
}

int dpnetctl_capture(const char *prefix, int argc, char **argv) {
    struct cap_args a;
    memset(&a, 0, sizeof(a));
    int rc = parse(argc, argv, &a);
    if (rc != 0)
        return rc;
    int out = open_out(a.file);
    if (out < 0)
        return 1;
    int fd = ctl_connect(prefix);
    if (fd < 0)
        return 1;
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: poll returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    a.rq.abi = DPN_ABI_VERSION;
    a.rq.type = DPN_REQ_CAPTURE;
    a.rq.seq = 1;
    a.rq.capture.fd = out;
    struct dpn_rep rep;
    memset(&rep, 0, sizeof(rep));
    if (send(fd, &a.rq, sizeof(a.rq), MSG_NOSIGNAL) != sizeof(a.rq) ||
        wait_reply(fd, 1, 5000, &rep) != 0) {
        fprintf(stderr, "dpnetctl capture: dpnetd did not answer\n");
        return 1;
    }
    if (rep.err != 0) {
        fprintf(stderr, "dpnetctl capture: dpnetd refused: %s\n",
                rep.msg[0] ? rep.msg : strerror(rep.err));
        return 1;
    }
    if (out != STDOUT_FILENO)
        close(out); /* dpnetd has its own */
    fprintf(stderr, "dpnetctl capture: %s to %s%s%s (Ctrl-C ends it)\n", rep.msg, a.file,
            a.rq.capture.filter[0] ? ", filter: " : "", a.rq.capture.filter);
    bool stop_sent = false;
    for (;;) {
        rc = wait_reply(fd, 1, stop_sent ? 5000 : -1, &rep);
        if (rc == 1 || (interrupted && !stop_sent)) {
            struct dpn_req st = {.abi = DPN_ABI_VERSION, .type = DPN_REQ_CAPTURE_STOP, .seq = 2};
            stop_sent = send(fd, &st, sizeof(st), MSG_NOSIGNAL) == sizeof(st);
            if (!stop_sent)
                break;
            continue;
        }
        break;
    }
    close(fd);
    if (rc != 0) {
        fprintf(stderr, "dpnetctl capture: dpnetd went away before the capture ended\n");
        return 1;
    }
    fprintf(stderr, "dpnetctl capture: %" PRIu64 " frames written, %" PRIu64 " lost%s%s\n",
            rep.frames, rep.dropped, rep.err ? ": " : "", rep.err ? rep.msg : "");
    return rep.err != 0;
}
