/* dpnet: a per-core user-level TCP/IP stack (lwIP on a DPDK queue pair).
 *
 * One process is one worker: one core, one RX/TX queue pair, one lwIP
 * instance. The application creates the worker with dpn_init(), registers
 * listeners, sockets, connections and timers, and calls dpn_run(), which
 * polls the queue and calls the application back. Every callback runs on the
 * worker's core inside dpn_run(); no function here may be called from another
 * thread (the single exception is dpn_stop(), which is async-signal-safe).
 * No dpn_* call runs a callback of the application before it returns: what
 * it causes (data delivered after dpn_read_start, a connection ended by
 * dpn_abort) is reported from the loop, or not at all (dpn_close_conn and
 * dpn_abort end a connection's callbacks). docs/api.md has each contract.
 *
 * Buffer ownership: a struct dpn_buf handed to a receive callback belongs to
 * the application until it gives it back with dpn_recv_done() (TCP: also
 * reopens the receive window), dpn_buf_free(), or by passing it to
 * dpn_send_buf()/dpn_udp_sendto_buf() (zero copy: the stack frees it once the
 * peer has acknowledged it, or at once for UDP). The data it views lives in
 * the DPDK mbuf it arrived in; nothing is copied.
 *
 * Errors: a call that can fail returns 0 (or a count) on success and a
 * NEGATIVE DPN_E* on failure: test `rc < 0`, or compare with the negated
 * code (`rc == -DPN_EAGAIN`), never with DPN_EAGAIN itself. DPN_E* values
 * are errno numbers (plus DPN_ECONFIG, DPN_EEAL); dpn_strerror() takes
 * either sign.
 */
#ifndef DPNET_H
#define DPNET_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DPN_VERSION_MAJOR 0
#define DPN_VERSION_MINOR 1
#define DPN_VERSION "0.1.0"

/* Version of the library actually loaded (compare with DPN_VERSION). */
const char *dpn_version(void);

/* ---- errors: negative errno values, plus a few of our own ---- */
enum {
    DPN_OK = 0,
    DPN_ENOMEM = ENOMEM,             /* a pool is exhausted */
    DPN_EINVAL = EINVAL,             /* bad argument or configuration */
    DPN_EAGAIN = EAGAIN,             /* no room now: retry after a sent callback */
    DPN_EADDRINUSE = EADDRINUSE,     /* port already bound */
    DPN_ECONNRESET = ECONNRESET,     /* peer reset the connection */
    DPN_ECONNREFUSED = ECONNREFUSED, /* peer refused the connection */
    DPN_ETIMEDOUT = ETIMEDOUT,       /* peer stopped answering */
    DPN_ECONNABORTED = ECONNABORTED, /* the stack aborted the connection */
    DPN_ENOTCONN = ENOTCONN,         /* connection not (or no longer) established */
    DPN_EMSGSIZE = EMSGSIZE,         /* datagram larger than the MTU allows */
    DPN_EHOSTUNREACH = EHOSTUNREACH, /* no route to the destination */
    DPN_ENODEV = ENODEV,             /* no such DPDK port/device */
    DPN_ENOTSUP = ENOTSUP,           /* the PMD or the mode cannot do this */
    DPN_EIO = EIO,                   /* the device failed */
    DPN_ECONFIG = 1000,              /* configuration file error (message logged) */
    DPN_EEAL = 1001,                 /* DPDK EAL initialisation failed */
};

/* Human-readable text for a DPN_E* code (positive or negative). */
const char *dpn_strerror(int err);

/* ---- worker life cycle ---- */
struct dpn_worker;

/* Initialise DPDK and one worker from the command line:
 *   prog [EAL options] -- [dpnet options] [application options]
 * dpnet options: -c/--config FILE, --ip ADDR/LEN, --gw ADDR, --mac MAC,
 * --dev DEVICE, --poll busy|hybrid|interrupt, --spin-us N, --mtu N,
 * --standalone, --quiet, --capture FILE, ... (the README's Configuration
 * table has them all). On success argc and argv are rewritten to hold
 * argv[0] and the application's own options only, and *wp is the worker.
 * On failure a message naming the problem has been printed and a negative
 * DPN_E* is returned. */
