/* apiprobe: the embedding API's newer calls and corrected contracts, each on
 * a port of its own, for t_api.sh's Linux peer. Written only against
 * dpnet.h (linked to libdpnet.so, as an application is).
 *   7001 pause     dpn_read_stop at accept, dpn_read_start 1 s later
 *                  (a timer with a handle); at eof: "BYTES CRC32\n" of
 *                  what it read (segment by segment), then shutdown
 *   7002 linger    dpn_close_conn at the first data: the peer may go on
 *                  sending and sees its FIN, never a reset
 *   7003 idle      dpn_conn_idle_timeout 300 ms
 *   7004 local     sends dpn_conn_local's address, then dpn_shutdown
 *   7005 keepalive dpn_conn_keepalive 300 ms idle, 100 ms interval, 2 probes
 *   7006 sendv     three pieces with dpn_sendv, shutdown once acked
 * Every event is one line on stdout ("7003 closed -110"). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpnet.h"

static struct dpn_worker *w;
static unsigned ticks, stray;

static void say(uint16_t port, const char *what, long v) {
    printf("%u %s %ld\n", port, what, v);
    fflush(stdout);
}

struct pc { /* per connection */
    uint16_t port;
    struct dpn_conn *c;
    struct dpn_timer *t;
    uint64_t sendv_mark;
    uint64_t bytes;
    uint32_t crc; /* CRC-32 (zlib's) of what was read, running */
};

static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n) {
    crc = ~crc;
    while (n-- > 0) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

static void resume(void *arg) {
    struct pc *p = arg;
    say(p->port, "resume", dpn_read_start(p->c));
}

static int on_accept(void *lctx, struct dpn_conn *c) {
    struct pc *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return 1;
    p->port = (uint16_t)(uintptr_t)lctx;
    p->c = c;
    dpn_conn_set_ctx(c, p);
    uint32_t ip;
    uint16_t port;
    char line[64];
    switch (p->port) {
    case 7001:
        say(p->port, "pause", dpn_read_stop(c));
        p->t = dpn_timer_new(w, resume, p);
        dpn_timer_start(p->t, 1000, 0);
        break;
    case 7003:
        say(p->port, "idle", dpn_conn_idle_timeout(c, 300));
        break;
    case 7004:
        dpn_conn_local(c, &ip, &port);
        snprintf(line, sizeof(line), "%u.%u.%u.%u:%u\n", ip >> 24, (ip >> 16) & 255,
                 (ip >> 8) & 255, ip & 255, port);
        dpn_send(c, line, strlen(line));
        say(p->port, "shutdown", dpn_shutdown(c));
        break;
    case 7005:
        say(p->port, "keepalive", dpn_conn_keepalive(c, 300, 100, 2));
        break;
    case 7006: {
        const struct dpn_iov iov[] = {{"one ", 4}, {"two ", 4}, {"three\n", 6}};
        say(p->port, "sendv", dpn_sendv(c, iov, 3));
        p->sendv_mark = dpn_conn_written(c);
        break;
    }
    }
    return 0;
}

static void on_recv(void *ctx, struct dpn_conn *c, struct dpn_buf *b) {
    struct pc *p = ctx;
    if (p->port == 7002) {
        dpn_recv_done(c, b);
        say(p->port, "close", 0);
        p->c = NULL;
        dpn_close_conn(c); /* no callback after this: p is ours to free */
        free(p);
        return;
    }
    if (p->port == 7001) { /* segment by segment */
        for (const struct dpn_buf *s = dpn_buf_first(b); s != NULL; s = dpn_buf_next(s)) {
            size_t len;
            const uint8_t *d = dpn_buf_data(s, &len);
            p->crc = crc32_update(p->crc, d, len);
            p->bytes += len;
        }
    }
    dpn_recv_done(c, b);
}

static void on_eof(void *ctx, struct dpn_conn *c) {
    struct pc *p = ctx;
    say(p->port, "eof", 0);
    if (p->port == 7001) {
        char line[64];
        snprintf(line, sizeof(line), "%" PRIu64 " %08x\n", p->bytes, p->crc);
        dpn_send(c, line, strlen(line));
    }
    if (p->port != 7004)
        dpn_shutdown(c);
}

static void on_sent(void *ctx, struct dpn_conn *c, size_t len) {
    struct pc *p = ctx;
    (void)len;
    if (p->port == 7006 && p->sendv_mark != 0 && dpn_conn_acked(c) >= p->sendv_mark) {
        say(p->port, "acked", (long)dpn_conn_acked(c));
        p->sendv_mark = 0;
        dpn_shutdown(c);
    }
}

static void on_closed(void *ctx, struct dpn_conn *c, int err) {
    struct pc *p = ctx;
    (void)c;
    say(p->port, "closed", err);
    /* Both refused inside closed(): c is going. */
    dpn_close_conn(c);
    dpn_abort(c);
    dpn_timer_free(p->t);
    free(p);
}

static const struct dpn_tcp_ops ops = {
    .accepted = on_accept, .recv = on_recv, .eof = on_eof, .sent = on_sent, .closed = on_closed};

static void tick(void *arg) {
    (void)arg;
    ticks++;
}
static void never(void *arg) {
    (void)arg;
    stray++;
}

int main(int argc, char **argv) {
    if (dpn_init(&argc, &argv, &w) != 0)
        return 1;
    printf("worker %u of %u\n", dpn_worker_index(w), dpn_worker_count(w));
    struct dpn_listener *l[6];
    for (uint16_t i = 0; i < 6; i++) {
        int rc = dpn_listen(w, (uint16_t)(7001 + i), &ops, (void *)(uintptr_t)(7001 + i), &l[i]);
        if (rc < 0) {
            fprintf(stderr, "apiprobe: listen %u: %s\n", 7001 + i, dpn_strerror(rc));
            return 1;
        }
    }
    struct dpn_timer *t = dpn_timer_new(w, tick, NULL), *s = dpn_timer_new(w, never, NULL);
    dpn_timer_start(t, 50, 50);
    dpn_timer_start(s, 100, 0);
    dpn_timer_stop(s);
    printf("listening\n");
    fflush(stdout);
    dpn_run(w);
    printf("timer ticks %u, stopped timer ran %u times\n", ticks, stray);
    dpn_timer_free(t);
    dpn_timer_free(s);
    for (int i = 0; i < 6; i++)
        dpn_unlisten(l[i]);
    dpn_close(w);
    return 0;
}
