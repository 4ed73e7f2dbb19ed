/* The 4-tuple index of lwIP's active pcbs (tcp_pcbs.h): a chained hash
 * over a fixed array of MEMP_NUM_TCP_PCB entries, one per pcb lwIP can
 * have, so inserting never fails. The hash is keyed with a secret so that
 * a peer cannot choose addresses and ports that share a chain. */
#include <string.h>

#include <rte_mbuf.h>
#include <rte_prefetch.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

#include "tcp_pcbs.h"

#define NENT MEMP_NUM_TCP_PCB
#define BUCKET_BITS 14 /* twice the entries, rounded up to a power of two */
#define NBUCKET (1u << BUCKET_BITS)
_Static_assert(NBUCKET >= 2 * NENT, "buckets: at least twice the entries");

struct ent {
    uint32_t rip; /* network order */
    uint16_t rport, lport;
    uint32_t next; /* chain, or free list: index + 1, 0 ends it */
    struct tcp_pcb *pcb;
    struct dpn_pcb_ext ext;
    uint32_t oo_prev, oo_next; /* list of entries holding out-of-order data */
};

static struct ent ents[NENT];
static uint32_t bucket[NBUCKET];
static uint32_t free_head; /* index + 1 */
static unsigned count;
static uint64_t key_xor, key_mul;
static uint8_t ext_id;
static bool ready;
/* Out-of-order data of all connections, as last counted, and the entries
 * holding some (index + 1 lists). */
static uint32_t oo_bytes, oo_pbufs, oo_head;
static struct tcp_pcb *oo_recount; /* the pcb the last segment went to */

static void on_destroy(u8_t id, void *data);
static const struct tcp_ext_arg_callbacks ext_cbs = {.destroy = on_destroy};

static void init_once(void) {
    for (uint32_t i = 0; i < NENT; i++)
        ents[i].next = i + 2 <= NENT ? i + 2 : 0;
    free_head = 1;
    key_xor = (uint64_t)LWIP_RAND() << 32 | LWIP_RAND();
    key_mul = ((uint64_t)LWIP_RAND() << 32 | LWIP_RAND()) | 1;
    ext_id = tcp_ext_arg_alloc_id();
    ready = true;
}

static inline uint32_t hash(uint32_t rip, uint16_t rport, uint16_t lport) {
    uint64_t k = ((uint64_t)rip << 32) | ((uint32_t)rport << 16) | lport;
    return (uint32_t)(((k ^ key_xor) * key_mul) >> (64 - BUCKET_BITS));
}

static inline uint32_t pcb_rip(const struct tcp_pcb *pcb) {
    return ip4_addr_get_u32(ip_2_ip4(&pcb->remote_ip));
}

void dpn_pcbs_reg(struct tcp_pcb *pcb) {
    if (!ready)
        init_once();
    uint32_t i1 = free_head;
    /* One entry per pcb of lwIP's pool: cannot run out. */
    LWIP_ASSERT("tcp index full", i1 != 0);
    struct ent *e = &ents[i1 - 1];
    free_head = e->next;
    e->rip = pcb_rip(pcb);
    e->rport = pcb->remote_port;
    e->lport = pcb->local_port;
    e->pcb = pcb;
    memset(&e->ext, 0, sizeof(e->ext));
    uint32_t *b = &bucket[hash(e->rip, e->rport, e->lport)];
    e->next = *b; /* newest first */
    *b = i1;
    count++;
    tcp_ext_arg_set_callbacks(pcb, ext_id, &ext_cbs);
    tcp_ext_arg_set(pcb, ext_id, e);
}

static void oo_set(struct ent *e, uint32_t bytes, uint32_t pbufs);

/* lwIP frees the pcb (tcp_free): its entry goes. */
static void on_destroy(u8_t id, void *data) {
    (void)id;
    struct ent *e = data;
    uint32_t i1 = (uint32_t)(e - ents) + 1;
    oo_set(e, 0, 0);
    if (oo_recount == e->pcb)
        oo_recount = NULL;
    uint32_t *l = &bucket[hash(e->rip, e->rport, e->lport)];
    while (*l != 0 && *l != i1)
        l = &ents[*l - 1].next;
    if (*l == 0)
        return;
    *l = e->next;
    e->pcb = NULL;
    e->next = free_head;
    free_head = i1;
    count--;
}

static struct ent *find(uint32_t rip, uint16_t rport, uint16_t lport) {
    if (!ready || count == 0)
        return NULL;
    for (uint32_t i1 = bucket[hash(rip, rport, lport)]; i1 != 0; i1 = ents[i1 - 1].next) {
        struct ent *e = &ents[i1 - 1];
        if (e->rip == rip && e->rport == rport && e->lport == lport)
            return e;
    }
    return NULL;
}

