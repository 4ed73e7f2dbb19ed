/* dpnet's retransmission time-out policy for lwIP's connections
 * (tcp_rto.c). Internal to libdpnet. */
#ifndef DPNET_TCP_RTO_H
#define DPNET_TCP_RTO_H

struct tcp_pcb;

/* Call after lwIP's timers (every loop tick): does its work once per
 * lwIP slow-timer tick (50 ms), right after lwIP's own. */
void dpn_tcp_rto_tick(void);

/* The policy for one connection (exposed for the unit test). */
void dpn_tcp_rto_apply(struct tcp_pcb *pcb);

#endif
