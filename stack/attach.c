/* Attached mode: a worker that is a DPDK secondary of dpnetd. The daemon
 * owns the port, answers ARP and steers our flows to us; we get a queue
 * pair, a TX pool, a ring for software-steered frames and the neighbor
 * table, all through shared memory (abi/abi.h). Control requests go
 * over our connection to dpnetd's control socket; none of them is on the
 * per-packet path except a neighbor miss, which is a one-way message while
 * the frame waits. That connection closing tells us dpnetd is gone. */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_random.h>
#include <rte_memzone.h>
#include <rte_ring.h>
#include <rte_ip.h>
#include <rte_tcp.h>

#include "lwip/etharp.h"
#include "lwip/ip4.h"
#include "lwip/tcp.h"
#include "netif/ethernet.h"

#include "abi.h"
#include "buf.h"
#include "capture.h"
#include "fault.h"
#include "log.h"
#include "eal_lcore.h"
#include "neigh.h"
#include "trace.h"
#include "tapsig.h"
#include "tcp_pcbs.h"
#include "worker.h"

#define CTL_TIMEOUT_S 2
#define PENDING_MS 1000 /* how long a frame waits for its neighbor */
#define RESOLVE_GAP_MS 100

/* Send rq; with rep, wait for its reply (the one with rq's seq: a reply that
 * came too late for an earlier request is skipped). */
