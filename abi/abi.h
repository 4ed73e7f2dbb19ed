/* The dpnetd <-> worker ABI: the shared-memory area the daemon publishes and
 * the control messages carried over dpnetd's control socket. Everything both
 * sides must agree on is here and nowhere else; change DPN_ABI_VERSION with it.
 *
 * Ownership (who may write what):
 *   struct dpn_shm            written by dpnetd only, except each slot's
 *                             `wr` part, written by the worker of that slot.
 *                             It is a published copy: dpnetd decides nothing
 *                             from it (its tables live in its own memory and
 *                             are published again every 100 ms), so a
 *                             scribble there misleads readers, not dpnetd.
 *   neighbor table            dpnetd writes (per-entry seqlock); workers read.
 *   worker rings              dpnetd enqueues (single producer, its head and
 *                             the ring's size kept privately); the slot's
 *                             worker dequeues (single consumer).
 *   return rings "dpnd_ret<N>" software steering: slot N's worker enqueues the
 *                             frames of its own RX queue that are not its
 *                             (single producer); dpnetd dequeues with its own
 *                             tail and size and takes only mbufs of its RX
 *                             pool that carry the worker's tag.
 *   pools "dpnd_rx"           dpnetd's RX pool; its mbufs travel to workers
 *                             through the rings and are freed by them.
 *   pools "dpnd_q<N>"         slot N's TX pool (and its RX queue's, with
 *                             hardware steering); rebuilt when the worker dies.
 *   capture "dpnd_cap<N>"     a byte ring: slot N's worker appends copies of
 *                             its frames (single producer), dpnetd's capture
 *                             thread reads them with its own tail, checking
 *                             every length, and moves the shared tail.
 * Control: an AF_UNIX SOCK_SEQPACKET socket DPN_CTL_SOCKET in the EAL runtime
 * directory, one connection per worker; the kernel tells dpnetd the pid and
 * uid behind each connection (SO_PEERCRED), and its closing is a liveness
 * signal. A worker is not trusted: the daemon validates every request, and
 * every value it reads from a slot's `wr` part is only displayed, never used. */
#ifndef DPNET_ABI_H
#define DPNET_ABI_H

#include <stdint.h>
#include <stdio.h>

#include <rte_ether.h>
#include <rte_jhash.h>

#define DPN_ABI_VERSION 13
#define DPN_SHM_NAME "dpnd_shm"
#define DPN_SHM_MAGIC 0x64706e64u             /* "dpnd" */
#define DPN_CTL_SOCKET "dpnetd_ctl"           /* in rte_eal_get_runtime_dir() */
#define DPN_APP_SECRET_ENV "DPNET_APP_SECRET" /* 32 hex digits: joins an application */
#define DPN_SECRET_LEN 16
#define DPN_RX_POOL "dpnd_rx"
#define DPN_MAX_SLOTS 16 /* queue pairs, slot 0 = the daemon */
#define DPN_NEIGH_SIZE 256
#define DPN_APP_NAME 32
#define DPN_NAME 32
#define DPN_EPH_PER_SLOT 1024 /* ephemeral ports per worker */
#define DPN_EPH_BASE 49152
#define DPN_CAP_FILTER 176 /* bytes of a capture filter's text, its NUL included */
#define DPN_CAP_ANY_PORT 0xffff

/* ---- neighbor table: open addressing on the IPv4 address, seqlock per entry ---- */
struct dpn_neigh {
    uint32_t seq; /* odd while dpnetd writes the entry */
    uint32_t ip;  /* network byte order; 0 = empty */
    struct rte_ether_addr mac;
    uint16_t valid;
};
/* Where ip's entry starts: both sides must probe from the same place. */
static inline unsigned dpn_neigh_hash(uint32_t ip) {
    return rte_jhash_1word(ip, 0x6e656967) & (DPN_NEIGH_SIZE - 1);
}

/* ---- per-worker slot ---- */
enum dpn_slot_state { DPN_SLOT_FREE = 0, DPN_SLOT_ATTACHED = 1, DPN_SLOT_RECLAIM = 2 };

