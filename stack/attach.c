/* Attached mode: a worker that is a DPDK secondary of dpnetd. The daemon
 * owns the port, answers ARP and steers our flows to us; we get a queue
 * pair, a TX pool, a ring for software-steered frames and the neighbor
 * table, all through shared memory (drivers/abi.h). Control requests go
 * over rte_mp; none of them is on the per-packet path except a neighbor
 * miss, which is a one-way message while the frame waits. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_random.h>
#include <rte_memzone.h>
#include <rte_ring.h>

#include "lwip/etharp.h"
#include "lwip/ip4.h"
#include "lwip/tcp.h"
#include "netif/ethernet.h"

#include "abi.h"
#include "buf.h"
#include "log.h"
#include "neigh.h"
#include "trace.h"
#include "worker.h"

#define CTL_TIMEOUT_S 2
#define PENDING_MS 1000 /* how long a frame waits for its neighbor */
#define RESOLVE_GAP_MS 100

static int ctl_send(const struct dpn_req *rq, struct dpn_rep *rep) {
    struct rte_mp_msg msg;
    struct rte_mp_reply reply;
    struct timespec ts = {.tv_sec = CTL_TIMEOUT_S};
    memset(&msg, 0, sizeof(msg));
    snprintf(msg.name, sizeof(msg.name), "%s", DPN_MP_ACTION);
    msg.len_param = sizeof(*rq);
    memcpy(msg.param, rq, sizeof(*rq));
    if (rep == NULL) /* one-way */
        return rte_mp_sendmsg(&msg) == 0 ? 0 : -DPN_EIO;
    if (rte_mp_request_sync(&msg, &reply, &ts) != 0 || reply.nb_received != 1) {
        if (reply.nb_received > 0)
            free(reply.msgs);
        snprintf(rep->msg, sizeof(rep->msg), "dpnetd did not answer within %d s", CTL_TIMEOUT_S);
        rep->err = EIO;
        return -DPN_EIO;
    }
    memset(rep, 0, sizeof(*rep));
    size_t n = (size_t)reply.msgs[0].len_param;
    memcpy(rep, reply.msgs[0].param, n < sizeof(*rep) ? n : sizeof(*rep));
    rep->msg[sizeof(rep->msg) - 1] = '\0';
    free(reply.msgs);
    return rep->err == 0 ? 0 : -rep->err;
}

static void req_init(const struct dpn_worker *w, struct dpn_req *rq, uint16_t type) {
    memset(rq, 0, sizeof(*rq));
    rq->abi = DPN_ABI_VERSION;
    rq->type = type;
    if (w->att != NULL) {
        rq->slot = w->att->slot_id;
        rq->token = w->att->token;
    }
}

static int check_shm(const struct dpn_shm *shm, const char *prog) {
    if (shm->magic != DPN_SHM_MAGIC || shm->abi != DPN_ABI_VERSION) {
        fprintf(stderr, "%s: dpnetd speaks ABI %u, this library ABI %u: use matching versions\n",
                prog, shm->abi, DPN_ABI_VERSION);
        return -DPN_ENOTSUP;
    }
    if (strncmp(shm->version, DPN_VERSION, sizeof(shm->version)) != 0) {
        fprintf(stderr, "%s: dpnetd is version %.16s, this library %s: use matching versions\n",
                prog, shm->version, DPN_VERSION);
        return -DPN_ENOTSUP;
    }
    return 0;
}

static void adopt_port(struct dpn_worker *w, const struct dpn_shm *shm) {
    w->port_id = shm->port_id;
    w->mac = shm->mac;
    w->cfg.ip = rte_be_to_cpu_32(shm->ip);
    w->cfg.prefix_len = shm->prefix_len;
    w->cfg.gateway = rte_be_to_cpu_32(shm->gateway);
    w->cfg.ip_set = true;
    memset(&w->caps, 0, sizeof(w->caps));
    w->caps.mtu = shm->mtu;
    w->caps.tx_ip_cksum = shm->tx_ip_cksum;
    w->caps.tx_tcp_cksum = shm->tx_tcp_cksum;
    w->caps.tx_udp_cksum = shm->tx_udp_cksum;
    w->caps.rx_l4_cksum = shm->rx_l4_cksum;
    snprintf(w->caps.driver, sizeof(w->caps.driver), "dpnetd");
}