static int ctl_send(struct dpn_attach *a, struct dpn_req *rq, struct dpn_rep *rep) {
    rq->seq = ++a->ctl_seq;
    if (rep == NULL) /* one-way, from the data path: never blocks */
        return send(a->ctl_fd, rq, sizeof(*rq), MSG_DONTWAIT | MSG_NOSIGNAL) == sizeof(*rq)
                   ? 0
                   : -DPN_EIO;
    memset(rep, 0, sizeof(*rep));
    if (send(a->ctl_fd, rq, sizeof(*rq), MSG_NOSIGNAL) != sizeof(*rq)) {
        snprintf(rep->msg, sizeof(rep->msg), "cannot reach dpnetd: %s", strerror(errno));
        rep->err = EIO;
        return -DPN_EIO;
    }
    uint64_t hz = rte_get_tsc_hz(), end = rte_rdtsc() + hz * CTL_TIMEOUT_S;
    for (uint64_t now = rte_rdtsc(); now < end; now = rte_rdtsc()) {
        struct pollfd p = {.fd = a->ctl_fd, .events = POLLIN};
        if (poll(&p, 1, (int)((end - now) * 1000 / hz) + 1) <= 0)
            continue;
        ssize_t n = recv(a->ctl_fd, rep, sizeof(*rep), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            break;
        if (n == sizeof(*rep) && rep->seq == rq->seq) {
            rep->msg[sizeof(rep->msg) - 1] = '\0';
            return rep->err == 0 ? 0 : -rep->err;
        }
    }
    memset(rep, 0, sizeof(*rep));
    snprintf(rep->msg, sizeof(rep->msg), "dpnetd did not answer within %d s", CTL_TIMEOUT_S);
    rep->err = EIO;
    return -DPN_EIO;
}

static void req_init(const struct dpn_attach *a, struct dpn_req *rq, uint16_t type) {
    memset(rq, 0, sizeof(*rq));
    rq->abi = DPN_ABI_VERSION;
    rq->type = type;
    rq->slot = a->slot_id;
    rq->token = a->token;
}

static int ctl_connect(const char *prog) {
    int pre = dpn_eal_lcore_conn(); /* dpnetd holds our lcore id for that one */
    if (pre >= 0)
        return pre;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", rte_eal_get_runtime_dir(), DPN_CTL_SOCKET);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        return fd;
    fprintf(stderr, "%s: cannot connect to dpnetd's control socket %s: %s\n", prog, sa.sun_path,
            strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

/* The application's secret: DPNET_APP_SECRET (32 hex digits; tools/dpnet-run
 * sets one for all its workers), else a fresh one: then this worker's
 * application is joined by nobody it did not tell. */
static int app_secret(uint8_t *out, const char *prog) {
    const char *e = getenv(DPN_APP_SECRET_ENV);
    if (e == NULL || *e == '\0') {
        if (getrandom(out, DPN_SECRET_LEN, 0) == DPN_SECRET_LEN)
            return 0;
        for (unsigned i = 0; i < DPN_SECRET_LEN; i++)
            out[i] = (uint8_t)rte_rand();
        return 0;
    }
    for (unsigned i = 0; i < DPN_SECRET_LEN; i++) {
        unsigned v;
        if (sscanf(e + 2 * i, "%2x", &v) != 1 || !isxdigit((unsigned char)e[2 * i]) ||
            !isxdigit((unsigned char)e[2 * i + 1]))
            goto bad;
        out[i] = (uint8_t)v;
    }
    if (e[2 * DPN_SECRET_LEN] == '\0')
        return 0;
bad:
    fprintf(stderr, "%s: %s must be %d hex digits\n", prog, DPN_APP_SECRET_ENV, 2 * DPN_SECRET_LEN);
    return -DPN_EINVAL;
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

/* dpnetd's port must work in this process too: a secondary gets working
 * burst functions only for a device it probed itself (ethdev_driver.c's
 * rte_eth_dev_probing_finish; before that, ethdev_private.c's dummies
 * receive and send nothing). Virtual devices are probed in every process;
 * a PCI NIC only with -a ADDR, never under --no-pci. */
static int port_here(const struct dpn_shm *shm, const char *prog) {
    char name[RTE_ETH_NAME_MAX_LEN];
    if (rte_eth_dev_is_valid_port(shm->port_id) &&
        rte_eth_dev_get_name_by_port(shm->port_id, name) == 0 &&
        strncmp(name, shm->port_dev, sizeof(shm->port_dev)) == 0)
        return 0;
    fprintf(stderr, "%s: dpnetd's port %.64s (port %u) is not usable in this process: %s\n", prog,
            shm->port_dev, shm->port_id,
            shm->port_pci ? "start the worker with -a <that PCI address> instead of --no-pci "
                            "(tools/dpnet-run does)"
                          : "start the worker with dpnetd's --vdev options");
    return -DPN_ENODEV;
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
    w->caps.tx_multi_seg = shm->tx_multi_seg;
    w->caps.tx_tso = shm->tx_tso;
    w->caps.tx_tso_segs = shm->tx_tso_segs;
    w->caps.tx_tso_l2 = shm->tx_tso_l2;
    w->caps.rx_trust = shm->rx_trust;
    w->caps.tx_none = shm->tx_none;
    snprintf(w->caps.driver, sizeof(w->caps.driver), "dpnetd");
}

/* Our queue's fd (net_tap) and our eventfd in one epoll; dpnetd takes the
 * eventfd from us (DPN_REQ_WAKE). Without a queue fd (memif, null) or
 * without dpnetd's consent: a back-off. */
static void setup_sleep(struct dpn_worker *w) {
    struct dpn_attach *a = w->att;
    int ep = dpn_tun_queue_epoll(w->port_id, w->queue_id);
    int efd = ep >= 0 ? eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) : -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = efd};
    struct dpn_req rq;
    struct dpn_rep rep;
    req_init(a, &rq, DPN_REQ_WAKE);
    rq.wake.fd = efd;
    if (efd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) != 0 || ctl_send(a, &rq, &rep) != 0) {
        if (efd >= 0)
            DPN_LOG(NOTICE, stack, "no wake-up from dpnetd (%s): sleeping in a back-off", rep.msg);
        if (ep >= 0)
            close(ep);
        if (efd >= 0)
            close(efd);
        return;
    }
    a->wake_fd = efd;
    w->sleep_fd = ep;
}

int dpn_attach(struct dpn_worker *w, const char *prog) {
    const struct rte_memzone *mz = rte_memzone_lookup(DPN_SHM_NAME);
    if (mz == NULL) {
        fprintf(stderr, "%s: no dpnetd found for this --file-prefix (start dpnetd first)\n", prog);
        return -DPN_ENODEV;
    }
    struct dpn_shm *shm = mz->addr;
    int rc = check_shm(shm, prog);
    if (rc == 0)
        rc = port_here(shm, prog);
    if (rc != 0)
        return rc;
    struct dpn_attach *a = dpn_zalloc(sizeof(*a));
    if (a == NULL)
        return -DPN_ENOMEM;
    struct dpn_req rq;
    struct dpn_rep rep;
    req_init(a, &rq, DPN_REQ_ATTACH);
    if (app_secret(rq.attach.secret, prog) != 0 || (a->ctl_fd = ctl_connect(prog)) < 0) {
        dpn_free(a);
        return -DPN_EIO;
    }
    rq.attach.pid = getpid();
    rq.attach.lcore = (int32_t)rte_lcore_id();
    if (w->cfg.app[0] != '\0')
        snprintf(rq.attach.app, sizeof(rq.attach.app), "%s", w->cfg.app);
    else
        snprintf(rq.attach.app, sizeof(rq.attach.app), "%.20s:%d",
                 strrchr(prog, '/') ? strrchr(prog, '/') + 1 : prog, (int)getpid());
    snprintf(rq.attach.version, sizeof(rq.attach.version), "%s", DPN_VERSION);
    rc = ctl_send(a, &rq, &rep);
    memset(rq.attach.secret, 0, sizeof(rq.attach.secret));
    if (rc != 0) {
        fprintf(stderr, "%s: dpnetd refused to attach: %s\n", prog, rep.msg);
        close(a->ctl_fd);
        dpn_free(a);
        return rc;
    }
    if (rep.slot == 0 || rep.slot >= DPN_MAX_SLOTS) {
        fprintf(stderr, "%s: dpnetd answered slot %u\n", prog, rep.slot);
        close(a->ctl_fd);
        dpn_free(a);
        return -DPN_EIO;
    }
    a->shm = shm;
    a->slot_id = rep.slot;
    a->token = rep.token;
    a->slot = &shm->slots[rep.slot];
    a->poll_queue = shm->hw_steering || shm->workers_poll;
    a->sw_poll = !shm->hw_steering && shm->workers_poll;
    a->tag = rep.tag;
    a->eph_lo = rep.eph_lo;
    a->eph_hi = rep.eph_hi;
    char zone[DPN_NAME];
    snprintf(zone, sizeof(zone), DPN_CONNS_ZONE, rep.slot);
    const struct rte_memzone *cz = rte_memzone_lookup(zone);
    a->conns = cz != NULL && cz->len >= sizeof(struct dpn_conns) ? cz->addr : NULL;
    a->conns_done = __atomic_load_n(&a->slot->conns_req, __ATOMIC_ACQUIRE);
    w->att = a;
    w->env = &dpn_env_attached;
    w->poll_queue = a->poll_queue;
    w->queue_id = rep.queue;
    char pool[DPN_NAME], ring[DPN_NAME], ret[DPN_NAME];
    /* Our TX pool by the name dpnetd published (a rebuilt pool has a new one). */
    snprintf(pool, sizeof(pool), "%.*s", (int)sizeof(pool) - 1, a->slot->pool);
    snprintf(ring, sizeof(ring), "dpnd_ring%u", rep.slot);
    snprintf(ret, sizeof(ret), "dpnd_ret%u", rep.slot);
    w->pool = rte_mempool_lookup(pool);
    a->ring = rte_ring_lookup(ring);
    a->ret = rte_ring_lookup(ret);
    if (w->pool == NULL || a->ring == NULL || a->ret == NULL || a->eph_hi < a->eph_lo) {
        fprintf(stderr, "%s: dpnetd's pool %s or ring %s is missing\n", prog, pool, ring);
        dpn_detach(w);
        return -DPN_EIO;
    }
    adopt_port(w, shm);
    w->rx_pool = rte_mempool_lookup(DPN_RX_POOL); /* frames come from dpnetd's pool */
    a->eph_next = (uint16_t)(a->eph_lo + rte_rand() % (a->eph_hi - a->eph_lo + 1u));
    /* Sleep on our queue (net_tap) and on an eventfd dpnetd writes when it
     * fills our ring, not in a back-off that adds up to sleep_max_us to a
     * frame. */
    a->wake_fd = -1;
    if (w->cfg.poll != DPN_POLL_BUSY)
        setup_sleep(w);
    if (w->cfg.poll == DPN_POLL_INTERRUPT && w->sleep_fd < 0) {
        /* Only net_tap's queue fds reach a secondary (ixgbe arms no RX
         * interrupt there, memif has none): say so, never nap silently. */
        fprintf(stderr,
                "%s: poll mode interrupt: a worker attached to this port (%.64s) has no "
                "interrupt to sleep on; use hybrid\n",
                prog, shm->port_dev);
        dpn_detach(w);
        return -DPN_ENOTSUP;
    }
    DPN_LOG(INFO, stack,
            "attached to dpnetd (pid %d) as %s: slot %u, queue %u, ports %u-%u, sleeping on %s",
            shm->daemon_pid, rq.attach.app, a->slot_id, w->queue_id, a->eph_lo, a->eph_hi,
            w->cfg.poll == DPN_POLL_BUSY ? "nothing (busy)"
            : w->sleep_fd >= 0           ? "its queue and its ring"
                                         : "a back-off");
    return 0;
}

void dpn_detach(struct dpn_worker *w) {
    struct dpn_attach *a = w->att;
    if (a == NULL)
        return;
    for (unsigned i = 0; i < a->npending; i++)
        pbuf_free(a->pending[i].p);
    a->npending = 0;
    dpn_cap_stop(w->cap);
    w->cap = NULL;
    if (w->sleep_fd >= 0)
        close(w->sleep_fd);
    w->sleep_fd = -1;
    if (a->wake_fd >= 0)
        close(a->wake_fd);
    a->wake_fd = -1;
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
    req_init(a, &rq, DPN_REQ_DETACH);
    ctl_send(a, &rq, &rep);
    close(a->ctl_fd);
    w->att = NULL;
    dpn_free(a);
}

static bool attach_sleep_begin(struct dpn_worker *w) {
    struct dpn_attach *a = w->att;
    __atomic_store_n(&a->slot->wr.sleeping, 1, __ATOMIC_RELAXED);
    rte_atomic_thread_fence(__ATOMIC_SEQ_CST); /* pairs with dpnetd's hand_over */
    if (rte_ring_count(a->ring) == 0)
        return true;
    __atomic_store_n(&a->slot->wr.sleeping, 0, __ATOMIC_RELAXED);
    return false;
}

static void attach_sleep_end(struct dpn_worker *w) {
    struct dpn_attach *a = w->att;
    __atomic_store_n(&a->slot->wr.sleeping, 0, __ATOMIC_RELAXED);
    uint64_t v;
    ssize_t rc = read(a->wake_fd, &v, sizeof(v)); /* EAGAIN: not woken by it */
    (void)rc;
}

static int attach_bind(struct dpn_worker *w, uint8_t proto, uint16_t port, bool listen) {
    struct dpn_req rq;
    struct dpn_rep rep;
    req_init(w->att, &rq, DPN_REQ_BIND);
    rq.bind.proto = proto;
    rq.bind.port = port;
    rq.bind.listen = listen;
    int rc = ctl_send(w->att, &rq, &rep);
    if (rc != 0)
        DPN_LOG(ERR, stack, "%s port %u: %s", proto == DPN_PROTO_TCP ? "TCP" : "UDP", port,
                rep.msg);
    return rc;
}

static void attach_unbind(struct dpn_worker *w, uint8_t proto, uint16_t port) {
    struct dpn_req rq;
    struct dpn_rep rep;
    req_init(w->att, &rq, DPN_REQ_UNBIND);
    rq.bind.proto = proto;
    rq.bind.port = port;
    ctl_send(w->att, &rq, &rep);
}

/* Under rules that cannot cover our whole range (abi.h eph_rules), ask
 * dpnetd for a rule for this port before its first reply can come. */
static void attach_eph_used(struct dpn_worker *w, uint8_t proto, uint16_t port) {
    struct dpn_attach *a = w->att;
    if (!a->shm->hw_steering || (a->slot->eph_rules & (1u << (proto == DPN_PROTO_UDP))))
        return;
    struct dpn_req rq;
    struct dpn_rep rep;
    req_init(a, &rq, DPN_REQ_CONNECT);
    rq.bind.proto = proto;
    rq.bind.port = port;
    if (ctl_send(a, &rq, &rep) != 0) /* dpnetd steers the port in software still */
        DPN_LOG(DEBUG, stack, "port %u: no rule: %s", port, rep.msg);
}

static uint16_t attach_eph_port(struct dpn_worker *w) {
    struct dpn_attach *a = w->att;
    uint16_t p = a->eph_next;
    a->eph_next = p >= a->eph_hi ? a->eph_lo : (uint16_t)(p + 1);
    return p;
}

/* ---- neighbors: the daemon's table, a bounded wait on a miss ---- */

static bool attach_neigh(struct dpn_worker *w, uint32_t nh_be, struct rte_ether_addr *mac) {
    return dpn_neigh_lookup(w->att->shm->neigh, nh_be, mac);
}

static void ask_resolve(struct dpn_worker *w, uint32_t nh, uint64_t now) {
    struct dpn_attach *a = w->att;
    if (now - a->last_resolve_tsc < w->tsc_per_ms * RESOLVE_GAP_MS)
        return;
    a->last_resolve_tsc = now;
    struct dpn_req rq;
    req_init(a, &rq, DPN_REQ_RESOLVE);
    rq.resolve.ip = nh;
    ctl_send(a, &rq, NULL);
}

static err_t attach_output(struct netif *nif, struct pbuf *p, const ip4_addr_t *dst) {
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

void dpn_attach_rank(const struct dpn_worker *w, unsigned *idx, unsigned *n) {
    const struct dpn_attach *a = w->att;
    unsigned before = 0, all = 0;
    for (uint16_t i = 1; i < DPN_MAX_SLOTS; i++) {
        const struct dpn_slot *s = &a->shm->slots[i];
        if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != DPN_SLOT_ATTACHED ||
            strncmp(s->app, a->slot->app, sizeof(s->app)) != 0)
            continue;
        all++;
        before += i < a->slot_id;
    }
    *idx = before;
    *n = all > before ? all : before + 1; /* ourselves, whatever the table says */
}

/* dpnetctl capture started or ended for our slot (cap_gen odd: on): our
 * frames go to "dpnd_cap<N>", filtered as its header says. */
static void follow_capture(struct dpn_worker *w, uint32_t gen) {
    struct dpn_attach *a = w->att;
    a->cap_gen = gen;
    dpn_cap_stop(w->cap);
    w->cap = NULL;
    if (gen & 1) {
        char zone[DPN_NAME], why[256];
        snprintf(zone, sizeof(zone), DPN_CAP_ZONE, a->slot_id);
        const struct rte_memzone *mz = rte_memzone_lookup(zone);
        if (mz == NULL || mz->len < sizeof(struct dpn_cap_ring))
            DPN_LOG(WARNING, stack, "capture: dpnetd's ring %s is missing", zone);
        else if ((w->cap = dpn_cap_start(mz->addr, why, sizeof(why))) == NULL)
            DPN_LOG(WARNING, stack, "capture: %s", why);
    }
    __atomic_store_n(&a->slot->wr.cap_gen, gen, __ATOMIC_RELEASE);
}

/* Once per millisecond from the loop: retry waiting frames, publish counters. */
static void attach_tick(struct dpn_worker *w) {
    struct dpn_attach *a = w->att;
    /* Every tick: is dpnetd still there? Without it the port is gone, and
     * it closes the port once we say we stopped touching it (or after a
     * bound). Our control connection says so (the kernel closes it when
     * dpnetd exits or lets us go); the shared area could be written by
     * anyone. One poll() a millisecond. */
    struct pollfd p = {.fd = a->ctl_fd, .events = 0};
    if (!w->port_gone && poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL))) {
        w->port_gone = true;
        __atomic_store_n(&a->slot->wr.parked, 1, __ATOMIC_RELEASE);
        DPN_LOG(ERR, stack, "dpnetd went away: stopping");
        w->stop = 1;
    }
    if (a->npending > 0)
        flush_pending(w, rte_rdtsc());
    /* dpnetctl conns asked (DPN_REQ_CONNS): our listing, in our memzone. */
    uint32_t req = __atomic_load_n(&a->slot->conns_req, __ATOMIC_ACQUIRE);
    if (unlikely(req != a->conns_done) && a->conns != NULL) {
        dpn_tcp_list(w, a->conns, req);
        a->conns_done = req;
        __atomic_store_n(&a->slot->wr.conns_done, req, __ATOMIC_RELEASE);
    }
    uint32_t cap = __atomic_load_n(&a->slot->cap_gen, __ATOMIC_ACQUIRE);
    if (unlikely(cap != a->cap_gen))
        follow_capture(w, cap);
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
static void attach_tag(struct dpn_worker *w, struct rte_mbuf **pkts, uint16_t n) {
    for (uint16_t i = 0; i < n; i++)
        for (struct rte_mbuf *s = pkts[i]; s != NULL; s = s->next)
            ((struct dpn_pbuf *)rte_mbuf_to_priv(s))->tag = w->att->tag;
}

