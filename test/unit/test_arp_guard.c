/* The ARP guard (stack/arp_guard.h). First its decision alone, against a
 * fake lwIP table and a fake clock: lock, probe rounds, failover, records
 * that outlive lwIP's entry, the pinned gateway. Then the whole path in a
 * worker: ARP frames into dpn_rx_burst, lwIP's real table and the probes
 * it sends read back from w->tx_pkts (real time: lock and rounds are
 * waited out, about 4 s in all). */
#include <check.h>
#include <stdlib.h>
#include <time.h>

#include "lwip/etharp.h"
#include "lwip/timeouts.h"

#include "arp_guard.h"
#include "unit_eal.h"

static struct dpn_worker *w;

#define IP(a, b, c, d) rte_cpu_to_be_32(RTE_IPV4(a, b, c, d))
#define T0 1000000ull /* the fake clock starts here (ms) */

static const struct rte_ether_addr M1 = {{0x02, 0, 0, 0, 0, 0x11}};
static const struct rte_ether_addr M2 = {{0x02, 0, 0, 0, 0, 0x22}};
static const struct rte_ether_addr bcast = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
static const struct rte_ether_addr zero = {{0}};

/* ---- the decision against a fake lwIP ---- */

#define FAKE_N 4096
static struct fake {
    uint32_t ip[FAKE_N];
    struct rte_ether_addr mac[FAKE_N];
    unsigned n;
    unsigned probes, bprobes; /* unicast and broadcast requests sent */
    uint32_t last_probe_ip;
    struct rte_ether_addr last_probe_mac;
} F;
static struct dpn_arp_guard G;

static int fake_find(uint32_t ip) {
    for (unsigned i = 0; i < F.n; i++)
        if (F.ip[i] == ip)
            return (int)i;
    return -1;
}

static bool fake_held(void *ctx, uint32_t ip, struct rte_ether_addr *mac) {
    (void)ctx;
    int i = fake_find(ip);
    if (i < 0)
        return false;
    *mac = F.mac[i];
    return true;
}

static void fake_probe(void *ctx, uint32_t ip, const struct rte_ether_addr *mac) {
    (void)ctx;
    F.last_probe_ip = ip;
    if (mac == NULL) {
        F.bprobes++;
        F.last_probe_mac = bcast;
    } else {
        F.probes++;
        F.last_probe_mac = *mac;
    }
}

static const struct dpn_arp_guard_ops fops = {.held = fake_held, .probe = fake_probe};

static void fake_forget(uint32_t ip) {
    int i = fake_find(ip);
    if (i >= 0) {
        F.ip[i] = F.ip[F.n - 1];
        F.mac[i] = F.mac[F.n - 1];
        F.n--;
    }
}

/* A frame through the guard, then what etharp_input does with it when it
 * passes: store the sender when the frame is for us, else update it only
 * when held (ETHARP_FLAG_TRY_HARD / FIND_ONLY). */
static enum dpn_arp_verdict claim(uint32_t ip, const struct rte_ether_addr *mac, bool for_us,
                                  uint64_t now) {
    enum dpn_arp_verdict v = dpn_arp_guard_check(&G, &fops, ip, mac, for_us, now);
    if (v != DPN_ARP_DROP) {
        int i = fake_find(ip);
        if (i < 0 && for_us) {
            ck_assert_uint_lt(F.n, FAKE_N);
            i = (int)F.n++;
            F.ip[i] = ip;
        }
        if (i >= 0)
            F.mac[i] = *mac;
    }
    return v;
}

static bool held_is(uint32_t ip, const struct rte_ether_addr *mac) {
    struct rte_ether_addr m;
    return fake_held(NULL, ip, &m) && rte_is_same_ether_addr(&m, mac);
}

static void fake_reset(void) {
    memset(&F, 0, sizeof(F));
    memset(&G, 0, sizeof(G));
}

#define GW IP(10, 0, 0, 1)

START_TEST(test_first_claim_learned) {
    fake_reset();
    /* Not for us and not held: lwIP ignores it, so do we (no record that
     * could lock out the real owner later). */
    ck_assert_int_eq(claim(GW, &M2, false, T0), DPN_ARP_PASS);
    ck_assert(!held_is(GW, &M2));
    ck_assert_ptr_null(dpn_arp_guard_find(&G, GW));
    /* A request for us: lwIP stores it; the record locks it. */
    ck_assert_int_eq(claim(GW, &M1, true, T0 + 1), DPN_ARP_PASS);
    ck_assert(held_is(GW, &M1));
    const struct dpn_arp_rec *r = dpn_arp_guard_find(&G, GW);
    ck_assert_ptr_nonnull(r);
    ck_assert(rte_is_same_ether_addr(&r->mac, &M1));
    ck_assert_uint_eq(r->confirmed_ms, T0 + 1);
}
END_TEST

