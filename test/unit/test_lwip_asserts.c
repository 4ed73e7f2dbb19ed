/* Regression tests of the lwIP assertions a peer could reach through a real
 * worker (docs/lwip-asserts.md, R2-R8): each drives a connection or a UDP
 * socket into the situation the note describes with crafted frames through
 * dpn_rx_burst, runs lwIP's timers where a timer is involved, and then checks
 * that the connection still carries data both ways. Without the fixes
 * (config/lwip-input-asserts.patch; for R8 rx.c's chain_plain) each test
 * aborts the process in an LWIP_ASSERT. Run one with CK_RUN_CASE=<name>. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <rte_mbuf.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/stats.h"
#include "lwip/tcp.h"

#include "cksum.h"
#include "unit_eal.h"

/* The MSS at the tests' MTU of 1500 (TCP_MSS is the jumbo maximum). */
#define MSS1500 1460

#define LPORT 80
#define UPORT 7
#define F_FIN RTE_TCP_FIN_FLAG
#define F_SYN RTE_TCP_SYN_FLAG
#define F_RST RTE_TCP_RST_FLAG
#define F_PSH RTE_TCP_PSH_FLAG
#define F_ACK RTE_TCP_ACK_FLAG

static struct dpn_worker *w;
static struct dpn_listener *lis;
static unsigned base_mbufs;
static mem_size_t base_heap;

/* The bytes of each direction are a pattern of their stream offset, so that
 * a byte delivered twice, lost or shifted shows. */
static uint8_t peer_pat(uint32_t off) {
    return (uint8_t)(off * 31u + (off >> 8) + 7u);
}
static uint8_t our_pat(uint32_t off) {
    return (uint8_t)(off * 13u + (off >> 9) + 5u);
}

/* ---- the application ---- */

enum app_mode {
    APP_HOLD,   /* keeps what it gets: the window closes */
    APP_READ,   /* gives every buffer back at once */
    APP_ANSWER, /* gives it back and answers app.answer bytes from recv */
};

#define HOLD 64
static struct {
    enum app_mode mode;
    size_t answer;
    struct dpn_conn *conn;
    int accepted, eof, closed;
    struct dpn_buf *held[HOLD];
    int nheld;
    uint8_t got[1 << 17]; /* what recv saw, in order */
    uint32_t ngot;
    uint32_t written; /* our stream: bytes queued with dpn_send */
    size_t acked;     /* sent() total */
} app;

static void app_write(struct dpn_conn *c, size_t n) {
    uint8_t buf[4096];
    ck_assert_uint_le(n, sizeof(buf));
    for (size_t i = 0; i < n; i++)
        buf[i] = our_pat(app.written + (uint32_t)i);
    ck_assert_int_eq(dpn_send(c, buf, n), (long)n);
    app.written += (uint32_t)n;
}

static int on_accepted(void *ctx, struct dpn_conn *c) {
    (void)ctx;
    app.accepted++;
    app.conn = c;
    return 0;
}

static void on_recv(void *ctx, struct dpn_conn *c, struct dpn_buf *b) {
    (void)ctx;
    size_t n = dpn_buf_len(b);
    ck_assert_uint_le(app.ngot + n, sizeof(app.got));
    ck_assert_uint_eq(dpn_buf_copy(b, app.got + app.ngot, n, 0), n);
    app.ngot += (uint32_t)n;
    if (app.mode == APP_HOLD) {
        ck_assert_int_lt(app.nheld, HOLD);
        app.held[app.nheld++] = b;
        return;
    }
    dpn_recv_done(c, b);
    if (app.mode == APP_ANSWER)
        app_write(c, app.answer);
}

static void on_eof(void *ctx, struct dpn_conn *c) {
    (void)ctx;
    (void)c;
    app.eof++;
}

static void on_sent(void *ctx, struct dpn_conn *c, size_t len) {
    (void)ctx;
    (void)c;
    app.acked += len;
}

static void on_closed(void *ctx, struct dpn_conn *c, int err) {
    (void)ctx;
    (void)c;
    (void)err;
    app.closed++;
    app.conn = NULL;
}

