/* Port set-up for a standalone worker: one RX/TX queue pair on one port,
 * with the checksum offloads the PMD advertises. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <rte_bus.h>
#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_devargs.h>
#include <rte_errno.h>
#include <rte_ethdev.h>

#include "config.h"
#include "dpnet.h"
#include "log.h"
#include "port.h"

void dpn_port_dev_name(const char *device, char *name, size_t len) {
    size_t n = strcspn(device, ",");
    if (n >= len)
        n = len - 1;
    memcpy(name, device, n);
    name[n] = '\0';
}

bool dpn_port_is_pci(const char *device) {
    /* [dddd:]bb:dd.f */
    unsigned dom, bus, dev, fn;
    char tail;
    return sscanf(device, "%x:%x:%x.%x%c", &dom, &bus, &dev, &fn, &tail) == 4 ||
           sscanf(device, "%x:%x.%x%c", &bus, &dev, &fn, &tail) == 3;
}

static int find_port(const struct dpn_config *cfg, uint16_t *port_id) {
    if (cfg->device[0] == '\0') {
        uint16_t pid;
        RTE_ETH_FOREACH_DEV(pid) {
            *port_id = pid;
            return 0;
        }
        DPN_LOG(ERR, port,
                "no DPDK port found: set port.device (a vdev such as "
                "net_tap0,iface=dpn0, or a PCI address bound to vfio-pci)");
        return -DPN_ENODEV;
    }
    char name[RTE_ETH_NAME_MAX_LEN];
    dpn_port_dev_name(cfg->device, name, sizeof(name));
    if (rte_eth_dev_get_port_by_name(name, port_id) != 0) {
        DPN_LOG(ERR, port,
                "device '%s' has no DPDK port (not probed: check the PCI address is "
                "bound to vfio-pci and allowed with -a, or the vdev arguments)",
                name);
        return -DPN_ENODEV;
    }
    return 0;
}

bool dpn_port_is_tap(const struct dpn_config *cfg) {
    uint16_t pid = RTE_MAX_ETHPORTS;
    char name[RTE_ETH_NAME_MAX_LEN];
    struct rte_eth_dev_info info;
    if (cfg->device[0] == '\0') {
        RTE_ETH_FOREACH_DEV(pid) {
            break;
        }
    } else {
        dpn_port_dev_name(cfg->device, name, sizeof(name));
        if (rte_eth_dev_get_port_by_name(name, &pid) != 0)
            return false; /* dpn_port_open says why */
    }
    return pid < RTE_MAX_ETHPORTS && rte_eth_dev_info_get(pid, &info) == 0 &&
           info.driver_name != NULL && strcmp(info.driver_name, "net_tap") == 0;
}

static void pick_offloads(const struct rte_eth_dev_info *info, struct rte_eth_conf *conf,
                          struct dpn_port_caps *caps, uint32_t tso, enum dpn_csum_mode csum) {
    uint64_t rx = info->rx_offload_capa, tx = info->tx_offload_capa;
    caps->rx_ip_cksum = rx & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
    caps->rx_l4_cksum = (rx & RTE_ETH_RX_OFFLOAD_TCP_CKSUM) && (rx & RTE_ETH_RX_OFFLOAD_UDP_CKSUM);
    caps->tx_ip_cksum = tx & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
    caps->tx_tcp_cksum = caps->tx_ip_cksum && (tx & RTE_ETH_TX_OFFLOAD_TCP_CKSUM);
    caps->tx_udp_cksum = caps->tx_ip_cksum && (tx & RTE_ETH_TX_OFFLOAD_UDP_CKSUM);
    caps->tx_multi_seg = tx & RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
    bool memif = info->driver_name != NULL && strcmp(info->driver_name, "net_memif") == 0;
    if (csum == DPN_CSUM_AUTO)
        csum = memif ? DPN_CSUM_TRUST : DPN_CSUM_FULL;
    caps->rx_trust = csum == DPN_CSUM_TRUST || csum == DPN_CSUM_NONE;
    caps->tx_none = csum == DPN_CSUM_NONE;

    if (caps->rx_ip_cksum)
        conf->rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
    if (caps->rx_l4_cksum)
        conf->rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TCP_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
    if (caps->tx_ip_cksum)
        conf->txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
    if (caps->tx_tcp_cksum)
        conf->txmode.offloads |= RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
    if (caps->tx_udp_cksum)
        conf->txmode.offloads |= RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
    /* Chains carry zero-copy TCP payload after a header segment. ixgbe
     * already leaves its vector TX path for the checksum offloads. */
    if (caps->tx_multi_seg)
        conf->txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
    /* TSO needs the chains and the TCP checksum offload it implies. ixgbe
     * takes 40 descriptors per frame. DPDK 22.11's net_tap segments in
     * software (still one write per segment) and refuses a TSO frame when
     * tso_segsz plus all the headers, Ethernet's included, exceed the MTU
     * (an L3 limit): a full-sized segment never passes, and its MTU cannot
     * be raised past 1504 (max_rx_pktlen 1522). So net_tap gets TSO only
     * with port.tso 2, and then sends 14 bytes under the MSS (tcp.c). */
    bool tap = info->driver_name != NULL && strcmp(info->driver_name, "net_tap") == 0;
    caps->tx_tso = (tso == 2 || (tso == 1 && !tap)) && (tx & RTE_ETH_TX_OFFLOAD_TCP_TSO) &&
                   caps->tx_multi_seg && caps->tx_tcp_cksum;
    caps->tx_tso_l2 = caps->tx_tso && tap;
    uint16_t lim = info->tx_desc_lim.nb_seg_max;
    caps->tx_tso_segs = lim == 0 || lim > 40 ? 40 : lim;
    if (caps->tx_tso)
        conf->txmode.offloads |= RTE_ETH_TX_OFFLOAD_TCP_TSO;
}

