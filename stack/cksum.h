/* Receive checksum verification and transmit offload preparation.
 * lwIP's own checks are off on our netif (per-netif checksum control) so each
 * frame is checked once: by the NIC when its ol_flags say so, here otherwise. */
#ifndef DPNET_CKSUM_H
#define DPNET_CKSUM_H

#include <stdbool.h>
#include <string.h>

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>
#include <rte_udp.h>

static inline uint16_t dpn_cksum_fold(uint32_t sum) {
    sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)((sum & 0xffff) + (sum >> 16));
}

/* The IPv4 header checksum of ip (its hdr_checksum field 0), as
 * rte_ipv4_cksum gives it, and the pseudo-header's folded sum for its
 * TCP or UDP payload, as rte_ipv4_phdr_cksum(ip, 0) gives it. DPDK
 * 22.11 adds these 16 bits at a time in a loop: a tenth of a frame's
 * build time on the per-packet path. 32-bit words give the same sum
 * (RFC 1071). */
static inline uint16_t dpn_ipv4_cksum(const struct rte_ipv4_hdr *ip) {
    const uint8_t *p = (const uint8_t *)ip;
    size_t len = (size_t)(ip->version_ihl & 0x0f) * 4;
    uint64_t s = 0;
    for (size_t i = 0; i + 4 <= len; i += 4) {
        uint32_t x;
        memcpy(&x, p + i, 4);
        s += x;
    }
    s = (s & 0xffffffffu) + (s >> 32);
    s = (s & 0xffffffffu) + (s >> 32);
    return (uint16_t)~dpn_cksum_fold((uint32_t)s);
}

static inline uint16_t dpn_ipv4_phdr_sum(const struct rte_ipv4_hdr *ip) {
    uint16_t l4len = (uint16_t)(rte_be_to_cpu_16(ip->total_length) - (ip->version_ihl & 0x0f) * 4);
    uint64_t s = (uint64_t)ip->src_addr + ip->dst_addr +
                 rte_cpu_to_be_16((uint16_t)ip->next_proto_id) + rte_cpu_to_be_16(l4len);
    s = (s & 0xffffffffu) + (s >> 32);
    return dpn_cksum_fold((uint32_t)s);
}

/* The folded, not complemented, one's complement sum of len bytes, as
 * rte_raw_cksum returns it, 5-10x faster (cksum.c). dpn_raw_cksum is the
 * best of the two for this CPU; both are exported for the tests. */
uint16_t dpn_raw_cksum(const void *buf, size_t len);
uint16_t dpn_raw_cksum_c(const void *buf, size_t len);
uint16_t dpn_raw_cksum_avx2(const void *buf, size_t len);

/* One's complement sum of len bytes from offset off of a segment chain.
 * Each segment's sum is folded, and byte-swapped when the segment starts at
 * an odd position of the range (DPDK 22.11's rte_raw_cksum_mbuf loses the
 * carry there). */
static inline uint16_t dpn_cksum_range(const struct rte_mbuf *m, uint32_t off, uint32_t len) {
    uint32_t sum = 0, pos = 0;
    while (m != NULL && off >= m->data_len) {
        off -= m->data_len;
        m = m->next;
    }
    for (; m != NULL && pos < len; m = m->next, off = 0) {
        uint32_t n = RTE_MIN((uint32_t)m->data_len - off, len - pos);
        uint16_t part = dpn_raw_cksum(rte_pktmbuf_mtod_offset(m, const char *, off), n);
        if (pos & 1)
            part = (uint16_t)((part >> 8) | (part << 8));
        sum += part;
        pos += n;
    }
    return dpn_cksum_fold(sum);
}

/* Software check of one frame: false only when an IPv4, TCP or UDP checksum
 * is present and wrong. Frames too malformed to check are passed on: lwIP
 * drops them on their lengths. */
