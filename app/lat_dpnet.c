/* net_latency over dpnet: N connections (or UDP flows), each with one
 * request in flight; a request's round trip ends when its whole echo is back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpnet.h"
#include "latency_stats.h"
#include "net_latency.h"

struct flow {
    struct dpn_conn *c;
    struct dpn_udp *u;
    uint64_t sent_ns;
    size_t to_send; /* bytes of the current request not yet queued */
    size_t got;     /* bytes of the current echo received */
    uint64_t seq;   /* UDP: sequence number carried in the first 8 bytes */
    bool up;
};

static struct {
    struct dpn_worker *w;
    const struct lat_opts *o;
    struct flow *flows;
    unsigned connected, failed;
    uint8_t *payload;
    struct lat_run run;
    bool done, started;
    int err;
    uint64_t deadline_ns;
} s;

static void finish(int err) {
    if (s.done)
        return;
    s.done = true;
    s.err = err;
    dpn_stop(s.w);
}

/* ---- TCP ---- */

static void pump(struct flow *f) {
    while (f->to_send > 0) {
        size_t off = s.o->size - f->to_send;
        long n = dpn_send(f->c, s.payload + off, f->to_send);
        if (n <= 0)
            return; /* full: sent() resumes */
        f->to_send -= (size_t)n;
    }
}

static void start_request(struct flow *f) {
    f->sent_ns = dpn_now_ns();
    f->to_send = s.o->size;
    f->got = 0;
    if (f->c != NULL)
        pump(f);
}

static void start_all(void) {
    s.started = true;
    for (unsigned i = 0; i < s.o->conns; i++)
        start_request(&s.flows[i]);
}

static void complete(struct flow *f) {
    uint64_t now = dpn_now_ns();
    if (lat_record(&s.run, now - f->sent_ns, now))
        finish(0);
    else
        start_request(f);
}

static void on_connected(void *ctx, struct dpn_conn *c, int err) {
    struct flow *f = ctx;
    if (err != 0) {
        fprintf(stderr, "net_latency: connection %ld failed: %s\n", (long)(f - s.flows),
                dpn_strerror(err));
        f->c = NULL;
        finish(1);
        return;
    }
    f->c = c;
    f->up = true;
    if (++s.connected == s.o->conns)
        start_all();
}

static void on_recv(void *ctx, struct dpn_conn *c, struct dpn_buf *b) {
    struct flow *f = ctx;
    f->got += dpn_buf_len(b);
    dpn_recv_done(c, b);
    if (s.done)
        return;
    if (f->got > s.o->size) {
        fprintf(stderr, "net_latency: server sent %zu bytes for a %zu-byte request\n", f->got,
                s.o->size);
        finish(1);
        return;
    }
    if (f->got == s.o->size)
        complete(f);
}

static void on_sent(void *ctx, struct dpn_conn *c, size_t len) {
    (void)c;
    (void)len;
    struct flow *f = ctx;
    if (!s.done)
        pump(f);
}

static void on_eof(void *ctx, struct dpn_conn *c) {
    (void)c;
    (void)ctx;
    if (!s.done) {
        fprintf(stderr, "net_latency: server closed the connection\n");
        finish(1);
    }
}

static void on_closed(void *ctx, struct dpn_conn *c, int err) {
    (void)c;
    struct flow *f = ctx;
    f->c = NULL;
    f->up = false;
    if (!s.done) {
        fprintf(stderr, "net_latency: connection lost: %s\n", dpn_strerror(err));
        finish(1);
    }
}

static const struct dpn_tcp_ops tcp_ops = {
    .connected = on_connected,
    .recv = on_recv,
    .sent = on_sent,
    .eof = on_eof,
    .closed = on_closed,
};

/* ---- UDP ---- */

static void udp_send(struct flow *f) {
    f->seq++;
    if (s.o->size >= 8)
        memcpy(s.payload, &f->seq, 8);
    f->sent_ns = dpn_now_ns();
    dpn_udp_sendto(f->u, s.payload, s.o->size, s.o->server_ip, s.o->port);
}

