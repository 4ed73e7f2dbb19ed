/* The per-worker state: one struct, cache aligned, owned by the worker's
 * core alone. Internal to libdpnet. */
#ifndef DPNET_WORKER_H
#define DPNET_WORKER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "lwip/netif.h"
#include "lwip/pbuf.h"

#include "config.h"
#include "dpnet.h"
#include "env.h"
#include "port.h"
#include "timer.h"

#define DPN_BURST 32     /* ixgbe's vector RX returns nothing for smaller bursts */
#define DPN_TX_BATCH 256 /* frames collected before a forced mid-iteration flush */
#define DPN_LATER 64     /* pbufs and segments an iteration frees after its tx_burst */
/* A FIFO of connections whose output waits for room in the TX ring: all fit. */
#define DPN_TX_BLOCKED MEMP_NUM_TCP_PCB
#define DPN_DIRTY_MAX 256 /* connections with unflushed writes per iteration */
/* Cookie SYN-ACKs waiting for room in the TX ring: a connect storm's worth. */
#define DPN_COOKIE_Q 8192

struct dpn_pbuf; /* buf.h */
struct dpn_tw;   /* tcp_tw.h */
struct dpn_cap;  /* capture.h */
struct dpn_shm;  /* abi.h */
struct dpn_slot;
struct rte_ring;

#define DPN_ARP_PENDING 64 /* attached mode: frames waiting for a neighbor entry */

struct dpn_arp_pending {
    struct pbuf *p; /* our copy of the frame's IP packet */
    uint32_t nh;    /* next hop, network byte order */
    uint64_t deadline_tsc;
};

/* Attached mode: what dpnetd gave this worker (abi.h). */
struct dpn_attach {
    struct dpn_shm *shm;
    struct dpn_slot *slot;
    struct rte_ring *ring; /* frames dpnetd steered to us in software */
    int ctl_fd;            /* our connection to dpnetd's control socket */
    uint32_t ctl_seq;
    uint16_t eph_lo, eph_hi; /* our ephemeral ports, as dpnetd's reply said */
    struct dpn_conns *conns; /* our DPN_CONNS_ZONE (dpnetctl conns), NULL = none */
    uint32_t conns_done;     /* the last conns_req we answered */
    uint32_t cap_gen;        /* the slot's cap_gen we act on (capture.h) */
    uint64_t token;
    uint16_t slot_id;
    uint32_t tag; /* marks dpnetd's mbufs while we hold them (abi.h) */
    uint64_t ticks;
    bool poll_queue;      /* our RX queue gets frames too (rules, or workers_poll) */
    bool sw_poll;         /* software steering: frames of our queue that are not ours go back */
    struct rte_ring *ret; /* ... on this ring, to dpnetd */
    int wake_fd;          /* eventfd dpnetd writes when it fills our ring while we sleep */
    uint16_t eph_next;
    uint64_t last_resolve_tsc;
    unsigned npending;
    struct dpn_arp_pending pending[DPN_ARP_PENDING];
};

struct dpn_conn {
    struct tcp_pcb *pcb; /* NULL once the stack or the application ended it */
    struct dpn_worker *w;
    const struct dpn_tcp_ops *ops;
    void *ctx;
    uint64_t written;         /* bytes handed to tcp_write */
    uint64_t acked;           /* bytes the peer acknowledged */
    struct dpn_pbuf *zc_head; /* zero-copy buffers waiting for their ack */
    struct dpn_pbuf *zc_tail;
    uint64_t since_tsc; /* opened (accepted or connecting) */
    struct pbuf *held;  /* dpn_read_stop: data received since, in order (tcp.c hold) */
    struct pbuf *held_tail;
    struct dpn_conn *resume_next; /* on w->resume: held data to deliver (dpn_read_start) */
    uint32_t idle_ms;             /* dpn_conn_idle_timeout, 0 = none */
    bool app_closed;              /* dpn_close_conn called: no more callbacks */
    bool dead;                    /* inside its closed() callback: every call on it is refused */
    bool dirty;                   /* on the flush list */
    bool connecting;
    bool read_paused; /* dpn_read_stop: hold what arrives, deliver nothing */
    bool held_eof;    /* ... the peer's FIN came while paused */
    bool held_end;    /* ... and with our FIN sent too: closed(0) after the eof */
    bool peer_fin;    /* eof delivered: closed(0) once our FIN is done too (tcp.c) */
    bool resume_queued;
    struct dpn_conn *next; /* free list, or open list */
    struct dpn_conn *prev;
};

