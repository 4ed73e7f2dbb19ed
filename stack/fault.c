/* Fault injection (see fault.h). Test machinery that sits on the data path
 * only when switched on: the worker checks one pointer per burst. Seeded
 * xorshift PRNG, so a failing run can be replayed with its seed. */
#include <string.h>

#include <rte_cycles.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "fault.h"
#include "log.h"
#include "worker.h"

#define HOLD 4096           /* frames held for delay per direction; beyond that: dropped */
#define REORDER_MAX_US 1000 /* a frame held to be overtaken waits at most this */

struct held {
    struct rte_mbuf *m;
    uint64_t due;
};

struct fault_dir {
    struct held q[HOLD];
    unsigned head, n;
    struct rte_mbuf *late; /* held so that the next frame overtakes it */
    uint64_t late_since;
};

struct dpn_fault {
    struct dpn_fault_spec s;
    uint64_t rng;
    uint64_t us; /* TSC ticks per microsecond */
    uint64_t down_from, down_to;
    struct fault_dir rx, tx;
    struct dpn_fault_counters c;
};

static inline uint64_t next_rand(struct dpn_fault *f) {
    uint64_t x = f->rng; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    f->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static inline bool chance(struct dpn_fault *f, double p) {
    return p > 0 && (double)(next_rand(f) >> 11) * 0x1.0p-53 < p;
}

int dpn_fault_init(struct dpn_worker *w) {
    const struct dpn_fault_spec *s = &w->cfg.fault;
    if (!s->on)
        return 0;
    struct dpn_fault *f = dpn_zalloc(sizeof(*f));
    if (f == NULL)
        return -DPN_ENOMEM;
    f->s = *s;
    f->rng = s->seed * 0x9E3779B97F4A7C15ull + 1;
    f->us = rte_get_tsc_hz() / 1000000;
    w->fault = f; /* the down period is timed from the first frame received */
    DPN_LOG(WARNING, stack,
            "fault injection ON (seed %" PRIu64 ", %s%s): drop %.3f dup %.3f reorder %.3f "
            "corrupt %.3f delay %u+-%u us, down %u ms after %u ms",
            s->seed, s->rx ? "rx" : "", s->tx ? "tx" : "", s->drop, s->dup, s->reorder, s->corrupt,
            s->delay_us, s->jitter_us, s->down_for_ms, s->down_at_ms);
    return 0;
}

static void free_dir(struct fault_dir *d) {
    for (unsigned i = 0; i < d->n; i++)
        rte_pktmbuf_free(d->q[(d->head + i) % HOLD].m);
    d->n = 0;
    rte_pktmbuf_free(d->late);
    d->late = NULL;
}

void dpn_fault_fini(struct dpn_worker *w) {
    if (w->fault == NULL)
        return;
    free_dir(&w->fault->rx);
    free_dir(&w->fault->tx);
    dpn_free(w->fault);
    w->fault = NULL;
}

void dpn_fault_counters(const struct dpn_worker *w, struct dpn_fault_counters *c) {
    if (w->fault != NULL)
        *c = w->fault->c;
    else
        memset(c, 0, sizeof(*c));
}

/* One flipped bit after the Ethernet header: checksums must catch it. On RX
 * the NIC's verdict no longer holds; on TX the checksum is finished here,
 * before the flip, as the wire would do it (an offloading PMD would
 * otherwise checksum the corrupted data). A chain carries bytes it shares
 * (zero-copy send: lwIP's copy for retransmission, tx.c), and so does a
 * frame sent in its data's own mbuf: both are corrupted in a private copy. */
static struct rte_mbuf *corrupt(struct dpn_fault *f, struct rte_mbuf *m, bool rx,
                                struct rte_mempool *pool) {
    if (m->nb_segs > 1 || rte_mbuf_refcnt_read(m) > 1) { /* tx.c's in_place too */
        struct rte_mbuf *c = rte_pktmbuf_copy(m, pool, 0, UINT32_MAX);
        if (c == NULL || c->nb_segs > 1) {
            rte_pktmbuf_free(c);
            return m; /* no room for a copy: this one goes through intact */
        }
        c->ol_flags = m->ol_flags;
        c->l2_len = m->l2_len;
        c->l3_len = m->l3_len;
        rte_pktmbuf_free(m);
        m = c;
    }
    uint32_t len = rte_pktmbuf_data_len(m);
    if (len <= RTE_ETHER_HDR_LEN + sizeof(struct rte_ipv4_hdr))
        return m;
    struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, RTE_ETHER_HDR_LEN);
    if (rx) {
        m->ol_flags &= ~(RTE_MBUF_F_RX_IP_CKSUM_MASK | RTE_MBUF_F_RX_L4_CKSUM_MASK);
    } else if (m->ol_flags & (RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_L4_MASK)) {
        uint64_t l4 = m->ol_flags & RTE_MBUF_F_TX_L4_MASK;
        void *l4h = (char *)ip + m->l3_len;
        if (l4 == RTE_MBUF_F_TX_TCP_CKSUM) {
            ((struct rte_tcp_hdr *)l4h)->cksum = 0;
            ((struct rte_tcp_hdr *)l4h)->cksum = rte_ipv4_udptcp_cksum(ip, l4h);
        } else if (l4 == RTE_MBUF_F_TX_UDP_CKSUM) {
            ((struct rte_udp_hdr *)l4h)->dgram_cksum = 0;
            ((struct rte_udp_hdr *)l4h)->dgram_cksum = rte_ipv4_udptcp_cksum(ip, l4h);
        }
        if (m->ol_flags & RTE_MBUF_F_TX_IP_CKSUM) {
            ip->hdr_checksum = 0;
            ip->hdr_checksum = rte_ipv4_cksum(ip);
        }
        m->ol_flags &= ~(RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_L4_MASK | RTE_MBUF_F_TX_IPV4);
    }
    uint32_t off = RTE_ETHER_HDR_LEN + (uint32_t)(next_rand(f) % (len - RTE_ETHER_HDR_LEN));
    rte_pktmbuf_mtod(m, uint8_t *)[off] ^= (uint8_t)(1u << (next_rand(f) % 8));
    f->c.corrupted++;
    return m;
}

