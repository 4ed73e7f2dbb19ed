/* libFuzzer harness of dpnetd's data path: arbitrary frames into the
 * software classifier dpn_sw_classify (app/dpnetd/steer.h) over a populated
 * table, then what dpnetd's rx_queue (app/dpnetd/main.c) does with each:
 * frames for an attached worker are tagged and handed over (here: freed as
 * the worker would), frames for slot 0 go in bursts into the daemon's own
 * lwIP, an ordinary standalone worker netif with ETHARP that answers ARP,
 * ICMP echo, RSTs and port unreachables; after a burst with ARP the neighbor
 * table is published as dpnetd's neigh_sync does, and must agree with lwIP's.
 *
 * Table: 10.0.0.2; TCP 80 -> slot 1, TCP 8080 -> slots 1,2,3 (hash), TCP 22
 * -> a binding without workers, UDP 53 -> slot 2, UDP 5000 -> slots 3,1;
 * ephemeral ranges of slots 1-3 steered to them.
 *
 * Input: records [kind][len hi][len lo][bytes] (fuzz_common.h). Kind low 2
 * bits: 0 frame as is, 1 checksums recomputed, 2 NIC said good, 3 end of
 * burst + lwIP timers; bits 4-5: 1-3 segments; bit 6: Ethernet header to us
 * from the peer in front. After each input lwIP's ARP table and the
 * published one are emptied; mbufs and lwIP memory must be at the baseline. */
#include <stdint.h>
#include <string.h>

#include <rte_malloc.h>

#include "arp_guard.h"
#include "lwip/etharp.h"

#include "buf.h"
#include "fuzz_common.h"
#include "neigh.h"
#include "neigh_pub.h"
#include "steer.h"

static struct dpn_worker *w;
static struct dpn_sw_steer *S;
static struct dpn_neigh neigh[DPN_NEIGH_SIZE];
static struct fz_base base;
static bool attached[DPN_MAX_SLOTS] = {false, true, true, true};

static void bind_port(bool udp, uint16_t port, uint8_t b, const uint8_t *slots, uint8_t n) {
    S->idx[udp][port] = b;
    S->tgt[b].n = n;
    if (n > 0)
        memcpy(S->tgt[b].slot, slots, n);
}

static void table_init(void) {
    static const uint8_t s1[] = {1}, s123[] = {1, 2, 3}, s2[] = {2}, s31[] = {3, 1};
    S = rte_zmalloc("fz_sw", sizeof(*S), RTE_CACHE_LINE_SIZE);
    if (S == NULL)
        FZ_DIE("no memory for the steering table");
    S->ip_be = rte_cpu_to_be_32(UNIT_LOCAL_IP);
    bind_port(false, 80, 1, s1, 1);
    bind_port(false, 8080, 2, s123, 3);
    bind_port(false, 22, 3, NULL, 0);
    bind_port(true, 53, 4, s2, 1);
    bind_port(true, 5000, 5, s31, 2);
    for (uint8_t i = 1; i <= 3; i++)
        S->eph_slot[i] = i;
}

/* What the classifier promises about its answer. */
static void check_class(const struct rte_mbuf *m, uint16_t slot, uint8_t b) {
    if (slot >= DPN_MAX_SLOTS)
        FZ_DIE("classify: slot %u out of range", slot);
    if (b != 0) {
        const struct dpn_sw_target *t = &S->tgt[b];
        bool found = t->n == 0 && slot == 0;
        for (unsigned i = 0; i < t->n; i++)
            found = found || t->slot[i] == slot;
        if (!found)
            FZ_DIE("classify: slot %u is not a worker of binding %u", slot, b);
    }
    if (slot == 0)
        return;
    /* Only IPv4 TCP/UDP to our address, not fragmented, with its ports in the
     * first segment, goes to a worker. */
    const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
    uint32_t len = rte_pktmbuf_data_len(m);
    uint32_t ihl = len > 14 ? (p[14] & 0xfu) * 4 : 0;
    if (len < 14 + 20 || p[12] != 0x08 || p[13] != 0 || ihl < 20 || len < 14 + ihl + 4 ||
        (p[23] != IPPROTO_TCP && p[23] != IPPROTO_UDP) || memcmp(p + 30, &S->ip_be, 4) != 0 ||
        (p[20] & 0x3f) != 0 || p[21] != 0)
        FZ_DIE("classify: a frame that is not ours went to slot %u", slot);
    uint16_t dport = (uint16_t)(p[14 + ihl + 2] << 8 | p[14 + ihl + 3]);
    if (b == 0 &&
        (dport < DPN_EPH_BASE || S->eph_slot[(dport - DPN_EPH_BASE) / DPN_EPH_PER_SLOT] != slot))
        FZ_DIE("classify: port %u went to slot %u without a binding", dport, slot);
}

