/* libFuzzer harness of a worker's receive path: arbitrary Ethernet frames
 * through dpn_rx_burst (checksum decision, zero-copy wrap, SYN guard) into
 * lwIP and back out through our TCP/UDP glue (stack/tcp.c, stack/udp.c),
 * with a listener on TCP port 80, an established connection to it from the
 * simulated peer 10.0.0.1:40000, a listener on 8081 whose backlog is one (its
 * SYNs get SYN cookies) and a UDP socket on port 7777. What the worker
 * transmits is dropped.
 *
 * Input: one mode byte, then records [kind][len hi][len lo][bytes]
 * (fuzz_common.h). Mode: bits 0-1 what recv does (0 give back at once,
 * 1 hold up to 64 buffers, 2 echo zero-copy, 3 echo by copy; 'A'/'C' as the
 * first payload byte aborts/closes from inside recv), bits 2-3 what eof does
 * (close, shutdown, nothing, abort), bit 4 refuse new connections, bit 5 echo
 * UDP datagrams. Record kind, low 3 bits:
 *   0 frame as is     1 frame, checksums recomputed   2 frame, NIC said good
 *   3 TCP segment from a template: [target][flags][seq delta:4][ack delta:4]
 *     [window:2][optlen][options][data]; target 0 the established
 *     connection, 1 the newest pcb (a handshake in progress, a connect),
 *     2..255 a new connection to port 80 from port 10000+target with
 *     absolute seq/ack. Deltas are added to lwIP's rcv_nxt / snd_nxt.
 *   4 UDP datagram from the peer: [dport: 0 = 7777][data]
 *   5 application call: [op][conn][arg:2]      6 timers: [n][flags]
 *   7 SYN flood: [n] SYNs to port 80 (the SYN guard)
 * Bits 4-5: frames (0-2) in 1-3 segments; bit 6: an Ethernet header to us
 * from the peer is put in front of the bytes.
 *
 * Bit 7 set and bit 3 clear (inputs saved earlier set both or neither):
 * a connection in a chosen TCP state, bit 0 says which record:
 *   0 state: [state][variant][peer ISN:4][rcvbuf sel][window sel]
 *     (state_record). A fresh connection from peer
 *     port 30000+i (the i-th state record of the input) is brought into
 *     state % 9 of SYN_SENT SYN_RCVD ESTABLISHED FIN_WAIT_1 FIN_WAIT_2
 *     CLOSING CLOSE_WAIT LAST_ACK TIME_WAIT by well-formed segments and
 *     API calls, checked against lwIP's pcb (our table for TIME_WAIT).
 *     Variant (V_*): we connect, we close (else shut down), 1000 bytes of
 *     ours left unacknowledged, 300 bytes from the peer first, SYNs without
 *     options, (bits 5-6) the way to TIME_WAIT, (bit 7) the peer connects
 *     to 8081 through a SYN cookie; SYN_RCVD then means the cookie was sent
 *     and no state kept (counted as SYN_COOKIE; its segments go to CLOSED).
 *   1 segment to that connection (or the established one before any state
 *     record): [flags][seq sel][ack sel][len sel][opt sel][window:2]
 *     [seq raw:4][ack raw:4][data]. A sel byte picks a base (bits 4-6, from
 *     lwIP's live numbers: seq_base/ack_base) and an edge from it (bits 0-3,
 *     edge_off: 0, +-1, +-2, 2^31 and +-1, +-2 around it, -len and +-1,
 *     2^31-len, +-2^30); bit 7 adds the raw delta. Flags are the whole byte
 *     (ECE and CWR included). Payload (len sel bits 0-1): 0, 1, 2 bytes or
 *     many: the rest of the record if 3 bytes or more, else 3 + 23 * (len
 *     sel >> 2) bytes.
 *     Opt sel: bit 0 MSS (bits 2-4 pick 1460 536 100 1 0 65535 1200 8),
 *     bit 1 window scale (bits 5-6 pick 7 0 14 15), on any segment. Kind
 *     bits 1-2: sent 1-4 times; bits 4-5: in 1-3 mbuf segments.
 * A state record first in its input, with the default buffer and window,
 * must reach its state (abort otherwise); later ones may not after what
 * came before. At exit the harness prints
 * per state how many inputs reached it ("# states: ...") and how many
 * fuzzed segments met the connection in each state.
 *
 * After each input every connection is aborted, lwIP's ARP table and the
 * ARP guard's records emptied, and mbufs, pcbs, segments, pbufs and lwIP's
 * heap must be back at their baseline (abort() otherwise); then the
 * connection is made again. */
#include <stdint.h>
#include <string.h>

#include "lwip/etharp.h"
#include "lwip/udp.h"

#include "arp_guard.h"
#include "fuzz_common.h"

/* The MSS at the harness's MTU of 1500 (TCP_MSS is the jumbo maximum). */
#define FUZZ_MSS 1460

#define LPORT 80
#define UPORT 7777
#define PEER_PORT 40000
#define MAIN_ISN 0x7fff0000u /* the peer's, on the established connection */
#define CPORT 8081           /* a listener whose backlog (one) is full: SYNs get cookies */

