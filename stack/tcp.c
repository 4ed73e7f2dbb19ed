/* TCP connections of the public API on top of lwIP's raw API.
 *
 * A struct dpn_conn wraps one tcp_pcb and comes from a fixed array (no
 * allocation per connection). lwIP calls back with the conn as its arg.
 * Rules lwIP imposes and this file keeps:
 *  - a callback whose pcb was aborted inside it must return ERR_ABRT;
 *  - once lwIP reports an error the pcb is already gone;
 *  - data referenced by zero-copy writes must live until acknowledged, even
 *    after the application closed the connection. */
#include <string.h>

#include <rte_cycles.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

#include "abi.h"
#include "buf.h"
#include "lwip_hooks.h"
#include "tcp_tw.h"
#include "trace.h"
#include "worker.h"

/* The pcb whose callback is running, and whether the application aborted
 * it from inside that callback (lwIP needs ERR_ABRT then). */
static struct tcp_pcb *cb_pcb;
static bool cb_aborted;
static bool cb_closed; /* ... or closed it (the pcb lives on, closing) */

static int map_err(err_t e, bool connecting) {
    switch (e) {
    case ERR_RST:
        return connecting ? -DPN_ECONNREFUSED : -DPN_ECONNRESET;
    case ERR_ABRT:
        /* lwIP aborts on retransmission timeouts; our own aborts detach
         * first and never get here. */
        return -DPN_ETIMEDOUT;
    case ERR_CLSD: /* LAST_ACK's end: both sides closed, in order */
        return connecting ? -DPN_ENOTCONN : 0;
    case ERR_MEM:
        return -DPN_ENOMEM;
    case ERR_RTE:
        return -DPN_EHOSTUNREACH;
    case ERR_USE:
        return -DPN_EADDRINUSE;
    default:
        return -DPN_ECONNABORTED;
    }
}

#define DPN_LINGER_MS 5000
static err_t lw_poll_linger(void *arg, struct tcp_pcb *pcb);

/* A lingering close waited this long for the peer's FIN: then a plain
 * close (lwIP's FIN_WAIT_2 timeout ends it; more data gets RST). In
 * lwIP's slow timer ticks (2 * TCP_TMR_INTERVAL). */
#define LINGER_TICKS (DPN_LINGER_MS / (2 * TCP_TMR_INTERVAL))
_Static_assert(LINGER_TICKS > 0 && LINGER_TICKS < 256, "tcp_poll takes a u8_t interval");

/* ---- connection objects ---- */

static struct dpn_conn *conn_alloc(struct dpn_worker *w) {
    struct dpn_conn *c = w->conn_free;
    if (c == NULL)
        return NULL;
    w->conn_free = c->next;
    memset(c, 0, sizeof(*c));
    c->w = w;
    c->since_tsc = rte_rdtsc();
    c->next = w->conn_open;
    if (w->conn_open != NULL)
        w->conn_open->prev = c;
    w->conn_open = c;
    w->st.conns_open++;
    w->st.conns_total++;
    return c;
}

/* Inside an iteration, freeing what the peer acknowledged can wait until
 * the answer it came with went out: on an echo server, the ACK of the last
 * answer arrives with the next request, and freeing its mbuf first (pbuf,
 * mbuf and pool) delayed every answer. */
void dpn_later_pbuf(struct dpn_worker *w, struct pbuf *p) {
    if (w->in_poll && w->later_n < DPN_LATER)
        w->later[w->later_n++] = p;
    else
        pbuf_free(p);
}

void dpn_later_seg(struct dpn_worker *w, struct tcp_seg *seg) {
    if (w->in_poll && w->later_segs_n < DPN_LATER) {
        seg->next = w->later_segs;
        w->later_segs = seg;
        w->later_segs_n++;
    } else {
        tcp_seg_free(seg);
    }
}

void dpn_later_release(struct dpn_worker *w) {
    for (uint16_t i = 0; i < w->later_n; i++)
        pbuf_free(w->later[i]);
    w->later_n = 0;
    tcp_segs_free(w->later_segs);
    w->later_segs = NULL;
    w->later_segs_n = 0;
}

static void zc_release(struct dpn_conn *c, bool all) {
    while (c->zc_head != NULL && (all || c->zc_head->zc_end <= c->acked)) {
        struct dpn_pbuf *b = c->zc_head;
        c->zc_head = b->zc_next;
        dpn_later_pbuf(c->w, &b->pc.pbuf);
    }
    if (c->zc_head == NULL)
        c->zc_tail = NULL;
}

/* Data held for a paused reader (dpn_read_stop): a list of the chains
 * lwIP delivered, linked tail to head (each chain's tot_len still covers
 * only itself: pbuf tot_len is 16 bits, a window is more). */
static void hold(struct dpn_conn *c, struct pbuf *p) {
    struct pbuf *last = p;
    while (last->next != NULL)
        last = last->next;
    if (c->held == NULL)
        c->held = p;
    else
        c->held_tail->next = p;
    c->held_tail = last;
}

static struct pbuf *held_pop(struct dpn_conn *c) {
    struct pbuf *p = c->held, *q = p;
    u32_t left = p->tot_len;
    while (q->len < left && q->next != NULL) {
        left -= q->len;
        q = q->next;
    }
    c->held = q->next;
    q->next = NULL;
    if (c->held == NULL)
        c->held_tail = NULL;
    return p;
}

