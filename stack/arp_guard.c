/* The ARP guard (arp_guard.h): the decision, then its glue to lwIP. Runs
 * only for ARP frames; a flood frame for a locked neighbor costs one hash
 * set lookup and never reaches lwIP's linear table search. */
#include <string.h>

#include <rte_arp.h>

#include "lwip/etharp.h"
#include "lwip/prot/iana.h"
#include "lwip/memp.h"
#include "lwip/prot/etharp.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"

#include "arp_guard.h"
#include "buf.h"
#include "worker.h"

/* ---- the decision ---- */

static inline bool same_mac(const struct rte_ether_addr *a, const struct rte_ether_addr *b) {
    return rte_is_same_ether_addr(a, b);
}

static struct dpn_arp_rec *find(struct dpn_arp_guard *g, uint32_t ip) {
    struct dpn_arp_rec *s = &g->rec[dpn_arp_guard_set(ip) * DPN_ARP_WAYS];
    for (unsigned i = 0; i < DPN_ARP_WAYS; i++)
        if (ip != 0 && s[i].ip == ip)
            return &s[i];
    return NULL;
}

const struct dpn_arp_rec *dpn_arp_guard_find(const struct dpn_arp_guard *g, uint32_t ip) {
    return find((struct dpn_arp_guard *)g, ip);
}

static inline bool locked(const struct dpn_arp_rec *r, uint64_t now) {
    return r->confirmed_ms != 0 && now - r->confirmed_ms < DPN_ARP_LOCK_MS;
}

static inline bool busy(const struct dpn_arp_rec *r) {
    return r->probes != 0 || r->due_ms != 0;
}

/* Set r's round, keeping the count of busy records (the timer's) right. */
static void set_round(struct dpn_arp_guard *g, struct dpn_arp_rec *r, uint8_t probes,
                      uint64_t due) {
    g->busy -= busy(r);
    r->probes = probes;
    r->due_ms = due;
    g->busy += busy(r);
}

static void probe(struct dpn_arp_guard *g, const struct dpn_arp_guard_ops *ops,
                  struct dpn_arp_rec *r, uint64_t now) {
    set_round(g, r, (uint8_t)(r->probes + 1), 0);
    r->probe_ms = now;
    ops->probe(ops->ctx, r->ip, &r->mac);
}

/* A free record for ip, else the one confirmed longest ago that nothing
 * protects (the gateway, a lock, a round). NULL when all are protected. */
static struct dpn_arp_rec *alloc(struct dpn_arp_guard *g, uint32_t ip, uint64_t now) {
    struct dpn_arp_rec *s = &g->rec[dpn_arp_guard_set(ip) * DPN_ARP_WAYS], *victim = NULL;
    for (unsigned i = 0; i < DPN_ARP_WAYS; i++) {
        struct dpn_arp_rec *r = &s[i];
        if (r->ip == 0) {
            victim = r;
            break;
        }
        if (r->ip == g->pin || busy(r) || locked(r, now))
            continue;
        if (victim == NULL || r->confirmed_ms < victim->confirmed_ms)
            victim = r;
    }
    if (victim != NULL)
        *victim = (struct dpn_arp_rec){.ip = ip};
    return victim;
}

/* ip was seen at mac: (re)lock it; a round or a challenge for it ends. */
static void confirm(struct dpn_arp_guard *g, struct dpn_arp_rec *r, uint32_t ip,
                    const struct rte_ether_addr *mac, uint64_t now) {
    if (r == NULL && (r = alloc(g, ip, now)) == NULL)
        return; /* every record protected: lwIP still decides, as without us */
    set_round(g, r, 0, 0);
    r->mac = *mac;
    r->confirmed_ms = now;
    r->dead = false;
}

/* Another MAC claims r's address: dropped. r's MAC is probed now, or when
 * its lock ends if the claim came within it (a failover announced once
 * must not wait for the next announcement; a flood gets one round per lock
 * time whatever its rate). */
static enum dpn_arp_verdict challenge(struct dpn_arp_guard *g, const struct dpn_arp_guard_ops *ops,
                                      struct dpn_arp_rec *r, uint64_t now) {
    if (r->probes != 0)
        return DPN_ARP_DROP; /* a round is running */
    if (!locked(r, now))
        probe(g, ops, r, now);
    else if (r->due_ms == 0)
        set_round(g, r, 0, r->confirmed_ms + DPN_ARP_LOCK_MS);
    return DPN_ARP_DROP;
}