int dpn_init(int *argc, char ***argv, struct dpn_worker **wp);

/* Poll the queue and run callbacks and timers until dpn_stop() or SIGINT/SIGTERM. */
int dpn_run(struct dpn_worker *w);

/* One turn of dpn_run's loop without its idle policy, for a program with a
 * loop of its own (the sockets layer, posix/): receive a burst, run due
 * timers and the callbacks, send what they wrote. Returns the frames
 * received (0: nothing came). Never sleeps: sleep on dpn_wait_fd. */
int dpn_poll(struct dpn_worker *w);
/* A file descriptor that is readable while frames wait for this worker
 * (a standalone worker on net_tap: its queues), for the caller's own epoll
 * or poll; -1 where there is none (memif, null, PCI, attached workers):
 * then poll, napping briefly when idle. Asking turns off net_tap's signal
 * per frame (which would interrupt the caller's own system calls): the
 * worker reads its queues on every dpn_poll instead. */
int dpn_wait_fd(struct dpn_worker *w);

/* Ask dpn_run() to return after the current iteration. Async-signal-safe. */
void dpn_stop(struct dpn_worker *w);

/* Close every connection (FIN, then RST for those that do not finish within
 * a short grace period), print counters on stderr (not after dpn_set_quiet
 * or --quiet), stop the port, release DPDK memory. No dpn_* call on w, its
 * connections, buffers or timers is valid afterwards. */
void dpn_close(struct dpn_worker *w);
/* on != 0: dpn_close prints nothing (as the --quiet option). */
void dpn_set_quiet(struct dpn_worker *w, int on);

/* This worker's place among the workers of its application (attached:
 * those dpnetd has for the same --app, ordered by queue; standalone: 0 of
 * 1), for sharding state. Read at the time of the call: workers that join
 * or leave change it. */
unsigned dpn_worker_index(const struct dpn_worker *w);
unsigned dpn_worker_count(const struct dpn_worker *w);

/* Worker counters (also printed by dpn_close). */
struct dpn_stats {
    uint64_t rx_pkts, rx_bytes, tx_pkts, tx_bytes;
    uint64_t rx_dropped;  /* bad checksum, non-IPv4, wrap failure */
    uint64_t tx_dropped;  /* no mbuf, or still unsent at shutdown */
    uint64_t rx_nombuf;   /* PMD ran out of mbufs (rte_eth_stats) */
    uint64_t conns_open;  /* currently open TCP connections */
    uint64_t conns_total; /* accepted + connected so far */
    uint64_t polls, idle_sleeps;
    uint64_t syn_cookies; /* SYN cookies sent: a listener's backlog was full (SYN flood) */
    uint64_t tx_full;     /* times the TX ring filled up (frames kept, not lost) */
    uint64_t rx_copied;   /* frames copied out of a nearly empty mbuf pool */
    uint64_t time_wait;   /* connections in TIME_WAIT now */
    /* TCP input guard (RFC 793 3.9, RFC 5961), segments of known connections: */
    uint64_t tcp_unacceptable; /* outside the receive window: dropped (answered by an ACK) */
    uint64_t tcp_bad_ack;      /* ACK outside SND.UNA - MAX.SND.WND .. SND.NXT, or none */
    uint64_t tcp_challenged;   /* in-window RST or SYN: dropped, challenge ACK */
    uint64_t tcp_acks_limited; /* answers not sent: rate limit (RFC 5961 section 7) */
    uint64_t syn_cookies_ok;   /* connections opened by a valid SYN cookie */
    /* ARP guard (stack/arp_guard.h): a neighbor's MAC does not move on one
     * frame's word (standalone workers and dpnetd; 0 in attached workers). */
    uint64_t arp_dropped; /* claims of another MAC for a neighbor held, of a group or
                             zero MAC, or of our address: dropped before lwIP */
    uint64_t arp_probes;  /* ARP requests sent to check a neighbor's MAC before it moves */
    uint64_t arp_moved;   /* neighbors that moved to a new MAC after the old one fell silent */
    /* UDP receive */
    uint64_t udp_bad_src; /* datagrams from a broadcast, multicast, loopback, 0/8 or our
                             own address: dropped, never answered */
    uint64_t udp_unread;  /* datagrams for a socket bound without a receive callback */
    uint64_t tx_blocked;  /* TCP frames refused while the TX ring and our batch were full:
                             lwIP keeps them, we send again when the ring drains */
    /* Zero-copy send: TCP payload pieces sent from the mbuf that holds them
     * (data given with dpn_send_buf, first sends and retransmissions alike),
     * and their bytes. Everything else in tx_bytes was copied into the frame. */
    uint64_t tx_zc_segs, tx_zc_bytes;
    /* TCP segmentation offload: frames sent as one run of segments for the
     * PMD to cut, and the segments they carried. */
    uint64_t tx_tso_frames, tx_tso_segs;
    /* tcp.fast_path: TCP segments taken by header prediction (the next
     * in-order data or ACK of an established connection, around lwIP's
     * input; the others in rx_pkts went through lwIP), and TCP segments
     * sent as frames built directly, around lwIP's IPv4 and link output. */
    uint64_t tcp_fast, tcp_fast_out;
};
void dpn_get_stats(const struct dpn_worker *w, struct dpn_stats *st);

