/* UDP receive (stack/udp.c): datagrams from sources no datagram may come
 * from are dropped and never answered, on the fast path (rx.c's udp_fast)
 * and on lwIP's (IP options send a datagram there); a socket bound without
 * a receive callback drops what comes to it. Frames go in through
 * dpn_rx_burst; what the worker sends is read from w->tx_pkts. */
#include <check.h>
#include <stdlib.h>

#include "unit_eal.h"

static struct dpn_worker *w;
static unsigned base_mbufs;
static struct dpn_udp *u; /* the socket under test, closed by the fixture */

static void teardown(void) {
    if (u != NULL)
        dpn_udp_close(u);
    u = NULL;
    unit_tx_drop(w);
}

static struct {
    int n;
    uint32_t ip;
} got;

/* An echo server's callback: every datagram goes back to its source. */
static void on_echo(void *ctx, struct dpn_udp *u, struct dpn_buf *b, uint32_t ip, uint16_t port) {
    (void)ctx;
    got.n++;
    got.ip = ip;
    if (dpn_udp_sendto_buf(u, b, ip, port) != 0)
        dpn_buf_free(b);
}

/* A datagram from src to our port 7; options: 1 adds an IP option word
 * (lwIP's path), 0 the plain header (the fast path). */
static void send_from(uint32_t src, int options) {
    static const uint8_t l4[12] = {0x13, 0x88, 0x00, 0x07, 0x00, 0x0c, 0, 0, 'p', 'i', 'n', 'g'};
    struct rte_mbuf *m = unit_ip_frame_ex(w->pool, &w->mac, src, UNIT_LOCAL_IP, IPPROTO_UDP,
                                          options ? 6 : 5, l4, sizeof(l4));
    ck_assert_ptr_nonnull(m);
    dpn_rx_burst(w, &m, 1);
}

/* Sources the worker (10.0.0.2/24) must not answer. */
static const uint32_t bad[] = {
    RTE_IPV4(255, 255, 255, 255), /* limited broadcast */
    RTE_IPV4(10, 0, 0, 255),      /* our subnet's broadcast */
    RTE_IPV4(224, 0, 0, 1),       /* multicast */
    RTE_IPV4(239, 255, 255, 250), /* multicast */
    RTE_IPV4(240, 0, 0, 1),       /* class E */
    RTE_IPV4(0, 0, 0, 0),         /* this host */
    RTE_IPV4(0, 1, 2, 3),         /* this network */
    RTE_IPV4(127, 0, 0, 1),       /* loopback */
    UNIT_LOCAL_IP,                /* ourselves */
};
#define NBAD (sizeof(bad) / sizeof(bad[0]))

/* Learn a peer's MAC: its request for us (then lwIP's echo goes out at once). */
static void learn(uint32_t ip) {
    struct rte_ether_addr bcast = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, zero = {{0}};
    struct rte_mbuf *m = unit_arp_frame(w->pool, RTE_ARP_OP_REQUEST, &bcast, &unit_peer_mac, ip,
                                        &zero, UNIT_LOCAL_IP);
    ck_assert_ptr_nonnull(m);
    dpn_rx_burst(w, &m, 1);
    unit_tx_drop(w);
}

static void check_bad_sources(int options) {
    ck_assert_int_eq(dpn_udp_bind(w, 7, on_echo, NULL, &u), 0);
    learn(UNIT_PEER_IP);
    memset(&got, 0, sizeof(got));
    uint64_t bad_src = w->st.udp_bad_src;
    for (unsigned i = 0; i < NBAD; i++) {
        send_from(bad[i], options);
        ck_assert_msg(got.n == 0, "datagram from %08x delivered", bad[i]);
        ck_assert_msg(w->tx_n == 0, "datagram from %08x answered", bad[i]);
    }
    /* The fast path counts them all; on lwIP's path, lwIP drops broadcast,
     * multicast and 0.0.0.0 itself (uncounted) and we count the rest. */
    ck_assert_uint_eq(w->st.udp_bad_src - bad_src, options ? 4 : NBAD);
    /* Ordinary sources still get their echo, including an address whose
     * host part is all ones in another subnet (not a broadcast here). */
    send_from(UNIT_PEER_IP, options);
    ck_assert_int_eq(got.n, 1);
    ck_assert_int_eq(w->tx_n, 1);
    unit_tx_drop(w);
    send_from(RTE_IPV4(10, 0, 1, 255), options);
    ck_assert_int_eq(got.n, 2);
    ck_assert_uint_eq(got.ip, RTE_IPV4(10, 0, 1, 255));
    teardown();
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
}

START_TEST(test_bad_source_fast_path) {
    check_bad_sources(0);
}
END_TEST

START_TEST(test_bad_source_lwip_path) {
    check_bad_sources(1);
}
END_TEST

START_TEST(test_bound_without_callback) {
    ck_assert_int_eq(dpn_udp_bind(w, 7, NULL, NULL, &u), 0);
    uint64_t unread = w->st.udp_unread;
    send_from(UNIT_PEER_IP, 0); /* used to call a NULL function pointer */
    send_from(UNIT_PEER_IP, 1);
    ck_assert_uint_eq(w->st.udp_unread, unread + 2);
    ck_assert_int_eq(w->tx_n, 0);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
    /* It still sends. */
    learn(UNIT_PEER_IP);
    ck_assert_int_eq(dpn_udp_sendto(u, "out", 3, UNIT_PEER_IP, 9), 0);
    ck_assert_int_eq(w->tx_n, 1);
    teardown();
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
}
END_TEST

static Suite *udp_suite(void) {
    Suite *s = suite_create("udp");
    TCase *tc = tcase_create("receive");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_bad_source_fast_path);
    tcase_add_test(tc, test_bad_source_lwip_path);
    tcase_add_test(tc, test_bound_without_callback);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    w = unit_init("test_udp");
    base_mbufs = dpn_mbufs_free(w);
    return unit_run(w, udp_suite());
}