static int configure(uint16_t pid, const struct dpn_config *cfg, uint16_t nq,
                     struct rte_mempool *const *pools, struct dpn_port_caps *caps, bool want_intr) {
    struct rte_eth_dev_info info;
    struct rte_eth_conf conf;
    int rc = rte_eth_dev_info_get(pid, &info);
    if (rc != 0)
        return rc;
    memset(&conf, 0, sizeof(conf));
    pick_offloads(&info, &conf, caps, cfg->tso, cfg->csum);
    conf.intr_conf.rxq = want_intr ? 1 : 0;
    rc = rte_eth_dev_configure(pid, nq, nq, &conf);
    if (rc != 0)
        return rc;

    uint16_t nrx = cfg->rx_desc, ntx = cfg->tx_desc;
    rc = rte_eth_dev_adjust_nb_rx_tx_desc(pid, &nrx, &ntx);
    if (rc != 0)
        return rc;
    int socket = rte_eth_dev_socket_id(pid);
    if (socket < 0)
        socket = (int)rte_socket_id();
    /* A queue out of descriptors (a stalled or dead worker's) drops its own
     * frames: without drop-enable the 82599 holds them in its packet buffer
     * and every other queue, dpnetd's ARP and ICMP included, stalls too. */
    struct rte_eth_rxconf rxc = info.default_rxconf;
    rxc.rx_drop_en = 1;
    for (uint16_t q = 0; q < nq && rc == 0; q++) {
        rc = rte_eth_rx_queue_setup(pid, q, nrx, (unsigned)socket, &rxc, pools[q]);
        if (rc == 0)
            rc = rte_eth_tx_queue_setup(pid, q, ntx, (unsigned)socket, NULL);
    }
    return rc;
}

/* memif's buffer size (its bsize devarg; 2048 when not given). */
static unsigned memif_bsize(const struct rte_eth_dev_info *info) {
    const struct rte_devargs *da = info->device != NULL ? rte_dev_devargs(info->device) : NULL;
    const char *a = da != NULL ? da->args : NULL;
    for (const char *k = a; k != NULL && *k != '\0'; k = strchr(k, ',') ? strchr(k, ',') + 1 : NULL)
        if (strncmp(k, "bsize=", 6) == 0)
            return (unsigned)strtoul(k + 6, NULL, 0);
    return 2048;
}

