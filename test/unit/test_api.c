/* Unit tests of the public API's state machine (stack/tcp.c, stack/udp.c,
 * timers in stack/loop.c): crafted frames from a simulated peer go in through
 * dpn_rx_burst, and what lwIP answers is read from w->tx_pkts. Sequence
 * numbers are always taken from the frames lwIP emits. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "lwip/etharp.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/stats.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "lwip/udp.h"

#include "buf.h"
#include "cksum.h"
#include "tcp_pcbs.h"
#include "tcp_tw.h"
#include "timer.h"
#include "unit_eal.h"

/* The MSS at the tests' MTU of 1500 (TCP_MSS is the jumbo maximum). */
#define MSS1500 1460

static struct dpn_worker *w;
static unsigned base_mbufs; /* free mbufs after start-up */
static uint64_t base_conns;
static mem_size_t base_heap; /* lwIP heap in use after start-up */

#define PEER_ISN_BASE 0x7fff0000u

/* ---- plumbing ---- */

static void inject(struct rte_mbuf *m) {
    ck_assert_ptr_nonnull(m);
    dpn_rx_burst(w, &m, 1);
}

static void sleep_ms(unsigned ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Frame i of lwIP's output as a TCP segment, checked for addressing and
 * checksums (the null port has no offloads: lwIP computes them). */
static struct unit_seg tx_tcp(int i) {
    struct unit_seg s;
    ck_assert_int_lt(i, w->tx_n);
    struct rte_mbuf *m = w->tx_pkts[i];
    ck_assert_msg(unit_parse(m, IPPROTO_TCP, &s), "frame %d is not TCP", i);
    ck_assert(rte_is_same_ether_addr(&s.eth->dst_addr, &unit_peer_mac));
    ck_assert(rte_is_same_ether_addr(&s.eth->src_addr, &w->mac));
    ck_assert_uint_eq(s.sip, UNIT_LOCAL_IP);
    ck_assert_uint_eq(s.dip, UNIT_PEER_IP);
    ck_assert_msg(dpn_cksum_verify_sw(m, false, false), "frame %d: bad checksum", i);
    return s;
}

static struct unit_seg tx_udp(int i) {
    struct unit_seg s;
    ck_assert_int_lt(i, w->tx_n);
    struct rte_mbuf *m = w->tx_pkts[i];
    ck_assert_msg(unit_parse(m, IPPROTO_UDP, &s), "frame %d is not UDP", i);
    ck_assert(rte_is_same_ether_addr(&s.eth->src_addr, &w->mac));
    ck_assert_uint_eq(s.sip, UNIT_LOCAL_IP);
    ck_assert_msg(dpn_cksum_verify_sw(m, false, false), "frame %d: bad checksum", i);
    return s;
}

/* Value of TCP option kind in s, or -1. */
static long tcp_opt(const struct unit_seg *s, uint8_t kind) {
    for (unsigned i = 0; i < s->optlen;) {
        uint8_t k = s->opt[i];
        if (k == 0)
            break;
        if (k == 1) {
            i++;
            continue;
        }
        if (i + 1 >= s->optlen || s->opt[i + 1] < 2)
            break;
        uint8_t l = s->opt[i + 1];
        if (k == kind) {
            if (l == 4)
                return s->opt[i + 2] << 8 | s->opt[i + 3];
            if (l == 3)
                return s->opt[i + 2];
            return 0;
        }
        i += l;
    }
    return -1;
}

/* The pcb lwIP has for local port lport and peer port pport, in any active
 * state, or NULL. */
static struct tcp_pcb *find_pcb(uint16_t lport, uint16_t pport) {
    for (struct tcp_pcb *p = tcp_active_pcbs; p != NULL; p = p->next)
        if (p->local_port == lport && p->remote_port == pport)
            return p;
    return NULL;
}

/* Whether our port lport to the peer's pport is in TIME_WAIT, which lives
 * in our table (tcp_tw.h), never on lwIP's list. */
static bool in_time_wait(uint16_t lport, uint16_t pport) {
    ck_assert_ptr_null(tcp_tw_pcbs);
    return dpn_tw_has(w->tw, rte_cpu_to_be_32(UNIT_PEER_IP), pport, lport);
}

/* ---- callbacks: everything they see is recorded here ---- */

#define MAXBUFS 16
static struct ev {
    int accepted;
    int refuse;
    struct dpn_conn *conn;
    int recv;
    struct dpn_buf *bufs[MAXBUFS];
    int nbufs;
    int abort_in_recv;
    int close_in_eof;
    int eof;
    size_t sent;
    int sent_calls;
    int closed;
    int closed_err;
    long send_in_closed;
    int connected;
    int connected_err;
    struct dpn_conn *connected_conn;
} ev;

static int on_accepted(void *lctx, struct dpn_conn *c) {
    ck_assert_ptr_eq(lctx, &ev);
    ev.accepted++;
    if (ev.refuse)
        return 1;
    ev.conn = c;
    ck_assert_ptr_eq(dpn_conn_ctx(c), &ev); /* starts with the listener's ctx */
    return 0;
}

static void on_recv(void *ctx, struct dpn_conn *c, struct dpn_buf *b) {
    ck_assert_ptr_eq(ctx, &ev);
    ev.recv++;
    if (ev.abort_in_recv) {
        dpn_abort(c);
        dpn_buf_free(b);
        return;
    }
    ck_assert_int_lt(ev.nbufs, MAXBUFS);
    ev.bufs[ev.nbufs++] = b;
}

static void on_eof(void *ctx, struct dpn_conn *c) {
    ck_assert_ptr_eq(ctx, &ev);
    ev.eof++;
    if (ev.close_in_eof)
        dpn_close_conn(c);
}

static void on_sent(void *ctx, struct dpn_conn *c, size_t len) {
    (void)c;
    ck_assert_ptr_eq(ctx, &ev);
    ev.sent += len;
    ev.sent_calls++;
}

static void on_closed(void *ctx, struct dpn_conn *c, int err) {
    ck_assert_ptr_eq(ctx, &ev);
    ev.closed++;
    ev.closed_err = err;
    ev.send_in_closed = dpn_send(c, "x", 1);
}

static void on_connected(void *ctx, struct dpn_conn *c, int err) {
    ck_assert_ptr_eq(ctx, &ev);
    ev.connected++;
    ev.connected_err = err;
    ev.connected_conn = c;
}

static const struct dpn_tcp_ops ops = {
    .accepted = on_accepted,
    .connected = on_connected,
    .recv = on_recv,
    .eof = on_eof,
    .sent = on_sent,
    .closed = on_closed,
};

static void ev_reset(void) {
    for (int i = 0; i < ev.nbufs; i++)
        dpn_buf_free(ev.bufs[i]);
    memset(&ev, 0, sizeof(ev));
}

/* ---- the simulated peer's side of a TCP connection ---- */

struct peer {
    uint16_t lport, pport; /* ours, the peer's */
    uint32_t snd_nxt;      /* peer's next sequence number */
    uint32_t rcv_nxt;      /* next sequence number expected from lwIP */
    struct dpn_conn *c;
};

static struct rte_mbuf *peer_seg(struct peer *p, uint8_t flags, const void *data, unsigned len) {
    return unit_tcp_frame(w->pool, &w->mac, UNIT_PEER_IP, UNIT_LOCAL_IP, p->pport, p->lport,
                          p->snd_nxt, p->rcv_nxt, flags, 65535, NULL, 0, data, len);
}

/* Send a segment from the peer; the peer's sequence advances. Returns the
 * injected mbuf (freed by now unless lwIP kept it). */
static struct rte_mbuf *peer_send(struct peer *p, uint8_t flags, const void *data, unsigned len) {
    struct rte_mbuf *m = peer_seg(p, flags, data, len);
    inject(m);
    p->snd_nxt += len + ((flags & (RTE_TCP_SYN_FLAG | RTE_TCP_FIN_FLAG)) ? 1 : 0);
    return m;
}

/* An ACK of everything lwIP sent (p->rcv_nxt updated by the caller). */
static void peer_ack(struct peer *p) {
    peer_send(p, RTE_TCP_ACK_FLAG, NULL, 0);
}

static struct dpn_listener *listener80;

static struct dpn_listener *listener(void) {
    if (listener80 == NULL)
        ck_assert_int_eq(dpn_listen(w, 80, &ops, &ev, &listener80), 0);
    return listener80;
}

/* Inject a SYN (with window scaling when wscale) and check the SYN-ACK. */
static struct unit_seg peer_syn(struct peer *p, uint16_t lport, uint16_t pport, bool wscale) {
    memset(p, 0, sizeof(*p));
    p->lport = lport;
    p->pport = pport;
    p->snd_nxt = PEER_ISN_BASE + (uint32_t)pport * 1000u;   /* wraps past 2^32 */
    const uint8_t opts[8] = {2, 4, 0x05, 0xb4, 1, 3, 3, 7}; /* MSS 1460, NOP, WS 7 */
    unit_tx_drop(w);
    struct rte_mbuf *m =
        unit_tcp_frame(w->pool, &w->mac, UNIT_PEER_IP, UNIT_LOCAL_IP, pport, lport, p->snd_nxt, 0,
                       RTE_TCP_SYN_FLAG, 65535, opts, wscale ? 8 : 4, NULL, 0);
    inject(m);
    p->snd_nxt++;
    ck_assert_int_eq(w->tx_n, 1);
    struct unit_seg s = tx_tcp(0);
    ck_assert_uint_eq(s.flags, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG);
    ck_assert_uint_eq(s.ack, p->snd_nxt);
    ck_assert_uint_eq(s.sport, lport);
    ck_assert_uint_eq(s.dport, pport);
    ck_assert_uint_eq(s.len, 0);
    ck_assert_int_eq(tcp_opt(&s, 2), MSS1500);
    ck_assert_int_eq(tcp_opt(&s, 3) >= 0, wscale); /* scaling only when offered */
    p->rcv_nxt = s.seq + 1;
    unit_tx_drop(w);
    return s;
}

/* A full handshake to our port 80; returns with the accepted connection. */
static void establish(struct peer *p, uint16_t pport, bool wscale) {
    listener();
    peer_syn(p, 80, pport, wscale);
    int before = ev.accepted;
    peer_ack(p);
    ck_assert_int_eq(ev.accepted, before + 1);
    ck_assert_int_eq(w->tx_n, 0);
    p->c = ev.conn;
    ck_assert_ptr_nonnull(p->c);
}

/* Our TX batch full of filler frames: output is refused (ERR_MEM). */
static void fill_tx_batch(void) {
    while (w->tx_n < DPN_TX_BATCH) {
        w->tx_pkts[w->tx_n] = rte_pktmbuf_alloc(w->pool);
        ck_assert_ptr_nonnull(w->tx_pkts[w->tx_n]);
        w->tx_n++;
    }
}

static void setup(void) {
    ev_reset();
    unit_tx_drop(w);
}

static void teardown(void) {
    w->in_poll = false; /* a test that failed inside an iteration */
    dpn_later_release(w);
    ev_reset();
    unit_tx_drop(w);
}

/* Teach lwIP the peer's MAC (ARP request from the peer for our address). */
static bool learn_peer(void) {
    unit_tx_drop(w);
    struct rte_ether_addr bcast = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, zero = {{0}};
    struct rte_mbuf *m = unit_arp_frame(w->pool, RTE_ARP_OP_REQUEST, &bcast, &unit_peer_mac,
                                        UNIT_PEER_IP, &zero, UNIT_LOCAL_IP);
    if (m == NULL)
        return false;
    dpn_rx_burst(w, &m, 1);
    bool ok = w->tx_n == 1;
    unit_tx_drop(w);
    return ok;
}

/* ---- ARP ---- */

START_TEST(test_startup_announce) {
    /* dpn_init announced our address (gratuitous ARP), nothing else. */
    ck_assert_int_ge(unit_startup_frames, 1);
    ck_assert(unit_startup_garp);
    ck_assert_uint_eq(dpn_local_ip(w), UNIT_LOCAL_IP);
    ck_assert_uint_eq(w->netif.mtu, 1500);
    ck_assert_uint_eq(w->st.conns_open, 0);
}
END_TEST

START_TEST(test_arp_reply) {
    struct rte_ether_addr bcast = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, zero = {{0}};
    inject(unit_arp_frame(w->pool, RTE_ARP_OP_REQUEST, &bcast, &unit_peer_mac, UNIT_PEER_IP, &zero,
                          UNIT_LOCAL_IP));
    ck_assert_int_eq(w->tx_n, 1);
    struct rte_mbuf *m = w->tx_pkts[0];
    const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
    ck_assert_uint_eq(eth->ether_type, rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP));
    ck_assert(rte_is_same_ether_addr(&eth->dst_addr, &unit_peer_mac));
    ck_assert(rte_is_same_ether_addr(&eth->src_addr, &w->mac));
    const struct rte_arp_hdr *a = (const struct rte_arp_hdr *)(eth + 1);
    ck_assert_uint_eq(a->arp_opcode, rte_cpu_to_be_16(RTE_ARP_OP_REPLY));
    ck_assert(rte_is_same_ether_addr(&a->arp_data.arp_sha, &w->mac));
    ck_assert_uint_eq(a->arp_data.arp_sip, rte_cpu_to_be_32(UNIT_LOCAL_IP));
    ck_assert(rte_is_same_ether_addr(&a->arp_data.arp_tha, &unit_peer_mac));
    ck_assert_uint_eq(a->arp_data.arp_tip, rte_cpu_to_be_32(UNIT_PEER_IP));
    unit_tx_drop(w);

    /* A request for another address is not answered. */
    inject(unit_arp_frame(w->pool, RTE_ARP_OP_REQUEST, &bcast, &unit_peer_mac, UNIT_PEER_IP, &zero,
                          RTE_IPV4(10, 0, 0, 77)));
    ck_assert_int_eq(w->tx_n, 0);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
}
END_TEST

/* ---- timers (first: no TCP timer is running yet) ---- */

static int fired_a, fired_b;
static void timer_cb(void *arg) {
    ++*(int *)arg;
}

START_TEST(test_timers) {
    fired_a = fired_b = 0;
    ck_assert_int_eq(dpn_timer_add(w, 20, NULL, &fired_a), -DPN_EINVAL);
    ck_assert_int_eq(dpn_timer_add(w, 20, timer_cb, &fired_a), 0);
    sys_check_timeouts();
    ck_assert_int_eq(fired_a, 0); /* not yet */
    sleep_ms(30);
    sys_check_timeouts();
    ck_assert_int_eq(fired_a, 1);
    sleep_ms(30);
    sys_check_timeouts();
    ck_assert_int_eq(fired_a, 1); /* once */

    /* Cancel: only the timer with that function and argument. */
    fired_a = fired_b = 0;
    ck_assert_int_eq(dpn_timer_add(w, 15, timer_cb, &fired_a), 0);
    ck_assert_int_eq(dpn_timer_add(w, 15, timer_cb, &fired_b), 0);
    dpn_timer_cancel(w, timer_cb, &fired_a);
    sleep_ms(25);
    sys_check_timeouts();
    ck_assert_int_eq(fired_a, 0);
    ck_assert_int_eq(fired_b, 1);
    dpn_timer_cancel(w, timer_cb, &fired_b); /* already fired: harmless */

    /* Order: the earlier deadline first, and 0 ms fires at the next check. */
    fired_a = fired_b = 0;
    ck_assert_int_eq(dpn_timer_add(w, 200, timer_cb, &fired_b), 0);
    ck_assert_int_eq(dpn_timer_add(w, 0, timer_cb, &fired_a), 0);
    sys_check_timeouts();
    ck_assert_int_eq(fired_a, 1);
    ck_assert_int_eq(fired_b, 0);
    dpn_timer_cancel(w, timer_cb, &fired_b);
    sleep_ms(210);
    sys_check_timeouts();
    ck_assert_int_eq(fired_b, 0);
    unit_tx_drop(w);
}
END_TEST

/* ---- listen / connect arguments ---- */

/* Timers until lwIP's timeout pool runs out: an error, not an abort. */
START_TEST(test_timers_exhausted) {
    static int args[4096];
    int n = 0, rc = 0;
    while (n < 4096 && (rc = dpn_timer_add(w, 60000, timer_cb, &args[n])) == 0)
        n++;
    ck_assert_int_eq(rc, -DPN_ENOMEM);
    ck_assert_int_gt(n, 100);
    for (int i = 0; i < n; i++)
        dpn_timer_cancel(w, timer_cb, &args[i]);
    ck_assert_int_eq(dpn_timer_add(w, 1, timer_cb, &args[0]), 0); /* room again */
    dpn_timer_cancel(w, timer_cb, &args[0]);
}
END_TEST

