/* dpnet's RTO policy (stack/tcp_rto.c) on pcbs set up as lwIP leaves them:
 * the estimator after lwIP's first sample, after many, with none (active
 * open, and the first connections of a process), the back-off, the
 * handshakes' 1 s start, and the walk once per slow tick. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

#include "tcp_rto.h"

#define SV0 (3000 / TCP_SLOW_INTERVAL)

/* A pcb as tcp_alloc leaves it, in state st. */
static void fresh(struct tcp_pcb *p, enum tcp_state st) {
    memset(p, 0, sizeof(*p));
    p->state = st;
    p->sa = 0;
    p->sv = p->rto = SV0;
    p->rtime = -1;
}

/* lwIP's own update (tcp_receive) for a sample of m ticks. */
static void lwip_sample(struct tcp_pcb *p, s16_t m) {
    m = (s16_t)(m - (p->sa >> 3));
    p->sa = (s16_t)(p->sa + m);
    if (m < 0)
        m = (s16_t)-m;
    m = (s16_t)(m - (p->sv >> 2));
    p->sv = (s16_t)(p->sv + m);
    p->rto = (s16_t)((p->sa >> 3) + p->sv);
}

START_TEST(test_first_sample_on_a_lan) {
    struct tcp_pcb p;
    fresh(&p, ESTABLISHED);
    lwip_sample(&p, 0); /* the handshake's: RTO 2.25 s in lwIP */
    ck_assert_int_eq(p.rto, 45);
    dpn_tcp_rto_apply(&p);
    ck_assert_int_eq(p.sa, 0);
    ck_assert_int_eq(p.sv, 3);
    ck_assert_int_eq(p.rto, 3); /* 150 ms: where lwIP would be after a dozen samples */
    /* Later samples go on from there in lwIP's own update. */
    lwip_sample(&p, 1);
    ck_assert_int_eq(p.sa, 1);
    ck_assert_int_eq(p.sv, 4);
}
END_TEST

START_TEST(test_first_sample_of_300_ms) {
    struct tcp_pcb p;
    fresh(&p, ESTABLISHED);
    lwip_sample(&p, 6);
    dpn_tcp_rto_apply(&p);
    /* RFC 6298 (2.2): SRTT = R, RTTVAR = R/2, RTO = R + 4 RTTVAR = 3R */
    ck_assert_int_eq(p.sa >> 3, 6);
    ck_assert_int_eq(p.sv, 12);
    ck_assert_int_eq(p.rto, 18);
}
END_TEST

START_TEST(test_many_samples_under_a_tick) {
    struct tcp_pcb p;
    fresh(&p, ESTABLISHED);
    for (int i = 0; i < 4; i++)
        lwip_sample(&p, i == 2);
    ck_assert_int_gt(p.rto, 20); /* lwIP still above a second */
    dpn_tcp_rto_apply(&p);
    ck_assert_int_eq(p.rto, 3);
}
END_TEST

START_TEST(test_once_per_connection) {
    struct tcp_pcb p;
    fresh(&p, ESTABLISHED);
    lwip_sample(&p, 0);
    dpn_tcp_rto_apply(&p);
    /* The estimator is lwIP's again: a variance it measures stays. */
    p.sv = 30;
    p.rto = 30;
    dpn_tcp_rto_apply(&p);
    ck_assert_int_eq(p.sv, 30);
    ck_assert_int_eq(p.rto, 30);
}
END_TEST

START_TEST(test_no_sample_yet) {
    struct tcp_pcb p;
    fresh(&p, ESTABLISHED); /* rttest 0: nothing being timed */
    dpn_tcp_rto_apply(&p);
    ck_assert_int_eq(p.rto, 1000 / TCP_SLOW_INTERVAL); /* RFC 6298 (2.1), not 3 s */
    ck_assert_int_eq(p.sv, SV0);                       /* still waiting for a sample */
    lwip_sample(&p, 0);
    dpn_tcp_rto_apply(&p);
    ck_assert_int_eq(p.rto, 3);
}
END_TEST

START_TEST(test_active_open_times_the_handshake) {
    struct tcp_pcb p;
    fresh(&p, ESTABLISHED);
    tcp_ticks = 1000;
    p.rttest = 998; /* SYN sent two ticks ago, acked since */
    p.rtseq = 5000;
    p.lastack = 5001;
    dpn_tcp_rto_apply(&p);
    ck_assert_int_eq(p.rttest, 0);
    ck_assert_int_eq(p.sa >> 3, 2);
    ck_assert_int_eq(p.sv, 4);
    ck_assert_int_eq(p.rto, 6);
}
END_TEST