enum { R_DONE, R_HOLD, R_ECHO_ZC, R_ECHO_COPY };
#define M_REFUSE 0x10
#define M_UDP_ECHO 0x20

static struct dpn_worker *w;
static struct dpn_listener *lis, *clis;
static struct dpn_udp *usock;
static struct fz_base base;
static uint8_t mode;
/* A state record is bringing its connection up: the application accepts
 * and leaves a half-closed connection alone, whatever the mode says. */
static bool setting_up;

/* Connections the application knows; [0] is the established one. */
#define TRACK 8
static struct dpn_conn *conns[TRACK];
/* Received buffers the application holds (recv mode 1). */
#define HOLD 64
static struct {
    struct dpn_conn *c;
    struct dpn_buf *b;
} held[HOLD];
static unsigned nheld;
/* The established connection's numbers, kept for templates after it ended. */
static uint32_t main_rcv_nxt, main_snd_nxt;

static uint8_t zeros[4 * 65536];

/* ---- the application ---- */

static void track(struct dpn_conn *c) {
    for (int i = 0; i < TRACK; i++)
        if (conns[i] == NULL) {
            conns[i] = c;
            return;
        }
}

/* c is gone (or the application let go of it). */
static void untrack(struct dpn_conn *c) {
    for (int i = 0; i < TRACK; i++)
        if (conns[i] == c)
            conns[i] = NULL;
    for (unsigned i = 0; i < nheld; i++)
        if (held[i].c == c)
            held[i].c = NULL;
}

static void release_held(void) {
    for (unsigned i = 0; i < nheld; i++) {
        if (held[i].c != NULL)
            dpn_recv_done(held[i].c, held[i].b);
        else
            dpn_buf_free(held[i].b);
    }
    nheld = 0;
}

static int on_accepted(void *ctx, struct dpn_conn *c) {
    (void)ctx;
    if ((mode & M_REFUSE) && !setting_up)
        return 1;
    track(c);
    return 0;
}

static void on_connected(void *ctx, struct dpn_conn *c, int err) {
    (void)ctx;
    if (err != 0)
        untrack(c);
}

static void on_recv(void *ctx, struct dpn_conn *c, struct dpn_buf *b) {
    (void)ctx;
    uint8_t first = 0;
    dpn_buf_copy(b, &first, 1, 0);
    if (first == 'A') {
        untrack(c);
        dpn_abort(c);
        dpn_buf_free(b);
        return;
    }
    if (first == 'C') {
        untrack(c);
        dpn_close_conn(c);
        dpn_buf_free(b);
        return;
    }
    switch (mode & 3) {
    case R_DONE:
        dpn_recv_done(c, b);
        break;
    case R_HOLD:
        if (nheld < HOLD) {
            held[nheld].c = c;
            held[nheld++].b = b;
        } else {
            dpn_recv_done(c, b);
        }
        break;
    case R_ECHO_ZC: { /* as echoserver: the mbufs go back out */
        size_t n = dpn_buf_len(b);
        if (dpn_send_buf(c, b) == 0)
            dpn_recved(c, n);
        else
            dpn_recv_done(c, b);
        break;
    }
    case R_ECHO_COPY: {
        uint8_t tmp[2048];
        size_t n = dpn_buf_copy(b, tmp, sizeof(tmp), 0);
        dpn_send(c, tmp, n);
        dpn_recv_done(c, b);
        break;
    }
    }
}

static void on_eof(void *ctx, struct dpn_conn *c) {
    (void)ctx;
    if (setting_up)
        return;
    switch ((mode >> 2) & 3) {
    case 0:
        untrack(c);
        dpn_close_conn(c);
        break;
    case 1:
        dpn_shutdown(c);
        break;
    case 2:
        break;
    case 3:
        untrack(c);
        dpn_abort(c);
        break;
    }
}

static void on_sent(void *ctx, struct dpn_conn *c, size_t len) {
    (void)ctx;
    (void)c;
    (void)len;
}

static void on_closed(void *ctx, struct dpn_conn *c, int err) {
    (void)ctx;
    (void)err;
    untrack(c);
}

static const struct dpn_tcp_ops ops = {
    .accepted = on_accepted,
    .connected = on_connected,
    .recv = on_recv,
    .eof = on_eof,
    .sent = on_sent,
    .closed = on_closed,
};

static void on_udp(void *ctx, struct dpn_udp *u, struct dpn_buf *b, uint32_t ip, uint16_t port) {
    (void)ctx;
    if ((mode & M_UDP_ECHO) && dpn_udp_sendto_buf(u, b, ip, port) == 0)
        return;
    dpn_buf_free(b);
}

/* ---- the simulated peer ---- */

static void inject(struct rte_mbuf *m) {
    if (m == NULL)
        FZ_DIE("out of mbufs while building a frame");
    dpn_rx_burst(w, &m, 1);
}

static struct tcp_pcb *find_pcb(uint16_t lport, uint16_t rport) {
    for (struct tcp_pcb *p = tcp_active_pcbs; p != NULL; p = p->next)
        if (p->local_port == lport && p->remote_port == rport)
            return p;
    return NULL;
}