static void held_free(struct dpn_conn *c) {
    while (c->held != NULL)
        pbuf_free(held_pop(c));
    c->held_eof = c->held_end = false;
}

static void resume_unlink(struct dpn_conn *c) {
    struct dpn_conn **pp = &c->w->resume;
    while (*pp != NULL && *pp != c)
        pp = &(*pp)->resume_next;
    if (*pp == c)
        *pp = c->resume_next;
    c->resume_queued = false;
}

static void conn_free(struct dpn_conn *c) {
    struct dpn_worker *w = c->w;
    zc_release(c, true);
    held_free(c);
    if (c->resume_queued)
        resume_unlink(c);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conn_open = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->pcb = NULL;
    c->ops = NULL;
    c->prev = NULL;
    c->next = w->conn_free;
    w->conn_free = c;
    w->st.conns_open--;
}

/* ---- lwIP callbacks ---- */

static err_t lw_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err);
static err_t lw_sent(void *arg, struct tcp_pcb *pcb, u16_t len);
static void lw_err(void *arg, err_t err);

/* The connection's pcb stops calling us; data still arriving is discarded. */
static void pcb_detach(struct tcp_pcb *pcb) {
    tcp_arg(pcb, NULL);
    tcp_sent(pcb, NULL);
    tcp_err(pcb, NULL);
    tcp_poll(pcb, NULL, 0);
}

static void pcb_setup(struct dpn_conn *c, struct tcp_pcb *pcb) {
    const struct dpn_config *cfg = &c->w->cfg;
    c->pcb = pcb;
    tcp_arg(pcb, c);
    tcp_recv(pcb, lw_recv);
    tcp_sent(pcb, lw_sent);
    tcp_err(pcb, lw_err);
    tcp_nagle_disable(pcb); /* ping-pong latency: never hold a small segment back */
    if (pcb->snd_buf > cfg->tcp_sndbuf)
        pcb->snd_buf = (tcpwnd_size_t)cfg->tcp_sndbuf;
}

/* Established: apply the configured receive buffer. Nothing beyond 64 KiB
 * has been announced yet (SYN windows are never scaled), so lowering the
 * announced window and its right edge too retracts nothing the peer saw. */
static void apply_rcvbuf(struct dpn_conn *c) {
    struct tcp_pcb *pcb = c->pcb;
    tcpwnd_size_t want = (tcpwnd_size_t)c->w->cfg.tcp_rcvbuf;
    if (pcb->rcv_wnd <= want)
        return;
    pcb->rcv_wnd = want;
    if (pcb->rcv_ann_wnd > want) {
        pcb->rcv_ann_wnd = want;
        pcb->rcv_ann_right_edge = pcb->rcv_nxt + want;
    }
}

#define CALLBACK_BEGIN(pcb)                                                                        \
    do {                                                                                           \
        cb_pcb = (pcb);                                                                            \
        cb_aborted = false;                                                                        \
        cb_closed = false;                                                                         \
    } while (0)
#define CALLBACK_END() (cb_pcb = NULL, cb_aborted ? ERR_ABRT : ERR_OK)

static void discard(struct tcp_pcb *pcb, struct pbuf *p) {
    tcp_recved(pcb, p->tot_len);
    pbuf_free(p);
}

/* The connection has ended in order (both FINs, ours after dpn_shutdown):
 * closed(0), then it is gone. */
static void end_orderly(struct dpn_conn *c) {
    c->dead = true;
    if (c->ops->closed != NULL)
        c->ops->closed(c->ctx, c, 0);
    conn_free(c);
}

/* Both FINs exchanged after dpn_shutdown, and lwIP needs none of our
 * zero-copy data any more: it frees the pcb at TIME_WAIT's end without
 * telling us (LAST_ACK's end calls lw_err). In CLOSING our FIN, and maybe
 * data lwIP references in place, is not acknowledged yet: lw_sent ends it
 * once it is. */
static bool fins_done(const struct dpn_conn *c, const struct tcp_pcb *pcb) {
    return pcb->state == TIME_WAIT || (pcb->state == CLOSING && c->zc_head == NULL);
}

/* Data (p) or the peer's FIN (NULL) to the application. Returns what lwIP
 * must hear; cb_aborted or cb_closed say c is gone. */
static err_t deliver(struct dpn_conn *c, struct tcp_pcb *pcb, struct pbuf *p) {
    CALLBACK_BEGIN(pcb);
    if (p == NULL) {
        if (c->ops->eof != NULL)
            c->ops->eof(c->ctx, c);
        else
            dpn_close_conn(c); /* no half-close handler: close our side too */
        c->peer_fin = true;
        if (!cb_aborted && !cb_closed && (c->held_end || (pcb != NULL && fins_done(c, pcb)))) {
            if (c->pcb != NULL)
                pcb_detach(c->pcb);
            c->pcb = NULL;
            end_orderly(c);
            cb_closed = true; /* gone */
        }
    } else if (c->ops->recv != NULL) {
        DPN_TRACE(c->w, DPN_T_APP_IN);
        c->ops->recv(c->ctx, c, (struct dpn_buf *)p);
        DPN_TRACE(c->w, DPN_T_APP_OUT);
    } else if (pcb != NULL) {
        discard(pcb, p);
    } else {
        pbuf_free(p);
    }
    return CALLBACK_END();
}