/* Critical-path breakdown: with on, the worker stamps each request/answer
 * iteration at its stage boundaries (rx_burst, lwIP input, callback, lwIP
 * output, tx_burst) and dpn_close() prints the median of each stage and its
 * share. Near-zero cost when off. 0 or -DPN_ENOMEM. */
int dpn_trace_enable(struct dpn_worker *w, int on);

/* Free mbufs in the worker's pool (tests: must return to baseline). */
unsigned dpn_mbufs_free(const struct dpn_worker *w);

/* IPv4 address of this worker, host order. */
uint32_t dpn_local_ip(const struct dpn_worker *w);

/* ---- buffers: zero-copy views of received data ---- */
struct dpn_buf; /* a chain of segments, each inside a DPDK mbuf */

size_t dpn_buf_len(const struct dpn_buf *b);
/* Segment iteration: seg = dpn_buf_first(b); seg; seg = dpn_buf_next(seg). */
const struct dpn_buf *dpn_buf_first(const struct dpn_buf *b);
const struct dpn_buf *dpn_buf_next(const struct dpn_buf *seg);
const void *dpn_buf_data(const struct dpn_buf *seg, size_t *len);
/* Copy up to len bytes starting at offset into dst; returns bytes copied. */
size_t dpn_buf_copy(const struct dpn_buf *b, void *dst, size_t len, size_t offset);
void dpn_buf_free(struct dpn_buf *b);
/* A fresh single-segment buffer with room for len bytes (len <= the MSS of
 * the port's MTU: 1460 at 1500, 8960 at 9000), for
 * zero-copy sending; fill it through dpn_buf_mut(). NULL when out of mbufs. */
struct dpn_buf *dpn_buf_alloc(struct dpn_worker *w, size_t len);
void *dpn_buf_mut(struct dpn_buf *b);

/* ---- TCP ---- */
struct dpn_conn;
struct dpn_listener;

struct dpn_tcp_ops {
    /* A new connection completed its handshake on a listener. Return 0 to
     * keep it (set per-connection state with dpn_conn_set_ctx), non-zero to
     * refuse it (it is reset). */
    int (*accepted)(void *listen_ctx, struct dpn_conn *c);
    /* dpn_connect() finished: err is 0 or a negative DPN_E*. On error c is
     * gone after the callback returns. */
    void (*connected)(void *ctx, struct dpn_conn *c, int err);
    /* Data arrived; the application owns b (see buffer ownership above). */
    void (*recv)(void *ctx, struct dpn_conn *c, struct dpn_buf *b);
    /* The peer closed its sending side (FIN): no more recv(). The application
     * may still send, then dpn_shutdown() (closed(0) follows once both sides
     * are done) or dpn_close_conn(). Without an eof callback the stack closes
     * the connection itself. If the application had already called
     * dpn_shutdown(), closed(0) follows as soon as this returns. */
    void (*eof)(void *ctx, struct dpn_conn *c);
    /* len bytes were acknowledged: room in the send buffer again. */
    void (*sent)(void *ctx, struct dpn_conn *c, size_t len);
    /* The connection ended. err == 0: in order, both sides closed (after
     * dpn_shutdown and the peer's FIN). err < 0: -DPN_ECONNRESET (the peer
     * reset it), -DPN_ETIMEDOUT (retransmissions, keepalive or the idle
     * timeout gave up), -DPN_ECONNABORTED, -DPN_ENOMEM, -DPN_EHOSTUNREACH.
     * c is invalid once this returns: no dpn_close_conn(), no dpn_abort()
     * (both are ignored inside the callback). Never called after the
     * application's own dpn_close_conn() or dpn_abort(). */
    void (*closed)(void *ctx, struct dpn_conn *c, int err);
};

