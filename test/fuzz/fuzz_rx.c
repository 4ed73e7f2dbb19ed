/* libFuzzer harness of a worker's receive path: arbitrary Ethernet frames
 * through dpn_rx_burst (checksum decision, zero-copy wrap, SYN guard) into
 * lwIP and back out through our TCP/UDP glue (stack/tcp.c, stack/udp.c),
 * with a listener on TCP port 80, an established connection to it from the
 * simulated peer 10.0.0.1:40000 and a UDP socket on port 7777. What the
 * worker transmits is dropped.
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
 * After each input every connection is aborted, lwIP's ARP table emptied,
 * and mbufs, pcbs, segments, pbufs and lwIP's heap must be back at their
 * baseline (abort() otherwise); then the connection is made again. */
#include <stdint.h>
#include <string.h>

#include "lwip/etharp.h"
#include "lwip/udp.h"

#include "fuzz_common.h"

#define LPORT 80
#define UPORT 7777
#define PEER_PORT 40000

enum { R_DONE, R_HOLD, R_ECHO_ZC, R_ECHO_COPY };
#define M_REFUSE 0x10
#define M_UDP_ECHO 0x20

static struct dpn_worker *w;
static struct dpn_listener *lis;
static struct dpn_udp *usock;
static struct fz_base base;
static uint8_t mode;

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
    if (mode & M_REFUSE)
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
    uint32_t isn = 0x7fff0000u;
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
        struct dpn_buf *b = dpn_buf_alloc(w, arg % TCP_MSS + 1);
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

/* ---- libFuzzer ---- */

static void reset(void) {
    release_held();
    fz_tcp_abort_all(w);
    etharp_cleanup_netif(&w->netif);
    memset(conns, 0, sizeof(conns));
    fz_base_check(w, &base);
    mode = 0;
    fz_learn_peer(w);
    establish();
    main_rcv_nxt = conns[0]->pcb->rcv_nxt;
    main_snd_nxt = conns[0]->pcb->snd_nxt;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    w = fz_init("fuzz_rx");
    if (dpn_listen(w, LPORT, &ops, NULL, &lis) != 0 ||
        dpn_udp_bind(w, UPORT, on_udp, NULL, &usock) != 0)
        FZ_DIE("cannot listen on %u or bind %u", LPORT, UPORT);
    fz_base_take(w, &base);
    reset();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    mode = data[0];
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    struct fz_rec r;
    while (fz_next(&p, &n, &r)) {
        switch (r.kind & 7) {
        case 0:
        case 1:
        case 2:
            frame(&r);
            break;
        case 3:
            tcp_template(&r);
            break;
        case 4:
            udp_datagram(&r);
            break;
        case 5:
            app_call(&r);
            break;
        case 6:
            timers(&r);
            break;
        case 7:
            syn_flood(&r);
            break;
        }
        if (conns[0] != NULL && conns[0]->pcb != NULL) {
            main_rcv_nxt = conns[0]->pcb->rcv_nxt;
            main_snd_nxt = conns[0]->pcb->snd_nxt;
        }
        /* The end of a poll iteration: writes go out (and are dropped). */
        dpn_tcp_flush_dirty(w);
        unit_tx_drop(w);
    }
    reset();
    return 0;
}
