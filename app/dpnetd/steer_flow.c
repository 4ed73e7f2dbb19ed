/* Hardware steering with rte_flow: one rule per binding,
 *   eth / ipv4 dst is <host> / tcp|udp dst is <port>  ->  queue q (or RSS over
 *   the binding's queues when several workers share the port).
 * On the 82599 (ixgbe) such rules become 5-tuple filters or flow director
 * perfect filters; on net_tap they become TC flower rules, which need the
 * kernel's flower classifier. Whatever the PMD refuses, dpnetd steers in
 * software, rule by rule. Set-up and control code only. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_flow.h>

#include "steer.h"

void dpn_flow_build(struct dpn_flow_spec *r, uint32_t ip_be, uint8_t proto, uint16_t lport,
                    uint16_t pmask, const uint16_t *queues, unsigned nq) {
    memset(r, 0, sizeof(*r));
    r->attr.ingress = 1;
    r->items[0].type = RTE_FLOW_ITEM_TYPE_ETH;
    r->ip_spec.hdr.dst_addr = ip_be;
    r->ip_mask.hdr.dst_addr = RTE_BE32(0xffffffff);
    /* The protocol too: ixgbe's 5-tuple filter takes it from the IPv4 mask
     * only, and without it a TCP rule would also take UDP to that port. */
    r->ip_spec.hdr.next_proto_id = proto == DPN_PROTO_TCP ? IPPROTO_TCP : IPPROTO_UDP;
    r->ip_mask.hdr.next_proto_id = 0xff;
    r->items[1] = (struct rte_flow_item){
        .type = RTE_FLOW_ITEM_TYPE_IPV4, .spec = &r->ip_spec, .mask = &r->ip_mask};
    if (proto == DPN_PROTO_TCP) {
        r->tcp_spec.hdr.dst_port = rte_cpu_to_be_16(lport);
        r->tcp_mask.hdr.dst_port = rte_cpu_to_be_16(pmask);
        r->items[2] = (struct rte_flow_item){
            .type = RTE_FLOW_ITEM_TYPE_TCP, .spec = &r->tcp_spec, .mask = &r->tcp_mask};
    } else {
        r->udp_spec.hdr.dst_port = rte_cpu_to_be_16(lport);
        r->udp_mask.hdr.dst_port = rte_cpu_to_be_16(pmask);
        r->items[2] = (struct rte_flow_item){
            .type = RTE_FLOW_ITEM_TYPE_UDP, .spec = &r->udp_spec, .mask = &r->udp_mask};
    }
    r->items[3].type = RTE_FLOW_ITEM_TYPE_END;
    if (nq == 1) {
        r->queue.index = queues[0];
        r->actions[0] =
            (struct rte_flow_action){.type = RTE_FLOW_ACTION_TYPE_QUEUE, .conf = &r->queue};
    } else {
        memcpy(r->rss_queues, queues, nq * sizeof(*queues));
        r->rss.types = RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_NONFRAG_IPV4_UDP;
        r->rss.queue_num = nq;
        r->rss.queue = r->rss_queues;
        r->actions[0] = (struct rte_flow_action){.type = RTE_FLOW_ACTION_TYPE_RSS, .conf = &r->rss};
    }
    r->actions[1].type = RTE_FLOW_ACTION_TYPE_END;
}

static int refused(const struct rte_flow_error *e, int rc, char *why, size_t n) {
    snprintf(why, n, "%s (%s)", e->message ? e->message : "rule refused", strerror(-rc));
    return rc;
}

/* An RSS action only where the PMD applies it to the rule's pattern. net_tap
 * crashes on one (PLATFORM.md); ixgbe takes it but ignores the pattern and
 * re-spreads all traffic (ixgbe_parse_rss_filter), which would steal other
 * ports' flows. Elsewhere: software steering for shared ports. */
static bool rss_unsafe(uint16_t port_id) {
    static const char *const ok[] = {"mlx5_pci", "net_ice", "net_i40e"};
    struct rte_eth_dev_info info;
    if (rte_eth_dev_info_get(port_id, &info) != 0 || info.driver_name == NULL)
        return true;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strcmp(info.driver_name, ok[i]) == 0)
            return false;
    return true;
}

