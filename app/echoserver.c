/* echoserver: TCP and UDP echo on one port, written only against dpnet.h.
 *
 *   echoserver [EAL options] -- [dpnet options] [--port N] [--no-udp] [--no-tcp] [-v]
 *              [--trace] [--hold-ms N]
 *
 * TCP data is echoed zero-copy: the received buffer is queued for sending
 * as it is, and the receive window reopens only when the echo has been
 * acknowledged, so a connection never holds more than its window. When the
 * peer half-closes, what remains is echoed and then our FIN follows.
 *
 * --hold-ms N (tests: an application that does not read) holds each
 * connection's received data from its first byte for N ms: nothing is echoed
 * or given back, so the receive window closes. Then the held buffers are
 * echoed in order and the connection runs as usual. One timer per
 * connection; when no timer is left the connection is not held. */
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpnet.h"

#define MAX_PENDING 65536 /* buffers waiting for send space, all connections */

struct pending {
    struct dpn_buf *b;
    struct pending *next;
};

struct echo_conn {
    uint64_t bytes_in, bytes_out; /* received; echoed and acknowledged */
    uint64_t unacked;             /* echoed, window not yet reopened */
    struct pending *head, *tail;  /* waiting for send space */
    uint32_t ip;
    uint16_t port;
    bool eof;
    bool used;
    bool holding; /* --hold-ms: received buffers wait in the queue, unsent */
    bool held;    /* the hold is over (or was skipped): echo as usual */
    struct dpn_conn *conn;
    struct echo_conn *next_free;
};

static struct {
    struct dpn_worker *w;
    bool verbose;
    bool trace; /* --trace: critical-path breakdown at exit */
    struct echo_conn *conns, *conn_free;
    struct pending *pend, *pend_free;
    uint64_t accepted, closed_ok, closed_err, refused;
    uint64_t tcp_in, tcp_out, udp_dgrams, udp_bytes, udp_errors;
    uint32_t hold_ms;              /* --hold-ms, 0 = off */
    uint64_t holds, holds_skipped; /* connections held; not held for want of a timer */
} g;

static void usage(const char *prog) {
    fprintf(stderr,
            "usage: %s [EAL options] -- [dpnet options] [--port N] [--no-udp] [--no-tcp] [-v] "
            "[--trace] [--hold-ms N]\n"
            "  --port N    TCP and UDP port to echo on (default 7)\n"
            "  --no-udp    TCP only;  --no-tcp: UDP only\n"
            "  -v          print counters of each connection when it ends\n"
            "  --trace     time the stages of each request/answer; print medians at exit\n"
            "  --hold-ms N hold each connection's received data, from its first byte, for N ms\n"
            "              (no echo, window not reopened), then echo it and run as usual\n",
            prog);
}

static struct echo_conn *ec_alloc(void) {
    struct echo_conn *e = g.conn_free;
    if (e != NULL) {
        g.conn_free = e->next_free;
        memset(e, 0, sizeof(*e));
        e->used = true;
    }
    return e;
}

static void ec_report(const struct echo_conn *e, const char *how) {
    if (!g.verbose)
        return;
    printf("conn %u.%u.%u.%u:%u %s: in %" PRIu64 " B, out %" PRIu64 " B\n", e->ip >> 24,
           (e->ip >> 16) & 255, (e->ip >> 8) & 255, e->ip & 255, e->port, how, e->bytes_in,
           e->bytes_out);
}

static void on_hold_end(void *arg);

static void ec_free(struct echo_conn *e) {
    if (e->holding) {
        dpn_timer_cancel(g.w, on_hold_end, e);
        e->holding = false;
    }
    while (e->head != NULL) {
        struct pending *p = e->head;
        e->head = p->next;
        dpn_buf_free(p->b);
        p->next = g.pend_free;
        g.pend_free = p;
    }
    g.tcp_in += e->bytes_in;
    g.tcp_out += e->bytes_out;
    e->used = false;
    e->next_free = g.conn_free;
    g.conn_free = e;
}

/* Send queued buffers while they fit; true when the queue is empty. */
static bool flush_pending(struct dpn_conn *c, struct echo_conn *e) {
    while (e->head != NULL) {
        struct pending *p = e->head;
        size_t len = dpn_buf_len(p->b);
        if (dpn_send_buf(c, p->b) != 0)
            return false;
        e->unacked += len;
        e->head = p->next;
        if (e->head == NULL)
            e->tail = NULL;
        p->next = g.pend_free;
        g.pend_free = p;
    }
    return true;
}