struct dpn_slot_wr { /* written by the slot's worker only */
    uint64_t rx_pkts, rx_bytes, tx_pkts, tx_bytes, rx_dropped, tx_dropped;
    uint64_t conns_total;
    uint32_t conns_open;
    uint32_t pending_arp; /* frames waiting for a neighbor entry */
    uint32_t parked;      /* dpnetd went away and we no longer touch the port */
    uint32_t sleeping;    /* asleep: frames put on our ring need a write to our eventfd */
    uint32_t conns_done;  /* the conns_req our listing in "dpnd_conns<N>" answers */
    uint32_t cap_gen;     /* the cap_gen we act on */
} __rte_cache_aligned;

struct dpn_slot {
    /* written by dpnetd */
    uint32_t state; /* enum dpn_slot_state */
    uint32_t gen;   /* bumped at each attach: tags mbufs lent to this attach */
    int32_t pid;
    int32_t lcore;
    uint16_t queue;
    uint16_t eph_lo, eph_hi;
    /* Bit k set: a rule steers the whole range for TCP (k = 0) or UDP (1).
     * Unset under rules (the PMD takes no port masks: TC flower, ixgbe's
     * 5-tuple filters), the worker asks for a rule per port (DPN_REQ_CONNECT). */
    uint8_t eph_rules;
    uint8_t pad8;
    char app[DPN_APP_NAME];
    char pool[DPN_NAME];
    char ring[DPN_NAME];
    uint64_t ring_enq, ring_full; /* software steering: frames handed over / dropped */
    uint32_t conns_req;           /* bumped by DPN_REQ_CONNS: list your connections */
    uint32_t cap_gen;             /* odd: copy your frames to "dpnd_cap<N>" (capture.h) */
    struct dpn_slot_wr wr;
} __rte_cache_aligned;

/* ---- connection listings (dpnetctl conns) ----
 * Memzone "dpnd_conns<N>" (DPN_CONNS_ZONE), made by dpnetd for slot N and
 * written by its worker only, when conns_req moves: the worker's word,
 * shown and never used. */
#define DPN_CONNS_ZONE "dpnd_conns%u"
#define DPN_CONNS_MAX 4096
struct dpn_conn_info {
    uint32_t lip, rip;     /* network byte order */
    uint16_t lport, rport; /* host byte order */
    uint8_t state;         /* lwIP's enum tcp_state (LISTEN = 1 .. TIME_WAIT = 10) */
    uint8_t pad[3];
    uint32_t snd_queue; /* bytes written, not yet acknowledged */
    uint32_t rcv_queue; /* bytes received, not yet read by the application */
    uint32_t srtt_ms, rto_ms;
    uint32_t cwnd, ssthresh; /* bytes */
    uint32_t retrans;        /* retransmissions of the oldest unacknowledged segment */
    uint32_t age_ms;
};
struct dpn_conns {
    uint32_t seq;       /* the conns_req this listing answers */
    uint32_t n;         /* entries in c[] */
    uint32_t total;     /* connections the worker has: more than n when c[] was full */
    uint32_t time_wait; /* and in TIME_WAIT (its own table: not listed) */
    struct dpn_conn_info c[DPN_CONNS_MAX];
};

/* ---- packet capture (dpnetctl capture; stack/capture.h) ----
 * One byte ring per slot, memzone "dpnd_cap<N>" (DPN_CAP_ZONE), made by
 * dpnetd at the first capture. dpnetd writes the header (snap length and
 * filter) before it makes the slot's cap_gen odd; the worker appends
 * records at head, dpnetd consumes from its own copy of the tail and
 * publishes it. A record: struct dpn_cap_rec, then len bytes of frame,
 * padded to 8 bytes; records wrap around the end of data[]. */
#define DPN_CAP_ZONE "dpnd_cap%u"
#define DPN_CAP_BYTES (4u << 20) /* power of two */
#define DPN_CAP_SNAP_MAX 16384u  /* bytes of one frame kept, at most */
#define DPN_CAP_INSNS 512        /* classic BPF instructions of a filter, at most */
enum { DPN_CAP_IN = 1, DPN_CAP_OUT = 2 };
struct dpn_cap_rec {
    uint32_t len;      /* bytes of frame that follow */
    uint32_t orig_len; /* the frame's length on the wire */
    uint64_t tsc;      /* when the burst was taken or sent (rte_rdtsc) */
    uint16_t queue;    /* the worker's queue (slot), 0 = dpnetd */
    uint8_t dir;       /* DPN_CAP_IN or DPN_CAP_OUT */
    uint8_t pad[5];
};
struct dpn_cap_insn { /* libpcap's struct bpf_insn */
    uint16_t code;
    uint8_t jt, jf;
    uint32_t k;
};
struct dpn_cap_ring {
    /* written by the reader before capture starts */
    uint32_t snaplen;
    uint32_t ninsns; /* 0: every frame */
    struct dpn_cap_insn insns[DPN_CAP_INSNS];
    uint64_t tail __rte_cache_aligned; /* the reader's: bytes consumed */
    /* written by the writer (the worker) */
    uint64_t head __rte_cache_aligned; /* bytes appended */
    uint64_t frames, dropped;          /* records appended; frames that found no room */
    uint8_t data[DPN_CAP_BYTES] __rte_cache_aligned;
};

