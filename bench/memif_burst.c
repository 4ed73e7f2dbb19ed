/* The ceiling for the bulk case (tools/bench.sh case bulk): raw DPDK bursts
 * of 1514-byte frames over a memif link to a forwarder that sends them back
 * (dpdk-testpmd), with no stack on either side. Frames are freshly
 * allocated and only their headers written, as a stack's would be; the
 * memif PMD copies each whole frame into its ring and out of it, as it does
 * for dpnet's segments. At most WINDOW frames are in flight (a TCP window's
 * worth), so nothing is dropped for want of room.
 *
 * Echoed throughput is counted as a TCP stream at MTU 1500 would count it:
 * 1460 payload bytes per 1514-byte frame, so the figure compares directly
 * with the echoed Gbit/s of `net_latency --bulk`. One JSON line on stdout.
 * Run: memif_burst EAL-ARGS -- [--bytes N] [--window W] [--timeout S] */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

#define BURST 32
#define FRAME 1514
#define PAYLOAD 1460
#define NB_DESC 1024

static int die(const char *what) {
    fprintf(stderr, "memif_burst: %s\n", what);
    return 1;
}

/* A TCP/IPv4 frame's headers at the front of m (length FRAME). */
static int frame(struct rte_mbuf *m, const struct rte_ether_addr *src) {
    uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, FRAME);
    if (p == NULL)
        return -1;
    struct rte_ether_hdr *e = (struct rte_ether_hdr *)p;
    memset(&e->dst_addr, 0xff, sizeof(e->dst_addr));
    e->src_addr = *src;
    e->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV4);
    struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(e + 1);
    memset(ip, 0, sizeof(*ip));
    ip->version_ihl = 0x45;
    ip->total_length = rte_cpu_to_be_16(FRAME - sizeof(*e));
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_TCP;
    ip->src_addr = RTE_BE32(0x0a610002);
    ip->dst_addr = RTE_BE32(0x0a610001);
    struct rte_tcp_hdr *t = (struct rte_tcp_hdr *)(ip + 1);
    memset(t, 0, sizeof(*t));
    t->src_port = RTE_BE16(40000);
    t->dst_port = RTE_BE16(7);
    t->data_off = 0x50;
    t->tcp_flags = RTE_TCP_ACK_FLAG;
    return 0;
}

int main(int argc, char **argv) {
    int n = rte_eal_init(argc, argv);
    if (n < 0)
        return die("EAL init failed");
    argc -= n, argv += n;
    uint64_t bytes = 256ull << 20, window = 512, timeout_s = 60;
    static const struct option lo[] = {{"bytes", required_argument, NULL, 'b'},
                                       {"window", required_argument, NULL, 'w'},
                                       {"timeout", required_argument, NULL, 't'},
                                       {NULL, 0, NULL, 0}};
    for (int o; (o = getopt_long(argc, argv, "", lo, NULL)) != -1;) {
        char *end;
        uint64_t v = strtoull(optarg, &end, 0);
        if (*end != '\0' || v == 0)
            return die("--bytes, --window and --timeout take a positive number");
        if (o == 'b')
            bytes = v;
        else if (o == 'w')
            window = v < NB_DESC ? v : NB_DESC - BURST;
        else if (o == 't')
            timeout_s = v;
        else
            return die("usage: memif_burst EAL-ARGS -- [--bytes N] [--window W] [--timeout S]");
    }
    if (rte_eth_dev_count_avail() < 1)
        return die("no port (pass --vdev=net_memif0,role=client,socket=...)");
    struct rte_mempool *mp =
        rte_pktmbuf_pool_create("burst", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
    struct rte_eth_conf conf = {0};
    if (mp == NULL || rte_eth_dev_configure(0, 1, 1, &conf) != 0 ||
        rte_eth_rx_queue_setup(0, 0, NB_DESC, rte_socket_id(), NULL, mp) != 0 ||
        rte_eth_tx_queue_setup(0, 0, NB_DESC, rte_socket_id(), NULL) != 0 ||
        rte_eth_dev_start(0) != 0)
        return die("port 0 set-up failed");
    struct rte_ether_addr mac;
    rte_eth_macaddr_get(0, &mac);
    uint64_t hz = rte_get_tsc_hz(), t_end = rte_rdtsc() + timeout_s * hz;
    struct rte_eth_link link = {0};
    while (rte_rdtsc() < t_end && (rte_eth_link_get_nowait(0, &link), !link.link_status))
        rte_delay_ms(10);
    if (!link.link_status)
        return die("the memif link never came up (is the forwarder running?)");

    /* Timed after the first eighth, as net_latency --bulk is. */
    uint64_t frames = bytes / PAYLOAD, sent = 0, got = 0, t0 = 0, got0 = 0;
    struct rte_mbuf *b[BURST];
    while (got < frames && rte_rdtsc() < t_end) {
        uint64_t room = window - (sent - got), left = frames - sent;
        unsigned k = (unsigned)RTE_MIN(RTE_MIN(room, left), (uint64_t)BURST);
        if (k > 0 && rte_pktmbuf_alloc_bulk(mp, b, k) == 0) {
            for (unsigned i = 0; i < k; i++)
                if (frame(b[i], &mac) != 0)
                    return die("an mbuf too small for a 1514-byte frame");
            unsigned s = rte_eth_tx_burst(0, 0, b, (uint16_t)k);
            if (s < k)
                rte_pktmbuf_free_bulk(b + s, k - s);
            sent += s;
        }
        unsigned r = rte_eth_rx_burst(0, 0, b, BURST);
        for (unsigned i = 0; i < r; i++)
            got += b[i]->pkt_len == FRAME;
        rte_pktmbuf_free_bulk(b, r);
        if (t0 == 0 && got >= frames / 8)
            t0 = rte_rdtsc(), got0 = got;
    }
    double s = (double)(rte_rdtsc() - t0) / (double)hz;
    if (got < frames || t0 == 0) {
        fprintf(stderr, "memif_burst: %" PRIu64 " of %" PRIu64 " frames back in %.1f s\n", got,
                frames, s);
        return 1;
    }
    /* the shape of net_latency --bulk's line (tools/bench_report.py) */
    printf("{\"what\": \"raw DPDK bursts of %d B frames, %" PRIu64 " in flight\", "
           "\"bulk\": {\"bytes\": %" PRIu64 ", \"secs\": %.4f, \"gbit_per_s\": %.3f, "
           "\"frames\": %" PRIu64 ", \"mpps\": %.3f}}\n",
           FRAME, window, got * PAYLOAD, s, (double)(got - got0) * PAYLOAD * 8 / s / 1e9, got,
           (double)(got - got0) / s / 1e6);
    rte_eth_dev_stop(0);
    rte_eal_cleanup();
    return 0;
}
