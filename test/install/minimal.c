/* The smallest dpnet program: a TCP echo server. Built outside the tree
 * against the installed library by test/integration/t_install.sh:
 *   cc minimal.c $(pkg-config --cflags --libs dpnet)
 *   ./a.out -l 0 --no-pci --vdev=net_null0 -- --ip 10.0.0.2/24 --run-ms 200 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dpnet.h>

static struct dpn_worker *w;

static void on_recv(void *ctx, struct dpn_conn *c, struct dpn_buf *b) {
    (void)ctx;
    if (dpn_send_buf(c, b) != 0) /* zero copy: freed once acknowledged */
        dpn_recv_done(c, b);     /* no room: drop it, reopen the window */
}
static void on_sent(void *ctx, struct dpn_conn *c, size_t len) {
    (void)ctx;
    dpn_recved(c, len); /* the echo was acknowledged: reopen the window */
}
static void stop(void *arg) {
    dpn_stop(arg);
}

static const struct dpn_tcp_ops ops = {.recv = on_recv, .sent = on_sent};

int main(int argc, char **argv) {
    if (strcmp(dpn_version(), DPN_VERSION) != 0)
        return fprintf(stderr, "header %s, library %s\n", DPN_VERSION, dpn_version()), 1;
    if (dpn_init(&argc, &argv, &w) != 0)
        return 1;
    struct dpn_listener *l;
    int rc = dpn_listen(w, 7, &ops, NULL, &l);
    if (rc != 0)
        return fprintf(stderr, "listen: %s\n", dpn_strerror(rc)), 1;
    if (argc == 3 && strcmp(argv[1], "--run-ms") == 0)
        dpn_timer_add(w, (uint32_t)atoi(argv[2]), stop, w);
    printf("dpnet %s: echo on port 7\n", dpn_version());
    dpn_run(w);
    dpn_unlisten(l);
    dpn_close(w);
    return 0;
}
