/* Unit tests for stack/buf.h and stack/buf.c: zero-copy wrapping of mbufs as
 * lwIP pbufs (single segment and chains), reference counting, the dpn_buf
 * API, and that every path gives its mbufs back to the worker's pool. */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "lwip/pbuf.h"

#include "buf.h"
#include "unit_eal.h"

/* The MSS at the tests' MTU of 1500 (TCP_MSS is the jumbo maximum). */
#define MSS1500 1460

static struct dpn_worker *w;
static unsigned base; /* free mbufs when nothing is held */

/* One mbuf of len bytes filled with seed, seed+1, ... */
static struct rte_mbuf *mbuf_with(uint16_t len, uint8_t seed) {
    struct rte_mbuf *m = rte_pktmbuf_alloc(w->pool);
    ck_assert_ptr_nonnull(m);
    uint8_t *d = (uint8_t *)rte_pktmbuf_append(m, len);
    ck_assert_ptr_nonnull(d);
    for (uint16_t i = 0; i < len; i++)
        d[i] = (uint8_t)(seed + i);
    return m;
}

static void setup(void) {
    unit_tx_drop(w);
    base = dpn_mbufs_free(w);
}

static void teardown(void) {
    ck_assert_uint_eq(dpn_mbufs_free(w), base);
}

/* ---- wrapping ---- */

START_TEST(test_pool_accounting) {
    /* dpn_mbufs_free is the pool's free count, caches included. */
    ck_assert_uint_eq(dpn_mbufs_free(w), rte_mempool_avail_count(w->pool));
    ck_assert_uint_eq(rte_mempool_in_use_count(w->pool), w->cfg.mbufs - base);
    struct rte_mbuf *m = rte_pktmbuf_alloc(w->pool);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(dpn_mbufs_free(w), base - 1);
    rte_pktmbuf_free(m);
    ck_assert_uint_eq(dpn_mbufs_free(w), base);
}
END_TEST

START_TEST(test_wrap_single) {
    struct rte_mbuf *m = mbuf_with(100, 7);
    ck_assert_uint_eq(dpn_mbufs_free(w), base - 1);
    struct pbuf *p = dpn_pbuf_wrap(m);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(p->tot_len, 100);
    ck_assert_uint_eq(p->len, 100);
    ck_assert_ptr_null(p->next);
    ck_assert_uint_eq(p->ref, 1);
    ck_assert(p->flags & PBUF_FLAG_IS_CUSTOM);
    /* Zero copy: the payload is the mbuf's data, and the pbuf lives in the
     * mbuf's private area (no allocation). */
    ck_assert_ptr_eq(p->payload, rte_pktmbuf_mtod(m, void *));
    ck_assert_ptr_eq((void *)p, rte_mbuf_to_priv(m));
    ck_assert_ptr_eq(dpn_pbuf_mbuf(p), m);
    ck_assert_uint_eq(dpn_mbufs_free(w), base - 1); /* wrapping allocates nothing */
    ck_assert_uint_eq(pbuf_free(p), 1);
    ck_assert_uint_eq(dpn_mbufs_free(w), base);
}
END_TEST

START_TEST(test_wrap_identity) {
    struct rte_mbuf *m = mbuf_with(64, 0);
    struct pbuf *p = dpn_pbuf_wrap(m);
    uint8_t *d = rte_pktmbuf_mtod(m, uint8_t *);
    /* Writes through either view are seen by the other: same bytes. */
    d[10] = 0xab;
    ck_assert_uint_eq(((uint8_t *)p->payload)[10], 0xab);
    ((uint8_t *)p->payload)[63] = 0xcd;
    ck_assert_uint_eq(d[63], 0xcd);
    size_t len = 0;
    const void *data = dpn_buf_data((const struct dpn_buf *)p, &len);
    ck_assert_ptr_eq(data, d);
    ck_assert_uint_eq(len, 64);
    ck_assert_ptr_eq(dpn_buf_mut((struct dpn_buf *)p), d);
    /* lwIP moving the payload (header strip) stays inside the mbuf. */
    ck_assert_uint_eq(pbuf_remove_header(p, 14), 0);
    ck_assert_ptr_eq(p->payload, d + 14);
    ck_assert_uint_eq(p->tot_len, 50);
    ck_assert_ptr_eq(dpn_pbuf_mbuf(p), m);
    pbuf_free(p);
}
END_TEST