/* Ours, of a frame on our own queue (software steering, where the PMD or
 * the peer picked the queue): replies to our ephemeral ports, UDP to a
 * port we hold, TCP of a connection we have. SYNs, everything else and
 * anything odd go to dpnetd, which pins, forwards or answers. */
static bool mine(const struct dpn_worker *w, const struct rte_mbuf *m) {
    const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
    uint32_t len = rte_pktmbuf_data_len(m);
    if (len < RTE_ETHER_HDR_LEN + sizeof(struct rte_ipv4_hdr) ||
        ((const struct rte_ether_hdr *)p)->ether_type != RTE_BE16(RTE_ETHER_TYPE_IPV4))
        return false;
    const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(p + RTE_ETHER_HDR_LEN);
    uint32_t ihl = (ip->version_ihl & 0xf) * 4u;
    if (ip->dst_addr != rte_cpu_to_be_32(w->cfg.ip) || ihl < 20 ||
        len < RTE_ETHER_HDR_LEN + ihl + 14 ||
        (ip->fragment_offset & RTE_BE16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)))
        return false;
    const uint8_t *l4 = (const uint8_t *)ip + ihl;
    uint16_t sport = (uint16_t)(l4[0] << 8 | l4[1]), dport = (uint16_t)(l4[2] << 8 | l4[3]);
    if (dport >= w->att->eph_lo && dport <= w->att->eph_hi)
        return ip->next_proto_id == IPPROTO_TCP || ip->next_proto_id == IPPROTO_UDP;
    if (ip->next_proto_id == IPPROTO_UDP)
        return w->udp_ports[dport] != NULL;
    if (ip->next_proto_id != IPPROTO_TCP ||
        (l4[13] & (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG)) == RTE_TCP_SYN_FLAG)
        return false;
    return dpn_pcbs_find(ip->src_addr, sport, dport) != NULL;
}