static void finish(struct dpn_conn *c, struct echo_conn *e) {
    ec_report(e, "closed");
    g.closed_ok++;
    ec_free(e);
    dpn_close_conn(c);
}

static void on_recv(void *ctx, struct dpn_conn *c, struct dpn_buf *b) {
    struct echo_conn *e = ctx;
    size_t len = dpn_buf_len(b);
    e->bytes_in += len;
    if (g.hold_ms > 0 && !e->held && !e->holding) {
        if (dpn_timer_add(g.w, g.hold_ms, on_hold_end, e) == 0) {
            e->holding = true;
            g.holds++;
        } else {
            e->held = true; /* no timer left: do not hold this one */
            g.holds_skipped++;
        }
    }
    if (!e->holding && e->head == NULL && dpn_send_buf(c, b) == 0) {
        e->unacked += len;
        return;
    }
    struct pending *p = g.pend_free;
    if (p == NULL) {
        fprintf(stderr,
                "echoserver: %d buffers already wait for send space; resetting a "
                "connection\n",
                MAX_PENDING);
        dpn_buf_free(b);
        ec_report(e, "reset (out of buffers)");
        g.closed_err++;
        ec_free(e);
        dpn_abort(c);
        return;
    }
    g.pend_free = p->next;
    p->b = b;
    p->next = NULL;
    if (e->tail != NULL)
        e->tail->next = p;
    else
        e->head = p;
    e->tail = p;
}

static void on_sent(void *ctx, struct dpn_conn *c, size_t len) {
    struct echo_conn *e = ctx;
    size_t n = len < e->unacked ? len : e->unacked;
    e->unacked -= n;
    e->bytes_out += n;
    dpn_recved(c, n); /* the echo is acknowledged: let the peer send more */
    if (!e->holding && flush_pending(c, e) && e->eof)
        finish(c, e);
}

static void on_eof(void *ctx, struct dpn_conn *c) {
    struct echo_conn *e = ctx;
    e->eof = true;
    if (!e->holding && flush_pending(c, e))
        finish(c, e); /* queued echoes still go out before our FIN */
}

/* --hold-ms: the hold of one connection is over; echo what it held. */
static void on_hold_end(void *arg) {
    struct echo_conn *e = arg;
    e->holding = false;
    e->held = true;
    if (flush_pending(e->conn, e) && e->eof)
        finish(e->conn, e);
}

static void on_closed(void *ctx, struct dpn_conn *c, int err) {
    struct echo_conn *e = ctx;
    (void)c;
    if (g.verbose)
        printf("conn ended: %s\n", dpn_strerror(err));
    ec_report(e, "ended by the network");
    g.closed_err++;
    ec_free(e);
}

static int on_accept(void *lctx, struct dpn_conn *c) {
    (void)lctx;
    struct echo_conn *e = ec_alloc();
    if (e == NULL) {
        g.refused++;
        return -1;
    }
    dpn_conn_peer(c, &e->ip, &e->port);
    dpn_conn_set_ctx(c, e);
    e->conn = c;
    g.accepted++;
    return 0;
}

static const struct dpn_tcp_ops echo_ops = {
    .accepted = on_accept,
    .recv = on_recv,
    .eof = on_eof,
    .sent = on_sent,
    .closed = on_closed,
};

static void on_udp(void *ctx, struct dpn_udp *u, struct dpn_buf *b, uint32_t ip, uint16_t port) {
    (void)ctx;
    size_t len = dpn_buf_len(b);
    if (dpn_udp_sendto_buf(u, b, ip, port) != 0) {
        g.udp_errors++;
        dpn_buf_free(b);
        return;
    }
    g.udp_dgrams++;
    g.udp_bytes += len;
}