enum dpn_arp_verdict dpn_arp_guard_check(struct dpn_arp_guard *g,
                                         const struct dpn_arp_guard_ops *ops, uint32_t sip,
                                         const struct rte_ether_addr *sha, bool for_us,
                                         uint64_t now) {
    struct dpn_arp_rec *r = find(g, sip);
    /* The flood's path: another MAC for a neighbor that is locked or being
     * probed, decided without looking at lwIP's table. */
    if (r != NULL && !r->dead && !same_mac(&r->mac, sha) && (locked(r, now) || r->probes != 0))
        return challenge(g, ops, r, now);
    struct rte_ether_addr cur;
    bool have = ops->held(ops->ctx, sip, &cur);
    if (!have && r != NULL && !r->dead && r->confirmed_ms != 0 &&
        now - r->confirmed_ms < DPN_ARP_KEEP_MS) {
        cur = r->mac; /* lwIP forgot it (aged out or evicted); we did not */
        have = true;
    }
    if (!have) { /* a first claim: lwIP stores it only when the frame is for us */
        if (for_us)
            confirm(g, r, sip, sha, now);
        return DPN_ARP_PASS;
    }
    if (same_mac(&cur, sha)) {
        confirm(g, r, sip, sha, now);
        return DPN_ARP_PASS;
    }
    /* Another MAC for a neighbor we hold. */
    if (r == NULL || !same_mac(&r->mac, &cur)) {
        if (r == NULL && (r = alloc(g, sip, now)) == NULL)
            return DPN_ARP_DROP; /* cannot track it: keep what lwIP holds */
        set_round(g, r, 0, 0);
        *r = (struct dpn_arp_rec){.ip = sip, .mac = cur}; /* never confirmed: no lock */
    }
    if (r->dead) {
        confirm(g, r, sip, sha, now);
        return DPN_ARP_MOVED;
    }
    return challenge(g, ops, r, now);
}

void dpn_arp_guard_tick(struct dpn_arp_guard *g, const struct dpn_arp_guard_ops *ops,
                        uint64_t now) {
    if (g->busy == 0 || now < g->next_tick_ms)
        return;
    g->next_tick_ms = now + DPN_ARP_TICK_MS;
    for (unsigned i = 0; i < DPN_ARP_SETS * DPN_ARP_WAYS && g->busy > 0; i++) {
        struct dpn_arp_rec *r = &g->rec[i];
        if (!busy(r))
            continue;
        if (r->probes == 0) { /* challenged within its lock */
            if (now >= r->due_ms)
                probe(g, ops, r, now);
            continue;
        }
        if (now - r->probe_ms < DPN_ARP_PROBE_MS)
            continue;
        if (r->probes < DPN_ARP_PROBES) {
            probe(g, ops, r, now);
            continue;
        }
        /* No answer to a whole round: the MAC is gone (failover, a new
         * card). Ask who has ip now; the first claim takes it. */
        set_round(g, r, 0, 0);
        r->dead = true;
        ops->probe(ops->ctx, r->ip, NULL);
    }
}

/* ---- glue: lwIP's ARP table, the worker's TX path, lwIP's timers ---- */

/* One per process, like the lwIP table it guards (one lwIP per process). */
static struct dpn_arp_guard guard;
static bool timer_armed;

void dpn_arp_guard_clear(void) {
    memset(&guard, 0, sizeof(guard));
}

static uint64_t now_ms(const struct dpn_worker *w) {
    return rte_get_tsc_cycles() / w->tsc_per_ms;
}

static bool held_lwip(void *ctx, uint32_t ip, struct rte_ether_addr *mac) {
    struct dpn_worker *w = ctx;
    ip4_addr_t a;
    struct eth_addr *eth;
    const ip4_addr_t *found;
    ip4_addr_set_u32(&a, ip);
    if (etharp_find_addr(&w->netif, &a, &eth, &found) < 0)
        return false;
    memcpy(mac->addr_bytes, eth->addr, RTE_ETHER_ADDR_LEN);
    return true;
}