/* A port binding, published for dpnetctl (the daemon's classifier keeps its own). */
#define DPN_MAX_BINDINGS 255
struct dpn_binding {
    uint8_t proto; /* 0 = unused entry */
    uint8_t hw;    /* 1: a flow rule steers it; 0: software */
    uint16_t port;
    uint16_t slots; /* bit mask of the workers sharing it */
    uint16_t pad;
    char app[DPN_APP_NAME];
    uint64_t hits; /* frames steered in software */
};

/* The port's counters. dpnetd alone reads them from the port and publishes
 * them every 100 ms: NICs such as the 82599 clear theirs on read and the
 * PMD adds each read into one sum in shared memory (ixgbe_dev_stats_get),
 * so two processes reading at once would lose or double counts. */
struct dpn_port_stats {
    uint64_t ipackets, opackets, ibytes, obytes, imissed, ierrors, oerrors, rx_nombuf;
    uint64_t q_ipackets[DPN_MAX_SLOTS], q_opackets[DPN_MAX_SLOTS];
};

struct dpn_shm {
    uint32_t magic;
    uint32_t abi;
    char version[16]; /* dpnetd's DPN_VERSION */
    int32_t daemon_pid;
    uint16_t port_id;
    uint16_t nb_queues;
    uint16_t mtu;
    uint8_t prefix_len;
    uint8_t hw_steering;  /* 1: rules (kernel or rte_flow) steer to the workers' queues */
    uint8_t workers_poll; /* 1 (software steering): each worker polls its own RX queue,
                             keeps its frames and returns the rest on its return ring */
    uint32_t ip, gateway; /* network byte order */
    struct rte_ether_addr mac;
    uint8_t tx_ip_cksum, tx_tcp_cksum, tx_udp_cksum, rx_l4_cksum;
    char steering[16]; /* "software" or the flow backend's name */
    /* The port's ethdev name (a PCI address, or the vdev's name) and whether
     * it is a PCI device: a worker must then probe it too (EAL -a NAME). */
    char port_dev[64];
    uint8_t port_pci;
    uint8_t tx_multi_seg;      /* the port's TX queues take mbuf chains */
    uint8_t tx_tso;            /* ... and segment TCP (RTE_ETH_TX_OFFLOAD_TCP_TSO, port.tso on) */
    uint16_t tx_tso_segs;      /* mbufs per TSO frame */
    uint8_t tx_tso_l2;         /* net_tap's check: the send MSS 14 bytes short (port.h) */
    uint8_t rx_trust, tx_none; /* port.csum: TCP/UDP checksums not checked, not filled */
    struct dpn_slot slots[DPN_MAX_SLOTS];
    struct dpn_neigh neigh[DPN_NEIGH_SIZE];
    struct dpn_binding bindings[DPN_MAX_BINDINGS + 1]; /* [0] unused: index 0 = none */
    /* dpnetd's own counters */
    uint64_t rx_pkts, to_daemon, ring_full, ctl_requests, ctl_rejected;
    uint64_t to_kernel, from_kernel, exc_drops; /* exception path */
    uint64_t arp_sent, arp_throttled; /* RESOLVE: ARP requests sent / not sent (rate limits) */
    uint64_t ctl_deferred;            /* requests left waiting by a connection's rate limit */
    uint32_t ctl_conns;               /* open control connections */
    uint64_t idle_sleeps, rx_wakeups; /* dpnetd's sleeps; those an RX event ended */
    struct dpn_port_stats port_stats;
};