static int parse_app_args(int argc, char **argv, uint16_t *port, bool *tcp, bool *udp) {
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'}, {"no-udp", no_argument, NULL, 'U'},
        {"no-tcp", no_argument, NULL, 'T'},     {"verbose", no_argument, NULL, 'v'},
        {"trace", no_argument, NULL, 't'},      {"hold-ms", required_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0}};
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "p:vh", opts, NULL)) != -1) {
        char *end;
        long v;
        switch (o) {
        case 'p':
            v = strtol(optarg, &end, 10);
            if (*end != '\0' || v < 1 || v > 65535) {
                fprintf(stderr, "echoserver: --port must be 1..65535, not '%s'\n", optarg);
                return -1;
            }
            *port = (uint16_t)v;
            break;
        case 'U':
            *udp = false;
            break;
        case 'T':
            *tcp = false;
            break;
        case 'v':
            g.verbose = true;
            break;
        case 't':
            g.trace = true;
            break;
        case 'H':
            v = strtol(optarg, &end, 10);
            if (*end != '\0' || v < 1 || v > 600000) {
                fprintf(stderr, "echoserver: --hold-ms must be 1..600000, not '%s'\n", optarg);
                return -1;
            }
            g.hold_ms = (uint32_t)v;
            break;
        default:
            usage(argv[0]);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "echoserver: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

static int setup_pools(unsigned nconns) {
    g.conns = calloc(nconns, sizeof(*g.conns));
    g.pend = calloc(MAX_PENDING, sizeof(*g.pend));
    if (g.conns == NULL || g.pend == NULL)
        return -1;
    for (unsigned i = 0; i < nconns; i++) {
        g.conns[i].next_free = g.conn_free;
        g.conn_free = &g.conns[i];
    }
    for (unsigned i = 0; i < MAX_PENDING; i++) {
        g.pend[i].next = g.pend_free;
        g.pend_free = &g.pend[i];
    }
    return 0;
}

int main(int argc, char **argv) {
    uint16_t port = 7;
    bool tcp = true, udp = true;
    int rc = dpn_init(&argc, &argv, &g.w);
    if (rc != 0)
        return 1;
    if (parse_app_args(argc, argv, &port, &tcp, &udp) != 0 || setup_pools(16384) != 0 ||
        (g.trace && dpn_trace_enable(g.w, 1) != 0)) {
        dpn_close(g.w);
        return 1;
    }
    struct dpn_listener *l = NULL;
    struct dpn_udp *u = NULL;
    if (tcp && (rc = dpn_listen(g.w, port, &echo_ops, NULL, &l)) != 0) {
        fprintf(stderr, "echoserver: cannot listen on TCP port %u: %s\n", port, dpn_strerror(rc));
        dpn_close(g.w);
        return 1;
    }
    if (udp && (rc = dpn_udp_bind(g.w, port, on_udp, NULL, &u)) != 0) {
        fprintf(stderr, "echoserver: cannot bind UDP port %u: %s\n", port, dpn_strerror(rc));
        dpn_close(g.w);
        return 1;
    }
    printf("echoserver: listening on port %u (%s%s)\n", port, tcp ? "tcp" : "",
           udp ? (tcp ? "+udp" : "udp") : "");
    fflush(stdout);

    dpn_run(g.w);

    if (l != NULL)
        dpn_unlisten(l);
    dpn_udp_close(u);
    struct dpn_stats st;
    dpn_get_stats(g.w, &st);
    /* Connections still open: report each, then let dpn_close end them. */
    for (unsigned i = 0; i < 16384 && g.verbose; i++)
        if (g.conns[i].used)
            ec_report(&g.conns[i], "open at exit");
    /* --hold-ms: give back what connections still hold, so that the pool
     * count at exit shows only what the stack itself kept. */
    for (unsigned i = 0; i < 16384 && g.hold_ms > 0; i++) {
        struct echo_conn *e = &g.conns[i];
        if (e->used && e->holding) {
            dpn_timer_cancel(g.w, on_hold_end, e);
            e->holding = false;
            while (e->head != NULL) {
                struct pending *p = e->head;
                e->head = p->next;
                dpn_buf_free(p->b);
                p->next = g.pend_free;
                g.pend_free = p;
            }
            e->tail = NULL;
        }
    }
    printf("echoserver: connections accepted %" PRIu64 ", closed %" PRIu64
           ", ended by errors %" PRIu64 ", refused %" PRIu64 ", open %" PRIu64 "; tcp in %" PRIu64
           " B out %" PRIu64 " B; udp %" PRIu64 " datagrams %" PRIu64 " B, %" PRIu64
           " send errors\n",
           g.accepted, g.closed_ok, g.closed_err, g.refused, st.conns_open, g.tcp_in, g.tcp_out,
           g.udp_dgrams, g.udp_bytes, g.udp_errors);
    if (g.hold_ms > 0)
        printf("echoserver: held %" PRIu64 " connections for %u ms, %" PRIu64
               " not held (no timer left)\n",
               g.holds, g.hold_ms, g.holds_skipped);
    fflush(stdout);
    dpn_close(g.w);
    return 0;
}