struct tcp_pcb *dpn_pcbs_find(uint32_t rip, uint16_t rport, uint16_t lport) {
    struct ent *e = find(rip, rport, lport);
    return e != NULL ? e->pcb : NULL;
}

/* tcp_input's lookup: active pcbs only (a pcb that entered TIME_WAIT in
 * this burst is on tcp_tw_pcbs, which lwIP walks next). */
struct tcp_pcb *dpn_pcbs_input(u16_t sport, u16_t dport, const ip_addr_t *src,
                               const ip_addr_t *dst) {
    struct ent *e = find(ip4_addr_get_u32(ip_2_ip4(src)), sport, dport);
    if (e == NULL || e->pcb->state == TIME_WAIT || !ip_addr_cmp(&e->pcb->local_ip, dst))
        return NULL;
    return e->pcb;
}

/* The pcbs of a burst's TCP segments, found with their loads overlapped:
 * one pass computes every hash and prefetches its bucket, the next reads
 * the buckets and prefetches the entries, the last reads the entries and
 * prefetches the pcbs. Handled one by one, each segment waits for three
 * dependent misses in a row (bucket, entry, pcb) once the connections
 * outgrow the cache; here the misses of the whole burst are in flight
 * together. */
void dpn_pcbs_prefetch(struct rte_mbuf *const *pkts, uint16_t n, struct tcp_pcb **pcbs) {
    struct {
        uint32_t rip, b;
        uint16_t rport, lport;
    } k[64];
    n = n < 64 ? n : 64;
    for (uint16_t i = 0; i < n; i++) {
        pcbs[i] = NULL;
        const uint8_t *p = rte_pktmbuf_mtod(pkts[i], const uint8_t *);
        uint32_t len = rte_pktmbuf_data_len(pkts[i]);
        k[i].b = UINT32_MAX;
        if (!ready || count == 0 || len < 14 + 20 + 20 || p[12] != 0x08 || p[13] != 0x00 ||
            p[14 + 9] != IP_PROTO_TCP)
            continue;
        uint32_t ihl = (p[14] & 0xf) * 4u;
        if (ihl < 20 || len < 14 + ihl + 4)
            continue;
        const uint8_t *th = p + 14 + ihl;
        memcpy(&k[i].rip, p + 14 + 12, 4);
        k[i].rport = (uint16_t)(th[0] << 8 | th[1]);
        k[i].lport = (uint16_t)(th[2] << 8 | th[3]);
        k[i].b = hash(k[i].rip, k[i].rport, k[i].lport);
        rte_prefetch0(&bucket[k[i].b]);
    }
    for (uint16_t i = 0; i < n; i++) {
        if (k[i].b == UINT32_MAX)
            continue;
        k[i].b = bucket[k[i].b]; /* now the chain's first entry, index + 1 */
        if (k[i].b != 0)
            rte_prefetch0(&ents[k[i].b - 1]);
    }
    for (uint16_t i = 0; i < n; i++) {
        if (k[i].b == UINT32_MAX)
            continue;
        for (uint32_t i1 = k[i].b; i1 != 0; i1 = ents[i1 - 1].next) {
            const struct ent *e = &ents[i1 - 1];
            if (e->rip == k[i].rip && e->rport == k[i].rport && e->lport == k[i].lport) {
                const char *pc = (const char *)e->pcb;
                pcbs[i] = e->pcb;
                for (size_t off = 0; off < sizeof(struct tcp_pcb); off += RTE_CACHE_LINE_SIZE)
                    rte_prefetch0(pc + off);
                break;
            }
        }
    }
}

/* The entry of pcb if it is still the connection rip:rport -> lport: its
 * own entry (through its extension argument) rather than a walk of the
 * hash chain. A pcb freed since then has no entry (on_destroy), one
 * reused for another connection has another 4-tuple. */
struct dpn_pcb_ext *dpn_pcbs_ext_of(const struct tcp_pcb *pcb, uint32_t rip, uint16_t rport,
                                    uint16_t lport) {
    if (!ready)
        return NULL;
    struct ent *e = tcp_ext_arg_get(pcb, ext_id);
    if (e == NULL || e->pcb != pcb || e->rip != rip || e->rport != rport || e->lport != lport)
        return NULL;
    return &e->ext;
}

/* Where dpn_pcbs_ext_of will look, on its way into the cache. */
void dpn_pcbs_ext_prefetch(const struct tcp_pcb *pcb) {
    if (ready)
        rte_prefetch0(tcp_ext_arg_get(pcb, ext_id));
}