START_TEST(test_listen_args) {
    struct dpn_listener *l = NULL, *l2 = NULL;
    ck_assert_int_eq(dpn_listen(w, 0, &ops, NULL, &l), -DPN_EINVAL);
    ck_assert_int_eq(dpn_listen(w, 8080, NULL, NULL, &l), -DPN_EINVAL);
    ck_assert_int_eq(dpn_listen(NULL, 8080, &ops, NULL, &l), -DPN_EINVAL);
    ck_assert_int_eq(dpn_listen(w, 8080, &ops, NULL, NULL), -DPN_EINVAL);
    ck_assert_ptr_null(l);
    ck_assert_int_eq(dpn_listen(w, 8080, &ops, &ev, &l), 0);
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(dpn_listen(w, 8080, &ops, &ev, &l2), -DPN_EADDRINUSE);
    ck_assert_ptr_null(l2);
    /* Another port is fine; the port is free again after unlisten. */
    ck_assert_int_eq(dpn_listen(w, 8081, &ops, &ev, &l2), 0);
    dpn_unlisten(l2);
    dpn_unlisten(l);
    l = NULL;
    ck_assert_int_eq(dpn_listen(w, 8080, &ops, &ev, &l), 0);
    dpn_unlisten(l);
    dpn_unlisten(NULL);

    /* No listener: a SYN is answered with RST. */
    struct peer p = {.lport = 8080, .pport = 30000, .snd_nxt = 5};
    unit_tx_drop(w);
    peer_send(&p, RTE_TCP_SYN_FLAG, NULL, 0);
    ck_assert_int_eq(w->tx_n, 1);
    struct unit_seg s = tx_tcp(0);
    ck_assert(s.flags & RTE_TCP_RST_FLAG);
    ck_assert_uint_eq(s.ack, 6);
    ck_assert_int_eq(ev.accepted, 0);

    struct dpn_conn *c = NULL;
    ck_assert_int_eq(dpn_connect(w, UNIT_PEER_IP, 0, &ops, &ev, &c), -DPN_EINVAL);
    ck_assert_int_eq(dpn_connect(w, 0, 80, &ops, &ev, &c), -DPN_EINVAL);
    ck_assert_int_eq(dpn_connect(w, UNIT_PEER_IP, 80, NULL, &ev, &c), -DPN_EINVAL);
    ck_assert_int_eq(dpn_connect(NULL, UNIT_PEER_IP, 80, &ops, &ev, &c), -DPN_EINVAL);
    ck_assert_ptr_null(c);
    ck_assert_uint_eq(w->st.conns_open, base_conns);

    /* NULL connections. */
    ck_assert_int_eq(dpn_send(NULL, "x", 1), -DPN_EINVAL);
    ck_assert_int_eq(dpn_send_buf(NULL, NULL), -DPN_EINVAL);
    ck_assert_int_eq(dpn_shutdown(NULL), -DPN_EINVAL);
    ck_assert_uint_eq(dpn_send_space(NULL), 0);
    dpn_close_conn(NULL);
    dpn_abort(NULL);
    dpn_recved(NULL, 10);
    dpn_recv_done(NULL, NULL);
    ck_assert_str_eq(dpn_strerror(-DPN_EADDRINUSE), dpn_strerror(DPN_EADDRINUSE));
}
END_TEST

/* ---- one connection through its life ---- */

START_TEST(test_tcp_lifecycle) {
    struct peer p;
    unsigned mbufs0 = dpn_mbufs_free(w);
    listener();
    /* SYN: a SYN-ACK, no accept yet, no connection counted. */
    peer_syn(&p, 80, 40000, true);
    ck_assert_int_eq(ev.accepted, 0);
    ck_assert_uint_eq(w->st.conns_open, base_conns);
    /* ACK: accepted() once, nothing sent. */
    peer_ack(&p);
    ck_assert_int_eq(ev.accepted, 1);
    ck_assert_int_eq(w->tx_n, 0);
    struct dpn_conn *c = ev.conn;
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(w->st.conns_open, base_conns + 1);
    uint32_t ip;
    uint16_t port;
    dpn_conn_peer(c, &ip, &port);
    ck_assert_uint_eq(ip, UNIT_PEER_IP);
    ck_assert_uint_eq(port, 40000);
    ck_assert_ptr_eq(dpn_conn_ctx(c), &ev);
    /* The configured receive buffer bounds the window. */
    ck_assert_ptr_nonnull(c->pcb);
    ck_assert_uint_le(c->pcb->rcv_wnd, w->cfg.tcp_rcvbuf);
    tcpwnd_size_t wnd0 = c->pcb->rcv_wnd;
    ck_assert_uint_gt(dpn_send_space(c), 0);
    ck_assert_uint_le(dpn_send_space(c), w->cfg.tcp_sndbuf);

    /* Data: recv() gets exactly those bytes, in the mbuf they came in. */
    const char msg[] = "hello, dpnet";
    unsigned n = sizeof(msg) - 1;
    struct rte_mbuf *m = peer_send(&p, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, msg, n);
    ck_assert_int_eq(ev.recv, 1);
    ck_assert_int_eq(ev.nbufs, 1);
    struct dpn_buf *b = ev.bufs[0];
    ck_assert_uint_eq(dpn_buf_len(b), n);
    char got[64] = {0};
    ck_assert_uint_eq(dpn_buf_copy(b, got, sizeof(got), 0), n);
    ck_assert_str_eq(got, msg);
    size_t l = 0;
    const char *d = dpn_buf_data(b, &l);
    ck_assert_uint_eq(l, n);
    ck_assert_ptr_null(dpn_buf_next(b));
    ck_assert_ptr_eq(dpn_pbuf_mbuf((const struct pbuf *)b), m);
    ck_assert((uintptr_t)d >= (uintptr_t)m->buf_addr);
    ck_assert((uintptr_t)d < (uintptr_t)m->buf_addr + m->buf_len);
    ck_assert_ptr_eq(d, rte_pktmbuf_mtod_offset(m, char *, 14 + 20 + 20));
    ck_assert_uint_eq(dpn_mbufs_free(w), mbufs0 - 1); /* the app holds the mbuf */
    ck_assert_uint_eq(c->pcb->rcv_wnd, wnd0 - n);     /* window shrank by what is held */

    /* dpn_recv_done: mbuf back, window reopened. */
    ev.nbufs = 0;
    dpn_recv_done(c, b);
    ck_assert_uint_eq(dpn_mbufs_free(w), mbufs0);
    ck_assert_uint_eq(c->pcb->rcv_wnd, wnd0);

    /* dpn_send: queued, out at the flush, as one segment. */
    unit_tx_drop(w);
    uint8_t out[100];
    for (unsigned i = 0; i < sizeof(out); i++)
        out[i] = (uint8_t)(i * 3 + 1);
    tcpwnd_size_t sndbuf0 = c->pcb->snd_buf;
    ck_assert_uint_eq(sndbuf0, w->cfg.tcp_sndbuf); /* the configured send buffer */
    size_t space0 = dpn_send_space(c);
    ck_assert_uint_eq(space0, sndbuf0); /* the whole buffer, not lwIP's 64 KiB clamp */
    ck_assert_int_eq(dpn_send(c, out, sizeof(out)), 100);
    ck_assert_uint_eq(c->pcb->snd_buf, sndbuf0 - 100);
    ck_assert_uint_eq(dpn_send_space(c), space0 - 100);
    ck_assert_int_eq(w->tx_n, 0);
    dpn_tcp_flush_dirty(w);
    ck_assert_int_eq(w->tx_n, 1);
    struct unit_seg s = tx_tcp(0);
    ck_assert_uint_eq(s.seq, p.rcv_nxt);
    ck_assert_uint_eq(s.ack, p.snd_nxt);
    ck_assert(s.flags & RTE_TCP_ACK_FLAG);
    ck_assert(!(s.flags & (RTE_TCP_SYN_FLAG | RTE_TCP_FIN_FLAG | RTE_TCP_RST_FLAG)));
    ck_assert_uint_eq(s.sport, 80);
    ck_assert_uint_eq(s.dport, 40000);
    ck_assert_uint_eq(s.len, 100);
    ck_assert_int_eq(memcmp(s.data, out, 100), 0);
    p.rcv_nxt += 100;
    unit_tx_drop(w);
    dpn_tcp_flush_dirty(w); /* nothing more */
    ck_assert_int_eq(w->tx_n, 0);

    /* The peer acknowledges: sent(100). */
    ck_assert_int_eq(ev.sent_calls, 0);
    peer_ack(&p);
    ck_assert_uint_eq(ev.sent, 100);
    ck_assert_int_eq(ev.sent_calls, 1);
    ck_assert_uint_eq(c->pcb->snd_buf, sndbuf0);
    ck_assert_uint_eq(dpn_send_space(c), space0);
    ck_assert_int_eq(dpn_send(c, out, 0), 0);

    /* The peer's FIN: eof(), and lwIP acknowledges it. */
    peer_send(&p, RTE_TCP_FIN_FLAG | RTE_TCP_ACK_FLAG, NULL, 0);
    ck_assert_int_eq(ev.eof, 1);
    ck_assert_int_eq(ev.closed, 0);
    ck_assert_int_ge(w->tx_n, 1);
    s = tx_tcp(w->tx_n - 1);
    ck_assert_uint_eq(s.ack, p.snd_nxt);
    ck_assert(!(s.flags & RTE_TCP_FIN_FLAG));
    unit_tx_drop(w);

    /* Half-closed by the peer: sending still works. */
    ck_assert_int_eq(dpn_send(c, "bye!\n", 5), 5);
    dpn_tcp_flush_dirty(w);
    ck_assert_int_eq(w->tx_n, 1);
    s = tx_tcp(0);
    ck_assert_uint_eq(s.len, 5);
    ck_assert_uint_eq(s.seq, p.rcv_nxt);
    p.rcv_nxt += 5;
    unit_tx_drop(w);

    /* Close: a FIN goes out at once, the connection object is released. */
    dpn_close_conn(c);
    ck_assert_uint_eq(w->st.conns_open, base_conns);
    ck_assert_int_ge(w->tx_n, 1);
    s = tx_tcp(w->tx_n - 1);
    ck_assert(s.flags & RTE_TCP_FIN_FLAG);
    ck_assert(!(s.flags & RTE_TCP_RST_FLAG));
    ck_assert_uint_eq(s.seq + s.len, p.rcv_nxt);
    p.rcv_nxt++;
    unit_tx_drop(w);

    /* The peer acknowledges data and FIN: the pcb is gone, no callback. */
    ck_assert_ptr_nonnull(find_pcb(80, 40000));
    peer_ack(&p);
    ck_assert_ptr_null(find_pcb(80, 40000));
    ck_assert_int_eq(ev.sent_calls, 1);
    ck_assert_int_eq(ev.closed, 0);
    ck_assert_int_eq(ev.eof, 1);
    ck_assert_int_eq(w->tx_n, 0);
    ck_assert_uint_eq(dpn_mbufs_free(w), mbufs0);
}
END_TEST

/* After dpn_shutdown and the peer's FIN lwIP frees the pcb by itself (at
 * TIME_WAIT's end, or at once on LAST_ACK's): the connection ends with
 * closed(0) either way, and is gone. */
START_TEST(test_tcp_shutdown_then_peer_fin) {
    struct peer p;
    establish(&p, 40900, true);
    struct dpn_conn *c = p.c;
    ck_assert_int_eq(dpn_shutdown(c), 0);
    dpn_tcp_flush_dirty(w);
    ck_assert_int_eq(w->tx_n, 1);
    struct unit_seg s = tx_tcp(0);
    ck_assert(s.flags & RTE_TCP_FIN_FLAG);
    p.rcv_nxt = s.seq + 1;
    unit_tx_drop(w);
    uint64_t open = w->st.conns_open;
    peer_send(&p, RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG, NULL, 0); /* acks our FIN, sends its own */
    ck_assert_int_eq(ev.eof, 1);
    ck_assert(in_time_wait(80, 40900)); /* in TIME_WAIT, lwIP's business: */
    ck_assert_int_eq(ev.closed, 1);     /* the connection ended in order, c is gone */
    ck_assert_int_eq(ev.closed_err, 0);
    ck_assert_uint_eq(w->st.conns_open, open - 1);
    open = w->st.conns_open + 1;

    /* The other order: the peer's FIN first (eof), then ours; its ACK ends
     * LAST_ACK, lwIP frees the pcb and says so: closed(), c is gone. */
    ev_reset();
    establish(&p, 40901, true);
    c = p.c;
    peer_send(&p, RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG, NULL, 0);
    ck_assert_int_eq(ev.eof, 1);
    unit_tx_drop(w);
    ck_assert_int_eq(dpn_shutdown(c), 0);
    dpn_tcp_flush_dirty(w);
    s = tx_tcp(0);
    ck_assert(s.flags & RTE_TCP_FIN_FLAG);
    p.rcv_nxt = s.seq + 1;
    unit_tx_drop(w);
    peer_ack(&p);
    ck_assert_int_eq(ev.eof, 1);
    ck_assert_int_eq(ev.closed, 1);
    ck_assert_int_eq(ev.closed_err, 0); /* in order */
    ck_assert_ptr_null(find_pcb(80, 40901));
    ck_assert_uint_eq(w->st.conns_open, open - 1);
}
END_TEST

/* dpn_read_stop: nothing is delivered, what arrives is held in order and
 * keeps the window closed by its length; dpn_read_start delivers it (and
 * the FIN after it) from the loop, never from inside the call. */
START_TEST(test_tcp_read_stop_start) {
    struct peer p;
    establish(&p, 40950, true);
    struct dpn_conn *c = p.c;
    struct tcp_pcb *pcb = find_pcb(80, 40950);
    tcpwnd_size_t wnd = pcb->rcv_wnd;
    ck_assert_int_eq(dpn_read_stop(c), 0);
    peer_send(&p, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, "one", 3);
    peer_send(&p, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, "two!", 4);
    peer_send(&p, RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG, NULL, 0);
    ck_assert_int_eq(ev.recv, 0);
    ck_assert_int_eq(ev.eof, 0);
    ck_assert_uint_eq(pcb->rcv_wnd, wnd - 7); /* the window is closed by what is held */
    ck_assert_int_eq(dpn_read_start(c), 0);
    ck_assert_int_eq(ev.recv, 0); /* not from inside the call */
    dpn_tcp_resume(w);
    ck_assert_int_eq(ev.recv, 2);
    ck_assert_int_eq(ev.eof, 1);
    char b0[8] = {0}, b1[8] = {0};
    ck_assert_uint_eq(dpn_buf_copy(ev.bufs[0], b0, sizeof(b0), 0), 3);
    ck_assert_uint_eq(dpn_buf_copy(ev.bufs[1], b1, sizeof(b1), 0), 4);
    ck_assert_str_eq(b0, "one");
    ck_assert_str_eq(b1, "two!");
    ck_assert_ptr_eq(dpn_buf_first(ev.bufs[1]), ev.bufs[1]);
    for (int i = 0; i < ev.nbufs; i++)
        dpn_recv_done(c, ev.bufs[i]);
    ev.nbufs = 0;
    ck_assert_uint_eq(pcb->rcv_wnd, wnd); /* given back */
    /* Paused again: a close frees what is held, and nothing is delivered. */
    ck_assert_int_eq(dpn_read_stop(c), 0);
    ck_assert_int_eq(dpn_read_start(c), 0);
    dpn_close_conn(c);
    ck_assert_int_eq(dpn_read_start(NULL), -DPN_EINVAL);
    dpn_tcp_resume(w);
    ck_assert_int_eq(ev.recv, 2);
    dpn_tcp_flush_dirty(w);
    struct unit_seg s = tx_tcp(w->tx_n - 1); /* our FIN (LAST_ACK): the peer acks it */
    ck_assert(s.flags & RTE_TCP_FIN_FLAG);
    p.rcv_nxt = s.seq + 1;
    unit_tx_drop(w);
    peer_ack(&p);
    ck_assert_ptr_null(find_pcb(80, 40950));
    unit_tx_drop(w);
}
END_TEST

/* dpn_close_conn lingers: data the peer sends after our FIN is read and
 * dropped, never answered by RST; its FIN ends it (TIME_WAIT). */
START_TEST(test_tcp_close_lingers) {
    struct peer p;
    establish(&p, 40951, true);
    dpn_close_conn(p.c);
    dpn_tcp_flush_dirty(w);
    ck_assert_int_ge(w->tx_n, 1);
    struct unit_seg s = tx_tcp(w->tx_n - 1);
    ck_assert(s.flags & RTE_TCP_FIN_FLAG);
    p.rcv_nxt = s.seq + 1;
    unit_tx_drop(w);
    peer_send(&p, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, "late", 4);
    dpn_tcp_flush_dirty(w);
    for (int i = 0; i < w->tx_n; i++)
        ck_assert_msg(!(tx_tcp(i).flags & RTE_TCP_RST_FLAG), "late data answered by RST");
    ck_assert_int_eq(ev.recv, 0); /* no callbacks after close */
    unit_tx_drop(w);
    peer_send(&p, RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG, NULL, 0);
    ck_assert(in_time_wait(80, 40951));
    unit_tx_drop(w);
}
END_TEST