/* dpnetd's publication (dpn_neigh_publish), then every entry lwIP has must be
 * readable by the workers with the same MAC. */
static void neigh_sync(void) {
    ip4_addr_t *ip;
    struct netif *nif;
    struct eth_addr *eth;
    dpn_neigh_publish(neigh, &w->netif);
    for (size_t i = 0; i < ARP_TABLE_SIZE; i++)
        if (etharp_get_entry(i, &ip, &nif, &eth)) {
            struct rte_ether_addr mac;
            if (!dpn_neigh_lookup(neigh, ip4_addr_get_u32(ip), &mac) ||
                memcmp(mac.addr_bytes, eth->addr, RTE_ETHER_ADDR_LEN) != 0)
                FZ_DIE("neighbor %08x: lwIP has it, the published table does not",
                       (unsigned)ip4_addr_get_u32(ip));
        }
}

static struct rte_mbuf *own[DPN_BURST];
static uint16_t nown;
static bool arp;

/* The end of rx_queue: the daemon's share into its lwIP. */
static void burst_end(void) {
    if (nown > 0)
        dpn_rx_burst(w, own, nown);
    nown = 0;
    if (arp)
        neigh_sync();
    arp = false;
    unit_tx_drop(w);
}

static void frame(const struct fz_rec *r) {
    uint8_t buf[2048 + RTE_ETHER_HDR_LEN];
    size_t len = 0;
    if (r->kind & 0x40) {
        struct rte_ether_hdr *eth = (struct rte_ether_hdr *)buf;
        rte_ether_addr_copy(&w->mac, &eth->dst_addr);
        rte_ether_addr_copy(&unit_peer_mac, &eth->src_addr);
        eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
        len = sizeof(*eth);
    }
    memcpy(buf + len, r->data, r->len);
    len += r->len;
    uint64_t ol = 0;
    if ((r->kind & 3) == 1)
        fz_fix_cksums(buf, len);
    else if ((r->kind & 3) == 2)
        ol = RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_GOOD;
    struct rte_mbuf *m = fz_frame(w->pool, buf, len, ((r->kind >> 4) & 3) + 1u, ol);
    if (m == NULL)
        FZ_DIE("out of mbufs");
    uint8_t b;
    uint16_t slot = dpn_sw_classify(S, m, &b);
    check_class(m, slot, b);
    if (slot != 0 && attached[slot]) {
        for (struct rte_mbuf *s = m; s != NULL; s = s->next) /* main.c: tag_all */
            ((struct dpn_pbuf *)rte_mbuf_to_priv(s))->tag = dpn_tag(slot, 1);
        dpn_mbuf_drop(m); /* the worker's side: freed */
        return;
    }
    if (rte_pktmbuf_data_len(m) >= RTE_ETHER_HDR_LEN &&
        rte_pktmbuf_mtod(m, struct rte_ether_hdr *)->ether_type == RTE_BE16(RTE_ETHER_TYPE_ARP))
        arp = true;
    own[nown++] = m;
    if (nown == DPN_BURST)
        burst_end();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    w = fz_init("fuzz_classify");
    table_init();
    fz_base_take(w, &base);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct fz_rec r;
    while (fz_next(&data, &size, &r)) {
        if ((r.kind & 3) == 3) {
            burst_end();
            if (fz_byte(&r, 0) & 1)
                etharp_tmr();
            if (fz_byte(&r, 0) & 2)
                tcp_tmr();
            unit_tx_drop(w);
        } else {
            frame(&r);
        }
    }
    burst_end();
    if (S->flow_stamp != 0) { /* connections a SYN pinned: each input starts clean */
        memset(S->flows, 0, sizeof(S->flows));
        S->flow_stamp = 0;
    }
    fz_tcp_abort_all(w);
    etharp_cleanup_netif(&w->netif);
    dpn_arp_guard_clear(); /* its records would outlive lwIP's (and decide the next input) */
    memset(neigh, 0, sizeof(neigh));
    fz_base_check(w, &base);
    return 0;
}