START_TEST(test_locked_for_a_second) {
    fake_reset();
    ck_assert_int_eq(claim(GW, &M1, true, T0), DPN_ARP_PASS);
    /* Gratuitous, reply, request: another MAC within the lock is dropped
     * whatever the frame, and nobody is probed yet. */
    ck_assert_int_eq(claim(GW, &M2, false, T0 + 1), DPN_ARP_DROP);
    ck_assert_int_eq(claim(GW, &M2, true, T0 + 500), DPN_ARP_DROP);
    ck_assert_int_eq(claim(GW, &M2, true, T0 + DPN_ARP_LOCK_MS - 1), DPN_ARP_DROP);
    ck_assert(held_is(GW, &M1));
    ck_assert_uint_eq(F.probes + F.bprobes, 0);
    /* The same MAC passes any time and renews the lock. */
    ck_assert_int_eq(claim(GW, &M1, false, T0 + 900), DPN_ARP_PASS);
    ck_assert_int_eq(claim(GW, &M2, false, T0 + 900 + DPN_ARP_LOCK_MS - 1), DPN_ARP_DROP);
    ck_assert_uint_eq(F.probes, 0);
    /* The claim is remembered: the held MAC is probed when the lock ends. */
    dpn_arp_guard_tick(&G, &fops, T0 + 900 + DPN_ARP_LOCK_MS - 1);
    ck_assert_uint_eq(F.probes, 0);
    dpn_arp_guard_tick(&G, &fops, T0 + 900 + DPN_ARP_LOCK_MS + DPN_ARP_TICK_MS);
    ck_assert_uint_eq(F.probes, 1);
    ck_assert(rte_is_same_ether_addr(&F.last_probe_mac, &M1));
    ck_assert(held_is(GW, &M1));
}
END_TEST

START_TEST(test_after_the_lock_the_owner_is_probed) {
    fake_reset();
    ck_assert_int_eq(claim(GW, &M1, true, T0), DPN_ARP_PASS);
    uint64_t t = T0 + DPN_ARP_LOCK_MS;
    /* One flood frame later than the lock does not move it: it starts a
     * probe round to the MAC held. */
    ck_assert_int_eq(claim(GW, &M2, false, t), DPN_ARP_DROP);
    ck_assert(held_is(GW, &M1));
    ck_assert_uint_eq(F.probes, 1);
    ck_assert_uint_eq(F.last_probe_ip, GW);
    ck_assert(rte_is_same_ether_addr(&F.last_probe_mac, &M1));
    ck_assert_uint_eq(G.busy, 1);
    /* More claims during the round: dropped, no extra probe. */
    for (int i = 1; i < 100; i++)
        ck_assert_int_eq(claim(GW, &M2, i & 1, t + (uint64_t)i), DPN_ARP_DROP);
    ck_assert_uint_eq(F.probes, 1);
    /* Ticks before DPN_ARP_PROBE_MS send nothing. */
    dpn_arp_guard_tick(&G, &fops, t + DPN_ARP_PROBE_MS - 1);
    ck_assert_uint_eq(F.probes, 1);
    /* The owner answers: the round ends and the lock starts again. */
    ck_assert_int_eq(claim(GW, &M1, true, t + 150), DPN_ARP_PASS);
    ck_assert_uint_eq(G.busy, 0);
    dpn_arp_guard_tick(&G, &fops, t + 5000);
    ck_assert_uint_eq(F.probes, 1);
    ck_assert_int_eq(claim(GW, &M2, false, t + 150 + DPN_ARP_LOCK_MS - 1), DPN_ARP_DROP);
    ck_assert_uint_eq(F.probes, 1);
    ck_assert_int_eq(claim(GW, &M2, false, t + 150 + DPN_ARP_LOCK_MS), DPN_ARP_DROP);
    ck_assert_uint_eq(F.probes, 2);
    ck_assert(held_is(GW, &M1));
}
END_TEST

