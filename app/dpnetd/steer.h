/* Steering: which worker gets a frame. Backends behind one small
 * interface, chosen in one place (dpnetd's set-up):
 *   - kernel (steer_tun.c): on net_tap, an eBPF program tun runs to pick
 *     each frame's queue, with dpnetd's rules in its maps;
 *   - flow (steer_flow.c): rte_flow rules on the NIC put a binding's frames
 *     straight on its worker's RX queue;
 *   - software (here): dpnetd receives everything and hands each frame to
 *     its worker's ring after one table lookup. Used when the PMD has no
 *     flow support, and rule by rule when the hardware refuses one.
 * Owned and written by dpnetd only, in its private memory: the indexes it
 * holds decide which array entry dpnetd writes, so no other process may
 * write them (shared memory gets no copy of this table). */
#ifndef DPNET_STEER_H
#define DPNET_STEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <rte_flow.h>
#include <rte_ip.h>
#include <rte_jhash.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "abi.h"

/* ---- rules: the kernel's or the hardware's ---- */
struct rte_flow;
struct dpn_flow_rule {
    struct rte_flow *flow; /* rte_flow */
    uint32_t key;          /* kernel: its map key */
    bool eph;              /* kernel: in the ephemeral map */
};

/* One backend of rules, chosen at set-up: the functions below
 * (dpn_rules_rte_flow) or the kernel's (dpn_rules_tun). */
struct dpn_rules {
    const char *name; /* as dpnetd reports its steering */
    struct dpn_flow_rule *(*add)(uint16_t port_id, uint32_t ip_be, uint8_t proto, uint16_t lport,
                                 const uint16_t *queues, unsigned nq, char *why, size_t n);
    struct dpn_flow_rule *(*add_range)(uint16_t port_id, uint32_t ip_be, uint8_t proto, uint16_t lo,
                                       uint16_t mask, uint16_t queue, char *why, size_t n);
    void (*del)(uint16_t port_id, struct dpn_flow_rule *r);
    /* The worker of queue is gone: whatever the backend pinned to it goes. */
    void (*forget_queue)(uint16_t port_id, uint16_t queue);
};
extern const struct dpn_rules dpn_rules_rte_flow, dpn_rules_tun;

/* Kernel steering for a net_tap port (steer_tun.c): load the program with
 * the host's address and set it on the device; 0, or -errno with why. One
 * port per process. */
int dpn_tun_steer_open(uint16_t port_id, uint32_t ip_be, char *why, size_t n);
void dpn_tun_steer_close(void);

/* Can this port steer by rule? Tries a real rule (validate is not enough:
 * net_tap validates rules its kernel cannot install). 0 or -errno + why. */
int dpn_flow_probe(uint16_t port_id, uint32_t ip_be, uint16_t queue, char *why, size_t n);
/* Frames to ip:lport/proto go to queues[0..nq-1] (RSS over them when nq > 1).
 * NULL with why filled when the PMD refuses: the caller steers in software. */
struct dpn_flow_rule *dpn_flow_add(uint16_t port_id, uint32_t ip_be, uint8_t proto, uint16_t lport,
                                   const uint16_t *queues, unsigned nq, char *why, size_t n);
/* A worker's ephemeral range (dst port & mask == lo) to its queue: replies
 * to its outgoing connections skip dpnetd. NULL where the PMD refuses port
 * masks (ixgbe's 5-tuple filters take exact ports only): then dpnetd steers
 * that range in software from queue 0. */
struct dpn_flow_rule *dpn_flow_add_range(uint16_t port_id, uint32_t ip_be, uint8_t proto,
                                         uint16_t lo, uint16_t mask, uint16_t queue, char *why,
                                         size_t n);
void dpn_flow_del(uint16_t port_id, struct dpn_flow_rule *r);
/* Every frame no other rule takes goes to queue (lowest priority). net_tap
 * needs it: tun spreads unmatched frames over all queues by a flow hash,
 * so ARP, ICMP and unbound ports would land where nobody, or a worker that
 * ignores them, reads. NULL with why where the PMD refuses it; ixgbe, with
 * no RSS configured, puts unmatched frames on queue 0 by itself. */
