/* Shared helpers of the unit tests that need DPDK: one worker per process on a
 * net_null port that receives nothing (frames are injected by hand through
 * dpn_rx_burst and lwIP's output is read back from w->tx_pkts), and builders
 * and parsers of Ethernet/IPv4/TCP/UDP/ARP frames with real checksums. */
#ifndef DPNET_TEST_UNIT_EAL_H
#define DPNET_TEST_UNIT_EAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "dpnet.h"
#include "worker.h"

#define UNIT_LOCAL_IP RTE_IPV4(10, 0, 0, 2)
#define UNIT_PEER_IP RTE_IPV4(10, 0, 0, 1)

/* The simulated peer's MAC address. */
static const struct rte_ether_addr unit_peer_mac = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};

/* Frames lwIP had queued when dpn_init returned, and whether all of them
 * were gratuitous ARPs for our address (set by unit_init). */
static int unit_startup_frames;
static bool unit_startup_garp;

/* Free lwIP's frames not flushed yet. */
static inline void unit_tx_drop(struct dpn_worker *w) {
    if (w->tx_n > 0)
        rte_pktmbuf_free_bulk(w->tx_pkts, w->tx_n);
    w->tx_n = 0;
}

/* dpn_init on a net_null port without RX; exits the process on failure. The
 * gratuitous ARP lwIP sends at start-up is dropped. */
static inline struct dpn_worker *unit_init(const char *prog) {
    static char a_pci[] = "--no-pci", a_mem[] = "--in-memory", a_l[] = "-l", a_0[] = "0",
                a_log[] = "--log-level=lib.eal:error", a_vdev[] = "--vdev=net_null0,no-rx=1",
                a_sep[] = "--", a_ip[] = "--ip", a_ipv[] = "10.0.0.2/24", a_poll[] = "--poll",
                a_busy[] = "busy";
    static char name[64];
    snprintf(name, sizeof(name), "%s", prog);
    static char *args[16];
    char *v[] = {name,  a_pci, a_mem, a_l,    a_0,    a_log, a_vdev,
                 a_sep, a_ip,  a_ipv, a_poll, a_busy, NULL};
    memcpy(args, v, sizeof(v));
    int argc = (int)(sizeof(v) / sizeof(v[0])) - 1;
    char **argv = args;
    struct dpn_worker *w = NULL;
    int rc = dpn_init(&argc, &argv, &w);
    if (rc != 0 || w == NULL) {
        fprintf(stderr, "%s: dpn_init failed: %d (%s)\n", prog, rc, dpn_strerror(rc));
        exit(1);
    }
    if (argc != 1) {
        fprintf(stderr, "%s: dpn_init left %d arguments\n", prog, argc);
        exit(1);
    }
    unit_startup_frames = w->tx_n;
    unit_startup_garp = w->tx_n > 0;
    for (uint16_t i = 0; i < w->tx_n; i++) {
        const struct rte_mbuf *m = w->tx_pkts[i];
        const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
        const struct rte_arp_hdr *a = (const struct rte_arp_hdr *)(eth + 1);
        if (rte_pktmbuf_data_len(m) < sizeof(*eth) + sizeof(*a) ||
            eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP) ||
            !rte_is_broadcast_ether_addr(&eth->dst_addr) ||
            a->arp_data.arp_sip != rte_cpu_to_be_32(UNIT_LOCAL_IP) ||
            a->arp_data.arp_tip != rte_cpu_to_be_32(UNIT_LOCAL_IP) ||
            !rte_is_same_ether_addr(&a->arp_data.arp_sha, &w->mac))
            unit_startup_garp = false;
    }
    unit_tx_drop(w);
    return w;
}

/* A zeroed frame of flen bytes with its Ethernet header filled in; the
 * header is the returned mbuf's first bytes. NULL when out of mbufs. */
