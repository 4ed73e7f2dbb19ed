/* libdpnet-posix.so: POSIX TCP and UDP sockets and epoll on a dpnet worker,
 * for unmodified programs (LD_PRELOAD, started by tools/dpnet-run --preload).
 *
 * Each dpnet socket keeps the kernel socket socket() made: its number is
 * the program's descriptor (no clash with files, closed by the kernel at
 * exit), and the kernel socket itself carries nothing. A socket goes to
 * dpnet when it is bound to dpnet's address or to any address, or connects
 * (UDP: or first sends) to anything but loopback; IPv6, unix sockets,
 * loopback and every other descriptor stay the kernel's. Blocking calls and epoll_wait run the
 * worker's loop (dpn_poll) while they wait; a program's epoll set keeps its
 * kernel descriptors in the kernel and its dpnet sockets here, and waits on
 * both. One mutex serialises every call into dpnet: a program's threads
 * may share sockets, and whichever thread waits polls. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "dpnet.h"

#define MAXFD 65536
#define RXQ 1024              /* received buffers held per socket before reading pauses */
#define SPIN_NS 50000         /* busy-poll this long before sleeping (DPNET_POSIX_SPIN_US) */
#define KERNEL_EVERY_NS 20000 /* a spinning epoll_wait looks at kernel fds this often */
#define NAP_MAX_US 200        /* longest nap without a descriptor to sleep on (memif) */
/* Asleep at most this long: lwIP's timers, and the wake-ups net_tap's fds
 * miss (0.2% of a client's round trips waited the whole sleep; cause unknown). */
#define SLEEP_MAX_MS 2
#define WAIT_TAG UINT64_MAX /* epoll data of dpnet's own descriptor in a program's set */

/* ---- the C library's functions ---- */
static struct {
    int (*socket)(int, int, int);
    int (*bind)(int, const struct sockaddr *, socklen_t);
    int (*listen)(int, int);
    int (*accept4)(int, struct sockaddr *, socklen_t *, int);
    int (*connect)(int, const struct sockaddr *, socklen_t);
    ssize_t (*read)(int, void *, size_t);
    ssize_t (*write)(int, const void *, size_t);
    ssize_t (*readv)(int, const struct iovec *, int);
    ssize_t (*writev)(int, const struct iovec *, int);
    ssize_t (*recv)(int, void *, size_t, int);
    ssize_t (*send)(int, const void *, size_t, int);
    ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
    ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
    ssize_t (*recvmsg)(int, struct msghdr *, int);
    ssize_t (*sendmsg)(int, const struct msghdr *, int);
    ssize_t (*sendfile)(int, int, off_t *, size_t);
    int (*close)(int);
    int (*shutdown)(int, int);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*fcntl)(int, int, ...);
    int (*ioctl)(int, unsigned long, ...);
    int (*setsockopt)(int, int, int, const void *, socklen_t);
    int (*getsockopt)(int, int, int, void *, socklen_t *);
    int (*getsockname)(int, struct sockaddr *, socklen_t *);
    int (*getpeername)(int, struct sockaddr *, socklen_t *);
    int (*epoll_create1)(int);
    int (*epoll_ctl)(int, int, int, struct epoll_event *);
    int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
    int (*poll)(struct pollfd *, nfds_t, int);
    int (*sigaction)(int, const struct sigaction *, struct sigaction *);
} real;

#define RESOLVE(f) real.f = dlsym(RTLD_NEXT, #f)
static void resolve(void) {
    RESOLVE(socket), RESOLVE(bind), RESOLVE(listen), RESOLVE(accept4), RESOLVE(connect);
    RESOLVE(read), RESOLVE(write), RESOLVE(readv), RESOLVE(writev), RESOLVE(recv), RESOLVE(send);
    RESOLVE(recvfrom), RESOLVE(sendto), RESOLVE(recvmsg), RESOLVE(sendmsg), RESOLVE(sendfile);
    RESOLVE(close), RESOLVE(shutdown), RESOLVE(dup), RESOLVE(dup2), RESOLVE(dup3);
    RESOLVE(fcntl), RESOLVE(ioctl), RESOLVE(setsockopt), RESOLVE(getsockopt);
    RESOLVE(getsockname), RESOLVE(getpeername), RESOLVE(epoll_create1), RESOLVE(epoll_ctl);
    RESOLVE(epoll_pwait), RESOLVE(poll), RESOLVE(sigaction);
}
__attribute__((constructor)) static void on_load(void) {
    resolve();
}
#define REAL(f) (real.f != NULL ? real.f : (resolve(), real.f))

/* ---- state ---- */
struct udp_src { /* where a queued datagram came from */
    uint32_t ip;
    uint16_t port;
};

struct psock {
    int refs; /* descriptors naming it (dup) */
    bool dp;  /* on dpnet; false: the kernel's, not yet decided */
    bool udp; /* SOCK_DGRAM: u, datagrams in rxq with their sources in src */
    struct dpn_udp *u;
    struct udp_src *src;
    uint32_t peer_ip; /* connect()ed UDP: the default destination */
    uint16_t peer_port;
    uint64_t udp_dropped; /* datagrams that found the queue full */
    bool nonblock, listening, connecting, connected, eof, rd_shut, wr_shut, rx_paused;
    int err; /* errno to report (SO_ERROR, or the next call) */
    uint16_t lport;
    uint32_t seq;                /* bumped by every event: edge-triggered epoll */
    uint64_t rcvtimeo, sndtimeo; /* SO_RCVTIMEO, SO_SNDTIMEO in ns (0: none) */
    /* epoll sets it joined before it was decided (they went to the kernel):
     * moved to ours when it goes to dpnet */
    struct {
        int epfd;
        struct epoll_event ev;
    } early[4];
    unsigned early_n;
    struct dpn_listener *lis;
    struct psock **acq; /* accepted, waiting for accept() */
    unsigned acq_head, acq_n, acq_cap;
    struct dpn_conn *c;
    struct dpn_buf *rxq[RXQ];
    unsigned rx_head, rx_n;
    size_t rx_off, rx_bytes; /* into the first buffer; bytes held */
};

struct pep_ent {
    int fd;
    struct psock *ps; /* the socket the entry was made for: gone or replaced = dropped */
    struct epoll_event ev;
    uint32_t seen; /* ps->seq last reported (EPOLLET) */
};
struct pep { /* a program's epoll set: its dpnet members */
    struct pep_ent *e;
    unsigned n, cap;
    int kernel_n; /* kernel descriptors added (a hint: closing one does not tell us) */
};

static void adopt_early(int fd, struct psock *ps);

static pthread_mutex_t big = PTHREAD_MUTEX_INITIALIZER;
static __thread int inside; /* in dpnet or DPDK: every call is the kernel's */
/* dpn_init runs with big held and waits for DPDK's threads, whose calls
 * must not wait for big: while it runs, every thread's are the kernel's. */
static volatile int starting;
static struct dpn_worker *W;
static int state; /* 0 not started, 1 running, -1 failed or closed, 2 a forked child */
static uint32_t our_ip, wait_fd = (uint32_t)-1;
static uint64_t spin_ns = SPIN_NS; /* UINT64_MAX: never sleep (benchmarks) */
static struct psock *tab[MAXFD];
static struct pep *eps[MAXFD];

static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "dpnet-posix: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* A forked child shares the parent's DPDK memory and port: it must not run
 * the worker, free its mbufs or close it at exit. Its dpnet sockets act as
 * the unconnected kernel sockets behind their numbers (ENOTCONN, ...). */
static void on_fork_child(void) {
    pthread_mutex_init(&big, NULL); /* another thread may have held it */
    if (state == 1)
        state = 2;
}

