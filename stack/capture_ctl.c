/* Packet capture, the control side (capture.h): the filter (libpcap's
 * compiler and validator; libpcap's interpreter runs it), and the writer
 * thread that turns capture rings into a pcapng file with rte_pcapng.
 *
 * The writer never trusts a ring: the producer may be another process, and
 * any process may scribble on shared memory. Its head is checked against
 * the ring's size, every record against the snap length and what is there,
 * and bytes are copied out before use; a ring that breaks a rule is left
 * for good. The worst a producer can do is put garbage in the file. */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <poll.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_pcapng.h>

#include "capture.h"
#include "log.h"
#include "worker.h"

_Static_assert(sizeof(struct dpn_cap_insn) == sizeof(struct bpf_insn),
               "abi.h's filter instruction is libpcap's");

static uint32_t snap_clamp(uint32_t snaplen) {
    return snaplen == 0 || snaplen > DPN_CAP_SNAP_MAX ? DPN_CAP_SNAP_MAX : snaplen;
}

int dpn_cap_compile(struct dpn_cap_ring *r, const char *filter, uint32_t snaplen, char *why,
                    size_t n) {
    r->snaplen = snap_clamp(snaplen);
    r->ninsns = 0;
    if (filter == NULL || filter[0] == '\0')
        return 0;
    pcap_t *p = pcap_open_dead(DLT_EN10MB, (int)r->snaplen);
    if (p == NULL)
        return snprintf(why, n, "libpcap: cannot make a compiler"), -1;
    struct bpf_program prog;
    int rc = -1;
    if (pcap_compile(p, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
        snprintf(why, n, "bad filter '%s': %s", filter, pcap_geterr(p));
    } else if (prog.bf_len > DPN_CAP_INSNS) {
        snprintf(why, n, "filter '%s' compiles to %u instructions, more than %u", filter,
                 prog.bf_len, DPN_CAP_INSNS);
        pcap_freecode(&prog);
    } else {
        memcpy(r->insns, prog.bf_insns, prog.bf_len * sizeof(r->insns[0]));
        r->ninsns = prog.bf_len;
        pcap_freecode(&prog);
        rc = 0;
    }
    pcap_close(p);
    return rc;
}

static int load_filter(struct dpn_cap *c, const struct dpn_cap_ring *r, char *why, size_t n) {
    uint32_t ninsns = r->ninsns;
    if (ninsns == 0)
        return 0;
    if (ninsns > DPN_CAP_INSNS)
        return snprintf(why, n, "capture filter of %u instructions", ninsns), -1;
    memcpy(c->insns, r->insns, ninsns * sizeof(c->insns[0]));
    /* Its jumps inside the program, a return at its end: bpf_filter
     * trusts that much. */
    if (!bpf_validate((const struct bpf_insn *)c->insns, (int)ninsns))
        return snprintf(why, n, "the capture filter is not a valid program"), -1;
    c->ninsns = ninsns;
    return 0;
}

struct dpn_cap *dpn_cap_start(struct dpn_cap_ring *r, char *why, size_t n) {
    struct dpn_cap *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return snprintf(why, n, "out of memory"), NULL;
    if (load_filter(c, r, why, n) != 0) {
        free(c);
        return NULL;
    }
    c->r = r;
    c->snaplen = snap_clamp(r->snaplen);
    c->head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
    c->frames = r->frames;
    c->dropped = r->dropped;
    return c;
}

void dpn_cap_stop(struct dpn_cap *c) {
    free(c);
}

/* ---- the writer ---- */

#define CAPW_PASS 1024     /* records per pass, then the stop flag is looked at again */
#define CAPW_BUF (1 << 16) /* bytes gathered before a write */
/* pcapng's Enhanced Packet Block: where the interface and the original
 * length sit (rte_pcapng_copy fills the rest). */
#define EPB_IFACE 8
#define EPB_TS_HI 12
#define EPB_TS_LO 16
#define EPB_ORIG_LEN 24

struct capw_src {
    struct dpn_cap_ring *r;
    int want;    /* the owner's wish (atomic) */
    bool active; /* the thread's: reading r */
    bool broken; /* r broke a rule: left for good */
    bool have;   /* rec below is the next record, checked */
    struct dpn_cap_rec rec;
    uint64_t tail;
    uint64_t drop0; /* r->dropped when we started: the producer's word, shown only */
    uint64_t drops; /* what it said it dropped while we read it, before the current start */
};

/* Frames r says it dropped since we started reading it (0 for nonsense). */
static uint64_t src_drops(const struct capw_src *s) {
    uint64_t d = s->r->dropped;
    return d > s->drop0 && d - s->drop0 < (1ull << 40) ? d - s->drop0 : 0;
}

struct dpn_capw {
    rte_pcapng_t *png;
    int fd; /* png's, non-blocking: a reader that stops reading stalls nobody */
    uint16_t port;
    uint32_t iface; /* the port's interface number in the file */
    struct rte_mempool *raw, *out;
    uint64_t count, end_tsc, start_ns;
    uint64_t tsc0, hz; /* the clock: start_ns was the time at tsc0 */
    uint64_t frames, lost;
    int stop, done, abandon, finished; /* atomic */
    pthread_t thr;
    char err[128];
    size_t nbuf;
    uint8_t buf[CAPW_BUF];
    struct capw_src src[DPN_MAX_SLOTS];
};

static void ring_get(const struct dpn_cap_ring *r, uint64_t pos, void *dst, uint32_t len) {
    uint32_t off = (uint32_t)(pos & (DPN_CAP_BYTES - 1)), first = DPN_CAP_BYTES - off;
    if (first >= len) {
        memcpy(dst, r->data + off, len);
    } else {
        memcpy(dst, r->data + off, first);
        memcpy((uint8_t *)dst + first, r->data, len - first);
    }
}

static void src_break(struct capw_src *s, unsigned i, const char *what) {
    s->broken = true;
    s->active = false;
    DPN_LOG(WARNING, stack, "capture: the ring of queue %u %s; no more frames from it", i, what);
}

/* Is the next record of s there, and sound? */
static bool src_peek(struct capw_src *s, unsigned i) {
    if (s->have)
        return true;
    uint64_t head = __atomic_load_n(&s->r->head, __ATOMIC_ACQUIRE), avail = head - s->tail;
    if (avail > DPN_CAP_BYTES) {
        src_break(s, i, "says more is there than it holds");
        return false;
    }
    if (avail < sizeof(s->rec))
        return false;
    ring_get(s->r, s->tail, &s->rec, sizeof(s->rec));
    const struct dpn_cap_rec *c = &s->rec;
    if (c->len > DPN_CAP_SNAP_MAX || c->len > c->orig_len ||
        RTE_ALIGN_CEIL(sizeof(*c) + c->len, 8) > avail ||
        (c->dir != DPN_CAP_IN && c->dir != DPN_CAP_OUT)) {
        src_break(s, i, "holds a malformed record");
        return false;
    }
    s->have = true;
    return true;
}

static void write_fail(struct dpn_capw *cw, const char *why) {
    if (cw->err[0] == '\0')
        snprintf(cw->err, sizeof(cw->err), "writing the capture file: %s", why);
    __atomic_store_n(&cw->done, 1, __ATOMIC_RELEASE);
}

/* Everything gathered, to the file; a full pipe is waited for in steps
 * of 100 ms until the owner gives up on it (abandon). */
static void flush_buf(struct dpn_capw *cw) {
    size_t off = 0;
    while (off < cw->nbuf && cw->err[0] == '\0') {
        ssize_t k = write(cw->fd, cw->buf + off, cw->nbuf - off);
        if (k > 0) {
            off += (size_t)k;
        } else if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd p = {.fd = cw->fd, .events = POLLOUT};
            if (__atomic_load_n(&cw->abandon, __ATOMIC_ACQUIRE))
                write_fail(cw, "the reader stopped reading");
            else
                poll(&p, 1, 100);
        } else {
            write_fail(cw, k < 0 ? strerror(errno) : "nothing written");
        }
    }
    cw->nbuf = 0;
}

