/* TIME_WAIT kept outside lwIP: a fixed table of 4-tuples instead of whole
 * pcbs on lwIP's tcp_tw_pcbs list. lwIP walks that list linearly to pick a
 * local port, to find the oldest entry to kill when its pcb pool runs dry
 * and to unlink a pcb, so a client closing thousands of connections a
 * second spent 90% of its time there (perf, connection-rate benchmark).
 * Internal to libdpnet. */
#ifndef DPNET_TCP_TW_H
#define DPNET_TCP_TW_H

#include <stdbool.h>
#include <stdint.h>

struct dpn_worker;
struct rte_mbuf;
struct dpn_tw;

/* At most this many connections in TIME_WAIT per worker; past it the oldest
 * ends early, as lwIP does when its pcb pool is empty. */
#define DPN_TW_MAX 16384u

int dpn_tw_new(struct dpn_tw **twp);
void dpn_tw_free(struct dpn_tw *tw);
/* Entries now held. */
unsigned dpn_tw_count(const struct dpn_tw *tw);

/* Move the pcbs lwIP put in TIME_WAIT since the last call into the table
 * and free them. Called after input; lwIP puts pcbs there only on input. */
void dpn_tw_absorb(struct dpn_worker *w);

/* A received TCP segment (th: its header, tcplen: its sequence length) for
 * a 4-tuple in TIME_WAIT is answered here as lwIP would (an ACK for data or
 * a FIN, nothing for an RST or a bare ACK); a SYN with a sequence number
 * past the old connection's ends TIME_WAIT and goes on to lwIP (RFC 1122
 * 4.2.2.13, as Linux does). Returns true when the frame was consumed. */
bool dpn_tw_input(struct dpn_worker *w, struct rte_mbuf *m, const uint8_t *th, uint32_t tcplen);

/* End every entry (the fuzz harnesses start each input from nothing). */
void dpn_tw_clear(struct dpn_tw *tw);

/* End entries older than 2 MSL; every millisecond. */
void dpn_tw_expire(struct dpn_tw *tw, uint32_t now_ms);

/* Whether local port lport to rip:rport (network order address, host order
 * ports) is in TIME_WAIT; dpn_tw_end ends it (the port is reused). */
bool dpn_tw_has(const struct dpn_tw *tw, uint32_t rip, uint16_t rport, uint16_t lport);
void dpn_tw_end(struct dpn_tw *tw, uint32_t rip, uint16_t rport, uint16_t lport);

#endif