static const struct dpn_tcp_ops ops = {
    .accepted = on_accepted,
    .recv = on_recv,
    .eof = on_eof,
    .sent = on_sent,
    .closed = on_closed,
};

/* Give back what APP_HOLD kept (the window reopens). */
static void app_release(void) {
    for (int i = 0; i < app.nheld; i++)
        dpn_recv_done(app.conn, app.held[i]);
    app.nheld = 0;
    dpn_tcp_flush_dirty(w);
}

/* ---- the simulated peer ---- */

struct peer {
    uint16_t pport;
    uint32_t isn;     /* the peer's */
    uint32_t snd_nxt; /* the peer's next sequence number */
    uint32_t iss;     /* ours, from the SYN-ACK */
    uint32_t rcv_nxt; /* the end of our data the peer has (contiguous) */
};

/* One segment from the peer (payload: the peer's pattern at seq), then the
 * end of a poll iteration (dpn_send's writes are flushed). */
static void peer_tx(struct peer *p, uint32_t seq, uint8_t flags, uint16_t win, const uint8_t *opt,
                    unsigned optlen, unsigned len) {
    uint8_t data[MSS1500];
    ck_assert_uint_le(len, sizeof(data));
    for (unsigned i = 0; i < len; i++)
        data[i] = peer_pat(seq - (p->isn + 1) + i);
    struct rte_mbuf *m =
        unit_tcp_frame(w->pool, &w->mac, UNIT_PEER_IP, UNIT_LOCAL_IP, p->pport, LPORT, seq,
                       p->rcv_nxt, flags, win, opt, optlen, len > 0 ? data : NULL, len);
    ck_assert_ptr_nonnull(m);
    dpn_rx_burst(w, &m, 1);
    dpn_tcp_flush_dirty(w);
}

/* In-order data from the peer. */
static void peer_data(struct peer *p, unsigned len, uint16_t win) {
    peer_tx(p, p->snd_nxt, F_ACK | F_PSH, win, NULL, 0, len);
    p->snd_nxt += len;
}

/* What we sent to the peer since the last call (then dropped): every frame
 * checked (checksum, our pattern in the data, no hole before it), the peer's
 * view of our stream advanced. */
struct txsum {
    int segs, data_segs;
    unsigned max_len;
    uint8_t flags; /* of all segments, or'ed */
    bool acked;
    uint32_t ack; /* of the last segment with ACK */
    uint16_t win;
};

static struct txsum take_tx(struct peer *p) {
    struct txsum t = {0};
    for (uint16_t i = 0; i < w->tx_n; i++) {
        struct rte_mbuf *m = w->tx_pkts[i];
        struct unit_seg s;
        if (!unit_parse(m, IPPROTO_TCP, &s) || s.dport != p->pport)
            continue;
        ck_assert_msg(dpn_cksum_verify_sw(m, false, false), "frame %u: bad checksum", i);
        ck_assert_uint_eq(s.dip, UNIT_PEER_IP);
        t.segs++;
        t.flags |= s.flags;
        if (s.flags & F_ACK) {
            t.acked = true;
            t.ack = s.ack;
            t.win = s.win;
        }
        if (s.len == 0)
            continue;
        t.data_segs++;
        if (s.len > t.max_len)
            t.max_len = s.len;
        uint32_t off = s.seq - (p->iss + 1);
        for (unsigned k = 0; k < s.len; k++)
            ck_assert_msg(s.data[k] == our_pat(off + k), "our byte %u: 0x%02x, not 0x%02x", off + k,
                          s.data[k], our_pat(off + k));
        ck_assert_msg((int32_t)(s.seq - p->rcv_nxt) <= 0, "a hole of %d bytes before seq %u",
                      (int32_t)(s.seq - p->rcv_nxt), s.seq);
        if ((int32_t)(s.seq + s.len - p->rcv_nxt) > 0)
            p->rcv_nxt = s.seq + s.len;
    }
    unit_tx_drop(w);
    return t;
}

