/* dpnetd's tables as DPDK telemetry commands (/dpnet/workers, /dpnet/bindings,
 * /dpnet/flows, /dpnet/neigh, /dpnet/stats, /dpnet/pools), readable with
 * dpdk-telemetry.py -f PREFIX. They run in EAL's telemetry thread, beside
 * dpnetd's loop: they read the published copy of the tables (abi.h, struct
 * dpn_shm, rewritten every 100 ms), never dpnetd's own, so they need no
 * lock and can only show a value up to 100 ms old. */
#include <inttypes.h>
#include <stdio.h>

#include <rte_ether.h>
#include <rte_mempool.h>
#include <rte_telemetry.h>

#include "dpnetd.h"
#include "log.h"

static const struct dpn_shm *tel; /* set once before the commands exist */

/* The queues of a slot mask, as an array of numbers. */
static struct rte_tel_data *queues(uint16_t slots) {
    struct rte_tel_data *a = rte_tel_data_alloc();
    if (a == NULL)
        return NULL;
    rte_tel_data_start_array(a, RTE_TEL_U64_VAL);
    for (unsigned i = 1; i < DPN_MAX_SLOTS; i++)
        if (slots & (1u << i))
            rte_tel_data_add_array_u64(a, tel->slots[i].queue);
    return a;
}

static int cmd_workers(const char *cmd, const char *params, struct rte_tel_data *d) {
    (void)cmd;
    (void)params;
    rte_tel_data_start_dict(d);
    for (unsigned i = 1; i < tel->nb_queues && i < DPN_MAX_SLOTS; i++) {
        const struct dpn_slot *w = &tel->slots[i];
        if (w->state != DPN_SLOT_ATTACHED)
            continue;
        struct rte_tel_data *x = rte_tel_data_alloc();
        if (x == NULL)
            return -1;
        char app[DPN_APP_NAME + 1], key[8];
        snprintf(app, sizeof(app), "%.*s", DPN_APP_NAME, w->app);
        rte_tel_data_start_dict(x);
        rte_tel_data_add_dict_int(x, "pid", w->pid);
        rte_tel_data_add_dict_int(x, "lcore", w->lcore);
        rte_tel_data_add_dict_u64(x, "queue", w->queue);
        rte_tel_data_add_dict_string(x, "app", app);
        rte_tel_data_add_dict_u64(x, "rx_pkts", w->wr.rx_pkts);
        rte_tel_data_add_dict_u64(x, "rx_bytes", w->wr.rx_bytes);
        rte_tel_data_add_dict_u64(x, "tx_pkts", w->wr.tx_pkts);
        rte_tel_data_add_dict_u64(x, "tx_bytes", w->wr.tx_bytes);
        rte_tel_data_add_dict_u64(x, "rx_dropped", w->wr.rx_dropped);
        rte_tel_data_add_dict_u64(x, "tx_dropped", w->wr.tx_dropped);
        rte_tel_data_add_dict_u64(x, "conns_open", w->wr.conns_open);
        rte_tel_data_add_dict_u64(x, "conns_total", w->wr.conns_total);
        rte_tel_data_add_dict_u64(x, "steered", w->ring_enq);
        rte_tel_data_add_dict_u64(x, "ring_full", w->ring_full);
        rte_tel_data_add_dict_u64(x, "eph_lo", w->eph_lo);
        rte_tel_data_add_dict_u64(x, "eph_hi", w->eph_hi);
        snprintf(key, sizeof(key), "%u", i);
        rte_tel_data_add_dict_container(d, key, x, 0);
    }
    return 0;
}

