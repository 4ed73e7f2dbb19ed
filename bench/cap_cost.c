/* What packet capture costs a worker, per frame (tools/bench.sh case
 * capture): dpn_cap_frames on bursts of 32 frames of 64 and 1514 bytes,
 * with no filter, a filter that keeps them and one that does not, while
 * the real writer thread drains the ring into /dev/null; and capture off,
 * the loop's one branch. One line per case (NAME NS_PER_FRAME WRITTEN
 * LOST), then all of them as one JSON line (tools/bench_report.py).
 * Run: cap_cost --no-pci --no-huge -m 512 -l 0-1 [-- MS_PER_CASE] */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

#include "capture.h"

#define BURST 32

/* A burst of TCP frames of len bytes to port 80. */
static void make_burst(struct rte_mempool *mp, uint16_t len, struct rte_mbuf **b) {
    for (int i = 0; i < BURST; i++) {
        struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
        uint8_t *p = m != NULL ? (uint8_t *)rte_pktmbuf_append(m, len) : NULL;
        if (p == NULL) {
            fprintf(stderr, "cap_cost: no mbuf\n");
            exit(1);
        }
        memset(p, 0xab, len);
        struct rte_ether_hdr *e = (struct rte_ether_hdr *)p;
        e->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV4);
        struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(e + 1);
        ip->version_ihl = 0x45;
        ip->next_proto_id = IPPROTO_TCP;
        ip->fragment_offset = 0;
        struct rte_tcp_hdr *t = (struct rte_tcp_hdr *)(ip + 1);
        t->src_port = RTE_BE16(40000);
        t->dst_port = RTE_BE16(80);
        b[i] = m;
    }
}

static volatile uint64_t sink;
static char json[1024] = "{\"capture\": {";

static void result(const char *name, double ns, uint64_t written, uint64_t lost) {
    printf("%s %.2f %" PRIu64 " %" PRIu64 "\n", name, ns, written, lost);
    size_t n = strlen(json);
    snprintf(json + n, sizeof(json) - n,
             "%s\"%s\": {\"ns\": %.2f, \"written\": %" PRIu64 ", \"lost\": %" PRIu64 "}",
             json[n - 1] == '{' ? "" : ", ", name, ns, written, lost);
}

/* Capture off: what the loop pays, the branch on a NULL pointer. */
static double run_off(struct rte_mbuf **b, uint64_t ms) {
    struct dpn_cap *volatile cap = NULL;
    uint64_t end = rte_rdtsc() + ms * (rte_get_tsc_hz() / 1000), n = 0, t0 = rte_rdtsc();
    while (rte_rdtsc() < end) {
        for (int k = 0; k < 64; k++) {
            struct dpn_cap *c = cap;
            if (unlikely(c != NULL))
                dpn_cap_frames(c, b, BURST, 1, DPN_CAP_IN);
            sink += b[k & (BURST - 1)]->pkt_len;
        }
        n += 64 * BURST;
    }
    return (double)(rte_rdtsc() - t0) * 1e9 / (double)rte_get_tsc_hz() / (double)n;
}

static int run(const char *name, struct rte_mbuf **b, const char *filter, unsigned gap_us,
               uint64_t ms) {
    static struct dpn_cap_ring ring;
    char why[256];
    memset(&ring, 0, sizeof(ring));
    if (dpn_cap_compile(&ring, filter, 0, why, sizeof(why)) != 0)
        return fprintf(stderr, "cap_cost: %s\n", why), -1;
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    struct dpn_capw *cw = dpn_capw_open(fd, 0, 0, 0, "cap_cost", why, sizeof(why));
    struct dpn_cap *c = cw != NULL ? dpn_cap_start(&ring, why, sizeof(why)) : NULL;
    if (c == NULL)
        return fprintf(stderr, "cap_cost: %s\n", why), -1;
    dpn_capw_source(cw, 1, &ring, true);
    usleep(10000); /* the writer has taken the source */
    uint64_t end = rte_rdtsc() + ms * (rte_get_tsc_hz() / 1000), n = 0, cycles = 0;
    while (rte_rdtsc() < end) {
        uint64_t t = rte_rdtsc();
        dpn_cap_frames(c, b, BURST, 1, DPN_CAP_IN);
        cycles += rte_rdtsc() - t;
        n += BURST;
        /* Below what the writer takes (a full ring costs less: it drops):
         * the cost of frames that are kept. */
        rte_delay_us_block(gap_us);
    }
    uint64_t written, lost;
    dpn_cap_stop(c);
    dpn_capw_close(cw, &written, &lost, why, sizeof(why));
    result(name, (double)cycles * 1e9 / (double)rte_get_tsc_hz() / (double)n, written, lost);
    return 0;
}

int main(int argc, char **argv) {
    int k = rte_eal_init(argc, argv);
    if (k < 0)
        return 1;
    uint64_t ms = argc - k > 1 ? strtoull(argv[k + 1], NULL, 10) : 1000;
    struct rte_mempool *mp =
        rte_pktmbuf_pool_create("cap_cost", 127, 0, 0, 2048 + RTE_PKTMBUF_HEADROOM, 0);
    if (mp == NULL)
        return 1;
    struct rte_mbuf *small[BURST], *big[BURST];
    make_burst(mp, 64, small);
    make_burst(mp, 1514, big);
    result("off", run_off(small, ms), 0, 0);
    /* 32 frames every 16 us: 2 Mpps; of 1514 B every 64 us: 0.5 Mpps, 6 Gbit/s. */
    int rc = run("all-64B", small, "", 16, ms) | run("all-1514B", big, "", 64, ms) |
             run("match-64B", small, "tcp port 80", 16, ms) |
             run("nomatch-64B", small, "tcp port 443", 16, ms) |
             run("match-1514B", big, "tcp port 80", 64, ms);
    printf("%s}}\n", json);
    rte_eal_cleanup();
    return rc != 0;
}