static struct psock *dpsock(int fd) {
    struct psock *ps = fd >= 0 && fd < MAXFD ? tab[fd] : NULL;
    if (ps == NULL || !ps->dp)
        return NULL;
    if (state == 2) {
        static bool said;
        if (!said)
            say("pid %d: a forked child cannot use its parent's dpnet sockets", (int)getpid());
        said = true;
        return NULL;
    }
    return ps;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- signals ----
 * A wait in dpnet spins in the program's thread, or sleeps on a descriptor
 * the program does not know: a signal caught then runs its handler and
 * would leave the call waiting (nginx, told to stop while it spun, never
 * returned from epoll_wait). So the program's handlers run through
 * on_signal, which counts them for the thread they interrupt, and a wait
 * ends as the kernel's would: epoll_wait, poll and select with EINTR after
 * any handler; a blocking socket call after a handler without SA_RESTART,
 * or after any when the socket has a timeout (SO_RCVTIMEO, SO_SNDTIMEO). */
static struct sigaction handlers[NSIG]; /* the program's, where on_signal stands in */
static volatile sig_atomic_t wrapped[NSIG];
/* Per thread, initial-exec: read in a handler without an allocation. */
static __thread __attribute__((tls_model("initial-exec"))) volatile unsigned sig_any, sig_intr;

static void on_signal(int sig, siginfo_t *si, void *uc) {
    struct sigaction h = handlers[sig];
    sig_any++;
    if (!(h.sa_flags & SA_RESTART))
        sig_intr++;
    if (h.sa_flags & SA_RESETHAND) { /* the kernel reset its own handler */
        wrapped[sig] = 0;
        handlers[sig].sa_handler = SIG_DFL;
    }
    if (h.sa_flags & SA_SIGINFO)
        h.sa_sigaction(sig, si, uc);
    else if (h.sa_handler != SIG_DFL && h.sa_handler != SIG_IGN)
        h.sa_handler(sig);
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    if (inside || sig <= 0 || sig >= NSIG)
        return REAL(sigaction)(sig, act, old);
    struct sigaction prev = handlers[sig], k;
    bool was = wrapped[sig];
    /* SIG_DFL and SIG_IGN are the kernel's to act on (either union member) */
    bool wrap = act != NULL && act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN;
    if (wrap) {
        handlers[sig] = *act; /* before the kernel can call on_signal for it */
        k = *act;
        k.sa_flags |= SA_SIGINFO;
        k.sa_sigaction = on_signal;
    }
    int rc = REAL(sigaction)(sig, wrap ? &k : act, old);
    if (rc != 0) {
        handlers[sig] = prev;
        return rc;
    }
    if (act != NULL)
        wrapped[sig] = wrap;
    if (old != NULL && was)
        *old = prev;
    return 0;
}

/* glibc's signal() reaches its sigaction inside the library: not here. */
sighandler_t signal(int sig, sighandler_t h) {
    if (h == SIG_ERR || sig <= 0 || sig >= NSIG) {
        errno = EINVAL;
        return SIG_ERR;
    }
    struct sigaction a = {.sa_handler = h, .sa_flags = SA_RESTART}, o; /* BSD semantics */
    sigemptyset(&a.sa_mask);
    sigaddset(&a.sa_mask, sig);
    return sigaction(sig, &a, &o) == 0 ? o.sa_handler : SIG_ERR;
}

/* What a blocking call on one socket waits with: since when it spins, until
 * when (its socket's timeout; 0: none), and the thread's signal counts when
 * it began. */
struct waiter {
    uint64_t t0, deadline;
    unsigned any, intr;
};

static struct waiter waiter_of(uint64_t timeout_ns) {
    uint64_t t = now_ns();
    return (struct waiter){t, timeout_ns != 0 ? t + timeout_ns : 0, sig_any, sig_intr};
}

/* -EINTR if a handler ran since w began that ends the wait, as the kernel's:
 * any with a timeout set, one without SA_RESTART otherwise. */
static int interrupted(const struct waiter *w) {
    bool intr = w->deadline != 0 ? sig_any != w->any : sig_intr != w->intr;
    return intr ? -EINTR : 0;
}

static void worker_close(void) {
    pthread_mutex_lock(&big);
    if (state == 1) {
        inside++;
        dpn_close(W);
        inside--;
        state = -1;
    }
    pthread_mutex_unlock(&big);
}

/* Start the worker on first use, from DPNET_ARGS ("EAL options -- dpnet
 * options", as on an echoserver's command line). Called with big held. */
static bool started(void) {
    if (state != 0)
        return state == 1;
    state = -1;
    const char *env = getenv("DPNET_ARGS");
    if (env == NULL || *env == '\0') {
        say("DPNET_ARGS is not set: every socket stays the kernel's");
        return false;
    }
    static char buf[4096];
    static char *argv[128];
    int argc = 0;
    snprintf(buf, sizeof(buf), "%s", env);
    argv[argc++] = "dpnet-posix";
    for (char *t = strtok(buf, " \t"); t != NULL && argc < 127; t = strtok(NULL, " \t"))
        argv[argc++] = t;
    argv[argc] = NULL;
    /* dpn_init takes SIGINT and SIGTERM for dpn_run: the program keeps its
     * own. DPDK's threads start with every signal blocked but the ones a
     * fault raises: a signal for the process goes to one of the program's
     * threads, whose handler ends its wait (see on_signal), as without
     * dpnet; not to a DPDK thread, leaving the program's asleep. */
    struct sigaction si, st;
    REAL(sigaction)(SIGINT, NULL, &si);
    REAL(sigaction)(SIGTERM, NULL, &st);
    sigset_t block, mask;
    sigfillset(&block);
    const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS};
    for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
        sigdelset(&block, faults[i]);
    pthread_sigmask(SIG_BLOCK, &block, &mask);
    char **av = argv;
    inside++;
    starting = 1;
    int rc = dpn_init(&argc, &av, &W);
    starting = 0;
    inside--;
    pthread_sigmask(SIG_SETMASK, &mask, NULL);
    REAL(sigaction)(SIGINT, &si, NULL);
    REAL(sigaction)(SIGTERM, &st, NULL);
    if (rc != 0) {
        say("dpnet did not start (%s): every socket stays the kernel's", dpn_strerror(rc));
        return false;
    }
    our_ip = dpn_local_ip(W);
    const char *spin = getenv("DPNET_POSIX_SPIN_US");
    if (spin != NULL && *spin != '\0') {
        char *end;
        long us = strtol(spin, &end, 10);
        if (strcmp(spin, "busy") == 0 || (*end == '\0' && us < 0))
            spin_ns = UINT64_MAX;
        else if (*end == '\0')
            spin_ns = (uint64_t)us * 1000u;
        else
            say("DPNET_POSIX_SPIN_US=%s: not a number of microseconds or 'busy'; 50 used", spin);
    }
    wait_fd = (uint32_t)dpn_wait_fd(W);
    state = 1;
    atexit(worker_close);
    pthread_atfork(NULL, NULL, on_fork_child);
    return true;
}

/* One turn of the worker's loop (big held). */
static void pump(void) {
    if (state == 1) {
        inside++;
        dpn_poll(W);
        inside--;
    }
}

static void ps_free(struct psock *ps) {
    free(ps->acq);
    free(ps->src);
    free(ps);
}

static void rx_drop_all(struct psock *ps) {
    for (; ps->rx_n > 0; ps->rx_n--, ps->rx_head = (ps->rx_head + 1) % RXQ)
        dpn_buf_free(ps->rxq[ps->rx_head]);
    ps->rx_bytes = ps->rx_off = 0;
}

/* ---- dpnet's callbacks (inside dpn_poll, big held) ---- */
static const struct dpn_tcp_ops ops;

static int on_accepted(void *lctx, struct dpn_conn *c) {
    struct psock *l = lctx;
    if (l == NULL || l->acq_n == l->acq_cap)
        return -1; /* backlog full (or closing): reset, as a full SYN queue would not */
    struct psock *ps = calloc(1, sizeof(*ps));
    if (ps == NULL)
        return -1;
    ps->dp = ps->connected = true;
    ps->c = c;
    dpn_conn_set_ctx(c, ps);
    l->acq[(l->acq_head + l->acq_n++) % l->acq_cap] = ps;
    l->seq++;
    return 0;
}

static void on_connected(void *ctx, struct dpn_conn *c, int err) {
    struct psock *ps = ctx;
    ps->connecting = false;
    if (err != 0) {
        ps->err = -err;
        ps->c = NULL;
    } else {
        ps->connected = true;
        ps->c = c;
    }
    ps->seq++;
}

static void on_recv(void *ctx, struct dpn_conn *c, struct dpn_buf *b) {
    struct psock *ps = ctx;
    if (ps->rd_shut) { /* SHUT_RD: dropped, as Linux does */
        dpn_recv_done(c, b);
        return;
    }
    ps->rxq[(ps->rx_head + ps->rx_n++) % RXQ] = b;
    ps->rx_bytes += dpn_buf_len(b);
    if (ps->rx_n == RXQ - 1 && !ps->rx_paused) {
        dpn_read_stop(c);
        ps->rx_paused = true;
    }
    ps->seq++;
}

static void on_eof(void *ctx, struct dpn_conn *c) {
    (void)c;
    struct psock *ps = ctx;
    ps->eof = true;
    ps->seq++;
}

static void on_sent(void *ctx, struct dpn_conn *c, size_t len) {
    (void)c, (void)len;
    ((struct psock *)ctx)->seq++;
}

static void on_closed(void *ctx, struct dpn_conn *c, int err) {
    (void)c;
    struct psock *ps = ctx;
    ps->c = NULL;
    ps->eof = true;
    if (err != 0 && ps->err == 0)
        ps->err = -err;
    ps->seq++;
}

static void on_udp(void *ctx, struct dpn_udp *u, struct dpn_buf *b, uint32_t ip, uint16_t port) {
    (void)u;
    struct psock *ps = ctx;
    if (ps->rx_n == RXQ) { /* as a full socket buffer: dropped */
        ps->udp_dropped++;
        dpn_buf_free(b);
        return;
    }
    unsigned i = (ps->rx_head + ps->rx_n++) % RXQ;
    ps->rxq[i] = b;
    ps->src[i] = (struct udp_src){ip, port};
    ps->rx_bytes += dpn_buf_len(b);
    ps->seq++;
}

/* A UDP socket goes to dpnet on port (0: ephemeral); big held. */
static int udp_open(int fd, struct psock *ps, uint16_t port) {
    inside++;
    int rc = dpn_udp_bind(W, port, on_udp, ps, &ps->u);
    inside--;
    if (rc != 0)
        return rc;
    ps->dp = true;
    ps->lport = port;
    adopt_early(fd, ps);
    return 0;
}

static const struct dpn_tcp_ops ops = {.accepted = on_accepted,
                                       .connected = on_connected,
                                       .recv = on_recv,
                                       .eof = on_eof,
                                       .sent = on_sent,
                                       .closed = on_closed};

/* ---- readiness ---- */
static uint32_t ps_events(const struct psock *ps) {
    if (ps->udp)
        return (ps->rx_n > 0 ? EPOLLIN | EPOLLRDNORM : 0) | EPOLLOUT | EPOLLWRNORM;
    if (ps->listening)
        return ps->acq_n > 0 ? EPOLLIN : 0;
    if (ps->connecting)
        return 0;
    uint32_t ev = 0;
    if (ps->rx_n > 0 || ps->eof)
        ev |= EPOLLIN | EPOLLRDNORM;
    if (ps->eof)
        ev |= EPOLLRDHUP;
    if (ps->c == NULL && (ps->connected || ps->err != 0))
        ev |= EPOLLIN | EPOLLOUT | EPOLLHUP; /* as Linux: a dead socket is readable and writable */
    if (ps->err != 0)
        ev |= EPOLLERR;
    if (ps->c != NULL && !ps->wr_shut && dpn_send_space(ps->c) > 0)
        ev |= EPOLLOUT | EPOLLWRNORM;
    return ev;
}

/* Wait for dpnet (big held; released while asleep): one turn of the loop,
 * then, once SPIN_NS passed without progress since t0, a sleep on dpnet's
 * descriptor or a short nap. Returns false once the deadline (0: none)
 * has passed. */
static bool wait_turn(uint64_t t0, uint64_t deadline) {
    pump();
    uint64_t now = now_ns();
    if (deadline != 0 && now >= deadline)
        return false;
    if (now - t0 < spin_ns)
        return true;
    pthread_mutex_unlock(&big);
    if ((int)wait_fd >= 0) {
        /* dpnet's descriptor is an epoll set: wait in it, as dpn_run does */
        struct epoll_event e;
        int ms = SLEEP_MAX_MS;
        if (deadline != 0 && (deadline - now) / 1000000 < (uint64_t)ms)
            ms = (int)((deadline - now + 999999) / 1000000);
        REAL(epoll_pwait)((int)wait_fd, &e, 1, ms, NULL);
    } else {
        usleep(NAP_MAX_US);
    }
    pthread_mutex_lock(&big);
    return true;
}

