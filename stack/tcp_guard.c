/* The TCP input guard: every segment of a known connection passes the
 * segment acceptability test of RFC 793 section 3.9 (as Linux's
 * tcp_sequence) and the checks of RFC 5961 before lwIP processes it.
 *
 * lwIP 2.1.3 tests sequence numbers with wrapped window comparisons in
 * several places, and a segment far from the window can pass one of them
 * and trip an assertion further on (tcp_receive's "insane offset!" for a
 * segment 2^31 away). Here every test is an offset from RCV.NXT, so what
 * lwIP sees overlaps its window: a segment starts at most its own length
 * before RCV.NXT (under 64 KiB) and at most a window after it.
 *
 * Called by lwIP's LWIP_HOOK_TCP_INPACKET_PCB, after tcp_input verified the
 * checksum, parsed the header and found the pcb: ERR_OK lets lwIP go on,
 * anything else drops the segment. docs/lwip-asserts.md says which of
 * lwIP's assertions this keeps out of reach. */
#include "lwip/priv/tcp_priv.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"

#include "dpnet.h"
#include "lwip_hooks.h"
#include "tcp_pcbs.h"

#define OOW_MIN_MS 500         /* per connection, as Linux's tcp_invalid_ratelimit */
#define CHALLENGE_PER_SEC 1000 /* per worker, as Linux's tcp_challenge_ack_limit */

static uint32_t challenge_sec, challenge_n;
/* lwIP is one instance per process, and so are these counters. */
static struct dpn_stats guard_st;

static struct dpn_stats *stats(void) {
    return &guard_st;
}

void dpn_tcp_guard_stats(struct dpn_stats *st) {
    st->tcp_unacceptable = guard_st.tcp_unacceptable;
    st->tcp_bad_ack = guard_st.tcp_bad_ack;
    st->tcp_challenged = guard_st.tcp_challenged;
    st->tcp_acks_limited = guard_st.tcp_acks_limited;
}

/* At most one answer per connection every OOW_MIN_MS: a peer cannot make
 * us loop ACKs with it, or flood someone else with our answers. */
static bool oow_allowed(const struct tcp_pcb *pcb, uint32_t now) {
    struct dpn_pcb_ext *x = dpn_pcbs_ext(pcb);
    if (x == NULL)
        return true;
    if (x->oow_sent && now - x->oow_ms < OOW_MIN_MS)
        return false;
    x->oow_sent = true;
    x->oow_ms = now;
    return true;
}

/* An ACK with our current numbers. Data segments are always answered (the
 * peer is retransmitting what we already have, or probing a closed
 * window); empty ones at most every OOW_MIN_MS (Linux's
 * tcp_oow_rate_limited), and challenge ACKs also within a per-worker
 * budget (RFC 5961 section 7). */
static void answer(struct tcp_pcb *pcb, bool data, bool challenge) {
    uint32_t now = sys_now();
    if (!data && !oow_allowed(pcb, now)) {
        stats()->tcp_acks_limited++;
        return;
    }
    if (challenge) {
        if (now / 1000 != challenge_sec) {
            challenge_sec = now / 1000;
            challenge_n = 0;
        }
        if (++challenge_n > CHALLENGE_PER_SEC) {
            stats()->tcp_acks_limited++;
            return;
        }
    }
    tcp_send_empty_ack(pcb);
}

/* What the peer may send: up to the larger of the window lwIP has and the
 * right edge it announced last. */
static uint32_t rcv_window(const struct tcp_pcb *pcb) {
    uint32_t wnd = pcb->rcv_wnd;
    uint32_t ann = pcb->rcv_ann_right_edge - pcb->rcv_nxt;
    return (int32_t)ann > (int32_t)wnd ? ann : wnd;
}

static bool synchronized(enum tcp_state s) {
    return s != SYN_RCVD;
}

static bool fin_received(enum tcp_state s) {
    return s == CLOSE_WAIT || s == CLOSING || s == LAST_ACK;
}