START_TEST(test_wrap_chain) {
    struct rte_mbuf *m1 = mbuf_with(10, 0);
    struct rte_mbuf *m2 = mbuf_with(21, 10);
    struct rte_mbuf *m3 = mbuf_with(33, 31);
    ck_assert_int_eq(rte_pktmbuf_chain(m1, m2), 0);
    ck_assert_int_eq(rte_pktmbuf_chain(m1, m3), 0);
    ck_assert_uint_eq(m1->nb_segs, 3);
    ck_assert_uint_eq(rte_pktmbuf_pkt_len(m1), 64);
    ck_assert_uint_eq(dpn_mbufs_free(w), base - 3);

    struct pbuf *p = dpn_pbuf_wrap(m1);
    ck_assert_uint_eq(p->tot_len, 64);
    struct rte_mbuf *segs[3] = {m1, m2, m3};
    const uint16_t lens[3] = {10, 21, 33};
    uint16_t tot = 64;
    struct pbuf *q = p;
    for (int i = 0; i < 3; i++, q = q->next) {
        ck_assert_ptr_nonnull(q);
        ck_assert_uint_eq(q->len, lens[i]);
        ck_assert_uint_eq(q->tot_len, tot);
        tot = (uint16_t)(tot - lens[i]);
        ck_assert_ptr_eq(q->payload, rte_pktmbuf_mtod(segs[i], void *));
        ck_assert_ptr_eq(dpn_pbuf_mbuf(q), segs[i]);
        ck_assert(q->flags & PBUF_FLAG_IS_CUSTOM);
    }
    ck_assert_ptr_null(q);
    ck_assert_uint_eq(dpn_mbufs_free(w), base - 3);

    /* dpn_buf view: segments and a copy across the boundaries. */
    const struct dpn_buf *b = (const struct dpn_buf *)p;
    ck_assert_uint_eq(dpn_buf_len(b), 64);
    int nseg = 0;
    for (const struct dpn_buf *s = b; s != NULL; s = dpn_buf_next(s), nseg++) {
        size_t l = 0;
        const void *d = dpn_buf_data(s, &l);
        ck_assert_uint_eq(l, lens[nseg]);
        ck_assert_ptr_eq(d, rte_pktmbuf_mtod(segs[nseg], void *));
    }
    ck_assert_int_eq(nseg, 3);
    uint8_t out[64];
    ck_assert_uint_eq(dpn_buf_copy(b, out, sizeof(out), 0), 64);
    for (int i = 0; i < 64; i++)
        ck_assert_uint_eq(out[i], (uint8_t)i);
    memset(out, 0, sizeof(out));
    ck_assert_uint_eq(dpn_buf_copy(b, out, 25, 5), 25); /* 5..29: spans seg 1 and 2 */
    for (int i = 0; i < 25; i++)
        ck_assert_uint_eq(out[i], (uint8_t)(5 + i));
    ck_assert_uint_eq(dpn_buf_copy(b, out, 100, 30), 34); /* short: to the end */
    for (int i = 0; i < 34; i++)
        ck_assert_uint_eq(out[i], (uint8_t)(30 + i));

    /* Freeing the chain frees every segment, each exactly once. */
    ck_assert_uint_eq(pbuf_free(p), 3);
    ck_assert_uint_eq(dpn_mbufs_free(w), base);
}
END_TEST

START_TEST(test_wrap_chain_free_tail_first) {
    /* lwIP may split a chain and free the parts in any order. */
    struct rte_mbuf *m1 = mbuf_with(40, 0);
    struct rte_mbuf *m2 = mbuf_with(40, 40);
    ck_assert_int_eq(rte_pktmbuf_chain(m1, m2), 0);
    struct pbuf *p = dpn_pbuf_wrap(m1);
    struct pbuf *tail = p->next;
    ck_assert_ptr_eq(dpn_pbuf_mbuf(tail), m2);
    pbuf_ref(tail);
    ck_assert_uint_eq(pbuf_free(p), 1); /* head only: the tail still has a reference */
    ck_assert_uint_eq(dpn_mbufs_free(w), base - 1);
    ck_assert_uint_eq(((uint8_t *)tail->payload)[0], 40);
    ck_assert_uint_eq(pbuf_free(tail), 1);
    ck_assert_uint_eq(dpn_mbufs_free(w), base);
}
END_TEST