/* Addresses and user pointers. */
START_TEST(test_tcp_local_and_ctx) {
    struct peer p;
    establish(&p, 40952, true);
    uint32_t ip;
    uint16_t port;
    dpn_conn_local(p.c, &ip, &port);
    ck_assert_uint_eq(ip, UNIT_LOCAL_IP);
    ck_assert_uint_eq(port, 80);
    dpn_conn_peer(p.c, &ip, &port);
    ck_assert_uint_eq(ip, UNIT_PEER_IP);
    ck_assert_uint_eq(port, 40952);
    ck_assert_ptr_eq(dpn_listener_ctx(listener()), &ev);
    dpn_listener_set_ctx(listener(), NULL);
    ck_assert_ptr_null(dpn_listener_ctx(listener()));
    dpn_listener_set_ctx(listener(), &ev);
    ck_assert_uint_eq(dpn_conn_written(p.c), 0);
    ck_assert_int_eq(dpn_sendv(p.c, (struct dpn_iov[]){{"ab", 2}, {"", 0}, {"cde", 3}}, 3), 5);
    ck_assert_uint_eq(dpn_conn_written(p.c), 5);
    ck_assert_uint_eq(dpn_conn_acked(p.c), 0);
    ck_assert_int_eq(dpn_sendv(p.c, NULL, 1), -DPN_EINVAL);
    ck_assert_int_eq(dpn_worker_index(w), 0);
    ck_assert_int_eq(dpn_worker_count(w), 1);
    struct dpn_udp *u;
    ck_assert_int_eq(dpn_udp_bind(w, 5353, NULL, &p, &u), 0);
    ck_assert_ptr_eq(dpn_udp_ctx(u), &p);
    dpn_udp_set_ctx(u, &ev);
    ck_assert_ptr_eq(dpn_udp_ctx(u), &ev);
    dpn_udp_close(u);
    dpn_abort(p.c);
    unit_tx_drop(w);
}
END_TEST

static int fired[3];
static struct dpn_timer *tm[3];
static void on_timer(void *arg) {
    int *n = arg;
    (*n)++;
    if (n == &fired[2]) /* a callback may free its own timer */
        dpn_timer_free(tm[2]), tm[2] = NULL;
}

/* Timers with handles: once, periodic, stopped, restarted, freed from
 * their own callback; a late periodic timer runs once, not per period. */
START_TEST(test_timer_handles) {
    memset(fired, 0, sizeof(fired));
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_nonnull(tm[i] = dpn_timer_new(w, on_timer, &fired[i]));
    ck_assert_ptr_null(dpn_timer_new(w, NULL, NULL));
    ck_assert_int_eq(dpn_timer_start(NULL, 1, 0), -DPN_EINVAL);
    uint64_t ms = w->tsc_per_ms, now = rte_rdtsc();
    ck_assert_int_eq(dpn_timer_start(tm[0], 5, 0), 0);
    ck_assert_int_eq(dpn_timer_start(tm[1], 1, 2), 0);
    ck_assert_int_eq(dpn_timer_start(tm[2], 3, 0), 0);
    ck_assert(dpn_timer_pending(tm[2]));
    dpn_timers_run(w, now);
    ck_assert_int_eq(fired[0] + fired[1] + fired[2], 0);
    dpn_timers_run(w, now + 2 * ms);
    ck_assert_int_eq(fired[1], 1);
    dpn_timers_run(w, now + 20 * ms); /* 9 periods late: once */
    ck_assert_int_eq(fired[0], 1);
    ck_assert_int_eq(fired[1], 2);
    ck_assert_int_eq(fired[2], 1); /* and it freed itself */
    ck_assert_ptr_null(tm[2]);
    ck_assert(!dpn_timer_pending(tm[0]));
    ck_assert(dpn_timer_pending(tm[1]));
    dpn_timer_stop(tm[1]);
    ck_assert(!dpn_timer_pending(tm[1]));
    ck_assert_int_eq(dpn_timer_start(tm[0], 0, 0), 0); /* restart */
    dpn_timers_run(w, rte_rdtsc() + ms);
    ck_assert_int_eq(fired[0], 2);
    ck_assert_int_eq(fired[1], 2);
    /* Many at once keep their order. */
    struct dpn_timer *many[40];
    for (int i = 0; i < 40; i++) {
        many[i] = dpn_timer_new(w, on_timer, &fired[0]);
        dpn_timer_start(many[i], (uint32_t)(40 - i), 0);
    }
    ck_assert_uint_le(dpn_timers_next_us(w, rte_rdtsc()), 1000);
    dpn_timers_run(w, rte_rdtsc() + 100 * ms);
    ck_assert_int_eq(fired[0], 42);
    for (int i = 0; i < 40; i++)
        dpn_timer_free(many[i]);
    dpn_timer_free(tm[0]);
    dpn_timer_free(tm[1]);
    ck_assert_uint_eq(w->timers.made, 0);
}
END_TEST

static uint64_t unacceptable(void) {
    struct dpn_stats st;
    dpn_get_stats(w, &st);
    return st.tcp_unacceptable;
}

/* lwIP 2.1.3 asserts on a FIN exactly 2^31 away from rcv_nxt (its wrapped
 * window test lets it through): found by fuzz_rx. The input guard finds it
 * outside the window, answers with an ACK and drops it. */
START_TEST(test_tcp_fin_half_the_sequence_space_away) {
    struct peer p;
    establish(&p, 40950, true);
    ck_assert_int_eq(dpn_shutdown(p.c), 0); /* FIN_WAIT_1: tcp_receive runs on input */
    dpn_tcp_flush_dirty(w);
    ck_assert_int_eq(w->tx_n, 1);
    uint32_t fin_seq = tx_tcp(0).seq;
    unit_tx_drop(w);
    uint64_t bad = unacceptable();
    p.snd_nxt += 0x80000000u;
    peer_send(&p, RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG, NULL, 0); /* would abort() */
    ck_assert_uint_eq(unacceptable(), bad + 1);
    ck_assert_int_eq(w->tx_n, 1);                                  /* the ACK RFC 793 asks for */
    ck_assert_uint_eq(tx_tcp(0).ack, p.snd_nxt - 0x80000000u - 1); /* before the FIN */
    unit_tx_drop(w);
    ck_assert_int_eq(ev.eof, 0);
    p.snd_nxt -= 0x80000000u + 1;
    p.rcv_nxt = fin_seq + 1; /* and it acknowledges ours: TIME_WAIT */
    peer_send(&p, RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG, NULL, 0); /* the real FIN still works */
    ck_assert_int_eq(ev.eof, 1);
    dpn_close_conn(p.c);
}
END_TEST

/* We close, the peer acknowledges and closes too: TIME_WAIT, nothing left. */
static void close_both(struct peer *p) {
    unit_tx_drop(w);
    dpn_close_conn(p->c);
    ck_assert_int_eq(w->tx_n, 1);
    struct unit_seg s = tx_tcp(0);
    ck_assert(s.flags & RTE_TCP_FIN_FLAG);
    p->rcv_nxt = s.seq + 1;
    unit_tx_drop(w);
    peer_send(p, RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG, NULL, 0);
    unit_tx_drop(w);
    ck_assert_ptr_null(find_pcb(p->lport, p->pport));
}

/* The issue's segment: in SYN_RCVD, SYN|FIN|ACK without payload at
 * ISN+1+2^31 reached tcp_receive and its "insane offset!" assertion. The
 * guard challenges it; the handshake then completes. */
START_TEST(test_tcp_syn_rcvd_syn_fin_half_away) {
    listener();
    struct peer p;
    peer_syn(&p, 80, 40970, true);
    struct peer q = p;
    q.snd_nxt += 0x80000000u;
    peer_send(&q, RTE_TCP_SYN_FLAG | RTE_TCP_FIN_FLAG | RTE_TCP_ACK_FLAG, NULL, 0);
    ck_assert_int_eq(w->tx_n, 1); /* a challenge ACK: our numbers unchanged */
    struct unit_seg s = tx_tcp(0);
    ck_assert_uint_eq(s.flags, RTE_TCP_ACK_FLAG);
    ck_assert_uint_eq(s.ack, p.snd_nxt);
    unit_tx_drop(w);
    ck_assert_ptr_nonnull(find_pcb(80, 40970));
    int before = ev.accepted;
    peer_ack(&p);
    ck_assert_int_eq(ev.accepted, before + 1);
    p.c = ev.conn;
    close_both(&p);
}
END_TEST

/* Every flag combination at every edge of the window, in SYN_RCVD and in
 * ESTABLISHED: nothing aborts, the index stays lwIP's list, and a
 * connection that survived still echoes. */
static const int64_t edges[] = {0,          1,          -1,          2,          -2,
                                65535,      65536,      -65535,      0x7fffffff, 0x80000000,
                                0x80000001, 0x7ffffffe, -0x7fffffff, 524288,     524289};
static const unsigned lens[] = {0, 1, 2, 1000};

START_TEST(test_tcp_guard_sweep) {
    listener();
    static uint8_t data[1000];
    unsigned n = 0;
    for (int est = 0; est < 2; est++)
        for (unsigned fl = 0; fl < 64; fl++) {
            struct peer p;
            uint16_t port = (uint16_t)(41000 + est * 64 + fl);
            if (est)
                establish(&p, port, true);
            else
                peer_syn(&p, 80, port, true);
            for (size_t e = 0; e < sizeof(edges) / sizeof(edges[0]); e++)
                for (size_t a = 0; a < 3; a++)
                    for (size_t l = 0; l < 4; l++) {
                        struct peer q = p;
                        q.snd_nxt += (uint32_t)edges[e];
                        q.rcv_nxt += (uint32_t)(a == 0 ? 0 : a == 1 ? 1 : 0x80000000u);
                        peer_send(&q, (uint8_t)fl, data, lens[l]);
                        unit_tx_drop(w);
                        for (int i = 0; i < ev.nbufs; i++)
                            dpn_buf_free(ev.bufs[i]);
                        ev.nbufs = 0;
                        n++;
                    }
            ck_assert(dpn_pcbs_consistent());
            struct tcp_pcb *pcb = find_pcb(80, port);
            if (pcb != NULL)
                tcp_abort(pcb);
        }
    ck_assert_uint_eq(n, 2 * 64 * 15 * 3 * 4);
    ck_assert(dpn_pcbs_consistent());
    ev_reset();
    struct peer p;
    establish(&p, 41200, true); /* still serving */
    close_both(&p);
}
END_TEST

/* A cookie SYN-ACK refused because the TX batch is full (the peer is
 * behind: a connect storm) waits in a queue, in order, and leaves once the
 * batch has room; it used to be lost, and its client waited a SYN
 * time-out. The batch stays full while the port is away (dpnetd left
 * with it: dpn_tx_flush keeps what it holds). */
START_TEST(test_tcp_syn_cookie_queued) {
    struct dpn_listener *l;
    ck_assert_int_eq(dpn_listen(w, 83, &ops, &ev, &l), 0);
    struct peer p, q;
    for (uint16_t i = 0; i < TCP_DEFAULT_LISTEN_BACKLOG; i++)
        peer_syn(&p, 83, (uint16_t)(22000 + i), true);
    uint64_t cookies = w->st.syn_cookies;
    unit_tx_drop(w);
    fill_tx_batch();
    w->port_gone = true;
    const uint8_t opts[4] = {2, 4, 0x05, 0xb4};
    uint16_t ports[2] = {23001, 23002};
    for (int i = 0; i < 2; i++)
        inject(unit_tcp_frame(w->pool, &w->mac, UNIT_PEER_IP, UNIT_LOCAL_IP, ports[i], 83,
                              PEER_ISN_BASE + ports[i], 0, RTE_TCP_SYN_FLAG, 65535, opts, 4, NULL,
                              0));
    ck_assert_uint_eq(w->cookie_q_n, 2);
    ck_assert_uint_eq(w->st.syn_cookies, cookies); /* none sent yet */
    ck_assert_int_eq(w->tx_n, DPN_TX_BATCH);
    /* The ring takes the batch: the next poll sends both SYN-ACKs, oldest
     * first (the port still away, so they stay in the batch to be read here). */
    unit_tx_drop(w);
    dpn_poll_once(w, rte_rdtsc());
    w->port_gone = false;
    ck_assert_uint_eq(w->cookie_q_n, 0);
    ck_assert_uint_eq(w->st.syn_cookies, cookies + 2);
    ck_assert_int_eq(w->tx_n, 2);
    struct unit_seg s[2] = {tx_tcp(0), tx_tcp(1)};
    for (int i = 0; i < 2; i++) {
        ck_assert_uint_eq(s[i].flags, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG);
        ck_assert_uint_eq(s[i].dport, ports[i]);
        ck_assert_uint_eq(s[i].ack, PEER_ISN_BASE + ports[i] + 1);
    }
    unit_tx_drop(w);
    /* The cookie it carried opens the connection. */
    memset(&q, 0, sizeof(q));
    q.lport = 83;
    q.pport = ports[1];
    q.snd_nxt = PEER_ISN_BASE + ports[1] + 1;
    q.rcv_nxt = s[1].seq + 1;
    int accepted = ev.accepted;
    peer_send(&q, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, "hi", 2);
    ck_assert_int_eq(ev.accepted, accepted + 1);
    ck_assert_int_eq(ev.nbufs, 1);
    unit_tx_drop(w);
    ev_reset();
    tcp_abort(find_pcb(83, ports[1]));
    for (uint16_t i = 0; i < TCP_DEFAULT_LISTEN_BACKLOG; i++)
        tcp_abort(find_pcb(83, (uint16_t)(22000 + i)));
    unit_tx_drop(w);
    dpn_unlisten(l);
}
END_TEST

/* A SYN flood fills the listener's backlog; from then on SYNs get cookies
 * and no state, and an ACK with a valid cookie opens the connection. */
START_TEST(test_tcp_syn_cookies) {
    struct dpn_listener *l;
    ck_assert_int_eq(dpn_listen(w, 82, &ops, &ev, &l), 0);
    struct dpn_stats st;
    dpn_get_stats(w, &st);
    uint64_t cookies = st.syn_cookies, ok = st.syn_cookies_ok;
    struct peer p;
    for (uint16_t i = 0; i < TCP_DEFAULT_LISTEN_BACKLOG; i++)
        peer_syn(&p, 82, (uint16_t)(20000 + i), true); /* lwIP's own half-open ones */
    dpn_get_stats(w, &st);
    ck_assert_uint_eq(st.syn_cookies, cookies);
    unsigned pcbs = dpn_pcbs_count();
    /* The backlog is full: a cookie (no window scaling, as Linux without timestamps). */
    struct unit_seg s = peer_syn(&p, 82, 21000, false);
    dpn_get_stats(w, &st);
    ck_assert_uint_eq(st.syn_cookies, cookies + 1);
    ck_assert_uint_eq(dpn_pcbs_count(), pcbs); /* and no state */
    unit_tx_drop(w);
    /* A forged cookie: lwIP's RST, no connection. */
    struct peer q = p;
    q.rcv_nxt = s.seq + 2;
    int accepted = ev.accepted;
    peer_ack(&q);
    ck_assert_int_eq(ev.accepted, accepted);
    ck_assert_int_eq(w->tx_n, 1);
    ck_assert(tx_tcp(0).flags & RTE_TCP_RST_FLAG);
    unit_tx_drop(w);
    /* The real one, with data: established, the data delivered. */
    p.rcv_nxt = s.seq + 1;
    peer_send(&p, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, "hello", 5);
    ck_assert_int_eq(ev.accepted, accepted + 1);
    ck_assert_int_eq(ev.nbufs, 1);
    ck_assert_uint_eq(dpn_buf_len(ev.bufs[0]), 5);
    dpn_get_stats(w, &st);
    ck_assert_uint_eq(st.syn_cookies_ok, ok + 1);
    p.c = ev.conn;
    ck_assert_int_eq(dpn_send(p.c, "world", 5), 5);
    dpn_tcp_flush_dirty(w);
    ck_assert_int_eq(w->tx_n, 1);
    s = tx_tcp(0);
    ck_assert_uint_eq(s.seq, p.rcv_nxt);
    ck_assert_uint_eq(s.ack, p.snd_nxt);
    p.rcv_nxt += 5;
    close_both(&p);
    ev_reset();
    for (uint16_t i = 0; i < TCP_DEFAULT_LISTEN_BACKLOG; i++)
        tcp_abort(find_pcb(82, (uint16_t)(20000 + i)));
    dpn_unlisten(l);
}
END_TEST

