/* Packet capture, the per-burst part (capture.h): filter, then append a
 * record and the frame's bytes to the ring. No allocation, no lock, no
 * system call: a full ring drops the frame and counts it. */
#include <pcap/pcap.h>

#include <rte_cycles.h>
#include <rte_memcpy.h>

#include "capture.h"

/* len bytes at byte position pos of the ring, wrapping at its end. */
static inline void ring_put(struct dpn_cap_ring *r, uint64_t pos, const void *src, uint32_t len) {
    uint32_t off = (uint32_t)(pos & (DPN_CAP_BYTES - 1)), first = DPN_CAP_BYTES - off;
    if (first >= len) {
        rte_memcpy(r->data + off, src, len);
    } else {
        rte_memcpy(r->data + off, src, first);
        rte_memcpy(r->data, (const uint8_t *)src + first, len - first);
    }
}

/* libpcap's own interpreter of the program its compiler made: loads past
 * the first segment read as a mismatch, never past the buffer. (DPDK
 * 22.11's rte_bpf_convert gets programs with indirect loads wrong, such
 * as tcp[tcpflags]: the interpreter matches nothing, the JIT crashes.) */
static inline bool cap_keep(const struct dpn_cap *c, const struct rte_mbuf *m) {
    return c->ninsns == 0 ||
           bpf_filter((const struct bpf_insn *)c->insns, rte_pktmbuf_mtod(m, const u_char *),
                      m->pkt_len, m->data_len) != 0;
}

void dpn_cap_frames(struct dpn_cap *c, struct rte_mbuf *const *pkts, uint16_t n, uint16_t queue,
                    uint8_t dir) {
    struct dpn_cap_ring *r = c->r;
    uint64_t tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE), head = c->head;
    struct dpn_cap_rec rec = {.tsc = rte_rdtsc(), .queue = queue, .dir = dir};
    for (uint16_t i = 0; i < n; i++) {
        struct rte_mbuf *m = pkts[i];
        if (!cap_keep(c, m))
            continue;
        rec.orig_len = m->pkt_len;
        rec.len = RTE_MIN(m->pkt_len, c->snaplen);
        uint64_t need = RTE_ALIGN_CEIL(sizeof(rec) + rec.len, 8);
        /* The reader's tail is another process's word: one behind or
         * beyond our head reads as a full ring, never as room. */
        if (head - tail > DPN_CAP_BYTES - need) {
            c->dropped++;
            continue;
        }
        ring_put(r, head, &rec, sizeof(rec));
        uint64_t pos = head + sizeof(rec);
        uint32_t left = rec.len;
        for (const struct rte_mbuf *s = m; s != NULL && left > 0; s = s->next) {
            uint32_t k = RTE_MIN((uint32_t)s->data_len, left);
            ring_put(r, pos, rte_pktmbuf_mtod(s, const void *), k);
            pos += k;
            left -= k;
        }
        head += need;
        c->frames++;
    }
    if (head != c->head) {
        c->head = head;
        __atomic_store_n(&r->head, head, __ATOMIC_RELEASE);
    }
    r->frames = c->frames;
    r->dropped = c->dropped;
}