static void put_block(struct dpn_capw *cw, const struct rte_mbuf *mc) {
    uint32_t len = rte_pktmbuf_pkt_len(mc);
    if (cw->nbuf + len > sizeof(cw->buf))
        flush_buf(cw);
    uint8_t *dst = cw->buf + cw->nbuf;
    const void *p = cw->err[0] == '\0' && len <= sizeof(cw->buf)
                        ? rte_pktmbuf_read(mc, 0, len, dst) /* a pointer into mc if in one piece */
                        : NULL;
    if (p == NULL) {
        cw->lost++;
        return;
    }
    if (p != dst)
        memcpy(dst, p, len);
    memcpy(cw->buf + cw->nbuf + EPB_IFACE, &cw->iface, 4);
    cw->nbuf += len;
    cw->frames++;
}

/* The record s->rec into the file's next batch. */
static void take(struct dpn_capw *cw, struct capw_src *s) {
    const struct dpn_cap_rec *c = &s->rec;
    struct rte_mbuf *m = rte_pktmbuf_alloc(cw->raw), *mc = NULL;
    char *data = m != NULL ? rte_pktmbuf_append(m, (uint16_t)c->len) : NULL;
    if (data != NULL) {
        ring_get(s->r, s->tail + sizeof(*c), data, c->len);
        mc = rte_pcapng_copy(cw->port, c->queue, m, cw->out, c->len, c->tsc,
                             c->dir == DPN_CAP_IN ? RTE_PCAPNG_DIRECTION_IN
                                                  : RTE_PCAPNG_DIRECTION_OUT);
    }
    rte_pktmbuf_free(m);
    if (mc != NULL) {
        /* rte_pcapng_copy took the length it saw: the wire's was longer. */
        memcpy(rte_pktmbuf_mtod_offset(mc, uint8_t *, EPB_ORIG_LEN), &c->orig_len, 4);
        /* Its time from our own clock pair: rte_pcapng_copy's starts at
         * its first call and breaks on a record older than that. */
        int64_t d = (int64_t)(c->tsc - cw->tsc0);
        uint64_t ns = cw->start_ns + (uint64_t)((__int128)d * 1000000000 / (__int128)cw->hz);
        uint32_t hi = (uint32_t)(ns >> 32), lo = (uint32_t)ns;
        memcpy(rte_pktmbuf_mtod_offset(mc, uint8_t *, EPB_TS_HI), &hi, 4);
        memcpy(rte_pktmbuf_mtod_offset(mc, uint8_t *, EPB_TS_LO), &lo, 4);
        put_block(cw, mc);
        rte_pktmbuf_free(mc);
    } else {
        cw->lost++;
    }
    s->tail += RTE_ALIGN_CEIL(sizeof(*c) + c->len, 8);
    s->have = false;
}