struct dpn_listener {
    struct tcp_pcb *pcb;
    struct dpn_worker *w;
    const struct dpn_tcp_ops *ops;
    void *ctx;
};

struct dpn_udp {
    struct udp_pcb *pcb;
    struct dpn_worker *w;
    dpn_udp_recv_fn recv;
    void *ctx;
    uint16_t ctl_port; /* the port we bound (env.h's bind), 0 = an ephemeral one */
};

struct dpn_worker {
    /* hot: touched every iteration or every frame, before the cold rest
     * (the configuration alone is 16 KB) */
    const struct dpn_env *env;  /* standalone or attached (env.h), set in dpn_init */
    struct dpn_attach *att;     /* attached: its state (attach.c), else NULL */
    struct dpn_fault *fault;    /* tests only: NULL unless --fault (fault.h) */
    struct dpn_udp **udp_ports; /* bound UDP sockets by local port (rx.c's fast path) */
    bool cookies_active;        /* SYN cookies sent lately: check ACKs (tcp_cookie.c) */
    bool bye_parked;            /* memif peer leaving: no rx/tx burst until the link cycles */
    bool port_gone;             /* attached: dpnetd (and so the port) went away: no burst ever */
    bool poll_queue;            /* our RX queue gets our frames (standalone; attached: rules or
                                   workers_poll) */
    uint16_t port_id;
    uint16_t queue_id;
    uint16_t tx_n;
    uint16_t tx_held; /* tx_pkts[0..tx_held) were kept back by a full ring */
    uint16_t dirty_n;
    uint32_t max_frame;          /* MTU + Ethernet header: longer received frames are dropped */
    uint32_t rx_low_water;       /* fewer free mbufs than this: copy received frames (rx.c) */
    bool rx_low;                 /* the RX pool is below rx_low_water */
    bool send_zc;                /* TCP data goes out of mbufs (tcp.send_zc): dpn_send copies
                                    into them, frames are sent in them (tcp.c, tx.c) */
    uint32_t send_mbufs;         /* ... and dpn_send may put this many more mbufs under sent
                                    data before the next tick (tcp.c, loop.c) */
    bool tcp_fast;               /* header prediction (tcp.fast_path, tcp_fast.h) */
    uint16_t ip_id;              /* IPv4 ID of the frames tcp_fast.c builds */
    uint16_t rx_queues;          /* queues queue_id.. we read: 1, or net_tap's SYN guard
                                    queues too (tapsteer.h; loop.c: less often under load) */
    uint8_t guard_turn;          /* loaded iterations since the guard queues were read */
    struct dpn_tapsig *tapsig;   /* net_tap's RX signal (tapsig.h), NULL on other ports */
    int sleep_fd;                /* net_tap: epoll on our queues' fds (attached: and our wake-up
                                    eventfd), else -1 */
    struct rte_mempool *rx_pool; /* where received frames come from */
    struct dpn_trace *trace;     /* critical-path stamps, NULL = off (trace.h) */
    struct dpn_cap *cap;         /* packet capture, NULL = off (capture.h) */
    volatile sig_atomic_t stop;
    struct rte_mempool *pool;
    int steer_prog_fd, steer_map_fd; /* tapsteer.h, -1 = none */
    uint64_t next_timer_tsc;
    uint64_t tsc_per_ms;
    struct rte_mbuf *tx_pkts[DPN_TX_BATCH];
    struct dpn_conn *dirty[DPN_DIRTY_MAX];
    /* TCP output refused for a full ring (tx.c): sent again once it drains */
    struct dpn_tx_blocked {
        struct tcp_pcb *pcb;
        uint32_t rip;
        uint16_t rport, lport;
    } blocked[DPN_TX_BLOCKED];
    uint32_t blocked_head, blocked_n; /* FIFO: the oldest at blocked_head */
    bool tx_retrying;                 /* output of the connection at its head */
    /* Acknowledged data given back after the iteration's tx_burst, not
     * between a request and its answer (tcp.c dpn_later_*). */
    bool in_poll;
    uint16_t later_n, later_segs_n;
    struct tcp_seg *later_segs;
    struct pbuf *later[DPN_LATER];
    /* SYN-ACKs with a cookie refused for a full ring: no connection keeps
     * them for a retry, so they wait here (tcp_cookie.c) */
    struct dpn_cookie_reply {
        uint32_t rip, seq, ack;
        uint16_t rport, lport;
        struct rte_ether_addr mac;
    } cookie_q[DPN_COOKIE_Q];
    uint32_t cookie_q_head, cookie_q_n; /* FIFO as blocked */
    struct dpn_stats st;
    struct netif netif;
    struct dpn_port_caps caps;