struct dpn_flow_rule *dpn_flow_catch_all(uint16_t port_id, uint16_t queue, char *why, size_t n);
/* A rule as dpnet builds it: attributes, pattern (eth / ipv4 / tcp|udp /
 * end) and actions (queue or rss / end), with the specs they point to. */
struct dpn_flow_spec {
    struct rte_flow_attr attr;
    struct rte_flow_item items[4];
    struct rte_flow_item_ipv4 ip_spec, ip_mask;
    struct rte_flow_item_tcp tcp_spec, tcp_mask;
    struct rte_flow_item_udp udp_spec, udp_mask;
    struct rte_flow_action actions[2];
    struct rte_flow_action_queue queue;
    struct rte_flow_action_rss rss;
    uint16_t rss_queues[DPN_MAX_SLOTS];
};
/* Frames to ip:lport (dst port & pmask)/proto to queues: the rule, not
 * installed (dpn_flow_add, dpn_flow_add_range, and the unit tests, which
 * hold every rule against what ixgbe's parsers take). */
void dpn_flow_build(struct dpn_flow_spec *r, uint32_t ip_be, uint8_t proto, uint16_t lport,
                    uint16_t pmask, const uint16_t *queues, unsigned nq);
void dpn_flow_build_catch_all(struct dpn_flow_spec *r, uint16_t queue);
/* Build the pattern and actions of a rule without installing it; used by
 * dpn_flow_add and by the unit tests (rte_flow_validate). */
int dpn_flow_validate(uint16_t port_id, uint32_t ip_be, uint8_t proto, uint16_t lport,
                      const uint16_t *queues, unsigned nq, char *why, size_t n);

/* ---- software steering ---- */
struct dpn_sw_target {
    uint8_t n;
    /* The worker whose queue had the binding's rule before it went to
     * software (a second worker joined): its connections never came by
     * here, so segments without a record are its own. 0 = none. */
    uint8_t owner;
    uint8_t slot[DPN_MAX_SLOTS];
};

/* Connections pinned to their worker: a bare TCP SYN for a bound port
 * records the worker it went to, and the connection's later frames follow
 * that record whatever workers join or leave (as the kernel's flows map
 * does in steer_tun.c). 4-way buckets under a keyed hash; in a full bucket
 * the oldest record gives way. A record of a dead worker is wiped when its
 * slot is released (dpn_sw_flows_forget). */
#define DPN_SW_FLOW_BUCKETS 16384 /* x 4 = 65536 connections */
#define DPN_SW_FLOW_WAYS 4
struct dpn_sw_flow {
    uint32_t saddr; /* as on the wire; 0 = empty */
    uint32_t ports; /* source and destination port, as on the wire */
    uint32_t stamp; /* when it was written: the oldest gives way */
    uint8_t slot;
};

struct dpn_sw_steer {
    uint32_t ip_be;                                 /* the host's address */
    uint8_t eph_slot[DPN_MAX_SLOTS];                /* ephemeral range k -> slot, 0 = none */
    uint8_t idx[2][65536];                          /* [udp?][dst port] -> binding, 0 = none */
    struct dpn_sw_target tgt[DPN_MAX_BINDINGS + 1]; /* per binding: its workers */
    uint32_t flow_key;                              /* the buckets' hash key (random) */
    uint32_t flow_stamp;
    struct dpn_sw_flow flows[DPN_SW_FLOW_BUCKETS][DPN_SW_FLOW_WAYS];
};

/* The worker a bound TCP segment goes to: its connection's record, else
 * the binding's former rule owner, else (a bare SYN records it) a hash of
 * the remote address and port over the binding's workers. */