/* The handshake of the established connection (as test_api.c's peer). */
static void establish(void) {
    const uint8_t opts[8] = {2, 4, 0x05, 0xb4, 1, 3, 3, 7}; /* MSS 1460, NOP, WS 7 */
    uint32_t isn = MAIN_ISN;
    inject(unit_tcp_frame(w->pool, &w->mac, UNIT_PEER_IP, UNIT_LOCAL_IP, PEER_PORT, LPORT, isn, 0,
                          RTE_TCP_SYN_FLAG, 65535, opts, sizeof(opts), NULL, 0));
    struct tcp_pcb *p = find_pcb(LPORT, PEER_PORT);
    if (p == NULL || p->state != SYN_RCVD)
        FZ_DIE("no SYN_RCVD pcb after the SYN");
    uint32_t ack = p->snd_nxt;
    unit_tx_drop(w);
    inject(unit_tcp_frame(w->pool, &w->mac, UNIT_PEER_IP, UNIT_LOCAL_IP, PEER_PORT, LPORT, isn + 1,
                          ack, RTE_TCP_ACK_FLAG, 65535, NULL, 0, NULL, 0));
    if (conns[0] == NULL || conns[0]->pcb == NULL || conns[0]->pcb->state != ESTABLISHED)
        FZ_DIE("the connection was not established");
    unit_tx_drop(w);
}

static void frame(const struct fz_rec *r) {
    uint8_t buf[2048 + RTE_ETHER_HDR_LEN];
    size_t len = 0;
    if (r->kind & 0x40) {
        struct rte_ether_hdr *eth = (struct rte_ether_hdr *)buf;
        rte_ether_addr_copy(&w->mac, &eth->dst_addr);
        rte_ether_addr_copy(&unit_peer_mac, &eth->src_addr);
        eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
        len = sizeof(*eth);
    }
    memcpy(buf + len, r->data, r->len);
    len += r->len;
    uint64_t ol = 0;
    if ((r->kind & 7) == 1)
        fz_fix_cksums(buf, len);
    else if ((r->kind & 7) == 2)
        ol = RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_GOOD;
    inject(fz_frame(w->pool, buf, len, ((r->kind >> 4) & 3) + 1u, ol));
}

static void tcp_template(const struct fz_rec *r) {
    uint8_t target = fz_byte(r, 0), flags = fz_byte(r, 1), optlen = fz_byte(r, 12) % 41;
    uint32_t dseq = fz_be32(r, 2), dack = fz_be32(r, 6);
    uint16_t win = fz_be16(r, 10);
    size_t hdr = 13;
    uint8_t opt[40] = {0};
    for (size_t i = 0; i < optlen; i++)
        opt[i] = fz_byte(r, hdr + i);
    size_t off = hdr + optlen, dlen = r->len > off ? r->len - off : 0;
    const uint8_t *data = dlen > 0 ? r->data + off : NULL;
    uint32_t sip = UNIT_PEER_IP, seq, ack;
    uint16_t sport, dport = LPORT;
    struct tcp_pcb *p = NULL;
    if (target == 0) {
        p = conns[0] != NULL ? conns[0]->pcb : NULL;
        sport = PEER_PORT;
        seq = (p != NULL ? p->rcv_nxt : main_rcv_nxt) + dseq;
        ack = (p != NULL ? p->snd_nxt : main_snd_nxt) + dack;
    } else if (target == 1) {
        p = tcp_active_pcbs;
        if (p == NULL)
            return;
        sip = lwip_ntohl(ip4_addr_get_u32(ip_2_ip4(&p->remote_ip)));
        sport = p->remote_port;
        dport = p->local_port;
        seq = p->rcv_nxt + dseq;
        ack = p->snd_nxt + dack;
    } else {
        sport = (uint16_t)(10000 + target);
        seq = dseq;
        ack = dack;
    }
    uint8_t f[RTE_ETHER_HDR_LEN + 20 + 60 + 2048];
    size_t len =
        fz_tcp(f, &w->mac, sip, sport, dport, seq, ack, flags, win, opt, optlen, data, dlen);
    inject(fz_frame(w->pool, f, len, 1, 0));
}

static void udp_datagram(const struct fz_rec *r) {
    uint16_t dport = fz_byte(r, 0) == 0 ? UPORT : (uint16_t)(UPORT + fz_byte(r, 0));
    size_t dlen = r->len > 1 ? r->len - 1 : 0;
    inject(unit_udp_frame(w->pool, &w->mac, UNIT_PEER_IP, UNIT_LOCAL_IP, 5353, dport,
                          dlen > 0 ? r->data + 1 : NULL, (unsigned)dlen));
}