START_TEST(test_flood_never_moves_an_answering_owner) {
    fake_reset();
    ck_assert_int_eq(claim(GW, &M1, true, T0), DPN_ARP_PASS);
    /* 20 s of a flood, a claim every ms (gratuitous requests and replies,
     * for us or not); the owner answers each probe 3 ms later. */
    unsigned answered = 0, last = 0;
    uint64_t answer_at = 0;
    for (uint64_t t = T0 + 1; t < T0 + 20000; t++) {
        dpn_arp_guard_tick(&G, &fops, t);
        ck_assert_int_eq(claim(GW, &M2, t % 3 == 0, t), DPN_ARP_DROP);
        if (F.probes != last) {
            last = F.probes;
            answer_at = t + 3;
        }
        if (answer_at == t) {
            ck_assert_int_eq(claim(GW, &M1, true, t), DPN_ARP_PASS);
            answered++;
        }
        ck_assert(held_is(GW, &M1));
    }
    ck_assert_uint_eq(F.bprobes, 0);
    /* A probe about once per lock time, each answered. */
    ck_assert_uint_ge(F.probes, 15);
    ck_assert_uint_le(F.probes, 21);
    ck_assert_uint_eq(answered, F.probes);
}
END_TEST

START_TEST(test_failover_after_a_silent_round) {
    fake_reset();
    ck_assert_int_eq(claim(GW, &M1, true, T0), DPN_ARP_PASS);
    uint64_t t = T0 + 10000;
    /* The new owner announces itself once; nothing else comes. */
    ck_assert_int_eq(claim(GW, &M2, false, t), DPN_ARP_DROP);
    ck_assert_uint_eq(F.probes, 1);
    uint64_t dead_at = 0;
    for (uint64_t now = t; now < t + 5000 && dead_at == 0; now += 10) {
        dpn_arp_guard_tick(&G, &fops, now);
        if (F.bprobes > 0)
            dead_at = now;
    }
    ck_assert_uint_eq(F.probes, DPN_ARP_PROBES);
    ck_assert_uint_eq(F.bprobes, 1); /* "who has GW?", to everyone */
    ck_assert(rte_is_same_ether_addr(&F.last_probe_mac, &bcast));
    ck_assert_uint_ge(dead_at - t, (uint64_t)DPN_ARP_PROBES * DPN_ARP_PROBE_MS);
    ck_assert_uint_le(dead_at - t,
                      (uint64_t)DPN_ARP_PROBES * DPN_ARP_PROBE_MS + 2 * DPN_ARP_TICK_MS);
    ck_assert(held_is(GW, &M1));
    ck_assert_uint_eq(G.busy, 0);
    /* The new owner's answer takes the entry, and is locked in turn. */
    ck_assert_int_eq(claim(GW, &M2, true, dead_at + 2), DPN_ARP_MOVED);
    ck_assert(held_is(GW, &M2));
    ck_assert_int_eq(claim(GW, &M1, false, dead_at + 3), DPN_ARP_DROP);
    ck_assert(held_is(GW, &M2));
}
END_TEST

START_TEST(test_failover_announced_once_within_the_lock) {
    fake_reset();
    ck_assert_int_eq(claim(GW, &M1, true, T0), DPN_ARP_PASS);
    /* The new owner's only announcement comes 100 ms after the old one
     * was last heard: dropped, but the round follows the lock. */
    ck_assert_int_eq(claim(GW, &M2, false, T0 + 100), DPN_ARP_DROP);
    uint64_t dead_at = 0;
    for (uint64_t now = T0 + 100; now < T0 + 10000 && dead_at == 0; now += 10) {
        dpn_arp_guard_tick(&G, &fops, now);
        if (F.bprobes > 0)
            dead_at = now;
    }
    ck_assert_uint_eq(F.probes, DPN_ARP_PROBES);
    ck_assert_uint_ge(dead_at, T0 + DPN_ARP_LOCK_MS + DPN_ARP_PROBES * DPN_ARP_PROBE_MS);
    ck_assert_uint_le(dead_at, T0 + DPN_ARP_LOCK_MS + DPN_ARP_PROBES * DPN_ARP_PROBE_MS +
                                   3 * DPN_ARP_TICK_MS);
    ck_assert_int_eq(claim(GW, &M2, true, dead_at + 1), DPN_ARP_MOVED);
    ck_assert(held_is(GW, &M2));
    ck_assert_uint_eq(G.busy, 0);
}
END_TEST