/* Our ACK: sent at once, or delayed to lwIP's next fast timer. */
static struct txsum take_ack(struct peer *p) {
    struct txsum t = take_tx(p);
    if (!t.acked) {
        tcp_tmr();
        t = take_tx(p);
    }
    ck_assert(t.acked);
    return t;
}

/* The handshake with an MSS option of 1460 and no window scaling (our
 * window is then 65535 bytes), the peer announcing win throughout. */
static void establish(struct peer *p, uint16_t pport, uint16_t win) {
    memset(p, 0, sizeof(*p));
    p->pport = pport;
    p->isn = 0xffff0000u + pport; /* the 64 KiB a test sends wrap past 2^32 */
    p->snd_nxt = p->isn;
    unit_tx_drop(w);
    const uint8_t mss[4] = {2, 4, 0x05, 0xb4};
    peer_tx(p, p->isn, F_SYN, win, mss, sizeof(mss), 0);
    p->snd_nxt++;
    ck_assert_int_eq(w->tx_n, 1);
    struct unit_seg s;
    ck_assert(unit_parse(w->tx_pkts[0], IPPROTO_TCP, &s));
    ck_assert_uint_eq(s.flags, F_SYN | F_ACK);
    ck_assert_uint_eq(s.ack, p->snd_nxt);
    p->iss = s.seq;
    p->rcv_nxt = s.seq + 1;
    unit_tx_drop(w);
    peer_tx(p, p->snd_nxt, F_ACK, win, NULL, 0, 0);
    ck_assert_int_eq(app.accepted, 1);
    ck_assert_ptr_nonnull(app.conn);
    ck_assert_uint_eq(app.conn->pcb->rcv_wnd, 0xffff);
    unit_tx_drop(w);
}

/* The peer opens its window and acknowledges what comes until it has our
 * first total bytes; lwIP's timer runs when nothing comes (persist,
 * retransmission). Every segment fits the MSS. */
static void drain(struct peer *p, uint32_t total) {
    uint32_t want = p->iss + 1 + total;
    for (int i = 0; i < 64 && p->rcv_nxt != want; i++) {
        peer_tx(p, p->snd_nxt, F_ACK, 65535, NULL, 0, 0);
        struct txsum t = take_tx(p);
        if (t.data_segs == 0) {
            tcp_tmr();
            t = take_tx(p);
        }
        ck_assert_uint_le(t.max_len, MSS1500);
        ck_assert(!(t.flags & (F_RST | F_FIN)));
    }
    ck_assert_uint_eq(p->rcv_nxt - (p->iss + 1), total);
    peer_tx(p, p->snd_nxt, F_ACK, 65535, NULL, 0, 0);
    unit_tx_drop(w);
    ck_assert_uint_eq(app.acked, total);
}

/* The connection still works: data from the peer arrives (and is
 * acknowledged), data of ours goes out and is acknowledged. */
static void still_works(struct peer *p) {
    ck_assert_ptr_nonnull(app.conn);
    ck_assert_int_eq(app.closed, 0);
    app.mode = APP_READ;
    uint32_t before = app.ngot;
    peer_data(p, 100, 65535);
    ck_assert_uint_eq(app.ngot, before + 100);
    app_write(app.conn, 200);
    dpn_tcp_flush_dirty(w);
    struct txsum t = take_tx(p);
    ck_assert(t.acked);
    ck_assert_uint_eq(t.ack, p->snd_nxt);
    drain(p, app.written);
}

/* Everything the peer sent up to its snd_nxt reached the application, in
 * order, once. */
static void check_got(const struct peer *p) {
    ck_assert_uint_eq(app.ngot, p->snd_nxt - (p->isn + 1));
    for (uint32_t i = 0; i < app.ngot; i++)
        ck_assert_msg(app.got[i] == peer_pat(i), "peer byte %u: 0x%02x, not 0x%02x", i, app.got[i],
                      peer_pat(i));
}

/* The application stops reading until only `left` bytes of window remain
 * (no window scaling: it starts at 65535). */