/* Listen on local TCP port (host order). ctx is passed to accepted(); each
 * accepted connection starts with the same ops and ctx until changed. */
int dpn_listen(struct dpn_worker *w, uint16_t port, const struct dpn_tcp_ops *ops, void *ctx,
               struct dpn_listener **lp);
void dpn_unlisten(struct dpn_listener *l);
void dpn_listener_set_ctx(struct dpn_listener *l, void *ctx);
void *dpn_listener_ctx(const struct dpn_listener *l);

/* Connect to ip:port (host order) from an ephemeral port. ops->connected
 * reports the outcome. */
int dpn_connect(struct dpn_worker *w, uint32_t ip, uint16_t port, const struct dpn_tcp_ops *ops,
                void *ctx, struct dpn_conn **cp);

void dpn_conn_set_ctx(struct dpn_conn *c, void *ctx);
void *dpn_conn_ctx(const struct dpn_conn *c);
/* Peer address and port, host order (0, 0 once the connection has no pcb). */
void dpn_conn_peer(const struct dpn_conn *c, uint32_t *ip, uint16_t *port);
/* Local address and port, host order (0, 0 likewise). */
void dpn_conn_local(const struct dpn_conn *c, uint32_t *ip, uint16_t *port);

/* Copying send: queues up to len bytes; returns the number queued (may be
 * short when the send buffer is full) or a negative DPN_E* (DPN_EAGAIN when
 * nothing fits). Data goes out at the end of the current poll iteration. */
long dpn_send(struct dpn_conn *c, const void *data, size_t len);
/* Gathered copying send: the pieces in order, as one dpn_send each; returns
 * the bytes queued (short when the send buffer fills: the rest is yours to
 * send after a sent() callback) or a negative DPN_E* when nothing was. */
struct dpn_iov {
    const void *base;
    size_t len;
};
long dpn_sendv(struct dpn_conn *c, const struct dpn_iov *iov, unsigned n);
/* Bytes queued since the connection opened, and bytes the peer has
 * acknowledged: a write is complete (delivered to the peer's stack) once
 * dpn_conn_acked() reaches dpn_conn_written() as it was after the write. */
uint64_t dpn_conn_written(const struct dpn_conn *c);
uint64_t dpn_conn_acked(const struct dpn_conn *c);
/* Zero-copy send: the stack takes b (on success) and frees it once acked.
 * Frames carry b's bytes in place where the PMD takes mbuf chains (pieces
 * of 512 bytes or more; docs/api.md section 5 says when a copy happens).
 * DPN_EAGAIN when it does not fit now. On any error b is still yours. */
int dpn_send_buf(struct dpn_conn *c, struct dpn_buf *b);
/* Bytes that can be queued now. */
size_t dpn_send_space(const struct dpn_conn *c);
/* Give back received data: frees b and reopens the window by its length. */
void dpn_recv_done(struct dpn_conn *c, struct dpn_buf *b);
/* Reopen the receive window by len bytes without freeing anything (for data
 * passed on with dpn_send_buf: reopen once it is acknowledged, so that the
 * window bounds the memory a connection holds). */
void dpn_recved(struct dpn_conn *c, size_t len);

/* Flow control for a reader: after dpn_read_stop no recv() (nor eof())
 * runs; what arrives is held by the stack (it closes the window, so the
 * peer stops within one window) and goes to recv() in order from the loop
 * after dpn_read_start. 0, or -DPN_EINVAL for a closed connection. */
int dpn_read_stop(struct dpn_conn *c);
int dpn_read_start(struct dpn_conn *c);