static void app_call(const struct fz_rec *r) {
    struct dpn_conn *c = conns[fz_byte(r, 1) % TRACK];
    uint16_t arg = fz_be16(r, 2);
    switch (fz_byte(r, 0) % 9) {
    case 0:
        if (c != NULL)
            dpn_send(c, zeros, (size_t)arg * 4); /* up to 256 KiB */
        break;
    case 1: {
        if (c == NULL)
            break;
        struct dpn_buf *b = dpn_buf_alloc(w, arg % FUZZ_MSS + 1);
        if (b != NULL && dpn_send_buf(c, b) != 0)
            dpn_buf_free(b);
        break;
    }
    case 2:
        release_held();
        break;
    case 3:
        if (c != NULL)
            dpn_shutdown(c);
        break;
    case 4:
        if (c != NULL) {
            untrack(c);
            dpn_close_conn(c);
        }
        break;
    case 5:
        if (c != NULL) {
            untrack(c);
            dpn_abort(c);
        }
        break;
    case 6: {
        struct dpn_conn *nc = NULL;
        if (dpn_connect(w, UNIT_PEER_IP, arg == 0 ? 9 : arg, &ops, NULL, &nc) == 0)
            track(nc);
        break;
    }
    case 7:
        dpn_udp_sendto(usock, zeros, arg % 1500, UNIT_PEER_IP, 5353);
        break;
    case 8:
        if (c != NULL)
            dpn_recved(c, arg);
        break;
    }
}

/* lwIP's timers, called directly: deterministic, unlike the clock. */
static void timers(const struct fz_rec *r) {
    unsigned n = fz_byte(r, 0) + 1u;
    if (fz_byte(r, 1) & 0x80)
        n *= 16; /* long enough for retransmission timeouts and TIME_WAIT */
    for (unsigned i = 0; i < n; i++) {
        tcp_tmr();
        unit_tx_drop(w);
    }
    if (fz_byte(r, 1) & 1)
        etharp_tmr();
}

static void syn_flood(const struct fz_rec *r) {
    unsigned n = fz_be16(r, 0) % 300 + 1;
    for (unsigned i = 0; i < n; i++) {
        inject(unit_tcp_frame(w->pool, &w->mac, UNIT_PEER_IP + 10 + i % 7, UNIT_LOCAL_IP,
                              (uint16_t)(20000 + i), LPORT, i * 7919u, 0, RTE_TCP_SYN_FLAG, 1000,
                              NULL, 0, NULL, 0));
        unit_tx_drop(w);
    }
}

/* ---- a connection in each TCP state ---- */

enum { F_FIN = 0x01, F_SYN = 0x02, F_RST = 0x04, F_PSH = 0x08, F_ACK = 0x10 };

#define V_ACTIVE 0x01   /* we connect to the peer (else it connects to our listener) */
#define V_CLOSE 0x02    /* we close with dpn_close_conn (else dpn_shutdown) */
#define V_INFLIGHT 0x04 /* 1000 bytes of ours stay unacknowledged while they can */
#define V_PEERDATA 0x08 /* the peer sends data once established (300 bytes, or sv_data) */
#define V_NOOPT 0x10    /* SYNs without MSS and window scale */
#define V_COOKIE 0x80   /* the peer connects to CPORT, through a SYN cookie */
/* Bits 5-6, the way to TIME_WAIT: 1 through CLOSING, 2 straight from
 * FIN_WAIT_1 (a FIN acking ours), else through FIN_WAIT_2. */
#define V_TW_ROUTE(v) (((v) >> 5) & 3)

/* What a state record's byte picks, in the order they are printed. */
static const uint8_t targets[] = {SYN_SENT, SYN_RCVD,   ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2,
                                  CLOSING,  CLOSE_WAIT, LAST_ACK,    TIME_WAIT};
#define NTARGETS (sizeof(targets) / sizeof(targets[0]))
static const char *const state_name[] = {"CLOSED",      "LISTEN",     "SYN_SENT",   "SYN_RCVD",
                                         "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT",
                                         "CLOSING",     "LAST_ACK",   "TIME_WAIT",  "SYN_COOKIE"};
#define NSTATES (TIME_WAIT + 1)
/* Counted besides lwIP's states: a SYN cookie sent, no state kept (a state
 * record for SYN_RCVD with V_COOKIE). */
#define SYN_COOKIE NSTATES

/* The connection edge segments go to, with lwIP's numbers as last seen:
 * they stay when the pcb goes (TIME_WAIT lives in our own table, and a
 * reset connection still gets segments). */
static struct {
    uint16_t lport, rport;
    uint32_t isn; /* the peer's */
    uint32_t rcv_nxt, rcv_wnd, rcv_right, snd_nxt, lastack, snd_wnd, snd_wnd_max, snd_lbb;
} sv;
static uint16_t sv_win;  /* the peer's window field in the set-up */
static size_t sv_data;   /* with V_PEERDATA: how many bytes the peer sends */
static bool trace;       /* FUZZ_RX_TRACE=1: each edge segment on stderr, to read a crash */
static unsigned nstate;  /* state records in this input */
static uint32_t reached; /* states reached, bit per state */
static uint64_t st_inputs[NSTATES + 1], st_segs[NSTATES], n_inputs;

static struct tcp_pcb *sv_pcb(void) {
    return find_pcb(sv.lport, sv.rport);
}

static int sv_state(void) {
    struct tcp_pcb *p = sv_pcb();
    if (p != NULL)
        return p->state;
    return dpn_tw_has(w->tw, lwip_htonl(UNIT_PEER_IP), sv.rport, sv.lport) ? TIME_WAIT : CLOSED;
}