START_TEST(test_ref_twice_free) {
    struct rte_mbuf *m = mbuf_with(60, 1);
    struct pbuf *p = dpn_pbuf_wrap(m);
    pbuf_ref(p);
    ck_assert_uint_eq(p->ref, 2);
    ck_assert_uint_eq(pbuf_free(p), 0); /* still referenced */
    ck_assert_uint_eq(dpn_mbufs_free(w), base - 1);
    ck_assert_uint_eq(p->ref, 1);
    ck_assert_ptr_eq(p->payload, rte_pktmbuf_mtod(m, void *));
    ck_assert_uint_eq(pbuf_free(p), 1);
    ck_assert_uint_eq(dpn_mbufs_free(w), base);
}
END_TEST

START_TEST(test_rewrap_reused_mbuf) {
    /* The private area is rewritten on each wrap: an mbuf that went back to
     * the pool wraps cleanly again. */
    for (int i = 0; i < 4; i++) {
        struct rte_mbuf *m = mbuf_with((uint16_t)(20 + i), (uint8_t)i);
        struct pbuf *p = dpn_pbuf_wrap(m);
        ck_assert_uint_eq(p->tot_len, 20 + i);
        ck_assert_ptr_null(p->next);
        ck_assert_uint_eq(p->ref, 1);
        ck_assert_ptr_null(((struct dpn_pbuf *)p)->zc_next);
        ck_assert_uint_eq(pbuf_free(p), 1);
    }
    ck_assert_uint_eq(dpn_mbufs_free(w), base);
}
END_TEST

static int foreign_freed;
static void foreign_free(struct pbuf *p) {
    (void)p;
    foreign_freed++;
}

START_TEST(test_pbuf_mbuf_foreign) {
    /* lwIP's own pbufs are not ours. */
    struct pbuf *r = pbuf_alloc(PBUF_RAW, 32, PBUF_RAM);
    ck_assert_ptr_nonnull(r);
    ck_assert_ptr_null(dpn_pbuf_mbuf(r));
    pbuf_free(r);
    /* Nor a custom pbuf with another free function. */
    static struct pbuf_custom pc;
    static uint8_t mem[16];
    foreign_freed = 0;
    pc.custom_free_function = foreign_free;
    struct pbuf *c = pbuf_alloced_custom(PBUF_RAW, 16, PBUF_REF, &pc, mem, sizeof(mem));
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_null(dpn_pbuf_mbuf(c));
    pbuf_free(c);
    ck_assert_int_eq(foreign_freed, 1);
    ck_assert_uint_eq(dpn_mbufs_free(w), base);
}
END_TEST

/* ---- dpn_buf API ---- */