static inline struct rte_mbuf *unit_eth_frame(struct rte_mempool *mp, uint16_t flen,
                                              const struct rte_ether_addr *dst,
                                              const struct rte_ether_addr *src, uint16_t type) {
    struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
    if (m == NULL)
        return NULL;
    char *p = rte_pktmbuf_append(m, flen);
    if (p == NULL) {
        rte_pktmbuf_free(m);
        return NULL;
    }
    memset(p, 0, flen);
    struct rte_ether_hdr *eth = (struct rte_ether_hdr *)p;
    rte_ether_addr_copy(dst, &eth->dst_addr);
    rte_ether_addr_copy(src, &eth->src_addr);
    eth->ether_type = rte_cpu_to_be_16(type);
    return m;
}

/* An IPv4 frame from the peer to us (or the given addresses): Ethernet header,
 * a 20-byte IP header (ihl_words > 5 adds zeroed option words), then l4
 * (l4len bytes, its checksum field zeroed by the caller). The IP checksum and,
 * for TCP and UDP, the L4 checksum are computed. */
static inline struct rte_mbuf *unit_ip_frame_ex(struct rte_mempool *mp,
                                                const struct rte_ether_addr *dst_mac, uint32_t sip,
                                                uint32_t dip, uint8_t proto, unsigned ihl_words,
                                                const void *l4, uint16_t l4len) {
    uint16_t ihl = (uint16_t)(ihl_words * 4);
    uint16_t flen = (uint16_t)(sizeof(struct rte_ether_hdr) + ihl + l4len);
    struct rte_mbuf *m = unit_eth_frame(mp, flen, dst_mac, &unit_peer_mac, RTE_ETHER_TYPE_IPV4);
    if (m == NULL)
        return NULL;
    struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
    struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
    ip->version_ihl = (uint8_t)(0x40 | ihl_words);
    ip->total_length = rte_cpu_to_be_16((uint16_t)(ihl + l4len));
    ip->packet_id = rte_cpu_to_be_16(0x1234);
    ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
    ip->time_to_live = 64;
    ip->next_proto_id = proto;
    ip->src_addr = rte_cpu_to_be_32(sip);
    ip->dst_addr = rte_cpu_to_be_32(dip);
    ip->hdr_checksum = 0;
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    void *l4p = (char *)ip + ihl;
    memcpy(l4p, l4, l4len);
    if (proto == IPPROTO_TCP) {
        struct rte_tcp_hdr *th = l4p;
        th->cksum = 0;
        th->cksum = rte_ipv4_udptcp_cksum(ip, th);
    } else if (proto == IPPROTO_UDP) {
        struct rte_udp_hdr *uh = l4p;
        uh->dgram_cksum = 0;
        uh->dgram_cksum = rte_ipv4_udptcp_cksum(ip, uh);
    }
    return m;
}

static inline struct rte_mbuf *unit_ip_frame(struct rte_mempool *mp,
                                             const struct rte_ether_addr *dst_mac, uint32_t sip,
                                             uint32_t dip, uint8_t proto, const void *l4,
                                             uint16_t l4len) {
    return unit_ip_frame_ex(mp, dst_mac, sip, dip, proto, 5, l4, l4len);
}

/* A TCP segment from sip:sport to dip:dport with options opt (optlen a
 * multiple of 4) and payload data. */