int dpn_flow_validate(uint16_t port_id, uint32_t ip_be, uint8_t proto, uint16_t lport,
                      const uint16_t *queues, unsigned nq, char *why, size_t n) {
    struct dpn_flow_spec r;
    struct rte_flow_error e = {0};
    if (nq == 0 || nq > DPN_MAX_SLOTS)
        return snprintf(why, n, "bad queue count %u", nq), -EINVAL;
    if (nq > 1 && rss_unsafe(port_id))
        return snprintf(why, n, "no per-rule RSS on this PMD: software steering for a shared port"),
               -ENOTSUP;
    dpn_flow_build(&r, ip_be, proto, lport, 0xffff, queues, nq);
    int rc = rte_flow_validate(port_id, &r.attr, r.items, r.actions, &e);
    return rc == 0 ? 0 : refused(&e, rc, why, n);
}

/* Create the rule r describes; NULL with why filled when the PMD refuses. */
static struct dpn_flow_rule *install(uint16_t port_id, const struct dpn_flow_spec *r, char *why,
                                     size_t n) {
    struct rte_flow_error e = {0};
    struct rte_flow *f = rte_flow_create(port_id, &r->attr, r->items, r->actions, &e);
    if (f == NULL) {
        refused(&e, -rte_errno, why, n);
        return NULL;
    }
    struct dpn_flow_rule *rule = calloc(1, sizeof(*rule));
    if (rule == NULL) {
        rte_flow_destroy(port_id, f, &e);
        snprintf(why, n, "out of memory");
        return NULL;
    }
    rule->flow = f;
    return rule;
}

struct dpn_flow_rule *dpn_flow_add(uint16_t port_id, uint32_t ip_be, uint8_t proto, uint16_t lport,
                                   const uint16_t *queues, unsigned nq, char *why, size_t n) {
    struct dpn_flow_spec r;
    if (dpn_flow_validate(port_id, ip_be, proto, lport, queues, nq, why, n) != 0)
        return NULL;
    dpn_flow_build(&r, ip_be, proto, lport, 0xffff, queues, nq);
    return install(port_id, &r, why, n);
}

struct dpn_flow_rule *dpn_flow_add_range(uint16_t port_id, uint32_t ip_be, uint8_t proto,
                                         uint16_t lo, uint16_t mask, uint16_t queue, char *why,
                                         size_t n) {
    struct dpn_flow_spec r;
    dpn_flow_build(&r, ip_be, proto, lo, mask, &queue, 1);
    return install(port_id, &r, why, n);
}

void dpn_flow_del(uint16_t port_id, struct dpn_flow_rule *r) {
    struct rte_flow_error e;
    if (r == NULL)
        return;
    rte_flow_destroy(port_id, r->flow, &e);
    free(r);
}

int dpn_flow_probe(uint16_t port_id, uint32_t ip_be, uint16_t queue, char *why, size_t n) {
    struct dpn_flow_rule *r = dpn_flow_add(port_id, ip_be, DPN_PROTO_UDP, 9, &queue, 1, why, n);
    if (r == NULL)
        return -ENOTSUP;
    dpn_flow_del(port_id, r);
    return 0;
}

void dpn_flow_build_catch_all(struct dpn_flow_spec *r, uint16_t queue) {
    memset(r, 0, sizeof(*r));
    r->attr.ingress = 1;
    r->attr.priority = 1; /* below every binding's rule (priority 0) */
    r->items[0].type = RTE_FLOW_ITEM_TYPE_ETH;
    r->items[1].type = RTE_FLOW_ITEM_TYPE_END;
    r->queue.index = queue;
    r->actions[0] = (struct rte_flow_action){.type = RTE_FLOW_ACTION_TYPE_QUEUE, .conf = &r->queue};
    r->actions[1].type = RTE_FLOW_ACTION_TYPE_END;
}

struct dpn_flow_rule *dpn_flow_catch_all(uint16_t port_id, uint16_t queue, char *why, size_t n) {
    struct dpn_flow_spec r;
    dpn_flow_build_catch_all(&r, queue);
    return install(port_id, &r, why, n);
}

static void flow_forget_queue(uint16_t port_id, uint16_t queue) {
    RTE_SET_USED(port_id); /* rules name ports, not connections: nothing pinned */
    RTE_SET_USED(queue);
}

const struct dpn_rules dpn_rules_rte_flow = {
    .name = "rte_flow",
    .add = dpn_flow_add,
    .add_range = dpn_flow_add_range,
    .del = dpn_flow_del,
    .forget_queue = flow_forget_queue,
};