/* One wait_turn for ps's next event, the spin before sleeping restarted
 * whenever the socket saw one (big held). The caller has looked at ps since
 * the last turn: 0, or why the wait ends first: -EINTR (interrupted), or
 * -EAGAIN once the socket's timeout has passed. */
static int wait_event(const struct psock *ps, struct waiter *w) {
    int rc = interrupted(w);
    if (rc != 0)
        return rc;
    if (w->deadline != 0 && now_ns() >= w->deadline)
        return -EAGAIN;
    uint32_t before = ps->seq;
    wait_turn(w->t0, w->deadline);
    if (ps->seq != before)
        w->t0 = now_ns();
    return 0;
}

static uint64_t deadline_of(int timeout_ms) {
    return timeout_ms < 0 ? 0 : now_ns() + (uint64_t)timeout_ms * 1000000ull + 1;
}

/* ---- socket calls ---- */
int socket(int domain, int type, int protocol) {
    int fd = REAL(socket)(domain, type, protocol);
    int kind = type & 0xf;
    bool tcp = kind == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP);
    bool udp = kind == SOCK_DGRAM && (protocol == 0 || protocol == IPPROTO_UDP);
    if (fd < 0 || inside || starting || domain != AF_INET || !(tcp || udp) || fd >= MAXFD)
        return fd;
    struct psock *ps = calloc(1, sizeof(*ps));
    if (ps != NULL && udp && (ps->src = calloc(RXQ, sizeof(*ps->src))) == NULL) {
        free(ps);
        ps = NULL;
    }
    if (ps == NULL)
        return fd; /* the kernel's then */
    ps->udp = udp;
    ps->refs = 1;
    ps->nonblock = (type & SOCK_NONBLOCK) != 0;
    pthread_mutex_lock(&big);
    tab[fd] = ps;
    pthread_mutex_unlock(&big);
    return fd;
}

static int pep_add(struct pep *p, int fd, struct psock *ps, const struct epoll_event *ev);

/* The socket just went to dpnet: the epoll sets it joined while undecided
 * hold its idle kernel socket (which reports EPOLLOUT|EPOLLHUP while
 * unconnected); it leaves them for our side of each (big held). */
static void adopt_early(int fd, struct psock *ps) {
    for (unsigned i = 0; i < ps->early_n; i++) {
        int epfd = ps->early[i].epfd;
        if (epfd < 0 || epfd >= MAXFD || eps[epfd] == NULL)
            continue; /* closed since */
        REAL(epoll_ctl)(epfd, EPOLL_CTL_DEL, fd, NULL);
        eps[epfd]->kernel_n--;
        pep_add(eps[epfd], fd, ps, &ps->early[i].ev);
    }
    ps->early_n = 0;
}

/* An undecided socket goes to the kernel for good. */
static void to_kernel(int fd) {
    struct psock *ps = tab[fd];
    if (ps != NULL && !ps->dp) {
        tab[fd] = NULL;
        if (--ps->refs == 0)
            ps_free(ps);
    }
}

static bool is_loopback(uint32_t ip) {
    return (ip >> 24) == 127;
}

int bind(int fd, const struct sockaddr *sa, socklen_t len) {
    if (inside || fd < 0 || fd >= MAXFD || tab[fd] == NULL)
        return REAL(bind)(fd, sa, len);
    if (tab[fd]->dp) {
        errno = EINVAL; /* bound already */
        return -1;
    }
    if (sa == NULL || len < sizeof(struct sockaddr_in) || sa->sa_family != AF_INET)
        return REAL(bind)(fd, sa, len); /* the kernel says what is wrong */
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    uint32_t ip = ntohl(in->sin_addr.s_addr);
    pthread_mutex_lock(&big);
    bool ours = started() && (ip == INADDR_ANY || ip == our_ip);
    if (!ours) {
        to_kernel(fd);
        pthread_mutex_unlock(&big);
        return REAL(bind)(fd, sa, len);
    }
    struct psock *ps = tab[fd];
    int rc = 0;
    if (ps->udp) {
        rc = udp_open(fd, ps, ntohs(in->sin_port));
    } else {
        ps->dp = true;
        adopt_early(fd, ps);
        ps->lport = ntohs(in->sin_port);
    }
    pthread_mutex_unlock(&big);
    return rc < 0 ? (errno = -rc, -1) : 0;
}

int listen(int fd, int backlog) {
    if (inside || starting)
        return REAL(listen)(fd, backlog);
    struct psock *ps = dpsock(fd);
    if (ps == NULL) {
        pthread_mutex_lock(&big);
        if (fd >= 0 && fd < MAXFD && tab[fd] != NULL)
            to_kernel(fd); /* listen without bind: the kernel's choice of port */
        pthread_mutex_unlock(&big);
        return REAL(listen)(fd, backlog);
    }
    pthread_mutex_lock(&big);
    int rc = 0;
    if (ps->udp) {
        rc = -EOPNOTSUPP; /* as Linux: datagram sockets do not listen */
    } else if (ps->listening) {
        rc = 0; /* Linux: a second listen only changes the backlog */
    } else if (ps->lport == 0) {
        say("listen on an unbound socket or port 0 is not supported on dpnet");
        rc = -EOPNOTSUPP;
    } else {
        unsigned cap = backlog < 1 ? 1 : backlog > 4096 ? 4096 : (unsigned)backlog;
        ps->acq = calloc(cap, sizeof(*ps->acq));
        if (ps->acq == NULL) {
            rc = -ENOMEM;
        } else {
            ps->acq_cap = cap;
            inside++;
            rc = dpn_listen(W, ps->lport, &ops, ps, &ps->lis);
            inside--;
            if (rc == 0)
                ps->listening = true;
        }
    }
    pthread_mutex_unlock(&big);
    return rc < 0 ? (errno = -rc, -1) : 0;
}

static void fill_addr(struct sockaddr *sa, socklen_t *len, uint32_t ip, uint16_t port) {
    if (sa == NULL || len == NULL)
        return;
    struct sockaddr_in in = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(ip)};
    memcpy(sa, &in, *len < sizeof(in) ? *len : sizeof(in));
    *len = sizeof(in);
}

/* The keepalive options, in the order keepalive_sync reads them. */
enum { KA_OPTS = 4 };
static const int ka_opts[KA_OPTS][2] = {{SOL_SOCKET, SO_KEEPALIVE},
                                        {IPPROTO_TCP, TCP_KEEPIDLE},
                                        {IPPROTO_TCP, TCP_KEEPINTVL},
                                        {IPPROTO_TCP, TCP_KEEPCNT}};

static bool is_keepalive(int level, int name) {
    for (size_t i = 0; i < KA_OPTS; i++)
        if (ka_opts[i][0] == level && ka_opts[i][1] == name)
            return true;
    return false;
}

/* Keepalive as the kernel socket kfd holds it (SO_KEEPALIVE, TCP_KEEPIDLE,
 * TCP_KEEPINTVL, TCP_KEEPCNT: checked and kept there, Linux's defaults
 * included) onto ps's connection (big held). Called when one of them is set
 * on a connection, and when a connection starts: set before connect, or on
 * the listener, whose accepted sockets inherit them as on Linux. */
static void keepalive_sync(int kfd, struct psock *ps) {
    if (ps->c == NULL)
        return;
    int v[KA_OPTS] = {0}; /* on, idle s, interval s, count */
    for (size_t i = 0; i < KA_OPTS; i++) {
        socklen_t l = sizeof(v[i]);
        if (REAL(getsockopt)(kfd, ka_opts[i][0], ka_opts[i][1], &v[i], &l) != 0)
            return;
    }
    if (v[0] && (v[1] <= 0 || v[2] <= 0 || v[3] <= 0))
        return; /* the kernel never holds such values; nothing sane to apply */
    inside++;
    dpn_conn_keepalive(ps->c, v[0] ? (uint32_t)v[1] * 1000u : 0, (uint32_t)v[2] * 1000u,
                       (uint32_t)v[3]);
    inside--;
}

/* An accepted socket's kernel descriptor takes the listener's keepalive
 * options and timeouts, as Linux's accepted sockets do (getsockopt reads
 * them back; keepalive_sync and timeouts_sync act on them). */
static void options_inherit(int lfd, int nfd) {
    static const int more[2][2] = {{SOL_SOCKET, SO_RCVTIMEO}, {SOL_SOCKET, SO_SNDTIMEO}};
    for (size_t i = 0; i < KA_OPTS + 2; i++) {
        const int *o = i < KA_OPTS ? ka_opts[i] : more[i - KA_OPTS];
        struct timeval v; /* the largest of them */
        socklen_t l = sizeof(v);
        if (REAL(getsockopt)(lfd, o[0], o[1], &v, &l) == 0)
            REAL(setsockopt)(nfd, o[0], o[1], &v, l);
    }
}

static bool is_timeout(int level, int name) {
    return level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO);
}

/* The socket timeouts as the kernel socket kfd holds them (checked there)
 * onto ps: the blocking calls' deadlines (big held). */
static void timeouts_sync(int kfd, struct psock *ps) {
    const int names[2] = {SO_RCVTIMEO, SO_SNDTIMEO};
    uint64_t *to[2] = {&ps->rcvtimeo, &ps->sndtimeo};
    for (size_t i = 0; i < 2; i++) {
        struct timeval tv;
        socklen_t l = sizeof(tv);
        if (REAL(getsockopt)(kfd, SOL_SOCKET, names[i], &tv, &l) == 0)
            *to[i] = (uint64_t)tv.tv_sec * 1000000000ull + (uint64_t)tv.tv_usec * 1000u;
    }
}

int accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags) {
    struct psock *l = inside ? NULL : dpsock(fd);
    if (l == NULL)
        return REAL(accept4)(fd, sa, len, flags);
    pthread_mutex_lock(&big);
    int rc;
    for (struct waiter w = waiter_of(l->rcvtimeo);;) {
        if (!l->listening) {
            rc = -EINVAL;
            break;
        }
        if (l->acq_n > 0) {
            struct psock *ps = l->acq[l->acq_head];
            int nfd = REAL(socket)(AF_INET, SOCK_STREAM | (flags & SOCK_CLOEXEC), 0);
            if (nfd < 0 || nfd >= MAXFD) {
                rc = nfd < 0 ? -errno : -EMFILE;
                if (nfd >= 0)
                    REAL(close)(nfd);
                break; /* it stays queued */
            }
            l->acq_head = (l->acq_head + 1) % l->acq_cap;
            l->acq_n--;
            ps->refs = 1;
            ps->nonblock = (flags & SOCK_NONBLOCK) != 0;
            if (ps->nonblock)
                REAL(fcntl)(nfd, F_SETFL, O_NONBLOCK);
            tab[nfd] = ps;
            options_inherit(fd, nfd);
            keepalive_sync(nfd, ps);
            timeouts_sync(nfd, ps);
            uint32_t ip = 0;
            uint16_t port = 0;
            if (ps->c != NULL)
                dpn_conn_peer(ps->c, &ip, &port);
            fill_addr(sa, len, ip, port);
            rc = nfd;
            break;
        }
        if (l->nonblock) {
            rc = -EAGAIN;
            break;
        }
        if ((rc = wait_event(l, &w)) != 0)
            break;
    }
    pthread_mutex_unlock(&big);
    return rc < 0 ? (errno = -rc, -1) : rc;
}