static void close_window_to(struct peer *p, tcpwnd_size_t left) {
    struct tcp_pcb *pcb = app.conn->pcb;
    app.mode = APP_HOLD;
    while (pcb->rcv_wnd > left + MSS1500)
        peer_data(p, MSS1500, 65535);
    peer_data(p, pcb->rcv_wnd - left, 65535);
    ck_assert_uint_eq(pcb->rcv_wnd, left);
    ck_assert_uint_eq(pcb->rcv_nxt, p->snd_nxt);
    ck_assert_uint_eq(app.ngot, p->snd_nxt - (p->isn + 1));
    take_tx(p);
}

static void setup(void) {
    for (int i = 0; i < app.nheld; i++)
        dpn_buf_free(app.held[i]);
    memset(&app, 0, sizeof(app));
    unit_tx_drop(w);
}

static void teardown(void) {
    for (int i = 0; i < app.nheld; i++)
        dpn_buf_free(app.held[i]);
    app.nheld = 0;
    if (app.conn != NULL)
        dpn_abort(app.conn);
    app.conn = NULL;
    unit_tx_drop(w);
}

/* ---- R2: out-of-order data kept past the window ---- */

/* tcp_in.c "tcp_receive: ooseq tcplen > rcv_wnd": with 1000 bytes of
 * window, 1460 bytes one past RCV.NXT were queued whole (the queue was
 * empty); the byte at RCV.NXT then takes the queue in beyond the window. */
START_TEST(r2_ooseq_past_window_app_not_reading) {
    struct peer p;
    establish(&p, 41002, 65535);
    close_window_to(&p, 1000);
    uint32_t rcv_nxt = p.snd_nxt, got0 = app.ngot;
    peer_tx(&p, rcv_nxt + 1, F_ACK, 65535, NULL, 0, MSS1500); /* starts in the window */
    struct txsum t = take_tx(&p);
    ck_assert(t.acked);
    ck_assert_uint_eq(t.ack, rcv_nxt); /* a duplicate ACK: a hole */
    peer_tx(&p, rcv_nxt, F_ACK, 65535, NULL, 0, 1);
    /* The window's 1000 bytes arrive, the rest waits for the window. */
    ck_assert_uint_eq(app.ngot, got0 + 1000);
    ck_assert_uint_eq(app.conn->pcb->rcv_nxt, rcv_nxt + 1000);
    t = take_ack(&p);
    ck_assert_uint_eq(t.ack, rcv_nxt + 1000);
    ck_assert_uint_eq(t.win, 0);
    p.snd_nxt = rcv_nxt + 1000;
    /* The application reads: the window reopens and the peer sends the
     * part of its segment past the old edge again. */
    app_release();
    t = take_tx(&p);
    ck_assert(t.acked);
    ck_assert_uint_gt(t.win, 1000);
    app.mode = APP_READ;
    peer_data(&p, rcv_nxt + 1 + MSS1500 - p.snd_nxt, 65535);
    check_got(&p);
    still_works(&p);
    check_got(&p);
}
END_TEST

/* The same with an application that reads everything: 65535 bytes of
 * window (no scaling) filled from its far end backwards, the last segment
 * sticking out past the edge; 45 segments, below the out-of-order bounds. */
START_TEST(r2_ooseq_fills_whole_window) {
    struct peer p;
    establish(&p, 41003, 65535);
    app.mode = APP_READ;
    uint32_t r = p.snd_nxt, wnd = app.conn->pcb->rcv_wnd, far = r + wnd - 1;
    peer_tx(&p, far, F_ACK, 65535, NULL, 0, MSS1500); /* 1459 bytes past the edge */
    for (uint32_t s = r + 1; (int32_t)(s - far) < 0; s += MSS1500)
        peer_tx(&p, s, F_ACK, 65535, NULL, 0, MSS1500);
    take_tx(&p);
    ck_assert_uint_eq(app.ngot, 0);
    peer_tx(&p, r, F_ACK, 65535, NULL, 0, 1);
    /* The whole window arrived; lwIP's window reopened as the application
     * gave the data back. */
    ck_assert_uint_eq(app.ngot, wnd);
    ck_assert_uint_eq(app.conn->pcb->rcv_nxt, r + wnd);
    struct txsum t = take_tx(&p);
    ck_assert(t.acked);
    ck_assert_uint_eq(t.ack, r + wnd);
    p.snd_nxt = r + wnd;
    peer_data(&p, far + MSS1500 - p.snd_nxt, 65535);
    check_got(&p);
    still_works(&p);
    check_got(&p);
}
END_TEST

