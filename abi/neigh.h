/* The neighbor (ARP) table dpnetd publishes in shared memory: dpnetd is the
 * only writer (its lwIP does ARP), workers read it without locks. Each entry
 * has a seqlock: a reader retries while the writer is inside an update. */
#ifndef DPNET_NEIGH_H
#define DPNET_NEIGH_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_atomic.h>
#include <rte_ether.h>
#include <rte_jhash.h>
#include <rte_pause.h>

#include "abi.h"

/* Retries one lookup may spend on entries being written. dpnetd's update of
 * an entry takes a few stores; a sequence left odd (or moved for ever) by
 * anyone else writing the shared table must not hold the worker: after
 * this many retries the lookup is a miss (the frame waits and dpnetd is
 * asked again, as for any miss). */
#define DPN_NEIGH_RETRIES 64

/* Reader (workers, fast path): copy out the MAC of ip. */
static inline bool dpn_neigh_lookup(const struct dpn_neigh *t, uint32_t ip,
                                    struct rte_ether_addr *mac) {
    unsigned h = dpn_neigh_hash(ip), budget = DPN_NEIGH_RETRIES;
    for (unsigned i = 0; i < DPN_NEIGH_SIZE; i++) {
        const struct dpn_neigh *e = &t[(h + i) & (DPN_NEIGH_SIZE - 1)];
        uint32_t s1, eip;
        bool valid;
        for (;;) {
            s1 = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
            eip = e->ip;
            valid = e->valid;
            *mac = e->mac;
            rte_atomic_thread_fence(__ATOMIC_ACQUIRE);
            if (!(s1 & 1) && s1 == __atomic_load_n(&e->seq, __ATOMIC_RELAXED))
                break;
            if (budget-- == 0)
                return false;
            rte_pause();
        }
        if (eip == ip)
            return valid;
        if (eip == 0)
            return false;
    }
    return false;
}

/* Writer (dpnetd only). Invalidated entries keep their address, so a probe
 * chain never breaks; a new address takes the first invalid entry on its
 * chain (a reader racing with that sees the seqlock move and retries).
 * Returns false when every entry holds a valid neighbor. */
static inline bool dpn_neigh_update(struct dpn_neigh *t, uint32_t ip,
                                    const struct rte_ether_addr *mac, bool valid) {
    unsigned h = dpn_neigh_hash(ip);
    struct dpn_neigh *e = NULL, *reuse = NULL;
    for (unsigned i = 0; i < DPN_NEIGH_SIZE; i++) {
        struct dpn_neigh *x = &t[(h + i) & (DPN_NEIGH_SIZE - 1)];
        if (x->ip == ip || x->ip == 0) {
            e = x;
            break;
        }
        if (!x->valid && reuse == NULL)
            reuse = x;
    }
    if (e == NULL || (e->ip == 0 && reuse != NULL))
        e = reuse;
    if (e == NULL)
        return !valid; /* full; nothing to invalidate either */
    if (e->ip == ip && e->valid == valid && (!valid || rte_is_same_ether_addr(&e->mac, mac)))
        return true; /* unchanged: no write, readers never retry */
    if (e->ip != ip && !valid)
        return true; /* invalidating an address we do not hold */
    __atomic_store_n(&e->seq, e->seq + 1, __ATOMIC_RELAXED);
    rte_atomic_thread_fence(__ATOMIC_RELEASE);
    e->ip = ip;
    if (mac != NULL)
        e->mac = *mac;
    e->valid = valid;
    __atomic_store_n(&e->seq, e->seq + 1, __ATOMIC_RELEASE);
    return true;
}

#endif