int accept(int fd, struct sockaddr *sa, socklen_t *len) {
    return accept4(fd, sa, len, 0);
}

int connect(int fd, const struct sockaddr *sa, socklen_t len) {
    if (inside || fd < 0 || fd >= MAXFD || tab[fd] == NULL)
        return REAL(connect)(fd, sa, len);
    if (sa == NULL || len < sizeof(struct sockaddr_in) || sa->sa_family != AF_INET)
        return REAL(connect)(fd, sa, len);
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    uint32_t ip = ntohl(in->sin_addr.s_addr);
    pthread_mutex_lock(&big);
    struct psock *ps = tab[fd];
    /* DNS goes the host's way: glibc's resolver sends with sendmmsg, and the
     * name server is the host's, reached through the kernel. */
    bool dns = ps->udp && ntohs(in->sin_port) == 53;
    if (!ps->dp && (is_loopback(ip) || dns || !started())) {
        to_kernel(fd);
        pthread_mutex_unlock(&big);
        return REAL(connect)(fd, sa, len);
    }
    int rc = 0;
    if (ps->udp) { /* a default destination; bound to an ephemeral port if not yet */
        if (!ps->dp)
            rc = udp_open(fd, ps, 0);
        if (rc == 0) {
            ps->peer_ip = ip;
            ps->peer_port = ntohs(in->sin_port);
            ps->connected = true;
        }
        pthread_mutex_unlock(&big);
        return rc < 0 ? (errno = -rc, -1) : 0;
    }
    if (ps->connected || ps->c != NULL) {
        rc = ps->connecting ? -EALREADY : -EISCONN;
    } else if (ps->listening) {
        rc = -EINVAL;
    } else if (ps->lport != 0) {
        say("connect from a bound port is not supported on dpnet (an ephemeral port is used)");
        rc = -EOPNOTSUPP;
    } else {
        ps->dp = true;
        adopt_early(fd, ps);
        ps->connecting = true;
        ps->err = 0;
        inside++;
        rc = dpn_connect(W, ip, ntohs(in->sin_port), &ops, ps, &ps->c);
        inside--;
        if (rc != 0) {
            ps->connecting = false;
            ps->c = NULL;
        } else {
            keepalive_sync(fd, ps); /* set before connect */
            if (ps->nonblock) {
                rc = -EINPROGRESS;
            } else {
                /* Interrupted or timed out (SO_SNDTIMEO), it goes on connecting,
                 * as the kernel's: EINTR, or EINPROGRESS. */
                for (struct waiter w = waiter_of(ps->sndtimeo); ps->connecting && rc == 0;)
                    rc = wait_event(ps, &w);
                if (rc == -EAGAIN)
                    rc = -EINPROGRESS;
                if (rc == 0 && ps->err != 0) {
                    rc = -ps->err;
                    ps->err = 0;
                }
            }
        }
    }
    pthread_mutex_unlock(&big);
    return rc < 0 ? (errno = -rc, -1) : 0;
}

/* Copy up to len received bytes into the iovec (big held). */
static size_t rx_take(struct psock *ps, const struct iovec *iov, int iovcnt, bool peek) {
    size_t done = 0;
    unsigned h = ps->rx_head, n = ps->rx_n;
    size_t off = ps->rx_off;
    for (int i = 0; i < iovcnt && n > 0; i++) {
        size_t got = 0;
        while (got < iov[i].iov_len && n > 0) {
            struct dpn_buf *b = ps->rxq[h];
            size_t k = dpn_buf_copy(b, (char *)iov[i].iov_base + got, iov[i].iov_len - got, off);
            got += k;
            off += k;
            if (off == dpn_buf_len(b)) {
                if (!peek) {
                    if (ps->c != NULL)
                        dpn_recv_done(ps->c, b);
                    else
                        dpn_buf_free(b);
                }
                h = (h + 1) % RXQ;
                n--;
                off = 0;
            }
        }
        done += got;
    }
    if (!peek) {
        ps->rx_head = h;
        ps->rx_n = n;
        ps->rx_off = off;
        ps->rx_bytes -= done;
        if (ps->rx_paused && ps->rx_n < RXQ / 2 && ps->c != NULL) {
            dpn_read_start(ps->c);
            ps->rx_paused = false;
        }
    }
    return done;
}

/* One datagram into the iovec (big taken here): the rest of a longer one is
 * dropped (MSG_TRUNC in *mflags), as Linux does. */
static ssize_t udp_recv(struct psock *ps, const struct iovec *iov, int iovcnt, int flags,
                        struct udp_src *from, int *mflags) {
    pthread_mutex_lock(&big);
    ssize_t rc;
    for (struct waiter w = waiter_of(ps->rcvtimeo);;) {
        if (ps->rx_n > 0) {
            unsigned h = ps->rx_head;
            struct dpn_buf *b = ps->rxq[h];
            size_t len = dpn_buf_len(b), off = 0;
            for (int i = 0; i < iovcnt && off < len; i++)
                off += dpn_buf_copy(b, iov[i].iov_base, iov[i].iov_len, off);
            if (from != NULL)
                *from = ps->src[h];
            if (off < len && mflags != NULL)
                *mflags |= MSG_TRUNC;
            rc = (flags & MSG_TRUNC) ? (ssize_t)len : (ssize_t)off;
            if (!(flags & MSG_PEEK)) {
                dpn_buf_free(b);
                ps->rx_head = (h + 1) % RXQ;
                ps->rx_n--;
                ps->rx_bytes -= len;
            }
            break;
        }
        if (ps->nonblock || (flags & MSG_DONTWAIT)) {
            rc = -EAGAIN;
            break;
        }
        if ((rc = wait_event(ps, &w)) != 0)
            break;
    }
    pthread_mutex_unlock(&big);
    return rc < 0 ? (errno = (int)-rc, -1) : rc;
}

/* One datagram from the iovec, to ip:port or (to == false) the connected
 * peer. Datagrams leave whole or not at all: no IP fragmentation. */
static ssize_t udp_send(struct psock *ps, const struct iovec *iov, int iovcnt, bool to, uint32_t ip,
                        uint16_t port) {
    char buf[9216]; /* the largest MTU's payload fits */
    size_t len = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > sizeof(buf) - len) {
            errno = EMSGSIZE;
            return -1;
        }
        memcpy(buf + len, iov[i].iov_base, iov[i].iov_len);
        len += iov[i].iov_len;
    }
    pthread_mutex_lock(&big);
    int rc = 0;
    if (!to && !ps->connected) {
        rc = -EDESTADDRREQ;
    } else {
        inside++;
        rc = dpn_udp_sendto(ps->u, buf, len, to ? ip : ps->peer_ip, to ? port : ps->peer_port);
        inside--;
    }
    pthread_mutex_unlock(&big);
    return rc < 0 ? (errno = -rc, -1) : (ssize_t)len;
}

static ssize_t ps_recv(struct psock *ps, const struct iovec *iov, int iovcnt, int flags) {
    if (iovcnt < 0 || iovcnt > IOV_MAX) {
        errno = EINVAL;
        return -1;
    }
    if (ps->udp)
        return udp_recv(ps, iov, iovcnt, flags, NULL, NULL);
    size_t want = 0;
    for (int i = 0; i < iovcnt; i++)
        want += iov[i].iov_len;
    /* MSG_WAITALL on a blocking socket: what came is copied in and the
     * call waits for the rest (the window reopens as it is taken), until
     * the buffer is full, the stream ends, or an error; as Linux, without
     * MSG_PEEK. */
    bool all = (flags & MSG_WAITALL) && !(flags & (MSG_PEEK | MSG_DONTWAIT)) && !ps->nonblock;
    struct iovec left[iovcnt > 0 ? iovcnt : 1];
    const struct iovec *v = iov;
    int vn = iovcnt;
    size_t got = 0;
    pthread_mutex_lock(&big);
    ssize_t rc;
    for (struct waiter w = waiter_of(ps->rcvtimeo);;) {
        if (ps->listening || (!ps->connected && !ps->connecting && ps->err == 0)) {
            rc = -ENOTCONN;
            break;
        }
        if (ps->rx_n > 0 || want == 0) {
            size_t k = rx_take(ps, v, vn, flags & MSG_PEEK);
            got += k;
            rc = (ssize_t)got;
            if (!all || got == want)
                break;
            /* the rest of the buffer: skip what is filled */
            vn = 0;
            size_t skip = got;
            for (int i = 0; i < iovcnt; i++) {
                if (skip >= iov[i].iov_len) {
                    skip -= iov[i].iov_len;
                    continue;
                }
                left[vn++] = (struct iovec){(char *)iov[i].iov_base + skip, iov[i].iov_len - skip};
                skip = 0;
            }
            v = left;
            continue;
        }
        if (ps->err != 0 && !ps->connecting) {
            rc = got > 0 ? (ssize_t)got : -ps->err;
            if (got == 0)
                ps->err = 0; /* reported now; else at the next call */
            break;
        }
        if (ps->eof || ps->rd_shut) {
            rc = (ssize_t)got;
            break;
        }
        if (ps->nonblock || (flags & MSG_DONTWAIT)) {
            rc = -EAGAIN;
            break;
        }
        if ((rc = wait_event(ps, &w)) != 0) {
            if (got > 0)
                rc = (ssize_t)got; /* MSG_WAITALL: what came before */
            break;
        }
    }
    pthread_mutex_unlock(&big);
    return rc < 0 ? (errno = (int)-rc, -1) : rc;
}

/* Why ps cannot send now (big held): -EAGAIN while connecting, its
 * pending error (reported once), -EPIPE once shut or closed; 0 if it can. */
