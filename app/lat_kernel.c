/* net_latency over Linux sockets (--kernel): the same closed loop and the
 * same statistics as the dpnet back end, so the two compare like for like.
 * One connection with one request in flight uses blocking calls (what a
 * latency-minded kernel client does); several connections, --pipeline,
 * --connect-rate and --bulk use non-blocking sockets and epoll. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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

#define BULK_CHUNK 65536

struct kflow {
    int fd;
    uint64_t sent_ns; /* UDP, --connect-rate: start of the current request */
    uint64_t *ts;     /* TCP: start times of the requests in flight (a ring) */
    unsigned ts_head, ts_n;
    size_t to_send;  /* bytes of queued requests not yet written */
    size_t send_off; /* offset in the message of the next byte to write */
    size_t got;      /* bytes of the oldest request's echo received */
    bool connecting; /* --connect-rate: connect() in progress */
    uint64_t seq;    /* UDP: sequence number carried in the first 8 bytes */
    uint64_t bulk_out, bulk_in;
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void print_connect_error(const struct lat_opts *o, int err) {
    fprintf(stderr, "net_latency: cannot connect to %u.%u.%u.%u:%u: %s\n", o->server_ip >> 24,
            (o->server_ip >> 16) & 255, (o->server_ip >> 8) & 255, o->server_ip & 255, o->port,
            strerror(err));
    if (err == EADDRNOTAVAIL)
        fprintf(stderr, "net_latency: out of local ports (TIME_WAIT): try "
                        "sysctl net.ipv4.tcp_tw_reuse=1 and a wider ip_local_port_range\n");
}

static int open_socket(const struct lat_opts *o, bool nonblock) {
    int fd =
        socket(AF_INET, (o->udp ? SOCK_DGRAM : SOCK_STREAM) | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(o->port), .sin_addr.s_addr = htonl(o->server_ip)};
    int one = 1;
    if (!o->udp)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
        !(nonblock && errno == EINPROGRESS)) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Write what is queued without blocking; -1 on a dead socket. payload holds
 * the message repeated, so a run of queued requests goes out in one call. */