/* Peers that send only holes: lwIP keeps at most DPN_OOSEQ_CONN_PBUFS
 * out-of-order segments per connection and DPN_OOSEQ_WORKER_PBUFS for all
 * connections together; once a hole is filled the count goes down. */
START_TEST(test_tcp_ooseq_bounds) {
    enum { NC = DPN_OOSEQ_WORKER_PBUFS / DPN_OOSEQ_CONN_PBUFS + 2 };
    struct peer p[NC];
    unsigned base = dpn_mbufs_free(w);
    for (int i = 0; i < NC; i++) {
        establish(&p[i], (uint16_t)(42000 + i), true);
        for (unsigned k = 0; k < DPN_OOSEQ_CONN_PBUFS + 20; k++) {
            struct peer q = p[i];
            q.snd_nxt += 2 * k + 1; /* one byte after a one-byte hole */
            peer_send(&q, RTE_TCP_ACK_FLAG, "x", 1);
        }
        unit_tx_drop(w);
        struct tcp_pcb *pcb = find_pcb(80, (uint16_t)(42000 + i));
        unsigned n = 0;
        for (struct tcp_seg *sg = pcb->ooseq; sg != NULL; sg = sg->next)
            n += pbuf_clen(sg->p);
        ck_assert_uint_le(n, DPN_OOSEQ_CONN_PBUFS);
    }
    uint32_t bytes, pbufs;
    dpn_pcbs_ooseq_held(&bytes, &pbufs);
    ck_assert_uint_le(pbufs, DPN_OOSEQ_WORKER_PBUFS);
    ck_assert_uint_ge(pbufs, DPN_OOSEQ_WORKER_PBUFS - DPN_OOSEQ_CONN_PBUFS);
    ck_assert_uint_ge(dpn_mbufs_free(w) + DPN_OOSEQ_WORKER_PBUFS + 64, base);
    /* The first connection's first hole is filled: its queue is delivered. */
    peer_send(&p[0], RTE_TCP_ACK_FLAG, "y", 1);
    ck_assert_int_ge(ev.nbufs, 1);
    uint32_t pbufs2;
    dpn_pcbs_ooseq_held(&bytes, &pbufs2);
    ck_assert_uint_lt(pbufs2, pbufs);
    ev_reset();
    for (int i = 0; i < NC; i++)
        tcp_abort(find_pcb(80, (uint16_t)(42000 + i)));
    dpn_pcbs_ooseq_held(&bytes, &pbufs);
    ck_assert_uint_eq(pbufs, 0);
    ck_assert_uint_eq(bytes, 0);
}
END_TEST

START_TEST(test_tcp_reset_by_peer) {
    struct peer p;
    establish(&p, 40001, true);
    ck_assert_uint_eq(w->st.conns_open, base_conns + 1);
    /* A RST inside the window but not at rcv_nxt: challenge ACK (RFC 5961). */
    struct peer q = p;
    q.snd_nxt += 100;
    peer_send(&q, RTE_TCP_RST_FLAG, NULL, 0);
    ck_assert_int_eq(ev.closed, 0);
    ck_assert_int_eq(w->tx_n, 1);
    struct unit_seg s = tx_tcp(0);
    ck_assert_uint_eq(s.flags, RTE_TCP_ACK_FLAG);
    ck_assert_uint_eq(s.ack, p.snd_nxt);
    unit_tx_drop(w);

    /* The exact RST: closed(-ECONNRESET), once; c is dead inside it. */
    peer_send(&p, RTE_TCP_RST_FLAG, NULL, 0);
    ck_assert_int_eq(ev.closed, 1);
    ck_assert_int_eq(ev.closed_err, -DPN_ECONNRESET);
    ck_assert_int_eq(ev.send_in_closed, -DPN_ENOTCONN);
    ck_assert_int_eq(w->tx_n, 0); /* nothing answers a RST */
    ck_assert_uint_eq(w->st.conns_open, base_conns);
    ck_assert_ptr_null(find_pcb(80, 40001));
    ck_assert_int_eq(ev.eof, 0);
}
END_TEST

START_TEST(test_tcp_refuse) {
    struct dpn_listener *l;
    ck_assert_int_eq(dpn_listen(w, 81, &ops, &ev, &l), 0);
    ev.refuse = 1;
    uint64_t total = w->st.conns_total;
    struct peer p;
    peer_syn(&p, 81, 40002, false);
    peer_ack(&p);
    ck_assert_int_eq(ev.accepted, 1);
    /* Refused: reset, and no connection left behind. */
    ck_assert_int_eq(w->tx_n, 1);
    struct unit_seg s = tx_tcp(0);
    ck_assert(s.flags & RTE_TCP_RST_FLAG);
    ck_assert_uint_eq(s.seq, p.rcv_nxt);
    ck_assert_uint_eq(s.sport, 81);
    ck_assert_uint_eq(w->st.conns_open, base_conns);
    ck_assert_uint_eq(w->st.conns_total, total + 1);
    ck_assert_ptr_null(find_pcb(81, 40002));
    ck_assert_int_eq(ev.closed, 0);
    unit_tx_drop(w);

    /* Data for the dead connection is answered with RST, no callback. */
    peer_send(&p, RTE_TCP_ACK_FLAG, "late", 4);
    ck_assert_int_eq(ev.recv, 0);
    ck_assert_int_eq(w->tx_n, 1);
    ck_assert(tx_tcp(0).flags & RTE_TCP_RST_FLAG);
    unit_tx_drop(w);
    dpn_unlisten(l);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
}
END_TEST

START_TEST(test_tcp_window_reopen) {
    /* No window scaling: the window is 64 KiB and a reopening of 4 MSS is
     * announced at once. */
    struct peer p;
    establish(&p, 40003, false);
    struct dpn_conn *c = p.c;
    tcpwnd_size_t wnd0 = c->pcb->rcv_wnd;
    ck_assert_uint_eq(wnd0, 0xffff);
    uint8_t data[MSS1500];
    memset(data, 'z', sizeof(data));
    for (int i = 0; i < 4; i++)
        peer_send(&p, RTE_TCP_ACK_FLAG, data, sizeof(data));
    ck_assert_int_eq(ev.nbufs, 4);
    ck_assert_uint_eq(c->pcb->rcv_wnd, wnd0 - 4 * MSS1500);
    ck_assert_uint_eq(dpn_mbufs_free(w) + w->tx_n, base_mbufs - 4);
    /* lwIP acknowledged every second segment; the window it announced shrank. */
    ck_assert_int_ge(w->tx_n, 1);
    struct unit_seg s = tx_tcp(w->tx_n - 1);
    ck_assert_uint_eq(s.ack, p.snd_nxt);
    ck_assert_uint_lt(s.win, wnd0);
    unit_tx_drop(w);

    for (int i = 0; i < 3; i++)
        dpn_recv_done(c, ev.bufs[i]);
    ck_assert_int_eq(w->tx_n, 0); /* 3 MSS: not worth an update yet */
    dpn_recv_done(c, ev.bufs[3]);
    ev.nbufs = 0;
    ck_assert_uint_eq(c->pcb->rcv_wnd, wnd0);
    ck_assert_int_eq(w->tx_n, 1); /* window update */
    ck_assert_uint_eq(dpn_mbufs_free(w) + 1, base_mbufs);
    s = tx_tcp(0);
    ck_assert_uint_eq(s.flags, RTE_TCP_ACK_FLAG);
    ck_assert_uint_eq(s.ack, p.snd_nxt);
    ck_assert_uint_eq(s.win, wnd0);
    unit_tx_drop(w);

    /* dpn_recved alone reopens without freeing. */
    peer_send(&p, RTE_TCP_ACK_FLAG, data, 100);
    ck_assert_uint_eq(c->pcb->rcv_wnd, wnd0 - 100);
    dpn_recved(c, 100);
    ck_assert_uint_eq(c->pcb->rcv_wnd, wnd0);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs - 1);
    dpn_buf_free(ev.bufs[0]);
    ev.nbufs = 0;
    unit_tx_drop(w);

    /* Abort: RST now (after the delayed ACK lwIP owed), no callbacks. */
    dpn_abort(c);
    ck_assert_int_ge(w->tx_n, 1);
    ck_assert_int_le(w->tx_n, 2);
    if (w->tx_n == 2)
        ck_assert_uint_eq(tx_tcp(0).flags, RTE_TCP_ACK_FLAG);
    s = tx_tcp(w->tx_n - 1);
    ck_assert(s.flags & RTE_TCP_RST_FLAG);
    ck_assert_uint_eq(s.seq, p.rcv_nxt);
    ck_assert_int_eq(ev.closed, 0);
    ck_assert_uint_eq(w->st.conns_open, base_conns);
    ck_assert_ptr_null(find_pcb(80, 40003));
    ck_assert_uint_eq(dpn_mbufs_free(w) + w->tx_n, base_mbufs);
}
END_TEST

START_TEST(test_tcp_send_buf_zero_copy) {
    struct peer p;
    establish(&p, 40004, true);
    struct dpn_conn *c = p.c;

    /* An allocated buffer: referenced by lwIP until acknowledged. */
    struct dpn_buf *b = dpn_buf_alloc(w, 200);
    ck_assert_ptr_nonnull(b);
    uint8_t *d = dpn_buf_mut(b);
    for (int i = 0; i < 200; i++)
        d[i] = (uint8_t)(255 - i);
    ck_assert_int_eq(dpn_send_buf(c, b), 0);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs - 1);
    dpn_tcp_flush_dirty(w);
    ck_assert_int_eq(w->tx_n, 1);
    struct unit_seg s = tx_tcp(0);
    ck_assert_uint_eq(s.seq, p.rcv_nxt);
    ck_assert_uint_eq(s.len, 200);
    ck_assert_int_eq(memcmp(s.data, d, 200), 0);
    p.rcv_nxt += 200;
    unit_tx_drop(w);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs - 1); /* kept for retransmission */
    peer_ack(&p);
    ck_assert_uint_eq(ev.sent, 200);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);

    /* A received buffer sent back as is (echo). */
    struct rte_mbuf *m = peer_send(&p, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, "echo me", 7);
    ck_assert_int_eq(ev.nbufs, 1);
    b = ev.bufs[0];
    ev.nbufs = 0;
    ck_assert_ptr_eq(dpn_pbuf_mbuf((struct pbuf *)b), m);
    dpn_recved(c, dpn_buf_len(b));
    ck_assert_int_eq(dpn_send_buf(c, b), 0);
    dpn_tcp_flush_dirty(w);
    ck_assert_int_ge(w->tx_n, 1);
    s = tx_tcp(w->tx_n - 1);
    ck_assert_uint_eq(s.len, 7);
    ck_assert_int_eq(memcmp(s.data, "echo me", 7), 0);
    p.rcv_nxt += 7;
    unit_tx_drop(w);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs - 1);
    peer_ack(&p);
    ck_assert_uint_eq(ev.sent, 207);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);

    /* A buffer lwIP allocated (not an mbuf) is copied. */
    struct pbuf *own = pbuf_alloc(PBUF_RAW, 30, PBUF_RAM);
    ck_assert_ptr_nonnull(own);
    memset(own->payload, 'q', 30);
    ck_assert_int_eq(dpn_send_buf(c, (struct dpn_buf *)own), 0);
    dpn_tcp_flush_dirty(w);
    ck_assert_int_eq(w->tx_n, 1);
    s = tx_tcp(0);
    ck_assert_uint_eq(s.len, 30);
    ck_assert_uint_eq(s.data[29], 'q');
    p.rcv_nxt += 30;
    unit_tx_drop(w);
    peer_ack(&p);
    ck_assert_uint_eq(ev.sent, 237);

    /* Closing with zero-copy data in flight: the FIN goes out, the buffer
     * stays until the peer acknowledges, then everything is released
     * without further callbacks. */
    b = dpn_buf_alloc(w, 300);
    memset(dpn_buf_mut(b), 'Z', 300);
    ck_assert_int_eq(dpn_send_buf(c, b), 0);
    dpn_tcp_flush_dirty(w);
    ck_assert_int_eq(w->tx_n, 1);
    p.rcv_nxt += 300;
    unit_tx_drop(w);
    int sent_calls = ev.sent_calls;
    dpn_close_conn(c);
    ck_assert_int_ge(w->tx_n, 1);
    s = tx_tcp(w->tx_n - 1);
    ck_assert(s.flags & RTE_TCP_FIN_FLAG);
    ck_assert_uint_eq(s.seq, p.rcv_nxt);
    p.rcv_nxt++;
    unit_tx_drop(w);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs - 1);
    peer_ack(&p);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
    ck_assert_uint_eq(w->st.conns_open, base_conns);
    ck_assert_int_eq(ev.sent_calls, sent_calls);
    /* The peer's FIN ends in TIME_WAIT, acknowledged, no callback. */
    peer_send(&p, RTE_TCP_FIN_FLAG | RTE_TCP_ACK_FLAG, NULL, 0);
    ck_assert_int_eq(ev.eof, 0);
    ck_assert_int_eq(w->tx_n, 1);
    ck_assert_uint_eq(tx_tcp(0).ack, p.snd_nxt);
    ck_assert(in_time_wait(80, 40004));
}
END_TEST

/* Inside an iteration (dpn_poll_once sets in_poll), what the peer
 * acknowledged and what the application let go of are freed only at its
 * end (dpn_later_release), after the tx_burst; outside one, at once. */
START_TEST(test_tcp_free_after_send) {
    struct peer p;
    establish(&p, 40010, true);
    struct dpn_conn *c = p.c;

    /* Outside an iteration: dpn_recv_done frees at once. */
    peer_send(&p, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, "now", 3);
    ck_assert_int_eq(ev.nbufs, 1);
    ev.nbufs = 0;
    dpn_recv_done(c, ev.bufs[0]);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);

    /* An echo inside an iteration: the request is sent back in place. */
    w->in_poll = true;
    peer_send(&p, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, "echo", 4);
    ck_assert_int_eq(ev.nbufs, 1);
    struct dpn_buf *b = ev.bufs[0];
    ev.nbufs = 0;
    dpn_recved(c, 4);
    ck_assert_int_eq(dpn_send_buf(c, b), 0);
    dpn_tcp_flush_dirty(w);
    ck_assert_int_ge(w->tx_n, 1);
    ck_assert_int_eq(memcmp(tx_tcp(w->tx_n - 1).data, "echo", 4), 0);
    p.rcv_nxt += 4;
    unit_tx_drop(w);
    /* The next request acknowledges it: its mbuf and segment wait. */
    peer_send(&p, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, "next", 4);
    ck_assert_uint_eq(ev.sent, 4);
    ck_assert_int_eq(ev.nbufs, 1);
    ev.nbufs = 0;
    dpn_recv_done(c, ev.bufs[0]);
    ck_assert_uint_eq(w->later_n, 2);
    ck_assert_uint_eq(w->later_segs_n, 1);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs - 2);
    w->in_poll = false;
    dpn_later_release(w);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
    ck_assert_uint_eq(w->later_n, 0);
    ck_assert_ptr_null(w->later_segs);

    /* More than DPN_LATER in one iteration: the rest is freed at once. */
    w->in_poll = true;
    for (int i = 0; i < DPN_LATER + 3; i++) {
        peer_send(&p, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, "x", 1);
        ck_assert_int_eq(ev.nbufs, 1);
        ev.nbufs = 0;
        dpn_recv_done(c, ev.bufs[0]);
    }
    unit_tx_drop(w);
    ck_assert_uint_eq(w->later_n, DPN_LATER);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs - DPN_LATER);
    w->in_poll = false;
    dpn_later_release(w);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
    close_both(&p);
}
END_TEST

/* Frame i of the batch is sent in its data's own mbuf (tcp.send_zc). */
static bool in_place(int i) {
    const struct rte_mbuf *m = w->tx_pkts[i];
    return m->nb_segs == 1 && rte_mbuf_refcnt_read(m) == 2;
}

/* Check frames first..first+n-1 carry data[off..] in order from seq. */
static void check_frames(int first, int n, uint32_t seq, const uint8_t *data, size_t *off) {
    for (int i = first; i < first + n; i++) {
        struct unit_seg s = tx_tcp(i);
        ck_assert_uint_eq(s.seq, seq + (uint32_t)*off);
        ck_assert_int_eq(memcmp(s.data, data + *off, s.len), 0);
        *off += s.len;
    }
}

