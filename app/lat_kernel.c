/* net_latency over Linux sockets (--kernel): the same closed loop and the
 * same statistics as the dpnet back end, so the two compare like for like.
 * One connection uses blocking calls (what a latency-minded kernel client
 * does); several use epoll. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "latency_stats.h"
#include "net_latency.h"

struct kflow {
    int fd;
    uint64_t sent_ns;
    size_t sent, got;
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int open_socket(const struct lat_opts *o) {
    int fd = socket(AF_INET, o->udp ? SOCK_DGRAM : SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(o->port), .sin_addr.s_addr = htonl(o->server_ip)};
    int one = 1;
    if (!o->udp)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Send the rest of the request without blocking; -1 on a dead socket. */
static int ksend(struct kflow *f, const uint8_t *payload, size_t size) {
    while (f->sent < size) {
        ssize_t n = send(f->fd, payload + f->sent, size - f->sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        f->sent += (size_t)n;
    }
    return 0;
}

static void start(struct kflow *f, const uint8_t *payload, size_t size) {
    f->sent = f->got = 0;
    f->sent_ns = now_ns();
    ksend(f, payload, size);
}

/* Read what is there; 1 when the echo is complete, 0 not yet, -1 error. */
static int krecv(struct kflow *f, uint8_t *buf, size_t size, bool udp, int flags) {
    ssize_t n = recv(f->fd, buf, udp ? size : size - f->got, flags);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    if (n == 0 && !udp)
        return -1;
    if (udp)
        return (size_t)n == size ? 1 : 0;
    f->got += (size_t)n;
    return f->got == size ? 1 : 0;
}

static int run_loop(const struct lat_opts *o, struct kflow *fl, struct lat_run *r, uint8_t *payload,
                    uint8_t *buf, int ep) {
    uint64_t deadline = now_ns() + o->timeout_s * 1000000000ull;
    for (unsigned i = 0; i < o->conns; i++)
        start(&fl[i], payload, o->size);
    struct epoll_event evs[64];
    for (;;) {
        uint64_t now = now_ns();
        if (now > deadline) {
            fprintf(stderr, "net_latency: timed out (%llu round trips)\n",
                    (unsigned long long)r->n);
            return 1;
        }
        int nev = 1;
        if (ep >= 0) {
            nev = epoll_wait(ep, evs, 64, 200);
            if (nev < 0 && errno != EINTR)
                return 1;
        }
        for (int k = 0; k < nev; k++) {
            struct kflow *f = ep >= 0 ? &fl[evs[k].data.u32] : &fl[0];
            int rc = krecv(f, buf, o->size, o->udp, ep >= 0 ? MSG_DONTWAIT : 0);
            if (rc < 0) {
                fprintf(stderr, "net_latency: connection lost: %s\n",
                        errno ? strerror(errno) : "closed by server");
                return 1;
            }
            if (rc == 0) {
                if (o->udp && now_ns() - f->sent_ns > 200000000ull) {
                    r->lost++; /* resend a lost request */
                    start(f, payload, o->size);
                } else if (ksend(f, payload, o->size) < 0) {
                    return 1;
                }
                continue;
            }
            uint64_t t = now_ns();
            if (lat_record(r, t - f->sent_ns, t))
                return 0;
            start(f, payload, o->size);
        }
    }
}

int lat_run_kernel(const struct lat_opts *o) {
    struct lat_run r;
    struct kflow *fl = calloc(o->conns, sizeof(*fl));
    uint8_t *payload = malloc(o->size), *buf = malloc(o->size);
    if (fl == NULL || payload == NULL || buf == NULL ||
        lat_init(&r, o->count, o->duration_s * 1000000000ull, o->warmup) != 0)
        return 1;
    memset(payload, 'k', o->size);
    int ep = o->conns > 1 ? epoll_create1(0) : -1;
    for (unsigned i = 0; i < o->conns; i++) {
        fl[i].fd = open_socket(o);
        if (fl[i].fd < 0) {
            fprintf(stderr, "net_latency: cannot connect to %u.%u.%u.%u:%u: %s\n",
                    o->server_ip >> 24, (o->server_ip >> 16) & 255, (o->server_ip >> 8) & 255,
                    o->server_ip & 255, o->port, strerror(errno));
            return 1;
        }
        if (ep >= 0) {
            struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
            epoll_ctl(ep, EPOLL_CTL_ADD, fl[i].fd, &ev);
        } else if (o->udp) {
            struct timeval tv = {.tv_sec = 0, .tv_usec = 200000}; /* loss: resend */
            setsockopt(fl[i].fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        }
    }
    int rc = run_loop(o, fl, &r, payload, buf, ep);
    for (unsigned i = 0; i < o->conns; i++)
        close(fl[i].fd);
    if (rc != 0)
        return rc;
    char what[128];
    snprintf(what, sizeof(what), "kernel %s, %u %s, %zu B messages", o->udp ? "udp" : "tcp",
             o->conns, o->udp ? "flow(s)" : "connection(s)", o->size);
    lat_report(&r, o->json, what);
    return 0;
}
