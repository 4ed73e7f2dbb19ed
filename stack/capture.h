/* Packet capture: copies of the frames a worker (or dpnetd) takes from and
 * gives to its port, appended to a byte ring (abi.h's struct dpn_cap_ring)
 * that a writer thread turns into a pcapng file with DPDK's rte_pcapng.
 *
 * Each frame is captured once per direction, by the process that consumes
 * it: a worker at delivery to its lwIP (its own queue, and what dpnetd
 * steered to its ring) and at tx_burst; dpnetd for what it keeps (its lwIP,
 * the exception path) and what it sends. The record's queue says who: the
 * worker's slot, 0 for dpnetd.
 *
 * Off, the loop pays one predictable branch per burst (w->cap == NULL).
 * On, a frame costs the filter and a copy; a full ring drops and counts,
 * it never waits for the writer. */
#ifndef DPNET_CAPTURE_H
#define DPNET_CAPTURE_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_mbuf.h>

#include "abi.h"

/* The producer's side, owned by the capturing thread. */
struct dpn_cap {
    struct dpn_cap_ring *r;
    uint32_t ninsns; /* 0: every frame */
    uint32_t snaplen;
    uint64_t head; /* ours; r->head is its published copy */
    uint64_t frames, dropped;
    struct dpn_cap_insn insns[DPN_CAP_INSNS]; /* our copy of the filter, checked */
};

/* capture.c, per burst: copy the frames filter keeps into the ring. */
void dpn_cap_frames(struct dpn_cap *c, struct rte_mbuf *const *pkts, uint16_t n, uint16_t queue,
                    uint8_t dir);

/* capture_ctl.c, control path. */
/* Compile filter (tcpdump's syntax) into r's header, with snaplen (0 = all
 * of each frame). 0, or -1 with libpcap's reason in why. */
int dpn_cap_compile(struct dpn_cap_ring *r, const char *filter, uint32_t snaplen, char *why,
                    size_t n);
/* A producer on r as its header says (the filter copied and checked by
 * libpcap's bpf_validate), starting at r->head; NULL with why when the
 * filter is not a sound program. */
struct dpn_cap *dpn_cap_start(struct dpn_cap_ring *r, char *why, size_t n);
void dpn_cap_stop(struct dpn_cap *c);

/* The writer: a control thread draining rings into one pcapng file. */
struct dpn_capw;
/* fd: open for writing (taken: closed by dpn_capw_close); port: the DPDK
 * port the frames belong to; count, duration_ms: stop after (0 = never). */
struct dpn_capw *dpn_capw_open(int fd, uint16_t port, uint64_t count, uint64_t duration_ms,
                               const char *app, char *why, size_t n);
/* Source i (0 .. DPN_MAX_SLOTS - 1) reads r from now on (want) or no more.
 * r stays mapped for the life of the writer. */
void dpn_capw_source(struct dpn_capw *cw, unsigned i, struct dpn_cap_ring *r, bool want);
/* Count or duration reached, or the file failed. */
bool dpn_capw_done(const struct dpn_capw *cw);
/* End: the thread drains what the rings hold, writes the drop counts and
 * closes the file, then says finished. */
void dpn_capw_stop(struct dpn_capw *cw);
bool dpn_capw_finished(const struct dpn_capw *cw);
/* Stop, wait for the thread (one that still waits for a pipe's reader is
 * told to give up: at most 100 ms), free. Frames written, frames lost
 * (full rings, the writer's own failures), and why the file failed ("": it
 * did not). */
void dpn_capw_close(struct dpn_capw *cw, uint64_t *frames, uint64_t *dropped, char *why, size_t n);

/* A standalone worker's --capture FILE (config capture.*): open, start the
 * writer; 0 or -DPN_E* with a line on stderr. Close: drain, say what was
 * written. */
struct dpn_worker;
int dpn_cap_file_open(struct dpn_worker *w, const char *prog);
void dpn_cap_file_close(struct dpn_worker *w);

#endif
