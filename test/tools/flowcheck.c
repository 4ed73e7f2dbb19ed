/* Rule construction against a PMD's own rte_flow_validate: run as a DPDK
 * primary on a net_tap port (inside a namespace). net_tap validates flow
 * rules in the PMD and installs them as TC flower filters; this kernel has
 * no flower, so installation fails and dpnetd steers in software: the
 * installation checks say "skipped" here, and run where the kernel allows.
 * Prints "ok - ..." / "not ok - ..." lines.
 *
 *   flowcheck <EAL options with --vdev=net_tap0,...> */
#include <stdio.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>

#include "buf.h"
#include "config.h"
#include "port.h"
#include "steer.h"

static int failures;

static void check(bool ok, const char *what, const char *why) {
    printf("%s - flow: %s%s%s\n", ok ? "ok" : "not ok", what, why[0] ? ": " : "", why);
    failures += !ok;
}

int main(int argc, char **argv) {
    if (rte_eal_init(argc, argv) < 0)
        return 1;
    struct dpn_config cfg;
    dpn_config_defaults(&cfg);
    cfg.poll = DPN_POLL_BUSY;
    struct rte_mempool *mp = dpn_pool_create("flowcheck", 4095, 0, 1500, (int)rte_socket_id());
    struct rte_mempool *pools[2] = {mp, mp};
    struct dpn_port_caps caps;
    struct rte_ether_addr mac;
    uint16_t pid;
    if (mp == NULL || dpn_port_open(&cfg, 2, pools, 0, &pid, &caps, &mac) != 0)
        return 1;
    uint32_t ip = rte_cpu_to_be_32(RTE_IPV4(10, 84, 0, 2));
    uint16_t q1 = 1, q2[2] = {0, 1};
    char why[160] = "";

    int rc = dpn_flow_validate(pid, ip, DPN_PROTO_TCP, 7, &q1, 1, why, sizeof why);
    check(rc == 0, "tcp dst port -> queue 1 validates on net_tap", why);
    rc = dpn_flow_validate(pid, ip, DPN_PROTO_UDP, 7, &q1, 1, why, sizeof why);
    check(rc == 0, "udp dst port -> queue 1 validates on net_tap", why);
    why[0] = '\0';
    rc = dpn_flow_validate(pid, ip, DPN_PROTO_TCP, 7, q2, 2, why, sizeof why);
    check(rc != 0 && strstr(why, "software") != NULL, "shared port: no RSS rule on net_tap", why);
    why[0] = '\0';
    uint16_t bad = 9;
    rc = dpn_flow_validate(pid, ip, DPN_PROTO_TCP, 7, &bad, 1, why, sizeof why);
    check(rc != 0, "queue 9 of 2 is refused by the PMD", why);

    /* Installing: the kernel decides. */
    why[0] = '\0';
    if (dpn_flow_probe(pid, ip, 1, why, sizeof why) != 0) {
        printf("# flow: installation skipped: this kernel cannot install net_tap rules (%s); "
               "dpnetd steers in software here\n",
               why);
    } else {
        struct dpn_flow_rule *r = dpn_flow_add(pid, ip, DPN_PROTO_TCP, 7, &q1, 1, why, sizeof why);
        check(r != NULL, "tcp dst port rule installed", why);
        dpn_flow_del(pid, r);
        r = dpn_flow_add_range(pid, ip, DPN_PROTO_TCP, 50176, 0xfc00, 1, why, sizeof why);
        printf("# flow: ephemeral range rule %s%s%s\n", r ? "installed" : "refused",
               r ? "" : ": ", r ? "" : why);
        dpn_flow_del(pid, r);
    }
    dpn_port_close(pid);
    rte_eal_cleanup();
    return failures == 0 ? 0 : 1;
}