static inline struct rte_mbuf *unit_tcp_frame(struct rte_mempool *mp,
                                              const struct rte_ether_addr *dst_mac, uint32_t sip,
                                              uint32_t dip, uint16_t sport, uint16_t dport,
                                              uint32_t seq, uint32_t ack, uint8_t flags,
                                              uint16_t win, const void *opt, unsigned optlen,
                                              const void *data, unsigned len) {
    uint8_t buf[2048];
    unsigned hlen = sizeof(struct rte_tcp_hdr) + optlen;
    if (hlen + len > sizeof(buf) || optlen % 4 != 0)
        return NULL;
    memset(buf, 0, hlen);
    struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)buf;
    th->src_port = rte_cpu_to_be_16(sport);
    th->dst_port = rte_cpu_to_be_16(dport);
    th->sent_seq = rte_cpu_to_be_32(seq);
    th->recv_ack = rte_cpu_to_be_32(ack);
    th->data_off = (uint8_t)((hlen / 4) << 4);
    th->tcp_flags = flags;
    th->rx_win = rte_cpu_to_be_16(win);
    if (optlen > 0)
        memcpy(buf + sizeof(*th), opt, optlen);
    if (len > 0)
        memcpy(buf + hlen, data, len);
    return unit_ip_frame(mp, dst_mac, sip, dip, IPPROTO_TCP, buf, (uint16_t)(hlen + len));
}

static inline struct rte_mbuf *unit_udp_frame(struct rte_mempool *mp,
                                              const struct rte_ether_addr *dst_mac, uint32_t sip,
                                              uint32_t dip, uint16_t sport, uint16_t dport,
                                              const void *data, unsigned len) {
    uint8_t buf[2048];
    if (sizeof(struct rte_udp_hdr) + len > sizeof(buf))
        return NULL;
    struct rte_udp_hdr *uh = (struct rte_udp_hdr *)buf;
    uh->src_port = rte_cpu_to_be_16(sport);
    uh->dst_port = rte_cpu_to_be_16(dport);
    uh->dgram_len = rte_cpu_to_be_16((uint16_t)(sizeof(*uh) + len));
    uh->dgram_cksum = 0;
    if (len > 0)
        memcpy(buf + sizeof(*uh), data, len);
    return unit_ip_frame(mp, dst_mac, sip, dip, IPPROTO_UDP, buf, (uint16_t)(sizeof(*uh) + len));
}

/* An ARP request (op RTE_ARP_OP_REQUEST) or reply from sha/sip to tip. */
static inline struct rte_mbuf *unit_arp_frame(struct rte_mempool *mp, uint16_t op,
                                              const struct rte_ether_addr *eth_dst,
                                              const struct rte_ether_addr *sha, uint32_t sip,
                                              const struct rte_ether_addr *tha, uint32_t tip) {
    uint16_t flen = (uint16_t)(sizeof(struct rte_ether_hdr) + sizeof(struct rte_arp_hdr));
    struct rte_mbuf *m = unit_eth_frame(mp, flen, eth_dst, sha, RTE_ETHER_TYPE_ARP);
    if (m == NULL)
        return NULL;
    struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
    struct rte_arp_hdr *a = (struct rte_arp_hdr *)(eth + 1);
    a->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
    a->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    a->arp_hlen = RTE_ETHER_ADDR_LEN;
    a->arp_plen = 4;
    a->arp_opcode = rte_cpu_to_be_16(op);
    rte_ether_addr_copy(sha, &a->arp_data.arp_sha);
    a->arp_data.arp_sip = rte_cpu_to_be_32(sip);
    rte_ether_addr_copy(tha, &a->arp_data.arp_tha);
    a->arp_data.arp_tip = rte_cpu_to_be_32(tip);
    return m;
}

/* A frame lwIP emitted, decoded (host order). */
struct unit_seg {
    const struct rte_ether_hdr *eth;
    const struct rte_ipv4_hdr *ip;
    uint32_t sip, dip;
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags;
    uint16_t win;
    const uint8_t *opt; /* TCP options */
    unsigned optlen;
    const uint8_t *data; /* TCP or UDP payload */
    unsigned len;
};