START_TEST(test_data_being_timed_is_not_the_handshake) {
    struct tcp_pcb p;
    fresh(&p, ESTABLISHED);
    tcp_ticks = 1000;
    p.rttest = 990;
    p.rtseq = 5000;
    p.lastack = 4000; /* the timed segment is not acked */
    dpn_tcp_rto_apply(&p);
    ck_assert_int_eq(p.rttest, 990);
    ck_assert_int_eq(p.rto, 1000 / TCP_SLOW_INTERVAL);
}
END_TEST

/* k losses in a row: lwIP waits base << n after the n-th retransmission,
 * here base << (n - 1) (the first retransmission is the tail probe). */
START_TEST(test_backoff_one_step_later) {
    struct tcp_pcb p;
    fresh(&p, ESTABLISHED);
    lwip_sample(&p, 0);
    dpn_tcp_rto_apply(&p);
    static const int want[] = {3, 3, 6, 12, 24, 48, 96, 192, 384, 384, 384};
    for (int n = 0; n <= 10; n++) {
        p.nrtx = (u8_t)n;
        p.rto = (s16_t)(3 << (n < 7 ? n : 7)); /* what tcp_slowtmr set */
        dpn_tcp_rto_apply(&p);
        ck_assert_int_eq(p.rto, want[n]);
    }
}
END_TEST

START_TEST(test_rto_saturates) {
    struct tcp_pcb p;
    fresh(&p, ESTABLISHED);
    lwip_sample(&p, 30000);
    dpn_tcp_rto_apply(&p);
    ck_assert_int_eq(p.sa >> 3, 4095);
    p.nrtx = 8;
    dpn_tcp_rto_apply(&p);
    ck_assert_int_eq(p.rto, 0x7fff);
}
END_TEST

/* RFC 6298 (2.1, 5.5) for SYN and SYN-ACK: 1 s, doubled per retry, where
 * lwIP keeps 3 s; the estimator is left for the first sample. */
START_TEST(test_handshakes_from_one_second) {
    static const enum tcp_state st[] = {SYN_SENT, SYN_RCVD};
    for (int i = 0; i < 2; i++) {
        struct tcp_pcb p;
        fresh(&p, st[i]);
        dpn_tcp_rto_apply(&p);
        ck_assert_int_eq(p.rto, 1000 / TCP_SLOW_INTERVAL);
        p.nrtx = 2;
        dpn_tcp_rto_apply(&p);
        ck_assert_int_eq(p.rto, 4000 / TCP_SLOW_INTERVAL);
        p.nrtx = 12;
        dpn_tcp_rto_apply(&p);
        ck_assert_int_eq(p.rto, 128000 / TCP_SLOW_INTERVAL);
        ck_assert_int_eq(p.sa, 0);
        ck_assert_int_eq(p.sv, SV0);
    }
}
END_TEST

START_TEST(test_walk_once_per_tick) {
    struct tcp_pcb a, b;
    fresh(&a, ESTABLISHED);
    fresh(&b, CLOSE_WAIT);
    lwip_sample(&a, 0);
    lwip_sample(&b, 0);
    a.next = &b;
    tcp_active_pcbs = &a;
    tcp_ticks = 0; /* a process before its first connection */
    dpn_tcp_rto_tick();
    ck_assert_uint_eq(tcp_ticks, 1); /* rttest = tcp_ticks must not be 0 */
    ck_assert_int_eq(a.rto, 3);
    ck_assert_int_eq(b.rto, 3);
    a.rto = 77; /* lwIP's between two ticks */
    dpn_tcp_rto_tick();
    ck_assert_int_eq(a.rto, 77);
    tcp_ticks++;
    dpn_tcp_rto_tick();
    ck_assert_int_eq(a.rto, 3);
    tcp_active_pcbs = NULL;
}
END_TEST

static Suite *rto_suite(void) {
    Suite *s = suite_create("tcp_rto");
    TCase *tc = tcase_create("policy");
    tcase_add_test(tc, test_first_sample_on_a_lan);
    tcase_add_test(tc, test_first_sample_of_300_ms);
    tcase_add_test(tc, test_many_samples_under_a_tick);
    tcase_add_test(tc, test_once_per_connection);
    tcase_add_test(tc, test_no_sample_yet);
    tcase_add_test(tc, test_active_open_times_the_handshake);
    tcase_add_test(tc, test_data_being_timed_is_not_the_handshake);
    tcase_add_test(tc, test_backoff_one_step_later);
    tcase_add_test(tc, test_rto_saturates);
    tcase_add_test(tc, test_handshakes_from_one_second);
    tcase_add_test(tc, test_walk_once_per_tick);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(rto_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