/* ---- control messages (one SOCK_SEQPACKET message each way) ---- */
enum dpn_req_type {
    DPN_REQ_ATTACH = 1,
    DPN_REQ_BIND,    /* proto, port, listen */
    DPN_REQ_UNBIND,  /* proto, port */
    DPN_REQ_CONNECT, /* proto, port (from the slot's range): steer replies to it by a rule */
    DPN_REQ_RESOLVE, /* ip: ask dpnetd to ARP for a next hop */
    DPN_REQ_DETACH,
    DPN_REQ_STATS,        /* the worker's own slot counters as dpnetd sees them, in msg */
    DPN_REQ_WAKE,         /* wake.fd: the worker's eventfd, which dpnetd takes with pidfd_getfd and
                             writes when it puts frames on the ring of a worker that sleeps */
    DPN_REQ_LCORE,        /* before ATTACH (before the worker's rte_eal_init): a free lcore id,
                             held for this connection until it attaches or closes */
    DPN_REQ_CONNS,        /* any connection (dpnetctl conns): every attached worker lists its
                             connections in its DPN_CONNS_ZONE (conns_req moves) */
    DPN_REQ_CAPTURE,      /* root or dpnetd's user (dpnetctl capture): copy frames to capture.fd;
                             replied to at once and again when the capture ends */
    DPN_REQ_CAPTURE_STOP, /* the connection's capture: end it now */
    DPN_REQ_MAX
};

#define DPN_PROTO_TCP 6
#define DPN_PROTO_UDP 17

/* For the readers of these tables (dpnetctl, dpnetd's telemetry). */
static inline const char *dpn_proto_name(uint8_t p) {
    return p == DPN_PROTO_TCP ? "tcp" : p == DPN_PROTO_UDP ? "udp" : "?";
}
static inline void dpn_ip_str(uint32_t be, char *buf, size_t n) {
    const uint8_t *b = (const uint8_t *)&be;
    snprintf(buf, n, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
}

struct dpn_req {
    uint32_t abi;
    uint16_t type;
    uint16_t slot;  /* all but ATTACH */
    uint64_t token; /* all but ATTACH: the secret ATTACH returned */
    uint32_t seq;   /* echoed in the reply: a late reply is not taken for the next */
    uint32_t pad;
    union {
        struct {
            int32_t pid; /* must be the connection's (kernel-proven) pid */
            int32_t lcore;
            char app[DPN_APP_NAME];
            char version[16];
            /* Joining a running application needs its secret (and its uid). */
            uint8_t secret[DPN_SECRET_LEN];
        } attach;
        struct {
            uint8_t proto;
            uint8_t listen;
            uint16_t port; /* host byte order */
            uint32_t rip;  /* CONNECT: network byte order */
            uint16_t rport;
        } bind;
        struct {
            uint32_t ip; /* network byte order */
        } resolve;
        struct {
            int32_t fd; /* in the worker's process */
        } wake;
        struct {
            int32_t fd;           /* in the sender's process: a file or pipe open for writing */
            uint16_t slot;        /* only this worker (0: all, and dpnetd) */
            uint16_t snaplen;     /* bytes kept of each frame, 0 = all */
            uint32_t count;       /* frames, then stop (0: no limit) */
            uint32_t duration_ms; /* then stop (0: no limit) */
            uint16_t port;        /* dpnetd's DPDK port, DPN_CAP_ANY_PORT: whichever */
            uint16_t pad16;
            char app[DPN_APP_NAME];      /* only this application's workers ("": all) */
            char filter[DPN_CAP_FILTER]; /* tcpdump's syntax, "" = every frame */
        } capture;
    };
};

struct dpn_rep {
    int32_t err; /* 0 or a positive errno */
    char msg[160];
    uint16_t slot;
    uint16_t queue;
    uint64_t token;
    uint32_t seq;             /* the request's */
    uint32_t tag;             /* ATTACH: dpn_tag() of this attach */
    uint16_t eph_lo, eph_hi;  /* ATTACH: the worker's ephemeral ports */
    int32_t lcore;            /* LCORE: the id held for this connection */
    uint64_t frames, dropped; /* CAPTURE's last reply: frames written, frames lost */
};

_Static_assert(sizeof(struct dpn_req) <= 256, "request exceeds the control message size");
_Static_assert(sizeof(struct dpn_rep) <= 256, "reply exceeds the control message size");

/* ---- mbuf ownership tag (in the mbuf's private area, see stack/buf.h) ---- */
static inline uint32_t dpn_tag(uint16_t slot, uint32_t gen) {
    return (gen << 8) | slot;
}

#endif