static void src_update(struct capw_src *s) {
    bool want = __atomic_load_n(&s->want, __ATOMIC_ACQUIRE) != 0;
    if (want && !s->active && !s->broken) {
        s->tail = __atomic_load_n(&s->r->head, __ATOMIC_ACQUIRE);
        s->drop0 = s->r->dropped;
        s->have = false;
        s->active = true;
        __atomic_store_n(&s->r->tail, s->tail, __ATOMIC_RELEASE);
    } else if (!want && s->active) {
        s->drops += src_drops(s);
        s->active = false;
    }
}

/* One pass: records of every source, oldest first; how many. */
static unsigned capw_pass(struct dpn_capw *cw) {
    unsigned n = 0;
    for (unsigned i = 0; i < DPN_MAX_SLOTS; i++)
        if (cw->src[i].r != NULL)
            src_update(&cw->src[i]);
    for (; n < CAPW_PASS && !__atomic_load_n(&cw->done, __ATOMIC_ACQUIRE); n++) {
        struct capw_src *best = NULL;
        for (unsigned i = 0; i < DPN_MAX_SLOTS; i++) {
            struct capw_src *s = &cw->src[i];
            if (s->active && src_peek(s, i) && (best == NULL || s->rec.tsc < best->rec.tsc))
                best = s;
        }
        if (best == NULL)
            break;
        take(cw, best);
        if (cw->count != 0 && cw->frames >= cw->count)
            __atomic_store_n(&cw->done, 1, __ATOMIC_RELEASE);
    }
    flush_buf(cw);
    for (unsigned i = 0; i < DPN_MAX_SLOTS; i++)
        if (cw->src[i].active)
            __atomic_store_n(&cw->src[i].r->tail, cw->src[i].tail, __ATOMIC_RELEASE);
    if (cw->end_tsc != 0 && rte_rdtsc() >= cw->end_tsc)
        __atomic_store_n(&cw->done, 1, __ATOMIC_RELEASE);
    return n;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Frames the producers said they could not put in their rings. */
static uint64_t ring_drops(const struct dpn_capw *cw) {
    uint64_t n = 0;
    for (unsigned i = 0; i < DPN_MAX_SLOTS; i++) {
        const struct capw_src *s = &cw->src[i];
        if (s->r != NULL)
            n += s->drops + (s->active ? src_drops(s) : 0);
    }
    return n;
}

/* Until told to stop; then what the rings hold (the producers have been
 * told to stop too; what they add meanwhile may be left), the counts, and
 * the file closed. */
static void *capw_main(void *arg) {
    struct dpn_capw *cw = arg;
    while (!__atomic_load_n(&cw->stop, __ATOMIC_ACQUIRE))
        if (capw_pass(cw) == 0 || __atomic_load_n(&cw->done, __ATOMIC_ACQUIRE))
            usleep(1000);
    for (unsigned k = 0; k < 16 && !__atomic_load_n(&cw->done, __ATOMIC_ACQUIRE); k++)
        if (capw_pass(cw) < CAPW_PASS)
            break;
    cw->lost += ring_drops(cw);
    if (cw->err[0] == '\0') /* a short write here only loses the counts */
        rte_pcapng_write_stats(cw->png, cw->port, "dpnet capture", cw->start_ns, now_ns(),
                               cw->frames + cw->lost, cw->lost);
    rte_pcapng_close(cw->png);
    __atomic_store_n(&cw->finished, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* The port's interface number: rte_pcapng_fdopen describes every port, in
 * RTE_ETH_FOREACH_DEV's order. */
static uint32_t iface_of(uint16_t port) {
    uint32_t idx = 0;
    uint16_t p;
    RTE_ETH_FOREACH_DEV(p) {
        if (p == port)
            break;
        idx++;
    }
    return idx;
}

struct dpn_capw *dpn_capw_open(int fd, uint16_t port, uint64_t count, uint64_t duration_ms,
                               const char *app, char *why, size_t n) {
    struct dpn_capw *cw = calloc(1, sizeof(*cw));
    char name[RTE_MEMPOOL_NAMESIZE];
    int fl = fcntl(fd, F_GETFL);
    if (cw == NULL || fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        snprintf(why, n, "%s", cw == NULL ? "out of memory" : strerror(errno));
        goto fail;
    }
    cw->fd = fd;
    cw->port = port;
    cw->iface = iface_of(port);
    cw->count = count;
    cw->tsc0 = rte_rdtsc();
    cw->start_ns = now_ns();
    cw->hz = rte_get_tsc_hz();
    if (duration_ms != 0)
        cw->end_tsc = rte_rdtsc() + duration_ms * (rte_get_tsc_hz() / 1000);
    /* Two small private pools: a record's bytes, then rte_pcapng's copy. */
    snprintf(name, sizeof(name), "dpn_capr%d", (int)getpid());
    cw->raw = rte_pktmbuf_pool_create(name, 7, 0, 0, RTE_PKTMBUF_HEADROOM + DPN_CAP_SNAP_MAX,
                                      SOCKET_ID_ANY);
    snprintf(name, sizeof(name), "dpn_capo%d", (int)getpid());
    cw->out = rte_pktmbuf_pool_create(name, 7, 0, 0, rte_pcapng_mbuf_size(DPN_CAP_SNAP_MAX),
                                      SOCKET_ID_ANY);
    if (cw->raw == NULL || cw->out == NULL) {
        snprintf(why, n, "capture buffers: %s", rte_strerror(rte_errno));
        goto fail;
    }
    cw->png = rte_pcapng_fdopen(fd, NULL, NULL, app, NULL);
    if (cw->png == NULL) {
        snprintf(why, n, "cannot write the capture file's header: %s", rte_strerror(rte_errno));
        goto fail;
    }
    if (rte_ctrl_thread_create(&cw->thr, "dpn-capture", NULL, capw_main, cw) != 0) {
        snprintf(why, n, "cannot start the capture thread");
        rte_pcapng_close(cw->png); /* closes fd */
        fd = -1;
        goto fail;
    }
    return cw;
fail:
    if (fd >= 0)
        close(fd);
    if (cw != NULL) {
        rte_mempool_free(cw->raw);
        rte_mempool_free(cw->out);
        free(cw);
    }
    return NULL;
}

void dpn_capw_source(struct dpn_capw *cw, unsigned i, struct dpn_cap_ring *r, bool want) {
    if (i >= DPN_MAX_SLOTS || r == NULL)
        return;
    if (cw->src[i].r == NULL)
        cw->src[i].r = r; /* before want: the thread reads r only once want is set */
    __atomic_store_n(&cw->src[i].want, want ? 1 : 0, __ATOMIC_RELEASE);
}

bool dpn_capw_done(const struct dpn_capw *cw) {
    return __atomic_load_n(&cw->done, __ATOMIC_ACQUIRE) != 0;
}

void dpn_capw_stop(struct dpn_capw *cw) {
    __atomic_store_n(&cw->stop, 1, __ATOMIC_RELEASE);
}

bool dpn_capw_finished(const struct dpn_capw *cw) {
    return __atomic_load_n(&cw->finished, __ATOMIC_ACQUIRE) != 0;
}

void dpn_capw_close(struct dpn_capw *cw, uint64_t *frames, uint64_t *dropped, char *why, size_t n) {
    dpn_capw_stop(cw);
    if (!dpn_capw_finished(cw)) /* a reader that does not read: give up on it */
        __atomic_store_n(&cw->abandon, 1, __ATOMIC_RELEASE);
    pthread_join(cw->thr, NULL);
    snprintf(why, n, "%s", cw->err);
    *frames = cw->frames;
    *dropped = cw->lost;
    rte_mempool_free(cw->raw);
    rte_mempool_free(cw->out);
    free(cw);
}

/* ---- a standalone worker's --capture FILE ---- */

int dpn_cap_file_open(struct dpn_worker *w, const char *prog) {
    const struct dpn_config *cfg = &w->cfg;
    char why[512];
    if (cfg->capture[0] == '\0')
        return 0;
    /* Captures hold other people's traffic: readable by their owner only. */
    int fd = open(cfg->capture, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "%s: cannot open the capture file %s: %s\n", prog, cfg->capture,
                strerror(errno));
        return -DPN_ECONFIG;
    }
    w->cap_ring = dpn_zalloc(sizeof(*w->cap_ring));
    if (w->cap_ring == NULL) {
        close(fd);
        return -DPN_ENOMEM;
    }
    if (dpn_cap_compile(w->cap_ring, cfg->capture_filter, cfg->capture_snaplen, why, sizeof(why)) !=
            0 ||
        (w->cap = dpn_cap_start(w->cap_ring, why, sizeof(why))) == NULL) {
        close(fd);
        fprintf(stderr, "%s: capture: %s\n", prog, why);
        dpn_free(w->cap_ring);
        w->cap_ring = NULL;
        return -DPN_ECONFIG;
    }
    w->capw = dpn_capw_open(fd, w->port_id, 0, 0, "dpnet", why, sizeof(why));
    if (w->capw == NULL) {
        fprintf(stderr, "%s: capture: %s\n", prog, why);
        dpn_cap_stop(w->cap);
        w->cap = NULL;
        dpn_free(w->cap_ring);
        w->cap_ring = NULL;
        return -DPN_EIO;
    }
    dpn_capw_source(w->capw, w->queue_id % DPN_MAX_SLOTS, w->cap_ring, true);
    DPN_LOG(INFO, stack, "capturing to %s%s%s", cfg->capture, cfg->capture_filter[0] ? ": " : "",
            cfg->capture_filter);
    return 0;
}

void dpn_cap_file_close(struct dpn_worker *w) {
    if (w->capw == NULL)
        return;
    dpn_cap_stop(w->cap);
    w->cap = NULL;
    uint64_t frames, lost;
    char why[128];
    /* Let the writer drain what is there; give up on a stuck reader after 2 s. */
    dpn_capw_stop(w->capw);
    for (int i = 0; i < 200 && !dpn_capw_finished(w->capw); i++)
        usleep(10000);
    dpn_capw_close(w->capw, &frames, &lost, why, sizeof(why));
    w->capw = NULL;
    fprintf(stderr, "dpnet capture: %" PRIu64 " frames written to %s, %" PRIu64 " lost%s%s\n",
            frames, w->cfg.capture, lost, why[0] ? "; " : "", why);
    dpn_free(w->cap_ring);
    w->cap_ring = NULL;
}