static void set_mtu(uint16_t pid, const struct dpn_config *cfg, struct dpn_port_caps *caps) {
    uint16_t cur = 0;
    rte_eth_dev_get_mtu(pid, &cur);
    caps->mtu = cfg->mtu;
    if (cur == cfg->mtu)
        return;
    int rc = rte_eth_dev_set_mtu(pid, cfg->mtu);
    struct rte_eth_dev_info info;
    if (rc == -ENOTSUP && rte_eth_dev_info_get(pid, &info) == 0 && info.driver_name != NULL &&
        strcmp(info.driver_name, "net_memif") == 0) {
        /* DPDK 22.11's memif has no MTU to set, nor a limit on what it
         * carries, but a frame over one memif buffer breaks it: its TX
         * marks chained buffers and never clears the mark on a buffer it
         * reuses, and the receiver joins unrelated frames (seen: garbage
         * lengths, the link lost). So every frame must fit one buffer. */
        unsigned need = cfg->mtu + RTE_ETHER_HDR_LEN, bsize = memif_bsize(&info);
        if (bsize >= need) {
            DPN_LOG(INFO, port, "port %u (net_memif): MTU %u, memif buffers of %u bytes", pid,
                    cfg->mtu, bsize);
            return;
        }
        caps->mtu = cur != 0 && cur < cfg->mtu ? cur : cfg->mtu;
        DPN_LOG(WARNING, port,
                "port %u (net_memif): MTU %u needs memif buffers of %u bytes or more "
                "(bsize=%u in the vdev, on both ends; it is %u); using %u",
                pid, cfg->mtu, need, RTE_ALIGN_CEIL(need, 1024u), bsize, caps->mtu);
        return;
    }
    if (rc != 0) {
        /* Keep running at the device's MTU rather than fail: say so. */
        caps->mtu = cur != 0 && cur < cfg->mtu ? cur : cfg->mtu;
        DPN_LOG(WARNING, port, "port %u: cannot set MTU %u (%s); using %u", pid, cfg->mtu,
                rte_strerror(-rc), caps->mtu);
    }
}

/* A NIC's link comes up a while after start (seconds on an 82599, while it
 * negotiates); what is sent before is lost: the first ARP request, a SYN.
 * Wait for it, bounded, and say what came up. Virtual ports are not waited
 * for: memif's link is its peer, which may come later. */
#define LINK_WAIT_MS 10000
static void wait_link(uint16_t pid) {
    struct rte_eth_link link;
    unsigned ms = 0;
    for (;; ms += 50) {
        memset(&link, 0, sizeof(link));
        if (rte_eth_link_get_nowait(pid, &link) != 0)
            return; /* the PMD cannot tell */
        if (link.link_status == RTE_ETH_LINK_UP || ms >= LINK_WAIT_MS)
            break;
        rte_delay_us_sleep(50 * 1000);
    }
    char str[RTE_ETH_LINK_MAX_STR_LEN];
    rte_eth_link_to_str(str, sizeof(str), &link);
    if (link.link_status == RTE_ETH_LINK_UP)
        DPN_LOG(INFO, port, "port %u: %s (after %u ms)", pid, str, ms);
    else
        DPN_LOG(WARNING, port,
                "port %u: link still down %u s after start: going on; what is sent before "
                "it comes up is lost",
                pid, LINK_WAIT_MS / 1000);
}