/* Decode an IPv4 TCP (proto IPPROTO_TCP) or UDP frame held in one segment. */
static inline bool unit_parse(const struct rte_mbuf *m, uint8_t proto, struct unit_seg *s) {
    memset(s, 0, sizeof(*s));
    if (m->nb_segs != 1)
        return false;
    unsigned dlen = rte_pktmbuf_data_len(m);
    const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
    if (dlen < sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr))
        return false;
    s->eth = (const struct rte_ether_hdr *)p;
    if (s->eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))
        return false;
    s->ip = (const struct rte_ipv4_hdr *)(s->eth + 1);
    unsigned ihl = (s->ip->version_ihl & 0x0f) * 4u;
    unsigned tot = rte_be_to_cpu_16(s->ip->total_length);
    if (s->ip->next_proto_id != proto || ihl < 20 || tot < ihl ||
        sizeof(struct rte_ether_hdr) + tot > dlen)
        return false;
    s->sip = rte_be_to_cpu_32(s->ip->src_addr);
    s->dip = rte_be_to_cpu_32(s->ip->dst_addr);
    const uint8_t *l4 = (const uint8_t *)s->ip + ihl;
    unsigned l4len = tot - ihl;
    if (proto == IPPROTO_TCP) {
        const struct rte_tcp_hdr *th = (const struct rte_tcp_hdr *)l4;
        if (l4len < sizeof(*th))
            return false;
        unsigned hlen = (th->data_off >> 4) * 4u;
        if (hlen < sizeof(*th) || hlen > l4len)
            return false;
        s->sport = rte_be_to_cpu_16(th->src_port);
        s->dport = rte_be_to_cpu_16(th->dst_port);
        s->seq = rte_be_to_cpu_32(th->sent_seq);
        s->ack = rte_be_to_cpu_32(th->recv_ack);
        s->flags = th->tcp_flags;
        s->win = rte_be_to_cpu_16(th->rx_win);
        s->opt = l4 + sizeof(*th);
        s->optlen = hlen - sizeof(*th);
        s->data = l4 + hlen;
        s->len = l4len - hlen;
    } else {
        const struct rte_udp_hdr *uh = (const struct rte_udp_hdr *)l4;
        if (l4len < sizeof(*uh) || rte_be_to_cpu_16(uh->dgram_len) != l4len)
            return false;
        s->sport = rte_be_to_cpu_16(uh->src_port);
        s->dport = rte_be_to_cpu_16(uh->dst_port);
        s->data = l4 + sizeof(*uh);
        s->len = l4len - sizeof(*uh);
    }
    return true;
}

/* What a NIC does with a frame marked by dpn_cksum_tx_prepare: the IP
 * checksum from scratch, the L4 checksum as the complement of the sum over
 * the L4 bytes seeded with the pseudo-header sum found in its field. */
static inline void unit_nic_tx_finish(struct rte_mbuf *m) {
    struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, m->l2_len);
    if (m->ol_flags & RTE_MBUF_F_TX_IP_CKSUM) {
        ip->hdr_checksum = 0;
        ip->hdr_checksum = rte_ipv4_cksum(ip);
    }
    uint8_t *l4 = (uint8_t *)ip + m->l3_len;
    uint16_t l4len = (uint16_t)(rte_be_to_cpu_16(ip->total_length) - m->l3_len);
    uint64_t l4f = m->ol_flags & RTE_MBUF_F_TX_L4_MASK;
    if (l4f == RTE_MBUF_F_TX_TCP_CKSUM || l4f == RTE_MBUF_F_TX_UDP_CKSUM) {
        uint16_t c = (uint16_t)~rte_raw_cksum(l4, l4len);
        if (c == 0 && l4f == RTE_MBUF_F_TX_UDP_CKSUM)
            c = 0xffff;
        memcpy(l4 + (l4f == RTE_MBUF_F_TX_TCP_CKSUM ? 16 : 6), &c, sizeof(c));
    }
}

/* Run a suite in this process (one worker, so no fork), then close the
 * worker; exit status for main(). */
static inline int unit_run(struct dpn_worker *w, Suite *suite) {
    SRunner *sr = srunner_create(suite);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    dpn_close(w);
    return failed == 0 ? 0 : 1;
}

#endif
