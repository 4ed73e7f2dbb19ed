/* Steering and the shared tables: the software classifier dpnetd runs on
 * every frame, the neighbor table's seqlock, and rte_flow rule building on a
 * PMD without flow support (net_null: every rule refused with a reason, so
 * dpnetd steers in software). */
#include <check.h>
#include <stdlib.h>

#include <rte_malloc.h>

#include "neigh.h"
#include "steer.h"
#include "unit_eal.h"

static struct dpn_worker *W;
static struct dpn_sw_steer *S;

#define HOST RTE_IPV4(10, 0, 0, 2)

static void table_reset(void) {
    memset(S, 0, sizeof(*S));
    S->ip_be = rte_cpu_to_be_32(HOST);
}

static void bind_port(bool udp, uint16_t port, uint8_t b, const uint8_t *slots, uint8_t n) {
    S->idx[udp][port] = b;
    S->tgt[b].n = n;
    memcpy(S->tgt[b].slot, slots, n);
}

static uint16_t classify_flags(uint32_t sip, uint16_t sport, uint32_t dip, uint16_t dport,
                               uint8_t flags, uint8_t *b) {
    struct rte_mbuf *m = unit_tcp_frame(W->pool, &W->mac, sip, dip, sport, dport, 1, 0, flags, 1000,
                                        NULL, 0, NULL, 0);
    ck_assert_ptr_nonnull(m);
    uint16_t slot = dpn_sw_classify(S, m, b);
    rte_pktmbuf_free(m);
    return slot;
}

static uint16_t classify_tcp(uint32_t sip, uint16_t sport, uint32_t dip, uint16_t dport,
                             uint8_t *b) {
    return classify_flags(sip, sport, dip, dport, RTE_TCP_SYN_FLAG, b);
}

START_TEST(test_bound_port_goes_to_its_worker) {
    uint8_t b, one[] = {3};
    table_reset();
    bind_port(false, 7, 5, one, 1);
    ck_assert_uint_eq(classify_tcp(UNIT_PEER_IP, 40000, HOST, 7, &b), 3);
    ck_assert_uint_eq(b, 5);
    ck_assert_uint_eq(classify_tcp(UNIT_PEER_IP, 40000, HOST, 8, &b), 0); /* unbound: daemon */
    ck_assert_uint_eq(b, 0);
    /* UDP port 7 is a different binding */
    struct rte_mbuf *m = unit_udp_frame(W->pool, &W->mac, UNIT_PEER_IP, HOST, 5000, 7, "x", 1);
    ck_assert_uint_eq(dpn_sw_classify(S, m, &b), 0);
    rte_pktmbuf_free(m);
    bind_port(true, 7, 6, one, 1);
    m = unit_udp_frame(W->pool, &W->mac, UNIT_PEER_IP, HOST, 5000, 7, "x", 1);
    ck_assert_uint_eq(dpn_sw_classify(S, m, &b), 3);
    rte_pktmbuf_free(m);
}
END_TEST