static int cmd_bindings(const char *cmd, const char *params, struct rte_tel_data *d) {
    (void)cmd;
    (void)params;
    rte_tel_data_start_dict(d);
    for (unsigned b = 1; b <= DPN_MAX_BINDINGS; b++) {
        const struct dpn_binding *x = &tel->bindings[b];
        if (x->proto == 0)
            continue;
        struct rte_tel_data *e = rte_tel_data_alloc();
        struct rte_tel_data *q = queues(x->slots);
        if (e == NULL || q == NULL) {
            rte_tel_data_free(e);
            rte_tel_data_free(q);
            return -1;
        }
        char app[DPN_APP_NAME + 1], key[16];
        snprintf(app, sizeof(app), "%.*s", DPN_APP_NAME, x->app);
        rte_tel_data_start_dict(e);
        rte_tel_data_add_dict_string(e, "proto", dpn_proto_name(x->proto));
        rte_tel_data_add_dict_u64(e, "port", x->port);
        rte_tel_data_add_dict_string(e, "app", app);
        rte_tel_data_add_dict_string(e, "steering", x->hw ? "rule" : "software");
        rte_tel_data_add_dict_u64(e, "sw_hits", x->hits);
        rte_tel_data_add_dict_container(e, "queues", q, 0);
        snprintf(key, sizeof(key), "%s_%u", dpn_proto_name(x->proto), x->port);
        rte_tel_data_add_dict_container(d, key, e, 0);
    }
    return 0;
}

/* A rule as dpnetctl flows prints it, one string per rule. */
static int cmd_flows(const char *cmd, const char *params, struct rte_tel_data *d) {
    (void)cmd;
    (void)params;
    char ip[16], line[RTE_TEL_MAX_STRING_LEN];
    dpn_ip_str(tel->ip, ip, sizeof(ip));
    rte_tel_data_start_array(d, RTE_TEL_STRING_VAL);
    for (unsigned b = 1; b <= DPN_MAX_BINDINGS; b++) {
        const struct dpn_binding *x = &tel->bindings[b];
        if (x->proto == 0)
            continue;
        int n = snprintf(line, sizeof(line), "%.16s eth / ipv4 dst %s / %s dst %u -> queues",
                         x->hw ? tel->steering : "software", ip, dpn_proto_name(x->proto), x->port);
        for (unsigned i = 1; i < DPN_MAX_SLOTS && n > 0 && (size_t)n < sizeof(line); i++)
            if (x->slots & (1u << i))
                n += snprintf(line + n, sizeof(line) - (size_t)n, " %u", tel->slots[i].queue);
        rte_tel_data_add_array_string(d, line);
    }
    for (unsigned i = 1; i < tel->nb_queues && i < DPN_MAX_SLOTS; i++) {
        const struct dpn_slot *s = &tel->slots[i];
        if (s->state != DPN_SLOT_ATTACHED)
            continue;
        snprintf(line, sizeof(line), "%.16s eth / ipv4 dst %s / tcp,udp dst %u-%u -> queue %u%s",
                 tel->hw_steering && s->eph_rules == 3 ? tel->steering : "software", ip, s->eph_lo,
                 s->eph_hi, s->queue,
                 tel->hw_steering && s->eph_rules != 3 ? " (a rule per port in use)" : "");
        rte_tel_data_add_array_string(d, line);
    }
    return 0;
}

/* Entries {ip, mac, state} by table index: telemetry's keys take no dots,
 * and 22.11 nests no dicts in arrays. */
static int cmd_neigh(const char *cmd, const char *params, struct rte_tel_data *d) {
    (void)cmd;
    (void)params;
    rte_tel_data_start_dict(d);
    for (unsigned i = 0; i < DPN_NEIGH_SIZE; i++) {
        const struct dpn_neigh *e = &tel->neigh[i];
        if (e->ip == 0)
            continue;
        struct rte_tel_data *x = rte_tel_data_alloc();
        if (x == NULL)
            return -1;
        char ip[16], mac[RTE_ETHER_ADDR_FMT_SIZE], key[8];
        dpn_ip_str(e->ip, ip, sizeof(ip));
        rte_ether_format_addr(mac, sizeof(mac), &e->mac);
        rte_tel_data_start_dict(x);
        rte_tel_data_add_dict_string(x, "ip", ip);
        rte_tel_data_add_dict_string(x, "mac", mac);
        rte_tel_data_add_dict_string(x, "state", e->valid ? "reachable" : "stale");
        snprintf(key, sizeof(key), "%u", i);
        rte_tel_data_add_dict_container(d, key, x, 0);
    }
    return 0;
}