START_TEST(test_a_late_answer_revives_the_owner) {
    fake_reset();
    ck_assert_int_eq(claim(GW, &M1, true, T0), DPN_ARP_PASS);
    uint64_t t = T0 + 10000;
    ck_assert_int_eq(claim(GW, &M2, false, t), DPN_ARP_DROP);
    for (uint64_t now = t; now < t + 3000; now += 10)
        dpn_arp_guard_tick(&G, &fops, now);
    ck_assert_uint_eq(F.bprobes, 1);
    /* The old owner answers the broadcast first: it keeps the entry. */
    ck_assert_int_eq(claim(GW, &M1, true, t + 3001), DPN_ARP_PASS);
    ck_assert_int_eq(claim(GW, &M2, true, t + 3002), DPN_ARP_DROP);
    ck_assert(held_is(GW, &M1));
}
END_TEST

START_TEST(test_record_outlives_lwip_entry) {
    fake_reset();
    ck_assert_int_eq(claim(GW, &M1, true, T0), DPN_ARP_PASS);
    /* lwIP loses its entry (aged out, or evicted by a flood of requests
     * from other addresses) and asks again: a false answer that comes
     * first does not take the neighbor while the record stands. */
    fake_forget(GW);
    ck_assert_int_eq(claim(GW, &M2, true, T0 + 10), DPN_ARP_DROP);
    ck_assert_int_eq(claim(GW, &M2, true, T0 + 5000), DPN_ARP_DROP); /* and probes M1 */
    ck_assert_uint_eq(F.probes, 1);
    ck_assert(rte_is_same_ether_addr(&F.last_probe_mac, &M1));
    ck_assert_int_eq(claim(GW, &M1, true, T0 + 5010), DPN_ARP_PASS);
    ck_assert(held_is(GW, &M1));
    /* A record older than lwIP's ARP_MAXAGE stands for nothing. */
    fake_forget(GW);
    ck_assert_int_eq(claim(GW, &M2, true, T0 + 5010 + DPN_ARP_KEEP_MS), DPN_ARP_PASS);
    ck_assert(held_is(GW, &M2));
}
END_TEST