static ssize_t send_err(struct psock *ps) {
    if (ps->c != NULL && !ps->wr_shut)
        return 0;
    ssize_t rc = ps->connecting ? -EAGAIN : ps->err != 0 ? -ps->err : -EPIPE;
    ps->err = 0;
    return rc;
}

static ssize_t ps_send(struct psock *ps, const struct iovec *iov, int iovcnt, int flags) {
    if (iovcnt < 0 || iovcnt > IOV_MAX) {
        errno = EINVAL;
        return -1;
    }
    if (ps->udp)
        return udp_send(ps, iov, iovcnt, false, 0, 0);
    pthread_mutex_lock(&big);
    ssize_t done = 0, rc = 0;
    int i = 0;
    size_t off = 0;
    for (struct waiter w = waiter_of(ps->sndtimeo);;) {
        if ((rc = send_err(ps)) != 0)
            break;
        while (i < iovcnt) {
            if (iov[i].iov_len == off) {
                i++, off = 0;
                continue;
            }
            long n = dpn_send(ps->c, (const char *)iov[i].iov_base + off, iov[i].iov_len - off);
            if (n <= 0) {
                if (n != -DPN_EAGAIN)
                    rc = n;
                break;
            }
            done += n;
            off += (size_t)n;
        }
        if (i == iovcnt || rc != 0 || ps->nonblock || (flags & MSG_DONTWAIT))
            break;
        if ((rc = wait_event(ps, &w)) != 0)
            break; /* what went before is the count */
    }
    pthread_mutex_unlock(&big);
    if (done > 0)
        return done;
    if (rc == 0)
        rc = -EAGAIN; /* nothing fitted (non-blocking) */
    if (rc == -EPIPE && !(flags & MSG_NOSIGNAL))
        raise(SIGPIPE);
    errno = (int)-rc;
    return -1;
}

ssize_t recv(int fd, void *buf, size_t len, int flags) {
    struct psock *ps = inside ? NULL : dpsock(fd);
    if (ps == NULL)
        return REAL(recv)(fd, buf, len, flags);
    struct iovec v = {buf, len};
    return ps_recv(ps, &v, 1, flags);
}

ssize_t read(int fd, void *buf, size_t len) {
    struct psock *ps = inside ? NULL : dpsock(fd);
    if (ps == NULL)
        return REAL(read)(fd, buf, len);
    struct iovec v = {buf, len};
    return ps_recv(ps, &v, 1, 0);
}

ssize_t readv(int fd, const struct iovec *iov, int iovcnt) {
    struct psock *ps = inside ? NULL : dpsock(fd);
    return ps == NULL ? REAL(readv)(fd, iov, iovcnt) : ps_recv(ps, iov, iovcnt, 0);
}

ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *sa, socklen_t *alen) {
    struct psock *ps = inside ? NULL : dpsock(fd);
    if (ps == NULL)
        return REAL(recvfrom)(fd, buf, len, flags, sa, alen);
    struct iovec v = {buf, len};
    if (ps->udp) {
        struct udp_src from = {0, 0};
        ssize_t n = udp_recv(ps, &v, 1, flags, &from, NULL);
        if (n >= 0)
            fill_addr(sa, alen, from.ip, from.port);
        return n;
    }
    ssize_t n = ps_recv(ps, &v, 1, flags);
    if (n >= 0 && sa != NULL && alen != NULL) {
        uint32_t ip = 0;
        uint16_t port = 0;
        pthread_mutex_lock(&big);
        if (ps->c != NULL)
            dpn_conn_peer(ps->c, &ip, &port);
        pthread_mutex_unlock(&big);
        fill_addr(sa, alen, ip, port);
    }
    return n;
}

ssize_t recvmsg(int fd, struct msghdr *m, int flags) {
    struct psock *ps = inside ? NULL : dpsock(fd);
    if (ps == NULL)
        return REAL(recvmsg)(fd, m, flags);
    m->msg_controllen = 0;
    m->msg_flags = 0;
    if (ps->udp) {
        struct udp_src from = {0, 0};
        ssize_t n = udp_recv(ps, m->msg_iov, (int)m->msg_iovlen, flags, &from, &m->msg_flags);
        if (n >= 0 && m->msg_name != NULL)
            fill_addr(m->msg_name, &m->msg_namelen, from.ip, from.port);
        return n;
    }
    return ps_recv(ps, m->msg_iov, (int)m->msg_iovlen, flags);
}

ssize_t send(int fd, const void *buf, size_t len, int flags) {
    struct psock *ps = inside ? NULL : dpsock(fd);
    if (ps == NULL)
        return REAL(send)(fd, buf, len, flags);
    struct iovec v = {(void *)buf, len};
    return ps_send(ps, &v, 1, flags);
}

ssize_t write(int fd, const void *buf, size_t len) {
    struct psock *ps = inside ? NULL : dpsock(fd);
    if (ps == NULL)
        return REAL(write)(fd, buf, len);
    struct iovec v = {(void *)buf, len};
    return ps_send(ps, &v, 1, 0);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
    struct psock *ps = inside ? NULL : dpsock(fd);
    return ps == NULL ? REAL(writev)(fd, iov, iovcnt) : ps_send(ps, iov, iovcnt, 0);
}

/* A UDP socket's first sendto decides it, as bind or connect would: dpnet
 * unless the destination is loopback (or dpnet did not start). */
static struct psock *udp_decide(int fd, const struct sockaddr *sa, socklen_t alen) {
    if (inside || fd < 0 || fd >= MAXFD || tab[fd] == NULL || !tab[fd]->udp || tab[fd]->dp ||
        sa == NULL || alen < sizeof(struct sockaddr_in) || sa->sa_family != AF_INET)
        return NULL;
    uint32_t ip = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
    bool dns = ntohs(((const struct sockaddr_in *)sa)->sin_port) == 53; /* as in connect */
    pthread_mutex_lock(&big);
    struct psock *ps = tab[fd];
    if (is_loopback(ip) || dns || !started() || udp_open(fd, ps, 0) != 0) {
        to_kernel(fd);
        ps = NULL;
    }
    pthread_mutex_unlock(&big);
    return ps;
}

static ssize_t udp_sendto(struct psock *ps, const struct iovec *iov, int iovcnt,
                          const struct sockaddr *sa, socklen_t alen) {
    if (sa == NULL)
        return udp_send(ps, iov, iovcnt, false, 0, 0);
    if (alen < sizeof(struct sockaddr_in) || sa->sa_family != AF_INET) {
        errno = alen < sizeof(struct sockaddr_in) ? EINVAL : EAFNOSUPPORT;
        return -1;
    }
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    return udp_send(ps, iov, iovcnt, true, ntohl(in->sin_addr.s_addr), ntohs(in->sin_port));
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *sa,
               socklen_t alen) {
    struct psock *ps = inside ? NULL : dpsock(fd);
    if (ps == NULL)
        ps = udp_decide(fd, sa, alen);
    if (ps == NULL)
        return REAL(sendto)(fd, buf, len, flags, sa, alen);
    struct iovec v = {(void *)buf, len};
    if (ps->udp)
        return udp_sendto(ps, &v, 1, sa, alen);
    return ps_send(ps, &v, 1, flags); /* connected TCP: the address is ignored, as Linux does */
}

ssize_t sendmsg(int fd, const struct msghdr *m, int flags) {
    struct psock *ps = inside ? NULL : dpsock(fd);
    if (ps == NULL)
        ps = udp_decide(fd, m->msg_name, m->msg_namelen);
    if (ps == NULL)
        return REAL(sendmsg)(fd, m, flags);
    if (ps->udp)
        return udp_sendto(ps, m->msg_iov, (int)m->msg_iovlen, m->msg_name, m->msg_namelen);
    return ps_send(ps, m->msg_iov, (int)m->msg_iovlen, flags);
}

/* sendfile: the file's bytes are read (one copy, by the kernel, from the
 * page cache) straight into mbufs that then go out in place (dpn_send_buf,
 * zero-copy send). Mapping the file instead would save that copy, but a
 * file truncated while its pages are in flight would then stop the worker
 * with SIGBUS wherever a PMD or the checksum touches them; a short read is
 * harmless. The send buffer's mbufs come from the port's pool, so this path
 * is taken only while most of the pool is free (receive must not starve);
 * else, and for a file that cannot be read at an offset, the bytes are
 * copied through a buffer as by write(). */
#define SF_BATCH 64 /* pieces per preadv */

static size_t sf_piece;     /* bytes per mbuf: one segment at the port's MTU */
static unsigned sf_reserve; /* free mbufs kept for receive */

/* Up to want bytes of in at pos into mbufs sent on ps (big held). Returns
 * the bytes sent, 0 at the end of the file, with no room or no mbufs to
 * spare, or -errno. */
static ssize_t sf_mbufs(struct psock *ps, int in, off_t pos, size_t want, bool *eof) {
    if (sf_piece == 0) {
        for (size_t n = 8960; n >= 1460 && sf_piece == 0; n = n > 1460 ? 1460 : 0) {
            struct dpn_buf *b = dpn_buf_alloc(W, n);
            if (b != NULL)
                sf_piece = n, dpn_buf_free(b);
        }
        sf_reserve = dpn_mbufs_free(W) / 2;
        if (sf_piece == 0)
            return 0;
    }
    size_t room = dpn_send_space(ps->c);
    if (want > room)
        want = room;
    unsigned k = (unsigned)((want + sf_piece - 1) / sf_piece);
    if (k > SF_BATCH)
        k = SF_BATCH;
    if (k == 0 || dpn_mbufs_free(W) < sf_reserve + k)
        return 0;
    struct dpn_buf *b[SF_BATCH];
    struct iovec v[SF_BATCH];
    size_t asked = 0;
    unsigned got = 0;
    for (; got < k; got++) {
        size_t n = want - asked < sf_piece ? want - asked : sf_piece;
        if ((b[got] = dpn_buf_alloc(W, n)) == NULL)
            break;
        v[got] = (struct iovec){dpn_buf_mut(b[got]), n};
        asked += n;
    }
    ssize_t r = got > 0 ? preadv(in, v, (int)got, pos) : 0;
    ssize_t sent = r < 0 ? -errno : 0;
    *eof = got > 0 && r == 0;
    for (unsigned i = 0; i < got; i++) {
        size_t n = r > 0 ? ((size_t)r - (size_t)sent < v[i].iov_len ? (size_t)r - (size_t)sent
                                                                    : v[i].iov_len)
                         : 0;
        if (n > 0 && n < v[i].iov_len) { /* the file ended here: the tail piece, shorter */
            struct dpn_buf *t = dpn_buf_alloc(W, n);
            if (t != NULL)
                memcpy(dpn_buf_mut(t), v[i].iov_base, n);
            dpn_buf_free(b[i]);
            b[i] = t;
        }
        if (n == 0 || b[i] == NULL || dpn_send_buf(ps->c, b[i]) != 0) {
            for (unsigned j = b[i] == NULL ? i + 1 : i; j < got; j++)
                dpn_buf_free(b[j]);
            break;
        }
        sent += (ssize_t)n;
    }
    return sent;
}

