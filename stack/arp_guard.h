/* The ARP guard: a neighbor's MAC address does not move on one frame's word.
 *
 * lwIP 2.1.3 overwrites an ARP entry with whatever MAC address the next ARP
 * frame from that IP carries (etharp_input: every request, reply or
 * gratuitous frame, no lock time), so one gratuitous ARP moves the gateway
 * and a flood keeps it moved. The guard sits in front of etharp_input (rx.c,
 * standalone workers and dpnetd, whose lwIP table becomes the neighbor table
 * of the attached workers) and decides, for each ARP frame claiming "sender
 * IP is at sender MAC":
 *
 *  - same MAC as held (lwIP's entry, else our record of it): passes, and
 *    confirms the record;
 *  - another MAC: dropped, always. The held MAC is then probed (a unicast
 *    ARP request, as Linux's NUD_PROBE does): at once, or when the lock
 *    ends if the claim came within DPN_ARP_LOCK_MS of the last
 *    confirmation (Linux's locktime, 1 s). An answer confirms it (and
 *    locks it again); only when DPN_ARP_PROBES probes DPN_ARP_PROBE_MS
 *    apart went unanswered is the MAC dead, and then the next claim wins
 *    (a broadcast request asks for it at once): a real failover completes
 *    within DPN_ARP_LOCK_MS + DPN_ARP_PROBES * DPN_ARP_PROBE_MS (2.2 s),
 *    and a flood costs one probe per lock time.
 *
 * Why more than Linux's rule: with a lock time alone, the first flood frame
 * later than 1 s after the last confirmation moves the entry, and lwIP
 * confirms an entry in use only every few minutes. With probing, a flood can
 * move a neighbor only while the neighbor does not answer.
 *
 * What it cannot do: the first answer to lwIP's first request for an
 * address still wins (as in ARP itself: there is nothing to compare it
 * with), and a neighbor whose answers to a whole round are lost (a flood
 * filling the RX ring) looks dead.
 *
 * Records outlive lwIP's entry by up to DPN_ARP_KEEP_MS (lwIP's ARP_MAXAGE),
 * so that evicting lwIP's entry and then answering its new request first
 * does not move the neighbor either. The gateway's record is never evicted.
 *
 * The decision (dpn_arp_guard_check, dpn_arp_guard_tick) is pure: lwIP's
 * table and sending are reached through ops, time is a parameter (unit
 * tests). The glue to lwIP is dpn_arp_guard_input. */
#ifndef DPNET_ARP_GUARD_H
#define DPNET_ARP_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_branch_prediction.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_mbuf.h>

#define DPN_ARP_LOCK_MS 1000 /* Linux's locktime (net.ipv4.neigh.*.locktime = 100 cs) */
#define DPN_ARP_PROBE_MS 400 /* between probes of a challenged MAC */
#define DPN_ARP_PROBES 3     /* unanswered probes before a MAC is dead */
#define DPN_ARP_KEEP_MS                                                                            \
    300000                 /* lwIP's ARP_MAXAGE (300 s): a record's life without lwIP's entry      \
                            */
#define DPN_ARP_TICK_MS 50 /* probe rounds are advanced at most this often */
#define DPN_ARP_WAYS 4
#define DPN_ARP_SET_BITS 6 /* 64 sets: 256 records like lwIP's ARP_TABLE_SIZE */
#define DPN_ARP_SETS (1u << DPN_ARP_SET_BITS)

struct dpn_arp_rec {
    uint32_t ip;               /* network order; 0 = free */
    struct rte_ether_addr mac; /* the MAC held for ip */
    uint8_t probes;            /* probes sent in the current round, 0 = no round */
    bool dead;                 /* mac missed a whole round: the next claim takes ip */
    uint64_t confirmed_ms;     /* last frame from ip with mac that passed; 0 = never */
    uint64_t probe_ms;         /* when the last probe went out */
    uint64_t due_ms;           /* claimed within the lock: a round starts then; 0 = none */
};

struct dpn_arp_guard {
    struct dpn_arp_rec rec[DPN_ARP_SETS * DPN_ARP_WAYS];
    uint32_t pin;          /* never evicted: the gateway (network order), 0 = none */
    unsigned busy;         /* records with a round running or due */
    uint64_t next_tick_ms; /* dpn_arp_guard_tick does nothing before */
};

struct dpn_arp_guard_ops {
    /* The MAC lwIP sends to for ip (network order) now; false when none. */
    bool (*held)(void *ctx, uint32_t ip, struct rte_ether_addr *mac);
    /* Send an ARP request for ip: unicast to mac, broadcast when mac is NULL. */
    void (*probe)(void *ctx, uint32_t ip, const struct rte_ether_addr *mac);
    void *ctx;
};

enum dpn_arp_verdict {
    DPN_ARP_PASS,  /* lwIP may see the frame */
    DPN_ARP_DROP,  /* it claims a locked or challenged neighbor for another MAC */
    DPN_ARP_MOVED, /* lwIP may see it: it replaces a MAC that stopped answering */
};

/* The verdict on a frame from sender sip (network order, unicast) / sha;
 * for_us: its target IP is ours (lwIP then stores the sender even when it
 * has no entry for it). */
enum dpn_arp_verdict dpn_arp_guard_check(struct dpn_arp_guard *g,
                                         const struct dpn_arp_guard_ops *ops, uint32_t sip,
                                         const struct rte_ether_addr *sha, bool for_us,
                                         uint64_t now_ms);

/* Advance probe rounds: next probe, or declare a MAC dead. */
void dpn_arp_guard_tick(struct dpn_arp_guard *g, const struct dpn_arp_guard_ops *ops,
                        uint64_t now_ms);

/* The record of ip, or NULL (tests). */
const struct dpn_arp_rec *dpn_arp_guard_find(const struct dpn_arp_guard *g, uint32_t ip);

/* The set of ip's record: Fibonacci hashing, whose top bits depend on
 * every bit of ip. Not keyed: the gateway's record is pinned instead. */
static inline unsigned dpn_arp_guard_set(uint32_t ip) {
    return (uint32_t)(ip * 2654435761u) >> (32 - DPN_ARP_SET_BITS);
}

/* Forget every record (fuzz harnesses: after emptying lwIP's table, so
 * that one input's claims do not decide the next one's). */
void dpn_arp_guard_clear(void);

struct dpn_worker;

/* rx.c, an ARP frame (standalone workers and dpnetd; attached workers
 * drop ARP in netif.c anyway). False: dropped, m freed, counted. */
bool dpn_arp_guard_input(struct dpn_worker *w, struct rte_mbuf *m);

/* rx.c's hook, before lwIP sees the frame: false when it was dropped. */
static inline bool dpn_arp_guard(struct dpn_worker *w, struct rte_mbuf *m) {
    const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
    /* A runt (lwIP's ethernet_input drops it) has no type to read. */
    if (likely(rte_pktmbuf_data_len(m) < RTE_ETHER_HDR_LEN ||
               eth->ether_type != RTE_BE16(RTE_ETHER_TYPE_ARP)))
        return true;
    return dpn_arp_guard_input(w, m);
}

#endif