static uint16_t attach_filter(struct dpn_worker *w, struct rte_mbuf **pkts, uint16_t n) {
    struct rte_mbuf *back[DPN_BURST * 2];
    uint16_t keep = 0, nb = 0;
    for (uint16_t i = 0; i < n; i++) {
        if (mine(w, pkts[i]))
            pkts[keep++] = pkts[i];
        else
            back[nb++] = pkts[i];
    }
    if (nb > 0) {
        unsigned k = rte_ring_sp_enqueue_burst(w->att->ret, (void **)back, nb, NULL);
        for (unsigned i = k; i < nb; i++) { /* dpnetd is not keeping up: TCP recovers */
            w->st.rx_dropped++;
            dpn_mbuf_drop(back[i]);
        }
    }
    return keep;
}

/* Frames of our own queue: tagged as dpnetd's lent mbufs; with software
 * steering, the others' go back. */
static uint16_t attach_rx_keep(struct dpn_worker *w, struct rte_mbuf **pkts, uint16_t n) {
    attach_tag(w, pkts, n);
    return w->att->sw_poll ? attach_filter(w, pkts, n) : n;
}

/* Frames dpnetd steered to us in software. */
static uint16_t attach_rx_more(struct dpn_worker *w, struct rte_mbuf **pkts, uint16_t max) {
    return (uint16_t)rte_ring_sc_dequeue_burst(w->att->ring, (void **)pkts, max, NULL);
}

