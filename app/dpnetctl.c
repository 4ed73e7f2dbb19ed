/* dpnetctl: look inside a running dpnetd, like ip(8) or ethtool -S.
 *
 *   dpnetctl --file-prefix PREFIX [workers|bindings|flows|neigh|stats|pools|device|all]
 *
 * It attaches as a read-only DPDK secondary: it reads the daemon's shared
 * memory (abi/abi.h) and the port's counters and changes nothing. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_log.h>
#include <rte_memzone.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "abi.h"
#include "dpnetctl.h"

static const char *state_name(uint32_t s) {
    return s == DPN_SLOT_ATTACHED ? "attached" : s == DPN_SLOT_RECLAIM ? "reclaim" : "free";
}

static void show_workers(const struct dpn_shm *s) {
    printf("%-4s %-8s %-7s %-5s %-5s %-20s %10s %12s %10s %12s %6s %10s %9s\n", "SLOT", "STATE",
           "PID", "LCORE", "QUEUE", "APP", "RX_PKTS", "RX_BYTES", "TX_PKTS", "TX_BYTES", "CONNS",
           "STEERED", "RING_FULL");
    for (unsigned i = 1; i < s->nb_queues && i < DPN_MAX_SLOTS; i++) {
        const struct dpn_slot *w = &s->slots[i];
        if (w->state == DPN_SLOT_FREE) {
            printf("%-4u %-8s\n", i, "free");
            continue;
        }
        printf("%-4u %-8s %-7d %-5d %-5u %-20.20s %10" PRIu64 " %12" PRIu64 " %10" PRIu64
               " %12" PRIu64 " %6u %10" PRIu64 " %9" PRIu64 "\n",
               i, state_name(w->state), w->pid, w->lcore, w->queue, w->app, w->wr.rx_pkts,
               w->wr.rx_bytes, w->wr.tx_pkts, w->wr.tx_bytes, w->wr.conns_open, w->ring_enq,
               w->ring_full);
    }
}

static void show_bindings(const struct dpn_shm *s) {
    printf("%-6s %-5s %-20s %-10s %-9s %10s\n", "PORT", "PROTO", "APP", "WORKERS", "STEERING",
           "SW_HITS");
    for (unsigned b = 1; b <= DPN_MAX_BINDINGS; b++) {
        const struct dpn_binding *x = &s->bindings[b];
        if (x->proto == 0)
            continue;
        char slots[64] = "";
        size_t n = 0;
        for (unsigned i = 1; i < DPN_MAX_SLOTS; i++)
            if (x->slots & (1u << i))
                n += (size_t)snprintf(slots + n, sizeof(slots) - n, "%s%u", n ? "," : "", i);
        printf("%-6u %-5s %-20.20s %-10s %-9s %10" PRIu64 "\n", x->port, dpn_proto_name(x->proto),
               x->app, slots, x->hw ? "rule" : "software", x->hits);
    }
}

static void show_flows(const struct dpn_shm *s) {
    char ip[16];
    dpn_ip_str(s->ip, ip, sizeof(ip));
    printf("steering backend: %s\n", s->steering);
    for (unsigned b = 1; b <= DPN_MAX_BINDINGS; b++) {
        const struct dpn_binding *x = &s->bindings[b];
        if (x->proto == 0)
            continue;
        printf("%-8.16s eth / ipv4 dst %s / %s dst %u -> queues", x->hw ? s->steering : "software",
               ip, dpn_proto_name(x->proto), x->port);
        for (unsigned i = 1; i < DPN_MAX_SLOTS; i++)
            if (x->slots & (1u << i))
                printf(" %u", s->slots[i].queue);
        printf("\n");
    }
    for (unsigned i = 1; i < s->nb_queues && i < DPN_MAX_SLOTS; i++)
        if (s->slots[i].state == DPN_SLOT_ATTACHED)
            printf("%-8.16s eth / ipv4 dst %s / tcp,udp dst %u-%u -> queue %u (outgoing%s)\n",
                   s->hw_steering && s->slots[i].eph_rules == 3 ? s->steering : "software", ip,
                   s->slots[i].eph_lo, s->slots[i].eph_hi, s->slots[i].queue,
                   s->hw_steering && s->slots[i].eph_rules != 3 ? "; a rule per port in use" : "");
}

static void show_neigh(const struct dpn_shm *s) {
    printf("%-16s %-18s %s\n", "IP", "MAC", "STATE");
    for (unsigned i = 0; i < DPN_NEIGH_SIZE; i++) {
        const struct dpn_neigh *e = &s->neigh[i];
        char ip[16];
        if (e->ip == 0)
            continue;
        dpn_ip_str(e->ip, ip, sizeof(ip));
        printf("%-16s " RTE_ETHER_ADDR_PRT_FMT " %s\n", ip, RTE_ETHER_ADDR_BYTES(&e->mac),
               e->valid ? "reachable" : "stale");
    }
}

static void show_pools(const struct dpn_shm *s) {
    printf("%-12s %8s %8s %8s\n", "POOL", "SIZE", "FREE", "IN_USE");
    char names[DPN_MAX_SLOTS + 1][DPN_NAME];
    unsigned n = 0;
    snprintf(names[n++], DPN_NAME, "%s", DPN_RX_POOL);
    for (unsigned i = 1; i < s->nb_queues && i < DPN_MAX_SLOTS; i++)
        snprintf(names[n++], DPN_NAME, "%s", s->slots[i].pool);
    for (unsigned i = 0; i < n; i++) {
        struct rte_mempool *mp = rte_mempool_lookup(names[i]);
        if (mp == NULL)
            continue;
        unsigned avail = rte_mempool_avail_count(mp);
        printf("%-12s %8u %8u %8u\n", names[i], mp->size, avail, mp->size - avail);
    }
}

static void show_stats(const struct dpn_shm *s) {
    printf("dpnetd: rx %" PRIu64 " frames, %" PRIu64 " kept (ARP/ICMP/unclaimed), %" PRIu64
           " control requests, %" PRIu64 " rejected\n",
           s->rx_pkts, s->to_daemon, s->ctl_requests, s->ctl_rejected);
    printf("dpnetd: %" PRIu64 " sleeps, %" PRIu64 " ended by a frame's event\n", s->idle_sleeps,
           s->rx_wakeups);
    if (s->to_kernel + s->from_kernel > 0)
        printf("exception path: %" PRIu64 " frames to the kernel, %" PRIu64 " from it, %" PRIu64
               " dropped\n",
               s->to_kernel, s->from_kernel, s->exc_drops);
    /* dpnetd's copy: reading the port here would race its reads (abi.h). */
    const struct dpn_port_stats *st = &s->port_stats;
    printf("port %u: ipackets %" PRIu64 " opackets %" PRIu64 " imissed %" PRIu64 " ierrors %" PRIu64
           " oerrors %" PRIu64 " rx_nombuf %" PRIu64 "\n",
           s->port_id, st->ipackets, st->opackets, st->imissed, st->ierrors, st->oerrors,
           st->rx_nombuf);
    printf("%-5s %12s %12s %12s %10s %10s\n", "QUEUE", "RX_PKTS", "TX_PKTS", "RING_IN", "RING_FULL",
           "WORKER");
    for (unsigned q = 0; q < s->nb_queues && q < DPN_MAX_SLOTS; q++) {
        const struct dpn_slot *w = &s->slots[q];
        printf("%-5u %12" PRIu64 " %12" PRIu64 " %12" PRIu64 " %10" PRIu64 " %10d\n", q,
               st->q_ipackets[q], st->q_opackets[q], q ? w->ring_enq : 0, q ? w->ring_full : 0,
               w->state == DPN_SLOT_ATTACHED ? w->pid : 0);
    }
    show_pools(s);
}

