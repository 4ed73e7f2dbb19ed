/* A 4-tuple index of lwIP's active TCP pcbs. lwIP 2.1.3 finds the pcb of a
 * segment by walking tcp_active_pcbs, so every segment cost O(connections);
 * our lwIP patch (config/lwip-tcp-index.patch) asks this index instead
 * (LWIP_HOOK_TCP_INPUT_ACTIVE_PCB) and tells it of every pcb that becomes
 * active (LWIP_HOOK_TCP_ACTIVE_REG); a pcb leaves it when lwIP frees it
 * (an ext-arg destroy callback). lwIP is one instance per process, and so
 * is the index. Each entry also carries per-connection guard state
 * (tcp_guard.c). Internal to libdpnet. */
#ifndef DPNET_TCP_PCBS_H
#define DPNET_TCP_PCBS_H

#include <stdbool.h>
#include <stdint.h>

#include "lwip/ip_addr.h"

struct tcp_pcb;

/* What the guard keeps per connection. */
struct dpn_pcb_ext {
    uint32_t oow_ms;      /* when we last answered an unacceptable segment */
    uint32_t ooseq_bytes; /* out-of-order data held, as last counted */
    uint32_t ooseq_pbufs;
    bool oow_sent;   /* oow_ms is valid */
    bool tx_blocked; /* on the worker's list of refused outputs (tx.c) */
};

/* Out-of-order data lwIP may hold (TCP_OOSEQ_BYTES_LIMIT/PBUFS_LIMIT): per
 * connection, and for all connections of the worker together, so that
 * peers sending holes cannot take the mbuf pool (each received pbuf holds
 * an mbuf). Past a bound lwIP drops the furthest segments; the peer sends
 * them again. */
#define DPN_OOSEQ_CONN_BYTES (512u * 1024) /* TCP_WND: the most a peer may send */
#define DPN_OOSEQ_CONN_PBUFS 256u          /* one-byte holes: 256 mbufs at most */
#define DPN_OOSEQ_WORKER_BYTES (8u * 1024 * 1024)
#define DPN_OOSEQ_WORKER_PBUFS 4096u

/* The hooks (lwipopts.h). */
void dpn_pcbs_reg(struct tcp_pcb *pcb);
struct tcp_pcb *dpn_pcbs_input(u16_t sport, u16_t dport, const ip_addr_t *src,
                               const ip_addr_t *dst);

/* The pcb of remote rip:rport (network order address, host order ports)
 * to local port lport, in any state lwIP still holds it, or NULL. */
struct tcp_pcb *dpn_pcbs_find(uint32_t rip, uint16_t rport, uint16_t lport);
/* For each frame of a received burst (the first 64), the pcb its TCP
 * segment belongs to (NULL: none, or not TCP), with the pcbs' cache lines
 * already on the way. */
struct rte_mbuf;
void dpn_pcbs_prefetch(struct rte_mbuf *const *pkts, uint16_t n, struct tcp_pcb **pcbs);
/* The guard state of an indexed pcb (NULL if it is not indexed). */
struct dpn_pcb_ext *dpn_pcbs_ext(const struct tcp_pcb *pcb);
/* The same, only while pcb is still the connection rip:rport -> lport
 * (network order address, host order ports): for a pcb remembered a while
 * ago, which may have been freed or reused since. pcbs live in lwIP's
 * static pool, so reading a freed one is safe. */
struct dpn_pcb_ext *dpn_pcbs_ext_of(const struct tcp_pcb *pcb, uint32_t rip, uint16_t rport,
                                    uint16_t lport);
void dpn_pcbs_ext_prefetch(const struct tcp_pcb *pcb);
/* The guard passed a segment to pcb; after lwIP's input,
 * dpn_pcbs_after_input counts its out-of-order queue again. */
void dpn_pcbs_segment(struct tcp_pcb *pcb);
void dpn_pcbs_after_input(void);
/* Count again every queue that held data (lwIP's timers free them). */
void dpn_pcbs_ooseq_recount(void);
/* All connections' out-of-order data, as last counted. */
void dpn_pcbs_ooseq_held(uint32_t *bytes, uint32_t *pbufs);
/* Indexed pcbs. */
unsigned dpn_pcbs_count(void);
/* Whether the index holds exactly lwIP's active pcbs plus the pcbs on its
 * TIME_WAIT list (tests and fuzzers). */
bool dpn_pcbs_consistent(void);

#endif
