/* Buffers: DPDK mbufs seen by lwIP and by the application as pbufs. */
#include <string.h>

#include <rte_mbuf.h>

#include "buf.h"
#include "worker.h"

struct rte_mempool *dpn_pool_create(const char *name, unsigned n, unsigned cache, unsigned mtu,
                                    int socket) {
    /* Room for a whole frame (MTU + Ethernet header + two VLAN tags + CRC)
     * after the headroom, in whole KB: NICs take the RX buffer size in 1 KB
     * units, rounded down (ixgbe's SRRCTL.BSIZEPKT; it turns to multi-segment
     * RX when a frame of the MTU plus two tags would not fit), and a jumbo
     * frame split over mbufs costs a copy here. Never less than DPDK's
     * default. */
    unsigned room =
        RTE_PKTMBUF_HEADROOM +
        RTE_ALIGN_CEIL(mtu + RTE_ETHER_HDR_LEN + 2 * RTE_VLAN_HLEN + RTE_ETHER_CRC_LEN, 1024u);
    if (room < RTE_MBUF_DEFAULT_BUF_SIZE)
        room = RTE_MBUF_DEFAULT_BUF_SIZE;
    return rte_pktmbuf_pool_create(name, n, cache, DPN_MBUF_PRIV_SIZE, (uint16_t)room, socket);
}

void dpn_pbuf_free_custom(struct pbuf *p) {
    struct dpn_pbuf *dp = (struct dpn_pbuf *)p;
    /* One segment only: lwIP frees every pbuf of a chain itself. */
    dp->tag = 0;
    rte_pktmbuf_free_seg(dp->m);
}

size_t dpn_buf_len(const struct dpn_buf *b) {
    return ((const struct pbuf *)b)->tot_len;
}

const struct dpn_buf *dpn_buf_first(const struct dpn_buf *b) {
    return b; /* a chain is its first segment */
}

const struct dpn_buf *dpn_buf_next(const struct dpn_buf *seg) {
    return (const struct dpn_buf *)((const struct pbuf *)seg)->next;
}

const void *dpn_buf_data(const struct dpn_buf *seg, size_t *len) {
    const struct pbuf *p = (const struct pbuf *)seg;
    if (len != NULL)
        *len = p->len;
    return p->payload;
}

size_t dpn_buf_copy(const struct dpn_buf *b, void *dst, size_t len, size_t offset) {
    const struct pbuf *p = (const struct pbuf *)b;
    if (offset >= p->tot_len)
        return 0;
    if (len > p->tot_len - offset)
        len = p->tot_len - offset;
    return pbuf_copy_partial(p, dst, (u16_t)len, (u16_t)offset);
}

void dpn_buf_free(struct dpn_buf *b) {
    if (b != NULL)
        pbuf_free((struct pbuf *)b);
}

struct dpn_buf *dpn_buf_alloc(struct dpn_worker *w, size_t len) {
    if (len == 0 || len > (size_t)w->netif.mtu - 40u) /* one segment of the MSS */
        return NULL;
    struct rte_mbuf *m = rte_pktmbuf_alloc(w->pool);
    if (m == NULL)
        return NULL;
    if (rte_pktmbuf_append(m, (uint16_t)len) == NULL) {
        rte_pktmbuf_free(m);
        return NULL;
    }
    return (struct dpn_buf *)dpn_pbuf_wrap_seg(m);
}

void *dpn_buf_mut(struct dpn_buf *b) {
    return ((struct pbuf *)b)->payload;
}

unsigned dpn_mbufs_free(const struct dpn_worker *w) {
    return rte_mempool_avail_count(w->pool);
}