/* ---- --json: the same views as JSON values ---- */

/* s as a JSON string (at most n bytes of it: shared strings may lack a NUL). */
static void json_str(const char *s, size_t n) {
    putchar('"');
    for (size_t i = 0; i < n && s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void json_workers(const struct dpn_shm *s) {
    printf("[");
    bool first = true;
    for (unsigned i = 1; i < s->nb_queues && i < DPN_MAX_SLOTS; i++) {
        const struct dpn_slot *w = &s->slots[i];
        printf("%s{\"slot\": %u, \"state\": \"%s\"", first ? "" : ", ", i, state_name(w->state));
        first = false;
        if (w->state != DPN_SLOT_FREE) {
            printf(", \"pid\": %d, \"lcore\": %d, \"queue\": %u, \"app\": ", w->pid, w->lcore,
                   w->queue);
            json_str(w->app, sizeof(w->app));
            printf(", \"rx_pkts\": %" PRIu64 ", \"rx_bytes\": %" PRIu64 ", \"tx_pkts\": %" PRIu64
                   ", \"tx_bytes\": %" PRIu64 ", \"conns\": %u, \"steered\": %" PRIu64
                   ", \"ring_full\": %" PRIu64,
                   w->wr.rx_pkts, w->wr.rx_bytes, w->wr.tx_pkts, w->wr.tx_bytes, w->wr.conns_open,
                   w->ring_enq, w->ring_full);
        }
        printf("}");
    }
    printf("]");
}

static void json_bindings(const struct dpn_shm *s) {
    printf("[");
    bool first = true;
    for (unsigned b = 1; b <= DPN_MAX_BINDINGS; b++) {
        const struct dpn_binding *x = &s->bindings[b];
        if (x->proto == 0)
            continue;
        printf("%s{\"port\": %u, \"proto\": \"%s\", \"app\": ", first ? "" : ", ", x->port,
               dpn_proto_name(x->proto));
        first = false;
        json_str(x->app, sizeof(x->app));
        printf(", \"workers\": [");
        bool f2 = true;
        for (unsigned i = 1; i < DPN_MAX_SLOTS; i++)
            if (x->slots & (1u << i)) {
                printf("%s%u", f2 ? "" : ", ", i);
                f2 = false;
            }
        printf("], \"steering\": \"%s\", \"sw_hits\": %" PRIu64 "}", x->hw ? "rule" : "software",
               x->hits);
    }
    printf("]");
}

static void json_flows(const struct dpn_shm *s) {
    char ip[16];
    dpn_ip_str(s->ip, ip, sizeof(ip));
    printf("{\"backend\": ");
    json_str(s->steering, sizeof(s->steering));
    printf(", \"rules\": [");
    bool first = true;
    for (unsigned b = 1; b <= DPN_MAX_BINDINGS; b++) {
        const struct dpn_binding *x = &s->bindings[b];
        if (x->proto == 0)
            continue;
        printf("%s{\"by\": ", first ? "" : ", ");
        first = false;
        json_str(x->hw ? s->steering : "software", 16);
        printf(", \"dst\": \"%s\", \"proto\": \"%s\", \"port\": %u, \"queues\": [", ip,
               dpn_proto_name(x->proto), x->port);
        bool f2 = true;
        for (unsigned i = 1; i < DPN_MAX_SLOTS; i++)
            if (x->slots & (1u << i)) {
                printf("%s%u", f2 ? "" : ", ", s->slots[i].queue);
                f2 = false;
            }
        printf("]}");
    }
    for (unsigned i = 1; i < s->nb_queues && i < DPN_MAX_SLOTS; i++) {
        const struct dpn_slot *w = &s->slots[i];
        if (w->state != DPN_SLOT_ATTACHED)
            continue;
        printf("%s{\"by\": ", first ? "" : ", ");
        first = false;
        json_str(s->hw_steering && w->eph_rules == 3 ? s->steering : "software", 16);
        printf(", \"dst\": \"%s\", \"proto\": \"tcp,udp\", \"ports\": [%u, %u], \"queues\": "
               "[%u], \"outgoing\": true, \"rule_per_port\": %s}",
               ip, w->eph_lo, w->eph_hi, w->queue,
               s->hw_steering && w->eph_rules != 3 ? "true" : "false");
    }
    printf("]}");
}

static void json_neigh(const struct dpn_shm *s) {
    printf("[");
    bool first = true;
    for (unsigned i = 0; i < DPN_NEIGH_SIZE; i++) {
        const struct dpn_neigh *e = &s->neigh[i];
        if (e->ip == 0)
            continue;
        char ip[16];
        dpn_ip_str(e->ip, ip, sizeof(ip));
        printf("%s{\"ip\": \"%s\", \"mac\": \"" RTE_ETHER_ADDR_PRT_FMT "\", \"state\": \"%s\"}",
               first ? "" : ", ", ip, RTE_ETHER_ADDR_BYTES(&e->mac),
               e->valid ? "reachable" : "stale");
        first = false;
    }
    printf("]");
}

static void json_pools(const struct dpn_shm *s) {
    printf("[");
    for (unsigned i = 0; i < s->nb_queues && i < DPN_MAX_SLOTS; i++) {
        char name[DPN_NAME + 1];
        snprintf(name, sizeof(name), "%.*s", DPN_NAME, i == 0 ? DPN_RX_POOL : s->slots[i].pool);
        struct rte_mempool *mp = rte_mempool_lookup(name);
        unsigned avail = mp != NULL ? rte_mempool_avail_count(mp) : 0;
        printf("%s{\"pool\": ", i ? ", " : "");
        json_str(name, sizeof(name));
        printf(", \"size\": %u, \"free\": %u, \"in_use\": %u}", mp != NULL ? mp->size : 0, avail,
               mp != NULL ? mp->size - avail : 0);
    }
    printf("]");
}

static void json_stats(const struct dpn_shm *s) {
    const struct dpn_port_stats *p = &s->port_stats;
    printf("{\"rx_pkts\": %" PRIu64 ", \"to_daemon\": %" PRIu64 ", \"ctl_requests\": %" PRIu64
           ", \"ctl_rejected\": %" PRIu64 ", \"to_kernel\": %" PRIu64 ", \"from_kernel\": %" PRIu64
           ", \"exc_drops\": %" PRIu64 ", \"idle_sleeps\": %" PRIu64 ", \"rx_wakeups\": %" PRIu64
           ", \"port\": {\"ipackets\": %" PRIu64 ", \"opackets\": %" PRIu64
           ", \"imissed\": %" PRIu64 ", \"ierrors\": %" PRIu64 ", \"oerrors\": %" PRIu64
           ", \"rx_nombuf\": %" PRIu64 ", \"queues\": [",
           s->rx_pkts, s->to_daemon, s->ctl_requests, s->ctl_rejected, s->to_kernel, s->from_kernel,
           s->exc_drops, s->idle_sleeps, s->rx_wakeups, p->ipackets, p->opackets, p->imissed,
           p->ierrors, p->oerrors, p->rx_nombuf);
    for (unsigned q = 0; q < s->nb_queues && q < DPN_MAX_SLOTS; q++)
        printf("%s{\"rx_pkts\": %" PRIu64 ", \"tx_pkts\": %" PRIu64 "}", q ? ", " : "",
               p->q_ipackets[q], p->q_opackets[q]);
    printf("]}, \"pools\": ");
    json_pools(s);
    printf("}");
}

/* One view's value, or for "all" an object of every view. */
static void show_json(const struct dpn_shm *s, const char *cmd) {
    static const struct {
        const char *name;
        void (*fn)(const struct dpn_shm *);
    } views[] = {{"workers", json_workers}, {"bindings", json_bindings}, {"flows", json_flows},
                 {"neigh", json_neigh},     {"stats", json_stats},       {"pools", json_pools}};
    bool all = strcmp(cmd, "all") == 0;
    if (!strcmp(cmd, "device") || all) {
        printf(all ? "{\"device\": {\"name\": " : "{\"name\": ");
        json_str(s->port_dev, sizeof(s->port_dev));
        printf(", \"bus\": \"%s\"}", s->port_pci ? "pci" : "vdev");
    }
    for (size_t i = 0; i < sizeof(views) / sizeof(views[0]); i++) {
        if (!all && strcmp(cmd, views[i].name) != 0)
            continue;
        if (all && strcmp(views[i].name, "pools") == 0)
            continue; /* inside stats */
        if (all)
            printf(", \"%s\": ", views[i].name);
        views[i].fn(s);
    }
    printf(all ? "}\n" : "\n");
}

/* ---- conns: ask dpnetd, which asks every worker to list its connections ---- */

static const char *tcp_state_name(uint8_t st) {
    static const char *const names[] = {"CLOSED",  "LISTEN",     "SYN-SENT",   "SYN-RECV",
                                        "ESTAB",   "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT",
                                        "CLOSING", "LAST-ACK",   "TIME-WAIT"};
    return st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

/* DPN_REQ_CONNS over dpnetd's control socket: 0, or -1 with a message. */
static int ask_conns(void) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", rte_eal_get_runtime_dir(), DPN_CTL_SOCKET);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct dpn_req rq = {.abi = DPN_ABI_VERSION, .type = DPN_REQ_CONNS, .seq = 1};
    struct dpn_rep rep;
    memset(&rep, 0, sizeof(rep));
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int rc = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
                     send(fd, &rq, sizeof(rq), MSG_NOSIGNAL) == sizeof(rq) &&
                     poll(&p, 1, 2000) > 0 && recv(fd, &rep, sizeof(rep), 0) == sizeof(rep) &&
                     rep.err == 0
                 ? 0
                 : -1;
    if (rc != 0)
        fprintf(stderr, "dpnetctl: dpnetd did not take the request for connections (%s)\n",
                rep.err != 0 ? strerror(rep.err) : strerror(errno));
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Every attached worker's listing (of application app, or all), once each
 * has answered or 2 s have passed. */
static int show_conns(const struct dpn_shm *s, const char *app, bool json) {
    if (ask_conns() != 0)
        return 1;
    uint32_t want[DPN_MAX_SLOTS] = {0};
    int pid[DPN_MAX_SLOTS] = {0};
    for (unsigned i = 1; i < s->nb_queues && i < DPN_MAX_SLOTS; i++) {
        want[i] = __atomic_load_n(&s->slots[i].conns_req, __ATOMIC_ACQUIRE);
        pid[i] = s->slots[i].state == DPN_SLOT_ATTACHED ? s->slots[i].pid : 0;
        if (app != NULL && strncmp(s->slots[i].app, app, DPN_APP_NAME) != 0)
            pid[i] = 0;
    }
    const struct dpn_conns *z[DPN_MAX_SLOTS] = {NULL};
    for (int ms = 0; ms <= 2000; ms += 10) {
        bool all = true;
        for (unsigned i = 1; i < s->nb_queues && i < DPN_MAX_SLOTS; i++) {
            if (pid[i] == 0 || z[i] != NULL)
                continue;
            char name[DPN_NAME];
            snprintf(name, sizeof(name), DPN_CONNS_ZONE, i);
            const struct rte_memzone *mz = rte_memzone_lookup(name);
            const struct dpn_conns *c = mz != NULL && mz->len >= sizeof(*c) ? mz->addr : NULL;
            if (c != NULL && __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE) == want[i])
                z[i] = c;
            else
                all = false;
        }
        if (all)
            break;
        usleep(10000);
    }
    if (!json)
        printf("%-4s %-7s %-16s %-11s %-21s %-21s %9s %9s %7s %7s %9s %9s %5s %9s\n", "SLOT", "PID",
               "APP", "STATE", "LOCAL", "PEER", "SEND_Q", "RECV_Q", "SRTT", "RTO", "CWND",
               "SSTHRESH", "RETR", "AGE_MS");
    else
        printf("[");
    bool first = true;
    for (unsigned i = 1; i < s->nb_queues && i < DPN_MAX_SLOTS; i++) {
        if (pid[i] == 0)
            continue;
        char app_s[DPN_APP_NAME + 1];
        snprintf(app_s, sizeof(app_s), "%.*s", DPN_APP_NAME, s->slots[i].app);
        if (z[i] == NULL) {
            if (!json)
                printf("%-4u %-7d %-16.16s (did not answer within 2 s: stopped or busy)\n", i,
                       pid[i], app_s);
            continue;
        }
        unsigned n = z[i]->n < DPN_CONNS_MAX ? z[i]->n : DPN_CONNS_MAX;
        for (unsigned k = 0; k < n; k++) {
            const struct dpn_conn_info *e = &z[i]->c[k];
            char l[24], r[24], lip[16], rip[16];
            dpn_ip_str(e->lip, lip, sizeof(lip));
            dpn_ip_str(e->rip, rip, sizeof(rip));
            snprintf(l, sizeof(l), "%s:%u", lip, e->lport);
            snprintf(r, sizeof(r), "%s:%u", rip, e->rport);
            if (json) {
                printf("%s{\"slot\": %u, \"pid\": %d, \"app\": \"%s\", \"state\": \"%s\", "
                       "\"local\": \"%s\", \"peer\": \"%s\", \"send_q\": %u, \"recv_q\": %u, "
                       "\"srtt_ms\": %u, \"rto_ms\": %u, \"cwnd\": %u, \"ssthresh\": %u, "
                       "\"retrans\": %u, \"age_ms\": %u}",
                       first ? "" : ", ", i, pid[i], app_s, tcp_state_name(e->state), l, r,
                       e->snd_queue, e->rcv_queue, e->srtt_ms, e->rto_ms, e->cwnd, e->ssthresh,
                       e->retrans, e->age_ms);
                first = false;
                continue;
            }
            printf("%-4u %-7d %-16.16s %-11s %-21s %-21s %9u %9u %5ums %5ums %9u %9u %5u %9u\n", i,
                   pid[i], app_s, tcp_state_name(e->state), l, r, e->snd_queue, e->rcv_queue,
                   e->srtt_ms, e->rto_ms, e->cwnd, e->ssthresh, e->retrans, e->age_ms);
        }
        if (!json && (z[i]->total > n || z[i]->time_wait > 0))
            printf("%-4u %-7d %-16.16s (%u more not listed, %u in TIME-WAIT)\n", i, pid[i], app_s,
                   z[i]->total > n ? z[i]->total - n : 0, z[i]->time_wait);
    }
    if (json)
        printf("]\n");
    return 0;
}

static const char usage_text[] =
    "usage: dpnetctl --file-prefix PREFIX [VIEW] [--json]\n"
    "       dpnetctl --file-prefix PREFIX conns [--app NAME] [--json]\n"
    "       dpnetctl --file-prefix PREFIX capture -w FILE [--worker N | --app NAME]\n"
    "                [--port P] [--count N] [--duration S] [--snaplen N] [FILTER]\n"
    "\n"
    "Looks inside the dpnetd running with that DPDK file prefix (as a read-only\n"
    "DPDK secondary; it changes nothing there). VIEW (default all):\n"
    "  workers   attached workers: slot, pid, lcore, queue, application, counters\n"
    "  bindings  bound ports: application, workers, rule or software steering\n"
    "  flows     the steering rules, as the backend holds them\n"
    "  neigh     dpnetd's neighbor (ARP) table, which the workers read\n"
    "  stats     dpnetd's counters, the port's and each queue's, the pools\n"
    "  pools     mbuf pools: size, free, in use\n"
    "  device    the port's DPDK name and bus (a PCI port: workers pass -a NAME)\n"
    "  conns     every connection of every attached worker, like ss -tni\n"
    "            (--app NAME: one application's)\n"
    "  --json    the view as JSON (all: one object of every view)\n"
    "\n"
    "capture writes a pcapng file (FILE, or - for standard output) of both\n"
    "directions of every worker and of dpnetd, or of one worker (--worker SLOT)\n"
    "or application (--app NAME), until Ctrl-C, N frames or S seconds. FILTER\n"
    "is tcpdump's syntax (at most 175 characters), --snaplen keeps N bytes of\n"
    "each frame. The file is opened here, with your rights; dpnetd (root or its\n"
    "user only) writes it. A frame's queue number in the file is its worker's\n"
    "slot, 0 for dpnetd. Read it with tcpdump -r FILE or tshark -r FILE.\n"
    "Exit status: 0, 1 when no dpnetd runs with that prefix or it cannot be read,\n"
    "2 for a usage error.\n";

static int usage(void) {
    fputs(usage_text, stderr);
    return 2;
}

/* One attempt to attach, in a child process: rte_eal_init cannot run twice
 * in one process (after most failures it answers EALREADY), so a retry
 * needs a fresh process. The child prints the tables itself; its stderr
 * (EAL's messages, routed there) goes to the parent, which shows it only
 * when the last attempt failed. */
enum { ATT_OK = 0, ATT_ABI = 10, ATT_NO_SHM = 11, ATT_EAL = 12 };

static const char *opt_app;
static bool opt_json;

static int attach_and_show(const char *prog, const char *prefix, const char *cmd) {
    char pfx[300];
    snprintf(pfx, sizeof(pfx), "--file-prefix=%s", prefix);
    char *eal[] = {(char *)prog, "--proc-type=secondary", pfx, "--no-pci", "-l",
                   "0",          "--log-level=error",     NULL};
    /* EAL logs to stdout (and syslog) once its log is set up: keep the
     * tables on stdout alone. */
    rte_openlog_stream(stderr);
    if (rte_eal_init(7, eal) < 0) {
        fprintf(stderr, "EAL init as a secondary of dpnetd failed: %s\n",
                rte_errno != 0 ? rte_strerror(rte_errno) : "no error code (EAL's message above)");
        return ATT_EAL;
    }
    const struct rte_memzone *mz = rte_memzone_lookup(DPN_SHM_NAME);
    const struct dpn_shm *s = mz != NULL ? mz->addr : NULL;
    if (s == NULL || s->magic != DPN_SHM_MAGIC) {
        fprintf(stderr, "no dpnetd shared memory ('%s') under this prefix yet\n", DPN_SHM_NAME);
        rte_eal_cleanup();
        return ATT_NO_SHM;
    }
    if (s->abi != DPN_ABI_VERSION) {
        fprintf(stderr, "dpnetd speaks ABI %u, dpnetctl %u: use the dpnetctl of that dpnetd\n",
                (unsigned)s->abi, (unsigned)DPN_ABI_VERSION);
        rte_eal_cleanup();
        return ATT_ABI;
    }
    if (!strcmp(cmd, "conns")) {
        int rc = show_conns(s, opt_app, opt_json);
        fflush(stdout);
        rte_eal_cleanup();
        return rc;
    }
    if (opt_json) {
        show_json(s, cmd);
        fflush(stdout);
        rte_eal_cleanup();
        return ATT_OK;
    }
    bool all = strcmp(cmd, "all") == 0;
    if (all || !strcmp(cmd, "workers"))
        show_workers(s);
    if (all || !strcmp(cmd, "bindings"))
        show_bindings(s);
    if (all || !strcmp(cmd, "flows"))
        show_flows(s);
    if (all || !strcmp(cmd, "device")) /* the port, as a worker's EAL must name it */
        printf("%.64s %s\n", s->port_dev, s->port_pci ? "pci" : "vdev");
    if (all || !strcmp(cmd, "neigh"))
        show_neigh(s);
    if (all || !strcmp(cmd, "stats"))
        show_stats(s);
    else if (!strcmp(cmd, "pools"))
        show_pools(s);
    fflush(stdout);
    rte_eal_cleanup();
    return ATT_OK;
}

/* Runs one attempt; its stderr into buf. Returns its exit code, or
 * 128 + signal. */
static int attempt(const char *prog, const char *prefix, const char *cmd, char *buf, size_t n) {
    int fds[2];
    if (pipe(fds) != 0)
        return snprintf(buf, n, "pipe: %s\n", strerror(errno)), ATT_EAL;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return snprintf(buf, n, "fork: %s\n", strerror(errno)), ATT_EAL;
    }
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        close(fds[1]);
        _exit(attach_and_show(prog, prefix, cmd));
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t r;
    char drop[512];
    /* Keep the first n-1 bytes (EAL's reason comes first), drain the rest. */
    while ((r = read(fds[0], len + 1 < n ? buf + len : drop,
                     len + 1 < n ? n - 1 - len : sizeof(drop))) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        if (len + 1 < n)
            len += (size_t)r;
    }
    buf[len] = '\0';
    close(fds[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static bool primary_alive(const char *cfg) {
    return access(cfg, F_OK) == 0 && rte_eal_primary_proc_alive(cfg) == 1;
}

int main(int argc, char **argv) {
    const char *prefix = NULL, *cmd = "all";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return fputs(usage_text, stdout) < 0;
        if (strcmp(argv[i], "--file-prefix") == 0 && i + 1 < argc)
            prefix = argv[++i];
        else if (strncmp(argv[i], "--file-prefix=", 14) == 0)
            prefix = argv[i] + 14;
        else if (strcmp(argv[i], "--app") == 0 && i + 1 < argc)
            opt_app = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            opt_json = true;
        else if (strcmp(argv[i], "capture") == 0 && prefix != NULL) { /* the rest is its own */
            if (strlen(prefix) > 200)
                return usage();
            return dpnetctl_capture(prefix, argc - i - 1, argv + i + 1);
        } else if (argv[i][0] != '-')
            cmd = argv[i];
        else
            return usage();
    }
    const char *cmds[] = {"workers", "bindings", "flows", "neigh", "stats",
                          "pools",   "device",   "conns", "all"};
    bool known = false;
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        known = known || strcmp(cmd, cmds[i]) == 0;
    if (prefix == NULL || !known || strlen(prefix) > 200)
        return usage();
    /* dpnetd, as DPDK's primary, holds a lock on its runtime config file
     * for as long as it lives: no lock, no dpnetd, whatever files remain. */
    char cfg[512];
    snprintf(cfg, sizeof(cfg), "/var/run/dpdk/%s/config", prefix);
    /* A secondary's EAL init can fail while dpnetd runs (dpnetd still
     * starting, a mapping that collides, a multi-process request that times
     * out under load): retry a few times, backing off 50 ms to 800 ms. */
    enum { ATTEMPTS = 5 };
    char why[4096] = "", first[4096] = "";
    int rc = ATT_EAL, n = 0;
    for (unsigned delay_ms = 50; n < ATTEMPTS; delay_ms *= 2) {
        if (!primary_alive(cfg)) {
            fprintf(stderr, "dpnetctl: no dpnetd is running with --file-prefix %s\n", prefix);
            return 1;
        }
        n++;
        rc = attempt(argv[0], prefix, cmd, why, sizeof(why));
        if (rc == ATT_OK || rc == ATT_ABI)
            break;
        if (n == 1)
            snprintf(first, sizeof(first), "%s", why);
        if (n < ATTEMPTS)
            usleep(delay_ms * 1000);
    }
    if (rc == ATT_OK) {
        if (n > 1) /* the cause, even when a retry got through */
            fprintf(stderr, "dpnetctl: attached on attempt %d; the first failed: %s", n, first);
        return 0;
    }
    fprintf(stderr,
            "dpnetctl: dpnetd is running with --file-prefix %s, but dpnetctl could not "
            "attach to it (%d attempt%s). ",
            prefix, n, n > 1 ? "s" : "");
    if (rc > 128)
        fprintf(stderr, "The last attempt died of signal %d.\n", rc - 128);
    else
        fprintf(stderr, "The last attempt said:\n");
    fputs(why, stderr);
    return 1;
}