static void sv_refresh(void) {
    struct tcp_pcb *p = sv_pcb();
    if (p == NULL)
        return;
    /* Before the SYN-ACK nothing is known of the peer: its ISN stands in. */
    bool syn_sent = p->state == SYN_SENT;
    sv.rcv_nxt = syn_sent ? sv.isn : p->rcv_nxt;
    sv.rcv_wnd = p->rcv_wnd;
    sv.rcv_right = syn_sent ? sv.isn + p->rcv_wnd : p->rcv_ann_right_edge;
    sv.snd_nxt = p->snd_nxt;
    sv.lastack = p->lastack;
    sv.snd_wnd = p->snd_wnd;
    sv.snd_wnd_max = p->snd_wnd_max;
    sv.snd_lbb = p->snd_lbb;
}

/* A segment from the peer on sv's connection; what we answer is dropped. */
static void sv_send(uint8_t flags, uint32_t seq, uint32_t ack, uint16_t win, const uint8_t *opt,
                    size_t optlen, const uint8_t *data, size_t dlen, unsigned nseg) {
    uint8_t f[RTE_ETHER_HDR_LEN + 20 + 60 + 2048];
    bool had_pcb = sv_pcb() != NULL;
    size_t len = fz_tcp(f, &w->mac, UNIT_PEER_IP, sv.rport, sv.lport, seq, ack, flags, win, opt,
                        optlen, data, dlen);
    inject(fz_frame(w->pool, f, len, nseg, 0));
    dpn_tcp_flush_dirty(w);
    unit_tx_drop(w);
    if (sv_pcb() != NULL) {
        sv_refresh();
    } else if (had_pcb && sv_state() == TIME_WAIT) {
        /* The pcb went into our table: what it had then, near enough. */
        uint32_t end = seq + (uint32_t)dlen + !!(flags & F_SYN) + !!(flags & F_FIN);
        if ((int32_t)(end - sv.rcv_nxt) > 0)
            sv.rcv_nxt = end;
        sv.lastack = sv.snd_nxt;
    }
}

/* A well-formed segment of the set-up (no options, no data). */
static void sv_ctl(uint8_t flags, uint32_t ack) {
    sv_send(flags, sv.rcv_nxt, ack, sv_win, NULL, 0, NULL, 0, 1);
}

static void sv_flush(void) {
    dpn_tcp_flush_dirty(w);
    unit_tx_drop(w);
    sv_refresh();
}

/* Our side ends the connection as the variant says. */
static void we_close(uint8_t v) {
    struct tcp_pcb *p = sv_pcb();
    struct dpn_conn *c = p != NULL ? p->callback_arg : NULL;
    if (c == NULL)
        return;
    if (v & V_CLOSE) {
        untrack(c);
        dpn_close_conn(c);
    } else {
        dpn_shutdown(c);
    }
    sv_flush();
}

/* Our SYN-ACK to sv's peer among the frames not yet dropped: its ISN. */
static bool synack_seq(uint32_t *seq) {
    for (uint16_t i = 0; i < w->tx_n; i++) {
        struct unit_seg t;
        if (unit_parse(w->tx_pkts[i], IPPROTO_TCP, &t) && t.sport == sv.lport &&
            t.dport == sv.rport && (t.flags & (F_SYN | F_ACK)) == (F_SYN | F_ACK)) {
            *seq = t.seq;
            return true;
        }
    }
    return false;
}

/* The peer's SYN to CPORT, answered by a cookie: no state is kept. The
 * listener's one half-open connection (from port 29999) fills its backlog. */
static bool sv_cookie(const uint8_t *opt, size_t optlen) {
    struct tcp_pcb_listen *l = (struct tcp_pcb_listen *)clis->pcb;
    sv.lport = CPORT;
    if (l->accepts_pending < l->backlog)
        inject(unit_tcp_frame(w->pool, &w->mac, UNIT_PEER_IP, UNIT_LOCAL_IP, 29999, CPORT, 1, 0,
                              RTE_TCP_SYN_FLAG, 65535, NULL, 0, NULL, 0));
    unit_tx_drop(w);
    uint8_t f[RTE_ETHER_HDR_LEN + 20 + 60];
    size_t len = fz_tcp(f, &w->mac, UNIT_PEER_IP, sv.rport, sv.lport, sv.isn, 0, F_SYN, sv_win, opt,
                        optlen, NULL, 0);
    inject(fz_frame(w->pool, f, len, 1, 0));
    uint32_t cookie;
    bool ok = sv_pcb() == NULL && synack_seq(&cookie);
    unit_tx_drop(w);
    if (!ok)
        return false;
    sv.rcv_nxt = sv.isn + 1;
    sv.rcv_right = sv.rcv_nxt + 65535;
    sv.lastack = cookie;
    sv.snd_nxt = sv.snd_lbb = cookie + 1;
    return true;
}

/* The connection opened, in the state the variant leaves it: SYN_SENT
 * and SYN_RCVD come first on the way. True when ESTABLISHED (or the target
 * is reached earlier: *done). */