int dpn_attach(struct dpn_worker *w, const char *prog) {
    const struct rte_memzone *mz = rte_memzone_lookup(DPN_SHM_NAME);
    if (mz == NULL) {
        fprintf(stderr, "%s: no dpnetd found for this --file-prefix (start dpnetd first)\n", prog);
        return -DPN_ENODEV;
    }
    struct dpn_shm *shm = mz->addr;
    int rc = check_shm(shm, prog);
    if (rc != 0)
        return rc;
    struct dpn_attach *a = dpn_zalloc(sizeof(*a));
    if (a == NULL)
        return -DPN_ENOMEM;

    struct dpn_req rq;
    struct dpn_rep rep;
    req_init(w, &rq, DPN_REQ_ATTACH);
    rq.attach.pid = getpid();
    rq.attach.lcore = (int32_t)rte_lcore_id();
    if (w->cfg.app[0] != '\0')
        snprintf(rq.attach.app, sizeof(rq.attach.app), "%s", w->cfg.app);
    else
        snprintf(rq.attach.app, sizeof(rq.attach.app), "%.20s:%d",
                 strrchr(prog, '/') ? strrchr(prog, '/') + 1 : prog, (int)getpid());
    snprintf(rq.attach.version, sizeof(rq.attach.version), "%s", DPN_VERSION);
    rc = ctl_send(&rq, &rep);
    if (rc != 0) {
        fprintf(stderr, "%s: dpnetd refused to attach: %s\n", prog, rep.msg);
        dpn_free(a);
        return rc;
    }
    a->shm = shm;
    a->slot_id = rep.slot;
    a->token = rep.token;
    a->slot = &shm->slots[rep.slot];
    a->poll_queue = shm->hw_steering;
    a->tag = dpn_tag(rep.slot, a->slot->gen);
    w->att = a;
    w->queue_id = rep.queue;
    w->pool = rte_mempool_lookup(a->slot->pool);
    a->ring = rte_ring_lookup(a->slot->ring);
    if (w->pool == NULL || a->ring == NULL) {
        fprintf(stderr, "%s: dpnetd's pool %s or ring %s is missing\n", prog, a->slot->pool,
                a->slot->ring);
        dpn_detach(w);
        return -DPN_EIO;
    }
    adopt_port(w, shm);
    w->rx_pool = rte_mempool_lookup(DPN_RX_POOL); /* frames come from dpnetd's pool */
    a->eph_next = (uint16_t)(a->slot->eph_lo + rte_rand() % DPN_EPH_PER_SLOT);
    DPN_LOG(INFO, stack, "attached to dpnetd (pid %d) as %s: slot %u, queue %u, ports %u-%u",
            shm->daemon_pid, rq.attach.app, a->slot_id, w->queue_id, a->slot->eph_lo,
            a->slot->eph_hi);
    return 0;
}

