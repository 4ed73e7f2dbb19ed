/* One DPDK port and its RX/TX queue pairs, set up by the process that owns
 * it (a standalone worker: one pair; dpnetd: one per worker slot).
 * Set-up and tear-down only; the data path lives in stack/rx.c and tx.c. */
#ifndef DPNET_PORT_H
#define DPNET_PORT_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ether.h>
#include <rte_mempool.h>

struct dpn_config;

/* What the PMD does for us; the data path and lwIP's per-netif checksum
 * flags follow these. */
struct dpn_port_caps {
    bool rx_ip_cksum;  /* mbuf ol_flags carry IP checksum status */
    bool rx_l4_cksum;  /* ... and TCP/UDP checksum status */
    bool tx_ip_cksum;  /* PMD fills the IPv4 header checksum */
    bool tx_tcp_cksum; /* PMD fills TCP checksums (we write the pseudo-header sum) */
    bool tx_udp_cksum;
    bool rx_trust;     /* port.csum trust or none: TCP/UDP checksums the PMD did not check are not
                          checked in software either */
    bool tx_none;      /* port.csum none: TCP/UDP checksums the PMD does not fill are left out */
    bool tx_multi_seg; /* PMD sends mbuf chains: zero-copy TCP send (tx.c) */
    bool tx_tso; /* PMD segments TCP (port.tso on): tx.c sends runs of segments as one frame */
    uint16_t tx_tso_segs; /* mbufs per TSO frame the PMD takes */
    bool tx_tso_l2;       /* DPDK 22.11 net_tap: segments must fit the MTU with their Ethernet
                             header (port.c says why; tcp.c sends 14 bytes under the MSS) */
    bool rx_intr;         /* RX interrupts usable for sleeping */
    uint16_t mtu;
    char driver[32];
};

/* Find the port for cfg->device (or the first port), configure nq queue
 * pairs (RX queue q fills from pools[q]) with the offloads the PMD
 * advertises, start it. RX interrupts of queues 0..intr_queues-1 go to the
 * calling thread's epoll set (poll modes other than busy). Returns 0 or
 * -DPN_E* with a logged message. */
int dpn_port_open(const struct dpn_config *cfg, uint16_t nq, struct rte_mempool *const *pools,
                  uint16_t intr_queues, uint16_t *port_id, struct dpn_port_caps *caps,
                  struct rte_ether_addr *mac);

/* True when cfg's port is a net_tap device. */
bool dpn_port_is_tap(const struct dpn_config *cfg);

/* Arm / disarm the RX interrupt of queue 0 for sleeping. */
int dpn_port_intr_enable(uint16_t port_id, uint16_t queue_id);
void dpn_port_intr_disable(uint16_t port_id, uint16_t queue_id);
/* Add (on) or remove a queue's interrupt from the calling thread's epoll
 * set, which rte_epoll_wait sleeps on (and whose event fds it reads). */
int dpn_port_intr_watch(uint16_t port_id, uint16_t queue_id, bool on);
/* Where the PMD registers queue event fds but cannot arm them (net_tap
 * 22.11: its fds are the tun queues, readable while frames wait, never to
 * be read by anyone but the PMD): that fd, to sleep on in one's own epoll;
 * -1 where interrupts arm (ixgbe: dpn_port_intr_enable, then an eventfd
 * written once per interrupt) or there are no fds (memif, null). */
int dpn_port_rx_fd(uint16_t port_id, uint16_t queue_id);
/* An epoll fd over the dpn_port_rx_fd of queues q0..q0+nq-1; -1 unless
 * every one has such an fd. Set-up only. */
int dpn_port_rx_epoll(uint16_t port_id, uint16_t q0, uint16_t nq);

/* A process killed inside rx_burst or tx_burst can leave a queue's ring
 * half updated (ixgbe's RX re-posts descriptors before it moves rx_tail:
 * the queue would then wait on a descriptor the NIC has passed). Stop and
 * start the queue pair where the PMD can (ixgbe: the rings' mbufs are
 * freed, fresh ones posted); 0, or a negative errno (-ENOTSUP: e1000's em,
 * virtio, memif). Only for a queue nobody else uses. */
int dpn_port_queue_restart(uint16_t port_id, uint16_t queue_id);
/* Is a running port on the PCI bus (a DPDK secondary must probe it itself: -a)? */
bool dpn_port_on_pci(uint16_t port_id);
/* At exit, before counting free mbufs: sent mbufs the PMD still holds come
 * back (tx_done_cleanup; a PCI NIC without it, e1000's em, is stopped:
 * its queues free them). */
void dpn_port_tx_release(uint16_t port_id, uint16_t queue_id);
void dpn_port_close(uint16_t port_id);

/* Name of the ethdev a device string creates ("net_tap0,iface=x" -> "net_tap0"). */
void dpn_port_dev_name(const char *device, char *name, size_t len);
/* True when device is a PCI address ("0000:03:00.0" or "03:00.0"). */
bool dpn_port_is_pci(const char *device);

#endif