static void on_udp(void *ctx, struct dpn_udp *u, struct dpn_buf *b, uint32_t ip, uint16_t port) {
    (void)u;
    struct flow *f = ctx;
    uint64_t seq = f->seq;
    size_t len = dpn_buf_len(b);
    if (s.o->size >= 8 && len >= 8)
        dpn_buf_copy(b, &seq, 8, 0);
    dpn_buf_free(b);
    if (s.done || ip != s.o->server_ip || port != s.o->port || len != s.o->size || seq != f->seq)
        return; /* stray or late reply */
    uint64_t now = dpn_now_ns();
    if (lat_record(&s.run, now - f->sent_ns, now))
        finish(0);
    else
        udp_send(f);
}

/* ---- timers: UDP loss and the overall time limit ---- */

#define TICK_MS 50
#define UDP_RESEND_NS (200 * 1000000ull)

static void tick(void *arg) {
    (void)arg;
    uint64_t now = dpn_now_ns();
    if (now > s.deadline_ns) {
        fprintf(stderr, "net_latency: timed out after %llu s (%llu of %llu round trips)\n",
                (unsigned long long)s.o->timeout_s, (unsigned long long)s.run.n,
                (unsigned long long)s.o->count);
        finish(1);
        return;
    }
    if (s.o->udp && s.started) {
        for (unsigned i = 0; i < s.o->conns; i++) {
            if (now - s.flows[i].sent_ns > UDP_RESEND_NS) {
                s.run.lost++;
                udp_send(&s.flows[i]);
            }
        }
    }
    dpn_timer_add(s.w, TICK_MS, tick, NULL);
}

static int open_flows(void) {
    for (unsigned i = 0; i < s.o->conns; i++) {
        struct flow *f = &s.flows[i];
        int rc = s.o->udp ? dpn_udp_bind(s.w, 0, on_udp, f, &f->u)
                          : dpn_connect(s.w, s.o->server_ip, s.o->port, &tcp_ops, f, NULL);
        if (rc != 0) {
            fprintf(stderr, "net_latency: cannot open %s flow %u: %s\n", s.o->udp ? "UDP" : "TCP",
                    i, dpn_strerror(rc));
            return -1;
        }
    }
    if (s.o->udp) {
        s.started = true;
        for (unsigned i = 0; i < s.o->conns; i++)
            udp_send(&s.flows[i]);
    }
    return 0;
}

static void close_flows(void) {
    for (unsigned i = 0; i < s.o->conns; i++) {
        struct flow *f = &s.flows[i];
        if (f->u != NULL)
            dpn_udp_close(f->u);
        if (f->c != NULL && f->up)
            dpn_close_conn(f->c);
        f->c = NULL;
    }
}

int lat_run_dpnet(struct dpn_worker *w, const struct lat_opts *o) {
    s.w = w;
    s.o = o;
    s.flows = calloc(o->conns, sizeof(*s.flows));
    s.payload = malloc(o->size);
    if (s.flows == NULL || s.payload == NULL ||
        lat_init(&s.run, o->count, o->duration_s * 1000000000ull, o->warmup) != 0) {
        fprintf(stderr, "net_latency: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < o->size; i++)
        s.payload[i] = (uint8_t)('a' + i % 26);
    s.deadline_ns = dpn_now_ns() + o->timeout_s * 1000000000ull;
    dpn_timer_add(w, TICK_MS, tick, NULL);
    if (open_flows() != 0)
        return 1;
    dpn_run(w);
    dpn_timer_cancel(w, tick, NULL);
    close_flows();
    if (!s.done) {
        fprintf(stderr, "net_latency: interrupted after %llu round trips\n",
                (unsigned long long)s.run.n);
        return 1;
    }
    if (s.err != 0)
        return 1;
    char what[128];
    snprintf(what, sizeof(what), "dpnet %s, %u %s, %zu B messages", o->udp ? "udp" : "tcp",
             o->conns, o->udp ? "flow(s)" : "connection(s)", o->size);
    lat_report(&s.run, o->json, what);
    return 0;
}
