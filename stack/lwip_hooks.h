/* Hooks that lwIP's core calls into dpnet (LWIP_HOOK_FILENAME). */
#ifndef DPNET_LWIP_HOOKS_H
#define DPNET_LWIP_HOOKS_H

#include "lwip/err.h"
#include "lwip/ip_addr.h"

struct tcp_pcb;
struct tcp_hdr;
struct pbuf;

/* RFC 6528 initial sequence number: keyed hash of the 4-tuple plus a clock. */
u32_t dpn_tcp_isn(const ip_addr_t *local_ip, u16_t local_port, const ip_addr_t *remote_ip,
                  u16_t remote_port);

/* The 4-tuple index of the active pcbs (tcp_pcbs.h). */
void dpn_pcbs_reg(struct tcp_pcb *pcb);
struct tcp_pcb *dpn_pcbs_input(u16_t sport, u16_t dport, const ip_addr_t *src,
                               const ip_addr_t *dst);

/* Out-of-order limits per connection and per worker (tcp_pcbs.h). */
u32_t dpn_ooseq_bytes_limit(const struct tcp_pcb *pcb);
u16_t dpn_ooseq_pbufs_limit(const struct tcp_pcb *pcb);

/* The input guard (tcp_guard.c): ERR_OK lets lwIP process the segment. */
err_t dpn_tcp_inpacket(struct tcp_pcb *pcb, const struct tcp_hdr *h, const struct pbuf *p);
/* tcp_write made reference pbuf p for data given with dpn_send_buf: tag
 * it with the mbuf that holds the bytes (tcp.c). */
void dpn_tcp_write_ref(struct pbuf *p);
/* Non-zero: tcp_output leaves pcb's output for its turn in the worker's
 * line for the TX ring (tx.c). */
int dpn_tcp_output_hold(struct tcp_pcb *pcb);
/* Its counters into st (the guard's fields of struct dpn_stats). */
struct dpn_stats;
void dpn_tcp_guard_stats(struct dpn_stats *st);

#endif