START_TEST(test_not_ours_stays_with_the_daemon) {
    uint8_t b, one[] = {2};
    table_reset();
    bind_port(false, 7, 1, one, 1);
    /* another destination address */
    ck_assert_uint_eq(classify_tcp(UNIT_PEER_IP, 1, RTE_IPV4(10, 0, 0, 9), 7, &b), 0);
    /* ARP */
    struct rte_mbuf *m = unit_arp_frame(W->pool, RTE_ARP_OP_REQUEST, &W->mac, &unit_peer_mac,
                                        UNIT_PEER_IP, &W->mac, HOST);
    ck_assert_uint_eq(dpn_sw_classify(S, m, &b), 0);
    rte_pktmbuf_free(m);
    /* a fragment (no reassembly: the daemon drops it) */
    m = unit_tcp_frame(W->pool, &W->mac, UNIT_PEER_IP, HOST, 1, 7, 1, 0, RTE_TCP_SYN_FLAG, 1000,
                       NULL, 0, NULL, 0);
    struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, 14);
    ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG);
    ck_assert_uint_eq(dpn_sw_classify(S, m, &b), 0);
    ip->fragment_offset = rte_cpu_to_be_16(8);
    ck_assert_uint_eq(dpn_sw_classify(S, m, &b), 0);
    /* a header length that runs past the frame, and one below 20 bytes */
    ip->fragment_offset = 0;
    ip->version_ihl = 0x4f;
    ck_assert_uint_eq(dpn_sw_classify(S, m, &b), 0);
    ip->version_ihl = 0x44;
    ck_assert_uint_eq(dpn_sw_classify(S, m, &b), 0);
    /* a frame too short for an IP header */
    rte_pktmbuf_trim(m, rte_pktmbuf_data_len(m) - 20);
    ck_assert_uint_eq(dpn_sw_classify(S, m, &b), 0);
    rte_pktmbuf_free(m);
    /* ICMP */
    uint8_t icmp[8] = {8};
    m = unit_ip_frame(W->pool, &W->mac, UNIT_PEER_IP, HOST, IPPROTO_ICMP, icmp, sizeof(icmp));
    ck_assert_uint_eq(dpn_sw_classify(S, m, &b), 0);
    rte_pktmbuf_free(m);
}
END_TEST

START_TEST(test_ephemeral_ranges) {
    uint8_t b;
    table_reset();
    S->eph_slot[2] = 2;
    uint16_t lo = DPN_EPH_BASE + 2 * DPN_EPH_PER_SLOT;
    ck_assert_uint_eq(classify_tcp(UNIT_PEER_IP, 80, HOST, lo, &b), 2);
    ck_assert_uint_eq(classify_tcp(UNIT_PEER_IP, 80, HOST, lo + DPN_EPH_PER_SLOT - 1, &b), 2);
    ck_assert_uint_eq(classify_tcp(UNIT_PEER_IP, 80, HOST, lo + DPN_EPH_PER_SLOT, &b), 0);
    ck_assert_uint_eq(classify_tcp(UNIT_PEER_IP, 80, HOST, 65535, &b), 0);
}
END_TEST

START_TEST(test_shared_port_spreads_flows_stably) {
    uint8_t b, two[] = {1, 2};
    unsigned count[3] = {0};
    table_reset();
    bind_port(false, 80, 9, two, 2);
    for (uint16_t p = 0; p < 1000; p++) {
        uint16_t s1 = classify_tcp(UNIT_PEER_IP, (uint16_t)(30000 + p), HOST, 80, &b);
        uint16_t s2 = classify_tcp(UNIT_PEER_IP, (uint16_t)(30000 + p), HOST, 80, &b);
        ck_assert_uint_eq(s1, s2); /* same flow, same worker */
        ck_assert(s1 == 1 || s1 == 2);
        count[s1]++;
    }
    ck_assert_uint_gt(count[1], 350); /* both get a fair share */
    ck_assert_uint_gt(count[2], 350);
}
END_TEST

/* A connection stays on the worker that took its SYN when workers join or
 * leave; a dead worker's connections are forgotten. */
