/* The SYN guard queues' steering program (port/tapsteer.c), run by the
 * kernel on frames we build (BPF_PROG_TEST_RUN): the queue it picks is the
 * program's return value. Needs root (bpf()). */
#include <check.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tapsteer.h"

static struct dpn_tapsteer S;

static void setup(void) {
    int rc = dpn_tapsteer_load(&S);
    ck_assert_msg(rc == 0, "loading the steering program: %s", strerror(-rc));
}

static void teardown(void) {
    close(S.prog_fd);
    close(S.map_fd);
}

enum { F_FIN = 0x01, F_SYN = 0x02, F_RST = 0x04, F_ACK = 0x10 };

struct frame {
    uint8_t b[128];
    uint32_t len;
};

/* Ethernet + IPv4 (ihl words, fragment offset frag) + TCP with flags. */
static struct frame tcp_frame(uint32_t src, uint8_t flags, unsigned ihl, uint16_t frag) {
    struct frame f;
    memset(&f, 0, sizeof(f));
    uint8_t *e = f.b, *ip = e + 14, *tcp = ip + ihl * 4;
    memset(e, 0x02, 12);
    e[12] = 0x08, e[13] = 0x00;
    ip[0] = (uint8_t)(0x40 | ihl);
    ip[3] = (uint8_t)(ihl * 4 + 20);
    ip[6] = (uint8_t)(frag >> 8), ip[7] = (uint8_t)frag;
    ip[8] = 64, ip[9] = 6;
    memcpy(ip + 12, &src, 4);
    ip[16] = 10, ip[19] = 1;
    tcp[0] = 0x30, tcp[2] = 0x00, tcp[3] = 7;
    tcp[12] = 0x50, tcp[13] = flags;
    f.len = 14 + ihl * 4 + 20;
    return f;
}

static int queue_of(const struct frame *f) {
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.test.prog_fd = (uint32_t)S.prog_fd;
    a.test.data_in = (uintptr_t)f->b;
    a.test.data_size_in = f->len;
    a.test.repeat = 1;
    int rc = (int)syscall(__NR_bpf, BPF_PROG_TEST_RUN, &a, sizeof(a));
    ck_assert_msg(rc == 0, "BPF_PROG_TEST_RUN (%u bytes): %s", f->len, strerror(errno));
    return (int)a.test.retval;
}

START_TEST(test_only_bare_syns_leave_queue_0) {
    const uint32_t src = 0x0a0a0a0a;
    struct frame f = tcp_frame(src, F_SYN, 5, 0);
    ck_assert_int_eq(queue_of(&f), 1);
    static const uint8_t others[] = {F_SYN | F_ACK, F_ACK, 0, F_FIN | F_ACK, F_RST, F_RST | F_ACK};
    for (unsigned i = 0; i < sizeof(others); i++) {
        f = tcp_frame(src, others[i], 5, 0);
        ck_assert_msg(queue_of(&f) == 0, "flags %#x", others[i]);
    }
    f = tcp_frame(src, F_SYN | F_FIN, 5, 0); /* a SYN all the same */
    ck_assert_int_eq(queue_of(&f), 1);
    f = tcp_frame(src, F_SYN, 7, 0); /* IP options move the TCP header */
    ck_assert_int_eq(queue_of(&f), 1);
    f = tcp_frame(src, F_SYN, 5, 0x2000); /* first fragment (MF): has the header */
    ck_assert_int_eq(queue_of(&f), 1);
    f = tcp_frame(src, F_SYN, 5, 185); /* later fragment: payload, not a header */
    ck_assert_int_eq(queue_of(&f), 0);
}
END_TEST

START_TEST(test_not_tcp_or_malformed_is_queue_0) {
    struct frame f = tcp_frame(0x0b0b0b0b, F_SYN, 5, 0);
    f.b[23] = 17; /* UDP whose bytes would read as a SYN */
    ck_assert_int_eq(queue_of(&f), 0);
    f = tcp_frame(0x0b0b0b0b, F_SYN, 5, 0);
    f.b[12] = 0x08, f.b[13] = 0x06; /* ARP */
    ck_assert_int_eq(queue_of(&f), 0);
    f = tcp_frame(0x0b0b0b0b, F_SYN, 4, 0); /* IHL below 5 */
    ck_assert_int_eq(queue_of(&f), 0);
    for (uint32_t len = 14 + 20; len < 14 + 20 + 14; len += 3) { /* TCP header cut short */
        f = tcp_frame(0x0b0b0b0b, F_SYN, 5, 0);
        f.len = len;
        ck_assert_msg(queue_of(&f) == 0, "frame of %u bytes", len);
    }
    f = tcp_frame(0x0b0b0b0b, F_SYN, 15, 0); /* 60-byte IP header, TCP header missing */
    f.len = 14 + 60 + 10;
    ck_assert_int_eq(queue_of(&f), 0);
}
END_TEST

START_TEST(test_a_source_past_its_budget_goes_to_queue_2) {
    const uint32_t flood = 0x63000a0a, client = 0x01000a0a;
    struct frame f = tcp_frame(flood, F_SYN, 5, 0), c = tcp_frame(client, F_SYN, 5, 0);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 1; i <= DPN_TAPSTEER_SYN_BUDGET; i++)
        ck_assert_msg(queue_of(&f) == 1, "SYN %d of the source", i);
    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(queue_of(&f), 2);
        if (i % 4 == 0) /* another source keeps its own budget */
            ck_assert_int_eq(queue_of(&c), 1);
    }
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* Only meaningful when all that ran inside one window (it takes ~1 ms). */
    ck_assert_int_lt((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000,
                     DPN_TAPSTEER_WINDOW_MS);
    struct frame a = tcp_frame(flood, F_ACK, 5, 0);
    ck_assert_int_eq(queue_of(&a), 0); /* its other frames stay on queue 0 */
    struct timespec wait = {0, (DPN_TAPSTEER_WINDOW_MS + 20) * 1000000L};
    nanosleep(&wait, NULL);
    ck_assert_int_eq(queue_of(&f), 1); /* a new window, a new budget */
}
END_TEST

int main(void) {
    Suite *s = suite_create("tapsteer");
    TCase *tc = tcase_create("program");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_only_bare_syns_leave_queue_0);
    tcase_add_test(tc, test_not_tcp_or_malformed_is_queue_0);
    tcase_add_test(tc, test_a_source_past_its_budget_goes_to_queue_2);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