/* lwIP's unicast request (etharp_request_dst) is static: the same frame. */
static void send_probe(void *ctx, uint32_t ip, const struct rte_ether_addr *mac) {
    struct dpn_worker *w = ctx;
    ip4_addr_t a;
    ip4_addr_set_u32(&a, ip);
    w->st.arp_probes++;
    if (mac == NULL) {
        etharp_request(&w->netif, &a);
        return;
    }
    struct pbuf *p = pbuf_alloc(PBUF_LINK, SIZEOF_ETHARP_HDR, PBUF_RAM);
    if (p == NULL)
        return; /* the next tick probes again */
    struct etharp_hdr *h = p->payload;
    h->hwtype = PP_HTONS(LWIP_IANA_HWTYPE_ETHERNET);
    h->proto = PP_HTONS(ETHTYPE_IP);
    h->hwlen = ETH_HWADDR_LEN;
    h->protolen = sizeof(ip4_addr_t);
    h->opcode = PP_HTONS(ARP_REQUEST);
    memcpy(&h->shwaddr, w->netif.hwaddr, ETH_HWADDR_LEN);
    memset(&h->dhwaddr, 0, ETH_HWADDR_LEN);
    IPADDR_WORDALIGNED_COPY_FROM_IP4_ADDR_T(&h->sipaddr, netif_ip4_addr(&w->netif));
    IPADDR_WORDALIGNED_COPY_FROM_IP4_ADDR_T(&h->dipaddr, &a);
    ethernet_output(&w->netif, p, (const struct eth_addr *)w->netif.hwaddr,
                    (const struct eth_addr *)mac->addr_bytes, ETHTYPE_ARP);
    pbuf_free(p);
}

static void guard_timer(void *arg);

/* Rounds advance on a timer even when no frame comes (a failover whose new
 * owner announced itself once). lwIP aborts when its timeout pool is empty:
 * look first; without a slot the next ARP frame advances them. */
static void arm(struct dpn_worker *w) {
    if (timer_armed || guard.busy == 0)
        return;
    void *slot = memp_malloc(MEMP_SYS_TIMEOUT);
    if (slot == NULL)
        return;
    memp_free(MEMP_SYS_TIMEOUT, slot);
    sys_timeout(DPN_ARP_TICK_MS, guard_timer, w);
    timer_armed = true;
}

static void tick(struct dpn_worker *w) {
    struct dpn_arp_guard_ops ops = {.held = held_lwip, .probe = send_probe, .ctx = w};
    dpn_arp_guard_tick(&guard, &ops, now_ms(w));
    arm(w);
}

static void guard_timer(void *arg) {
    timer_armed = false;
    tick(arg);
}

static void drop(struct dpn_worker *w, struct rte_mbuf *m) {
    w->st.arp_dropped++;
    dpn_mbuf_drop(m);
}

bool dpn_arp_guard_input(struct dpn_worker *w, struct rte_mbuf *m) {
    if (!w->env->own_arp ||
        rte_pktmbuf_data_len(m) < RTE_ETHER_HDR_LEN + sizeof(struct rte_arp_hdr))
        return true; /* attached: netif.c drops ARP; short: ethernet_input does */
    const struct rte_arp_hdr *a =
        rte_pktmbuf_mtod_offset(m, const struct rte_arp_hdr *, RTE_ETHER_HDR_LEN);
    if (a->arp_hardware != RTE_BE16(RTE_ARP_HRD_ETHER) ||
        a->arp_protocol != RTE_BE16(RTE_ETHER_TYPE_IPV4) || a->arp_hlen != RTE_ETHER_ADDR_LEN ||
        a->arp_plen != 4)
        return true; /* etharp_input drops it */
    uint32_t sip = a->arp_data.arp_sip, me = rte_cpu_to_be_32(w->cfg.ip);
    const struct rte_ether_addr *sha = &a->arp_data.arp_sha;
    /* No neighbor has a group or zero MAC, and none has our address: lwIP
     * would store such a claim as it stores any other. (Our own MAC is
     * possible: net_tap gives it to the kernel side too.) */
    if (rte_is_multicast_ether_addr(sha) || rte_is_zero_ether_addr(sha) || sip == me) {
        drop(w, m);
        return false;
    }
    /* lwIP ignores claims for these (etharp_update_arp_entry). */
    uint32_t h = rte_be_to_cpu_32(sip);
    if (h == 0 || h >= 0xe0000000u)
        return true;
    guard.pin = rte_cpu_to_be_32(w->cfg.gateway);
    struct dpn_arp_guard_ops ops = {.held = held_lwip, .probe = send_probe, .ctx = w};
    uint64_t now = now_ms(w);
    dpn_arp_guard_tick(&guard, &ops, now);
    enum dpn_arp_verdict v =
        dpn_arp_guard_check(&guard, &ops, sip, sha, a->arp_data.arp_tip == me, now);
    arm(w);
    if (v == DPN_ARP_DROP) {
        drop(w, m);
        return false;
    }
    if (v == DPN_ARP_MOVED)
        w->st.arp_moved++;
    return true;
}
