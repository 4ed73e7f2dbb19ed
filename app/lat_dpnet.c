/* net_latency over dpnet: N connections (or UDP flows), each with one
 * request in flight (or --pipeline K); a request's round trip ends when its
 * whole echo is back. --connect-rate opens a connection per request;
 * --bulk streams and counts the echoed bytes. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpnet.h"
#include "latency_stats.h"
#include "net_latency.h"

#define BULK_CHUNK 65536

struct flow {         /* what a TCP answer touches first, in its first two cache lines */
    unsigned ts_head; /* oldest request in flight */
    unsigned ts_n;    /* requests in flight */
    size_t got;       /* bytes of the oldest request's echo received */
    size_t to_send;   /* bytes of queued requests not yet accepted by the stack */
    size_t send_off;  /* offset in the message of the next byte to send */
    uint64_t *ts;     /* TCP: start times of the requests in flight (a ring) */
    struct dpn_conn *c;
    uint64_t ts_inline[8]; /* ts when --pipeline <= 8 */
    struct dpn_udp *u;
    uint64_t sent_ns;  /* UDP, --connect-rate: start of the current request */
    uint64_t seq;      /* UDP: sequence number carried in the first 8 bytes */
    uint64_t bulk_out; /* --bulk: bytes accepted by the stack */
    uint64_t bulk_in;  /* --bulk: bytes echoed back */
    bool up;
};

static struct {
    struct dpn_worker *w;
    const struct lat_opts *o;
    struct flow *flows;
    unsigned connected, failed;
    uint8_t *payload;
    size_t span; /* TCP: payload bytes one dpn_send may take (pipelined messages back to back) */
    size_t req_size, resp_size; /* bytes of a request and of its answer (an echo: o->size) */
    char head[512];             /* --http: the first response's head, read to learn resp_size */
    size_t head_len;
    struct lat_run run;
    bool done, started;
    int err;
    uint64_t deadline_ns;
    uint64_t bulk_in, bulk_mark, bulk_t0, bulk_t1; /* --bulk totals and window */
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
        size_t chunk = s.span - f->send_off;
        if (chunk > f->to_send)
            chunk = f->to_send;
        long n = dpn_send(f->c, s.payload + f->send_off, chunk);
        if (n <= 0)
            return; /* full: sent() resumes */
        f->to_send -= (size_t)n;
        f->send_off = (f->send_off + (size_t)n) % s.span;
    }
}

static void pump_bulk(struct flow *f) {
    while (f->bulk_out < s.o->bulk_bytes) {
        uint64_t left = s.o->bulk_bytes - f->bulk_out;
        size_t off = (size_t)(f->bulk_out % BULK_CHUNK);
        size_t chunk = BULK_CHUNK - off;
        if (chunk > left)
            chunk = (size_t)left;
        long n = dpn_send(f->c, s.payload + off, chunk);
        if (n <= 0)
            return;
        f->bulk_out += (uint64_t)n;
    }
}

static void start_request(struct flow *f, uint64_t now) {
    unsigned i = f->ts_head + f->ts_n; /* a ring of s.o->pipeline: no division per request */
    f->ts[i >= s.o->pipeline ? i - s.o->pipeline : i] = now;
    f->ts_n++;
    f->to_send += s.req_size; /* the caller pumps: one write for all it started */
}