static err_t lw_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err) {
    struct dpn_conn *c = arg;
    (void)err;
    if (c == NULL || c->app_closed) {
        if (p != NULL)
            discard(pcb, p);
        return ERR_OK;
    }
    /* Paused, or held data not yet delivered: keep the order. The window
     * stays closed by what is held until the application gives it back. */
    if (c->read_paused || c->held != NULL || c->held_eof) {
        if (p != NULL) {
            hold(c, p);
        } else {
            c->held_eof = true;
            if (fins_done(c, pcb)) { /* lwIP frees the pcb by itself: let go now */
                c->held_end = true;
                pcb_detach(pcb);
                c->pcb = NULL;
            }
        }
        return ERR_OK;
    }
    return deliver(c, pcb, p);
}

static err_t lw_sent(void *arg, struct tcp_pcb *pcb, u16_t len) {
    struct dpn_conn *c = arg;
    if (c == NULL)
        return ERR_OK;
    c->acked += len;
    zc_release(c, false);
    if (c->app_closed) {
        if (c->zc_head == NULL) { /* the last zero-copy data acked: let go, linger on */
            pcb_detach(pcb);
            if (pcb->state == FIN_WAIT_1 || pcb->state == FIN_WAIT_2)
                tcp_poll(pcb, lw_poll_linger, LINGER_TICKS);
            conn_free(c);
        }
        return ERR_OK;
    }
    /* CLOSING -> TIME_WAIT, or the last zero-copy data acked in CLOSING:
     * the orderly end deliver() left for us. */
    bool ending = (c->peer_fin || c->held_eof) && fins_done(c, pcb);
    if (ending && c->held_eof) { /* paused: closed(0) after the held eof */
        c->held_end = true;
        pcb_detach(pcb);
        c->pcb = NULL;
        return ERR_OK;
    }
    if (c->ops->sent == NULL && !ending)
        return ERR_OK;
    CALLBACK_BEGIN(pcb);
    if (c->ops->sent != NULL)
        c->ops->sent(c->ctx, c, len);
    if (ending && !cb_aborted && !cb_closed) {
        pcb_detach(pcb);
        c->pcb = NULL;
        end_orderly(c);
    }
    return CALLBACK_END();
}

static void lw_err(void *arg, err_t err) {
    struct dpn_conn *c = arg;
    if (c == NULL)
        return;
    c->pcb = NULL; /* lwIP freed it already */
    if (!c->app_closed) {
        int e = map_err(err, c->connecting);
        held_free(c); /* a reset ends the stream: what was held is not delivered */
        c->dead = true;
        if (c->connecting && c->ops->connected != NULL)
            c->ops->connected(c->ctx, c, e);
        else if (!c->connecting && c->ops->closed != NULL)
            c->ops->closed(c->ctx, c, e);
    }
    conn_free(c);
}

/* DPDK 22.11's net_tap takes a TSO frame only if its segments fit the MTU
 * with their Ethernet header (port.c): with TSO on there, the segments we
 * send are 14 bytes shorter than the MSS, so that lwIP's segments are the
 * ones on the wire and a run of them can join (tx.c). */
static void tso_clamp_mss(struct dpn_conn *c) {
    const struct dpn_port_caps *k = &c->w->caps;
    u16_t most = (u16_t)(k->mtu - 40 - RTE_ETHER_HDR_LEN);
    if (k->tx_tso_l2 && k->mtu > 576 && c->pcb->mss > most)
        c->pcb->mss = most;
}

static err_t lw_connected(void *arg, struct tcp_pcb *pcb, err_t err) {
    struct dpn_conn *c = arg;
    (void)err; /* always ERR_OK in lwIP 2.1; failures go to lw_err */
    c->connecting = false;
    apply_rcvbuf(c);
    tso_clamp_mss(c);
    if (c->ops->connected == NULL)
        return ERR_OK;
    CALLBACK_BEGIN(pcb);
    c->ops->connected(c->ctx, c, 0);
    return CALLBACK_END();
}

static err_t lw_accept(void *arg, struct tcp_pcb *newpcb, err_t err) {
    struct dpn_listener *l = arg;
    if (err != ERR_OK || newpcb == NULL)
        return ERR_VAL;
    struct dpn_conn *c = conn_alloc(l->w);
    if (c == NULL) {
        tcp_abort(newpcb); /* all connection slots in use: refuse cleanly */
        return ERR_ABRT;
    }
    c->ops = l->ops;
    c->ctx = l->ctx;
    pcb_setup(c, newpcb);
    apply_rcvbuf(c);
    tso_clamp_mss(c);
    CALLBACK_BEGIN(newpcb);
    int keep = l->ops->accepted != NULL ? l->ops->accepted(l->ctx, c) : 0;
    cb_pcb = NULL;
    if (cb_aborted)
        return ERR_ABRT;
    if (cb_closed)
        return ERR_OK; /* closed from accepted(): c is gone, the FIN is on its way */
    if (keep != 0) {
        pcb_detach(newpcb);
        conn_free(c);
        tcp_abort(newpcb);
        return ERR_ABRT;
    }
    return ERR_OK;
}

/* A close that lwIP could not start for lack of memory is retried here. */
static err_t lw_poll_close(void *arg, struct tcp_pcb *pcb) {
    struct dpn_conn *c = arg;
    if (tcp_close(pcb) != ERR_OK)
        return ERR_OK;
    if (c != NULL && c->zc_head == NULL) {
        pcb_detach(pcb);
        conn_free(c);
    } else {
        tcp_poll(pcb, NULL, 0);
    }
    return ERR_OK;
}