START_TEST(test_tcp_send_zc) {
    /* tcp.send_zc (on where the NIC reads frames by DMA; net_null is not
     * such a port, so the test turns it on): dpn_send copies once, into
     * mbufs, and each frame goes out in its data's mbuf. */
    struct peer p;
    establish(&p, 41300, true);
    struct dpn_conn *c = p.c;
    bool was = w->send_zc;
    w->send_zc = true;
    dpn_send_mbufs_refill(w, dpn_mbufs_free(w));
    enum { N = 2 * 1460 + 1100 }; /* two full segments and a piece of 1100: three mbufs */
    static uint8_t data[N];
    for (int i = 0; i < N; i++)
        data[i] = (uint8_t)(i * 13 + 1);
    ck_assert_int_eq(dpn_send(c, data, N), N);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs - 3);
    uint64_t out0 = w->st.tcp_fast_out;
    dpn_tcp_flush_dirty(w);
    ck_assert_int_eq(w->tx_n, 3);
    ck_assert_uint_eq(w->st.tcp_fast_out, out0 + 3); /* header prediction's output, in place */
    size_t off = 0;
    check_frames(0, 3, p.rcv_nxt, data, &off);
    ck_assert_uint_eq(off, N);
    for (int i = 0; i < 3; i++) {
        struct rte_mbuf *m = w->tx_pkts[i];
        ck_assert(in_place(i));
        m->ol_flags &= ~(RTE_MBUF_F_RX_IP_CKSUM_MASK | RTE_MBUF_F_RX_L4_CKSUM_MASK);
        ck_assert(dpn_cksum_rx_ok(m)); /* both sums, in software */
    }

    /* A retransmission while those frames still wait in the batch: built
     * in new mbufs, and the waiting frames keep their own headers. */
    tcp_rexmit_rto(c->pcb);
    ck_assert_int_eq(w->tx_n, 6);
    off = 0;
    check_frames(3, 3, p.rcv_nxt, data, &off);
    off = 0;
    check_frames(0, 3, p.rcv_nxt, data, &off);
    for (int i = 3; i < 6; i++)
        ck_assert(!in_place(i));
    unit_tx_drop(w);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs - 3); /* kept for retransmission */

    /* Once the PMD let go, a retransmission goes in place again. */
    tcp_rexmit_rto(c->pcb);
    ck_assert_int_eq(w->tx_n, 3);
    off = 0;
    check_frames(0, 3, p.rcv_nxt, data, &off);
    for (int i = 0; i < 3; i++)
        ck_assert(in_place(i));
    unit_tx_drop(w);
    p.rcv_nxt += N;
    peer_ack(&p);
    ck_assert_uint_eq(ev.sent, N);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);

    /* Over the budget (half the pool stays for receiving): copied. */
    w->send_mbufs = 0;
    ck_assert_int_eq(dpn_send(c, data, 1460), 1460);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
    dpn_tcp_flush_dirty(w);
    ck_assert_int_eq(w->tx_n, 1);
    ck_assert(!in_place(0));
    off = 0;
    check_frames(0, 1, p.rcv_nxt, data, &off);
    unit_tx_drop(w);
    p.rcv_nxt += 1460;
    peer_ack(&p);
    ck_assert_uint_eq(ev.sent, N + 1460);

    /* A partly filled segment is topped up by a copy first; the pieces
     * after it are whole segments again, each in its own mbuf. */
    dpn_send_mbufs_refill(w, dpn_mbufs_free(w));
    ck_assert_int_eq(dpn_send(c, data, 100), 100);
    ck_assert_int_eq(dpn_send(c, data + 100, 1360 + 1460), 1360 + 1460);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs - 1);
    dpn_tcp_flush_dirty(w);
    ck_assert_int_eq(w->tx_n, 2);
    ck_assert(!in_place(0));
    ck_assert(in_place(1));
    off = 0;
    check_frames(0, 2, p.rcv_nxt, data, &off);
    ck_assert_uint_eq(off, 2920);
    unit_tx_drop(w);
    p.rcv_nxt += 2920;
    peer_ack(&p);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
    w->send_zc = was;
    dpn_abort(c);
    unit_tx_drop(w);
    ck_assert_uint_eq(w->st.conns_open, base_conns);
}
END_TEST

START_TEST(test_tcp_send_buf_errors) {
    struct peer p;
    establish(&p, 40005, true);
    struct dpn_conn *c = p.c;
    ck_assert_int_eq(dpn_send_buf(c, NULL), -DPN_EINVAL);
    ck_assert_int_eq(dpn_send(c, NULL, 5), -DPN_EINVAL);

    /* Half-close: FIN out, sending refused, receiving goes on. */
    ck_assert_int_eq(dpn_shutdown(c), 0);
    dpn_tcp_flush_dirty(w);
    ck_assert_int_ge(w->tx_n, 1);
    struct unit_seg s = tx_tcp(w->tx_n - 1);
    ck_assert(s.flags & RTE_TCP_FIN_FLAG);
    p.rcv_nxt++;
    unit_tx_drop(w);
    ck_assert_int_eq(dpn_send(c, "x", 1), -DPN_ENOTCONN);
    ck_assert_uint_eq(dpn_send_space(c), 0);
    ck_assert_int_eq(dpn_shutdown(c), -DPN_ENOTCONN);
    struct dpn_buf *b = dpn_buf_alloc(w, 10);
    ck_assert_int_eq(dpn_send_buf(c, b), -DPN_ENOTCONN); /* b is still ours */
    dpn_buf_free(b);
    peer_send(&p, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, "still", 5);
    ck_assert_int_eq(ev.recv, 1);
    dpn_recv_done(c, ev.bufs[0]);
    ev.nbufs = 0;
    unit_tx_drop(w);

    /* The peer closes too, from eof(): nothing leaks, TIME_WAIT. */
    ev.close_in_eof = 1;
    peer_send(&p, RTE_TCP_FIN_FLAG | RTE_TCP_ACK_FLAG, NULL, 0);
    ck_assert_int_eq(ev.eof, 1);
    ck_assert_int_eq(ev.closed, 0);
    ck_assert_uint_eq(w->st.conns_open, base_conns);
    ck_assert_ptr_null(find_pcb(80, 40005));
    ck_assert(in_time_wait(80, 40005));
    ck_assert_int_eq(w->tx_n, 1); /* the ACK of the FIN */
    ck_assert_uint_eq(tx_tcp(0).ack, p.snd_nxt);
    ck_assert_uint_eq(dpn_mbufs_free(w) + 1, base_mbufs);
}
END_TEST

START_TEST(test_tcp_abort_in_recv) {
    struct peer p;
    establish(&p, 40006, true);
    ev.abort_in_recv = 1;
    peer_send(&p, RTE_TCP_ACK_FLAG, "boom", 4);
    ck_assert_int_eq(ev.recv, 1);
    ck_assert_int_eq(w->tx_n, 1);
    ck_assert(tx_tcp(0).flags & RTE_TCP_RST_FLAG);
    ck_assert_int_eq(ev.closed, 0);
    ck_assert_uint_eq(w->st.conns_open, base_conns);
    ck_assert_ptr_null(find_pcb(80, 40006));
    ck_assert_uint_eq(dpn_mbufs_free(w) + w->tx_n, base_mbufs);
}
END_TEST

/* ---- header prediction (tcp_fast.c) against lwIP's input ---- */

/* Two connections get the same segments, one through the fast path and one
 * through lwIP's input; after every step their state, relative to each
 * one's own initial sequence numbers, the frames they sent and the
 * callbacks they made must be the same. */
struct twin {
    struct peer p;
    uint32_t iss, irs; /* our and the peer's initial sequence numbers */
    bool fast;
};

struct twin_state {
    uint32_t v[40];
    int nv;
    uint32_t tx[16][5];
    int ntx;
    int recv, sent_calls;
    size_t recv_bytes, sent;
    uint64_t fast, fast_out;
};

static int list_len(const struct tcp_seg *s) {
    int n = 0;
    for (; s != NULL; s = s->next)
        n++;
    return n;
}

static void twin_snap(const struct twin *t, struct twin_state *st) {
    const struct tcp_pcb *pcb = find_pcb(t->p.lport, t->p.pport);
    ck_assert_ptr_nonnull(pcb);
    uint32_t v[] = {pcb->state,
                    pcb->rcv_nxt - t->irs,
                    pcb->rcv_wnd,
                    pcb->rcv_ann_wnd,
                    pcb->rcv_ann_right_edge - t->irs,
                    pcb->snd_nxt - t->iss,
                    pcb->lastack - t->iss,
                    pcb->snd_lbb - t->iss,
                    pcb->snd_wl1 - t->irs,
                    pcb->snd_wl2 - t->iss,
                    pcb->snd_wnd,
                    pcb->snd_wnd_max,
                    pcb->snd_buf,
                    pcb->snd_queuelen,
                    pcb->cwnd,
                    pcb->ssthresh,
                    pcb->bytes_acked,
                    pcb->nrtx,
                    pcb->dupacks,
                    (uint32_t)pcb->rto,
                    (uint32_t)pcb->sa,
                    (uint32_t)pcb->sv,
                    pcb->rttest != 0 ? tcp_ticks - pcb->rttest : ~0u,
                    pcb->rttest != 0 ? pcb->rtseq - t->iss : 0,
                    (uint32_t)pcb->rtime,
                    pcb->polltmr,
                    tcp_ticks - pcb->tmr,
                    pcb->flags,
                    pcb->keep_cnt_sent,
                    pcb->persist_backoff,
                    pcb->persist_probe,
                    (uint32_t)list_len(pcb->unacked),
                    (uint32_t)list_len(pcb->unsent),
                    (uint32_t)list_len(pcb->ooseq),
                    pcb->refused_data != NULL,
                    pcb->unsent_oversize};
    memcpy(st->v, v, sizeof(v));
    st->nv = (int)RTE_DIM(v);
    st->ntx = w->tx_n;
    ck_assert_int_le(w->tx_n, 16);
    for (int i = 0; i < w->tx_n; i++) {
        struct unit_seg s = tx_tcp(i);
        uint32_t f[5] = {s.flags, s.seq - t->iss, s.ack - t->irs, s.win, s.len};
        memcpy(st->tx[i], f, sizeof(f));
    }
}

/* One step for one twin: the peer's segment (seq and ack relative to what
 * the peer has seen: dseq past its next byte, ack_to our sequence number
 * acknowledged, relative to our ISN), then the application's part. */
struct twin_step {
    const char *what;
    uint8_t flags;
    unsigned len;
    int32_t dseq;
    int ack_to;     /* -1: everything we sent (the peer's rcv_nxt) */
    uint16_t win;   /* unscaled, as in the header */
    unsigned write; /* then the application writes this much (0: nothing) */
    bool fast;      /* the fast path must have taken the segment */
};

static void twin_run(struct twin *t, const struct twin_step *s, struct twin_state *st) {
    static uint8_t data[2048];
    memset(data, 'p', sizeof(data));
    unit_tx_drop(w);
    int recv0 = ev.recv, calls0 = ev.sent_calls;
    size_t sent0 = ev.sent;
    uint64_t fast0 = w->st.tcp_fast, out0 = w->st.tcp_fast_out;
    uint32_t ack = s->ack_to < 0 ? t->p.rcv_nxt : t->iss + (uint32_t)s->ack_to;
    struct rte_mbuf *m = unit_tcp_frame(w->pool, &w->mac, UNIT_PEER_IP, UNIT_LOCAL_IP, t->p.pport,
                                        t->p.lport, t->p.snd_nxt + (uint32_t)s->dseq, ack, s->flags,
                                        s->win, NULL, 0, data, s->len);
    bool fast = w->tcp_fast;
    w->tcp_fast = t->fast; /* for the segment in and the frames out */
    inject(m);
    if (TCP_SEQ_GT(t->p.snd_nxt + (uint32_t)s->dseq + s->len, t->p.snd_nxt))
        t->p.snd_nxt += (uint32_t)s->dseq + s->len;
    st->fast = w->st.tcp_fast - fast0;
    st->recv = ev.recv - recv0;
    st->recv_bytes = 0;
    for (int i = 0; i < ev.nbufs; i++) { /* read at once: the window opens again */
        st->recv_bytes += dpn_buf_len(ev.bufs[i]);
        dpn_recv_done(t->p.c, ev.bufs[i]);
    }
    ev.nbufs = 0;
    if (s->write > 0) {
        ck_assert_int_eq(dpn_send(t->p.c, data, s->write), (int)s->write);
        dpn_tcp_flush_dirty(w);
    }
    w->tcp_fast = fast;
    st->fast_out = w->st.tcp_fast_out - out0;
    st->sent = ev.sent - sent0;
    st->sent_calls = ev.sent_calls - calls0;
    twin_snap(t, st);
    for (int i = 0; i < w->tx_n; i++) { /* the peer has seen what we sent */
        struct unit_seg g = tx_tcp(i);
        if (TCP_SEQ_GT(g.seq + g.len, t->p.rcv_nxt))
            t->p.rcv_nxt = g.seq + g.len;
    }
    unit_tx_drop(w);
}

START_TEST(test_tcp_fast_path) {
    struct twin a = {.fast = true}, b = {.fast = false};
    establish(&a.p, 40031, true);
    establish(&b.p, 40032, true);
    a.iss = a.p.rcv_nxt - 1;
    b.iss = b.p.rcv_nxt - 1;
    a.irs = PEER_ISN_BASE + 40031u * 1000u;
    b.irs = PEER_ISN_BASE + 40032u * 1000u;
    const uint8_t A = RTE_TCP_ACK_FLAG, AP = RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG;
    uint64_t fast_out = 0;
    /* The peer's window is scaled by 2^7 (establish offers 7). */
    const struct twin_step steps[] = {
        {"first data, nothing to acknowledge", AP, 100, 0, -1, 512, 300, true},
        {"data with the ACK of our answer", AP, 50, 0, -1, 512, 2000, true},
        {"ACK of our first segment only", A, 0, 0, 1761, 512, 0, true},
        {"ACK of the rest, window grown", A, 0, 0, -1, 1024, 0, true},
        {"two segments: the second one is acknowledged", A, 700, 0, -1, 1024, 0, true},
        {"... at once", A, 700, 0, -1, 1024, 0, true},
        {"an ACK of nothing new: lwIP's; then a write", A, 0, 0, -1, 1024, 1000, false},
        {"part of a segment acknowledged", A, 0, 0, 2802, 1024, 0, true},
        {"a duplicate ACK: lwIP's", A, 0, 0, 2802, 1024, 0, false},
        {"data with the old ACK", AP, 10, 0, 2802, 1024, 0, true},
        {"ACK past what we sent: lwIP's", A, 0, 0, 90000, 1024, 0, false},
        {"the rest acknowledged, window shrunk", A, 0, 0, -1, 600, 0, true},
        {"a hole: lwIP's", AP, 100, 100, -1, 600, 0, false},
        {"the hole filled: lwIP's (out-of-order data held)", AP, 100, -200, -1, 600, 0, false},
        {"in order again", AP, 100, 0, -1, 600, 64, true},
        {"a full segment", A, 1400, 0, -1, 600, 0, true},
        {"window closed by the peer: lwIP's", AP, 64, 0, -1, 0, 64, false},
        {"window open again: lwIP's", A, 0, 0, -1, 600, 0, false},
        {"echo pattern", AP, 64, 0, -1, 600, 64, true},
        {"echo pattern", AP, 64, 0, -1, 600, 64, true},
        {"a retransmission of old data: lwIP's", AP, 64, -64, -1, 600, 0, false},
        {"SYN in the window: lwIP's", RTE_TCP_SYN_FLAG | A, 0, 0, -1, 600, 0, false},
        {"URG: lwIP's", A | RTE_TCP_URG_FLAG, 10, 0, -1, 600, 0, false},
        {"FIN: lwIP's", A | RTE_TCP_FIN_FLAG, 0, 0, -1, 600, 0, false},
        {"data after the peer's FIN: lwIP's", A, 10, 1, -1, 600, 0, false},
    };
    for (unsigned i = 0; i < RTE_DIM(steps); i++) {
        struct twin_state sa, sb;
        tcp_slowtmr(); /* both age alike: timers the fast path resets show */
        unit_tx_drop(w);
        twin_run(&a, &steps[i], &sa);
        twin_run(&b, &steps[i], &sb);
        ck_assert_msg(sa.fast == (steps[i].fast ? 1 : 0), "step %u (%s): fast path took %" PRIu64,
                      i, steps[i].what, sa.fast);
        ck_assert_uint_eq(sb.fast, 0);
        ck_assert_uint_eq(sb.fast_out, 0);
        fast_out += sa.fast_out;
        for (int k = 0; k < sa.nv; k++)
            ck_assert_msg(sa.v[k] == sb.v[k], "step %u (%s): state field %d: fast %u, lwIP %u", i,
                          steps[i].what, k, sa.v[k], sb.v[k]);
        ck_assert_msg(sa.ntx == sb.ntx, "step %u (%s): %d frames, lwIP %d", i, steps[i].what,
                      sa.ntx, sb.ntx);
        for (int f = 0; f < sa.ntx; f++)
            for (int k = 0; k < 5; k++)
                ck_assert_msg(sa.tx[f][k] == sb.tx[f][k],
                              "step %u (%s): frame %d field %d: fast %u, lwIP %u", i, steps[i].what,
                              f, k, sa.tx[f][k], sb.tx[f][k]);
        ck_assert_int_eq(sa.recv, sb.recv);
        ck_assert_uint_eq(sa.recv_bytes, sb.recv_bytes);
        ck_assert_uint_eq(sa.sent, sb.sent);
        ck_assert_int_eq(sa.sent_calls, sb.sent_calls);
    }
    /* Data segments out the fast way: every write but the one held by a
     * closed window (lwIP's persist timer sends it). */
    ck_assert_uint_ge(fast_out, 8);
    dpn_abort(a.p.c);
    dpn_abort(b.p.c);
    unit_tx_drop(w);
    ck_assert_uint_eq(w->st.conns_open, base_conns);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
}
END_TEST

