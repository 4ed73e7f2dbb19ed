/* Runner for lwIP's own Check unit tests (third_party/lwip/test/unit) built
 * with our options (test/lwip/lwipopts.h). It replaces lwIP's
 * lwip_unittests.c, whose main() runs suites for features we compile out:
 * here the suite list is ours, and create_suite() (called by each lwIP suite
 * constructor) leaves out the test cases listed in `excluded`, each for the
 * reason given there and in docs/lwip-unit.md. One SRunner for all suites, so
 * Check prints one "Checks: N, Failures: F, Errors: E" line.
 *
 * Built twice (test/lwip/meson.build): lwip_unit with our options, and
 * lwip_unit_tcp (DPN_LWIP_UNIT_TCP) for the suites whose harness needs two
 * options changed. Each test case is its own TCase named after the test, so
 * CK_RUN_SUITE=TCP CK_RUN_CASE=test_tcp_rto_timeout runs a single one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lwip_check.h"

#include "lwip/init.h"
#include "lwip/memp.h"
#include "lwip/stats.h"

#ifdef DPN_LWIP_UNIT_TCP
#include "tcp/test_tcp.h"
#include "tcp/test_tcp_oos.h"
#include "udp/test_udp.h"
#else
#include "core/test_def.h"
#include "core/test_mem.h"
#include "core/test_netif.h"
#include "core/test_pbuf.h"
#include "core/test_timers.h"
#include "etharp/test_etharp.h"
#endif

/* Test cases that assume lwIP options we set differently (details and why
 * none of them is a bug: docs/lwip-unit.md). DPN_LWIP_UNIT_ALL=1 in the
 * environment runs them anyway, to re-check this list. */
static const struct {
    const char *suite, *test, *why;
} excluded[] = {
#ifndef DPN_LWIP_UNIT_TCP
    {"NETIF", "test_netif_find",
     "looks up two netifs; LWIP_SINGLE_NETIF=1 knows only netif_default"},
    {"PBUF", "test_pbuf_copy_zero_pbuf",
     "needs PBUF_POOL_BUFSIZE < 1024 (ours 9016: TCP_MSS 8960)"},
    {"PBUF", "test_pbuf_take_at_edge", "needs PBUF_POOL_BUFSIZE < 1024 (ours 9016: TCP_MSS 8960)"},
    {"PBUF", "test_pbuf_get_put_at_edge",
     "needs PBUF_POOL_BUFSIZE < 1024 (ours 9016: TCP_MSS 8960)"},
    {"ETHARP", "test_etharp_table", "needs ARP_TABLE_SIZE + 2 < 254 addresses (ours 256)"},
    {"MEM", "test_mem_invalid_free", "checks the heap's bad-free detection; ours is MEM_USE_POOLS"},
    {"MEM", "test_mem_double_free", "checks the heap's double-free detection; ours is MEM_USE_POOLS"},
#else
    {"TCP", "test_tcp_fast_retx_recover", "peer window (u16)TCP_WND = 0 (ours 512 KiB)"},
    {"TCP", "test_tcp_fast_rexmit_wraparound", "peer window (u16)TCP_WND = 0 (ours 512 KiB)"},
    {"TCP", "test_tcp_rto_rexmit_wraparound",
     "RTO in slow ticks of TCP_TMR_INTERVAL 250 (ours 25)"},
    {"TCP", "test_tcp_tx_full_window_lost_from_unacked",
     "peer window (u16)TCP_WND = 0 (ours 512 KiB)"},
    {"TCP", "test_tcp_tx_full_window_lost_from_unsent",
     "peer window (u16)TCP_WND = 0 (ours 512 KiB)"},
    {"TCP", "test_tcp_retx_add_to_sent",
     "peer window (u16)TCP_WND = 0 (ours 512 KiB); TCP_TMR_INTERVAL 250 (ours 25)"},
    {"TCP", "test_tcp_rto_tracking", "peer window (u16)TCP_WND = 0 (ours 512 KiB)"},
    {"TCP", "test_tcp_recv_inseq", "data without the ACK flag: our input guard drops it (RFC 793)"},
    {"TCP", "test_tcp_recv_inseq_trim",
     "data without the ACK flag: our input guard drops it (RFC 793)"},
    {"TCP_OOS", "test_tcp_recv_ooseq_max_bytes",
     "empty: needs TCP_OOSEQ_MAX_BYTES <= TCP_WND (ours 1 MiB > 512 KiB)"},
    {"TCP_OOS", "test_tcp_recv_ooseq_max_pbufs",
     "empty: needs TCP_OOSEQ_MAX_PBUFS <= TCP_WND / TCP_MSS (ours 1024 > 58)"},
    {"UDP", "test_udp_broadcast_rx_with_2_netifs",
     "packets from 0.0.0.0 are dropped without LWIP_DHCP (ours 0)"},
    {"UDP", "test_udp_bind", "binds an IPv6 pcb (ours LWIP_IPV6=0)"},
#endif
    {NULL, NULL, NULL},
};

static const char *exclusion(const char *suite, const char *test) {
    const char *all = getenv("DPN_LWIP_UNIT_ALL");
    if (all != NULL && strcmp(all, "1") == 0)
        return NULL;
    for (size_t i = 0; excluded[i].suite != NULL; i++)
        if (strcmp(excluded[i].suite, suite) == 0 && strcmp(excluded[i].test, test) == 0)
            return excluded[i].why;
    return NULL;
}

/* Called by each lwIP suite constructor (as lwip_unittests.c's). */
Suite *create_suite(const char *name, testfunc *tests, size_t num_tests, SFun setup,
                    SFun teardown) {
    Suite *s = suite_create(name);
    for (size_t i = 0; i < num_tests; i++) {
        const char *why = exclusion(name, tests[i]->name);
        if (why != NULL) {
            printf("excluded: %s/%s: %s (docs/lwip-unit.md)\n", name, tests[i]->name, why);
            continue;
        }
        TCase *tc = tcase_create(tests[i]->name);
        if (setup != NULL || teardown != NULL)
            tcase_add_checked_fixture(tc, setup, teardown);
        /* Check's default is 4 s; ASan on a loaded 2-core machine needs more. */
        tcase_set_timeout(tc, 60);
        tcase_add_named_test(tc, tests[i]);
        suite_add_tcase(s, tc);
    }
    return s;
}

/* As lwip_unittests.c's: nothing may be left allocated between tests. */
void lwip_check_ensure_no_alloc(unsigned int skip) {
    unsigned int mask = 1;
    if (!(skip & SKIP_HEAP))
        fail_unless(lwip_stats.mem.used == 0);
    for (int i = 0; i < MEMP_MAX; i++, mask <<= 1)
        if (!(skip & mask))
            fail_unless(lwip_stats.memp[i]->used == 0);
}

int main(void) {
    suite_getter_fn *suites[] = {
#ifdef DPN_LWIP_UNIT_TCP
        tcp_suite,
        tcp_oos_suite,
        udp_suite,
#else
        def_suite, mem_suite, netif_suite, pbuf_suite, timers_suite, etharp_suite,
#endif
    };

    lwip_init();
    SRunner *sr = srunner_create(NULL);
    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
        srunner_add_suite(sr, suites[i]());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