static bool sv_open(int target, uint8_t v, bool *done) {
    static const uint8_t syn_opts[8] = {2, 4, 0x05, 0xb4, 1, 3, 3, 7}; /* MSS 1460, WS 7 */
    const uint8_t *opt = (v & V_NOOPT) ? NULL : syn_opts;
    size_t optlen = (v & V_NOOPT) ? 0 : sizeof(syn_opts);
    if (target == SYN_SENT || ((v & V_ACTIVE) && target != SYN_RCVD)) {
        struct dpn_conn *c = NULL;
        if (dpn_connect(w, UNIT_PEER_IP, sv.rport, &ops, NULL, &c) != 0 || c->pcb == NULL)
            return false;
        track(c);
        sv.lport = c->pcb->local_port;
        sv_flush();
        if (sv_state() != SYN_SENT)
            return false;
        if ((*done = target == SYN_SENT))
            return true;
        sv_send(F_SYN | F_ACK, sv.isn, sv.snd_nxt, sv_win, opt, optlen, NULL, 0, 1);
    } else if (v & V_COOKIE) {
        if (!sv_cookie(opt, optlen))
            return false;
        if ((*done = target == SYN_RCVD))
            return true;
        sv_ctl(F_ACK, sv.snd_nxt);
    } else {
        sv_send(F_SYN, sv.isn, 0, sv_win, opt, optlen, NULL, 0, 1);
        if (sv_state() != SYN_RCVD)
            return false;
        if ((*done = target == SYN_RCVD))
            return true;
        sv_ctl(F_ACK, sv.snd_nxt);
    }
    return sv_state() == ESTABLISHED;
}

/* The peer acks what we sent until nothing is left unsent (the congestion
 * window holds back data, and our FIN behind it): the last flight, with
 * our FIN if we closed, stays unacknowledged. */
static void sv_drain(void) {
    struct tcp_pcb *p;
    for (int i = 0; i < 32 && (p = sv_pcb()) != NULL && p->unsent != NULL; i++)
        sv_ctl(F_ACK, sv.snd_nxt);
}

/* The peer's ACK in the set-up: everything we sent, or nothing new while
 * ours is to stay in flight. */
static uint32_t setup_ack(bool infl) {
    return infl ? sv.lastack : sv.snd_nxt;
}

/* Bring a fresh connection into target; true when lwIP (or our TIME_WAIT
 * table) says it got there. */
static bool sv_goto(int target, uint8_t v, uint32_t isn) {
    memset(&sv, 0, sizeof(sv));
    sv.lport = LPORT;
    sv.rport = (uint16_t)(30000 + nstate++);
    sv.isn = sv.rcv_nxt = isn;
    bool done = false;
    if (!sv_open(target, v, &done))
        return false;
    if (done)
        return true;
    bool infl = v & V_INFLIGHT;
    if (v & V_PEERDATA) {
        uint8_t d[FUZZ_MSS];
        memset(d, 'p', sizeof(d));
        for (size_t n = sv_data, k; n > 0; n -= k) {
            k = RTE_MIN(n, sizeof(d));
            sv_send(F_ACK | F_PSH, sv.rcv_nxt, setup_ack(infl), sv_win, NULL, 0, d, k, 1);
        }
    }
    if (infl) {
        struct tcp_pcb *p = sv_pcb();
        if (p != NULL && p->callback_arg != NULL)
            dpn_send(p->callback_arg, zeros, 1000);
        sv_flush();
    }
    if (target == ESTABLISHED)
        return sv_state() == ESTABLISHED;
    if (target == CLOSE_WAIT || target == LAST_ACK) {
        sv_ctl(F_FIN | F_ACK, setup_ack(infl));
        if (sv_state() != CLOSE_WAIT || target == CLOSE_WAIT)
            return sv_state() == target;
        we_close(v);
        return sv_state() == LAST_ACK;
    }
    we_close(v);
    if (sv_state() != FIN_WAIT_1 || target == FIN_WAIT_1)
        return sv_state() == target;
    unsigned route = target == TIME_WAIT ? V_TW_ROUTE(v) : 0;
    if (target == CLOSING || route == 1) {
        /* Simultaneous close: the peer's FIN acks all but ours. */
        sv_ctl(F_FIN | F_ACK, infl ? sv.lastack : sv.snd_nxt - 1);
        if (sv_state() != CLOSING || target == CLOSING)
            return sv_state() == target;
        sv_drain();
        sv_ctl(F_ACK, sv.snd_nxt);
    } else if (target == FIN_WAIT_2 || route != 2) {
        sv_drain();
        sv_ctl(F_ACK, sv.snd_nxt);
        if (sv_state() != FIN_WAIT_2 || target == FIN_WAIT_2)
            return sv_state() == target;
        sv_ctl(F_FIN | F_ACK, sv.snd_nxt);
    } else {
        sv_drain();
        sv_ctl(F_FIN | F_ACK, sv.snd_nxt);
    }
    return sv_state() == TIME_WAIT;
}

/* A state record: [state][variant][peer ISN:4][rcvbuf sel][window sel].
 * rcvbuf sel bits 0-2: the application's receive buffer (tcp.rcvbuf, what
 * a user may configure), bits 3-7: x 97 bytes the peer sends with
 * V_PEERDATA (0: 300); window sel bits 0-2: the peer's window field. */