/* Frames built around etharp_output still keep the neighbor's entry
 * fresh: near its end of life (ARP_MAXAGE - 30 s) a send asks the peer
 * again, unicast, as etharp_output does (config/lwip-etharp-used.patch). */
/* A segment of pieces at odd offsets (dpn_send_buf buffers of odd
 * lengths, copied: under DPN_ZC_MIN) built by header prediction's output:
 * its TCP checksum, summed piece by piece from the sources, verifies, and
 * the bytes are the pieces in order. */
START_TEST(test_tcp_fast_out_odd_pieces) {
    struct peer p;
    establish(&p, 41400, true);
    static const unsigned lens[] = {101, 250, 77, 1};
    uint8_t want[512];
    size_t n = 0;
    for (unsigned i = 0; i < RTE_DIM(lens); i++) {
        struct dpn_buf *b = dpn_buf_alloc(w, lens[i]);
        ck_assert_ptr_nonnull(b);
        uint8_t *d = dpn_buf_mut(b);
        for (unsigned k = 0; k < lens[i]; k++)
            d[k] = want[n + k] = (uint8_t)(0xf1 ^ (n + k) * 29);
        n += lens[i];
        ck_assert_int_eq(dpn_send_buf(p.c, b), 0);
    }
    uint64_t out0 = w->st.tcp_fast_out;
    dpn_tcp_flush_dirty(w);
    ck_assert_uint_eq(w->st.tcp_fast_out, out0 + 1);
    ck_assert_int_eq(w->tx_n, 1);
    struct rte_mbuf *m = w->tx_pkts[0];
    m->ol_flags &= ~(RTE_MBUF_F_RX_IP_CKSUM_MASK | RTE_MBUF_F_RX_L4_CKSUM_MASK);
    ck_assert(dpn_cksum_rx_ok(m)); /* software check of both sums */
    struct unit_seg sg = tx_tcp(0);
    ck_assert_uint_eq(sg.len, n);
    ck_assert_int_eq(memcmp(sg.data, want, n), 0);
    /* One byte changed: the check fails (it is not a check that passes all). */
    rte_pktmbuf_mtod(m, uint8_t *)[m->data_len - 2] ^= 0x40;
    ck_assert(!dpn_cksum_rx_ok(m));
    unit_tx_drop(w);
    dpn_abort(p.c);
    unit_tx_drop(w);
}
END_TEST

START_TEST(test_tcp_fast_arp_refresh) {
    ck_assert(learn_peer()); /* a fresh entry */
    struct peer p;
    establish(&p, 40041, true);
    for (int i = 0; i < ARP_MAXAGE - 31; i++)
        etharp_tmr();
    uint64_t out0 = w->st.tcp_fast_out;
    ck_assert_int_eq(dpn_send(p.c, "young", 5), 5);
    dpn_tcp_flush_dirty(w);
    ck_assert_int_eq(w->tx_n, 1);
    ck_assert_uint_eq(tx_tcp(0).len, 5);
    ck_assert_uint_eq(w->st.tcp_fast_out, out0 + 1);
    unit_tx_drop(w);
    etharp_tmr();
    ck_assert_int_eq(dpn_send(p.c, "old", 3), 3);
    dpn_tcp_flush_dirty(w);
    ck_assert_int_eq(w->tx_n, 2);
    const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(w->tx_pkts[0], const struct rte_ether_hdr *);
    ck_assert_uint_eq(eth->ether_type, rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP));
    ck_assert(rte_is_same_ether_addr(&eth->dst_addr, &unit_peer_mac));
    const struct rte_arp_hdr *a = (const struct rte_arp_hdr *)(eth + 1);
    ck_assert_uint_eq(a->arp_opcode, rte_cpu_to_be_16(RTE_ARP_OP_REQUEST));
    ck_assert_uint_eq(a->arp_data.arp_tip, rte_cpu_to_be_32(UNIT_PEER_IP));
    ck_assert_uint_eq(tx_tcp(1).len, 3);
    ck_assert_uint_eq(w->st.tcp_fast_out, out0 + 2);
    unit_tx_drop(w);
    ck_assert(learn_peer()); /* the answer: fresh again for the tests after */
    dpn_abort(p.c);
    unit_tx_drop(w);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
}
END_TEST

START_TEST(test_tcp_connect) {
    /* Active open: SYN out, SYN-ACK in -> connected(0), ACK out. */
    struct dpn_conn *c = NULL;
    ck_assert_int_eq(dpn_connect(w, UNIT_PEER_IP, 5001, &ops, &ev, &c), 0);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(w->st.conns_open, base_conns + 1);
    ck_assert_int_eq(w->tx_n, 1);
    struct unit_seg s = tx_tcp(0);
    ck_assert_uint_eq(s.flags, RTE_TCP_SYN_FLAG);
    ck_assert_uint_eq(s.dport, 5001);
    ck_assert_int_eq(tcp_opt(&s, 2), MSS1500);
    ck_assert_int_eq(dpn_send(c, "x", 1), -DPN_ENOTCONN); /* not yet */
    struct peer p = {.lport = s.sport, .pport = 5001, .snd_nxt = 0xfffffff0u, .rcv_nxt = s.seq + 1};
    unit_tx_drop(w);
    /* Spoofed ACKs of something else: a RST (then rate-limited), no SYN
     * retransmission (each would count towards TCP_SYNMAXRTX). */
    struct tcp_pcb *pcb = find_pcb(s.sport, 5001);
    u8_t nrtx = pcb->nrtx;
    for (int i = 0; i < 8; i++) {
        struct peer q = p;
        q.rcv_nxt += 1000 + (uint32_t)i;
        peer_send(&q, RTE_TCP_ACK_FLAG, NULL, 0);
        peer_send(&q, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG, NULL, 0);
    }
    ck_assert_int_eq(w->tx_n, 1);
    ck_assert_uint_eq(tx_tcp(0).flags, RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG);
    ck_assert_uint_eq(tx_tcp(0).seq, p.rcv_nxt + 1000);
    ck_assert_uint_eq(pcb->nrtx, nrtx);
    ck_assert_int_eq(ev.connected, 0);
    unit_tx_drop(w);
    peer_send(&p, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG, NULL, 0);
    ck_assert_int_eq(ev.connected, 1);
    ck_assert_int_eq(ev.connected_err, 0);
    ck_assert_ptr_eq(ev.connected_conn, c);
    ck_assert_int_eq(w->tx_n, 1);
    s = tx_tcp(0);
    ck_assert_uint_eq(s.flags, RTE_TCP_ACK_FLAG);
    ck_assert_uint_eq(s.ack, p.snd_nxt);
    unit_tx_drop(w);
    /* Data across the peer's sequence wrap. */
    peer_send(&p, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, "0123456789abcdefXYZ", 19);
    ck_assert_int_eq(ev.nbufs, 1);
    ck_assert_uint_eq(dpn_buf_len(ev.bufs[0]), 19);
    dpn_recv_done(c, ev.bufs[0]);
    ev.nbufs = 0;
    ck_assert_int_eq(dpn_send(c, "ok", 2), 2);
    dpn_tcp_flush_dirty(w);
    s = tx_tcp(w->tx_n - 1);
    ck_assert_uint_eq(s.ack, p.snd_nxt);
    ck_assert_uint_eq(s.len, 2);
    unit_tx_drop(w);
    dpn_abort(c);
    ck_assert_int_eq(w->tx_n, 1);
    ck_assert(tx_tcp(0).flags & RTE_TCP_RST_FLAG);
    ck_assert_uint_eq(w->st.conns_open, base_conns);
    ck_assert_int_eq(ev.closed, 0);
    unit_tx_drop(w);

    /* Refused: RST-ACK to the SYN -> connected(-ECONNREFUSED), c gone. */
    ev_reset();
    c = NULL;
    ck_assert_int_eq(dpn_connect(w, UNIT_PEER_IP, 5002, &ops, &ev, &c), 0);
    s = tx_tcp(0);
    struct peer r = {.lport = s.sport, .pport = 5002, .snd_nxt = 0, .rcv_nxt = s.seq + 1};
    unit_tx_drop(w);
    peer_send(&r, RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG, NULL, 0);
    ck_assert_int_eq(ev.connected, 1);
    ck_assert_int_eq(ev.connected_err, -DPN_ECONNREFUSED);
    ck_assert_int_eq(ev.closed, 0);
    ck_assert_uint_eq(w->st.conns_open, base_conns);
    ck_assert_int_eq(w->tx_n, 0);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
}
END_TEST

/* We close first: TIME_WAIT in our table, not an lwIP pcb. Its segments are
 * answered as lwIP would; a SYN past the old connection starts a new one. */
START_TEST(test_tcp_time_wait) {
    struct peer p;
    establish(&p, 40960, true);
    unsigned before = dpn_tw_count(w->tw);
    dpn_close_conn(p.c);
    ck_assert_int_eq(w->tx_n, 1);
    struct unit_seg s = tx_tcp(0);
    ck_assert(s.flags & RTE_TCP_FIN_FLAG);
    p.rcv_nxt = s.seq + 1;
    unit_tx_drop(w);
    peer_send(&p, RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG, NULL, 0); /* acks ours, sends its own */
    ck_assert_int_eq(w->tx_n, 1);
    s = tx_tcp(0); /* lwIP acknowledged the FIN before the pcb left */
    ck_assert_uint_eq(s.flags, RTE_TCP_ACK_FLAG);
    ck_assert_uint_eq(s.ack, p.snd_nxt);
    unit_tx_drop(w);
    ck_assert_ptr_null(find_pcb(80, 40960));
    ck_assert(in_time_wait(80, 40960));
    ck_assert_uint_eq(dpn_tw_count(w->tw), before + 1);
    struct dpn_stats st;
    dpn_get_stats(w, &st);
    ck_assert_uint_eq(st.time_wait, before + 1);

    /* The peer lost our ACK and sends its FIN again: the same ACK. */
    p.snd_nxt--;
    peer_send(&p, RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG, NULL, 0);
    ck_assert_int_eq(w->tx_n, 1);
    s = tx_tcp(0);
    ck_assert_uint_eq(s.flags, RTE_TCP_ACK_FLAG);
    ck_assert_uint_eq(s.seq, p.rcv_nxt);
    ck_assert_uint_eq(s.ack, p.snd_nxt);
    ck_assert_uint_eq(s.sport, 80);
    ck_assert_uint_eq(s.dport, 40960);
    unit_tx_drop(w);
    /* A bare ACK and an RST (RFC 1337) get nothing and change nothing. */
    peer_ack(&p);
    peer_send(&p, RTE_TCP_RST_FLAG, NULL, 0);
    ck_assert_int_eq(w->tx_n, 0);
    ck_assert(in_time_wait(80, 40960));
    /* A SYN inside the old window: reset, as lwIP answers it. */
    struct rte_mbuf *m = unit_tcp_frame(w->pool, &w->mac, UNIT_PEER_IP, UNIT_LOCAL_IP, 40960, 80,
                                        p.snd_nxt, 0, RTE_TCP_SYN_FLAG, 65535, NULL, 0, NULL, 0);
    inject(m);
    ck_assert_int_eq(w->tx_n, 1);
    s = tx_tcp(0);
    ck_assert(s.flags & RTE_TCP_RST_FLAG);
    ck_assert_uint_eq(s.ack, p.snd_nxt + 1);
    unit_tx_drop(w);
    ck_assert(in_time_wait(80, 40960));
    /* A SYN past it: a new connection on the same 4-tuple. */
    int accepted = ev.accepted;
    p.snd_nxt += 100000;
    m = unit_tcp_frame(w->pool, &w->mac, UNIT_PEER_IP, UNIT_LOCAL_IP, 40960, 80, p.snd_nxt, 0,
                       RTE_TCP_SYN_FLAG, 65535, NULL, 0, NULL, 0);
    inject(m);
    ck_assert_int_eq(w->tx_n, 1);
    s = tx_tcp(0);
    ck_assert_uint_eq(s.flags, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG);
    ck_assert_uint_eq(s.ack, p.snd_nxt + 1);
    ck_assert(!in_time_wait(80, 40960));
    p.snd_nxt++;
    p.rcv_nxt = s.seq + 1;
    unit_tx_drop(w);
    peer_ack(&p);
    ck_assert_int_eq(ev.accepted, accepted + 1);
    dpn_abort(ev.conn);
    unit_tx_drop(w);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
}
END_TEST

/* An outgoing connection that we close first; returns its local port, now
 * in TIME_WAIT. */
static uint16_t connect_to_time_wait(uint16_t pport) {
    struct dpn_conn *c = NULL;
    ev_reset();
    unit_tx_drop(w);
    ck_assert_int_eq(dpn_connect(w, UNIT_PEER_IP, pport, &ops, &ev, &c), 0);
    struct unit_seg s = tx_tcp(0);
    struct peer p = {.lport = s.sport, .pport = pport, .snd_nxt = 1000, .rcv_nxt = s.seq + 1};
    unit_tx_drop(w);
    peer_send(&p, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG, NULL, 0);
    ck_assert_int_eq(ev.connected, 1);
    unit_tx_drop(w);
    dpn_close_conn(c);
    s = tx_tcp(w->tx_n - 1);
    ck_assert(s.flags & RTE_TCP_FIN_FLAG);
    p.rcv_nxt = s.seq + 1;
    unit_tx_drop(w);
    peer_send(&p, RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG, NULL, 0);
    unit_tx_drop(w);
    ck_assert(in_time_wait(p.lport, pport));
    return p.lport;
}

/* The SYN of a connection to port pport goes out from this local port. */
static uint16_t connect_port(uint16_t pport) {
    struct dpn_conn *c = NULL;
    unit_tx_drop(w);
    ck_assert_int_eq(dpn_connect(w, UNIT_PEER_IP, pport, &ops, &ev, &c), 0);
    struct unit_seg s = tx_tcp(0);
    ck_assert_uint_eq(s.flags, RTE_TCP_SYN_FLAG);
    dpn_abort(c);
    unit_tx_drop(w);
    return s.sport;
}

/* Local ports of outgoing connections skip a 4-tuple in TIME_WAIT while the
 * next ports are free, and reuse the oldest when none of the next 8 is. */
START_TEST(test_tcp_connect_time_wait_ports) {
    uint16_t x = connect_to_time_wait(5003);
    w->tcp_eph_next = x;
    ck_assert_uint_eq(connect_port(5003), x + 1); /* skipped */
    w->tcp_eph_next = x;
    ck_assert_uint_eq(connect_port(5004), x); /* another peer port: free */
    for (uint16_t i = 1; i < 8; i++) {
        w->tcp_eph_next = (uint16_t)(x + i);
        ck_assert_uint_eq(connect_to_time_wait(5003), x + i);
    }
    w->tcp_eph_next = x;
    ck_assert_uint_eq(connect_port(5003), x); /* x..x+7 all wait: x is reused */
    ck_assert(!in_time_wait(x, 5003));
    ck_assert(in_time_wait((uint16_t)(x + 1), 5003));
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
}
END_TEST

