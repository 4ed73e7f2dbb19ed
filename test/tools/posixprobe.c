/* posixprobe: the socket calls' contracts, from a plain Linux program (no
 * dpnet in it), run under the sockets layer by t_posix.sh against a Linux
 * peer: an echo port, a port that resets, a closed port, a silent one.
 *   posixprobe IP ECHO_PORT RESET_PORT CLOSED_PORT [SILENT_PORT]
 *   posixprobe --signals IP ECHO_PORT SILENT_PORT LATE_PORT
 * The second form checks only how caught signals and socket timeouts end
 * blocking calls (the late port sends "late" 0.5 s after it accepts).
 * Prints "ok - ..." / "not ok - ..." per check; exit 1 when one failed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <dirent.h>
#include <pthread.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static int fails;
static struct sockaddr_in peer;

static void check(int ok, const char *what) {
    printf("%s - %s\n", ok ? "ok" : "not ok", what);
    if (!ok)
        fails++;
    fflush(stdout);
}

static struct sockaddr_in at(unsigned short port) {
    struct sockaddr_in a = peer;
    a.sin_port = htons(port);
    return a;
}

static int connected(unsigned short port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = at(port);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("posixprobe: connect");
        exit(1);
    }
    return fd;
}

/* Read exactly n bytes (blocking socket). */
static int read_all(int fd, char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, buf + got, n - got);
        if (k <= 0)
            return -1;
        got += (size_t)k;
    }
    return 0;
}

static int sigpipes;
static void on_pipe(int s) {
    (void)s;
    sigpipes++;
}

/* ---- signals ---- */
static volatile sig_atomic_t alarms;
static void on_alarm(int s) {
    (void)s;
    alarms++;
}

/* SIGALRM caught (with SA_RESTART or without) in 100 ms. */
static void arm(int restart) {
    struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = restart ? SA_RESTART : 0};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    alarms = 0;
    struct itimerval it = {.it_value = {0, 100000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static double secs_since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void set_timeout(int fd, int name, long ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, name, &tv, sizeof(tv));
}

/* A call that never returns fails the run instead of hanging it. */
static void *watchdog(void *arg) {
    (void)arg;
    sleep(60);
    printf("not ok - a blocking call was still waiting after 60 s\n");
    fflush(stdout);
    _exit(1);
}

/* Every thread but the caller (and the watchdog, which blocks all) blocks
 * SIGALRM and SIGTERM: the worker's threads leave the program's signals to
 * the program's threads. */
static int others_block(pid_t except) {
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int bad = 0, seen = 0;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || atoi(e->d_name) == except)
            continue;
        char path[300], line[256];
        snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
        FILE *f = fopen(path, "r");
        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            unsigned long long blk;
            if (sscanf(line, "SigBlk: %llx", &blk) == 1) {
                unsigned long long want = (1ull << (SIGALRM - 1)) | (1ull << (SIGTERM - 1));
                seen++;
                bad += (blk & want) != want;
            }
        }
        if (f != NULL)
            fclose(f);
    }
    if (d != NULL)
        closedir(d);
    printf("# %d other threads, %d of them take SIGALRM or SIGTERM\n", seen, bad);
    return seen > 1 && bad == 0; /* the watchdog and at least one of DPDK's */
}