/* ---- public API ---- */

int dpn_listen(struct dpn_worker *w, uint16_t port, const struct dpn_tcp_ops *ops, void *ctx,
               struct dpn_listener **lp) {
    if (w == NULL || ops == NULL || lp == NULL || port == 0)
        return -DPN_EINVAL;
    struct dpn_listener *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return -DPN_ENOMEM;
    struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
    if (pcb == NULL) {
        free(l);
        return -DPN_ENOMEM;
    }
    err_t e = tcp_bind(pcb, IP4_ADDR_ANY, port);
    if (e != ERR_OK) {
        tcp_close(pcb);
        free(l);
        return e == ERR_USE ? -DPN_EADDRINUSE : -DPN_EINVAL;
    }
    /* Attached: the port is the host's, dpnetd decides who gets it. */
    int rc = w->env->bind(w, DPN_PROTO_TCP, port, true);
    if (rc != 0) {
        tcp_close(pcb);
        free(l);
        return rc;
    }
    struct tcp_pcb *lpcb = tcp_listen_with_backlog(pcb, TCP_DEFAULT_LISTEN_BACKLOG);
    if (lpcb == NULL) {
        tcp_close(pcb);
        free(l);
        return -DPN_ENOMEM;
    }
    l->pcb = lpcb;
    l->w = w;
    l->ops = ops;
    l->ctx = ctx;
    tcp_arg(lpcb, l);
    tcp_accept(lpcb, lw_accept);
    *lp = l;
    return 0;
}

void dpn_unlisten(struct dpn_listener *l) {
    if (l == NULL)
        return;
    l->w->env->unbind(l->w, DPN_PROTO_TCP, l->pcb->local_port);
    tcp_arg(l->pcb, NULL);
    tcp_accept(l->pcb, NULL);
    tcp_close(l->pcb); /* a listening pcb closes at once and cannot fail */
    free(l);
}

/* Bind an outgoing connection's local port ourselves, not in lwIP: a port
 * whose connection to the same peer is in TIME_WAIT is skipped while one
 * of the next few is free, else the oldest of them is reused (ports go
 * round in order) and its TIME_WAIT ends -- as Linux's tcp_tw_reuse, and
 * safe because our ISNs grow with time (RFC 6528). */
static int bind_ephemeral(struct dpn_worker *w, struct tcp_pcb *pcb, uint32_t rip, uint16_t rport) {
    unsigned n = w->env->eph_span; /* our environment's ephemeral ports (env.h) */
    uint16_t reuse = 0;
    for (unsigned i = 0; i < n; i++) {
        uint16_t p = w->env->eph_port(w);
        if (dpn_tw_has(w->tw, rip, rport, p)) {
            if (reuse == 0)
                reuse = p;
        } else if (tcp_bind(pcb, IP4_ADDR_ANY, p) == ERR_OK) {
            return 0;
        }
        if (reuse != 0 && (i >= 7 || i + 1 == n)) {
            if (tcp_bind(pcb, IP4_ADDR_ANY, reuse) == ERR_OK) {
                dpn_tw_end(w->tw, rip, rport, reuse);
                return 0;
            }
            reuse = 0;
        }
    }
    return -1;
}

int dpn_connect(struct dpn_worker *w, uint32_t ip, uint16_t port, const struct dpn_tcp_ops *ops,
                void *ctx, struct dpn_conn **cp) {
    if (w == NULL || ops == NULL || ip == 0 || port == 0)
        return -DPN_EINVAL;
    struct dpn_conn *c = conn_alloc(w);
    if (c == NULL)
        return -DPN_ENOMEM;
    struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
    if (pcb == NULL) {
        conn_free(c);
        return -DPN_ENOMEM;
    }
    c->ops = ops;
    c->ctx = ctx;
    c->connecting = true;
    pcb_setup(c, pcb);
    if (bind_ephemeral(w, pcb, lwip_htonl(ip), port) != 0) {
        pcb_detach(pcb);
        tcp_abort(pcb);
        conn_free(c);
        return -DPN_EADDRINUSE;
    }
    if (w->env->eph_used != NULL)
        w->env->eph_used(w, DPN_PROTO_TCP, pcb->local_port);
    ip_addr_t dst;
    ip_addr_set_ip4_u32(&dst, lwip_htonl(ip));
    err_t e = tcp_connect(pcb, &dst, port, lw_connected);
    if (e != ERR_OK) {
        pcb_detach(pcb);
        tcp_abort(pcb);
        conn_free(c);
        return map_err(e, true);
    }
    if (cp != NULL)
        *cp = c;
    return 0;
}

void dpn_conn_set_ctx(struct dpn_conn *c, void *ctx) {
    c->ctx = ctx;
}

void dpn_listener_set_ctx(struct dpn_listener *l, void *ctx) {
    l->ctx = ctx;
}

void *dpn_listener_ctx(const struct dpn_listener *l) {
    return l->ctx;
}

void dpn_conn_local(const struct dpn_conn *c, uint32_t *ip, uint16_t *port) {
    if (c->pcb == NULL) {
        *ip = 0;
        *port = 0;
        return;
    }
    *ip = lwip_ntohl(ip4_addr_get_u32(ip_2_ip4(&c->pcb->local_ip)));
    *port = c->pcb->local_port;
}

