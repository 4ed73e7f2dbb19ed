/* dpnetd: the control daemon. One process, one thread for the data it
 * touches (queue 0, software steering, its own lwIP for ARP/ICMP/RST) and
 * for every control request (its own control socket, polled from the same
 * loop), so no state below is shared between threads.
 *
 * Trust: everything dpnetd decides from (slot owners, applications, port
 * bindings, the steering table, ring heads) lives here, in the daemon's
 * private memory. struct dpn_shm is only a published copy (publish_*), and
 * no index or count is ever read back from it. */
#ifndef DPNETD_H
#define DPNETD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <rte_mempool.h>
#include <rte_ring.h>

#include "abi.h"
#include "steer.h"
#include "worker.h"

#define DPND_BIND_PER_SLOT 64 /* ports one worker may hold */
#define DPND_MAX_CONNS 64     /* control connections at once */
#define DPND_CONNS_PER_PID 4  /* ... from one process */

struct dpnd_conn;

#define DPND_PORT_RULES 64 /* per worker and protocol */
#define DPND_RETIRED 4     /* old TX pools per slot waiting for their mbufs */

struct dpnd_slot {  /* the truth; shm->slots[i] is its published copy */
    uint32_t state; /* enum dpn_slot_state */
    uint32_t gen;
    int32_t pid;
    uint32_t uid;
    int32_t lcore;
    uint16_t eph_lo, eph_hi;
    char app[DPN_APP_NAME];
    uint8_t secret[DPN_SECRET_LEN]; /* of its application */
    unsigned nbind;                 /* bindings it is part of (quota) */
    struct dpnd_conn *conn;         /* the control connection that attached it */
    uint64_t closed_tsc;            /* connection gone, process not yet: since when */
    struct rte_ring *ring;
    struct rte_ring ring_hdr;        /* the ring's header as created: restored at reset */
    uint32_t ring_head;              /* our producer head (we are the only producer) */
    int wake_fd;                     /* the worker's eventfd (DPN_REQ_WAKE), -1 = none */
    struct rte_ring *ret;            /* software steering: what the worker's queue had for others */
    struct rte_ring ret_hdr;         /* its header as created */
    uint32_t ret_tail;               /* our consumer tail (we are the only consumer) */
    uint64_t ret_taken, ret_refused; /* frames taken back / pointers refused */
    struct rte_mempool *pool;
    uint32_t pool_gen; /* rebuilds so far: the pool's name (slots.c pool_name) */
    struct rte_mempool *retired[DPND_RETIRED]; /* old pools with mbufs still out */
    int pidfd;                                 /* -1 = none */
    struct dpn_flow_rule *eph_rule[2]; /* hardware steering of its ephemeral range: tcp, udp */
    /* Where the range takes no rule: a rule per port it connects from, the
     * last DPND_PORT_RULES per protocol (older ports fall back to software). */
    struct dpn_flow_rule *port_rule[2][DPND_PORT_RULES];
    uint16_t port_rule_port[2][DPND_PORT_RULES];
    unsigned port_rule_next[2];
    uint64_t token;
    uint64_t attached_tsc;
    uint64_t ring_enq, ring_full;
    uint32_t conns_req;              /* DPN_REQ_CONNS asked this many times (published) */
    uint32_t cap_gen;                /* odd: its worker captures (capture.c; published) */
    const struct rte_memzone *conns; /* DPN_CONNS_ZONE: its worker's listing */
};

struct dpnd_binding { /* the truth; shm->bindings[i] is its published copy */
    uint8_t proto;    /* 0 = unused */
    uint8_t hw;
    uint16_t port;
    uint16_t slots;    /* bit mask of the workers sharing it */
    uint8_t rule_slot; /* the one worker its rule steers to, 0 = no such rule */
    char app[DPN_APP_NAME];
    uint64_t hits;
    struct dpn_flow_rule *rule;
};

/* One control connection: who is behind it is the kernel's word. */
struct dpnd_conn {
    int fd;  /* -1 = free */
    int pid; /* SO_PEERCRED */
    uint32_t uid;
    int pidfd;     /* SO_PEERPIDFD where the kernel has it, else -1 */
    uint16_t slot; /* 0 = not attached */
    int lcore;     /* the lcore id held for it (DPN_REQ_LCORE) until it attaches, -1 = none */
    uint64_t since_tsc;
    uint64_t ctl_tat; /* rate limits (GCRA: theoretical arrival times) of its requests */
    uint64_t arp_tat; /* ... and of the ARP broadcasts it causes */
};

struct dpnd_stats { /* private; published to shm */
    uint64_t rx_pkts, to_daemon, ctl_requests, ctl_rejected;
    uint64_t to_kernel, from_kernel, exc_drops;
    uint64_t arp_sent, arp_throttled, ctl_deferred;
    uint64_t rx_wakeups; /* sleeps ended by an RX event (interrupt, or a net_tap fd) */
};

struct dpnd_arp_recent {
    uint32_t ip;
    uint64_t tsc;
};