void dpn_detach(struct dpn_worker *w) {
    struct dpn_attach *a = w->att;
    if (a == NULL)
        return;
    for (unsigned i = 0; i < a->npending; i++)
        pbuf_free(a->pending[i].p);
    a->npending = 0;
    /* Give back what is still queued for us before the daemon reclaims it. */
    struct rte_mbuf *pkts[DPN_BURST];
    unsigned n;
    while (a->ring != NULL &&
           (n = rte_ring_sc_dequeue_burst(a->ring, (void **)pkts, DPN_BURST, NULL)) > 0)
        for (unsigned i = 0; i < n; i++)
            dpn_mbuf_drop(pkts[i]);
    /* Hand back what our lcore's caches hold, so the pools count whole. */
    unsigned lc = rte_lcore_id();
    if (lc < RTE_MAX_LCORE) {
        struct rte_mempool *rx = rte_mempool_lookup(DPN_RX_POOL);
        if (rx != NULL && rx->cache_size > 0)
            rte_mempool_cache_flush(rte_mempool_default_cache(rx, lc), rx);
        if (w->pool != NULL && w->pool->cache_size > 0)
            rte_mempool_cache_flush(rte_mempool_default_cache(w->pool, lc), w->pool);
    }
    struct dpn_req rq;
    struct dpn_rep rep;
    req_init(w, &rq, DPN_REQ_DETACH);
    ctl_send(&rq, &rep);
    w->att = NULL;
    dpn_free(a);
}

int dpn_ctl_bind(struct dpn_worker *w, uint8_t proto, uint16_t port, bool listen) {
    if (w->att == NULL)
        return 0;
    struct dpn_req rq;
    struct dpn_rep rep;
    req_init(w, &rq, DPN_REQ_BIND);
    rq.bind.proto = proto;
    rq.bind.port = port;
    rq.bind.listen = listen;
    int rc = ctl_send(&rq, &rep);
    if (rc != 0)
        DPN_LOG(ERR, stack, "%s port %u: %s", proto == DPN_PROTO_TCP ? "TCP" : "UDP", port,
                rep.msg);
    return rc;
}

void dpn_ctl_unbind(struct dpn_worker *w, uint8_t proto, uint16_t port) {
    if (w->att == NULL)
        return;
    struct dpn_req rq;
    struct dpn_rep rep;
    req_init(w, &rq, DPN_REQ_UNBIND);
    rq.bind.proto = proto;
    rq.bind.port = port;
    ctl_send(&rq, &rep);
}

uint16_t dpn_eph_port(struct dpn_worker *w) {
    struct dpn_attach *a = w->att;
    if (a == NULL)
        return 0; /* lwIP picks */
    uint16_t p = a->eph_next;
    a->eph_next = p >= a->slot->eph_hi ? a->slot->eph_lo : (uint16_t)(p + 1);
    return p;
}

/* ---- neighbors: the daemon's table, a bounded wait on a miss ---- */

uint32_t dpn_next_hop(const struct dpn_worker *w, uint32_t dst_be) {
    uint32_t dst = rte_be_to_cpu_32(dst_be);
    uint32_t mask = w->cfg.prefix_len == 0 ? 0 : ~0u << (32 - w->cfg.prefix_len);
    if ((dst & mask) == (w->cfg.ip & mask) || w->cfg.gateway == 0)
        return dst_be;
    return rte_cpu_to_be_32(w->cfg.gateway);
}

bool dpn_attach_neigh(struct dpn_worker *w, uint32_t nh_be, struct rte_ether_addr *mac) {
    return dpn_neigh_lookup(w->att->shm->neigh, nh_be, mac);
}

static void ask_resolve(struct dpn_worker *w, uint32_t nh, uint64_t now) {
    struct dpn_attach *a = w->att;
    if (now - a->last_resolve_tsc < w->tsc_per_ms * RESOLVE_GAP_MS)
        return;
    a->last_resolve_tsc = now;
    struct dpn_req rq;
    req_init(w, &rq, DPN_REQ_RESOLVE);
    rq.resolve.ip = nh;
    ctl_send(&rq, NULL);
}