uint64_t dpn_conn_written(const struct dpn_conn *c) {
    return c->written;
}

uint64_t dpn_conn_acked(const struct dpn_conn *c) {
    return c->acked;
}

/* ---- liveness: keepalive, idle timeout ---- */

int dpn_conn_keepalive(struct dpn_conn *c, uint32_t idle_ms, uint32_t interval_ms, uint32_t count) {
    if (c == NULL || c->pcb == NULL || c->app_closed || c->dead)
        return -DPN_EINVAL;
    if (idle_ms == 0) {
        c->pcb->so_options &= (u8_t)~SOF_KEEPALIVE;
        return 0;
    }
    if (interval_ms == 0 || count == 0)
        return -DPN_EINVAL;
    /* lwIP ends the connection (lw_err: closed with -DPN_ETIMEDOUT) after
     * count probes without an answer. */
    c->pcb->keep_idle = idle_ms;
    c->pcb->keep_intvl = interval_ms;
    c->pcb->keep_cnt = count;
    c->pcb->so_options |= SOF_KEEPALIVE;
    return 0;
}

/* lwIP's slow timer polls us; pcb->tmr is the tick of the last segment the
 * peer sent (data or ACK). */
static err_t lw_poll_idle(void *arg, struct tcp_pcb *pcb) {
    struct dpn_conn *c = arg;
    if (c == NULL || c->idle_ms == 0 || c->app_closed)
        return ERR_OK;
    if ((uint64_t)(u32_t)(tcp_ticks - pcb->tmr) * (2 * TCP_TMR_INTERVAL) < c->idle_ms)
        return ERR_OK;
    c->dead = true;
    if (c->ops->closed != NULL)
        c->ops->closed(c->ctx, c, -DPN_ETIMEDOUT);
    pcb_detach(pcb);
    tcp_recv(pcb, NULL);
    tcp_abort(pcb);
    c->pcb = NULL;
    conn_free(c);
    return ERR_ABRT;
}

int dpn_conn_idle_timeout(struct dpn_conn *c, uint32_t ms) {
    if (c == NULL || c->pcb == NULL || c->app_closed || c->dead)
        return -DPN_EINVAL;
    c->idle_ms = ms;
    uint32_t ticks = ms / (2 * TCP_TMR_INTERVAL) / 4; /* looked at 4 times per timeout */
    tcp_poll(c->pcb, ms == 0 ? NULL : lw_poll_idle,
             (u8_t)(ticks < 1     ? 1
                    : ticks > 255 ? 255
                                  : ticks));
    return 0;
}

/* ---- reading: pause and resume ---- */

int dpn_read_stop(struct dpn_conn *c) {
    if (c == NULL || c->app_closed || c->dead)
        return -DPN_EINVAL;
    c->read_paused = true;
    return 0;
}

int dpn_read_start(struct dpn_conn *c) {
    if (c == NULL || c->app_closed || c->dead)
        return -DPN_EINVAL;
    c->read_paused = false;
    /* What was held goes to recv() from the loop, never from inside this
     * call: no callback runs before a dpn_* call returns. */
    if ((c->held != NULL || c->held_eof) && !c->resume_queued) {
        c->resume_queued = true;
        c->resume_next = c->w->resume;
        c->w->resume = c;
    }
    return 0;
}

/* One resumed connection: its held chains, then its FIN, while it stays
 * unpaused and open. */
static void resume_one(struct dpn_conn *c) {
    while (!c->read_paused && c->held != NULL) {
        if (deliver(c, c->pcb, held_pop(c)) == ERR_ABRT || cb_closed)
            return; /* c is gone (closed or aborted from its callback) */
    }
    if (!c->read_paused && c->held == NULL && c->held_eof) {
        c->held_eof = false;
        deliver(c, c->pcb, NULL);
    }
}

void dpn_tcp_resume(struct dpn_worker *w) {
    while (w->resume != NULL) {
        struct dpn_conn *c = w->resume;
        w->resume = c->resume_next;
        c->resume_queued = false;
        if (c->ops != NULL && !c->app_closed)
            resume_one(c);
    }
}

void *dpn_conn_ctx(const struct dpn_conn *c) {
    return c->ctx;
}

void dpn_conn_peer(const struct dpn_conn *c, uint32_t *ip, uint16_t *port) {
    if (c->pcb == NULL) {
        *ip = 0;
        *port = 0;
        return;
    }
    *ip = lwip_ntohl(ip4_addr_get_u32(ip_2_ip4(&c->pcb->remote_ip)));
    *port = c->pcb->remote_port;
}

/* Ask for tcp_output at the end of this poll iteration (one flush for many
 * writes), or now when the list is full. */
static void mark_dirty(struct dpn_conn *c) {
    struct dpn_worker *w = c->w;
    if (c->dirty)
        return;
    if (w->dirty_n == DPN_DIRTY_MAX) {
        tcp_output(c->pcb);
        return;
    }
    c->dirty = true;
    w->dirty[w->dirty_n++] = c;
}

void dpn_tcp_flush_dirty(struct dpn_worker *w) {
    for (uint16_t i = 0; i < w->dirty_n; i++) {
        struct dpn_conn *c = w->dirty[i];
        /* A conn freed (and maybe reused) since it was marked: harmless. */
        if (c->dirty && c->pcb != NULL)
            tcp_output(c->pcb);
        c->dirty = false;
    }
    w->dirty_n = 0;
}