struct dpnd {
    struct dpn_worker *w; /* the daemon's own lwIP instance on queue 0 */
    struct dpn_shm *shm;
    uint16_t port_id;
    uint16_t nq;
    struct dpn_tapsig *tapsig;    /* net_tap: its RX signal quieted under load (tapsig.h) */
    int exc_port;                 /* exception path to the kernel, -1 = none */
    bool hw;                      /* rules available: workers poll their own queues */
    int idle_ep;                  /* epoll for sleeping: RX queue fds we poll + ctl_ep, -1 = none */
    int qfd[DPN_MAX_SLOTS];       /* net_tap: each RX queue's tun fd, -1 = none */
    bool q_in_ep[DPN_MAX_SLOTS];  /* qfd[q] is in idle_ep */
    bool q_in_rte[DPN_MAX_SLOTS]; /* queue q's interrupt is in DPDK's per-thread epoll */
    uintptr_t *objs;              /* our RX pool's mbufs, sorted (return rings are checked) */
    size_t nobj;
    const struct dpn_rules *rules;   /* the kernel's or the hardware's (steer.h), NULL: software */
    struct dpn_flow_rule *catch_all; /* rte_flow: unmatched frames to queue 0, NULL = none */
    struct rte_mempool *rx_pool;
    struct dpnd_slot slots[DPN_MAX_SLOTS];
    struct dpnd_binding bind[DPN_MAX_BINDINGS + 1];
    struct dpn_sw_steer *sw; /* private memory (calloc), never shared */
    struct dpnd_stats st;
    /* control */
    int ctl_fd;        /* listening socket, -1 = none */
    int ctl_ep;        /* epoll: the listening socket and every connection, -1 = none */
    bool ctl_deferred; /* the last poll left a throttled request waiting */
    char ctl_path[108];
    struct dpnd_conn conns[DPND_MAX_CONNS];
    unsigned ctl_rr; /* round robin start */
    struct dpnd_arp_recent arp_recent[64];
    /* the neighbor table as it should be; shm->neigh is its copy */
    struct dpn_neigh neigh[DPN_NEIGH_SIZE];
    uint32_t neigh_seq[DPN_NEIGH_SIZE];
    uint64_t next_check_tsc;
    unsigned empty_wakeups; /* RX interrupts in a row with no frame behind them */
    unsigned silent_sleeps; /* ... sleeps in a row that a frame did not end (DPND_SILENT_SLEEPS) */
    bool slept_out;         /* the last sleep on armed interrupts ran to its end */
    unsigned if_index;      /* the port's kernel interface (net_tap), 0 = none */
    volatile int stop;
};

/* ctl.c */
int dpnd_ctl_init(struct dpnd *d);
void dpnd_ctl_poll(struct dpnd *d);
void dpnd_ctl_fini(struct dpnd *d);
/* Validate and carry out one request of len bytes from connection c (its
 * pid and uid are the kernel's); fills rep, says whether to reply; returns
 * 0 or a positive errno. Called by dpnd_ctl_poll, and by
 * test/fuzz/fuzz_ctl.c. */
int dpnd_ctl_handle(struct dpnd *d, struct dpnd_conn *c, const void *buf, size_t len,
                    struct dpn_rep *rep, bool *reply);

/* exception.c */
int dpnd_exc_open(struct dpnd *d, const struct dpn_config *cfg);
uint16_t dpnd_exc_divert(struct dpnd *d, struct rte_mbuf **pkts, uint16_t n);
void dpnd_exc_poll(struct dpnd *d);

/* slots.c */
int dpnd_slots_init(struct dpnd *d, const struct dpn_config *cfg);
/* pidfd: the worker's (taken over), or -1 to open one for pid. */
int dpnd_slot_attach(struct dpnd *d, int pid, uint32_t uid, int pidfd, int lcore, const char *app,
                     const uint8_t *secret, uint16_t *slot, uint64_t *token, char *why, size_t n);
void dpnd_slot_release(struct dpnd *d, uint16_t slot, const char *reason);
void dpnd_pools_reap(struct dpnd *d); /* periodic: free retired pools that are whole */
/* The lowest lcore id no worker, no pending attach and dpnetd itself has;
 * -1 when there is none. */
int dpnd_free_lcore(const struct dpnd *d);
/* capture.c: dpnetctl capture */
int dpnd_cap_request(struct dpnd *d, struct dpnd_conn *c, const struct dpn_req *rq,
                     struct dpn_rep *rep);
int dpnd_cap_stop_request(struct dpnd *d, const struct dpnd_conn *c, struct dpn_rep *rep);
void dpnd_cap_conn_closed(struct dpnd *d, const struct dpnd_conn *c);
void dpnd_cap_sync(struct dpnd *d);  /* after a worker came or went */
void dpnd_cap_check(struct dpnd *d); /* periodic: the end of a capture */
void dpnd_cap_fini(struct dpnd *d);
/* telemetry.c: /dpnet/... commands for dpdk-telemetry.py */
void dpnd_telemetry_init(const struct dpnd *d);
/* main.c */
void dpnd_slot_drain(struct dpnd *d, uint16_t slot);
void dpnd_slots_check(struct dpnd *d);
/* Copy the private tables to shared memory (all, or one entry). */
void dpnd_publish_slot(struct dpnd *d, uint16_t i);
void dpnd_publish_binding(struct dpnd *d, unsigned b);
void dpnd_publish_all(struct dpnd *d);

/* bindings (slots.c) */
int dpnd_bind(struct dpnd *d, uint16_t slot, uint8_t proto, uint16_t port, char *why, size_t n);
void dpnd_port_rule(struct dpnd *d, uint16_t slot, uint8_t proto, uint16_t port);
int dpnd_unbind(struct dpnd *d, uint16_t slot, uint8_t proto, uint16_t port, char *why, size_t n);

#endif
