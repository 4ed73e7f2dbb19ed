/* dpnetd: the control daemon. One process, one thread for the data it
 * touches (queue 0, software steering, its own lwIP for ARP/ICMP/RST) and
 * for every control request: rte_mp's thread only queues requests here, so
 * no state below is shared between threads. */
#ifndef DPNETD_H
#define DPNETD_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_mempool.h>
#include <rte_ring.h>

#include "abi.h"
#include "steer.h"
#include "worker.h"

struct dpnd_slot { /* daemon-private side of shm->slots[i] */
    struct rte_ring *ring;
    struct rte_mempool *pool;
    int pidfd; /* -1 = none */
    struct dpn_flow_rule *eph_rule[2]; /* hardware steering of its ephemeral range: tcp, udp */
    uint64_t token;
    uint64_t attached_tsc;
};

struct dpnd_binding { /* daemon-private side of shm->bindings[i] */
    struct dpn_flow_rule *rule;
};

struct dpnd {
    struct dpn_worker *w; /* the daemon's own lwIP instance on queue 0 */
    struct dpn_shm *shm;
    uint16_t port_id;
    uint16_t nq;
    uint16_t rx_queues; /* queues the daemon polls: all with software steering */
    int exc_port;       /* exception path to the kernel, -1 = none */
    bool hw;            /* flow rules available */
    struct rte_mempool *rx_pool;
    struct rte_ring *ctl_ring; /* requests from rte_mp's thread */
    struct dpnd_slot slots[DPN_MAX_SLOTS];
    struct dpnd_binding bind[DPN_MAX_BINDINGS + 1];
    struct dpn_sw_steer *sw;
    uint64_t next_check_tsc;
    volatile int stop;
};

/* ctl.c */
int dpnd_ctl_init(struct dpnd *d);
void dpnd_ctl_poll(struct dpnd *d);
void dpnd_ctl_fini(struct dpnd *d);
/* Validate and carry out one request from the rte_mp socket peer (its path
 * names the sender's pid); fills rep, says whether to reply; returns 0 or a
 * positive errno. Called by dpnd_ctl_poll, and by test/fuzz/fuzz_ctl.c. */
struct rte_mp_msg;
int dpnd_ctl_handle(struct dpnd *d, const struct rte_mp_msg *msg, const char *peer,
                    struct dpn_rep *rep, bool *reply);

/* exception.c */
int dpnd_exc_open(struct dpnd *d, const struct dpn_config *cfg);
uint16_t dpnd_exc_divert(struct dpnd *d, struct rte_mbuf **pkts, uint16_t n);
void dpnd_exc_poll(struct dpnd *d);

/* slots.c */
int dpnd_slots_init(struct dpnd *d, const struct dpn_config *cfg);
int dpnd_slot_attach(struct dpnd *d, int pid, int lcore, const char *app, uint16_t *slot,
                     uint64_t *token, char *why, size_t n);
void dpnd_slot_release(struct dpnd *d, uint16_t slot, const char *reason);
void dpnd_slots_check(struct dpnd *d);

/* bindings (slots.c) */
int dpnd_bind(struct dpnd *d, uint16_t slot, uint8_t proto, uint16_t port, char *why, size_t n);
int dpnd_unbind(struct dpnd *d, uint16_t slot, uint8_t proto, uint16_t port, char *why, size_t n);

#endif