/* TCP keepalive: after idle_ms without a segment from the peer, a probe
 * every interval_ms; count unanswered probes end the connection (closed:
 * -DPN_ETIMEDOUT). idle_ms 0 turns it off. 0 or -DPN_EINVAL. */
int dpn_conn_keepalive(struct dpn_conn *c, uint32_t idle_ms, uint32_t interval_ms, uint32_t count);
/* End the connection (RST; closed: -DPN_ETIMEDOUT) when the peer sends
 * nothing for ms milliseconds (checked four times per period, granularity
 * 50 ms). 0 turns it off. 0 or -DPN_EINVAL. */
int dpn_conn_idle_timeout(struct dpn_conn *c, uint32_t ms);

/* Half-close: send FIN after queued data; receiving continues. When the
 * peer's FIN has come too (eof), closed(0) ends the connection. */
int dpn_shutdown(struct dpn_conn *c);
/* Close: queued data is still delivered, then FIN; what the peer still
 * sends is read and dropped until its FIN (5 s at most), so late data is
 * not answered by RST. No callbacks after this; c is invalid. */
void dpn_close_conn(struct dpn_conn *c);
/* Abort: RST now, queued data dropped. No callbacks; c is invalid. */
void dpn_abort(struct dpn_conn *c);

/* ---- UDP ---- */
struct dpn_udp;
/* recv: the application owns b. src ip/port in host order. */
typedef void (*dpn_udp_recv_fn)(void *ctx, struct dpn_udp *u, struct dpn_buf *b, uint32_t src_ip,
                                uint16_t src_port);
/* port 0 picks an ephemeral port. recv may be NULL (a send-only socket):
 * datagrams to it are dropped (counted in dpn_stats.udp_unread). */
int dpn_udp_bind(struct dpn_worker *w, uint16_t port, dpn_udp_recv_fn recv, void *ctx,
                 struct dpn_udp **up);
int dpn_udp_sendto(struct dpn_udp *u, const void *data, size_t len, uint32_t ip, uint16_t port);
/* Zero copy: takes b on success. */
int dpn_udp_sendto_buf(struct dpn_udp *u, struct dpn_buf *b, uint32_t ip, uint16_t port);
void dpn_udp_set_ctx(struct dpn_udp *u, void *ctx);
void *dpn_udp_ctx(const struct dpn_udp *u);
void dpn_udp_close(struct dpn_udp *u);

/* ---- timers (run inside dpn_run, millisecond resolution) ---- */
typedef void (*dpn_timer_fn)(void *arg);
/* A timer with a handle: made once (NULL when out of memory), started,
 * restarted or stopped any number of times, freed by the application
 * (before dpn_close). dpn_timer_start arms it for ms from now and, with
 * period_ms > 0, every period_ms after (a late periodic timer runs once,
 * not once per missed period); restarting a pending timer moves it. Its
 * callback may start, stop or free any timer, itself included. Starting
 * never allocates. */
struct dpn_timer;
struct dpn_timer *dpn_timer_new(struct dpn_worker *w, dpn_timer_fn fn, void *arg);
int dpn_timer_start(struct dpn_timer *t, uint32_t ms, uint32_t period_ms);
void dpn_timer_stop(struct dpn_timer *t);
int dpn_timer_pending(const struct dpn_timer *t); /* 1: started and not yet run or stopped */
void dpn_timer_free(struct dpn_timer *t);
/* One-shot timers without a handle (lwIP's timeouts; w is the process's
 * one worker): call fn(arg) after ms milliseconds. 0, -DPN_EINVAL (no fn)
 * or -DPN_ENOMEM (256 pending already). dpn_timer_cancel removes the first
 * pending one with that fn and arg. */
int dpn_timer_add(struct dpn_worker *w, uint32_t ms, dpn_timer_fn fn, void *arg);
void dpn_timer_cancel(struct dpn_worker *w, dpn_timer_fn fn, void *arg);

/* Monotonic time from the TSC, nanoseconds. */
uint64_t dpn_now_ns(void);

/* Parse "a.b.c.d" into a host-order address; 0 on success. */
int dpn_parse_ip(const char *s, uint32_t *ip);

#ifdef __cplusplus
}
#endif
#endif