static void state_record(const struct fz_rec *r, bool first) {
    static const uint32_t rcvbuf[8] = {0, 2920, 4096, 8192, 65535, 65536, 65537, 524288};
    static const uint16_t win[8] = {65535, 0, 1, 2, 100, 1000, 1460, 8192};
    int target = targets[fz_byte(r, 0) % NTARGETS];
    uint8_t v = fz_byte(r, 1), bsel = fz_byte(r, 6), wsel = fz_byte(r, 7);
    uint32_t cfg_rcvbuf = w->cfg.tcp_rcvbuf;
    if (rcvbuf[bsel & 7] != 0)
        w->cfg.tcp_rcvbuf = rcvbuf[bsel & 7]; /* taken when the connection opens */
    sv_data = (bsel >> 3) != 0 ? (bsel >> 3) * 97u : 300;
    sv_win = win[wsel & 7];
    setting_up = true;
    bool ok = sv_goto(target, v, fz_be32(r, 2));
    setting_up = false;
    w->cfg.tcp_rcvbuf = cfg_rcvbuf;
    if (target == SYN_RCVD && (v & (V_COOKIE | V_ACTIVE)) == V_COOKIE)
        target = SYN_COOKIE; /* and a state of CLOSED: none kept */
    if (trace)
        fprintf(stderr, "fuzz_rx: state %s variant 0x%02x isn 0x%08x rcvbuf %u window %u: %s\n",
                state_name[target], v, fz_be32(r, 2), rcvbuf[bsel & 7], sv_win,
                ok ? "reached" : state_name[sv_state()]);
    if (ok)
        reached |= 1u << target;
    else if (first && (bsel & 7) == 0 && (wsel & 7) == 0)
        /* From a clean worker, with room for every segment: a bug in the
         * stack or here. (A small window or buffer may keep the set-up's
         * FIN or data out.) */
        FZ_DIE("state record: %s (variant 0x%02x) not reached, the connection is in %s",
               state_name[target], v, state_name[sv_state()]);
}

/* Edges (bits 0-3 of a sel byte) from a base, given the segment's sequence
 * length (payload + SYN + FIN): the end of the segment at the base, etc. */
static uint32_t edge_off(uint8_t sel, uint32_t len) {
    const uint32_t h = 1u << 31, q = 1u << 30;
    const uint32_t k[16] = {0, 1, -1u, 2, -2u, h, h + 1, h - 1, h + 2, h - 2, 0, 1, -1u, h, q, -q};
    unsigned i = sel & 15;
    return k[i] - (i >= 10 && i <= 13 ? len : 0); /* 10-13: from the segment's end */
}

/* Bases (bits 4-6): the receive window's left and right edges (kept and
 * announced), the send side's SND.NXT, SND.UNA, RFC 5961's lowest
 * acceptable ACK (SND.UNA - MAX.SND.WND), the send window's right edge,
 * the end of what we buffered. 0 with the raw delta: any number. */
static uint32_t seq_base(uint8_t sel) {
    uint32_t b[8] = {sv.rcv_nxt,
                     sv.rcv_nxt + sv.rcv_wnd,
                     sv.rcv_right,
                     sv.rcv_nxt + 65535u,
                     sv.rcv_nxt - sv.rcv_wnd,
                     sv.isn,
                     0,
                     sv.rcv_nxt - 65535u};
    return b[(sel >> 4) & 7];
}

static uint32_t ack_base(uint8_t sel) {
    uint32_t b[8] = {sv.snd_nxt,
                     sv.lastack,
                     sv.lastack - sv.snd_wnd_max,
                     sv.lastack + sv.snd_wnd,
                     sv.snd_lbb,
                     sv.snd_nxt + 65535u,
                     0,
                     sv.lastack - 65535u};
    return b[(sel >> 4) & 7];
}

static void edge_segment(const struct fz_rec *r) {
    uint8_t flags = fz_byte(r, 0), ssel = fz_byte(r, 1), asel = fz_byte(r, 2), lsel = fz_byte(r, 3),
            osel = fz_byte(r, 4);
    const size_t hdr = 15;
    size_t rest = r->len > hdr ? r->len - hdr : 0, dlen = lsel & 3;
    if (dlen == 3)
        dlen = rest >= 3 ? rest : 3 + 23u * (lsel >> 2);
    uint8_t data[2048];
    size_t have = RTE_MIN(rest, dlen);
    if (have > 0)
        memcpy(data, r->data + hdr, have);
    memset(data + have, 'x', dlen - have);
    static const uint16_t mss_tab[8] = {1460, 536, 100, 1, 0, 65535, 1200, 8};
    static const uint8_t ws_tab[4] = {7, 0, 14, 15};
    uint8_t opt[8];
    size_t optlen = 0;
    if (osel & 1) {
        uint16_t mss = mss_tab[(osel >> 2) & 7];
        const uint8_t o[4] = {2, 4, (uint8_t)(mss >> 8), (uint8_t)mss};
        memcpy(opt + optlen, o, 4);
        optlen += 4;
    }
    if (osel & 2) {
        const uint8_t o[4] = {1, 3, 3, ws_tab[(osel >> 5) & 3]};
        memcpy(opt + optlen, o, 4);
        optlen += 4;
    }
    uint32_t len = (uint32_t)dlen + !!(flags & F_SYN) + !!(flags & F_FIN);
    uint32_t seq = seq_base(ssel) + edge_off(ssel, len) + ((ssel & 0x80) ? fz_be32(r, 7) : 0);
    uint32_t ack = ack_base(asel) + edge_off(asel, len) + ((asel & 0x80) ? fz_be32(r, 11) : 0);
    unsigned copies = ((r->kind >> 1) & 3) + 1u, nseg = ((r->kind >> 4) & 3) + 1u;
    if (trace)
        fprintf(stderr,
                "fuzz_rx: %s %u<-%u flags 0x%02x seq rcv_nxt%+" PRId32 " ack snd_nxt%+" PRId32
                " lastack%+" PRId32 " len %u win %u x%u\n",
                state_name[sv_state()], sv.lport, sv.rport, flags, (int32_t)(seq - sv.rcv_nxt),
                (int32_t)(ack - sv.snd_nxt), (int32_t)(ack - sv.lastack), len, fz_be16(r, 5),
                copies);
    for (unsigned i = 0; i < copies; i++) {
        st_segs[sv_state()]++;
        sv_send(flags, seq, ack, fz_be16(r, 5), opt, optlen, dlen > 0 ? data : NULL, dlen, nseg);
    }
}