/* The copy path: up to want bytes of in at pos through a buffer (big
 * held). Bytes sent, 0 at the end of the file or with no room, or -errno. */
static ssize_t sf_copy(struct psock *ps, int in, off_t pos, size_t want, bool *eof) {
    char buf[16384];
    size_t room = dpn_send_space(ps->c);
    if (want > room)
        want = room;
    if (want > sizeof(buf))
        want = sizeof(buf);
    if (want == 0)
        return 0;
    ssize_t r = pread(in, buf, want, pos);
    if (r <= 0) {
        *eof = r == 0;
        return r < 0 ? -errno : 0;
    }
    long k = dpn_send(ps->c, buf, (size_t)r); /* what does not fit is read again */
    return k == -DPN_EAGAIN ? 0 : k;
}

static ssize_t ps_sendfile(struct psock *ps, int in, off_t *offset, size_t count) {
    off_t pos = offset != NULL ? *offset : lseek(in, 0, SEEK_CUR);
    if (pos < 0 || ps->udp) { /* a pipe, or a UDP socket: a datagram through a buffer */
        char buf[65536];
        size_t want = count < sizeof(buf) ? count : sizeof(buf);
        if (!ps->udp && ps->nonblock && ps->c != NULL && want > dpn_send_space(ps->c))
            want = dpn_send_space(ps->c); /* what is read from a pipe must be sent */
        if (want == 0) {
            errno = EAGAIN;
            return -1;
        }
        ssize_t r = REAL(read)(in, buf, want);
        if (r <= 0)
            return r;
        struct iovec v = {buf, (size_t)r};
        return ps_send(ps, &v, 1, 0);
    }
    pthread_mutex_lock(&big);
    ssize_t done = 0, rc = 0;
    bool eof = false;
    for (struct waiter w = waiter_of(ps->sndtimeo); (size_t)done < count && !eof;) {
        if ((rc = send_err(ps)) != 0)
            break;
        size_t want = count - (size_t)done;
        ssize_t n = sf_mbufs(ps, in, pos + done, want, &eof);
        if (n == 0 && !eof)
            n = sf_copy(ps, in, pos + done, want, &eof);
        if (n < 0) {
            rc = n;
            break;
        }
        done += n;
        if (n > 0 || eof)
            continue;
        if (ps->nonblock) {
            rc = -EAGAIN;
            break;
        }
        if ((rc = wait_event(ps, &w)) != 0)
            break;
    }
    pthread_mutex_unlock(&big);
    if (offset != NULL)
        *offset = pos + done;
    else if (done > 0)
        lseek(in, pos + done, SEEK_SET);
    if (done > 0 || rc == 0)
        return done; /* 0: the file ended at the offset */
    if (rc == -EPIPE)
        raise(SIGPIPE);
    errno = (int)-rc;
    return -1;
}

ssize_t sendfile(int out, int in, off_t *offset, size_t count) {
    struct psock *ps = inside ? NULL : dpsock(out);
    if (ps == NULL)
        return REAL(sendfile)(out, in, offset, count);
    if (count == 0)
        return 0;
    return ps_sendfile(ps, in, offset, count);
}

static void ps_release(struct psock *ps) {
    inside++;
    if (ps->lis != NULL) {
        dpn_unlisten(ps->lis);
        ps->lis = NULL;
        for (; ps->acq_n > 0; ps->acq_n--, ps->acq_head = (ps->acq_head + 1) % ps->acq_cap) {
            struct psock *a = ps->acq[ps->acq_head];
            rx_drop_all(a);
            if (a->c != NULL)
                dpn_abort(a->c);
            ps_free(a);
        }
    }
    rx_drop_all(ps);
    if (ps->u != NULL) {
        dpn_udp_close(ps->u);
        ps->u = NULL;
    }
    if (ps->c != NULL) {
        if (ps->connecting)
            dpn_abort(ps->c);
        else
            dpn_close_conn(ps->c); /* queued data still goes out */
        ps->c = NULL;
    }
    inside--;
    ps_free(ps);
}

int close(int fd) {
    if (inside || fd < 0 || fd >= MAXFD || (tab[fd] == NULL && eps[fd] == NULL))
        return REAL(close)(fd);
    pthread_mutex_lock(&big);
    struct psock *ps = tab[fd];
    tab[fd] = NULL;
    if (ps != NULL && --ps->refs == 0) {
        if (ps->dp && state == 1)
            ps_release(ps);
        else
            ps_free(ps);
    }
    struct pep *p = eps[fd];
    eps[fd] = NULL;
    if (p != NULL) {
        free(p->e);
        free(p);
    }
    pthread_mutex_unlock(&big);
    return REAL(close)(fd);
}

int shutdown(int fd, int how) {
    struct psock *ps = inside ? NULL : dpsock(fd);
    if (ps == NULL)
        return REAL(shutdown)(fd, how);
    pthread_mutex_lock(&big);
    int rc = 0;
    if (ps->c == NULL && !ps->connected) {
        rc = -ENOTCONN;
    } else {
        if (how == SHUT_RD || how == SHUT_RDWR) {
            ps->rd_shut = true;
            rx_drop_all(ps);
        }
        if ((how == SHUT_WR || how == SHUT_RDWR) && !ps->wr_shut) {
            ps->wr_shut = true;
            if (ps->c != NULL) {
                inside++;
                dpn_shutdown(ps->c);
                inside--;
            }
        }
        if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
            rc = -EINVAL;
    }
    ps->seq++;
    pthread_mutex_unlock(&big);
    return rc < 0 ? (errno = -rc, -1) : 0;
}

/* dup: the new number names the same socket. */
static int dup_to(int old, int nfd) {
    if (nfd < 0 || old == nfd)
        return nfd;
    if (nfd >= MAXFD)
        return nfd;
    pthread_mutex_lock(&big);
    struct psock *ps = old >= 0 && old < MAXFD ? tab[old] : NULL;
    struct psock *prev = tab[nfd]; /* dup2 closed what nfd was */
    if (prev != NULL && --prev->refs == 0) {
        if (prev->dp && state == 1)
            ps_release(prev);
        else
            ps_free(prev);
    }
    tab[nfd] = ps;
    if (ps != NULL)
        ps->refs++;
    pthread_mutex_unlock(&big);
    return nfd;
}

int dup(int fd) {
    return inside ? REAL(dup)(fd) : dup_to(fd, REAL(dup)(fd));
}
int dup2(int fd, int nfd) {
    return inside ? REAL(dup2)(fd, nfd) : dup_to(fd, REAL(dup2)(fd, nfd));
}
int dup3(int fd, int nfd, int flags) {
    return inside ? REAL(dup3)(fd, nfd, flags) : dup_to(fd, REAL(dup3)(fd, nfd, flags));
}

int fcntl(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long);
    va_end(ap);
    int rc = REAL(fcntl)(fd, cmd, arg);
    if (inside || rc < 0 || fd < 0 || fd >= MAXFD || tab[fd] == NULL)
        return rc;
    if (cmd == F_SETFL) {
        pthread_mutex_lock(&big);
        if (tab[fd] != NULL)
            tab[fd]->nonblock = (arg & O_NONBLOCK) != 0;
        pthread_mutex_unlock(&big);
    } else if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) {
        return dup_to(fd, rc);
    }
    return rc;
}

int ioctl(int fd, unsigned long req, ...) {
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    struct psock *ps = inside ? NULL : dpsock(fd);
    if (ps != NULL && req == FIONREAD) {
        pthread_mutex_lock(&big);
        if (ps->udp) /* as Linux: the next datagram's length */
            *(int *)arg = ps->rx_n > 0 ? (int)dpn_buf_len(ps->rxq[ps->rx_head]) : 0;
        else
            *(int *)arg = ps->rx_bytes > INT32_MAX ? INT32_MAX : (int)ps->rx_bytes;
        pthread_mutex_unlock(&big);
        return 0;
    }
    int rc = REAL(ioctl)(fd, req, arg);
    if (rc == 0 && req == FIONBIO && !inside && fd >= 0 && fd < MAXFD && tab[fd] != NULL) {
        pthread_mutex_lock(&big);
        if (tab[fd] != NULL)
            tab[fd]->nonblock = *(int *)arg != 0;
        pthread_mutex_unlock(&big);
    }
    return rc;
}

/* What dpnet does with an option the kernel socket accepted, said once per
 * option: a program's expectations may differ. */