static inline bool dpn_cksum_verify_sw(const struct rte_mbuf *m, bool ip_good, bool l4_good) {
    uint16_t dlen = rte_pktmbuf_data_len(m);
    const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
    if (dlen < sizeof(*eth) + sizeof(struct rte_ipv4_hdr) ||
        eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))
        return true;
    const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(eth + 1);
    uint16_t ihl = (uint16_t)((ip->version_ihl & 0x0f) * 4);
    if (ihl < sizeof(*ip) || sizeof(*eth) + ihl > dlen)
        return true;
    if (!ip_good && dpn_ipv4_cksum(ip) != 0)
        return false;
    if (l4_good)
        return true;
    uint16_t tot = rte_be_to_cpu_16(ip->total_length);
    if (tot < ihl || sizeof(*eth) + (uint32_t)tot > rte_pktmbuf_pkt_len(m))
        return true;
    if (ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_OFFSET_MASK | RTE_IPV4_HDR_MF_FLAG))
        return true; /* fragments are dropped by lwIP (no reassembly) */
    uint16_t l4len = (uint16_t)(tot - ihl);
    uint16_t l4off = (uint16_t)(sizeof(*eth) + ihl);
    if (ip->next_proto_id == IPPROTO_TCP) {
        if (l4len < sizeof(struct rte_tcp_hdr))
            return true;
    } else if (ip->next_proto_id == IPPROTO_UDP) {
        if (l4len < sizeof(struct rte_udp_hdr) || sizeof(*eth) + ihl + 8u > dlen)
            return true;
        const struct rte_udp_hdr *uh = (const struct rte_udp_hdr *)((const char *)ip + ihl);
        if (uh->dgram_cksum == 0)
            return true; /* IPv4 UDP without checksum */
    } else {
        return true; /* ICMP: lwIP checks it */
    }
    uint32_t sum = (uint32_t)dpn_cksum_range(m, l4off, l4len) + dpn_ipv4_phdr_sum(ip);
    return dpn_cksum_fold(sum) == 0xffff;
}

/* Per-frame decision from the NIC's flags, software where it said nothing
 * (TCP and UDP not at all when trust_l4: port.csum trust or none). */
static inline bool dpn_cksum_rx_check(const struct rte_mbuf *m, bool trust_l4) {
    uint64_t ipf = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
    uint64_t l4f = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
    if (ipf == RTE_MBUF_F_RX_IP_CKSUM_BAD || l4f == RTE_MBUF_F_RX_L4_CKSUM_BAD)
        return false;
    /* NONE: the checksum field is not valid but the data was verified
     * (virtio/vhost): as good as GOOD. */
    bool ip_ok = ipf == RTE_MBUF_F_RX_IP_CKSUM_GOOD || ipf == RTE_MBUF_F_RX_IP_CKSUM_NONE;
    bool l4_ok =
        l4f == RTE_MBUF_F_RX_L4_CKSUM_GOOD || l4f == RTE_MBUF_F_RX_L4_CKSUM_NONE || trust_l4;
    if (ip_ok && l4_ok)
        return true;
    return dpn_cksum_verify_sw(m, ip_ok, l4_ok);
}

static inline bool dpn_cksum_rx_ok(const struct rte_mbuf *m) {
    return dpn_cksum_rx_check(m, false);
}

/* Mark a frame built by lwIP for the checksum offloads enabled (lwIP left
 * those checksums at zero). TCP/UDP offload needs the pseudo-header sum in
 * the checksum field. */
static inline void dpn_cksum_tx_prepare(struct rte_mbuf *m, bool ip_hw, bool tcp_hw, bool udp_hw) {
    struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
    if (eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) || !ip_hw)
        return;
    struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
    m->l2_len = sizeof(*eth);
    m->l3_len = (uint64_t)((ip->version_ihl & 0x0f) * 4);
    m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
    ip->hdr_checksum = 0;
    if (ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_OFFSET_MASK | RTE_IPV4_HDR_MF_FLAG))
        return;
    void *l4 = (char *)ip + m->l3_len;
    if (ip->next_proto_id == IPPROTO_TCP && tcp_hw) {
        m->ol_flags |= RTE_MBUF_F_TX_TCP_CKSUM;
        ((struct rte_tcp_hdr *)l4)->cksum = rte_ipv4_phdr_cksum(ip, m->ol_flags);
    } else if (ip->next_proto_id == IPPROTO_UDP && udp_hw) {
        m->ol_flags |= RTE_MBUF_F_TX_UDP_CKSUM;
        ((struct rte_udp_hdr *)l4)->dgram_cksum = rte_ipv4_phdr_cksum(ip, m->ol_flags);
    }
}

#endif