/* At exit (libFuzzer's end of run): what the inputs reached. */
static void print_states(void) {
    if (n_inputs == 0)
        return;
    char line[512];
    int n = snprintf(line, sizeof(line), "# states:");
    for (size_t i = 0; i < NTARGETS; i++)
        n += snprintf(line + n, sizeof(line) - (size_t)n, " %s %" PRIu64, state_name[targets[i]],
                      st_inputs[targets[i]]);
    fprintf(stderr, "%s SYN_COOKIE %" PRIu64 " (inputs, of %" PRIu64 ")\n", line,
            st_inputs[SYN_COOKIE], n_inputs);
    n = snprintf(line, sizeof(line), "# fuzzed segments by state:");
    for (int s = 0; s < NSTATES; s++)
        if (s != LISTEN)
            n += snprintf(line + n, sizeof(line) - (size_t)n, " %s %" PRIu64, state_name[s],
                          st_segs[s]);
    fprintf(stderr, "%s\n", line);
    /* Segments header prediction took (tcp_fast.c): the fuzzer reaches it too. */
    fprintf(stderr, "# fast path: %" PRIu64 " segments in, %" PRIu64 " out\n", w->st.tcp_fast,
            w->st.tcp_fast_out);
}

/* ---- libFuzzer ---- */

static void reset(void) {
    release_held();
    fz_tcp_abort_all(w);
    etharp_cleanup_netif(&w->netif);
    dpn_arp_guard_clear(); /* its records would outlive lwIP's (and decide the next input) */
    memset(conns, 0, sizeof(conns));
    fz_base_check(w, &base);
    mode = 0;
    fz_learn_peer(w);
    establish();
    main_rcv_nxt = conns[0]->pcb->rcv_nxt;
    main_snd_nxt = conns[0]->pcb->snd_nxt;
    memset(&sv, 0, sizeof(sv));
    sv.lport = LPORT;
    sv.rport = PEER_PORT;
    sv.isn = MAIN_ISN;
    sv_refresh();
    nstate = 0;
    reached = 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    w = fz_init("fuzz_rx");
    if (dpn_listen(w, LPORT, &ops, NULL, &lis) != 0 ||
        dpn_listen(w, CPORT, &ops, NULL, &clis) != 0 ||
        dpn_udp_bind(w, UPORT, on_udp, NULL, &usock) != 0)
        FZ_DIE("cannot listen on %u and %u or bind %u", LPORT, CPORT, UPORT);
    tcp_backlog_set(clis->pcb, 1);
    fz_base_take(w, &base);
    reset();
    atexit(print_states);
    trace = getenv("FUZZ_RX_TRACE") != NULL;
    return 0;
}

static void run_record(const struct fz_rec *r, bool first) {
    if ((r->kind & 0x88) == 0x80) {
        if (r->kind & 1)
            edge_segment(r);
        else
            state_record(r, first);
        return;
    }
    switch (r->kind & 7) {
    case 0:
    case 1:
    case 2:
        frame(r);
        break;
    case 3:
        tcp_template(r);
        break;
    case 4:
        udp_datagram(r);
        break;
    case 5:
        app_call(r);
        break;
    case 6:
        timers(r);
        break;
    case 7:
        syn_flood(r);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    mode = data[0];
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    struct fz_rec r;
    for (unsigned i = 0; fz_next(&p, &n, &r); i++) {
        run_record(&r, i == 0);
        if (conns[0] != NULL && conns[0]->pcb != NULL) {
            main_rcv_nxt = conns[0]->pcb->rcv_nxt;
            main_snd_nxt = conns[0]->pcb->snd_nxt;
        }
        /* The end of a poll iteration: writes go out (and are dropped). */
        dpn_tcp_flush_dirty(w);
        unit_tx_drop(w);
        sv_refresh();
    }
    n_inputs++;
    for (int s = 0; s <= SYN_COOKIE; s++)
        st_inputs[s] += (reached >> s) & 1;
    reset();
    return 0;
}