/* ---- R3: a queued FIN at the window's edge ---- */

/* tcp_in.c "tcp_receive: tcplen > rcv_wnd": with 1000 bytes of window, 999
 * bytes and a FIN one past RCV.NXT end at the edge (the FIN past it) and
 * are queued whole; 1000 bytes at RCV.NXT cover them and take the FIN. */
START_TEST(r3_ooseq_fin_past_window) {
    struct peer p;
    establish(&p, 41004, 65535);
    close_window_to(&p, 1000);
    uint32_t rcv_nxt = p.snd_nxt, got0 = app.ngot;
    peer_tx(&p, rcv_nxt + 1, F_ACK | F_FIN, 65535, NULL, 0, 999);
    take_tx(&p);
    peer_tx(&p, rcv_nxt, F_ACK, 65535, NULL, 0, 1000);
    ck_assert_uint_eq(app.ngot, got0 + 1000);
    ck_assert_int_eq(app.eof, 0); /* the FIN lay outside the window */
    struct txsum t = take_ack(&p);
    ck_assert_uint_eq(t.ack, rcv_nxt + 1000);
    p.snd_nxt = rcv_nxt + 1000;
    check_got(&p);
    /* Window open again: the peer's FIN, sent again, is taken. */
    app_release();
    take_tx(&p);
    app.mode = APP_READ;
    peer_tx(&p, p.snd_nxt, F_ACK | F_FIN, 65535, NULL, 0, 0);
    p.snd_nxt++;
    ck_assert_int_eq(app.eof, 1);
    t = take_tx(&p);
    ck_assert(t.acked);
    ck_assert_uint_eq(t.ack, p.snd_nxt);
    /* Half-closed by the peer: our data still goes out and is acknowledged. */
    app_write(app.conn, 300);
    dpn_tcp_flush_dirty(w);
    drain(&p, app.written);
    ck_assert_int_eq(app.closed, 0);
}
END_TEST

/* ---- R4: an MSS option on an established connection ---- */

/* tcp_out.c "mss_local is too small": an application answering 1460 bytes
 * from recv; its answer waits behind a zero window; the next segment carries
 * an MSS option of 100, and the answer's tcp_write finds the queued segment
 * longer than the MSS. */
START_TEST(r4_mss_option_mid_connection) {
    struct peer p;
    establish(&p, 41005, 65535);
    app.mode = APP_ANSWER;
    app.answer = MSS1500;
    peer_data(&p, 1, 65535);
    struct txsum t = take_tx(&p);
    ck_assert_int_eq(t.data_segs, 1);
    ck_assert_uint_eq(p.rcv_nxt - (p.iss + 1), MSS1500); /* the first answer went out */
    peer_data(&p, 1, 0);                                 /* window 0: the next one waits */
    t = take_tx(&p);
    ck_assert_int_eq(t.data_segs, 0);
    const uint8_t mss[4] = {2, 4, 0, 100};
    peer_tx(&p, p.snd_nxt, F_ACK | F_PSH, 0, mss, sizeof(mss), 1);
    p.snd_nxt++;
    ck_assert_uint_eq(app.written, 3 * MSS1500);
    t = take_tx(&p);
    ck_assert_int_eq(t.data_segs, 0);
    ck_assert(t.acked);
    ck_assert_uint_eq(t.ack, p.snd_nxt);
    /* The window opens: both answers go out, in segments up to the MSS. */
    drain(&p, 3 * MSS1500);
    check_got(&p);
    still_works(&p);
}
END_TEST

/* ---- R5: the persist timer splits past a lowered MSS ---- */

/* tcp_out.c "split <= mss": as R4, then a pure ACK opening the window to
 * 1000 bytes with an MSS option of 100; the persist timer cuts the queued
 * 1460-byte answer at the window (1000 > 100). */