    /* idle handling */
    uint64_t idle_since_tsc; /* 0 while packets flow */
    uint64_t spin_tsc;
    uint32_t backoff_us;

    /* connections: a fixed array, a free list and an open list */
    struct dpn_conn *conns;
    unsigned nconns;
    struct dpn_conn *conn_free;
    struct dpn_conn *conn_open;
    struct dpn_tw *tw; /* connections in TIME_WAIT (tcp_tw.h) */
    /* memif goodbye (memif_bye.c) */
    bool bye_on;          /* the port is net_memif */
    uint64_t csum0_drops; /* rx.c: TCP segments with a zero checksum that failed the check */
    bool bye_saw_down;    /* ... the link went down since */
    uint64_t bye_since_tsc;
    uint32_t cookie_sent_ms;
    uint16_t tcp_eph_next; /* standalone: next local port to try for connect */
    int arp_hint;          /* standalone: lwIP ARP table entry dpn_l2_dst used last */

    struct dpn_timers timers; /* the application's timers with handles (timer.h) */
    struct dpn_conn *resume;  /* connections with held data to deliver (dpn_read_start) */
    bool quiet;               /* dpn_set_quiet / --quiet: dpn_close prints nothing */
    /* standalone --capture: the ring w->cap fills and its writer (capture.h) */
    struct dpn_cap_ring *cap_ring;
    struct dpn_capw *capw;

    struct dpn_config cfg;
    struct rte_ether_addr mac;
    char name[16];
    unsigned mbufs_start; /* free mbufs once running: the baseline at exit */
} __rte_cache_aligned;
_Static_assert(offsetof(struct dpn_worker, tx_pkts) < 4 * RTE_CACHE_LINE_SIZE &&
                   offsetof(struct dpn_worker, netif) < offsetof(struct dpn_worker, cfg),
               "the per-packet path's fields come first, the configuration after them");

/* A worker's own state lives in process memory, not DPDK's shared heap:
 * an attached worker that is killed leaves nothing behind there (dpnetd
 * takes back its queue and mbufs; the kernel takes back the rest). Zeroed
 * and cache-line aligned; dpn_free releases it. */
static inline void *dpn_zalloc(size_t size) {
    size = (size + RTE_CACHE_LINE_SIZE - 1) & ~(size_t)(RTE_CACHE_LINE_SIZE - 1);
    void *p = aligned_alloc(RTE_CACHE_LINE_SIZE, size);
    if (p != NULL)
        memset(p, 0, size);
    return p;
}
#define dpn_free free

/* The worker of this process (lwIP is one instance per process). */
extern struct dpn_worker *dpn_self;

