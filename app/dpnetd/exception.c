/* The exception path: instead of answering unclaimed traffic itself (RST,
 * port unreachable), dpnetd hands it to the Linux kernel through a tap
 * interface with the port's MAC, and sends back what the kernel answers, so
 * ssh and other kernel services keep working on a port given to DPDK. The
 * administrator gives that interface the host's address. ARP goes to both:
 * the kernel needs it, and dpnetd's table is the one workers read. */
#include <stdio.h>
#include <string.h>

#include <rte_bus_vdev.h>
#include <rte_ethdev.h>

#include "capture.h"
#include "dpnetd.h"
#include "log.h"

#define EXC_VDEV "net_tap_dpnx"

int dpnd_exc_open(struct dpnd *d, const struct dpn_config *cfg) {
    char args[128];
    d->exc_port = -1;
    if (cfg->exception[0] == '\0')
        return 0;
    snprintf(args, sizeof(args), "iface=%s,mac=" RTE_ETHER_ADDR_PRT_FMT, cfg->exception,
             RTE_ETHER_ADDR_BYTES(&d->w->mac));
    if (rte_vdev_init(EXC_VDEV, args) != 0) {
        fprintf(stderr, "dpnetd: cannot create the exception interface %s (%s)\n", cfg->exception,
                args);
        return -DPN_EIO;
    }
    struct dpn_config c = *cfg;
    snprintf(c.device, sizeof(c.device), "%s", EXC_VDEV);
    c.poll = DPN_POLL_BUSY; /* no interrupts: the daemon's sleeps are short */
    struct dpn_port_caps caps;
    struct rte_ether_addr mac;
    uint16_t pid;
    int rc = dpn_port_open(&c, 1, &d->rx_pool, 0, &pid, &caps, &mac);
    if (rc != 0)
        return rc;
    d->exc_port = pid;
    DPN_LOG(INFO, app, "exception path: unclaimed traffic goes to Linux interface %s",
            cfg->exception);
    return 0;
}

static void send_all(uint16_t port, struct rte_mbuf **pkts, uint16_t n, uint64_t *drops) {
    uint16_t k = rte_eth_tx_burst(port, 0, pkts, n);
    if (k < n) {
        *drops += n - k;
        rte_pktmbuf_free_bulk(pkts + k, n - k);
    }
}

/* Frames no worker claimed: IPv4 to the kernel, ARP to the kernel and to us.
 * Returns how many of pkts remain for dpnetd's own lwIP (compacted). */
uint16_t dpnd_exc_divert(struct dpnd *d, struct rte_mbuf **pkts, uint16_t n) {
    struct rte_mbuf *out[DPN_BURST];
    uint16_t keep = 0, nout = 0;
    for (uint16_t i = 0; i < n; i++) {
        struct rte_mbuf *m = pkts[i];
        rte_be16_t type = rte_pktmbuf_mtod(m, struct rte_ether_hdr *)->ether_type;
        if (type == RTE_BE16(RTE_ETHER_TYPE_IPV4)) {
            out[nout++] = m;
            continue;
        }
        if (type == RTE_BE16(RTE_ETHER_TYPE_ARP)) {
            struct rte_mbuf *c = rte_pktmbuf_copy(m, d->rx_pool, 0, UINT32_MAX);
            if (c != NULL)
                out[nout++] = c;
        }
        pkts[keep++] = m;
    }
    if (nout > 0) {
        d->st.to_kernel += nout;
        send_all((uint16_t)d->exc_port, out, nout, &d->st.exc_drops);
    }
    return keep;
}

/* What the kernel sends goes out of the port (IPv4 and ARP only: the
 * kernel's IPv6 chatter has no business on a DPDK port). */
void dpnd_exc_poll(struct dpnd *d) {
    struct rte_mbuf *pkts[DPN_BURST], *out[DPN_BURST];
    uint16_t n = rte_eth_rx_burst((uint16_t)d->exc_port, 0, pkts, DPN_BURST), nout = 0;
    for (uint16_t i = 0; i < n; i++) {
        rte_be16_t type = rte_pktmbuf_mtod(pkts[i], struct rte_ether_hdr *)->ether_type;
        if (type == RTE_BE16(RTE_ETHER_TYPE_IPV4) || type == RTE_BE16(RTE_ETHER_TYPE_ARP))
            out[nout++] = pkts[i];
        else
            rte_pktmbuf_free(pkts[i]);
    }
    if (nout > 0) {
        d->st.from_kernel += nout;
        if (unlikely(d->w->cap != NULL))
            dpn_cap_frames(d->w->cap, out, nout, 0, DPN_CAP_OUT);
        send_all(d->port_id, out, nout, &d->st.exc_drops);
    }
}
