/* Retransmission time-out policy for lwIP's connections.
 *
 * A lost segment at the tail of a flight (the echo of a request, the last
 * segment of a response) draws no duplicate ACKs: only the RTO recovers
 * it. Under 5% loss each way (test/integration/t_loss_tail.sh), dpnet's
 * worst 64 B round trip took 1.7-9.1 s where Linux's took 0.7-1.5 s:
 *
 * 1. lwIP starts every connection at SRTT 0, RTTVAR 750 ms (sa 0, sv 60
 *    ticks: RTO 3 s) and feeds the first measurements into Van Jacobson's
 *    update, which takes off a quarter of the variance per sample: on a LAN
 *    the RTO goes 2.25 s, 1.7 s, 1.3 s, ... and reaches 150 ms after a dozen
 *    round trips; a loss in those first round trips waits seconds. RFC 6298
 *    (2.2) sets SRTT = R and RTTVAR = R/2 at the first measurement R;
 *    before any (an active open: lwIP takes none from the handshake) the
 *    RTO is 1 s (RFC 6298 2.1), not 3 s.
 * 2. lwIP times a segment with rttest = tcp_ticks and reads 0 as "nothing
 *    timed", and tcp_ticks is 0 until its TCP timer first runs: the first
 *    connections of a process take no sample in their first 50 ms (some
 *    hundred round trips on a LAN) and keep the 3 s RTO, 6 s when doubled.
 * 3. lwIP retries a SYN every 3 s without back-off and a SYN-ACK from a 3 s
 *    RTO. RFC 6298 (2.1, 5.5): 1 s, doubled per retry (Linux: 1, 2, 4 s).
 *    8192 connects at once over memif lose some SYNs or SYN-ACKs to full
 *    rings; each loss cost a 3 s round.
 * 4. lwIP doubles the RTO from the first retransmission: k losses in a row
 *    cost 1, 3, 7, 15 x RTO. Linux sends a tail loss probe first (RFC 8985)
 *    and backs off from there: 1, 2, 4, 8 x. Here the first retransmission
 *    is that probe: the time-out after it is not doubled. (lwIP gives up
 *    after TCP_MAXRTX retransmissions, so this halves the time a dead peer
 *    takes to detect: ~19 s instead of ~38 s on a LAN.)
 *
 * Applied from the worker loop right after each of lwIP's slow timer ticks
 * (50 ms), where lwIP compares pcb->rto with the retransmission timer: one
 * walk of the active pcbs, as lwIP's own tcp_slowtmr does, nothing per
 * packet, lwIP unchanged. The 50 ms tick stays the RTO's granularity, and
 * RTTs under a tick still give lwIP's RTO of 3 ticks (100-150 ms). */
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

#include "tcp_rto.h"

/* Set on a pcb once its estimator has been initialised here. lwIP only ever
 * sets and clears its own TF_ bits (tcp_alloc zeroes the rest). */
#define TF_DPN_RTT_INIT 0x8000U
_Static_assert(sizeof(tcpflags_t) >= 2, "tcpflags_t has room for TF_DPN_RTT_INIT");
_Static_assert(((TF_ACK_DELAY | TF_ACK_NOW | TF_INFR | TF_CLOSEPEND | TF_RXCLOSED | TF_FIN |
                 TF_NODELAY | TF_NAGLEMEMERR | 0x0100U | 0x0200U | 0x0400U | TF_RTO | 0x1000U) &
                TF_DPN_RTT_INIT) == 0,
               "TF_DPN_RTT_INIT is not one of lwIP's flags");

#define SV0 (3000 / TCP_SLOW_INTERVAL)      /* tcp_alloc: sa 0, sv = rto = 3 s */
#define RTO_INIT (1000 / TCP_SLOW_INTERVAL) /* RFC 6298 (2.1): 1 s before any sample */
#define SV_MIN 3      /* where lwIP's update settles when RTTs are under a tick */
#define BACKOFF_MAX 7 /* tcp_backoff[]'s largest shift (x 128) */
#define R_MAX 4095    /* sa holds 8 x SRTT in an s16 */

static int no_sample(const struct tcp_pcb *pcb) {
    return pcb->sa == 0 && pcb->sv == SV0;
}

/* RFC 6298 (2.2) from lwIP's estimator as it stands. After exactly one
 * sample m lwIP holds sa = m, sv = SV0 - SV0/4 + m; after more, sa >> 3 is
 * its SRTT (several samples in one tick mean RTTs under a tick). */
static void rtt_init(struct tcp_pcb *pcb) {
    int r = pcb->sv - pcb->sa == SV0 - SV0 / 4 ? pcb->sa : pcb->sa >> 3;
    r = r < 0 ? 0 : r > R_MAX ? R_MAX : r;
    pcb->sa = (s16_t)(r << 3);
    pcb->sv = (s16_t)(2 * r > SV_MIN ? 2 * r : SV_MIN);
    tcp_set_flags(pcb, TF_DPN_RTT_INIT);
}

/* An active open: lwIP times the SYN but takes no sample from the SYN-ACK
 * (it would time the SYN to the first ACK of data). Take it here, at most
 * a tick late: too long, never too short. */
static void syn_sample(struct tcp_pcb *pcb) {
    if (pcb->rttest == 0 || pcb->rtseq + 1 != pcb->lastack)
        return;
    int r = (int)(tcp_ticks - pcb->rttest);
    pcb->rttest = 0;
    pcb->sa = (s16_t)(r < 0 ? 0 : r > R_MAX ? R_MAX : r); /* what lwIP's first sample gives */
    pcb->sv = (s16_t)(SV0 - SV0 / 4 + pcb->sa);
}

void dpn_tcp_rto_apply(struct tcp_pcb *pcb) {
    if (pcb->state == SYN_SENT || pcb->state == SYN_RCVD) { /* 3. above */
        pcb->rto = (s16_t)(RTO_INIT << (pcb->nrtx < BACKOFF_MAX ? pcb->nrtx : BACKOFF_MAX));
        return;
    }
    if (pcb->state < ESTABLISHED || pcb->state == TIME_WAIT)
        return;
    if (!(pcb->flags & TF_DPN_RTT_INIT)) {
        if (no_sample(pcb))
            syn_sample(pcb);
        if (!no_sample(pcb))
            rtt_init(pcb);
    }
    int base = no_sample(pcb) ? RTO_INIT : (pcb->sa >> 3) + pcb->sv;
    /* lwIP: base << nrtx after the nrtx-th retransmission; here one less. */
    int shift = pcb->nrtx == 0 ? 0 : pcb->nrtx - 1;
    int rto = base << (shift < BACKOFF_MAX ? shift : BACKOFF_MAX);
    pcb->rto = (s16_t)(rto < 0x7fff ? rto : 0x7fff);
}

void dpn_tcp_rto_tick(void) {
    static u32_t last_tick; /* one lwIP instance per process */
    /* rttest 0 means nothing timed: tcp_ticks must never be 0 (2. above). */
    if (tcp_ticks == 0)
        tcp_ticks = 1;
    if (tcp_ticks == last_tick)
        return;
    last_tick = tcp_ticks;
    for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb != NULL; pcb = pcb->next)
        dpn_tcp_rto_apply(pcb);
}