/* dpnetd answers ARP for the host; a worker that saw an ARP frame (it
 * should not: steering keeps them on queue 0) must stay silent. */
static err_t attached_input(struct pbuf *p, struct netif *nif) {
    const uint8_t *f = p->payload;
    if (p->len < 14 || f[12] != 0x08 || f[13] != 0x00) {
        pbuf_free(p);
        return ERR_OK;
    }
    return ethernet_input(p, nif);
}

/* dpnetd's published copy: reading the port's counters from here would
 * race dpnetd's reads (abi.h, struct dpn_port_stats). */
static uint64_t attach_rx_nombuf(const struct dpn_worker *w) {
    return w->att->shm->port_stats.rx_nombuf;
}

const struct dpn_env dpn_env_attached = {
    .name = "attached",
    .own_arp = false,
    .rx_keep = attach_rx_keep,
    .rx_more = attach_rx_more,
    .neigh = attach_neigh,
    .output = attach_output,
    .input = attached_input,
    .bind = attach_bind,
    .unbind = attach_unbind,
    .eph_port = attach_eph_port,
    .eph_span = DPN_EPH_PER_SLOT,
    .eph_used = attach_eph_used,
    .tick = attach_tick,
    .rx_nombuf = attach_rx_nombuf,
    .sleep_begin = attach_sleep_begin,
    .sleep_end = attach_sleep_end,
};
