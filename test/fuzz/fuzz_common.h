/* Shared by the libFuzzer harnesses (test/fuzz/fuzz_*.c): one worker per
 * process on a net_null port that receives nothing (as the unit tests, whose
 * frame builders this reuses), frames built from fuzz input, the record
 * format of the inputs, and the checks that abort() when something leaked.
 *
 * Every fuzzed frame lives in a malloc'ed buffer attached to an mbuf of the
 * worker's pool as an external buffer that ends exactly where the frame ends,
 * so AddressSanitizer reports any read past a frame (in hugepage memory it
 * would go unnoticed). Freeing the mbuf frees the buffer. */
#ifndef DPNET_TEST_FUZZ_COMMON_H
#define DPNET_TEST_FUZZ_COMMON_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_log.h>
#include <rte_mbuf.h>

#include "lwip/memp.h"
#include "lwip/priv/tcp_priv.h"

#include "tcp_tw.h"
#include "lwip/stats.h"
#include "lwip/tcp.h"

#include "unit_eal.h"

/* The end of a run found a broken invariant: libFuzzer saves the input. */
#define FZ_DIE(...)                                                                                \
    do {                                                                                           \
        fprintf(stderr, "fuzz: " __VA_ARGS__);                                                     \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

/* stack/init.c does not free the EAL argument vectors it builds (once per
 * process): not the leaks libFuzzer's leak detection is here for. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) {
    return "leak:dpn_setup_eal\n";
}

/* ---- input records ----
 * An input is a sequence of records [kind][len hi][len lo][len bytes]; the
 * length is masked to 11 bits (frames up to 2047 bytes, longer than any
 * MTU allows) and cut at the end of the input, as lwIP's own multi-packet
 * fuzzer does. What kind means is each harness's business. */
struct fz_rec {
    uint8_t kind;
    const uint8_t *data;
    size_t len;
};

static inline bool fz_next(const uint8_t **p, size_t *n, struct fz_rec *r) {
    if (*n < 3)
        return false;
    r->kind = (*p)[0];
    size_t len = ((size_t)(*p)[1] << 8 | (*p)[2]) & 0x7ff;
    *p += 3;
    *n -= 3;
    if (len > *n)
        len = *n;
    r->data = *p;
    r->len = len;
    *p += len;
    *n -= len;
    return true;
}

/* Byte i of a record, 0 past its end (short records still mean something). */
static inline uint8_t fz_byte(const struct fz_rec *r, size_t i) {
    return i < r->len ? r->data[i] : 0;
}

static inline uint32_t fz_be32(const struct fz_rec *r, size_t i) {
    return (uint32_t)fz_byte(r, i) << 24 | (uint32_t)fz_byte(r, i + 1) << 16 |
           (uint32_t)fz_byte(r, i + 2) << 8 | fz_byte(r, i + 3);
}

static inline uint16_t fz_be16(const struct fz_rec *r, size_t i) {
    return (uint16_t)(fz_byte(r, i) << 8 | fz_byte(r, i + 1));
}

/* ---- frames ---- */

static void fz_ext_free(void *addr, void *opaque) {
    free(addr);
    free(opaque);
}

/* Bytes after each frame. lwIP 2.1.3's tcp_parseopt reads an option's
 * length byte before checking that it lies within the TCP header: one byte
 * past the header when the last option byte is a kind >= 2, past the frame
 * when there is no payload. In an mbuf that byte is always there (stale
 * data); here it is one zero byte, so this known lwIP bug does not hide
 * everything else. Any read further than that is reported. */
#define FZ_TAILROOM 1

/* One segment: len bytes after a normal headroom, at the end of a malloc'ed
 * buffer (+ FZ_TAILROOM). NULL when the pool is empty. */
static inline struct rte_mbuf *fz_seg(struct rte_mempool *mp, const uint8_t *data, uint16_t len) {
    struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
    if (m == NULL)
        return NULL;
    uint16_t room = (uint16_t)(RTE_PKTMBUF_HEADROOM + len + FZ_TAILROOM);
    uint8_t *buf = calloc(1, room);
    struct rte_mbuf_ext_shared_info *sh = malloc(sizeof(*sh));
    if (buf == NULL || sh == NULL)
        FZ_DIE("out of memory");
    sh->free_cb = fz_ext_free;
    sh->fcb_opaque = sh;
    rte_mbuf_ext_refcnt_set(sh, 1);
    rte_pktmbuf_attach_extbuf(m, buf, RTE_BAD_IOVA, room, sh);
    m->data_off = RTE_PKTMBUF_HEADROOM;
    if (len > 0)
        memcpy(buf + RTE_PKTMBUF_HEADROOM, data, len);
    m->data_len = len;
    m->pkt_len = len;
    return m;
}

/* Bytes a scattered frame's first segment holds at least: Ethernet and the
 * longest IPv4 and TCP headers. A PMD scatters at its buffer size, never
 * inside the headers, and lwIP 2.1.3 relies on that (icmp_send_response
 * copies 28 bytes from the first pbuf whatever its length). */
#define FZ_FIRST_SEG (RTE_ETHER_HDR_LEN + 60 + 60)

/* A received frame of len bytes in nseg segments (a PMD with scatter RX):
 * FZ_FIRST_SEG bytes or more, then the rest in even parts (odd lengths
 * included), with the RX checksum flags ol (RTE_MBUF_F_RX_*). */
static inline struct rte_mbuf *fz_frame(struct rte_mempool *mp, const uint8_t *data, size_t len,
                                        unsigned nseg, uint64_t ol) {
    if (nseg < 1 || len < FZ_FIRST_SEG + nseg)
        nseg = 1;
    size_t first = nseg == 1 ? len : RTE_MAX((size_t)FZ_FIRST_SEG, len / nseg);
    struct rte_mbuf *head = NULL, *tail = NULL;
    for (unsigned i = 0; i < nseg; i++) {
        size_t rest = len - first;
        size_t a = i == 0 ? 0 : first + rest * (i - 1) / (nseg - 1);
        size_t b = i == 0 ? first : first + rest * i / (nseg - 1);
        struct rte_mbuf *m = fz_seg(mp, data + a, (uint16_t)(b - a));
        if (m == NULL) {
            rte_pktmbuf_free(head);
            return NULL;
        }
        if (head == NULL) {
            head = m;
        } else {
            tail->next = m;
            head->nb_segs++;
            head->pkt_len += m->data_len;
        }
        tail = m;
    }
    head->ol_flags |= ol;
    return head;
}

/* Recompute the IPv4 header checksum and the TCP/UDP checksum of a flat
 * frame where its lengths allow, so that mutated frames get past the
 * checksum check and into lwIP. */
static inline void fz_fix_cksums(uint8_t *f, size_t len) {
    if (len < RTE_ETHER_HDR_LEN + 20 || f[12] != 0x08 || f[13] != 0x00)
        return;
    struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(f + RTE_ETHER_HDR_LEN);
    size_t ihl = (ip->version_ihl & 0xf) * 4u;
    if (ihl < 20 || RTE_ETHER_HDR_LEN + ihl > len)
        return;
    ip->hdr_checksum = 0;
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    size_t tot = rte_be_to_cpu_16(ip->total_length);
    if (tot < ihl || RTE_ETHER_HDR_LEN + tot > len)
        return;
    uint8_t *l4 = (uint8_t *)ip + ihl;
    size_t l4len = tot - ihl;
    if (ip->next_proto_id == IPPROTO_TCP && l4len >= 20) {
        memset(l4 + 16, 0, 2);
        uint16_t c = rte_ipv4_udptcp_cksum(ip, l4);
        memcpy(l4 + 16, &c, 2);
    } else if (ip->next_proto_id == IPPROTO_UDP && l4len >= 8) {
        memset(l4 + 6, 0, 2);
        uint16_t c = rte_ipv4_udptcp_cksum(ip, l4);
        memcpy(l4 + 6, &c, 2);
    }
}

/* Ethernet + IPv4 + TCP from sip:sport to us (dport); returns the length
 * written to f (room for 14 + 20 + 60 + dlen bytes). Checksums are right. */
static inline size_t fz_tcp(uint8_t *f, const struct rte_ether_addr *our_mac, uint32_t sip,
                            uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack,
                            uint8_t flags, uint16_t win, const uint8_t *opt, size_t optlen,
                            const uint8_t *data, size_t dlen) {
    size_t hlen = 20 + ((optlen + 3) & ~(size_t)3);
    size_t tot = 20 + hlen + dlen;
    memset(f, 0, RTE_ETHER_HDR_LEN + 20 + hlen);
    struct rte_ether_hdr *eth = (struct rte_ether_hdr *)f;
    rte_ether_addr_copy(our_mac, &eth->dst_addr);
    rte_ether_addr_copy(&unit_peer_mac, &eth->src_addr);
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
    ip->version_ihl = 0x45;
    ip->total_length = rte_cpu_to_be_16((uint16_t)tot);
    ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_TCP;
    ip->src_addr = rte_cpu_to_be_32(sip);
    ip->dst_addr = rte_cpu_to_be_32(UNIT_LOCAL_IP);
    struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(ip + 1);
    th->src_port = rte_cpu_to_be_16(sport);
    th->dst_port = rte_cpu_to_be_16(dport);
    th->sent_seq = rte_cpu_to_be_32(seq);
    th->recv_ack = rte_cpu_to_be_32(ack);
    th->data_off = (uint8_t)((hlen / 4) << 4);
    th->tcp_flags = flags;
    th->rx_win = rte_cpu_to_be_16(win);
    if (optlen > 0)
        memcpy(th + 1, opt, optlen);
    if (dlen > 0)
        memcpy((uint8_t *)th + hlen, data, dlen);
    fz_fix_cksums(f, RTE_ETHER_HDR_LEN + tot);
    return RTE_ETHER_HDR_LEN + tot;
}

/* ---- the worker ---- */

/* dpn_init on a net_null port without RX, quiet, in memory; the main lcore
 * may run on either core (other builds share the machine). Exits on failure. */
static inline struct dpn_worker *fz_init(const char *prog) {
    static char a_pci[] = "--no-pci", a_mem[] = "--in-memory", a_n[] = "-n", a_1[] = "1",
                a_lc[] = "--lcores=0@(0-1)", a_log[] = "--log-level=*:error",
                a_tel[] = "--no-telemetry", a_vdev[] = "--vdev=net_null0,no-rx=1", a_sep[] = "--",
                a_ip[] = "--ip", a_ipv[] = "10.0.0.2/24", a_poll[] = "--poll", a_busy[] = "busy";
    static char name[64];
    static char *args[20];
    snprintf(name, sizeof(name), "%s", prog);
    char *v[] = {name,   a_pci, a_mem, a_n,   a_1,    a_lc,   a_log, a_tel,
                 a_vdev, a_sep, a_ip,  a_ipv, a_poll, a_busy, NULL};
    memcpy(args, v, sizeof(v));
    int argc = (int)(sizeof(v) / sizeof(v[0])) - 1;
    char **argv = args;
    struct dpn_worker *w = NULL;
    int rc = dpn_init(&argc, &argv, &w);
    if (rc != 0 || w == NULL) {
        fprintf(stderr, "%s: dpn_init failed: %d (%s)\n", prog, rc, dpn_strerror(rc));
        exit(1);
    }
    rte_log_set_global_level(RTE_LOG_ERR); /* dpnetd's INFO lines on every attach/bind */
    unit_tx_drop(w);                       /* the gratuitous ARP */
    return w;
}

/* Teach lwIP the peer's MAC (an ARP request from it for our address). */
static inline void fz_learn_peer(struct dpn_worker *w) {
    struct rte_ether_addr bcast = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, zero = {{0}};
    struct rte_mbuf *m = unit_arp_frame(w->pool, RTE_ARP_OP_REQUEST, &bcast, &unit_peer_mac,
                                        UNIT_PEER_IP, &zero, UNIT_LOCAL_IP);
    if (m == NULL)
        FZ_DIE("no mbuf for the peer's ARP request");
    dpn_rx_burst(w, &m, 1);
    if (w->tx_n != 1)
        FZ_DIE("lwIP did not answer the peer's ARP request (%u frames)", w->tx_n);
    unit_tx_drop(w);
}

/* Abort every TCP pcb lwIP still has (those the API let go of included). */
static inline void fz_tcp_abort_all(struct dpn_worker *w) {
    dpn_tcp_close_all(w, true);
    for (unsigned i = 0; tcp_active_pcbs != NULL; i++) {
        if (i > MEMP_NUM_TCP_PCB)
            FZ_DIE("tcp_abort does not remove pcb in state %d", tcp_active_pcbs->state);
        tcp_abort(tcp_active_pcbs);
    }
    for (unsigned i = 0; tcp_tw_pcbs != NULL; i++) {
        if (i > MEMP_NUM_TCP_PCB)
            FZ_DIE("tcp_abort does not remove TIME_WAIT pcb");
        tcp_abort(tcp_tw_pcbs);
    }
    unit_tx_drop(w);
    dpn_tw_clear(w->tw); /* TIME_WAIT lives outside lwIP (tcp_tw.h) */
}

/* What must be back at its baseline once all state is gone. */
struct fz_base {
    unsigned mbufs;
    mem_size_t heap;
    unsigned tcp_pcb, udp_pcb;
};

static inline void fz_base_take(const struct dpn_worker *w, struct fz_base *b) {
    b->mbufs = dpn_mbufs_free(w);
    b->heap = lwip_stats.mem.used;
    b->tcp_pcb = lwip_stats.memp[MEMP_TCP_PCB]->used;
    b->udp_pcb = lwip_stats.memp[MEMP_UDP_PCB]->used;
}

static inline void fz_base_check(const struct dpn_worker *w, const struct fz_base *b) {
    if (w->st.conns_open != 0 || w->conn_open != NULL)
        FZ_DIE("%" PRIu64 " connection objects left open", w->st.conns_open);
    if (dpn_mbufs_free(w) != b->mbufs)
        FZ_DIE("mbuf leak: %u free, %u at the baseline", dpn_mbufs_free(w), b->mbufs);
    if (lwip_stats.memp[MEMP_TCP_PCB]->used != b->tcp_pcb)
        FZ_DIE("tcp pcbs: %u in use, %u at the baseline",
               (unsigned)lwip_stats.memp[MEMP_TCP_PCB]->used, b->tcp_pcb);
    if (lwip_stats.memp[MEMP_UDP_PCB]->used != b->udp_pcb)
        FZ_DIE("udp pcbs: %u in use, %u at the baseline",
               (unsigned)lwip_stats.memp[MEMP_UDP_PCB]->used, b->udp_pcb);
    if (lwip_stats.memp[MEMP_TCP_SEG]->used != 0)
        FZ_DIE("%u TCP segments leaked", (unsigned)lwip_stats.memp[MEMP_TCP_SEG]->used);
    if (lwip_stats.memp[MEMP_PBUF]->used != 0)
        FZ_DIE("%u PBUF_REF/ROM pbufs leaked", (unsigned)lwip_stats.memp[MEMP_PBUF]->used);
    if (lwip_stats.memp[MEMP_PBUF_POOL]->used != 0)
        FZ_DIE("%u pool pbufs leaked", (unsigned)lwip_stats.memp[MEMP_PBUF_POOL]->used);
    /* A freed mbuf must come back whole: clearing an external buffer's
     * flag before the free once left one pointing at the harness's small
     * buffer, and the next SYN-ACK did not fit (UDP echo in place). */
    struct rte_mbuf *t = rte_pktmbuf_alloc(w->pool);
    if (t == NULL || !RTE_MBUF_DIRECT(t) || t->buf_len != rte_pktmbuf_data_room_size(w->pool))
        FZ_DIE("a freed mbuf came back broken");
    rte_pktmbuf_free(t);
    if (lwip_stats.mem.used != b->heap)
        FZ_DIE("lwIP heap: %u bytes in use, %u at the baseline", (unsigned)lwip_stats.mem.used,
               (unsigned)b->heap);
}

#endif