struct out {
    struct rte_mbuf **v;
    uint16_t n, cap;
    uint64_t *overflow;
};

static void emit(struct out *o, struct rte_mbuf *m) {
    if (o->n < o->cap) {
        o->v[o->n++] = m;
    } else {
        (*o->overflow)++;
        rte_pktmbuf_free(m);
    }
}

/* After drop/corrupt/dup: the reorder and delay stages. */
static void stage2(struct dpn_fault *f, struct fault_dir *d, struct out *o, struct rte_mbuf *m,
                   uint64_t now) {
    if (d->late == NULL && chance(f, f->s.reorder)) {
        d->late = m;
        d->late_since = now;
        f->c.reordered++;
        return;
    }
    if (f->s.delay_us > 0) {
        if (d->n == HOLD) {
            f->c.dropped++;
            rte_pktmbuf_free(m);
            return;
        }
        int64_t j = f->s.jitter_us ? (int64_t)(next_rand(f) % (2 * f->s.jitter_us + 1)) -
                                         (int64_t)f->s.jitter_us
                                   : 0;
        d->q[(d->head + d->n++) % HOLD] =
            (struct held){.m = m, .due = now + f->us * (uint64_t)((int64_t)f->s.delay_us + j)};
        f->c.delayed++;
    } else {
        emit(o, m);
    }
    if (d->late != NULL) { /* m overtook it */
        struct rte_mbuf *l = d->late;
        d->late = NULL;
        stage2(f, d, o, l, now);
    }
}

static void one(struct dpn_fault *f, struct fault_dir *d, struct out *o, struct rte_mbuf *m,
                bool rx, struct rte_mempool *pool, uint64_t now) {
    if (now >= f->down_from && now < f->down_to) {
        f->c.down_dropped++;
        rte_pktmbuf_free(m);
        return;
    }
    if (chance(f, f->s.drop)) {
        f->c.dropped++;
        rte_pktmbuf_free(m);
        return;
    }
    if (chance(f, f->s.corrupt))
        m = corrupt(f, m, rx, pool);
    if (chance(f, f->s.dup)) {
        struct rte_mbuf *c = rte_pktmbuf_copy(m, pool, 0, UINT32_MAX);
        if (c != NULL) {
            c->ol_flags = m->ol_flags;
            c->l2_len = m->l2_len;
            c->l3_len = m->l3_len;
            f->c.duplicated++;
            stage2(f, d, o, c, now);
        }
    }
    stage2(f, d, o, m, now);
}

static void release(struct dpn_fault *f, struct fault_dir *d, struct out *o, uint64_t now) {
    while (d->n > 0 && d->q[d->head].due <= now) {
        emit(o, d->q[d->head].m);
        d->head = (d->head + 1) % HOLD;
        d->n--;
    }
    if (d->late != NULL && now - d->late_since > f->us * REORDER_MAX_US) {
        struct rte_mbuf *l = d->late;
        d->late = NULL;
        emit(o, l);
    }
}

/* The link-down clock starts with the first TCP frame: the kernel's own
 * chatter (router solicitations, ARP) must not start it early. */
static bool is_tcp(const struct rte_mbuf *m) {
    const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
    return rte_pktmbuf_data_len(m) >= RTE_ETHER_HDR_LEN + 20 && p[12] == 0x08 && p[13] == 0 &&
           p[RTE_ETHER_HDR_LEN + 9] == IPPROTO_TCP;
}

uint16_t dpn_fault_rx(struct dpn_worker *w, struct rte_mbuf **pkts, uint16_t n, uint16_t cap) {
    struct dpn_fault *f = w->fault;
    if (!f->s.rx)
        return n;
    struct rte_mbuf *in[DPN_BURST * 2];
    uint64_t now = rte_rdtsc();
    for (uint16_t i = 0; unlikely(f->down_from == 0) && i < n; i++)
        if (is_tcp(pkts[i])) {
            f->down_from = now + f->us * 1000 * f->s.down_at_ms;
            f->down_to = f->down_from + f->us * 1000 * f->s.down_for_ms;
        }
    memcpy(in, pkts, n * sizeof(*pkts));
    struct out o = {.v = pkts, .n = 0, .cap = cap, .overflow = &f->c.dropped};
    release(f, &f->rx, &o, now);
    for (uint16_t i = 0; i < n; i++)
        one(f, &f->rx, &o, in[i], true, w->pool, now);
    return o.n;
}

void dpn_fault_tx(struct dpn_worker *w) {
    struct dpn_fault *f = w->fault;
    if (!f->s.tx)
        return;
    /* Frames kept back by a full ring had their faults already. */
    struct rte_mbuf *in[DPN_TX_BATCH];
    uint16_t held = w->tx_held, n = (uint16_t)(w->tx_n - held);
    uint64_t now = rte_rdtsc();
    memcpy(in, w->tx_pkts + held, n * sizeof(*in));
    struct out o = {.v = w->tx_pkts, .n = held, .cap = DPN_TX_BATCH, .overflow = &f->c.dropped};
    release(f, &f->tx, &o, now);
    for (uint16_t i = 0; i < n; i++)
        one(f, &f->tx, &o, in[i], false, w->pool, now);
    w->tx_n = o.n;
}