static void start_all(void) {
    s.started = true;
    for (unsigned i = 0; i < s.o->conns; i++) {
        struct flow *f = &s.flows[i];
        if (s.o->bulk_bytes > 0) {
            pump_bulk(f);
        } else {
            for (unsigned k = 0; k < s.o->pipeline; k++)
                start_request(f, dpn_now_ns());
            pump(f);
        }
    }
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

/* --verify: the echo of stream offset k is s.payload[k % BULK_CHUNK]. */
static bool bulk_intact(const struct flow *f, const struct dpn_buf *b) {
    uint64_t k = f->bulk_in;
    for (const struct dpn_buf *seg = dpn_buf_first(b); seg != NULL; seg = dpn_buf_next(seg)) {
        size_t n, done = 0;
        const uint8_t *d = dpn_buf_data(seg, &n);
        while (done < n) {
            size_t off = (size_t)((k + done) % BULK_CHUNK), run = BULK_CHUNK - off;
            if (run > n - done)
                run = n - done;
            if (memcmp(d + done, s.payload + off, run) != 0)
                return false;
            done += run;
        }
        k += n;
    }
    return true;
}

static void on_recv_bulk(struct flow *f, size_t len) {
    f->bulk_in += len;
    s.bulk_in += len;
    uint64_t total = s.o->bulk_bytes * s.o->conns;
    if (s.bulk_t0 == 0 && s.bulk_in >= total / 8) {
        s.bulk_t0 = dpn_now_ns();
        s.bulk_mark = s.bulk_in;
    }
    if (f->bulk_in > s.o->bulk_bytes) {
        fprintf(stderr, "net_latency: server echoed more than was sent\n");
        finish(1);
    } else if (s.bulk_in == total) {
        s.bulk_t1 = dpn_now_ns();
        finish(0);
    }
}

/* --http: the first response's head gives every response's length (a
 * server answering the same GET the same way); each response must start
 * with a 200 status line. False with a message when it does not. */
static bool http_check(struct flow *f, const struct dpn_buf *b, size_t len) {
    static const char ok[] = "HTTP/1.1 200 ";
    if (s.resp_size == 0) {
        size_t n = len < sizeof(s.head) - 1 - s.head_len ? len : sizeof(s.head) - 1 - s.head_len;
        dpn_buf_copy(b, s.head + s.head_len, n, 0);
        s.head_len += n;
        s.head[s.head_len] = '\0';
        const char *end = strstr(s.head, "\r\n\r\n"), *cl = strstr(s.head, "Content-Length: ");
        if (end == NULL && s.head_len < sizeof(s.head) - 1)
            return true; /* more to come */
        if (end == NULL || cl == NULL || cl > end || strncmp(s.head, ok, sizeof(ok) - 1) != 0) {
            fprintf(stderr, "net_latency: not an HTTP 200 response with a Content-Length: %.80s\n",
                    s.head);
            return false;
        }
        s.resp_size = (size_t)(end + 4 - s.head) + strtoul(cl + 16, NULL, 10);
        return true;
    }
    /* Each response that starts in this buffer starts with the status line. */
    for (size_t at = f->got % s.resp_size == 0 ? 0 : s.resp_size - f->got % s.resp_size; at < len;
         at += s.resp_size) {
        char line[sizeof(ok)] = {0};
        size_t n = dpn_buf_copy(b, line, sizeof(ok) - 1, at);
        if (strncmp(line, ok, n) != 0) {
            fprintf(stderr, "net_latency: a response does not start with %s\n", ok);
            return false;
        }
    }
    return true;
}

static void on_recv(void *ctx, struct dpn_conn *c, struct dpn_buf *b) {
    struct flow *f = ctx;
    size_t len = dpn_buf_len(b);
    if (s.done || s.o->bulk_bytes > 0) {
        if (!s.done && s.o->verify && !bulk_intact(f, b)) {
            fprintf(stderr,
                    "net_latency: the echo differs from what was sent, within bytes "
                    "%" PRIu64 "-%" PRIu64 " of connection %ld\n",
                    f->bulk_in, f->bulk_in + len, (long)(f - s.flows));
            dpn_recv_done(c, b);
            finish(1);
            return;
        }
        dpn_recv_done(c, b);
        if (!s.done)
            on_recv_bulk(f, len);
        return;
    }
    if (s.o->http != NULL && !http_check(f, b, len)) {
        dpn_recv_done(c, b);
        finish(1);
        return;
    }
    dpn_recv_done(c, b);
    f->got += len;
    if (s.resp_size == 0)
        return; /* --http: the first response's head is not whole yet */
    if (f->got > (size_t)f->ts_n * s.resp_size) {
        fprintf(stderr, "net_latency: server sent %zu bytes for %u request(s) of %zu bytes\n",
                f->got, f->ts_n, s.resp_size);
        finish(1);
        return;
    }
    if (f->got < s.resp_size)
        return;
    uint64_t now = dpn_now_ns();
    while (f->got >= s.resp_size) {
        f->got -= s.resp_size;
        uint64_t t0 = f->ts[f->ts_head];
        if (++f->ts_head == s.o->pipeline)
            f->ts_head = 0;
        f->ts_n--;
        if (lat_record(&s.run, now - t0, now)) {
            finish(0);
            return;
        }
        start_request(f, now); /* the answer's time: this request leaves now */
    }
    pump(f);
}

static void on_sent(void *ctx, struct dpn_conn *c, size_t len) {
    (void)c;
    (void)len;
    struct flow *f = ctx;
    if (s.done)
        return;
    if (s.o->bulk_bytes > 0)
        pump_bulk(f);
    else
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

/* ---- --connect-rate: connect, one request, close, again ---- */

static const struct dpn_tcp_ops cr_ops;

static int cr_open(struct flow *f) {
    f->sent_ns = dpn_now_ns();
    f->to_send = 0;
    f->send_off = 0;
    f->got = 0;
    f->c = NULL;
    f->up = false;
    int rc = dpn_connect(s.w, s.o->server_ip, s.o->port, &cr_ops, f, NULL);
    if (rc != 0) {
        fprintf(stderr, "net_latency: cannot connect (after %llu connections): %s\n",
                (unsigned long long)s.run.n, dpn_strerror(rc));
        finish(1);
    }
    return rc;
}

static void cr_connected(void *ctx, struct dpn_conn *c, int err) {
    struct flow *f = ctx;
    if (err != 0) {
        fprintf(stderr, "net_latency: connection failed (after %llu connections): %s\n",
                (unsigned long long)s.run.n, dpn_strerror(err));
        finish(1);
        return;
    }
    f->c = c;
    f->up = true;
    if (s.done) {
        f->c = NULL;
        f->up = false;
        dpn_close_conn(c);
        return;
    }
    f->to_send = s.o->size;
    pump(f);
}

static void cr_recv(void *ctx, struct dpn_conn *c, struct dpn_buf *b) {
    struct flow *f = ctx;
    f->got += dpn_buf_len(b);
    dpn_recv_done(c, b);
    if (s.done || f->got < s.o->size)
        return;
    if (f->got > s.o->size) {
        fprintf(stderr, "net_latency: server sent %zu bytes for a %zu-byte request\n", f->got,
                s.o->size);
        finish(1);
        return;
    }
    uint64_t now = dpn_now_ns();
    f->c = NULL;
    f->up = false;
    dpn_close_conn(c);
    if (lat_record(&s.run, now - f->sent_ns, now))
        finish(0);
    else
        cr_open(f);
}

static const struct dpn_tcp_ops cr_ops = {
    .connected = cr_connected,
    .recv = cr_recv,
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
        if (s.o->bulk_bytes > 0)
            fprintf(stderr, "net_latency: timed out after %llu s (%llu of %llu bytes echoed)\n",
                    (unsigned long long)s.o->timeout_s, (unsigned long long)s.bulk_in,
                    (unsigned long long)(s.o->bulk_bytes * s.o->conns));
        else
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
        if (s.o->connect_rate) {
            if (cr_open(f) != 0)
                return -1;
            continue;
        }
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
    /* Pipelined requests go out in one write, as a client with writev would:
     * the payload holds them back to back (up to 1 MiB). */
    char req[256];
    s.req_size = s.resp_size = o->size;
    if (o->http != NULL) { /* the request is the message; the answer's size comes with it */
        s.req_size =
            (size_t)snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: bench\r\n\r\n", o->http);
        s.resp_size = 0;
    }
    s.span = s.req_size * o->pipeline <= (1u << 20) ? s.req_size * o->pipeline : s.req_size;
    size_t plen = o->bulk_bytes > 0 ? BULK_CHUNK : o->udp ? o->size : s.span;
    s.payload = malloc(plen);
    if (s.flows == NULL || s.payload == NULL ||
        lat_init(&s.run, o->bulk_bytes > 0 ? 1 : o->count, o->duration_s * 1000000000ull,
                 o->warmup) != 0) {
        fprintf(stderr, "net_latency: out of memory\n");
        return 1;
    }
    for (unsigned i = 0; i < o->conns; i++) {
        s.flows[i].ts = o->pipeline <= sizeof(s.flows[i].ts_inline) / sizeof(uint64_t)
                            ? s.flows[i].ts_inline
                            : calloc(o->pipeline, sizeof(uint64_t));
        if (s.flows[i].ts == NULL) {
            fprintf(stderr, "net_latency: out of memory\n");
            return 1;
        }
    }
    for (size_t i = 0; i < plen; i++)
        s.payload[i] = (uint8_t)('a' + i % 26);
    if (o->http != NULL)
        memcpy(s.payload, req, s.req_size);
    s.deadline_ns = dpn_now_ns() + o->timeout_s * 1000000000ull;
    dpn_timer_add(w, TICK_MS, tick, NULL);
    if (o->trace && dpn_trace_enable(w, 1) != 0)
        return 1;
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
    char what[160];
    if (o->bulk_bytes > 0) {
        snprintf(what, sizeof(what), "dpnet tcp bulk echo, %u connection(s), %llu B each", o->conns,
                 (unsigned long long)o->bulk_bytes);
        lat_report_bulk(s.bulk_in - s.bulk_mark, (double)(s.bulk_t1 - s.bulk_t0) / 1e9, s.bulk_in,
                        o->json, what);
        return 0;
    }
    if (o->http != NULL)
        snprintf(what, sizeof(what),
                 "dpnet http GET %.60s keep-alive, %u connection(s), %zu B "
                 "responses",
                 o->http, o->conns, s.resp_size);
    else if (o->connect_rate)
        snprintf(what, sizeof(what),
                 "dpnet tcp connect-rate, %u in parallel, %zu B echo per connection", o->conns,
                 o->size);
    else if (o->pipeline > 1)
        snprintf(what, sizeof(what),
                 "dpnet tcp, %u connection(s), %u in flight each, %zu B messages", o->conns,
                 o->pipeline, o->size);
    else
        snprintf(what, sizeof(what), "dpnet %s, %u %s, %zu B messages", o->udp ? "udp" : "tcp",
                 o->conns, o->udp ? "flow(s)" : "connection(s)", o->size);
    if (o->samples != NULL && lat_dump(&s.run, o->samples) != 0)
        return 1;
    lat_report(&s.run, o->json, what);
    return 0;
}