START_TEST(test_buf_alloc) {
    struct dpn_buf *b = dpn_buf_alloc(w, 100);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(dpn_mbufs_free(w), base - 1);
    ck_assert_uint_eq(dpn_buf_len(b), 100);
    ck_assert_ptr_null(dpn_buf_next(b));
    uint8_t *d = dpn_buf_mut(b);
    ck_assert_ptr_nonnull(d);
    size_t l = 0;
    ck_assert_ptr_eq(dpn_buf_data(b, &l), d);
    ck_assert_uint_eq(l, 100);
    ck_assert_ptr_eq(dpn_buf_data(b, NULL), d);
    /* The buffer is an mbuf of the worker's pool; its data is the mbuf's. */
    struct rte_mbuf *m = dpn_pbuf_mbuf((struct pbuf *)b);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_eq(m->pool, w->pool);
    ck_assert_ptr_eq(d, rte_pktmbuf_mtod(m, void *));
    ck_assert_uint_eq(rte_pktmbuf_data_len(m), 100);
    /* Headroom is left for lwIP's headers in front of the data. */
    ck_assert_uint_ge(rte_pktmbuf_headroom(m), 54);

    for (int i = 0; i < 100; i++)
        d[i] = (uint8_t)(200 - i);
    uint8_t out[128];
    memset(out, 0, sizeof(out));
    ck_assert_uint_eq(dpn_buf_copy(b, out, 100, 0), 100);
    ck_assert_int_eq(memcmp(out, d, 100), 0);
    ck_assert_uint_eq(dpn_buf_copy(b, out, 10, 40), 10);
    ck_assert_int_eq(memcmp(out, d + 40, 10), 0);
    memset(out, 0, sizeof(out));
    ck_assert_uint_eq(dpn_buf_copy(b, out, 10, 95), 5); /* short copy at the end */
    ck_assert_int_eq(memcmp(out, d + 95, 5), 0);
    ck_assert_uint_eq(out[5], 0); /* nothing written past what was copied */
    ck_assert_uint_eq(dpn_buf_copy(b, out, 128, 0), 100);
    ck_assert_uint_eq(dpn_buf_copy(b, out, 10, 99), 1);
    ck_assert_uint_eq(dpn_buf_copy(b, out, 10, 100), 0);  /* offset at the end */
    ck_assert_uint_eq(dpn_buf_copy(b, out, 10, 5000), 0); /* past it */
    ck_assert_uint_eq(dpn_buf_copy(b, out, 0, 0), 0);
    dpn_buf_free(b);
    ck_assert_uint_eq(dpn_mbufs_free(w), base);
    dpn_buf_free(NULL); /* harmless */
}
END_TEST

START_TEST(test_buf_alloc_limits) {
    ck_assert_ptr_null(dpn_buf_alloc(w, 0));
    ck_assert_uint_eq(dpn_mbufs_free(w), base);
    ck_assert_ptr_null(dpn_buf_alloc(w, MSS1500 + 1));
    ck_assert_ptr_null(dpn_buf_alloc(w, 65536));
    ck_assert_ptr_null(dpn_buf_alloc(w, (size_t)-1));
    ck_assert_uint_eq(dpn_mbufs_free(w), base);
    struct dpn_buf *b = dpn_buf_alloc(w, MSS1500);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(dpn_buf_len(b), MSS1500);
    memset(dpn_buf_mut(b), 0x5a, MSS1500); /* the whole length is writable */
    struct dpn_buf *b1 = dpn_buf_alloc(w, 1);
    ck_assert_ptr_nonnull(b1);
    ck_assert_uint_eq(dpn_buf_len(b1), 1);
    ck_assert_uint_eq(dpn_mbufs_free(w), base - 2);
    dpn_buf_free(b);
    dpn_buf_free(b1);
    ck_assert_uint_eq(dpn_mbufs_free(w), base);
}
END_TEST

START_TEST(test_buf_alloc_exhausted) {
    /* Take every free mbuf: dpn_buf_alloc then says NULL, and works again
     * once they are back. */
    unsigned n = dpn_mbufs_free(w);
    struct rte_mbuf **all = calloc(n, sizeof(*all));
    ck_assert_ptr_nonnull(all);
    unsigned got = 0;
    while (got < n && (all[got] = rte_pktmbuf_alloc(w->pool)) != NULL)
        got++;
    ck_assert_uint_eq(got, n);
    ck_assert_uint_eq(dpn_mbufs_free(w), 0);
    ck_assert_ptr_null(dpn_buf_alloc(w, 10));
    ck_assert_uint_eq(dpn_mbufs_free(w), 0);
    rte_pktmbuf_free(all[0]);
    struct dpn_buf *b = dpn_buf_alloc(w, 10);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_eq(dpn_pbuf_mbuf((struct pbuf *)b), all[0]); /* the one just freed */
    dpn_buf_free(b);
    rte_pktmbuf_free_bulk(all + 1, got - 1); /* all[0] went back as b */
    free(all);
}
END_TEST

START_TEST(test_buf_ref_by_lwip) {
    /* A dpn_buf lwIP holds a reference to (e.g. queued for retransmission)
     * stays allocated until both let go. */
    struct dpn_buf *b = dpn_buf_alloc(w, 300);
    struct pbuf *p = (struct pbuf *)b;
    pbuf_ref(p);
    dpn_buf_free(b);
    ck_assert_uint_eq(dpn_mbufs_free(w), base - 1);
    ck_assert_uint_eq(p->ref, 1);
    ck_assert_uint_eq(pbuf_free(p), 1);
    ck_assert_uint_eq(dpn_mbufs_free(w), base);
}
END_TEST