static void option_note(int level, int name) {
    static struct {
        int level, name;
        const char *what;
        bool said;
    } notes[] = {
        {SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR: accepted (dpnet binds no matter)", false},
        {SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT: accepted; one process per worker serves the port",
         false},
        {SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF: accepted, not applied (window up to 512 KiB)", false},
        {SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF: accepted, not applied (send buffer 512 KiB)", false},
        {SOL_SOCKET, SO_LINGER,
         "SO_LINGER: accepted; close always lingers up to 5 s for queued data", false},
        {IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY: dpnet never delays small segments anyway", false},
        {IPPROTO_TCP, TCP_CORK,
         "TCP_CORK: accepted; what is written goes out at the end of "
         "the worker's loop turn, partial segments included",
         false},
    };
    for (size_t i = 0; i < sizeof(notes) / sizeof(notes[0]); i++)
        if (notes[i].level == level && notes[i].name == name) {
            if (!notes[i].said)
                say("%s", notes[i].what);
            notes[i].said = true;
            return;
        }
    static int seen[16][2];
    static unsigned nseen;
    if (is_keepalive(level, name) || is_timeout(level, name))
        return; /* applied */
    for (unsigned i = 0; i < nseen; i++)
        if (seen[i][0] == level && seen[i][1] == name)
            return;
    if (nseen < 16) {
        seen[nseen][0] = level, seen[nseen][1] = name;
        nseen++;
        say("setsockopt level %d option %d: kept by the kernel socket only, not applied on dpnet",
            level, name);
    }
}

/* Options: the kernel socket checks the arguments and keeps the values
 * (getsockopt reads them back); dpnet acts on keepalive and the timeouts. */
int setsockopt(int fd, int level, int name, const void *val, socklen_t len) {
    int rc = REAL(setsockopt)(fd, level, name, val, len);
    if (rc == 0 && !inside && is_timeout(level, name) && fd >= 0 && fd < MAXFD &&
        tab[fd] != NULL) { /* before it is decided too: it may become dpnet's */
        pthread_mutex_lock(&big);
        if (tab[fd] != NULL)
            timeouts_sync(fd, tab[fd]);
        pthread_mutex_unlock(&big);
    }
    struct psock *ps = inside ? NULL : dpsock(fd);
    /* A socket not yet bound or connected may still become dpnet's: its
     * options are named too (SO_REUSEPORT comes before bind). */
    if (ps == NULL && rc == 0 && !inside && state == 1 && fd >= 0 && fd < MAXFD &&
        tab[fd] != NULL && !tab[fd]->dp) {
        pthread_mutex_lock(&big);
        option_note(level, name);
        pthread_mutex_unlock(&big);
    }
    if (ps == NULL || rc != 0)
        return rc;
    pthread_mutex_lock(&big);
    option_note(level, name);
    if (is_keepalive(level, name))
        keepalive_sync(fd, ps);
    pthread_mutex_unlock(&big);
    return 0;
}

int getsockopt(int fd, int level, int name, void *val, socklen_t *len) {
    struct psock *ps = inside ? NULL : dpsock(fd);
    if (ps != NULL && level == SOL_SOCKET && name == SO_ERROR && val != NULL && len != NULL &&
        *len >= sizeof(int)) {
        pthread_mutex_lock(&big);
        *(int *)val = ps->connecting ? 0 : ps->err;
        if (!ps->connecting)
            ps->err = 0;
        pthread_mutex_unlock(&big);
        *len = sizeof(int);
        return 0;
    }
    return REAL(getsockopt)(fd, level, name, val, len);
}

int getsockname(int fd, struct sockaddr *sa, socklen_t *len) {
    struct psock *ps = inside ? NULL : dpsock(fd);
    if (ps == NULL)
        return REAL(getsockname)(fd, sa, len);
    pthread_mutex_lock(&big);
    uint32_t ip = our_ip;
    uint16_t port = ps->lport;
    if (ps->c != NULL)
        dpn_conn_local(ps->c, &ip, &port);
    pthread_mutex_unlock(&big);
    fill_addr(sa, len, ip, port);
    return 0;
}

int getpeername(int fd, struct sockaddr *sa, socklen_t *len) {
    struct psock *ps = inside ? NULL : dpsock(fd);
    if (ps == NULL)
        return REAL(getpeername)(fd, sa, len);
    pthread_mutex_lock(&big);
    uint32_t ip = 0;
    uint16_t port = 0;
    if (ps->c != NULL)
        dpn_conn_peer(ps->c, &ip, &port);
    if (ps->udp && ps->connected)
        ip = ps->peer_ip, port = ps->peer_port;
    pthread_mutex_unlock(&big);
    if (ip == 0) {
        errno = ENOTCONN;
        return -1;
    }
    fill_addr(sa, len, ip, port);
    return 0;
}

/* ---- epoll ---- */
int epoll_create1(int flags) {
    int fd = REAL(epoll_create1)(flags);
    if (fd < 0 || inside || starting || fd >= MAXFD)
        return fd;
    struct pep *p = calloc(1, sizeof(*p));
    pthread_mutex_lock(&big);
    eps[fd] = p;
    /* dpnet's own descriptor (net_tap) wakes the program's sleep */
    if (p != NULL && state == 1 && (int)wait_fd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAIT_TAG};
        REAL(epoll_ctl)(fd, EPOLL_CTL_ADD, (int)wait_fd, &ev);
    }
    pthread_mutex_unlock(&big);
    return fd;
}

int epoll_create(int size) {
    if (size <= 0) {
        errno = EINVAL;
        return -1;
    }
    return epoll_create1(0);
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev) {
    struct psock *ps = inside ? NULL : dpsock(fd);
    struct pep *p = epfd >= 0 && epfd < MAXFD ? eps[epfd] : NULL;
    if (ps == NULL || p == NULL) {
        int rc = REAL(epoll_ctl)(epfd, op, fd, ev);
        if (rc == 0 && p != NULL && !inside) {
            pthread_mutex_lock(&big);
            p->kernel_n += op == EPOLL_CTL_ADD ? 1 : op == EPOLL_CTL_DEL ? -1 : 0;
            struct psock *u = fd >= 0 && fd < MAXFD ? tab[fd] : NULL;
            if (u != NULL && !u->dp) { /* undecided: remember the set */
                unsigned i = 0;
                while (i < u->early_n && u->early[i].epfd != epfd)
                    i++;
                if (op == EPOLL_CTL_DEL && i < u->early_n) {
                    u->early[i] = u->early[--u->early_n];
                } else if (op != EPOLL_CTL_DEL && ev != NULL && i < 4) {
                    u->early[i].epfd = epfd, u->early[i].ev = *ev;
                    if (i == u->early_n)
                        u->early_n++;
                }
            }
            pthread_mutex_unlock(&big);
        }
        return rc;
    }
    pthread_mutex_lock(&big);
    int rc = 0;
    unsigned i = 0;
    while (i < p->n && p->e[i].fd != fd)
        i++;
    bool have = i < p->n && p->e[i].ps == ps;
    if (i < p->n && !have) { /* a stale entry of a closed socket with this number */
        p->e[i] = p->e[--p->n];
        i = p->n;
    }
    if (op == EPOLL_CTL_ADD) {
        if (have)
            rc = -EEXIST;
        else if (ev == NULL)
            rc = -EFAULT;
        else
            rc = pep_add(p, fd, ps, ev);
        /* the kernel set also wakes on dpnet (added at creation if dpnet ran then) */
        if (rc == 0 && (int)wait_fd >= 0) {
            struct epoll_event w = {.events = EPOLLIN, .data.u64 = WAIT_TAG};
            REAL(epoll_ctl)(epfd, EPOLL_CTL_ADD, (int)wait_fd, &w);
        }
    } else if (op == EPOLL_CTL_MOD) {
        if (!have)
            rc = -ENOENT;
        else if (ev == NULL)
            rc = -EFAULT;
        else {
            p->e[i].ev = *ev;
            p->e[i].seen = ps->seq - 1; /* re-armed: report what holds now */
        }
    } else if (op == EPOLL_CTL_DEL) {
        if (!have)
            rc = -ENOENT;
        else
            p->e[i] = p->e[--p->n];
    } else {
        rc = -EINVAL;
    }
    pthread_mutex_unlock(&big);
    return rc < 0 ? (errno = -rc, -1) : 0;
}

static int pep_add(struct pep *p, int fd, struct psock *ps, const struct epoll_event *ev) {
    if (p->n == p->cap) {
        unsigned cap = p->cap ? 2 * p->cap : 16;
        struct pep_ent *e = realloc(p->e, cap * sizeof(*e));
        if (e == NULL)
            return -ENOMEM;
        p->e = e, p->cap = cap;
    }
    p->e[p->n++] = (struct pep_ent){.fd = fd, .ps = ps, .ev = *ev, .seen = ps->seq - 1};
    return 0;
}

/* The dpnet members that are ready (big held). */
static int pep_collect(struct pep *p, struct epoll_event *out, int max) {
    int n = 0;
    for (unsigned i = 0; i < p->n && n < max;) {
        struct pep_ent *e = &p->e[i];
        if (e->fd >= MAXFD || tab[e->fd] != e->ps) { /* closed: the kernel drops it too */
            *e = p->e[--p->n];
            continue;
        }
        uint32_t want = e->ev.events | EPOLLERR | EPOLLHUP;
        uint32_t r = ps_events(e->ps) & want;
        if (r != 0 && (!(e->ev.events & EPOLLET) || e->seen != e->ps->seq)) {
            e->seen = e->ps->seq;
            out[n].events = r;
            out[n].data = e->ev.data;
            n++;
            if (e->ev.events & EPOLLONESHOT)
                e->ev.events = 0;
        }
        i++;
    }
    return n;
}

/* Kernel events, without dpnet's own descriptor. */
static int kernel_wait(int epfd, struct epoll_event *ev, int max, int ms) {
    int k = REAL(epoll_pwait)(epfd, ev, max, ms, NULL);
    int n = 0;
    for (int i = 0; i < k; i++)
        if (ev[i].data.u64 != WAIT_TAG)
            ev[n++] = ev[i];
    return k < 0 ? k : n;
}

/* The signal mask of epoll_pwait, ppoll and pselect, set for the whole
 * call: the layer waits outside the kernel too. The count of handlers run
 * is taken first, so a signal the mask lets in at once ends the wait. */
struct masked {
    sigset_t old;
    bool set;
    unsigned sig0;
};

static void mask_begin(struct masked *m, const sigset_t *mask) {
    m->sig0 = sig_any;
    m->set = mask != NULL && pthread_sigmask(SIG_SETMASK, mask, &m->old) == 0;
}

static int mask_end(struct masked *m, int rc) {
    int e = errno;
    if (m->set)
        pthread_sigmask(SIG_SETMASK, &m->old, NULL);
    errno = e;
    return rc;
}

/* epoll_wait on a set holding dpnet sockets; ended by a handler run since
 * the count sig0. */
static int epoll_on(struct pep *p, int epfd, struct epoll_event *ev, int max, int timeout,
                    unsigned sig0) {
    uint64_t deadline = deadline_of(timeout), t0 = now_ns(), kernel_at = 0;
    for (;;) {
        pthread_mutex_lock(&big);
        pump();
        int n = pep_collect(p, ev, max);
        pthread_mutex_unlock(&big);
        /* The program's kernel descriptors: a system call, so while spinning
         * at most every KERNEL_EVERY_NS (and never for a set of none). */
        uint64_t t = p->kernel_n > 0 ? now_ns() : 0;
        if (n < max && p->kernel_n > 0 && (kernel_at == 0 || t - kernel_at >= KERNEL_EVERY_NS)) {
            kernel_at = t;
            int k = kernel_wait(epfd, ev + n, max - n, 0);
            if (k < 0 && n == 0)
                return -1;
            if (k > 0)
                n += k;
        }
        if (n > 0)
            return n;
        if (sig_any != sig0) { /* a handler ran while it spun or slept */
            errno = EINTR;
            return -1;
        }
        uint64_t now = now_ns();
        if (timeout == 0 || (deadline != 0 && now >= deadline))
            return 0;
        if (now - t0 < spin_ns)
            continue;
        /* Asleep in the kernel on the program's descriptors and dpnet's. */
        int ms = SLEEP_MAX_MS;
        if (deadline != 0 && (deadline - now) / 1000000 < (uint64_t)ms)
            ms = (int)((deadline - now) / 1000000);
        if ((int)wait_fd < 0)
            ms = 0;
        int k = kernel_wait(epfd, ev, max, ms);
        if (k != 0)
            return k; /* events, or an error (EINTR) */
        if ((int)wait_fd < 0)
            usleep(NAP_MAX_US);
    }
}

static struct pep *our_pep(int epfd, int max) {
    struct pep *p = !inside && epfd >= 0 && epfd < MAXFD ? eps[epfd] : NULL;
    return p != NULL && state == 1 && max > 0 ? p : NULL;
}

int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *sig) {
    struct pep *p = our_pep(epfd, max);
    if (p == NULL)
        return REAL(epoll_pwait)(epfd, ev, max, timeout, sig);
    struct masked m;
    mask_begin(&m, sig);
    return mask_end(&m, epoll_on(p, epfd, ev, max, timeout, m.sig0));
}

int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout) {
    struct pep *p = our_pep(epfd, max);
    if (p == NULL)
        return REAL(epoll_pwait)(epfd, ev, max, timeout, NULL);
    return epoll_on(p, epfd, ev, max, timeout, sig_any);
}

/* A timespec timeout (NULL: none) in ms, rounded up as the kernel rounds it. */
static int timeout_ms(const struct timespec *t) {
    if (t == NULL)
        return -1;
    if (t->tv_sec < 0 || t->tv_nsec < 0 || t->tv_nsec >= 1000000000)
        return -2;
    uint64_t ms = (uint64_t)t->tv_sec * 1000u + ((uint64_t)t->tv_nsec + 999999u) / 1000000u;
    return ms > INT_MAX ? -1 : (int)ms;
}

int epoll_pwait2(int epfd, struct epoll_event *ev, int max, const struct timespec *t,
                 const sigset_t *sig) {
    struct pep *p = our_pep(epfd, max);
    int ms = timeout_ms(t);
    if (p == NULL || ms == -2) {
        int (*real2)(int, struct epoll_event *, int, const struct timespec *, const sigset_t *) =
            dlsym(RTLD_NEXT, "epoll_pwait2");
        if (real2 == NULL) {
            errno = ENOSYS;
            return -1;
        }
        return real2(epfd, ev, max, t, sig);
    }
    struct masked m;
    mask_begin(&m, sig);
    return mask_end(&m, epoll_on(p, epfd, ev, max, ms, m.sig0));
}

/* ---- poll and select ---- */
static bool any_dp(const struct pollfd *fds, nfds_t n) {
    bool any = false;
    for (nfds_t i = 0; i < n && !any && !inside; i++)
        any = dpsock(fds[i].fd) != NULL;
    return any;
}

/* poll on a set holding dpnet sockets; ended by a handler run since sig0. */
static int poll_on(struct pollfd *fds, nfds_t n, int timeout, unsigned sig0) {
    /* The kernel polls a copy: the program's kernel descriptors, dpnet
     * sockets hidden (negative: skipped), and dpnet's own descriptor last. */
    struct pollfd *k = calloc(1, (n + 1) * sizeof(*k) + n * sizeof(short));
    short *mine = (short *)(k + n + 1); /* our revents: the kernel clears hidden ones */
    if (k == NULL) {
        errno = ENOMEM;
        return -1;
    }
    uint64_t deadline = deadline_of(timeout), t0 = now_ns();
    int rc;
    for (;;) {
        int ready = 0;
        pthread_mutex_lock(&big);
        pump();
        for (nfds_t i = 0; i < n; i++) {
            struct psock *ps = dpsock(fds[i].fd);
            k[i] = fds[i];
            k[i].revents = 0;
            if (ps == NULL)
                continue;
            uint32_t r = ps_events(ps), out = 0;
            if (r & EPOLLIN)
                out |= POLLIN & fds[i].events;
            if (r & EPOLLOUT)
                out |= POLLOUT & fds[i].events;
            if (r & EPOLLRDHUP)
                out |= POLLRDHUP & fds[i].events;
            if (r & EPOLLHUP)
                out |= POLLHUP;
            if (r & EPOLLERR)
                out |= POLLERR;
            k[i].fd = -1;
            k[i].revents = (short)out;
            ready += out != 0;
        }
        pthread_mutex_unlock(&big);
        uint64_t now = now_ns();
        bool sleep =
            ready == 0 && timeout != 0 && now - t0 >= spin_ns && (deadline == 0 || now < deadline);
        int ms = 0;
        if (sleep && (int)wait_fd >= 0) {
            ms = SLEEP_MAX_MS;
            if (deadline != 0 && (deadline - now) / 1000000 < (uint64_t)ms)
                ms = (int)((deadline - now) / 1000000);
        }
        k[n] = (struct pollfd){.fd = ms > 0 ? (int)wait_fd : -1, .events = POLLIN};
        for (nfds_t i = 0; i < n; i++)
            mine[i] = k[i].fd == -1 ? k[i].revents : 0;
        int got = REAL(poll)(k, n + 1, ms);
        if (got < 0) {
            rc = -1;
            break;
        }
        ready = 0;
        for (nfds_t i = 0; i < n; i++) {
            fds[i].revents = dpsock(fds[i].fd) != NULL ? mine[i] : k[i].revents;
            ready += fds[i].revents != 0;
        }
        if (ready > 0 || timeout == 0 || (deadline != 0 && now_ns() >= deadline)) {
            rc = ready;
            break;
        }
        if (sig_any != sig0) { /* a handler ran while it spun or slept */
            errno = EINTR;
            rc = -1;
            break;
        }
        if (sleep && (int)wait_fd < 0)
            usleep(NAP_MAX_US);
    }
    free(k);
    return rc;
}

int poll(struct pollfd *fds, nfds_t n, int timeout) {
    if (!any_dp(fds, n))
        return REAL(poll)(fds, n, timeout);
    return poll_on(fds, n, timeout, sig_any);
}

int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *t, const sigset_t *sig) {
    int ms = timeout_ms(t);
    if (!any_dp(fds, n) || ms == -2) {
        int (*real)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *) =
            dlsym(RTLD_NEXT, "ppoll");
        return real(fds, n, t, sig);
    }
    struct masked m;
    mask_begin(&m, sig);
    return mask_end(&m, poll_on(fds, n, ms, m.sig0));
}