struct dpn_pcb_ext *dpn_pcbs_ext(const struct tcp_pcb *pcb) {
    if (!ready)
        return NULL;
    struct ent *e = tcp_ext_arg_get(pcb, ext_id);
    return e != NULL && e->pcb == pcb ? &e->ext : NULL;
}

unsigned dpn_pcbs_count(void) {
    return count;
}

static bool indexed(const struct tcp_pcb *pcb) {
    struct ent *e = find(pcb_rip(pcb), pcb->remote_port, pcb->local_port);
    return e != NULL && e->pcb == pcb;
}

bool dpn_pcbs_consistent(void) {
    unsigned n = 0;
    for (struct tcp_pcb *p = tcp_active_pcbs; p != NULL; p = p->next, n++)
        if (!indexed(p) || p->state == TIME_WAIT)
            return false;
    for (struct tcp_pcb *p = tcp_tw_pcbs; p != NULL; p = p->next, n++)
        if (!indexed(p))
            return false;
    return n == count;
}

/* ---- out-of-order data: bounded per connection and per worker ---- */

static void oo_link(struct ent *e, bool on) {
    uint32_t i1 = (uint32_t)(e - ents) + 1;
    if (on) {
        e->oo_prev = 0;
        e->oo_next = oo_head;
        if (oo_head != 0)
            ents[oo_head - 1].oo_prev = i1;
        oo_head = i1;
        return;
    }
    if (e->oo_prev != 0)
        ents[e->oo_prev - 1].oo_next = e->oo_next;
    else
        oo_head = e->oo_next;
    if (e->oo_next != 0)
        ents[e->oo_next - 1].oo_prev = e->oo_prev;
}

static void oo_set(struct ent *e, uint32_t bytes, uint32_t pbufs) {
    bool was = e->ext.ooseq_pbufs != 0, is = pbufs != 0;
    oo_bytes += bytes - e->ext.ooseq_bytes;
    oo_pbufs += pbufs - e->ext.ooseq_pbufs;
    e->ext.ooseq_bytes = bytes;
    e->ext.ooseq_pbufs = pbufs;
    if (was != is)
        oo_link(e, is);
}

/* Count what the pcb's out-of-order queue holds now (at most
 * DPN_OOSEQ_CONN_PBUFS segments: the walk is bounded). */
static void oo_count(struct ent *e) {
    uint32_t bytes = 0, pbufs = 0;
#if TCP_QUEUE_OOSEQ
    for (const struct tcp_seg *sg = e->pcb->ooseq; sg != NULL; sg = sg->next) {
        bytes += sg->p->tot_len;
        pbufs += pbuf_clen(sg->p);
    }
#endif
    oo_set(e, bytes, pbufs);
}

void dpn_pcbs_segment(struct tcp_pcb *pcb) {
    oo_recount = pcb;
}

void dpn_pcbs_after_input(void) {
    struct tcp_pcb *pcb = oo_recount;
    oo_recount = NULL;
    if (pcb == NULL)
        return;
    struct ent *e = tcp_ext_arg_get(pcb, ext_id);
#if TCP_QUEUE_OOSEQ
    if (e != NULL && e->pcb == pcb && (pcb->ooseq != NULL || e->ext.ooseq_pbufs != 0))
        oo_count(e);
#endif
}

void dpn_pcbs_ooseq_recount(void) {
    for (uint32_t i1 = oo_head, next; i1 != 0; i1 = next) {
        next = ents[i1 - 1].oo_next; /* oo_count may unlink i1 */
        oo_count(&ents[i1 - 1]);
    }
}

u32_t dpn_ooseq_bytes_limit(const struct tcp_pcb *pcb) {
    const struct dpn_pcb_ext *x = dpn_pcbs_ext(pcb);
    uint32_t mine = x != NULL ? x->ooseq_bytes : 0;
    uint32_t room = DPN_OOSEQ_WORKER_BYTES - LWIP_MIN(oo_bytes, DPN_OOSEQ_WORKER_BYTES);
    return LWIP_MIN(DPN_OOSEQ_CONN_BYTES, mine + room);
}

u16_t dpn_ooseq_pbufs_limit(const struct tcp_pcb *pcb) {
    const struct dpn_pcb_ext *x = dpn_pcbs_ext(pcb);
    uint32_t mine = x != NULL ? x->ooseq_pbufs : 0;
    uint32_t room = DPN_OOSEQ_WORKER_PBUFS - LWIP_MIN(oo_pbufs, DPN_OOSEQ_WORKER_PBUFS);
    return (u16_t)LWIP_MIN(DPN_OOSEQ_CONN_PBUFS, mine + room);
}

void dpn_pcbs_ooseq_held(uint32_t *bytes, uint32_t *pbufs) {
    *bytes = oo_bytes;
    *pbufs = oo_pbufs;
}