/* ---- pool ---- */

START_TEST(test_pool_create) {
    struct rte_mempool *mp = dpn_pool_create("ut_pool_1500", 1024, 32, 1500, SOCKET_ID_ANY);
    ck_assert_ptr_nonnull(mp);
    ck_assert_uint_eq(rte_mempool_avail_count(mp), 1024);
    ck_assert_uint_ge(rte_pktmbuf_priv_size(mp), sizeof(struct dpn_pbuf));
    ck_assert_uint_eq(rte_pktmbuf_priv_size(mp) % RTE_MBUF_PRIV_ALIGN, 0);
    ck_assert_uint_eq(rte_pktmbuf_data_room_size(mp), RTE_MBUF_DEFAULT_BUF_SIZE);
    /* A full-size frame fits in one mbuf after the headroom. */
    struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_ge(rte_pktmbuf_tailroom(m), 1500 + RTE_ETHER_HDR_LEN + 4);
    struct pbuf *p;
    ck_assert_ptr_nonnull(rte_pktmbuf_append(m, 1514));
    p = dpn_pbuf_wrap(m);
    ck_assert_uint_eq(p->tot_len, 1514);
    pbuf_free(p);
    ck_assert_uint_eq(rte_mempool_avail_count(mp), 1024);
    rte_mempool_free(mp);

    /* Jumbo MTUs: the data room grows to hold the frame, as the NIC sees
     * it: ixgbe rounds the buffer down to whole KB (SRRCTL.BSIZEPKT) and
     * goes multi-segment when MTU + 18 + two VLAN tags does not fit
     * (ixgbe_rxtx.c, ixgbe_dev_rx_init). */
    for (unsigned mtu = 1501; mtu <= 9000; mtu += 499) {
        char name[32];
        snprintf(name, sizeof(name), "ut_pool_%u", mtu);
        mp = dpn_pool_create(name, 64, 0, mtu, SOCKET_ID_ANY);
        ck_assert_ptr_nonnull(mp);
        unsigned buf = (rte_pktmbuf_data_room_size(mp) - RTE_PKTMBUF_HEADROOM) / 1024 * 1024;
        ck_assert_uint_ge(buf, mtu + RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN + 2 * RTE_VLAN_HLEN);
        ck_assert_uint_le(buf, 16384); /* BSIZEPKT's largest */
        rte_mempool_free(mp);
    }
    mp = dpn_pool_create("ut_pool_9000", 1024, 0, 9000, SOCKET_ID_ANY);
    ck_assert_ptr_nonnull(mp);
    m = rte_pktmbuf_alloc(mp);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_nonnull(rte_pktmbuf_append(m, 9000 + RTE_ETHER_HDR_LEN));
    rte_pktmbuf_free(m);
    rte_mempool_free(mp);

    /* The worker's pool is one of these. */
    ck_assert_uint_ge(rte_pktmbuf_priv_size(w->pool), sizeof(struct dpn_pbuf));
    ck_assert_uint_eq(w->pool->size, w->cfg.mbufs);
}
END_TEST

static Suite *buf_suite(void) {
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("wrap");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_pool_accounting);
    tcase_add_test(tc, test_wrap_single);
    tcase_add_test(tc, test_wrap_identity);
    tcase_add_test(tc, test_wrap_chain);
    tcase_add_test(tc, test_wrap_chain_free_tail_first);
    tcase_add_test(tc, test_ref_twice_free);
    tcase_add_test(tc, test_rewrap_reused_mbuf);
    tcase_add_test(tc, test_pbuf_mbuf_foreign);
    suite_add_tcase(s, tc);

    tc = tcase_create("api");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_buf_alloc);
    tcase_add_test(tc, test_buf_alloc_limits);
    tcase_add_test(tc, test_buf_alloc_exhausted);
    tcase_add_test(tc, test_buf_ref_by_lwip);
    tcase_add_test(tc, test_pool_create);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    w = unit_init("test_buf");
    return unit_run(w, buf_suite());
}