static int cmd_stats(const char *cmd, const char *params, struct rte_tel_data *d) {
    (void)cmd;
    (void)params;
    const struct dpn_port_stats *p = &tel->port_stats;
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_u64(d, "rx_pkts", tel->rx_pkts);
    rte_tel_data_add_dict_u64(d, "to_daemon", tel->to_daemon);
    rte_tel_data_add_dict_u64(d, "ctl_requests", tel->ctl_requests);
    rte_tel_data_add_dict_u64(d, "ctl_rejected", tel->ctl_rejected);
    rte_tel_data_add_dict_u64(d, "ctl_deferred", tel->ctl_deferred);
    rte_tel_data_add_dict_u64(d, "arp_sent", tel->arp_sent);
    rte_tel_data_add_dict_u64(d, "arp_throttled", tel->arp_throttled);
    rte_tel_data_add_dict_u64(d, "to_kernel", tel->to_kernel);
    rte_tel_data_add_dict_u64(d, "from_kernel", tel->from_kernel);
    rte_tel_data_add_dict_u64(d, "idle_sleeps", tel->idle_sleeps);
    rte_tel_data_add_dict_u64(d, "rx_wakeups", tel->rx_wakeups);
    rte_tel_data_add_dict_u64(d, "port_ipackets", p->ipackets);
    rte_tel_data_add_dict_u64(d, "port_opackets", p->opackets);
    rte_tel_data_add_dict_u64(d, "port_ibytes", p->ibytes);
    rte_tel_data_add_dict_u64(d, "port_obytes", p->obytes);
    rte_tel_data_add_dict_u64(d, "port_imissed", p->imissed);
    rte_tel_data_add_dict_u64(d, "port_ierrors", p->ierrors);
    rte_tel_data_add_dict_u64(d, "port_oerrors", p->oerrors);
    rte_tel_data_add_dict_u64(d, "port_rx_nombuf", p->rx_nombuf);
    return 0;
}

static void add_pool(struct rte_tel_data *d, const char *name) {
    struct rte_mempool *mp = rte_mempool_lookup(name);
    struct rte_tel_data *x = mp != NULL ? rte_tel_data_alloc() : NULL;
    if (x == NULL)
        return;
    unsigned avail = rte_mempool_avail_count(mp);
    rte_tel_data_start_dict(x);
    rte_tel_data_add_dict_u64(x, "size", mp->size);
    rte_tel_data_add_dict_u64(x, "free", avail);
    rte_tel_data_add_dict_u64(x, "in_use", mp->size - avail);
    rte_tel_data_add_dict_container(d, name, x, 0);
}

static int cmd_pools(const char *cmd, const char *params, struct rte_tel_data *d) {
    (void)cmd;
    (void)params;
    rte_tel_data_start_dict(d);
    add_pool(d, DPN_RX_POOL);
    for (unsigned i = 1; i < tel->nb_queues && i < DPN_MAX_SLOTS; i++) {
        char name[DPN_NAME + 1];
        snprintf(name, sizeof(name), "%.*s", DPN_NAME, tel->slots[i].pool);
        add_pool(d, name);
    }
    return 0;
}

void dpnd_telemetry_init(const struct dpnd *d) {
    static const struct {
        const char *cmd;
        telemetry_cb fn;
        const char *help;
    } cmds[] = {
        {"/dpnet/workers", cmd_workers, "Attached workers by slot. No parameters."},
        {"/dpnet/bindings", cmd_bindings, "Bound ports, their workers and steering."},
        {"/dpnet/flows", cmd_flows, "Steering rules, as dpnetctl flows prints them."},
        {"/dpnet/neigh", cmd_neigh, "Neighbor table: IPv4 address -> MAC."},
        {"/dpnet/stats", cmd_stats, "dpnetd's and the port's counters."},
        {"/dpnet/pools", cmd_pools, "Mbuf pools: size, free, in use."},
    };
    tel = d->shm;
    for (unsigned i = 0; i < RTE_DIM(cmds); i++)
        if (rte_telemetry_register_cmd(cmds[i].cmd, cmds[i].fn, cmds[i].help) != 0)
            DPN_LOG(WARNING, app, "telemetry: cannot register %s", cmds[i].cmd);
}