/* rx.c / tx.c */
void dpn_rx_burst(struct dpn_worker *w, struct rte_mbuf **pkts, uint16_t n);
err_t dpn_linkoutput(struct netif *netif, struct pbuf *p);
void dpn_tx_flush(struct dpn_worker *w);
void dpn_tx_drop_all(struct dpn_worker *w);
void dpn_tx_retry_blocked(struct dpn_worker *w);

/* memif_bye.c: leaving a memif link without crashing the peer */
void dpn_bye_init(struct dpn_worker *w);
bool dpn_bye_input(struct dpn_worker *w, struct rte_mbuf *m); /* true: consumed */
bool dpn_bye_parked(struct dpn_worker *w, uint64_t now);      /* still parked */
void dpn_bye_leave(struct dpn_worker *w);

/* loop.c */
uint16_t dpn_poll_once(struct dpn_worker *w, uint64_t now);

/* udp.c: deliver a UDP datagram (p: the whole frame) to socket u without
 * lwIP; src_be/sport_be as in the headers. */
void dpn_udp_deliver(struct dpn_udp *u, struct pbuf *p, uint32_t src_be, uint16_t sport_be,
                     uint16_t ip_len);

/* tcp_cookie.c: SYN cookies for a listener whose backlog is full. True
 * when the frame was consumed (a SYN answered with a cookie). */
bool dpn_syncookie_input(struct dpn_worker *w, struct rte_mbuf *m, const uint8_t *th);
/* The cookie SYN-ACKs a full ring refused, oldest first, while the batch
 * has room. */
void dpn_syncookie_retry(struct dpn_worker *w);

/* tcp.c */
void dpn_tcp_flush_dirty(struct dpn_worker *w);
/* Free p, or a segment acknowledged by the fast path, once this iteration
 * has sent (dpn_later_release), when inside one and there is room. */
void dpn_later_pbuf(struct dpn_worker *w, struct pbuf *p);
void dpn_later_seg(struct dpn_worker *w, struct tcp_seg *seg);
void dpn_later_release(struct dpn_worker *w);
/* Once a tick: how many mbufs dpn_send may fill with sent data until the
 * next, given the pool's free count. */
void dpn_send_mbufs_refill(struct dpn_worker *w, unsigned pool_free);
/* Held data of resumed connections to their recv callbacks (dpn_read_start). */
void dpn_tcp_resume(struct dpn_worker *w);
void dpn_tcp_close_all(struct dpn_worker *w, bool abort);
/* dpnetctl conns: every TCP connection and listener of ours into out, which
 * then carries seq (abi.h, struct dpn_conns). */
struct dpn_conns;
void dpn_tcp_list(const struct dpn_worker *w, struct dpn_conns *out, uint32_t seq);

/* netif.c */
int dpn_netif_setup(struct dpn_worker *w);

/* init.c: the steps of dpn_init, shared with dpnetd */
int dpn_setup_eal(int *argc, char ***argv, struct dpn_config *cfg, bool daemon);
int dpn_worker_new(const struct dpn_config *cfg, struct dpn_worker **wp);
int dpn_stack_start(struct dpn_worker *w);

/* attach.c: a worker attached to dpnetd (its environment: dpn_env_attached) */
int dpn_attach(struct dpn_worker *w, const char *prog);
void dpn_detach(struct dpn_worker *w);
/* Attached: our place among the attached workers of our application (by
 * slot) and how many there are, as dpnetd's table says now. */
void dpn_attach_rank(const struct dpn_worker *w, unsigned *idx, unsigned *n);

/* netif.c */
/* The gateway for off-link destinations, else the destination itself
 * (network order both). */
uint32_t dpn_next_hop(const struct dpn_worker *w, uint32_t dst_be);
/* The MAC address to send to dst_be (network order) without asking
 * anyone: lwIP's ARP table (standalone) or dpnetd's (attached). False when
 * it is not known yet, or dst is broadcast or multicast: use lwIP's path. */
bool dpn_l2_dst(struct dpn_worker *w, uint32_t dst_be, struct rte_ether_addr *mac);

#endif
