/* A minimal dpnet server (docs/api.md): TCP port 7 counts what a client sends
 * and answers "<n> bytes\n" when the client half-closes; UDP port 7 echoes.
 *   ./example -l 1 --no-pci --vdev=net_tap0,iface=dpn0 -- --ip 10.77.0.2/24 */
#include <stdint.h>
#include <stdio.h>

#include "dpnet.h"

static int on_accept(void *lctx, struct dpn_conn *c) {
    (void)lctx;
    dpn_conn_set_ctx(c, NULL); /* per-connection state; here a byte count */
    return 0;                  /* keep it */
}
static void on_recv(void *ctx, struct dpn_conn *c, struct dpn_buf *b) {
    dpn_conn_set_ctx(c, (void *)((uintptr_t)ctx + dpn_buf_len(b)));
    dpn_recv_done(c, b); /* give the buffer back: frees it, reopens the window */
}
static void on_eof(void *ctx, struct dpn_conn *c) {
    char line[32];
    int n = snprintf(line, sizeof(line), "%zu bytes\n", (size_t)(uintptr_t)ctx);
    dpn_send(c, line, (size_t)n); /* copies; a fresh connection has room */
    dpn_close_conn(c);            /* the answer still goes out, then FIN; c is gone */
}
static void on_closed(void *ctx, struct dpn_conn *c, int err) {
    (void)ctx, (void)c;
    fprintf(stderr, "connection lost: %s\n", dpn_strerror(err));
}
static void on_udp(void *ctx, struct dpn_udp *u, struct dpn_buf *b, uint32_t ip, uint16_t port) {
    (void)ctx;
    if (dpn_udp_sendto_buf(u, b, ip, port) != 0) /* consumes b only on success */
        dpn_buf_free(b);
}
static const struct dpn_tcp_ops ops = {
    .accepted = on_accept, .recv = on_recv, .eof = on_eof, .closed = on_closed};

int main(int argc, char **argv) {
    struct dpn_worker *w;
    struct dpn_listener *l;
    struct dpn_udp *u;
    if (dpn_init(&argc, &argv, &w) != 0) /* EAL + config + port + lwIP; it printed why */
        return 1;
    int rc = dpn_listen(w, 7, &ops, NULL, &l);
    if (rc == 0 && (rc = dpn_udp_bind(w, 7, on_udp, NULL, &u)) != 0)
        dpn_unlisten(l);
    if (rc != 0) {
        fprintf(stderr, "port 7: %s\n", dpn_strerror(rc));
        dpn_close(w);
        return 1;
    }
    dpn_run(w); /* callbacks run in here, on this core, until SIGINT/SIGTERM or dpn_stop() */
    dpn_unlisten(l);
    dpn_udp_close(u);
    dpn_close(w); /* closes the connections, prints counters, releases DPDK memory */
    return 0;
}