/* SYN_SENT (RFC 793): an ACK of anything but our SYN is answered by a RST
 * and dropped, an ACK of it without SYN only dropped. lwIP would also
 * retransmit its SYN on each, and every retransmission counts towards
 * TCP_SYNMAXRTX: four spoofed ACKs would kill the connect. */
static err_t syn_sent(struct tcp_pcb *pcb, u8_t fl, uint32_t seq, uint32_t ack, uint32_t len) {
    if (!(fl & TCP_ACK) || (fl & TCP_RST) || ((fl & TCP_SYN) && ack == pcb->snd_nxt))
        return ERR_OK;
    stats()->tcp_bad_ack++;
    if (ack != pcb->snd_nxt) {
        if (oow_allowed(pcb, sys_now()))
            tcp_rst(pcb, ack, seq + len, &pcb->local_ip, &pcb->remote_ip, pcb->local_port,
                    pcb->remote_port);
        else
            stats()->tcp_acks_limited++;
    }
    return ERR_ABRT;
}

err_t dpn_tcp_inpacket(struct tcp_pcb *pcb, const struct tcp_hdr *h, const struct pbuf *p) {
    enum tcp_state s = pcb->state;
    /* LISTEN has lwIP's rules (and SYN cookies before it, tcp_cookie.c);
     * TIME_WAIT lives in tcp_tw.c. */
    if (s == LISTEN || s == TIME_WAIT || s == CLOSED)
        return ERR_OK;
    u8_t fl = TCPH_FLAGS(h);
    uint32_t seq = h->seqno, ack = h->ackno; /* host order by now */
    /* lwIP's sequence length: one for SYN and FIN together. */
    uint32_t len = p->tot_len + ((fl & (TCP_SYN | TCP_FIN)) != 0);
    bool data = p->tot_len > 0;
    if (s == SYN_SENT)
        return syn_sent(pcb, fl, seq, ack, len);

    /* 1. Acceptability (RFC 793 3.9; Linux tcp_sequence). */
    if ((int32_t)(seq + len - pcb->rcv_nxt) < 0 ||
        (int32_t)(seq - (pcb->rcv_nxt + rcv_window(pcb))) > 0) {
        stats()->tcp_unacceptable++;
        if (!(fl & TCP_RST))
            answer(pcb, data && !(fl & TCP_SYN), false);
        return ERR_ABRT;
    }
    /* 2. RST: only the exact one resets (RFC 5961 section 3.2). */
    if (fl & TCP_RST) {
        if (seq == pcb->rcv_nxt)
            return ERR_OK;
        stats()->tcp_challenged++;
        answer(pcb, false, true);
        return ERR_ABRT;
    }
    /* 3. SYN: a retransmitted SYN in SYN_RCVD gets lwIP's SYN-ACK again;
     * any other is challenged (RFC 5961 section 4). */
    if (fl & TCP_SYN) {
        if (s == SYN_RCVD && (fl & ~TCP_PSH) == TCP_SYN && !data && seq + 1 == pcb->rcv_nxt)
            return ERR_OK;
        stats()->tcp_challenged++;
        answer(pcb, false, true);
        return ERR_ABRT;
    }
    /* 4. "If the ACK bit is off drop the segment" (RFC 793). */
    if (!(fl & TCP_ACK)) {
        stats()->tcp_bad_ack++;
        return ERR_ABRT;
    }
    /* 5. SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.NXT (RFC 5961 section
     * 5.2); in SYN_RCVD lwIP answers a bad ACK with a RST (RFC 793). */
    if (synchronized(s) && ((int32_t)(ack - pcb->snd_nxt) > 0 ||
                            (int32_t)(ack - (pcb->lastack - pcb->snd_wnd_max)) < 0)) {
        stats()->tcp_bad_ack++;
        answer(pcb, false, true);
        return ERR_ABRT;
    }
    /* 6. After the peer's FIN nothing new can come from it. */
    if (fin_received(s) && (int32_t)(seq + len - pcb->rcv_nxt) > 0) {
        stats()->tcp_unacceptable++;
        answer(pcb, false, false);
        return ERR_ABRT;
    }
    dpn_pcbs_segment(pcb); /* its out-of-order queue is counted after input */
    return ERR_OK;
}