err_t dpn_attach_output(struct netif *nif, struct pbuf *p, const ip4_addr_t *dst) {
    struct dpn_worker *w = nif->state;
    struct dpn_attach *a = w->att;
    struct rte_ether_addr mac;
    uint32_t d = ip4_addr_get_u32(dst);
    if (ip4_addr_isbroadcast(dst, nif) || ip4_addr_ismulticast(dst))
        return ERR_RTE; /* the daemon speaks for the host on broadcast and multicast */
    uint32_t nh = dpn_next_hop(w, d);
    if (dpn_neigh_lookup(a->shm->neigh, nh, &mac))
        return ethernet_output(nif, p, (const struct eth_addr *)&w->mac,
                               (const struct eth_addr *)&mac, ETHTYPE_IP);
    uint64_t now = rte_rdtsc();
    ask_resolve(w, nh, now);
    if (a->npending == DPN_ARP_PENDING) {
        w->st.tx_dropped++;
        return ERR_MEM;
    }
    /* lwIP may reuse p (TCP keeps it for retransmission): hold a copy. */
    struct pbuf *q = pbuf_clone(PBUF_LINK, PBUF_RAM, p);
    if (q == NULL) {
        w->st.tx_dropped++;
        return ERR_MEM;
    }
    a->pending[a->npending++] = (struct dpn_arp_pending){
        .p = q, .nh = nh, .deadline_tsc = now + w->tsc_per_ms * PENDING_MS};
    return ERR_OK;
}

static void flush_pending(struct dpn_worker *w, uint64_t now) {
    struct dpn_attach *a = w->att;
    struct rte_ether_addr mac;
    unsigned keep = 0;
    for (unsigned i = 0; i < a->npending; i++) {
        struct dpn_arp_pending *e = &a->pending[i];
        if (dpn_neigh_lookup(a->shm->neigh, e->nh, &mac)) {
            ethernet_output(&w->netif, e->p, (const struct eth_addr *)&w->mac,
                            (const struct eth_addr *)&mac, ETHTYPE_IP);
            pbuf_free(e->p);
        } else if (now >= e->deadline_tsc) {
            w->st.tx_dropped++; /* TCP retransmits; UDP is best effort */
            pbuf_free(e->p);
        } else {
            ask_resolve(w, e->nh, now);
            a->pending[keep++] = *e;
        }
    }
    a->npending = keep;
}

/* Once per millisecond from the loop: retry waiting frames, publish counters. */
void dpn_attach_tick(struct dpn_worker *w) {
    struct dpn_attach *a = w->att;
    /* Once a second: is dpnetd still there? Without it the port is gone. */
    if (++a->ticks % 1000 == 0 &&
        (a->shm->magic != DPN_SHM_MAGIC || kill(a->shm->daemon_pid, 0) != 0)) {
        DPN_LOG(ERR, stack, "dpnetd went away: stopping");
        w->stop = 1;
    }
    if (a->npending > 0)
        flush_pending(w, rte_rdtsc());
    struct dpn_slot_wr *s = &a->slot->wr;
    s->rx_pkts = w->st.rx_pkts;
    s->rx_bytes = w->st.rx_bytes;
    s->tx_pkts = w->st.tx_pkts;
    s->tx_bytes = w->st.tx_bytes;
    s->rx_dropped = w->st.rx_dropped;
    s->tx_dropped = w->st.tx_dropped;
    s->conns_total = w->st.conns_total;
    s->conns_open = (uint32_t)w->st.conns_open;
    s->pending_arp = a->npending;
}

/* Hardware steering: frames from our own RX queue are dpnetd's mbufs too. */
void dpn_attach_tag(struct dpn_worker *w, struct rte_mbuf **pkts, uint16_t n) {
    for (uint16_t i = 0; i < n; i++)
        for (struct rte_mbuf *s = pkts[i]; s != NULL; s = s->next)
            ((struct dpn_pbuf *)rte_mbuf_to_priv(s))->tag = w->att->tag;
}

/* Frames dpnetd steered to us in software. */
uint16_t dpn_attach_rx(struct dpn_worker *w) {
    struct rte_mbuf *pkts[DPN_BURST];
    unsigned n = rte_ring_sc_dequeue_burst(w->att->ring, (void **)pkts, DPN_BURST, NULL);
    if (n > 0) {
        DPN_TRACE(w, DPN_T_RX_DONE);
        dpn_rx_burst(w, pkts, (uint16_t)n);
    }
    return (uint16_t)n;
}
