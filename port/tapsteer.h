/* SYN guard queues on net_tap: the kernel sorts frames before they queue.
 *
 * A tap is one drop-tail ring per queue (tx_queue_len frames) that we read
 * with one readv per frame. A flood written faster than that fills the ring,
 * and then the kernel drops every frame alike: a keeper's data, a genuine
 * client's SYN. No stack fixes that after the fact: the frame is gone before
 * any of it runs. tun picks a frame's queue with a steering eBPF program when
 * one is set (TUNSETSTEERINGEBPF), so the standalone worker opens three
 * queues and sets this one:
 *   queue 0  every frame that is not a bare SYN (established connections,
 *            handshake ACKs, ARP, ICMP, UDP)
 *   queue 1  bare SYNs from sources within their budget
 *   queue 2  bare SYNs from a source past DPN_TAPSTEER_SYN_BUDGET in the
 *            current DPN_TAPSTEER_WINDOW_MS (an LRU map of sources)
 * and reads each of them every poll. Only queue 2's ring overflows under a
 * flood from few sources; queue 0 never sees it. A flood from many spoofed
 * sources lands in queue 1 with the genuine SYNs, as it would on one RSS
 * queue of a NIC; established connections stay unharmed either way.
 * Set-up only. */
#ifndef DPNET_TAPSTEER_H
#define DPNET_TAPSTEER_H

#include <stdint.h>

#define DPN_TAPSTEER_QUEUES 3
#define DPN_TAPSTEER_SYN_BUDGET 64 /* SYNs per source and window into queue 1 */
#define DPN_TAPSTEER_WINDOW_MS 100
#define DPN_TAPSTEER_SOURCES 4096 /* sources the program remembers (LRU) */

struct dpn_tapsteer {
    int prog_fd;
    int map_fd;
};

/* Load the program and its map. 0, or -errno (no bpf(): old kernel, no
 * CAP_BPF, seccomp). The unit test runs it with BPF_PROG_TEST_RUN. */
int dpn_tapsteer_load(struct dpn_tapsteer *s);
/* Load it and set it on net_tap port port_id (all its queues share it). */
int dpn_tapsteer_attach(uint16_t port_id, struct dpn_tapsteer *s);
/* Take it off the device (when attached) and close it. */
void dpn_tapsteer_close(struct dpn_tapsteer *s, uint16_t port_id);

#endif