START_TEST(test_connections_never_move) {
    uint8_t b, two[] = {1, 2}, three[] = {1, 2, 3}, two_left[] = {2, 3};
    uint16_t at[600];
    table_reset();
    bind_port(false, 80, 9, two, 2);
    for (uint16_t p = 0; p < 600; p++)
        at[p] = classify_tcp(UNIT_PEER_IP, (uint16_t)(20000 + p), HOST, 80, &b);
    bind_port(false, 80, 9, three, 3); /* a third worker joins */
    unsigned moved = 0, to3 = 0;
    for (uint16_t p = 0; p < 600; p++)
        moved += classify_flags(UNIT_PEER_IP, (uint16_t)(20000 + p), HOST, 80, RTE_TCP_ACK_FLAG,
                                &b) != at[p];
    ck_assert_uint_eq(moved, 0);
    for (uint16_t p = 0; p < 300; p++) /* new connections reach it */
        to3 += classify_tcp(UNIT_PEER_IP, (uint16_t)(40000 + p), HOST, 80, &b) == 3;
    ck_assert_uint_gt(to3, 50);
    /* Worker 1 dies: its connections go where the hash says, the others stay. */
    dpn_sw_flows_forget(S, 1);
    bind_port(false, 80, 9, two_left, 2);
    for (uint16_t p = 0; p < 600; p++) {
        uint16_t now =
            classify_flags(UNIT_PEER_IP, (uint16_t)(20000 + p), HOST, 80, RTE_TCP_ACK_FLAG, &b);
        if (at[p] == 2)
            ck_assert_uint_eq(now, 2);
        else
            ck_assert(now == 2 || now == 3);
    }
    /* A new connection on a 4-tuple seen before is placed afresh. */
    ck_assert(classify_tcp(UNIT_PEER_IP, 20000, HOST, 80, &b) != 1);
}
END_TEST

/* A binding's rule steered to worker 1 alone, so its connections never met
 * the software table; a second worker joins and the binding goes to
 * software: those connections stay with worker 1, new ones spread. */
START_TEST(test_rule_owner_keeps_its_connections) {
    uint8_t b, two[] = {1, 2};
    table_reset();
    bind_port(false, 80, 9, two, 2);
    S->tgt[9].owner = 1;
    for (uint16_t p = 0; p < 300; p++) /* established under the rule: no record here */
        ck_assert_uint_eq(
            classify_flags(UNIT_PEER_IP, (uint16_t)(20000 + p), HOST, 80, RTE_TCP_ACK_FLAG, &b), 1);
    unsigned to2 = 0;
    uint16_t at[300];
    for (uint16_t p = 0; p < 300; p++) { /* new connections: spread and pinned */
        at[p] = classify_tcp(UNIT_PEER_IP, (uint16_t)(40000 + p), HOST, 80, &b);
        to2 += at[p] == 2;
    }
    ck_assert_uint_gt(to2, 50);
    for (uint16_t p = 0; p < 300; p++)
        ck_assert_uint_eq(
            classify_flags(UNIT_PEER_IP, (uint16_t)(40000 + p), HOST, 80, RTE_TCP_ACK_FLAG, &b),
            at[p]);
}
END_TEST

/* More connections than the table holds: the oldest records give way, and
 * what fits keeps its worker. */
START_TEST(test_full_table_keeps_the_newest) {
    uint8_t b, two[] = {1, 2}, one[] = {2};
    table_reset();
    bind_port(false, 80, 9, two, 2);
    const unsigned n = DPN_SW_FLOW_BUCKETS * DPN_SW_FLOW_WAYS + 20000;
    for (unsigned i = 0; i < n; i++)
        classify_tcp(RTE_IPV4(10, 1, (i >> 16) & 255, 1), (uint16_t)i, HOST, 80, &b);
    bind_port(false, 80, 9, one, 1);
    unsigned kept1 = 0;
    for (unsigned i = n - 1000; i < n; i++) /* the newest thousand: still pinned */
        kept1 += classify_flags(RTE_IPV4(10, 1, (i >> 16) & 255, 1), (uint16_t)i, HOST, 80,
                                RTE_TCP_ACK_FLAG, &b) == 1;
    ck_assert_uint_gt(kept1, 400); /* about half of them were on worker 1 */
}
END_TEST