START_TEST(r5_persist_split_after_mss_option) {
    struct peer p;
    establish(&p, 41006, 65535);
    app.mode = APP_ANSWER;
    app.answer = MSS1500;
    peer_data(&p, 1, 65535);
    take_tx(&p);
    peer_data(&p, 1, 0); /* acknowledges the first answer, closes the window */
    struct txsum t = take_tx(&p);
    ck_assert_int_eq(t.data_segs, 0);
    app.mode = APP_READ;
    const uint8_t mss[4] = {2, 4, 0, 100};
    peer_tx(&p, p.snd_nxt, F_ACK, 1000, mss, sizeof(mss), 0);
    t = take_tx(&p);
    ck_assert_int_eq(t.data_segs, 0); /* 1460 bytes do not fit in 1000 */
    /* The persist timer: the first 1000 bytes go out. */
    uint32_t una = p.rcv_nxt;
    for (int i = 0; i < 40 && t.data_segs == 0; i++) {
        tcp_tmr();
        t = take_tx(&p);
    }
    ck_assert_int_eq(t.data_segs, 1);
    ck_assert_uint_eq(p.rcv_nxt - una, 1000);
    drain(&p, 2 * MSS1500);
    check_got(&p);
    still_works(&p);
}
END_TEST

/* ---- R6: the zero-window probe acknowledged ---- */

/* tcp.c "tcp_slowtimr: persist ticking with empty send buffer": the peer's
 * byte closes its window, the application answers one byte, the persist
 * timer sends it as a probe and the peer acknowledges it, with its window
 * still closed or open again: the next slow tick finds nothing to send. */
static void persist_probe_acked(uint16_t pport, uint16_t win_after) {
    struct peer p;
    establish(&p, pport, 65535);
    app.mode = APP_READ;
    peer_data(&p, 1, 65535);
    take_tx(&p);
    app.mode = APP_ANSWER;
    app.answer = 1;
    peer_data(&p, 1, 0);
    struct txsum t = take_tx(&p);
    ck_assert_int_eq(t.data_segs, 0);
    app.mode = APP_READ;
    for (int i = 0; i < 40 && t.data_segs == 0; i++) {
        tcp_tmr();
        t = take_tx(&p);
    }
    ck_assert_int_eq(t.data_segs, 1); /* the probe carries our byte */
    ck_assert_uint_eq(p.rcv_nxt, p.iss + 2);
    peer_tx(&p, p.snd_nxt, F_ACK, win_after, NULL, 0, 0);
    ck_assert_uint_eq(app.acked, 1);
    for (int i = 0; i < 40; i++) { /* 20 slow ticks */
        tcp_tmr();
        t = take_tx(&p);
        ck_assert_int_eq(t.data_segs, 0);
        ck_assert(!(t.flags & (F_RST | F_FIN)));
    }
    still_works(&p);
    check_got(&p);
}

START_TEST(r6_persist_probe_acked_window_closed) {
    persist_probe_acked(41007, 0);
}
END_TEST

START_TEST(r6_persist_probe_acked_window_open) {
    persist_probe_acked(41008, 65535);
}
END_TEST

/* ---- R7: a SYN with window 0, then a small window ---- */

/* tcp_out.c "mss_local is too small": while the peer's largest window is
 * below 2 bytes tcp_write sizes segments to the MSS; a window of 100 then
 * makes it 50, below the 1460-byte answer still queued. */
START_TEST(r7_syn_window_zero_then_small) {
    struct peer p;
    establish(&p, 41009, 0);
    app.mode = APP_ANSWER;
    app.answer = MSS1500;
    peer_data(&p, 1, 0);
    struct txsum t = take_tx(&p);
    ck_assert_int_eq(t.data_segs, 0);
    peer_data(&p, 1, 100);
    ck_assert_uint_eq(app.written, 2 * MSS1500);
    t = take_tx(&p);
    ck_assert(t.acked);
    ck_assert_uint_eq(t.ack, p.snd_nxt);
    drain(&p, 2 * MSS1500);
    check_got(&p);
    still_works(&p);
}
END_TEST