static bool any_dp_set(int nfds, fd_set *r, fd_set *w) {
    bool any = false;
    for (int fd = 0; fd < nfds && fd < MAXFD && !any && !inside; fd++)
        any = ((r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w))) && dpsock(fd) != NULL;
    return any;
}

/* select on sets holding dpnet sockets, through poll_on. */
static int select_on(int nfds, fd_set *r, fd_set *w, fd_set *e, int ms, unsigned sig0) {
    struct pollfd p[FD_SETSIZE];
    nfds_t n = 0;
    for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++) {
        short evs =
            (short)((r && FD_ISSET(fd, r) ? POLLIN : 0) | (w && FD_ISSET(fd, w) ? POLLOUT : 0));
        if (evs != 0)
            p[n++] = (struct pollfd){.fd = fd, .events = evs};
    }
    int k = poll_on(p, n, ms, sig0);
    if (k < 0)
        return -1;
    if (r)
        FD_ZERO(r);
    if (w)
        FD_ZERO(w);
    if (e)
        FD_ZERO(e);
    int ready = 0;
    for (nfds_t i = 0; i < n; i++) {
        if (r && (p[i].revents & (POLLIN | POLLHUP | POLLERR)))
            FD_SET(p[i].fd, r), ready++;
        if (w && (p[i].revents & (POLLOUT | POLLERR)))
            FD_SET(p[i].fd, w), ready++;
    }
    return ready;
}

int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv) {
    if (!any_dp_set(nfds, r, w) || (tv != NULL && (tv->tv_sec < 0 || tv->tv_usec < 0))) {
        int (*sel)(int, fd_set *, fd_set *, fd_set *, struct timeval *) =
            dlsym(RTLD_NEXT, "select");
        return sel(nfds, r, w, e, tv);
    }
    int ms = tv == NULL ? -1 : (int)(tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000);
    return select_on(nfds, r, w, e, ms, sig_any);
}

int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *t,
            const sigset_t *sig) {
    int ms = timeout_ms(t);
    if (!any_dp_set(nfds, r, w) || ms == -2) {
        int (*real)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *) =
            dlsym(RTLD_NEXT, "pselect");
        return real(nfds, r, w, e, t, sig);
    }
    struct masked m;
    mask_begin(&m, sig);
    return mask_end(&m, select_on(nfds, r, w, e, ms, m.sig0));
}

/* ---- the other names programs reach these by ---- */
/* Large-file names (glibc's for _FILE_OFFSET_BITS=64 programs). */
int fcntl64(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long);
    va_end(ap);
    return fcntl(fd, cmd, arg);
}
ssize_t sendfile64(int out, int in, off_t *offset, size_t count) {
    return sendfile(out, in, offset, count);
}
/* _FORTIFY_SOURCE builds (Debian's) call the checking variants. */
ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen) {
    if (len > buflen)
        abort(); /* as glibc's __chk_fail: a buffer overflow in the program */
    return read(fd, buf, len);
}
ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags) {
    if (len > buflen)
        abort();
    return recv(fd, buf, len, flags);
}
ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags, struct sockaddr *sa,
                       socklen_t *alen) {
    if (len > buflen)
        abort();
    return recvfrom(fd, buf, len, flags, sa, alen);
}
int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen) {
    if (fdslen / sizeof(*fds) < n)
        abort();
    return poll(fds, n, timeout);
}
int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *t, const sigset_t *sig,
                size_t fdslen) {
    if (fdslen / sizeof(*fds) < n)
        abort();
    return ppoll(fds, n, t, sig);
}