static inline uint16_t dpn_sw_pin(struct dpn_sw_steer *s, const struct dpn_sw_target *t,
                                  uint32_t saddr, const rte_be16_t *ports, bool syn) {
    uint32_t pp;
    memcpy(&pp, ports, sizeof(pp));
    struct dpn_sw_flow *bk =
        s->flows[rte_jhash_2words(saddr, pp, s->flow_key) & (DPN_SW_FLOW_BUCKETS - 1)];
    int victim = -1, empty = -1;
    unsigned oldest = 0;
    for (unsigned i = 0; i < DPN_SW_FLOW_WAYS; i++) {
        if (bk[i].saddr == saddr && bk[i].ports == pp && saddr != 0) {
            if (!syn)
                return bk[i].slot;
            victim = (int)i; /* a new connection on the same 4-tuple: placed afresh */
            break;
        }
        if (bk[i].saddr == 0)
            empty = empty < 0 ? (int)i : empty;
        else if (bk[oldest].saddr == 0 || (int32_t)(bk[i].stamp - bk[oldest].stamp) < 0)
            oldest = i;
    }
    if (!syn && t->owner != 0)
        return t->owner;
    if (victim < 0)
        victim = empty >= 0 ? empty : (int)oldest;
    uint16_t slot = t->slot[rte_jhash_2words(saddr, ports[0], ports[1]) % t->n];
    if (syn)
        bk[victim] = (struct dpn_sw_flow){saddr, pp, ++s->flow_stamp, (uint8_t)slot};
    return slot;
}

/* Worker slot for a frame, 0 for dpnetd itself (ARP, ICMP, fragments,
 * anything unclaimed). *bidx is the binding that matched (0 = none). The
 * worker's lwIP validates everything else. */
static inline uint16_t dpn_sw_classify(struct dpn_sw_steer *s, const struct rte_mbuf *m,
                                       uint8_t *bidx) {
    const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
    uint32_t len = rte_pktmbuf_data_len(m);
    *bidx = 0;
    if (len < RTE_ETHER_HDR_LEN + sizeof(struct rte_ipv4_hdr) ||
        ((const struct rte_ether_hdr *)p)->ether_type != RTE_BE16(RTE_ETHER_TYPE_IPV4))
        return 0;
    const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(p + RTE_ETHER_HDR_LEN);
    uint32_t ihl = (ip->version_ihl & 0xf) * 4u;
    if (ip->dst_addr != s->ip_be || ihl < 20 || len < RTE_ETHER_HDR_LEN + ihl + 4 ||
        (ip->fragment_offset & RTE_BE16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)))
        return 0;
    bool udp;
    if (ip->next_proto_id == IPPROTO_TCP)
        udp = false;
    else if (ip->next_proto_id == IPPROTO_UDP)
        udp = true;
    else
        return 0;
    const rte_be16_t *ports = (const rte_be16_t *)((const uint8_t *)ip + ihl);
    uint16_t dport = rte_be_to_cpu_16(ports[1]);
    uint8_t b = s->idx[udp][dport];
    if (b != 0) {
        const struct dpn_sw_target *t = &s->tgt[b];
        *bidx = b;
        if (t->n == 0)
            return 0;
        if (udp) /* same flow, same worker, as long as the set of workers is unchanged */
            return t->n == 1 ? t->slot[0]
                             : t->slot[rte_jhash_2words(ip->src_addr, ports[0], ports[1]) % t->n];
        bool syn = len >= RTE_ETHER_HDR_LEN + ihl + 14 &&
                   (((const uint8_t *)ports)[13] & (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG)) ==
                       RTE_TCP_SYN_FLAG;
        return dpn_sw_pin(s, t, ip->src_addr, ports, syn);
    }
    if (dport >= DPN_EPH_BASE)
        return s->eph_slot[(dport - DPN_EPH_BASE) / DPN_EPH_PER_SLOT];
    return 0;
}

/* Slot's worker is gone: its records go (control path: one pass). */
static inline void dpn_sw_flows_forget(struct dpn_sw_steer *s, uint16_t slot) {
    for (unsigned b = 0; b < DPN_SW_FLOW_BUCKETS; b++)
        for (unsigned i = 0; i < DPN_SW_FLOW_WAYS; i++)
            if (s->flows[b][i].saddr != 0 && s->flows[b][i].slot == slot)
                s->flows[b][i].saddr = 0;
}

#endif