static int ksend(struct kflow *f, const uint8_t *payload, size_t size) {
    while (f->to_send > 0) {
        ssize_t n = send(f->fd, payload + f->send_off, f->to_send, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        f->to_send -= (size_t)n;
        f->send_off = (f->send_off + (size_t)n) % size;
    }
    return 0;
}

/* Queue one request (its start time is now); ksend writes it. */
static void queue_req(struct kflow *f, const struct lat_opts *o, uint8_t *payload) {
    if (o->udp && o->size >= 8) { /* a late echo of a resent request is not this one's */
        f->seq++;
        memcpy(payload, &f->seq, 8);
    }
    uint64_t t = now_ns();
    f->sent_ns = t;
    f->ts[(f->ts_head + f->ts_n) % o->pipeline] = t;
    f->ts_n++;
    f->to_send += o->size;
}

/* Queue one request and write what fits. */
static int start(struct kflow *f, const struct lat_opts *o, uint8_t *payload) {
    queue_req(f, o, payload);
    return ksend(f, payload, o->size);
}

/* ---- ping-pong, one or more connections, one or more requests in flight ---- */

/* Read what is there; the number of requests completed, or -1 on error. */
static int krecv(struct kflow *f, const struct lat_opts *o, uint8_t *buf, int flags) {
    size_t want = o->udp ? o->size : (size_t)f->ts_n * o->size - f->got;
    ssize_t n = recv(f->fd, buf, want, flags);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    if (n == 0 && !o->udp) {
        errno = 0;
        return -1;
    }
    if (o->udp) {
        uint64_t seq = f->seq;
        if (o->size >= 8 && n >= 8)
            memcpy(&seq, buf, 8);
        return (size_t)n == o->size && seq == f->seq ? 1 : 0;
    }
    f->got += (size_t)n;
    int done = 0;
    while (f->got >= o->size) {
        f->got -= o->size;
        done++;
    }
    return done;
}

static int run_loop(const struct lat_opts *o, struct kflow *fl, struct lat_run *r, uint8_t *payload,
                    uint8_t *buf, int ep) {
    uint64_t deadline = now_ns() + o->timeout_s * 1000000000ull;
    /* The requests started together go out in one write (as dpnet's side). */
    for (unsigned i = 0; i < o->conns; i++) {
        for (unsigned k = 0; k < o->pipeline; k++)
            queue_req(&fl[i], o, payload);
        ksend(&fl[i], payload, o->size);
    }
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
            nev = epoll_wait(ep, evs, 64, o->spin ? 0 : 200); /* spin: poll, never sleep */
            if (nev < 0 && errno != EINTR)
                return 1;
        }
        for (int k = 0; k < nev; k++) {
            struct kflow *f = ep >= 0 ? &fl[evs[k].data.u32] : &fl[0];
            int rc = krecv(f, o, buf, ep >= 0 || o->spin ? MSG_DONTWAIT : 0);
            if (rc < 0) {
                fprintf(stderr, "net_latency: connection lost: %s\n",
                        errno ? strerror(errno) : "closed by server");
                return 1;
            }
            if (rc == 0) {
                if (o->udp && now_ns() - f->sent_ns > 200000000ull) {
                    r->lost++; /* resend a lost request */
                    f->ts_n = 0;
                    f->to_send = 0;
                    f->send_off = 0;
                    start(f, o, payload);
                } else if (ksend(f, payload, o->size) < 0) {
                    return 1;
                }
                continue;
            }
            uint64_t t = now_ns();
            for (int c = 0; c < rc; c++) {
                uint64_t t0 = f->ts[f->ts_head];
                f->ts_head = (f->ts_head + 1) % o->pipeline;
                f->ts_n--;
                if (lat_record(r, t - t0, t))
                    return 0;
                if (o->udp) {
                    f->to_send = 0; /* a datagram is sent whole or not at all */
                    f->send_off = 0;
                }
                queue_req(f, o, payload);
            }
            ksend(f, payload, o->size); /* an error shows in the next recv */
        }
    }
}

/* ---- --connect-rate ---- */

static int cr_open(const struct lat_opts *o, struct kflow *f, int ep, unsigned idx) {
    f->sent_ns = now_ns();
    f->to_send = f->send_off = f->got = 0;
    f->fd = open_socket(o, true);
    if (f->fd < 0) {
        print_connect_error(o, errno);
        return -1;
    }
    f->connecting = true;
    struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = idx};
    return epoll_ctl(ep, EPOLL_CTL_ADD, f->fd, &ev);
}