START_TEST(test_gateway_record_never_evicted) {
    fake_reset();
    G.pin = GW;
    /* Addresses whose records share the gateway's set. */
    uint32_t same[1000];
    unsigned n = 0;
    for (uint32_t h = 2; n < 1000; h++)
        if (dpn_arp_guard_set(IP(10, (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h)) ==
            dpn_arp_guard_set(GW))
            same[n++] = IP(10, (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h);
    ck_assert_int_eq(claim(GW, &M1, true, T0), DPN_ARP_PASS);
    ck_assert_int_eq(claim(same[0], &M1, true, T0), DPN_ARP_PASS);
    /* The others ask for us, long after the lock, one per lock time: the
     * set is refilled many times over. */
    for (unsigned i = 1; i < n; i++) {
        struct rte_ether_addr m = {{0x02, 1, 0, 0, (uint8_t)(i >> 8), (uint8_t)i}};
        ck_assert_int_eq(
            dpn_arp_guard_check(&G, &fops, same[i], &m, true, T0 + (uint64_t)i * DPN_ARP_LOCK_MS),
            DPN_ARP_PASS);
    }
    ck_assert_ptr_null(dpn_arp_guard_find(&G, same[0])); /* the set did churn */
    ck_assert_ptr_nonnull(dpn_arp_guard_find(&G, same[n - 1]));
    const struct dpn_arp_rec *r = dpn_arp_guard_find(&G, GW);
    ck_assert_ptr_nonnull(r);
    ck_assert(rte_is_same_ether_addr(&r->mac, &M1));
    /* The gateway is still held against a claim (lwIP forgot it: the record
     * stands in, it is younger than DPN_ARP_KEEP_MS). */
    fake_forget(GW);
    ck_assert_int_eq(claim(GW, &M2, true, T0 + 2 * DPN_ARP_LOCK_MS), DPN_ARP_DROP);
}
END_TEST

/* ---- in a worker: lwIP's own table and the frames on the wire ---- */

#define PEER UNIT_PEER_IP

static void sleep_ms(unsigned ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void inject(struct rte_mbuf *m) {
    ck_assert_ptr_nonnull(m);
    dpn_rx_burst(w, &m, 1);
}

/* An ARP frame from mac for PEER: gratuitous (a broadcast request for
 * itself) or a reply to us. */
static void garp(const struct rte_ether_addr *mac) {
    inject(unit_arp_frame(w->pool, RTE_ARP_OP_REQUEST, &bcast, mac, PEER, &zero, PEER));
}
static void reply(const struct rte_ether_addr *mac) {
    inject(unit_arp_frame(w->pool, RTE_ARP_OP_REPLY, &w->mac, mac, PEER, &w->mac, UNIT_LOCAL_IP));
}

/* What lwIP's ARP table says about PEER. */
static bool lwip_has(const struct rte_ether_addr *mac) {
    ip4_addr_t a;
    struct eth_addr *eth;
    const ip4_addr_t *found;
    ip4_addr_set_u32(&a, rte_cpu_to_be_32(PEER));
    return etharp_find_addr(&w->netif, &a, &eth, &found) >= 0 &&
           memcmp(eth->addr, mac->addr_bytes, RTE_ETHER_ADDR_LEN) == 0;
}

/* Frame i of w's output is an ARP request for PEER from us to dst. */
static void assert_probe(int i, const struct rte_ether_addr *dst) {
    ck_assert_int_lt(i, w->tx_n);
    const struct rte_mbuf *m = w->tx_pkts[i];
    const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
    const struct rte_arp_hdr *a = (const struct rte_arp_hdr *)(eth + 1);
    ck_assert_uint_ge(rte_pktmbuf_data_len(m), sizeof(*eth) + sizeof(*a));
    ck_assert_uint_eq(eth->ether_type, rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP));
    ck_assert(rte_is_same_ether_addr(&eth->dst_addr, dst));
    ck_assert(rte_is_same_ether_addr(&eth->src_addr, &w->mac));
    ck_assert_uint_eq(a->arp_opcode, rte_cpu_to_be_16(RTE_ARP_OP_REQUEST));
    ck_assert(rte_is_same_ether_addr(&a->arp_data.arp_sha, &w->mac));
    ck_assert_uint_eq(a->arp_data.arp_sip, rte_cpu_to_be_32(UNIT_LOCAL_IP));
    ck_assert(rte_is_zero_ether_addr(&a->arp_data.arp_tha));
    ck_assert_uint_eq(a->arp_data.arp_tip, rte_cpu_to_be_32(PEER));
}

START_TEST(test_worker_lock_probe_failover) {
    unit_tx_drop(w);
    unsigned base = dpn_mbufs_free(w);
    /* The peer asks for us: lwIP learns M1 (and answers). */
    inject(unit_arp_frame(w->pool, RTE_ARP_OP_REQUEST, &bcast, &M1, PEER, &zero, UNIT_LOCAL_IP));
    ck_assert_int_eq(w->tx_n, 1);
    unit_tx_drop(w);
    ck_assert(lwip_has(&M1));

    /* A gratuitous flood for the peer's address: dropped, nothing sent. */
    uint64_t dropped = w->st.arp_dropped;
    for (int i = 0; i < 50; i++)
        garp(&M2);
    reply(&M2);
    ck_assert_uint_eq(w->st.arp_dropped, dropped + 51);
    ck_assert(lwip_has(&M1));
    ck_assert_int_eq(w->tx_n, 0);

    /* Past the lock: the next claim is dropped too, and M1 is probed. */
    sleep_ms(DPN_ARP_LOCK_MS + 50);
    uint64_t probes = w->st.arp_probes;
    garp(&M2);
    ck_assert(lwip_has(&M1));
    ck_assert_uint_eq(w->st.arp_probes, probes + 1);
    ck_assert_int_eq(w->tx_n, 1);
    assert_probe(0, &M1);
    unit_tx_drop(w);
    reply(&M1); /* the owner answers */
    ck_assert(lwip_has(&M1));
    garp(&M2);
    ck_assert_int_eq(w->tx_n, 0); /* locked again: no probe */

    /* The owner falls silent: lwIP's timers run the round (two more
     * unicast probes, then a broadcast request). */
    sleep_ms(DPN_ARP_LOCK_MS + 50);
    garp(&M2);
    ck_assert_int_eq(w->tx_n, 1);
    unit_tx_drop(w);
    int unicast = 1, broadcast = 0;
    for (int i = 0; i < 400 && broadcast == 0; i++) {
        sleep_ms(10);
        sys_check_timeouts();
        for (int k = 0; k < w->tx_n; k++) {
            const struct rte_ether_hdr *eth =
                rte_pktmbuf_mtod(w->tx_pkts[k], const struct rte_ether_hdr *);
            if (rte_is_broadcast_ether_addr(&eth->dst_addr)) {
                assert_probe(k, &bcast);
                broadcast++;
            } else {
                assert_probe(k, &M1);
                unicast++;
            }
        }
        unit_tx_drop(w);
    }
    ck_assert_int_eq(unicast, DPN_ARP_PROBES);
    ck_assert_int_eq(broadcast, 1);
    ck_assert(lwip_has(&M1));
    uint64_t moved = w->st.arp_moved;
    reply(&M2); /* the new owner answers */
    ck_assert_uint_eq(w->st.arp_moved, moved + 1);
    ck_assert(lwip_has(&M2));
    garp(&M1); /* and is locked in turn */
    ck_assert(lwip_has(&M2));
    ck_assert_uint_eq(dpn_mbufs_free(w), base);
}
END_TEST

START_TEST(test_worker_impossible_claims) {
    unit_tx_drop(w);
    uint64_t dropped = w->st.arp_dropped;
    struct rte_ether_addr mcast = {{0x01, 0x00, 0x5e, 0, 0, 1}};
    const uint32_t ip9 = RTE_IPV4(10, 0, 0, 9);
    /* Requests for us that lwIP would store: sender MAC broadcast,
     * multicast, zero; a sender claiming our own address. */
    inject(unit_arp_frame(w->pool, RTE_ARP_OP_REQUEST, &bcast, &bcast, ip9, &zero, UNIT_LOCAL_IP));
    inject(unit_arp_frame(w->pool, RTE_ARP_OP_REQUEST, &bcast, &mcast, ip9, &zero, UNIT_LOCAL_IP));
    inject(unit_arp_frame(w->pool, RTE_ARP_OP_REQUEST, &bcast, &zero, ip9, &zero, UNIT_LOCAL_IP));
    inject(unit_arp_frame(w->pool, RTE_ARP_OP_REQUEST, &bcast, &M2, UNIT_LOCAL_IP, &zero,
                          UNIT_LOCAL_IP));
    ck_assert_uint_eq(w->st.arp_dropped, dropped + 4);
    ck_assert_int_eq(w->tx_n, 0); /* none answered */
    ip4_addr_t a;
    struct eth_addr *eth;
    const ip4_addr_t *found;
    ip4_addr_set_u32(&a, rte_cpu_to_be_32(ip9));
    ck_assert_int_lt(etharp_find_addr(&w->netif, &a, &eth, &found), 0);
    ip4_addr_set_u32(&a, rte_cpu_to_be_32(UNIT_LOCAL_IP));
    ck_assert_int_lt(etharp_find_addr(&w->netif, &a, &eth, &found), 0);
    /* A well-formed request from 10.0.0.9 is answered. */
    inject(unit_arp_frame(w->pool, RTE_ARP_OP_REQUEST, &bcast, &M1, ip9, &zero, UNIT_LOCAL_IP));
    ck_assert_int_eq(w->tx_n, 1);
    unit_tx_drop(w);
    ck_assert_uint_eq(w->st.arp_dropped, dropped + 4);
}
END_TEST

static Suite *guard_suite(void) {
    Suite *s = suite_create("arp_guard");
    TCase *tc = tcase_create("decision");
    tcase_add_test(tc, test_first_claim_learned);
    tcase_add_test(tc, test_locked_for_a_second);
    tcase_add_test(tc, test_after_the_lock_the_owner_is_probed);
    tcase_add_test(tc, test_flood_never_moves_an_answering_owner);
    tcase_add_test(tc, test_failover_after_a_silent_round);
    tcase_add_test(tc, test_failover_announced_once_within_the_lock);
    tcase_add_test(tc, test_a_late_answer_revives_the_owner);
    tcase_add_test(tc, test_record_outlives_lwip_entry);
    tcase_add_test(tc, test_gateway_record_never_evicted);
    suite_add_tcase(s, tc);
    tc = tcase_create("worker");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_worker_impossible_claims);
    tcase_add_test(tc, test_worker_lock_probe_failover);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    w = unit_init("test_arp_guard");
    return unit_run(w, guard_suite());
}