START_TEST(test_neigh_table) {
    struct dpn_neigh *t = calloc(DPN_NEIGH_SIZE, sizeof(*t));
    struct rte_ether_addr a = {{2, 0, 0, 0, 0, 1}}, b = {{2, 0, 0, 0, 0, 2}}, out;
    uint32_t ip1 = rte_cpu_to_be_32(UNIT_PEER_IP);
    ck_assert(!dpn_neigh_lookup(t, ip1, &out));
    ck_assert(dpn_neigh_update(t, ip1, &a, true));
    ck_assert(dpn_neigh_lookup(t, ip1, &out));
    ck_assert(rte_is_same_ether_addr(&out, &a));
    uint32_t seq = t[dpn_neigh_hash(ip1)].seq;
    ck_assert(dpn_neigh_update(t, ip1, &a, true)); /* unchanged: no write */
    ck_assert_uint_eq(t[dpn_neigh_hash(ip1)].seq, seq);
    ck_assert(dpn_neigh_update(t, ip1, &b, true)); /* changed MAC */
    ck_assert(dpn_neigh_lookup(t, ip1, &out));
    ck_assert(rte_is_same_ether_addr(&out, &b));
    ck_assert_uint_eq(t[dpn_neigh_hash(ip1)].seq % 2, 0);
    ck_assert(dpn_neigh_update(t, ip1, NULL, false)); /* invalidated */
    ck_assert(!dpn_neigh_lookup(t, ip1, &out));
    /* fill the table: every address found, then no room */
    for (uint32_t i = 0; i < DPN_NEIGH_SIZE - 1; i++)
        ck_assert(
            dpn_neigh_update(t, rte_cpu_to_be_32(RTE_IPV4(10, 1, i >> 8, i & 255)), &a, true));
    for (uint32_t i = 0; i < DPN_NEIGH_SIZE - 1; i++)
        ck_assert(dpn_neigh_lookup(t, rte_cpu_to_be_32(RTE_IPV4(10, 1, i >> 8, i & 255)), &out));
    /* the one left (ip1, invalidated) is reused, then the table is full */
    ck_assert(dpn_neigh_update(t, rte_cpu_to_be_32(RTE_IPV4(10, 2, 0, 1)), &a, true));
    ck_assert(dpn_neigh_lookup(t, rte_cpu_to_be_32(RTE_IPV4(10, 2, 0, 1)), &out));
    ck_assert(!dpn_neigh_update(t, rte_cpu_to_be_32(RTE_IPV4(10, 2, 0, 2)), &a, true));
    ck_assert(!dpn_neigh_lookup(t, rte_cpu_to_be_32(RTE_IPV4(10, 2, 0, 2)), &out));
    /* invalid entries are reused: a daemon sees more than 256 neighbors in its life */
    for (uint32_t i = 0; i < 64; i++)
        ck_assert(
            dpn_neigh_update(t, rte_cpu_to_be_32(RTE_IPV4(10, 1, i >> 8, i & 255)), NULL, false));
    for (uint32_t i = 0; i < 64; i++)
        ck_assert(dpn_neigh_update(t, rte_cpu_to_be_32(RTE_IPV4(10, 3, 0, i)), &b, true));
    for (uint32_t i = 0; i < 64; i++) {
        ck_assert(dpn_neigh_lookup(t, rte_cpu_to_be_32(RTE_IPV4(10, 3, 0, i)), &out));
        ck_assert(rte_is_same_ether_addr(&out, &b));
    }
    for (uint32_t i = 64; i < DPN_NEIGH_SIZE - 1; i++) /* the others are still there */
        ck_assert(dpn_neigh_lookup(t, rte_cpu_to_be_32(RTE_IPV4(10, 1, i >> 8, i & 255)), &out));
    free(t);
}
END_TEST

/* What ixgbe's 5-tuple parser takes (DPDK 22.11.11, drivers/net/ixgbe/
 * ixgbe_flow.c: cons_parse_ntuple_filter and ixgbe_parse_ntuple_filter),
 * written down with the lines it comes from: true when the 82599 would make
 * rule r a 5-tuple filter. */