static bool can_send(const struct dpn_conn *c) {
    if (c == NULL || c->pcb == NULL || c->app_closed)
        return false;
    enum tcp_state s = c->pcb->state;
    return s == ESTABLISHED || s == CLOSE_WAIT;
}

size_t dpn_send_space(const struct dpn_conn *c) {
    if (!can_send(c))
        return 0;
    /* Bounded by bytes and by lwIP's queue of segments. */
    if (c->pcb->snd_queuelen >= TCP_SND_QUEUELEN - 8)
        return 0;
    return c->pcb->snd_buf; /* tcp_sndbuf() caps at 64 KiB */
}

/* tcp.send_zc: dpn_send copies pieces of at least DPN_ZC_MIN bytes into
 * mbufs that lwIP then references (the dpn_send_buf path, below) until the
 * peer acks them, and tx.c sends each in its own mbuf: one copy, where
 * lwIP's heap takes the bytes and the frame a second copy. */

void dpn_send_mbufs_refill(struct dpn_worker *w, unsigned pool_free) {
    /* Sent data waits for its ACK, and ACKs arrive in mbufs of the same
     * pool: half of it stays for receiving and headers, whatever is in
     * flight. dpnetd's pool (attached) serves several workers: a quarter
     * of what is above the half each tick. */
    unsigned half = w->pool->size / 2;
    unsigned above = pool_free > half ? pool_free - half : 0;
    w->send_mbufs = w->att != NULL ? above / 4 : above;
}

static int send_buf(struct dpn_conn *c, struct pbuf *p);

/* The data tcp_write puts in each new segment (its mss_local; no options:
 * timestamps are off, lwipopts.h). */
static size_t seg_size(const struct tcp_pcb *pcb) {
    u16_t mss = LWIP_MIN(pcb->mss, TCPWND_MIN16(pcb->snd_wnd_max / 2));
    return mss != 0 ? mss : pcb->mss;
}

/* Room left in the last unsent segment: tcp_write fills it first, so a
 * buffer written now would be split over two segments. */
static size_t unsent_room(const struct tcp_pcb *pcb) {
    const struct tcp_seg *last = pcb->unsent_tail != NULL ? pcb->unsent_tail : pcb->unsent;
    if (last == NULL)
        return 0;
    while (last->next != NULL)
        last = last->next;
    size_t mss = seg_size(pcb);
    return last->len < mss ? mss - last->len : 0;
}

/* One segment's worth of data, copied into an mbuf that lwIP references
 * until the peer acks it, so that the frame goes out in that mbuf (tx.c):
 * returns the bytes taken, 0 when this way does not apply now (too short,
 * over the budget, a partly filled segment first, no room), or a negative
 * DPN_E* when the connection ended. */
static long send_in_mbuf(struct dpn_conn *c, const char *data, size_t len) {
    struct dpn_worker *w = c->w;
    if (!w->send_zc || len < DPN_ZC_MIN || w->send_mbufs == 0 || unsent_room(c->pcb) != 0)
        return 0;
    size_t n = RTE_MIN(len, seg_size(c->pcb));
    struct dpn_buf *b = dpn_buf_alloc(w, n);
    if (b == NULL)
        return 0;
    memcpy(dpn_buf_mut(b), data, n);
    int rc = send_buf(c, (struct pbuf *)b);
    if (rc != 0) {
        dpn_buf_free(b);
        return rc == -DPN_EAGAIN ? 0 : rc;
    }
    w->send_mbufs--;
    return (long)n;
}

/* Copied into lwIP's own buffers: what fits of len, or only what fills the
 * last unsent segment when the rest can go in mbufs. Returns the bytes
 * taken (0: no room) or a negative DPN_E*. */
static long send_copied(struct dpn_conn *c, const char *data, size_t len) {
    size_t n = RTE_MIN(len, dpn_send_space(c));
    if (c->w->send_zc && len >= DPN_ZC_MIN && c->w->send_mbufs > 0) {
        size_t fill = unsent_room(c->pcb);
        if (fill > 0 && len - RTE_MIN(fill, len) >= DPN_ZC_MIN)
            n = RTE_MIN(n, fill);
        else if (fill == 0 && n < RTE_MIN(len, seg_size(c->pcb)) && c->pcb->unacked != NULL)
            return 0; /* a partial copy would break the pieces after it; ACKs are due */
    }
    n = RTE_MIN(n, (size_t)0xffff); /* tcp_write takes a u16_t */
    if (n == 0)
        return 0;
    err_t e = tcp_write(c->pcb, data, (u16_t)n, TCP_WRITE_FLAG_COPY);
    if (e == ERR_MEM)
        return 0;
    if (e != ERR_OK)
        return -DPN_ENOTCONN;
    c->written += n;
    mark_dirty(c);
    return (long)n;
}

long dpn_send(struct dpn_conn *c, const void *data, size_t len) {
    if (!can_send(c))
        return c == NULL ? -DPN_EINVAL : -DPN_ENOTCONN;
    if (data == NULL && len > 0)
        return -DPN_EINVAL;
    size_t done = 0;
    while (done < len) {
        const char *d = (const char *)data + done;
        long k = send_in_mbuf(c, d, len - done);
        if (k == 0)
            k = send_copied(c, d, len - done);
        if (k < 0)
            return done > 0 ? (long)done : k;
        if (k == 0)
            break;
        done += (size_t)k;
        if (!can_send(c))
            break;
    }
    if (done == 0)
        return len == 0 ? 0 : -DPN_EAGAIN;
    return (long)done;
}

