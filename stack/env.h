/* Where a worker runs, chosen once in dpn_init: standalone (it owns its
 * port and its lwIP does ARP: env_standalone.c) or attached to dpnetd (the
 * daemon owns the port, steers frames to it and answers ARP: attach.c).
 * Everything that differs between the two is one of these; the rest of the
 * stack never asks which. A NULL hook has nothing to do there. */
#ifndef DPNET_ENV_H
#define DPNET_ENV_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ether.h>
#include <rte_mbuf.h>

#include "lwip/netif.h"

struct dpn_worker;

struct dpn_env {
    const char *name;
    bool own_arp; /* our lwIP answers and learns ARP (arp_guard.c applies) */
    /* RX: of the frames our queue gave us, keep ours in place; the count kept. */
    uint16_t (*rx_keep)(struct dpn_worker *w, struct rte_mbuf **pkts, uint16_t n);
    /* RX from elsewhere (dpnetd's ring for us): at most max frames. */
    uint16_t (*rx_more)(struct dpn_worker *w, struct rte_mbuf **pkts, uint16_t max);
    /* The MAC of next hop nh_be (network order); false when not known yet. */
    bool (*neigh)(struct dpn_worker *w, uint32_t nh_be, struct rte_ether_addr *mac);
    netif_output_fn output; /* lwIP's IPv4 output on our netif */
    netif_input_fn input;   /* and its input */
    /* A listener or UDP socket on port: 0 or -DPN_E*; and its end. */
    int (*bind)(struct dpn_worker *w, uint8_t proto, uint16_t port, bool listen);
    void (*unbind)(struct dpn_worker *w, uint8_t proto, uint16_t port);
    /* Local ports for outgoing connections: the next one to try, from a
     * range of eph_span; then that one is in use by proto. */
    uint16_t (*eph_port)(struct dpn_worker *w);
    unsigned eph_span;
    void (*eph_used)(struct dpn_worker *w, uint8_t proto, uint16_t port);
    void (*tick)(struct dpn_worker *w); /* once a millisecond */
    /* The port's count of frames lost for want of an RX mbuf. */
    uint64_t (*rx_nombuf)(const struct dpn_worker *w);
    /* Around a sleep on w->sleep_fd: false, do not sleep (work came). */
    bool (*sleep_begin)(struct dpn_worker *w);
    void (*sleep_end)(struct dpn_worker *w);
};

extern const struct dpn_env dpn_env_standalone, dpn_env_attached;

#endif
