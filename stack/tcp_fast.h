/* TCP header prediction: an established connection's next in-order
 * segment taken without lwIP's input path (tcp_fast.c). Internal to
 * libdpnet. */
#ifndef DPNET_TCP_FAST_H
#define DPNET_TCP_FAST_H

#include <stdbool.h>
#include <stdint.h>

struct dpn_worker;
struct rte_mbuf;
struct rte_ipv4_hdr;

/* m is one segment holding exactly an IPv4 packet of ip_len bytes to our
 * address, with a 20-byte header, not a fragment, its checksums verified.
 * True when the segment was taken (m is consumed); false leaves it for
 * lwIP, with nothing changed. */
bool dpn_tcp_fast(struct dpn_worker *w, struct rte_mbuf *m, const struct rte_ipv4_hdr *ip,
                  uint32_t ip_len);

/* tcp_output's common case (from its hold hook, tx.c): an established
 * connection's unsent segments that fit the window, each built straight
 * into a frame. 1: done, tcp_output returns; 0: lwIP's tcp_output goes on
 * from where this stopped (nothing sent, or the rest). */
struct tcp_pcb;
int dpn_tcp_fast_output(struct dpn_worker *w, struct tcp_pcb *pcb);

#endif