long dpn_sendv(struct dpn_conn *c, const struct dpn_iov *iov, unsigned n) {
    if (iov == NULL && n > 0)
        return -DPN_EINVAL;
    long done = 0;
    for (unsigned i = 0; i < n; i++) {
        if (iov[i].len == 0)
            continue;
        long k = dpn_send(c, iov[i].base, iov[i].len);
        if (k < 0)
            return done > 0 ? done : k;
        done += k;
        if ((size_t)k < iov[i].len)
            break; /* the send buffer is full: the rest is the caller's */
    }
    return done;
}

/* The mbuf whose bytes tcp_write is referencing now (one worker per
 * process): the hook below tags the reference pbufs it makes with it, and
 * the TX path sends those bytes in place (tx.c). */
static struct rte_mbuf *write_src;

void dpn_tcp_write_ref(struct pbuf *p) {
    if (write_src != NULL) {
        p->flags |= DPN_PBUF_FLAG_ZC;
        p->dpn_src = write_src;
    }
}

/* Queue every segment of a chain. Callers checked the room first, so a
 * failure cannot happen; if it does, abort rather than send a hole. */
static int write_chain(struct dpn_conn *c, struct pbuf *p, u8_t flags) {
    for (struct pbuf *q = p; q != NULL; q = q->next) {
        if (q->len == 0)
            continue;
        write_src = flags & TCP_WRITE_FLAG_COPY ? NULL : dpn_pbuf_mbuf(q);
        err_t e = tcp_write(c->pcb, q->payload, q->len, flags);
        write_src = NULL;
        if (e != ERR_OK) { /* the abort frees lwIP's references: p stays the caller's */
            dpn_abort(c);
            return -DPN_ECONNABORTED;
        }
    }
    c->written += p->tot_len;
    mark_dirty(c);
    return 0;
}

/* A chain lwIP allocated (not mbuf-backed): copy it, all or nothing. */
static int send_copy_whole(struct dpn_conn *c, struct pbuf *p) {
    if (p->tot_len > dpn_send_space(c))
        return -DPN_EAGAIN;
    int rc = write_chain(c, p, TCP_WRITE_FLAG_COPY);
    if (rc == 0)
        pbuf_free(p);
    return rc;
}

int dpn_send_buf(struct dpn_conn *c, struct dpn_buf *b) {
    struct pbuf *p = (struct pbuf *)b;
    if (!can_send(c))
        return c == NULL || p == NULL ? -DPN_EINVAL : -DPN_ENOTCONN;
    if (p == NULL)
        return -DPN_EINVAL;
    return send_buf(c, p);
}

/* p is the stack's once this returns 0, else still the caller's. */
static int send_buf(struct dpn_conn *c, struct pbuf *p) {
    if (dpn_pbuf_mbuf(p) == NULL)
        return send_copy_whole(c, p);
    /* All or nothing: check room for every segment first (each MSS-sized
     * piece costs lwIP a header pbuf plus a reference pbuf). */
    u16_t segs = 0;
    for (struct pbuf *q = p; q != NULL; q = q->next)
        segs = (u16_t)(segs + 2 * (q->len / c->pcb->mss + 1));
    if (p->tot_len > c->pcb->snd_buf || (u32_t)c->pcb->snd_queuelen + segs >= TCP_SND_QUEUELEN)
        return -DPN_EAGAIN;
    int rc = write_chain(c, p, 0); /* no copy flag: lwIP references the mbuf's bytes */
    if (rc != 0)
        return rc;
    struct dpn_pbuf *dp = (struct dpn_pbuf *)p;
    dp->zc_next = NULL;
    dp->zc_end = c->written;
    if (c->zc_tail != NULL)
        c->zc_tail->zc_next = dp;
    else
        c->zc_head = dp;
    c->zc_tail = dp;
    return 0;
}

void dpn_recved(struct dpn_conn *c, size_t len) {
    if (c == NULL || c->pcb == NULL || c->app_closed)
        return;
    while (len > 0) {
        u16_t n = len > 0xffff ? 0xffff : (u16_t)len;
        tcp_recved(c->pcb, n);
        len -= n;
    }
}

void dpn_recv_done(struct dpn_conn *c, struct dpn_buf *b) {
    struct pbuf *p = (struct pbuf *)b;
    if (p == NULL)
        return;
    dpn_recved(c, p->tot_len);
    if (c != NULL)
        dpn_later_pbuf(c->w, p); /* in a recv callback: after the answer went out */
    else
        pbuf_free(p);
}

int dpn_shutdown(struct dpn_conn *c) {
    if (!can_send(c))
        return c == NULL ? -DPN_EINVAL : -DPN_ENOTCONN;
    err_t e = tcp_shutdown(c->pcb, 0, 1);
    if (e != ERR_OK)
        return map_err(e, false);
    mark_dirty(c);
    return 0;
}

static err_t lw_poll_linger(void *arg, struct tcp_pcb *pcb) {
    (void)arg; /* detached: NULL */
    if (tcp_close(pcb) == ERR_OK)
        tcp_poll(pcb, NULL, 0);
    return ERR_OK;
}