static int run_connect_rate(const struct lat_opts *o, struct kflow *fl, struct lat_run *r,
                            uint8_t *payload, uint8_t *buf) {
    int ep = epoll_create1(0);
    uint64_t deadline = now_ns() + o->timeout_s * 1000000000ull;
    int rc = 1;
    for (unsigned i = 0; i < o->conns; i++)
        fl[i].fd = -1;
    for (unsigned i = 0; i < o->conns; i++)
        if (cr_open(o, &fl[i], ep, i) != 0)
            goto out;
    struct epoll_event evs[64];
    for (;;) {
        if (now_ns() > deadline) {
            fprintf(stderr, "net_latency: timed out (%llu connections)\n",
                    (unsigned long long)r->n);
            goto out;
        }
        int nev = epoll_wait(ep, evs, 64, 200);
        if (nev < 0 && errno != EINTR)
            goto out;
        for (int k = 0; k < nev; k++) {
            unsigned idx = evs[k].data.u32;
            struct kflow *f = &fl[idx];
            if (f->connecting) {
                int err = 0;
                socklen_t len = sizeof(err);
                getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err != 0) {
                    fprintf(stderr, "net_latency: connect failed (after %llu connections): %s\n",
                            (unsigned long long)r->n, strerror(err));
                    goto out;
                }
                f->connecting = false;
                struct epoll_event ev = {.events = EPOLLIN, .data.u32 = idx};
                epoll_ctl(ep, EPOLL_CTL_MOD, f->fd, &ev);
                f->to_send = o->size;
                if (ksend(f, payload, o->size) < 0)
                    goto lost;
                continue;
            }
            ssize_t n = recv(f->fd, buf, o->size - f->got, MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (n <= 0) {
                if (n == 0)
                    errno = 0;
                goto lost;
            }
            f->got += (size_t)n;
            if (f->got < o->size) {
                if (ksend(f, payload, o->size) < 0)
                    goto lost;
                continue;
            }
            close(f->fd); /* we close first: TIME_WAIT is on our side, as for dpnet */
            f->fd = -1;
            uint64_t t = now_ns();
            if (lat_record(r, t - f->sent_ns, t)) {
                rc = 0;
                goto out;
            }
            if (cr_open(o, f, ep, idx) != 0)
                goto out;
        }
    }
lost:
    fprintf(stderr, "net_latency: connection lost: %s\n",
            errno ? strerror(errno) : "closed by server");
out:
    for (unsigned i = 0; i < o->conns; i++)
        if (fl[i].fd >= 0)
            close(fl[i].fd);
    close(ep);
    return rc;
}

/* ---- --bulk ---- */

static int run_bulk(const struct lat_opts *o, struct kflow *fl, uint8_t *payload, uint8_t *buf,
                    size_t buflen) {
    int ep = epoll_create1(0);
    uint64_t deadline = now_ns() + o->timeout_s * 1000000000ull;
    uint64_t total = o->bulk_bytes * o->conns, in = 0, mark = 0, t0 = 0;
    for (unsigned i = 0; i < o->conns; i++) {
        fcntl(fl[i].fd, F_SETFL, fcntl(fl[i].fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fl[i].fd, &ev);
    }
    struct epoll_event evs[64];
    for (;;) {
        if (now_ns() > deadline) {
            fprintf(stderr, "net_latency: timed out (%llu of %llu bytes echoed)\n",
                    (unsigned long long)in, (unsigned long long)total);
            close(ep);
            return 1;
        }
        int nev = epoll_wait(ep, evs, 64, 200);
        if (nev < 0 && errno != EINTR) {
            close(ep);
            return 1;
        }
        for (int k = 0; k < nev; k++) {
            unsigned idx = evs[k].data.u32;
            struct kflow *f = &fl[idx];
            if (evs[k].events & EPOLLOUT) {
                while (f->bulk_out < o->bulk_bytes) {
                    size_t off = (size_t)(f->bulk_out % BULK_CHUNK), chunk = BULK_CHUNK - off;
                    if (chunk > o->bulk_bytes - f->bulk_out)
                        chunk = (size_t)(o->bulk_bytes - f->bulk_out);
                    ssize_t n = send(f->fd, payload + off, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
                    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        break;
                    if (n < 0) {
                        perror("net_latency: send");
                        close(ep);
                        return 1;
                    }
                    f->bulk_out += (uint64_t)n;
                }
                if (f->bulk_out == o->bulk_bytes) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = idx};
                    epoll_ctl(ep, EPOLL_CTL_MOD, f->fd, &ev);
                }
            }
            if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                ssize_t n = recv(f->fd, buf, buflen, MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                    continue;
                if (n <= 0) {
                    fprintf(stderr, "net_latency: connection lost: %s\n",
                            n == 0 ? "closed by server" : strerror(errno));
                    close(ep);
                    return 1;
                }
                f->bulk_in += (uint64_t)n;
                in += (uint64_t)n;
                if (t0 == 0 && in >= total / 8) {
                    t0 = now_ns();
                    mark = in;
                }
                if (in == total) {
                    uint64_t t1 = now_ns();
                    close(ep);
                    char what[160];
                    snprintf(what, sizeof(what),
                             "kernel tcp bulk echo, %u connection(s), %llu B each", o->conns,
                             (unsigned long long)o->bulk_bytes);
                    lat_report_bulk(in - mark, (double)(t1 - t0) / 1e9, in, o->json, what);
                    return 0;
                }
            }
        }
    }
}