static bool ixgbe_ntuple_takes(const struct dpn_flow_spec *r) {
    const struct rte_flow_item *it = r->items;
    if (it->type == RTE_FLOW_ITEM_TYPE_ETH) { /* 258-287: ETH only without spec or mask */
        if (it->spec != NULL || it->mask != NULL || it->last != NULL)
            return false;
        it++;
    }
    if (it->type != RTE_FLOW_ITEM_TYPE_IPV4) /* 258-264, 289-295 */
        return false;
    const struct rte_flow_item_ipv4 *im = it->mask;
    if (it->spec == NULL || im == NULL || it->last != NULL) /* 328-343 */
        return false;
    const struct rte_ipv4_hdr *h = &im->hdr;
    if (h->version_ihl || h->type_of_service || h->total_length || h->packet_id || /* 354-364 */
        h->fragment_offset || h->time_to_live || h->hdr_checksum)
        return false;
    if ((h->src_addr != 0 && h->src_addr != UINT32_MAX) || /* 366-376: all or nothing */
        (h->dst_addr != 0 && h->dst_addr != UINT32_MAX) ||
        (h->next_proto_id != 0 && h->next_proto_id != UINT8_MAX))
        return false;
    it++;
    if (it->type == RTE_FLOW_ITEM_TYPE_TCP) {
        const struct rte_tcp_hdr *t = &((const struct rte_flow_item_tcp *)it->mask)->hdr;
        if (t->sent_seq || t->recv_ack || t->data_off || t->rx_win || t->cksum || t->tcp_urp)
            return false;                                      /* 433-444 */
        if ((t->src_port != 0 && t->src_port != UINT16_MAX) || /* 446-455 */
            (t->dst_port != 0 && t->dst_port != UINT16_MAX))
            return false;
        if (t->tcp_flags != 0) /* 458-471, and 639-645: ixgbe takes no TCP flags */
            return false;
    } else if (it->type == RTE_FLOW_ITEM_TYPE_UDP) {
        const struct rte_udp_hdr *u = &((const struct rte_flow_item_udp *)it->mask)->hdr;
        if (u->dgram_len || u->dgram_cksum) /* 481-488 */
            return false;
        if ((u->src_port != 0 && u->src_port != UINT16_MAX) || /* 490-497 */
            (u->dst_port != 0 && u->dst_port != UINT16_MAX))
            return false;
    } else {
        return false; /* dpnet's rules always name TCP or UDP */
    }
    if ((++it)->type != RTE_FLOW_ITEM_TYPE_END) /* 533-540 */
        return false;
    if (r->actions[0].type != RTE_FLOW_ACTION_TYPE_QUEUE || /* 546-566: one QUEUE, then END */
        r->actions[1].type != RTE_FLOW_ACTION_TYPE_END)
        return false;
    if (!r->attr.ingress || r->attr.egress || r->attr.transfer || /* 571-604 */
        r->attr.priority > 0xFFFF)
        return false;
    return true; /* a priority outside 1..7 becomes 1 (605-608, 648-655) */
}

/* ixgbe's flow director (ixgbe_parse_fdir_filter_normal, 1840-1853) takes
 * no IPv4 mask on the protocol: a rule that names it never reaches the
 * flow director, which would otherwise be switched on under live traffic. */
static bool ixgbe_fdir_refuses(const struct dpn_flow_spec *r) {
    for (const struct rte_flow_item *it = r->items; it->type != RTE_FLOW_ITEM_TYPE_END; it++)
        if (it->type == RTE_FLOW_ITEM_TYPE_IPV4)
            return ((const struct rte_flow_item_ipv4 *)it->mask)->hdr.next_proto_id != 0;
    return true; /* 1751-1771: ETH must be followed by VLAN or IPv4 */
}