static void signals(unsigned short echo, unsigned short silent, unsigned short late) {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* the watchdog inherits it */
    pthread_t dog;
    pthread_create(&dog, NULL, watchdog, NULL);
    sigemptyset(&all);
    pthread_sigmask(SIG_SETMASK, &all, NULL);
    char buf[4096];
    struct timespec t0;
    int l = socket(AF_INET, SOCK_STREAM, 0); /* the first socket starts the worker */
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(4322)};
    check(bind(l, (struct sockaddr *)&any, sizeof(any)) == 0 && listen(l, 8) == 0,
          "signals: a listener on dpnet (any:4322)");
    check(others_block((pid_t)gettid()), "... the worker's threads block the program's signals");

    /* the handlers the program set are the ones it reads back */
    struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = SA_RESTART}, q;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    check(sigaction(SIGALRM, NULL, &q) == 0 && q.sa_handler == on_alarm &&
              (q.sa_flags & SA_RESTART),
          "sigaction reads back the program's handler and SA_RESTART");
    check(signal(SIGUSR1, on_alarm) != SIG_ERR && signal(SIGUSR1, SIG_IGN) == on_alarm,
          "signal() returns the handler it replaced");
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGUSR2, &sa, NULL);
    alarms = 0;
    raise(SIGUSR2);
    check(alarms == 1 && sigaction(SIGUSR2, NULL, &q) == 0 && q.sa_handler == SIG_DFL,
          "SA_RESETHAND: the handler ran once, then reads back SIG_DFL");

    /* epoll_wait, poll, select: EINTR whatever SA_RESTART says */
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l}, out[2];
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    arm(1);
    int n = epoll_wait(ep, out, 2, 5000);
    check(n == -1 && errno == EINTR && alarms == 1,
          "epoll_wait on a dpnet listener, SIGALRM caught (SA_RESTART): EINTR");
    close(ep);
    arm(1);
    struct pollfd p = {.fd = l, .events = POLLIN};
    n = poll(&p, 1, 5000);
    check(n == -1 && errno == EINTR && alarms == 1, "poll: EINTR");
    arm(1);
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(l, &rs);
    struct timeval tv = {5, 0};
    n = select(l + 1, &rs, NULL, NULL, &tv);
    check(n == -1 && errno == EINTR && alarms == 1, "select: EINTR");

    /* the p-calls: the mask given lets in a signal pending since before the
     * call (blocked until then): EINTR at once */
    sigset_t alrm, none;
    sigemptyset(&alrm);
    sigemptyset(&none);
    sigaddset(&alrm, SIGALRM);
    const char *pname[3] = {"ppoll", "pselect", "epoll_pwait"};
    for (int i = 0; i < 3; i++) {
        pthread_sigmask(SIG_BLOCK, &alrm, NULL);
        arm(1);
        usleep(200000); /* SIGALRM pending */
        struct timespec ts = {5, 0};
        p = (struct pollfd){.fd = l, .events = POLLIN};
        FD_ZERO(&rs);
        FD_SET(l, &rs);
        ep = epoll_create1(0);
        epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
        n = i == 0   ? ppoll(&p, 1, &ts, &none)
            : i == 1 ? pselect(l + 1, &rs, NULL, NULL, &ts, &none)
                     : epoll_pwait(ep, out, 2, 5000, &none);
        int e = errno;
        close(ep);
        pthread_sigmask(SIG_UNBLOCK, &alrm, NULL);
        char what[120];
        snprintf(what, sizeof(what),
                 "%s whose mask lets in a SIGALRM pending before the call: EINTR", pname[i]);
        check(n == -1 && e == EINTR && alarms == 1, what);
    }

    /* blocking accept and recv: EINTR without SA_RESTART; with it they wait
     * on; with a timeout set, EAGAIN at the timeout, EINTR on any handler */
    arm(0);
    check(accept(l, NULL, NULL) == -1 && errno == EINTR && alarms == 1,
          "blocking accept, SIGALRM caught without SA_RESTART: EINTR");
    set_timeout(l, SO_RCVTIMEO, 300);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int r = accept(l, NULL, NULL);
    double took = secs_since(&t0);
    check(r == -1 && errno == EAGAIN && took >= 0.29, "accept with SO_RCVTIMEO 300 ms: EAGAIN");
    printf("# ... after %.3f s\n", took);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = at(echo);
    check(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect to the echo port");
    arm(0);
    check(recv(fd, buf, sizeof(buf), 0) == -1 && errno == EINTR && alarms == 1,
          "blocking recv with nothing to read, no SA_RESTART: EINTR");
    set_timeout(fd, SO_RCVTIMEO, 2000);
    arm(1);
    check(recv(fd, buf, sizeof(buf), 0) == -1 && errno == EINTR && alarms == 1,
          "... with SO_RCVTIMEO, SA_RESTART or not: EINTR");
    set_timeout(fd, SO_RCVTIMEO, 200);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = (int)recv(fd, buf, sizeof(buf), 0);
    took = secs_since(&t0);
    check(r == -1 && errno == EAGAIN && took >= 0.19, "... SO_RCVTIMEO 200 ms passed: EAGAIN");
    check(send(fd, "abc", 3, 0) == 3 && recv(fd, buf, sizeof(buf), MSG_WAITALL) == 3,
          "... the connection still echoes");
    struct timespec ts = {5, 0};
    p = (struct pollfd){.fd = fd, .events = POLLIN};
    check(send(fd, "d", 1, 0) == 1 && ppoll(&p, 1, &ts, NULL) == 1 && p.revents == POLLIN &&
              recv(fd, buf, 1, 0) == 1,
          "ppoll on a dpnet connection: POLLIN for its echo, nothing else");
    FD_ZERO(&rs);
    FD_SET(fd, &rs);
    check(send(fd, "e", 1, 0) == 1 && pselect(fd + 1, &rs, NULL, NULL, &ts, NULL) == 1 &&
              FD_ISSET(fd, &rs) && recv(fd, buf, 1, 0) == 1,
          "pselect: readable for its echo");
    close(fd);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    a = at(late);
    arm(1);
    check(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
              recv(fd, buf, sizeof(buf), MSG_WAITALL) == 4 && memcmp(buf, "late", 4) == 0 &&
              alarms == 1,
          "blocking recv, SIGALRM caught with SA_RESTART: it waits on for the data (0.5 s)");
    close(fd);

    /* blocking send to a peer that has stopped taking anything: the queue
     * fills; a signal returns what went (a count), then EINTR */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    a = at(silent);
    check(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect to the silent port");
    usleep(300000); /* its peer drops our segments from now on */
    static char lots[8 << 20];
    arm(0);
    ssize_t k = send(fd, lots, sizeof(lots), 0);
    check(k > 0 && k < (ssize_t)sizeof(lots) && alarms == 1,
          "blocking send of 8 MiB into a full window, no SA_RESTART: the count that went");
    printf("# ... %zd bytes\n", k);
    arm(0);
    check(send(fd, lots, sizeof(lots), 0) == -1 && errno == EINTR && alarms == 1,
          "... then EINTR, with nothing sent");
    set_timeout(fd, SO_SNDTIMEO, 200);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    k = send(fd, lots, sizeof(lots), 0);
    took = secs_since(&t0);
    check(k == -1 && errno == EAGAIN && took >= 0.19, "... SO_SNDTIMEO 200 ms: EAGAIN");
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
    close(l);
    struct itimerval stop = {0};
    setitimer(ITIMER_REAL, &stop, NULL);
}

int main(int argc, char **argv) {
    if (argc == 6 && strcmp(argv[1], "--signals") == 0) {
        peer.sin_family = AF_INET;
        inet_pton(AF_INET, argv[2], &peer.sin_addr);
        signals((unsigned short)atoi(argv[3]), (unsigned short)atoi(argv[4]),
                (unsigned short)atoi(argv[5]));
        printf("# posixprobe: %d failed\n", fails);
        return fails ? 1 : 0;
    }
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: posixprobe IP ECHO_PORT RESET_PORT CLOSED_PORT [SILENT_PORT]\n");
        return 2;
    }
    peer.sin_family = AF_INET;
    inet_pton(AF_INET, argv[1], &peer.sin_addr);
    unsigned short echo = (unsigned short)atoi(argv[2]), rst = (unsigned short)atoi(argv[3]),
                   closed = (unsigned short)atoi(argv[4]),
                   silent = argc == 6 ? (unsigned short)atoi(argv[5]) : 0;
    signal(SIGPIPE, on_pipe);
    char buf[4096], data[1000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)('A' + i % 23);

    /* a closed port: RST */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = at(closed);
    int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
    check(rc == -1 && errno == ECONNREFUSED, "blocking connect to a closed port: ECONNREFUSED");
    close(fd);

    /* non-blocking connect: EINPROGRESS, EPOLLOUT, SO_ERROR 0 */
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    a = at(echo);
    rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
    check(rc == -1 && errno == EINPROGRESS, "non-blocking connect: EINPROGRESS");
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd}, out[4];
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    int n = epoll_wait(ep, out, 4, 5000);
    check(n == 1 && out[0].data.fd == fd && (out[0].events & EPOLLOUT), "... then EPOLLOUT");
    int err = -1;
    socklen_t len = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    check(err == 0, "... and SO_ERROR 0");
    check(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1 && errno == EEXIST,
          "epoll_ctl ADD twice: EEXIST");
    check(read(fd, buf, 10) == -1 && errno == EAGAIN, "non-blocking read with nothing: EAGAIN");

    /* data, FIONREAD, MSG_PEEK */
    check(send(fd, data, 100, 0) == 100, "send 100 bytes");
    struct pollfd p = {.fd = fd, .events = POLLIN};
    check(poll(&p, 1, 5000) == 1 && (p.revents & POLLIN), "poll: the echo is readable");
    int avail = 0;
    for (int i = 0; i < 100 && avail < 100; i++) { /* the echo may come in pieces */
        ioctl(fd, FIONREAD, &avail);
        if (avail < 100)
            poll(&p, 1, 50);
    }
    check(avail == 100, "FIONREAD: 100");
    check(recv(fd, buf, 10, MSG_PEEK) == 10 && memcmp(buf, data, 10) == 0, "MSG_PEEK 10 bytes");
    check(recv(fd, buf, sizeof(buf), 0) == 100 && memcmp(buf, data, 100) == 0,
          "recv: the 100 bytes, peeked ones included");

    /* edge-triggered epoll: one report per arrival */
    ev.events = EPOLLIN | EPOLLET;
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
    send(fd, data, 10, 0);
    n = epoll_wait(ep, out, 4, 5000);
    check(n == 1 && (out[0].events & EPOLLIN), "EPOLLET: the echo is reported");
    n = epoll_wait(ep, out, 4, 200);
    check(n == 0, "EPOLLET: not again while unread");
    send(fd, data, 10, 0);
    n = epoll_wait(ep, out, 4, 5000);
    check(n == 1, "EPOLLET: reported again when more comes");
    usleep(100000);
    check(recv(fd, buf, sizeof(buf), 0) == 20, "... 20 bytes waited");
    check(epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL) == 0, "epoll_ctl DEL");
    check(epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL) == -1 && errno == ENOENT,
          "epoll_ctl DEL again: ENOENT");

    /* writev / readv, select */
    int fl = fcntl(fd, F_GETFL);
    check(fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0, "fcntl: back to blocking");
    struct iovec wv[3] = {{data, 7}, {data + 7, 300}, {data + 307, 93}};
    check(writev(fd, wv, 3) == 400, "writev of 3 pieces");
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(fd, &rs);
    struct timeval tv = {5, 0};
    check(select(fd + 1, &rs, NULL, NULL, &tv) == 1 && FD_ISSET(fd, &rs), "select: readable");
    for (int i = 0; i < 100 && avail < 400; i++) { /* all 400 echoed before reading */
        ioctl(fd, FIONREAD, &avail);
        if (avail < 400)
            usleep(20000);
    }
    char r1[50], r2[350];
    struct iovec rv[2] = {{r1, sizeof(r1)}, {r2, sizeof(r2)}};
    check(readv(fd, rv, 2) == 400 && memcmp(r1, data, 50) == 0 && memcmp(r2, data + 50, 350) == 0,
          "readv into 2 pieces: the 400 bytes in order");

    /* dup: one socket, two numbers */
    int d = dup(fd);
    check(d >= 0 && write(d, data, 50) == 50 && read_all(fd, buf, 50) == 0 &&
              memcmp(buf, data, 50) == 0,
          "dup: write on the copy, read on the original");
    close(fd);
    check(write(d, data, 5) == 5 && read_all(d, buf, 5) == 0, "... the copy works after close");
    struct sockaddr_in me, him;
    socklen_t ml = sizeof(me), hl = sizeof(him);
    check(getsockname(d, (struct sockaddr *)&me, &ml) == 0 && me.sin_port != 0 &&
              getpeername(d, (struct sockaddr *)&him, &hl) == 0 && him.sin_port == htons(echo) &&
              him.sin_addr.s_addr == peer.sin_addr.s_addr,
          "getsockname / getpeername");

    /* half-close: the echo server sees EOF and closes: read returns 0 */
    check(shutdown(d, SHUT_WR) == 0, "shutdown SHUT_WR");
    check(read(d, buf, sizeof(buf)) == 0, "... the peer's close reads as 0");
    close(d);

    /* a reset connection */
    fd = connected(rst);
    send(fd, "x", 1, 0);
    ssize_t k = recv(fd, buf, sizeof(buf), 0);
    check(k == -1 && errno == ECONNRESET, "recv on a reset connection: ECONNRESET");
    k = send(fd, data, 10, MSG_NOSIGNAL);
    check(k == -1 && errno == EPIPE && sigpipes == 0,
          "send after it: EPIPE, no SIGPIPE with MSG_NOSIGNAL");
    k = send(fd, data, 10, 0);
    check(k == -1 && errno == EPIPE && sigpipes == 1, "send without MSG_NOSIGNAL: SIGPIPE");
    close(fd);

    /* in an epoll set before connect: its events come from dpnet once it
     * connects (not from the idle kernel socket's EPOLLOUT|EPOLLHUP) */
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int ep2 = epoll_create1(0);
    ev = (struct epoll_event){.events = EPOLLOUT | EPOLLIN, .data.fd = fd};
    epoll_ctl(ep2, EPOLL_CTL_ADD, fd, &ev);
    a = at(echo);
    connect(fd, (struct sockaddr *)&a, sizeof(a));
    n = epoll_wait(ep2, out, 4, 5000);
    check(n == 1 && (out[0].events & EPOLLOUT) && !(out[0].events & (EPOLLHUP | EPOLLERR)),
          "added to epoll before connect: EPOLLOUT once connected, no EPOLLHUP");
    ev.events = EPOLLIN;
    epoll_ctl(ep2, EPOLL_CTL_MOD, fd, &ev);
    check(send(fd, data, 20, 0) == 20 && epoll_wait(ep2, out, 4, 5000) == 1 &&
              (out[0].events & EPOLLIN),
          "... and EPOLLIN for the echo");
    close(ep2);
    close(fd);

    /* fork: the child shares the worker's memory and port; closing the
     * socket and exiting there must leave the parent's connection alone */
    fd = connected(echo);
    pid_t pid = fork();
    if (pid == 0) {
        int ok = send(fd, "x", 1, MSG_NOSIGNAL) == -1;
        close(fd);
        exit(ok ? 0 : 3);
    }
    int st = -1;
    waitpid(pid, &st, 0);
    check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork: the child's send on a dpnet socket fails");
    check(send(fd, data, 30, 0) == 30 && read_all(fd, buf, 30) == 0 && memcmp(buf, data, 30) == 0,
          "... and once it closed it and exited, the parent's connection still echoes");
    close(fd);

    /* UDP: the first sendto decides the socket (dpnet: not loopback) */
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    a = at(echo);
    check(sendto(u, data, 300, 0, (struct sockaddr *)&a, sizeof(a)) == 300, "UDP sendto 300 bytes");
    p = (struct pollfd){.fd = u, .events = POLLIN};
    struct sockaddr_in from;
    socklen_t froml = sizeof(from);
    check(poll(&p, 1, 5000) == 1 &&
              recvfrom(u, buf, sizeof(buf), 0, (struct sockaddr *)&from, &froml) == 300 &&
              memcmp(buf, data, 300) == 0 && from.sin_port == htons(echo) &&
              from.sin_addr.s_addr == peer.sin_addr.s_addr,
          "... recvfrom: the echo, from the peer's address");
    check(recv(u, buf, sizeof(buf), MSG_DONTWAIT) == -1 && errno == EAGAIN,
          "UDP recv with nothing: EAGAIN");
    check(connect(u, (struct sockaddr *)&a, sizeof(a)) == 0 && send(u, data, 100, 0) == 100,
          "UDP connect, then send");
    poll(&p, 1, 5000);
    avail = 0;
    ioctl(u, FIONREAD, &avail);
    check(avail == 100, "... FIONREAD: the next datagram's 100 bytes");
    struct iovec iv = {buf, 40};
    struct msghdr mh = {.msg_iov = &iv, .msg_iovlen = 1};
    check(recvmsg(u, &mh, 0) == 40 && (mh.msg_flags & MSG_TRUNC) && memcmp(buf, data, 40) == 0,
          "... recvmsg into 40 bytes: MSG_TRUNC, the rest dropped");
    send(u, data, 10, 0);
    poll(&p, 1, 5000);
    check(recv(u, buf, sizeof(buf), 0) == 10, "... the next datagram whole");
    static char huge[10000];
    check(send(u, huge, sizeof(huge), 0) == -1 && errno == EMSGSIZE, "UDP 10000 bytes: EMSGSIZE");
    check(listen(u, 1) == -1 && errno == EOPNOTSUPP, "listen on UDP: EOPNOTSUPP");
    close(u);

    /* sendfile: from a file at an offset (non-blocking, interleaved with
     * the echo), from the file's position, at its end, blocking, from a pipe */
    enum { SF_LEN = 3000001 };
    static char file[SF_LEN], back[SF_LEN];
    for (size_t i = 0; i < SF_LEN; i++)
        file[i] = (char)(i * 7 + i / 251);
    char path[] = "/tmp/posixprobe-sf-XXXXXX";
    int ffd = mkstemp(path);
    unlink(path);
    check(ffd >= 0 && write(ffd, file, SF_LEN) == SF_LEN && lseek(ffd, 0, SEEK_SET) == 0,
          "sendfile: a file of 3000001 bytes");
    fd = connected(echo);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    off_t off = 1;
    size_t got = 0, want = SF_LEN - 1;
    int eagain = 0, bad = 0;
    for (int i = 0; i < 200000 && (got < want || (size_t)off < SF_LEN) && !bad; i++) {
        if ((size_t)off < SF_LEN) {
            ssize_t k = sendfile(fd, ffd, &off, SF_LEN - (size_t)off);
            if (k < 0 && errno == EAGAIN)
                eagain++;
            else if (k <= 0)
                bad = 1;
        }
        ssize_t r = recv(fd, back + got, want - got, MSG_DONTWAIT);
        if (r > 0) {
            got += (size_t)r;
        } else {
            struct pollfd q = {.fd = fd, .events = POLLIN | ((size_t)off < SF_LEN ? POLLOUT : 0)};
            poll(&q, 1, 100);
        }
    }
    check(!bad && got == want && memcmp(back, file + 1, want) == 0,
          "... non-blocking, from offset 1: the echo intact");
    printf("# sendfile: %d EAGAIN on the way\n", eagain);
    check(off == SF_LEN && lseek(ffd, 0, SEEK_CUR) == 0,
          "... the offset advanced, the file's position untouched");
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    lseek(ffd, SF_LEN - 11, SEEK_SET);
    check(sendfile(fd, ffd, NULL, 100) == 11 && lseek(ffd, 0, SEEK_CUR) == SF_LEN &&
              read_all(fd, back, 11) == 0 && memcmp(back, file + SF_LEN - 11, 11) == 0,
          "... from the file's position: the last 11 bytes, the position at the end");
    check(sendfile(fd, ffd, NULL, 100) == 0, "... at the end of the file: 0");
    off = 4096;
    check(sendfile(fd, ffd, &off, 100000) == 100000 && off == 104096 &&
              read_all(fd, back, 100000) == 0 && memcmp(back, file + 4096, 100000) == 0,
          "... blocking, 100000 bytes from 4096: all sent, the echo intact");
    int pfd[2];
    check(pipe(pfd) == 0 && write(pfd[1], data, 50) == 50 && sendfile(fd, pfd[0], NULL, 50) == 50 &&
              read_all(fd, back, 50) == 0 && memcmp(back, data, 50) == 0,
          "... from a pipe: 50 bytes");
    close(pfd[0]);
    close(pfd[1]);
    off = 0;
    check(sendfile(fd, -1, &off, 10) == -1 && errno == EBADF, "... from a bad descriptor: EBADF");
    close(fd);
    close(ffd);

    /* MSG_WAITALL: one call returns the whole echo, however it arrives */
    fd = connected(echo);
    static char big[200000], bigback[200000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)(i * 13 + i / 97);
    check(send(fd, big, sizeof(big), 0) == (ssize_t)sizeof(big), "send 200000 bytes");
    check(recv(fd, bigback, sizeof(bigback), MSG_WAITALL) == (ssize_t)sizeof(bigback) &&
              memcmp(big, bigback, sizeof(big)) == 0,
          "recv MSG_WAITALL: all 200000 echoed bytes in one call, intact");
    send(fd, data, 30, 0);
    struct pollfd pw = {.fd = fd, .events = POLLIN};
    poll(&pw, 1, 5000);
    usleep(50000);
    check(recv(fd, buf, 10, MSG_PEEK | MSG_WAITALL) == 10 && memcmp(buf, data, 10) == 0 &&
              recv(fd, buf, 30, MSG_WAITALL) == 30 && memcmp(buf, data, 30) == 0,
          "MSG_PEEK | MSG_WAITALL consumes nothing");
    struct iovec one = {buf, 1};
    volatile int neg = -1; /* a bad count the compiler does not see */
    check(readv(fd, &one, neg) == -1 && errno == EINVAL, "readv with a negative count: EINVAL");
    close(fd);

    /* options: applied, or accepted and kept by the kernel socket (and
     * named once on stderr: t_posix.sh checks) */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    int on = 1, v = 0;
    socklen_t vl = sizeof(v);
    check(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == 0 &&
              getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &v, &vl) == 0 && v == 1,
          "SO_REUSEPORT: accepted, reads back 1");
    vl = sizeof(v);
    check(setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) == 0 &&
              getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, &vl) == 0 && v == 1,
          "SO_KEEPALIVE: set, reads back 1");
    check(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, 1) == -1 && errno == EINVAL,
          "SO_REUSEPORT with a 1-byte value: EINVAL, as the kernel says");
    close(fd);

    /* keepalive set before connect, with TCP_KEEPIDLE/INTVL/CNT: the silent
     * port's peer drops everything of ours once it has accepted, so the
     * probes go unanswered and the connection ends (Linux's defaults, 2 h
     * idle, would keep it past the poll's 20 s). */
    if (silent != 0) {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        int idle = 1, intvl = 1, cnt = 2;
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
        struct sockaddr_in sa = at(silent);
        check(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
              "connect to the silent port, keepalive set before");
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, 20000);
        errno = 0;
        ssize_t n = pr == 1 ? recv(fd, buf, 1, 0) : 0;
        check(pr == 1 && n == -1 && errno == ETIMEDOUT,
              "... 2 probes a second apart unanswered after 1 s idle: ETIMEDOUT");
        close(fd);
    }

    /* refusals */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
    bind(fd, (struct sockaddr *)&any, sizeof(any)); /* port 0 */
    check(listen(fd, 8) == -1 && errno == EOPNOTSUPP, "listen on port 0: EOPNOTSUPP (said why)");
    close(fd);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    any.sin_port = htons(4321);
    check(bind(fd, (struct sockaddr *)&any, sizeof(any)) == 0 && listen(fd, 8) == 0,
          "bind any:4321 and listen on dpnet");
    check(accept(fd, NULL, NULL) == -1 && errno == EAGAIN, "non-blocking accept with none: EAGAIN");
    close(fd);

    printf("# posixprobe: %d failed\n", fails);
    return fails ? 1 : 0;
}