/* ---- R8: a received chain ending in an empty segment, echoed by UDP ---- */

static struct {
    int n;
    uint8_t data[64];
    size_t len;
} udp_got;

static void on_udp_echo(void *ctx, struct dpn_udp *u, struct dpn_buf *b, uint32_t ip,
                        uint16_t port) {
    (void)ctx;
    udp_got.n++;
    udp_got.len = dpn_buf_copy(b, udp_got.data, sizeof(udp_got.data), 0);
    if (dpn_udp_sendto_buf(u, b, ip, port) != 0)
        dpn_buf_free(b);
}

/* A datagram from src (an on-link neighbour lwIP has no MAC for) in a chain
 * of two mbufs, the second empty (what a scatter-RX PMD could hand over);
 * options adds an IP option word (lwIP's path instead of rx.c's udp_fast).
 * The echo waits for ARP: lwIP queues a copy of it. */
static void udp_empty_tail(uint32_t src, int options) {
    struct dpn_udp *u = NULL;
    ck_assert_int_eq(dpn_udp_bind(w, UPORT, on_udp_echo, NULL, &u), 0);
    memset(&udp_got, 0, sizeof(udp_got));
    const char msg[] = "empty tail";
    uint8_t l4[8 + sizeof(msg) - 1];
    struct rte_udp_hdr *uh = (struct rte_udp_hdr *)l4;
    uh->src_port = rte_cpu_to_be_16(5000);
    uh->dst_port = rte_cpu_to_be_16(UPORT);
    uh->dgram_len = rte_cpu_to_be_16(sizeof(l4));
    uh->dgram_cksum = 0;
    memcpy(l4 + 8, msg, sizeof(msg) - 1);
    struct rte_mbuf *m = unit_ip_frame_ex(w->pool, &w->mac, src, UNIT_LOCAL_IP, IPPROTO_UDP,
                                          options ? 6 : 5, l4, sizeof(l4));
    struct rte_mbuf *e = rte_pktmbuf_alloc(w->pool);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(rte_pktmbuf_chain(m, e), 0);
    ck_assert_uint_eq(m->nb_segs, 2);
    ck_assert_uint_eq(rte_pktmbuf_data_len(e), 0);
    unit_tx_drop(w);
    dpn_rx_burst(w, &m, 1);
    ck_assert_int_eq(udp_got.n, 1);
    ck_assert_uint_eq(udp_got.len, sizeof(msg) - 1);
    ck_assert_int_eq(memcmp(udp_got.data, msg, udp_got.len), 0);
    /* An ARP request for the neighbour went out, the echo waits. */
    ck_assert_int_eq(w->tx_n, 1);
    const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(w->tx_pkts[0], const struct rte_ether_hdr *);
    ck_assert_uint_eq(eth->ether_type, rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP));
    const struct rte_arp_hdr *a = (const struct rte_arp_hdr *)(eth + 1);
    ck_assert_uint_eq(a->arp_opcode, rte_cpu_to_be_16(RTE_ARP_OP_REQUEST));
    ck_assert_uint_eq(a->arp_data.arp_tip, rte_cpu_to_be_32(src));
    unit_tx_drop(w);
    /* The neighbour answers: the echo goes out, whole. */
    struct rte_ether_addr nmac = {{0x02, 0x00, 0x00, 0x00, 0x00, (uint8_t)src}};
    struct rte_mbuf *r =
        unit_arp_frame(w->pool, RTE_ARP_OP_REPLY, &w->mac, &nmac, src, &w->mac, UNIT_LOCAL_IP);
    ck_assert_ptr_nonnull(r);
    dpn_rx_burst(w, &r, 1);
    ck_assert_int_eq(w->tx_n, 1);
    struct unit_seg s;
    ck_assert(unit_parse(w->tx_pkts[0], IPPROTO_UDP, &s));
    ck_assert(rte_is_same_ether_addr(&s.eth->dst_addr, &nmac));
    ck_assert_uint_eq(s.sip, UNIT_LOCAL_IP);
    ck_assert_uint_eq(s.dip, src);
    ck_assert_uint_eq(s.sport, UPORT);
    ck_assert_uint_eq(s.dport, 5000);
    ck_assert_uint_eq(s.len, sizeof(msg) - 1);
    ck_assert_int_eq(memcmp(s.data, msg, s.len), 0);
    ck_assert(dpn_cksum_verify_sw(w->tx_pkts[0], false, false));
    unit_tx_drop(w);
    dpn_udp_close(u);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
}