/* Close our side. Established: FIN after what is queued, and the peer's
 * data is read and dropped until its FIN (or DPN_LINGER_MS), so late data
 * is not answered by RST (lwIP resets a fully closed pcb that receives
 * data: RFC 1122 4.2.2.13). */
static void close_pcb(struct dpn_conn *c, struct tcp_pcb *pcb) {
    /* Unread would only mean buffers the application holds or a window
     * lowered by rcvbuf: the peer's data was delivered. */
    pcb->rcv_wnd = TCP_WND_MAX(pcb);
    bool keep = c->zc_head != NULL; /* zero-copy data in flight keeps c attached until acked */
    if (!keep)
        pcb_detach(pcb);
    bool linger = pcb->state == ESTABLISHED || pcb->state == SYN_RCVD;
    if (linger && tcp_shutdown(pcb, 0, 1) == ERR_OK) {
        if (!keep)
            tcp_poll(pcb, lw_poll_linger, LINGER_TICKS);
    } else if (tcp_close(pcb) != ERR_OK) {
        tcp_poll(pcb, lw_poll_close, 1); /* out of memory for the FIN: retry */
    }
    if (!keep)
        conn_free(c);
}

void dpn_close_conn(struct dpn_conn *c) {
    if (c == NULL || c->app_closed || c->dead)
        return;
    c->app_closed = true;
    held_free(c);
    struct tcp_pcb *pcb = c->pcb;
    if (pcb != NULL && pcb == cb_pcb)
        cb_closed = true;
    if (pcb == NULL) {
        if (c->resume_queued)
            cb_closed = true; /* a resumed delivery stops here */
        conn_free(c);
        return;
    }
    close_pcb(c, pcb);
}

static void abort_conn(struct dpn_conn *c) {
    struct tcp_pcb *pcb = c->pcb;
    if (pcb != NULL) {
        pcb_detach(pcb);
        tcp_recv(pcb, NULL);
        if (pcb == cb_pcb)
            cb_aborted = true;
        tcp_abort(pcb);
    }
    conn_free(c);
}

void dpn_abort(struct dpn_conn *c) {
    if (c == NULL || c->dead || c->app_closed)
        return;
    abort_conn(c);
}

void dpn_tcp_close_all(struct dpn_worker *w, bool abort) {
    struct dpn_conn *c = w->conn_open, *next;
    for (; c != NULL; c = next) {
        next = c->next;
        if (abort)
            abort_conn(c);
        else if (!c->app_closed)
            dpn_close_conn(c);
    }
}

/* ---- listing (dpnetctl conns): set-up path, never per packet ---- */

static uint32_t ticks_ms(uint32_t ticks) {
    return ticks * (uint32_t)(TCP_TMR_INTERVAL * 2); /* lwIP's slow timer: 2 TCP_TMR_INTERVALs */
}

void dpn_tcp_list(const struct dpn_worker *w, struct dpn_conns *out, uint32_t seq) {
    uint32_t n = 0, total = 0;
    uint64_t now = rte_rdtsc();
    for (struct tcp_pcb_listen *l = tcp_listen_pcbs.listen_pcbs; l != NULL; l = l->next, total++) {
        if (n == DPN_CONNS_MAX)
            continue;
        struct dpn_conn_info *e = &out->c[n++];
        memset(e, 0, sizeof(*e));
        e->lip = ip4_addr_get_u32(&l->local_ip);
        e->lport = l->local_port;
        e->state = (uint8_t)l->state;
    }
    for (const struct tcp_pcb *p = tcp_active_pcbs; p != NULL; p = p->next, total++) {
        if (n == DPN_CONNS_MAX)
            continue;
        struct dpn_conn_info *e = &out->c[n++];
        memset(e, 0, sizeof(*e));
        e->lip = ip4_addr_get_u32(&p->local_ip);
        e->rip = ip4_addr_get_u32(&p->remote_ip);
        e->lport = p->local_port;
        e->rport = p->remote_port;
        e->state = (uint8_t)p->state;
        e->snd_queue = p->snd_lbb - p->lastack;
        /* Received and not yet read: the window closed by it, and what
         * lwIP holds back for the application. */
        uint32_t rcvbuf = w->cfg.tcp_rcvbuf;
        e->rcv_queue = (p->rcv_wnd < rcvbuf ? rcvbuf - p->rcv_wnd : 0) +
                       (p->refused_data != NULL ? p->refused_data->tot_len : 0);
        e->srtt_ms = p->sa >= 0 ? ticks_ms((uint32_t)(p->sa >> 3)) : 0;
        e->rto_ms = p->rto >= 0 ? ticks_ms((uint32_t)p->rto) : 0;
        e->cwnd = p->cwnd;
        e->ssthresh = p->ssthresh;
        e->retrans = p->nrtx;
        /* A connection the application has: its dpn_conn knows its age
         * (before the handshake ends, the argument is the listener's). */
        const struct dpn_conn *c = p->callback_arg;
        if ((uintptr_t)c >= (uintptr_t)w->conns &&
            (uintptr_t)c < (uintptr_t)(w->conns + w->nconns) && c->pcb == p)
            e->age_ms = (uint32_t)((now - c->since_tsc) / w->tsc_per_ms);
    }
    out->n = n;
    out->total = total;
    out->time_wait = dpn_tw_count(w->tw);
    __atomic_store_n(&out->seq, seq, __ATOMIC_RELEASE);
}