START_TEST(test_rules_fit_ixgbe) {
    struct dpn_flow_spec r;
    uint32_t ip = rte_cpu_to_be_32(HOST);
    const uint16_t ports[] = {1, 7, 80, 1023, 8080, 49151};
    for (uint16_t q = 1; q < DPN_MAX_SLOTS; q++)
        for (size_t i = 0; i < RTE_DIM(ports); i++)
            for (int udp = 0; udp < 2; udp++) {
                dpn_flow_build(&r, ip, udp ? DPN_PROTO_UDP : DPN_PROTO_TCP, ports[i], 0xffff, &q,
                               1);
                ck_assert_msg(ixgbe_ntuple_takes(&r), "port %u/%s queue %u", ports[i],
                              udp ? "udp" : "tcp", q);
                ck_assert_uint_eq(r.ip_spec.hdr.next_proto_id, udp ? IPPROTO_UDP : IPPROTO_TCP);
                ck_assert_uint_eq(r.ip_mask.hdr.next_proto_id, 0xff); /* TCP/P never takes UDP/P */
                /* A port of an ephemeral range, one rule per port (DPN_REQ_CONNECT) */
                uint16_t eph = (uint16_t)(DPN_EPH_BASE + q * DPN_EPH_PER_SLOT + i);
                dpn_flow_build(&r, ip, udp ? DPN_PROTO_UDP : DPN_PROTO_TCP, eph, 0xffff, &q, 1);
                ck_assert(ixgbe_ntuple_takes(&r));
                /* The masked range: refused by both parsers, so software steers it. */
                dpn_flow_build(&r, ip, udp ? DPN_PROTO_UDP : DPN_PROTO_TCP,
                               (uint16_t)(DPN_EPH_BASE + q * DPN_EPH_PER_SLOT),
                               (uint16_t) ~(DPN_EPH_PER_SLOT - 1), &q, 1);
                ck_assert(!ixgbe_ntuple_takes(&r));
                ck_assert(ixgbe_fdir_refuses(&r));
            }
    dpn_flow_build_catch_all(&r, 0); /* refused on ixgbe: unmatched frames reach queue 0 anyway */
    ck_assert(!ixgbe_ntuple_takes(&r));
    ck_assert(ixgbe_fdir_refuses(&r));
}
END_TEST

START_TEST(test_flow_rules_refused_without_flow_support) {
    char why[160] = "";
    uint16_t q[2] = {1, 2};
    uint32_t ip = rte_cpu_to_be_32(HOST);
    ck_assert_int_ne(dpn_flow_validate(W->port_id, ip, DPN_PROTO_TCP, 7, q, 1, why, sizeof why), 0);
    ck_assert_uint_gt(strlen(why), 0);
    ck_assert_ptr_null(dpn_flow_add(W->port_id, ip, DPN_PROTO_UDP, 7, q, 2, why, sizeof why));
    ck_assert_int_eq(dpn_flow_probe(W->port_id, ip, 1, why, sizeof why), -ENOTSUP);
    ck_assert_int_ne(dpn_flow_validate(W->port_id, ip, DPN_PROTO_TCP, 7, q, 0, why, sizeof why), 0);
    ck_assert_ptr_nonnull(strstr(why, "queue count"));
    dpn_flow_del(W->port_id, NULL); /* harmless */
}
END_TEST

static Suite *steer_suite(void) {
    Suite *s = suite_create("steer");
    TCase *t = tcase_create("software");
    tcase_add_test(t, test_bound_port_goes_to_its_worker);
    tcase_add_test(t, test_not_ours_stays_with_the_daemon);
    tcase_add_test(t, test_ephemeral_ranges);
    tcase_add_test(t, test_shared_port_spreads_flows_stably);
    tcase_add_test(t, test_connections_never_move);
    tcase_add_test(t, test_rule_owner_keeps_its_connections);
    tcase_add_test(t, test_full_table_keeps_the_newest);
    tcase_add_test(t, test_neigh_table);
    suite_add_tcase(s, t);
    t = tcase_create("rte_flow");
    tcase_add_test(t, test_flow_rules_refused_without_flow_support);
    tcase_add_test(t, test_rules_fit_ixgbe);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    W = unit_init("test_steer");
    S = rte_zmalloc("test_sw", sizeof(*S), 0);
    return unit_run(W, steer_suite());
}