START_TEST(test_tcp_send_full) {
    /* The send buffer bounds what dpn_send queues; then EAGAIN until acks. */
    struct peer p;
    establish(&p, 40007, true);
    struct dpn_conn *c = p.c;
    size_t big_len = w->cfg.tcp_sndbuf + 40000;
    uint8_t *big = malloc(big_len);
    ck_assert_ptr_nonnull(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (uint8_t)(i * 7);
    long n = dpn_send(c, big, big_len);
    ck_assert_int_eq(n, (long)w->cfg.tcp_sndbuf);
    ck_assert_uint_eq(dpn_send_space(c), 0);
    ck_assert_int_eq(dpn_send(c, "x", 1), -DPN_EAGAIN);
    struct dpn_buf *b = dpn_buf_alloc(w, 10);
    ck_assert_int_eq(dpn_send_buf(c, b), -DPN_EAGAIN); /* b is still ours */
    dpn_buf_free(b);
    ck_assert_int_eq(w->tx_n, 0);

    /* The flush sends what the congestion window allows, in order. */
    dpn_tcp_flush_dirty(w);
    ck_assert_int_ge(w->tx_n, 1);
    uint32_t seq = p.rcv_nxt;
    size_t off = 0;
    for (int i = 0; i < w->tx_n; i++) {
        struct unit_seg s = tx_tcp(i);
        ck_assert_uint_eq(s.seq, seq);
        ck_assert_uint_le(s.len, MSS1500);
        ck_assert_int_eq(memcmp(s.data, big + off, s.len), 0);
        seq += s.len;
        off += s.len;
    }
    unit_tx_drop(w);
    /* Acknowledging the first segment makes room again. */
    p.rcv_nxt += MSS1500;
    peer_ack(&p);
    ck_assert_uint_eq(ev.sent, MSS1500);
    ck_assert_uint_eq(dpn_send_space(c), MSS1500);
    ck_assert_int_eq(dpn_send(c, big, big_len), MSS1500);
    unit_tx_drop(w);
    dpn_abort(c);
    ck_assert_uint_eq(w->st.conns_open, base_conns);
    free(big);
    unit_tx_drop(w);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
}
END_TEST

/* A TCP frame refused because the TX ring and our batch are full: lwIP
 * keeps the segment, and nothing would send it before the RTO (the peer
 * waits for exactly this data). The connection goes on the blocked list
 * and its data leaves as soon as the ring has room, with no input and no
 * timer. The full ring is a net_ring port nobody drains. */
START_TEST(test_tcp_tx_blocked_retried) {
    struct peer p, q;
    establish(&p, 40011, true);
    establish(&q, 40012, true);
    struct rte_ring *rxr =
        rte_ring_create("ut_blk_rx", 16, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    struct rte_ring *txr =
        rte_ring_create("ut_blk_tx", 16, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    ck_assert_ptr_nonnull(rxr);
    ck_assert_ptr_nonnull(txr);
    int port = rte_eth_from_rings("ut_blk", &rxr, 1, &txr, 1, SOCKET_ID_ANY);
    ck_assert_int_ge(port, 0);
    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof(conf));
    ck_assert_int_eq(rte_eth_dev_configure((uint16_t)port, 1, 1, &conf), 0);
    ck_assert_int_eq(rte_eth_rx_queue_setup((uint16_t)port, 0, 16, SOCKET_ID_ANY, NULL, w->pool),
                     0);
    ck_assert_int_eq(rte_eth_tx_queue_setup((uint16_t)port, 0, 16, SOCKET_ID_ANY, NULL), 0);
    ck_assert_int_eq(rte_eth_dev_start((uint16_t)port), 0);
    uint16_t null_port = w->port_id;
    w->port_id = (uint16_t)port;
    /* The ring holds 15 frames, our batch DPN_TX_BATCH: fill both. */
    void *junk[15];
    for (int i = 0; i < 15; i++) {
        junk[i] = rte_pktmbuf_alloc(w->pool);
        ck_assert_ptr_nonnull(junk[i]);
    }
    ck_assert_uint_eq(rte_ring_enqueue_burst(txr, junk, 15, NULL), 15);
    fill_tx_batch();
    uint64_t blocked = w->st.tx_blocked;
    ck_assert_int_eq(dpn_send(p.c, "hello", 5), 5);
    dpn_tcp_flush_dirty(w);
    ck_assert_uint_eq(w->st.tx_blocked, blocked + 1);
    ck_assert_uint_eq(w->blocked_n, 1);
    ck_assert_ptr_nonnull(p.c->pcb->unsent); /* lwIP kept it */
    /* Refused again (an ACK owed, more data): listed once. */
    ck_assert_int_eq(dpn_send(p.c, " world", 6), 6);
    dpn_tcp_flush_dirty(w);
    ck_assert_uint_eq(w->blocked_n, 1);
    /* A second connection refused: listed too. */
    ck_assert_int_eq(dpn_send(q.c, "second", 6), 6);
    dpn_tcp_flush_dirty(w);
    ck_assert_uint_eq(w->blocked_n, 2);

    /* The ring drains (the peer read it) while our batch is only partly
     * sent (a peer that stays behind): the next poll already sends both
     * again (it waited for an empty batch, which such a peer rarely
     * leaves), and nothing stays listed. */
    void *out[16];
    unsigned k = rte_ring_dequeue_burst(txr, out, 16, NULL);
    ck_assert_uint_eq(k, 15);
    rte_pktmbuf_free_bulk((struct rte_mbuf **)out, k);
    while (w->tx_n > 100)
        rte_pktmbuf_free(w->tx_pkts[--w->tx_n]);
    w->tx_held = w->tx_n;
    dpn_poll_once(w, rte_rdtsc());
    ck_assert_uint_eq(w->blocked_n, 0);
    ck_assert_uint_eq(w->tx_n, 100 - 15 + 2);
    struct rte_mbuf *data[2];
    unsigned got = 0;
    for (int round = 0; round < 20 && got < 2; round++) {
        k = rte_ring_dequeue_burst(txr, out, 16, NULL);
        for (unsigned i = 0; i < k; i++) {
            struct rte_mbuf *m = out[i];
            if (m->pkt_len == 0)
                rte_pktmbuf_free(m); /* filler */
            else if (got < 2)
                data[got++] = m;
            else
                ck_abort_msg("a third frame");
        }
        dpn_poll_once(w, rte_rdtsc());
    }
    ck_assert_uint_eq(got, 2);
    struct unit_seg sg, sh;
    ck_assert(unit_parse(data[0], IPPROTO_TCP, &sg));
    ck_assert(unit_parse(data[1], IPPROTO_TCP, &sh));
    if (sg.dport != p.pport) { /* lwIP's own timers may send one of them first */
        struct unit_seg t = sg;
        sg = sh;
        sh = t;
    }
    ck_assert_uint_eq(sg.dport, p.pport);
    ck_assert_uint_eq(sg.seq, p.rcv_nxt);
    ck_assert_uint_eq(sg.len, 11);
    ck_assert_int_eq(memcmp(sg.data, "hello world", 11), 0);
    ck_assert_uint_eq(sh.dport, q.pport);
    ck_assert_uint_eq(sh.seq, q.rcv_nxt);
    ck_assert_uint_eq(sh.len, 6);
    ck_assert_int_eq(memcmp(sh.data, "second", 6), 0);
    rte_pktmbuf_free_bulk(data, 2);
    dpn_abort(q.c);

    w->port_id = null_port;
    rte_eth_dev_stop((uint16_t)port);
    rte_eth_dev_close((uint16_t)port);
    rte_ring_free(rxr);
    rte_ring_free(txr);
    dpn_abort(p.c);
    unit_tx_drop(w);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
}
END_TEST

/* While a connection waits for room in the TX ring, another's output waits
 * behind it even when the batch has room (lwIP's tcp_output asks first:
 * config/lwip-tcp-output-hold.patch), and both leave in that order. Before,
 * the later one went at once, and under a peer that stays behind the listed
 * ones waited past the peer's RTO. The batch stays while the port is away. */
START_TEST(test_tcp_tx_waits_its_turn) {
    struct peer p, q;
    establish(&p, 40013, true);
    establish(&q, 40014, true);
    unsigned base_mbufs = dpn_mbufs_free(w);
    w->port_gone = true;
    fill_tx_batch();
    ck_assert_int_eq(dpn_send(p.c, "first", 5), 5);
    dpn_tcp_flush_dirty(w);
    ck_assert_uint_eq(w->blocked_n, 1);
    unit_tx_drop(w); /* the ring took the batch */
    ck_assert_int_eq(dpn_send(q.c, "second", 6), 6);
    dpn_tcp_flush_dirty(w);
    ck_assert_int_eq(w->tx_n, 0); /* room, but p is first */
    ck_assert_uint_eq(w->blocked_n, 2);
    ck_assert_ptr_nonnull(q.c->pcb->unsent);
    uint64_t fast = w->st.tcp_fast_out;
    dpn_poll_once(w, rte_rdtsc());
    ck_assert_uint_eq(w->blocked_n, 0);
    ck_assert_int_eq(w->tx_n, 2);
    /* Their turn came: header prediction's frames, as with no line. */
    ck_assert_uint_eq(w->st.tcp_fast_out, fast + 2);
    struct unit_seg a = tx_tcp(0), b = tx_tcp(1);
    ck_assert_uint_eq(a.dport, p.pport);
    ck_assert_uint_eq(a.len, 5);
    ck_assert_uint_eq(b.dport, q.pport);
    ck_assert_uint_eq(b.len, 6);
    w->port_gone = false;
    unit_tx_drop(w);
    dpn_abort(p.c);
    dpn_abort(q.c);
    unit_tx_drop(w);
    ck_assert_uint_ge(dpn_mbufs_free(w), base_mbufs);
}
END_TEST

/* A listed connection that goes away while it waits (its pcb freed, its
 * entry in the index gone): its turn passes, the one behind it leaves. */
START_TEST(test_tcp_tx_blocked_gone) {
    struct peer p, q;
    establish(&p, 40015, true);
    establish(&q, 40016, true);
    unsigned base_mbufs = dpn_mbufs_free(w);
    w->port_gone = true;
    fill_tx_batch();
    ck_assert_int_eq(dpn_send(p.c, "first", 5), 5);
    dpn_tcp_flush_dirty(w);
    ck_assert_int_eq(dpn_send(q.c, "second", 6), 6);
    dpn_tcp_flush_dirty(w);
    ck_assert_uint_eq(w->blocked_n, 2);
    dpn_abort(p.c); /* its RST finds the batch full: not listed */
    ck_assert_uint_eq(w->blocked_n, 2);
    unit_tx_drop(w);
    dpn_poll_once(w, rte_rdtsc());
    ck_assert_uint_eq(w->blocked_n, 0);
    ck_assert_int_eq(w->tx_n, 1);
    struct unit_seg a = tx_tcp(0);
    ck_assert_uint_eq(a.dport, q.pport);
    ck_assert_uint_eq(a.len, 6);
    w->port_gone = false;
    unit_tx_drop(w);
    dpn_abort(q.c);
    unit_tx_drop(w);
    ck_assert_uint_ge(dpn_mbufs_free(w), base_mbufs);
}
END_TEST

/* With window scaling, lwIP announces TCP_WND (512 KiB) although
 * apply_rcvbuf (stack/tcp.c) lowered rcv_wnd to tcp_rcvbuf: the peer may send
 * data the stack then drops as out of window. (Regression test: fixed in stack/.) */
START_TEST(test_tcp_rcvbuf_announced) {
    struct peer p;
    establish(&p, 40008, true);
    struct dpn_conn *c = p.c;
    ck_assert_int_eq(dpn_send(c, "w", 1), 1);
    dpn_tcp_flush_dirty(w);
    struct unit_seg s = tx_tcp(w->tx_n - 1);
    uint32_t announced = (uint32_t)s.win << c->pcb->rcv_scale;
    ck_assert_msg(announced <= w->cfg.tcp_rcvbuf, "announced %u > tcp_rcvbuf %u", announced,
                  w->cfg.tcp_rcvbuf);
    dpn_abort(c);
}
END_TEST

START_TEST(test_rx_bad_checksum_dropped) {
    listener();
    uint64_t dropped = w->st.rx_dropped, rx = w->st.rx_pkts;
    struct rte_mbuf *m = unit_tcp_frame(w->pool, &w->mac, UNIT_PEER_IP, UNIT_LOCAL_IP, 40100, 80, 1,
                                        0, RTE_TCP_SYN_FLAG, 65535, NULL, 0, NULL, 0);
    ck_assert_ptr_nonnull(m);
    rte_pktmbuf_mtod_offset(m, struct rte_tcp_hdr *, 34)->cksum ^= 0x0100;
    inject(m);
    ck_assert_uint_eq(w->st.rx_dropped, dropped + 1);
    ck_assert_uint_eq(w->st.rx_pkts, rx + 1);
    ck_assert_int_eq(w->tx_n, 0);
    ck_assert_ptr_null(find_pcb(80, 40100));
    /* The NIC's word wins: a correct frame flagged BAD is dropped too. */
    m = unit_tcp_frame(w->pool, &w->mac, UNIT_PEER_IP, UNIT_LOCAL_IP, 40100, 80, 1, 0,
                       RTE_TCP_SYN_FLAG, 65535, NULL, 0, NULL, 0);
    m->ol_flags = RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_BAD;
    inject(m);
    ck_assert_uint_eq(w->st.rx_dropped, dropped + 2);
    ck_assert_int_eq(w->tx_n, 0);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
    /* GOOD/GOOD from the NIC: trusted, the SYN is answered despite the
     * (deliberately) wrong bytes. */
    m = unit_tcp_frame(w->pool, &w->mac, UNIT_PEER_IP, UNIT_LOCAL_IP, 40100, 80, 1, 0,
                       RTE_TCP_SYN_FLAG, 65535, NULL, 0, NULL, 0);
    rte_pktmbuf_mtod_offset(m, struct rte_tcp_hdr *, 34)->cksum ^= 0x0100;
    m->ol_flags = RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_GOOD;
    inject(m);
    ck_assert_uint_eq(w->st.rx_dropped, dropped + 2);
    ck_assert_int_eq(w->tx_n, 1);
    ck_assert_uint_eq(tx_tcp(0).flags, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG);
    unit_tx_drop(w);
    /* Leave no half-open connection: RST it. */
    struct peer p = {.lport = 80, .pport = 40100, .snd_nxt = 2};
    peer_send(&p, RTE_TCP_RST_FLAG, NULL, 0);
    ck_assert_ptr_null(find_pcb(80, 40100));
    ck_assert_int_eq(ev.accepted, 0);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
}
END_TEST

/* ---- UDP ---- */

static struct uev {
    int n;
    struct dpn_buf *b;
    uint32_t ip;
    uint16_t port;
    struct dpn_udp *u;
} uev;

static void on_udp(void *ctx, struct dpn_udp *u, struct dpn_buf *b, uint32_t ip, uint16_t port) {
    ck_assert_ptr_eq(ctx, &uev);
    uev.n++;
    if (uev.b != NULL)
        dpn_buf_free(uev.b);
    uev.b = b;
    uev.ip = ip;
    uev.port = port;
    uev.u = u;
}

/* A NIC with checksum offloads, as lwIP and dpn_linkoutput see it: lwIP
 * leaves the checksums to the NIC, the frames carry the offload requests. */
START_TEST(test_tx_offload_path) {
    struct peer p;
    establish(&p, 40009, true);

    struct dpn_port_caps caps0 = w->caps;
    u16_t flags0 = w->netif.chksum_flags;
    w->caps.tx_ip_cksum = w->caps.tx_tcp_cksum = w->caps.tx_udp_cksum = true;
    NETIF_SET_CHECKSUM_CTRL(&w->netif, NETIF_CHECKSUM_CHECK_ICMP | NETIF_CHECKSUM_GEN_ICMP);
    struct dpn_udp *u;
    ck_assert_int_eq(dpn_udp_bind(w, 7777, on_udp, &uev, &u), 0);
    ck_assert_int_eq(dpn_udp_sendto(u, "offload", 7, UNIT_PEER_IP, 7), 0);
    ck_assert_int_eq(dpn_send(p.c, "tcp offload", 11), 11);
    dpn_tcp_flush_dirty(w);

    w->caps = caps0;
    NETIF_SET_CHECKSUM_CTRL(&w->netif, flags0);

    ck_assert_int_eq(w->tx_n, 2);
    const uint64_t l4[2] = {RTE_MBUF_F_TX_UDP_CKSUM, RTE_MBUF_F_TX_TCP_CKSUM};
    for (int i = 0; i < 2; i++) {
        struct rte_mbuf *m = w->tx_pkts[i];
        ck_assert_uint_eq(m->ol_flags, RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | l4[i]);
        ck_assert_uint_eq(m->l2_len, 14);
        ck_assert_uint_eq(m->l3_len, 20);
        struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, 14);
        ck_assert_uint_eq(ip->hdr_checksum, 0);
        uint16_t field;
        memcpy(&field, (uint8_t *)(ip + 1) + (i == 0 ? 6 : 16), 2);
        ck_assert_uint_eq(field, rte_ipv4_phdr_cksum(ip, m->ol_flags));
        ck_assert(!dpn_cksum_verify_sw(m, false, false));
        unit_nic_tx_finish(m);
        ck_assert_msg(dpn_cksum_verify_sw(m, false, false), "frame %d wrong after the NIC", i);
    }
    ck_assert_uint_eq(tx_udp(0).len, 7);
    struct unit_seg s = tx_tcp(1);
    ck_assert_uint_eq(s.len, 11);
    ck_assert_int_eq(memcmp(s.data, "tcp offload", 11), 0);
    unit_tx_drop(w);
    dpn_abort(p.c);
    dpn_udp_close(u);
    unit_tx_drop(w);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
}
END_TEST

START_TEST(test_udp_bind) {
    struct dpn_udp *u = NULL, *u2 = NULL, *e1 = NULL, *e2 = NULL;
    ck_assert_int_eq(dpn_udp_bind(NULL, 53, on_udp, &uev, &u), -DPN_EINVAL);
    ck_assert_int_eq(dpn_udp_bind(w, 53, on_udp, &uev, NULL), -DPN_EINVAL);
    ck_assert_int_eq(dpn_udp_bind(w, 5353, on_udp, &uev, &u), 0);
    ck_assert_int_eq(dpn_udp_bind(w, 5353, on_udp, &uev, &u2), -DPN_EADDRINUSE);
    ck_assert_ptr_null(u2);
    /* Port 0: two different ephemeral ports. */
    ck_assert_int_eq(dpn_udp_bind(w, 0, on_udp, &uev, &e1), 0);
    ck_assert_int_eq(dpn_udp_bind(w, 0, on_udp, &uev, &e2), 0);
    ck_assert_uint_ne(e1->pcb->local_port, 0);
    ck_assert_uint_ne(e1->pcb->local_port, e2->pcb->local_port);
    dpn_udp_close(e1);
    dpn_udp_close(e2);
    dpn_udp_close(u);
    ck_assert_int_eq(dpn_udp_bind(w, 5353, on_udp, &uev, &u), 0); /* free again */
    dpn_udp_close(u);
    dpn_udp_close(NULL);
}
END_TEST

START_TEST(test_udp_io) {
    memset(&uev, 0, sizeof(uev));
    struct dpn_udp *u = NULL;
    ck_assert_int_eq(dpn_udp_bind(w, 5353, on_udp, &uev, &u), 0);

    /* Receive: payload and source, zero copy. */
    const char q[] = "question?";
    struct rte_mbuf *m =
        unit_udp_frame(w->pool, &w->mac, UNIT_PEER_IP, UNIT_LOCAL_IP, 6000, 5353, q, 9);
    inject(m);
    ck_assert_int_eq(uev.n, 1);
    ck_assert_ptr_eq(uev.u, u);
    ck_assert_uint_eq(uev.ip, UNIT_PEER_IP);
    ck_assert_uint_eq(uev.port, 6000);
    ck_assert_uint_eq(dpn_buf_len(uev.b), 9);
    char got[16] = {0};
    ck_assert_uint_eq(dpn_buf_copy(uev.b, got, sizeof(got), 0), 9);
    ck_assert_str_eq(got, q);
    ck_assert_ptr_eq(dpn_buf_data(uev.b, NULL), rte_pktmbuf_mtod_offset(m, void *, 42));
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs - 1);
    ck_assert_int_eq(w->tx_n, 0);

    /* Echo the received buffer: the stack takes it, and its own mbuf is
     * the answer (headers rewritten in place, nothing allocated). */
    ck_assert_int_eq(dpn_udp_sendto_buf(u, uev.b, uev.ip, uev.port), 0);
    uev.b = NULL;
    ck_assert_int_eq(w->tx_n, 1);
    ck_assert_ptr_eq(w->tx_pkts[0], m);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs - 1);
    struct unit_seg s = tx_udp(0);
    ck_assert_uint_eq(s.sip, UNIT_LOCAL_IP);
    ck_assert(rte_is_same_ether_addr(&s.eth->dst_addr, &unit_peer_mac));
    ck_assert_uint_eq(s.dip, UNIT_PEER_IP);
    ck_assert_uint_eq(s.sport, 5353);
    ck_assert_uint_eq(s.dport, 6000);
    ck_assert_uint_eq(s.len, 9);
    ck_assert_int_eq(memcmp(s.data, q, 9), 0);
    unit_tx_drop(w);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);

    /* Short datagrams come padded to Ethernet's minimum: the padding is
     * not data. With IP options (not the fast path) lwIP delivers it. */
    for (unsigned ihl = 5; ihl <= 6; ihl++) {
        uint8_t ud[8 + 3] = {0};
        struct rte_udp_hdr *uh = (struct rte_udp_hdr *)ud;
        uh->src_port = rte_cpu_to_be_16(6003);
        uh->dst_port = rte_cpu_to_be_16(5353);
        uh->dgram_len = rte_cpu_to_be_16(sizeof(ud));
        memcpy(ud + 8, "pad", 3);
        m = unit_ip_frame_ex(w->pool, &w->mac, UNIT_PEER_IP, UNIT_LOCAL_IP, IPPROTO_UDP, ihl, ud,
                             sizeof(ud));
        ck_assert_ptr_nonnull(m);
        unsigned pad = 60 - rte_pktmbuf_pkt_len(m); /* as a NIC delivers it */
        memset(rte_pktmbuf_append(m, (uint16_t)pad), 0xee, pad);
        int before = uev.n;
        inject(m);
        ck_assert_int_eq(uev.n, before + 1);
        ck_assert_uint_eq(uev.port, 6003);
        ck_assert_uint_eq(dpn_buf_len(uev.b), 3);
        ck_assert_int_eq(memcmp(dpn_buf_data(uev.b, NULL), "pad", 3), 0);
        dpn_buf_free(uev.b);
        uev.b = NULL;
    }
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);

    /* Largest datagram without fragmentation, and one byte more. */
    static uint8_t big[1500];
    for (unsigned i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i ^ 0x5a);
    ck_assert_int_eq(dpn_udp_sendto(u, big, 1472, UNIT_PEER_IP, 6001), 0);
    ck_assert_int_eq(w->tx_n, 1);
    ck_assert_uint_eq(rte_pktmbuf_pkt_len(w->tx_pkts[0]), 14 + 20 + 8 + 1472);
    s = tx_udp(0);
    ck_assert_uint_eq(s.dport, 6001);
    ck_assert_uint_eq(s.len, 1472);
    ck_assert_int_eq(memcmp(s.data, big, 1472), 0);
    unit_tx_drop(w);
    ck_assert_int_eq(dpn_udp_sendto(u, big, 1473, UNIT_PEER_IP, 6001), -DPN_EMSGSIZE);
    ck_assert_int_eq(w->tx_n, 0);
    /* Empty datagram. */
    ck_assert_int_eq(dpn_udp_sendto(u, NULL, 0, UNIT_PEER_IP, 6001), 0);
    ck_assert_int_eq(w->tx_n, 1);
    ck_assert_uint_eq(tx_udp(0).len, 0);
    unit_tx_drop(w);
    /* Bad arguments. */
    ck_assert_int_eq(dpn_udp_sendto(NULL, big, 1, UNIT_PEER_IP, 1), -DPN_EINVAL);
    ck_assert_int_eq(dpn_udp_sendto(u, NULL, 1, UNIT_PEER_IP, 1), -DPN_EINVAL);
    ck_assert_int_eq(dpn_udp_sendto(u, big, 1, 0, 1), -DPN_EINVAL);
    ck_assert_int_eq(dpn_udp_sendto(u, big, 1, UNIT_PEER_IP, 0), -DPN_EINVAL);
    ck_assert_int_eq(dpn_udp_sendto_buf(u, NULL, UNIT_PEER_IP, 1), -DPN_EINVAL);
    ck_assert_int_eq(w->tx_n, 0);

    /* A freshly allocated buffer, zero copy to the wire. */
    struct dpn_buf *b = dpn_buf_alloc(w, MSS1500);
    memset(dpn_buf_mut(b), 'u', MSS1500);
    ck_assert_int_eq(dpn_udp_sendto_buf(u, b, UNIT_PEER_IP, 6002), 0);
    ck_assert_int_eq(w->tx_n, 1);
    s = tx_udp(0);
    ck_assert_uint_eq(s.len, MSS1500);
    ck_assert_uint_eq(s.data[MSS1500 - 1], 'u');
    unit_tx_drop(w);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);

    /* An unresolved neighbour: ARP request first, the datagram follows the reply. */
    const struct rte_ether_addr mac3 = {{0x02, 0, 0, 0, 0, 0x03}};
    const uint32_t ip3 = RTE_IPV4(10, 0, 0, 3);
    ck_assert_int_eq(dpn_udp_sendto(u, "later", 5, ip3, 7), 0);
    ck_assert_int_eq(w->tx_n, 1);
    const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(w->tx_pkts[0], const struct rte_ether_hdr *);
    ck_assert_uint_eq(eth->ether_type, rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP));
    ck_assert(rte_is_broadcast_ether_addr(&eth->dst_addr));
    const struct rte_arp_hdr *a = (const struct rte_arp_hdr *)(eth + 1);
    ck_assert_uint_eq(a->arp_opcode, rte_cpu_to_be_16(RTE_ARP_OP_REQUEST));
    ck_assert_uint_eq(a->arp_data.arp_tip, rte_cpu_to_be_32(ip3));
    unit_tx_drop(w);
    inject(unit_arp_frame(w->pool, RTE_ARP_OP_REPLY, &w->mac, &mac3, ip3, &w->mac, UNIT_LOCAL_IP));
    ck_assert_int_eq(w->tx_n, 1);
    s = tx_udp(0);
    ck_assert(rte_is_same_ether_addr(&s.eth->dst_addr, &mac3));
    ck_assert_uint_eq(s.dip, ip3);
    ck_assert_uint_eq(s.len, 5);
    ck_assert_int_eq(memcmp(s.data, "later", 5), 0);
    unit_tx_drop(w);

    /* Zero copy to a neighbour nobody has resolved, and to the subnet's
     * broadcast address: lwIP's path (ARP request; broadcast MAC). */
    b = dpn_buf_alloc(w, 3);
    memcpy(dpn_buf_mut(b), "arp", 3);
    ck_assert_int_eq(dpn_udp_sendto_buf(u, b, RTE_IPV4(10, 0, 0, 4), 7), 0);
    ck_assert_int_eq(w->tx_n, 1);
    eth = rte_pktmbuf_mtod(w->tx_pkts[0], const struct rte_ether_hdr *);
    ck_assert_uint_eq(eth->ether_type, rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP));
    unit_tx_drop(w);
    const struct rte_ether_addr mac4 = {{0x02, 0, 0, 0, 0, 0x04}};
    inject(unit_arp_frame(w->pool, RTE_ARP_OP_REPLY, &w->mac, &mac4, RTE_IPV4(10, 0, 0, 4), &w->mac,
                          UNIT_LOCAL_IP));
    ck_assert_int_eq(w->tx_n, 1); /* the held datagram */
    s = tx_udp(0);
    ck_assert(rte_is_same_ether_addr(&s.eth->dst_addr, &mac4));
    ck_assert_int_eq(memcmp(s.data, "arp", 3), 0);
    unit_tx_drop(w);
    b = dpn_buf_alloc(w, 3);
    memcpy(dpn_buf_mut(b), "all", 3);
    ck_assert_int_eq(dpn_udp_sendto_buf(u, b, RTE_IPV4(10, 0, 0, 255), 7), 0);
    ck_assert_int_eq(w->tx_n, 1);
    s = tx_udp(0);
    ck_assert(rte_is_broadcast_ether_addr(&s.eth->dst_addr));
    ck_assert_uint_eq(s.len, 3);
    unit_tx_drop(w);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);

    /* A datagram for a closed port: ICMP port unreachable, nothing delivered. */
    dpn_udp_close(u);
    int n = uev.n;
    inject(unit_udp_frame(w->pool, &w->mac, UNIT_PEER_IP, UNIT_LOCAL_IP, 6000, 5353, q, 9));
    ck_assert_int_eq(uev.n, n);
    ck_assert_int_eq(w->tx_n, 1);
    struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(w->tx_pkts[0], struct rte_ipv4_hdr *, 14);
    ck_assert_uint_eq(ip->next_proto_id, IPPROTO_ICMP);
    const uint8_t *icmp = (const uint8_t *)(ip + 1);
    ck_assert_uint_eq(icmp[0], 3); /* destination unreachable */
    ck_assert_uint_eq(icmp[1], 3); /* port */
    unit_tx_drop(w);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
}
END_TEST

