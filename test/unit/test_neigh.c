/* The neighbor table's reader against a table someone else wrote: every
 * worker maps it writable, so a sequence left odd (or random bytes all
 * over it) must make a lookup a miss after a bounded number of retries,
 * never a spin (issue 14). Header-only code: no EAL needed. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <rte_ip.h>

#include "neigh.h"

static struct dpn_neigh T[DPN_NEIGH_SIZE];
static const struct rte_ether_addr M1 = {{0x02, 0, 0, 0, 0, 0x11}};
#define IP(d) rte_cpu_to_be_32(RTE_IPV4(10, 0, 0, d))

START_TEST(test_lookup_finds_what_was_written) {
    struct rte_ether_addr mac;
    memset(T, 0, sizeof(T));
    ck_assert(dpn_neigh_update(T, IP(1), &M1, true));
    ck_assert(dpn_neigh_lookup(T, IP(1), &mac));
    ck_assert(rte_is_same_ether_addr(&mac, &M1));
    ck_assert(!dpn_neigh_lookup(T, IP(2), &mac));
}
END_TEST

START_TEST(test_odd_sequence_is_a_miss) {
    struct rte_ether_addr mac;
    memset(T, 0, sizeof(T));
    ck_assert(dpn_neigh_update(T, IP(1), &M1, true));
    struct dpn_neigh *e = &T[dpn_neigh_hash(IP(1))];
    ck_assert_uint_eq(e->ip, IP(1));
    e->seq |= 1; /* a writer that never finished */
    ck_assert(!dpn_neigh_lookup(T, IP(1), &mac));
    e->seq++; /* finished: found again */
    ck_assert(dpn_neigh_lookup(T, IP(1), &mac));
}
END_TEST

START_TEST(test_every_sequence_odd_is_a_bounded_miss) {
    struct rte_ether_addr mac;
    for (unsigned i = 0; i < DPN_NEIGH_SIZE; i++)
        T[i] = (struct dpn_neigh){.seq = 1, .ip = IP(200), .valid = 1};
    for (uint32_t d = 1; d < 255; d++)
        ck_assert(!dpn_neigh_lookup(T, IP(d), &mac));
}
END_TEST

START_TEST(test_random_table_terminates) {
    struct rte_ether_addr mac;
    srand(14);
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof(T); i++)
            ((uint8_t *)T)[i] = (uint8_t)rand();
        for (uint32_t d = 1; d < 50; d++)
            (void)dpn_neigh_lookup(T, IP(d), &mac);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("neigh");
    TCase *tc = tcase_create("reader");
    tcase_add_test(tc, test_lookup_finds_what_was_written);
    tcase_add_test(tc, test_odd_sequence_is_a_miss);
    tcase_add_test(tc, test_every_sequence_odd_is_a_bounded_miss);
    tcase_add_test(tc, test_random_table_terminates);
    tcase_set_timeout(tc, 10);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed == 0 ? 0 : 1;
}