int lat_run_kernel(const struct lat_opts *o) {
    struct lat_run r;
    struct kflow *fl = calloc(o->conns, sizeof(*fl));
    /* The message repeated once per request in flight (and one more, for a
     * write that starts inside a message); bulk writes 64 KiB chunks. */
    size_t plen = o->bulk_bytes > 0 ? BULK_CHUNK : o->size * (o->pipeline + 1);
    size_t blen = o->bulk_bytes > 0 ? 4 * BULK_CHUNK : o->size * o->pipeline;
    uint8_t *payload = malloc(plen), *buf = malloc(blen);
    if (fl == NULL || payload == NULL || buf == NULL ||
        lat_init(&r, o->bulk_bytes > 0 ? 1 : o->count, o->duration_s * 1000000000ull, o->warmup) !=
            0)
        return 1;
    memset(payload, 'k', plen);
    for (unsigned i = 0; i < o->conns; i++) {
        fl[i].ts = calloc(o->pipeline, sizeof(uint64_t));
        if (fl[i].ts == NULL)
            return 1;
    }
    int rc;
    char what[160];
    if (o->connect_rate) {
        rc = run_connect_rate(o, fl, &r, payload, buf);
        if (rc != 0)
            return rc;
        snprintf(what, sizeof(what),
                 "kernel tcp connect-rate, %u in parallel, %zu B echo per connection", o->conns,
                 o->size);
    } else {
        bool use_epoll = o->conns > 1 || o->pipeline > 1 || o->bulk_bytes > 0;
        int ep = use_epoll ? epoll_create1(0) : -1;
        for (unsigned i = 0; i < o->conns; i++) {
            fl[i].fd = open_socket(o, false);
            if (fl[i].fd < 0) {
                print_connect_error(o, errno);
                return 1;
            }
            if (o->bulk_bytes > 0)
                continue;
            if (ep >= 0) {
                struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
                epoll_ctl(ep, EPOLL_CTL_ADD, fl[i].fd, &ev);
            } else if (o->udp && !o->spin) {
                struct timeval tv = {.tv_sec = 0, .tv_usec = 200000}; /* loss: resend */
                setsockopt(fl[i].fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            }
            if (o->spin) { /* busy-poll the device queue where the kernel can (not veth) */
                int us = 50;
                setsockopt(fl[i].fd, SOL_SOCKET, SO_BUSY_POLL, &us, sizeof(us));
            }
        }
        if (o->bulk_bytes > 0) {
            rc = run_bulk(o, fl, payload, buf, blen);
            for (unsigned i = 0; i < o->conns; i++)
                close(fl[i].fd);
            return rc;
        }
        rc = run_loop(o, fl, &r, payload, buf, ep);
        for (unsigned i = 0; i < o->conns; i++)
            close(fl[i].fd);
        if (rc != 0)
            return rc;
        if (o->pipeline > 1)
            snprintf(what, sizeof(what),
                     "kernel tcp, %u connection(s), %u in flight each, %zu B messages", o->conns,
                     o->pipeline, o->size);
        else
            snprintf(what, sizeof(what), "kernel %s%s, %u %s, %zu B messages",
                     o->udp ? "udp" : "tcp", o->spin ? " (spinning)" : "", o->conns,
                     o->udp ? "flow(s)" : "connection(s)", o->size);
    }
    if (o->samples != NULL && lat_dump(&r, o->samples) != 0)
        return 1;
    lat_report(&r, o->json, what);
    return 0;
}