int dpn_port_open(const struct dpn_config *cfg, uint16_t nq, struct rte_mempool *const *pools,
                  uint16_t intr_queues, uint16_t *port_id, struct dpn_port_caps *caps,
                  struct rte_ether_addr *mac) {
    uint16_t pid;
    int rc = find_port(cfg, &pid);
    if (rc != 0)
        return rc;
    memset(caps, 0, sizeof(*caps));
    struct rte_eth_dev_info info;
    if (rte_eth_dev_info_get(pid, &info) == 0 && info.driver_name != NULL)
        snprintf(caps->driver, sizeof(caps->driver), "%s", info.driver_name);

    bool want_intr = cfg->poll != DPN_POLL_BUSY;
    rc = configure(pid, cfg, nq, pools, caps, want_intr);
    if (rc != 0 && want_intr) {
        /* Not every PMD has RX interrupts (memif, null): retry without. */
        want_intr = false;
        rc = configure(pid, cfg, nq, pools, caps, false);
    }
    if (rc != 0) {
        DPN_LOG(ERR, port, "port %u (%s): configuration failed: %s", pid, caps->driver,
                rte_strerror(-rc));
        return -DPN_EIO;
    }
    set_mtu(pid, cfg, caps);
    if (cfg->mac_set) {
        struct rte_ether_addr a;
        memcpy(a.addr_bytes, cfg->mac, 6);
        rc = rte_eth_dev_default_mac_addr_set(pid, &a);
        if (rc != 0)
            DPN_LOG(WARNING, port, "port %u: cannot set MAC (%s); using the port's own", pid,
                    rte_strerror(-rc));
    }
    rc = rte_eth_dev_start(pid);
    if (rc != 0) {
        DPN_LOG(ERR, port, "port %u (%s): start failed: %s", pid, caps->driver, rte_strerror(-rc));
        return -DPN_EIO;
    }
    if (dpn_port_on_pci(pid))
        wait_link(pid);
    rte_eth_macaddr_get(pid, mac);
    caps->rx_intr = want_intr && intr_queues > 0;
    for (uint16_t q = 0; q < intr_queues && caps->rx_intr; q++)
        caps->rx_intr =
            rte_eth_dev_rx_intr_ctl_q(pid, q, RTE_EPOLL_PER_THREAD, RTE_INTR_EVENT_ADD, NULL) == 0;
    *port_id = pid;
    DPN_LOG(
        INFO, port,
        "port %u (%s) up: %u queue pair%s, mac " RTE_ETHER_ADDR_PRT_FMT
        ", mtu %u, rx csum %s/%s%s, tx csum ip %s tcp %s udp %s, tx chains %s, tso %s, rx intr %s",
        pid, caps->driver, nq, nq == 1 ? "" : "s", RTE_ETHER_ADDR_BYTES(mac), caps->mtu,
        caps->rx_ip_cksum ? "ip" : "-", caps->rx_l4_cksum ? "l4" : "-",
        caps->rx_trust && !caps->rx_l4_cksum ? " (l4 trusted)" : "",
        caps->tx_ip_cksum ? "hw" : "sw",
        caps->tx_tcp_cksum ? "hw"
        : caps->tx_none    ? "none"
                           : "sw",
        caps->tx_udp_cksum ? "hw"
        : caps->tx_none    ? "none"
                           : "sw",
        caps->tx_multi_seg ? "yes (zero-copy send)" : "no",
        caps->tx_tso_l2 ? "yes (net_tap: segments 14 bytes under the MSS)"
        : caps->tx_tso  ? "yes"
                        : "no",
        caps->rx_intr ? "yes" : "no");
    return 0;
}

int dpn_port_intr_enable(uint16_t port_id, uint16_t queue_id) {
    return rte_eth_dev_rx_intr_enable(port_id, queue_id);
}

void dpn_port_intr_disable(uint16_t port_id, uint16_t queue_id) {
    rte_eth_dev_rx_intr_disable(port_id, queue_id);
}

int dpn_port_intr_watch(uint16_t port_id, uint16_t queue_id, bool on) {
    return rte_eth_dev_rx_intr_ctl_q(port_id, queue_id, RTE_EPOLL_PER_THREAD,
                                     on ? RTE_INTR_EVENT_ADD : RTE_INTR_EVENT_DEL, NULL);
}

int dpn_port_rx_fd(uint16_t port_id, uint16_t queue_id) {
    int rc = rte_eth_dev_rx_intr_enable(port_id, queue_id);
    if (rc == 0)
        rte_eth_dev_rx_intr_disable(port_id, queue_id);
    return rc == -ENOTSUP ? rte_eth_dev_rx_intr_ctl_q_get_fd(port_id, queue_id) : -1;
}

int dpn_port_rx_epoll(uint16_t port_id, uint16_t q0, uint16_t nq) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (uint16_t q = q0; ep >= 0 && q < q0 + nq; q++) {
        int fd = dpn_port_rx_fd(port_id, q);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = q};
        if (fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(ep);
            ep = -1;
        }
    }
    return ep;
}

int dpn_port_queue_restart(uint16_t port_id, uint16_t queue_id) {
    int rc = rte_eth_dev_rx_queue_stop(port_id, queue_id);
    if (rc == 0)
        rc = rte_eth_dev_rx_queue_start(port_id, queue_id);
    int tc = rte_eth_dev_tx_queue_stop(port_id, queue_id);
    if (tc == 0)
        tc = rte_eth_dev_tx_queue_start(port_id, queue_id);
    return rc != 0 ? rc : tc;
}

bool dpn_port_on_pci(uint16_t port_id) {
    struct rte_eth_dev_info info;
    return rte_eth_dev_info_get(port_id, &info) == 0 && info.device != NULL &&
           strcmp(rte_bus_name(rte_dev_bus(info.device)), "pci") == 0;
}

void dpn_port_tx_release(uint16_t port_id, uint16_t queue_id) {
    if (rte_eth_tx_done_cleanup(port_id, queue_id, 0) == -ENOTSUP && dpn_port_on_pci(port_id))
        rte_eth_dev_stop(port_id);
}

void dpn_port_close(uint16_t port_id) {
    rte_eth_dev_stop(port_id);
    rte_eth_dev_close(port_id);
}