START_TEST(r8_udp_echo_empty_last_segment) {
    udp_empty_tail(RTE_IPV4(10, 0, 0, 77), 1);
}
END_TEST

/* The same to a port of rx.c's UDP fast path, which takes only chains
 * lwIP could take as they are (else "no packet queues allowed!", etharp.c). */
START_TEST(r8_udp_fast_echo_empty_last_segment) {
    udp_empty_tail(RTE_IPV4(10, 0, 0, 78), 0);
}
END_TEST

/* ---- nothing left behind ---- */

START_TEST(zz_nothing_leaked) {
    for (struct tcp_pcb *p = tcp_active_pcbs; p != NULL; p = p->next)
        ck_abort_msg("pcb left in state %d (ports %u/%u)", p->state, p->local_port, p->remote_port);
    ck_assert_uint_eq(w->st.conns_open, 0);
    ck_assert_uint_eq(lwip_stats.memp[MEMP_TCP_SEG]->used, 0);
    ck_assert_uint_eq(lwip_stats.memp[MEMP_PBUF]->used, 0);
    ck_assert_uint_eq(lwip_stats.mem.used, base_heap);
    ck_assert_uint_eq(dpn_mbufs_free(w), base_mbufs);
}
END_TEST

static void add(Suite *s, const char *name, const TTest *t) {
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, t);
    suite_add_tcase(s, tc);
}

static Suite *lwip_asserts_suite(void) {
    Suite *s = suite_create("lwip_asserts");
    add(s, "r2_ooseq_past_window_app_not_reading", r2_ooseq_past_window_app_not_reading);
    add(s, "r2_ooseq_fills_whole_window", r2_ooseq_fills_whole_window);
    add(s, "r3_ooseq_fin_past_window", r3_ooseq_fin_past_window);
    add(s, "r4_mss_option_mid_connection", r4_mss_option_mid_connection);
    add(s, "r5_persist_split_after_mss_option", r5_persist_split_after_mss_option);
    add(s, "r6_persist_probe_acked_window_closed", r6_persist_probe_acked_window_closed);
    add(s, "r6_persist_probe_acked_window_open", r6_persist_probe_acked_window_open);
    add(s, "r7_syn_window_zero_then_small", r7_syn_window_zero_then_small);
    add(s, "r8_udp_echo_empty_last_segment", r8_udp_echo_empty_last_segment);
    add(s, "r8_udp_fast_echo_empty_last_segment", r8_udp_fast_echo_empty_last_segment);
    add(s, "zz_nothing_leaked", zz_nothing_leaked);
    return s;
}

/* Teach lwIP the peer's MAC (its ARP request for our address). */
static void learn_peer(void) {
    struct rte_ether_addr bcast = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, zero = {{0}};
    struct rte_mbuf *m = unit_arp_frame(w->pool, RTE_ARP_OP_REQUEST, &bcast, &unit_peer_mac,
                                        UNIT_PEER_IP, &zero, UNIT_LOCAL_IP);
    if (m != NULL)
        dpn_rx_burst(w, &m, 1);
    if (m == NULL || w->tx_n != 1) {
        fprintf(stderr, "test_lwip_asserts: lwIP did not answer the peer's ARP request\n");
        exit(1);
    }
    unit_tx_drop(w);
}

int main(void) {
    w = unit_init("test_lwip_asserts");
    learn_peer();
    if (dpn_listen(w, LPORT, &ops, NULL, &lis) != 0) {
        fprintf(stderr, "test_lwip_asserts: cannot listen on %u\n", LPORT);
        return 1;
    }
    base_mbufs = dpn_mbufs_free(w);
    base_heap = lwip_stats.mem.used;
    return unit_run(w, lwip_asserts_suite());
}