/* ---- TX flush and the end state ---- */

START_TEST(test_tx_flush) {
    struct dpn_udp *u;
    ck_assert_int_eq(dpn_udp_bind(w, 0, on_udp, &uev, &u), 0);
    uint64_t txp = w->st.tx_pkts;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(dpn_udp_sendto(u, "abc", 3, UNIT_PEER_IP, 9), 0);
    ck_assert_int_eq(w->tx_n, 3);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs - 3);
    dpn_tx_flush(w); /* the null port takes and frees them */
    ck_assert_int_eq(w->tx_n, 0);
    ck_assert_uint_eq(w->st.tx_pkts, txp + 3);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
    dpn_udp_close(u);
}
END_TEST

START_TEST(test_zz_nothing_leaked) {
    /* Whatever earlier tests left (on failure), then the baseline. */
    dpn_tcp_close_all(w, true);
    if (listener80 != NULL) {
        dpn_unlisten(listener80);
        listener80 = NULL;
    }
    unit_tx_drop(w);
    ck_assert_uint_eq(w->st.conns_open, 0);
    ck_assert_ptr_null(w->conn_open);
    for (struct tcp_pcb *p = tcp_active_pcbs; p != NULL; p = p->next)
        ck_abort_msg("pcb left in state %d (ports %u/%u)", p->state, p->local_port, p->remote_port);
    ck_assert_ptr_null(tcp_listen_pcbs.listen_pcbs);
    ck_assert_uint_eq(lwip_stats.memp[MEMP_TCP_SEG]->used, 0);
    ck_assert_uint_eq(lwip_stats.memp[MEMP_PBUF]->used, 0);
    ck_assert_uint_eq(lwip_stats.memp[MEMP_PBUF_POOL]->used, 0);
    ck_assert_uint_eq(lwip_stats.memp[MEMP_UDP_PCB]->used, 0);
    ck_assert_uint_eq(lwip_stats.mem.used, base_heap);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
}
END_TEST

static Suite *api_suite(void) {
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("basics");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_startup_announce);
    tcase_add_test(tc, test_timers);
    tcase_add_test(tc, test_timers_exhausted);
    tcase_add_test(tc, test_arp_reply);
    tcase_add_test(tc, test_listen_args);
    suite_add_tcase(s, tc);

    tc = tcase_create("tcp");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_tcp_lifecycle);
    tcase_add_test(tc, test_tcp_shutdown_then_peer_fin);
    tcase_add_test(tc, test_tcp_read_stop_start);
    tcase_add_test(tc, test_tcp_close_lingers);
    tcase_add_test(tc, test_tcp_local_and_ctx);
    tcase_add_test(tc, test_timer_handles);
    tcase_add_test(tc, test_tcp_fin_half_the_sequence_space_away);
    tcase_add_test(tc, test_tcp_syn_rcvd_syn_fin_half_away);
    tcase_add_test(tc, test_tcp_guard_sweep);
    tcase_add_test(tc, test_tcp_syn_cookies);
    tcase_add_test(tc, test_tcp_syn_cookie_queued);
    tcase_add_test(tc, test_tcp_ooseq_bounds);
    tcase_add_test(tc, test_tcp_reset_by_peer);
    tcase_add_test(tc, test_tcp_refuse);
    tcase_add_test(tc, test_tcp_window_reopen);
    tcase_add_test(tc, test_tcp_send_buf_zero_copy);
    tcase_add_test(tc, test_tcp_free_after_send);
    tcase_add_test(tc, test_tcp_send_buf_errors);
    tcase_add_test(tc, test_tcp_send_zc);
    tcase_add_test(tc, test_tcp_abort_in_recv);
    tcase_add_test(tc, test_tcp_fast_path);
    tcase_add_test(tc, test_tcp_fast_arp_refresh);
    tcase_add_test(tc, test_tcp_fast_out_odd_pieces);
    tcase_add_test(tc, test_tcp_connect);
    tcase_add_test(tc, test_tcp_time_wait);
    tcase_add_test(tc, test_tcp_connect_time_wait_ports);
    tcase_add_test(tc, test_tcp_send_full);
    tcase_add_test(tc, test_tcp_tx_blocked_retried);
    tcase_add_test(tc, test_tcp_tx_blocked_gone);
    tcase_add_test(tc, test_tcp_tx_waits_its_turn);
    tcase_add_test(tc, test_tcp_rcvbuf_announced);
    tcase_add_test(tc, test_rx_bad_checksum_dropped);
    suite_add_tcase(s, tc);

    tc = tcase_create("udp");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_udp_bind);
    tcase_add_test(tc, test_udp_io);
    tcase_add_test(tc, test_tx_offload_path);
    tcase_add_test(tc, test_tx_flush);
    suite_add_tcase(s, tc);

    tc = tcase_create("end");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_zz_nothing_leaked);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    w = unit_init("test_api");
    if (!learn_peer()) {
        fprintf(stderr, "test_api: lwIP did not answer the peer's ARP request\n");
        return 1;
    }
    base_mbufs = dpn_mbufs_free(w);
    base_conns = w->st.conns_open;
    base_heap = lwip_stats.mem.used;
    return unit_run(w, api_suite());
}
