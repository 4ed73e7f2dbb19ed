/* mbuf <-> pbuf: every mbuf of a worker's pool carries, in its private area,
 * the lwIP custom pbuf that describes it, so wrapping a received frame costs
 * no allocation and freeing the pbuf frees the mbuf. */
#ifndef DPNET_BUF_H
#define DPNET_BUF_H

#include <rte_mbuf.h>

#include "lwip/pbuf.h"

struct dpn_pbuf {
    struct pbuf_custom pc; /* first: a struct pbuf * is a struct dpn_pbuf * */
    struct rte_mbuf *m;
    /* zero-copy send bookkeeping (tcp.c): the buffer chain waits here until
     * the stream offset zc_end has been acknowledged. */
    struct dpn_pbuf *zc_next;
    uint64_t zc_end;
    /* Set by dpnetd when it lends the mbuf to a worker (abi.h dpn_tag),
     * cleared when the worker frees it: after a worker dies, the daemon
     * frees what still carries that worker's tag. */
    uint32_t tag;
};

/* Free a whole received packet that never became a pbuf. */
static inline void dpn_mbuf_drop(struct rte_mbuf *m) {
    for (struct rte_mbuf *s = m; s != NULL; s = s->next)
        ((struct dpn_pbuf *)rte_mbuf_to_priv(s))->tag = 0;
    rte_pktmbuf_free(m);
}

/* A pbuf flag lwIP does not use: p->dpn_src (LWIP_PBUF_CUSTOM_DATA) names
 * the mbuf whose bytes this reference pbuf points into (zero-copy send). */
#define DPN_PBUF_FLAG_ZC 0x80U

/* Data pieces shorter than this are copied, not sent from their own mbuf
 * (tx.c, and dpn_send with tcp.send_zc in tcp.c): below it a second
 * descriptor, an mbuf and two reference count updates (atomic, on an mbuf
 * that has often left the cache) cost more than the copy. At 512, 512 B
 * echoes over memif (64 connections x 8 in flight) served 18-22 M
 * requests/s; copied, 27-28 M. */
#define DPN_ZC_MIN 1024

#define DPN_MBUF_PRIV_SIZE RTE_ALIGN(sizeof(struct dpn_pbuf), RTE_MBUF_PRIV_ALIGN)

/* tcp.send_zc: the mbuf whose bytes q (the only data piece of a segment)
 * are, when the segment may go out in it: one whole buffer of ours as its
 * owner gave it (no other segment has bytes in it), nobody else holding it
 * (a frame of it still in the batch, the ring or a fault delay line keeps
 * its headers), and hlen bytes of room for the headers in front of the
 * data. NULL otherwise: the segment is copied. */
static inline struct rte_mbuf *dpn_zc_whole(const struct pbuf *q, uint32_t hlen) {
    if (q == NULL || q->next != NULL || !(q->flags & DPN_PBUF_FLAG_ZC))
        return NULL;
    struct rte_mbuf *s = q->dpn_src;
    if (!RTE_MBUF_DIRECT(s) || s->priv_size != DPN_MBUF_PRIV_SIZE || rte_mbuf_refcnt_read(s) != 1)
        return NULL;
    const struct dpn_pbuf *dp = rte_mbuf_to_priv(s);
    if (dp->m != s || dp->pc.pbuf.payload != q->payload || dp->pc.pbuf.len != q->len ||
        (const char *)q->payload - hlen < (const char *)s->buf_addr)
        return NULL;
    return s;
}

/* s (from dpn_zc_whole) as the frame that starts at f, len bytes long,
 * with one more reference: lwIP keeps its own for retransmission. */
static inline void dpn_zc_frame(struct rte_mbuf *s, void *f, uint32_t len) {
    rte_mbuf_refcnt_set(s, 2);
    s->data_off = (uint16_t)((char *)f - (char *)s->buf_addr);
    s->data_len = (uint16_t)len;
    s->pkt_len = len;
    s->nb_segs = 1;
    s->next = NULL; /* a TSO join may have left one */
    s->ol_flags = 0;
    s->packet_type = 0;
}

/* Pool whose mbufs have room for a struct dpn_pbuf; data room fits mtu. */
struct rte_mempool *dpn_pool_create(const char *name, unsigned n, unsigned cache, unsigned mtu,
                                    int socket);

void dpn_pbuf_free_custom(struct pbuf *p);

/* Wrap one mbuf segment (zero copy). */
static inline struct pbuf *dpn_pbuf_wrap_seg(struct rte_mbuf *m) {
    struct dpn_pbuf *dp = (struct dpn_pbuf *)rte_mbuf_to_priv(m);
    dp->pc.custom_free_function = dpn_pbuf_free_custom;
    dp->m = m;
    dp->zc_next = NULL;
    return pbuf_alloced_custom(PBUF_RAW, rte_pktmbuf_data_len(m), PBUF_REF, &dp->pc,
                               rte_pktmbuf_mtod(m, void *), rte_pktmbuf_data_len(m));
}

/* Wrap a whole (possibly multi-segment) packet; each segment becomes one
 * pbuf of the chain. */
static inline struct pbuf *dpn_pbuf_wrap(struct rte_mbuf *m) {
    struct pbuf *head = dpn_pbuf_wrap_seg(m);
    for (struct rte_mbuf *s = m->next; s != NULL; s = s->next)
        pbuf_cat(head, dpn_pbuf_wrap_seg(s));
    return head;
}

/* The mbuf behind a pbuf we made, or NULL for lwIP's own pbufs. */
static inline struct rte_mbuf *dpn_pbuf_mbuf(const struct pbuf *p) {
    if (!(p->flags & PBUF_FLAG_IS_CUSTOM))
        return NULL;
    const struct dpn_pbuf *dp = (const struct dpn_pbuf *)p;
    return dp->pc.custom_free_function == dpn_pbuf_free_custom ? dp->m : NULL;
}

#endif
