/* SYN guard queues on net_tap (tapsteer.h): the steering program, written
 * as eBPF instructions (bpf_asm.h), its map, and setting it on the tun
 * device. */
#include <errno.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_ethdev.h>

#include "bpf_asm.h"
#include "log.h"
#include "tapsig.h"
#include "tapsteer.h"

enum { L_RET0, L_RET2, L_RESET, L_NEW };

/* The map's value: start of the source's current window, SYNs in it. */
#define V_START 0
#define V_COUNT 8

/* Stack: fp-66 Ethernet + IPv4 header (34 bytes), fp-72 the TCP flags,
 * fp-24 a new map value, fp-4 the key. Loaded bytes are in network order,
 * compared as the little-endian words they make. */
#define HDR (-66) /* so that the source address (HDR + 26) is 4-byte aligned */
static void build(struct bpf_asm *p, int map_fd) {
    memset(p, 0, sizeof(*p));
    A_MOV_X(p, BPF_REG_6, BPF_REG_1);
    bpf_load_mac(p, -1, 0, HDR, 34, L_RET0);
    A_LDX(p, BPF_H, BPF_REG_0, BPF_REG_10, HDR + 12); /* ethertype 0x0800 */
    bpf_jump(p, BPF_JMP, BPF_JNE, BPF_REG_0, 0x0008, L_RET0);
    A_LDX(p, BPF_B, BPF_REG_0, BPF_REG_10, HDR + 23); /* protocol */
    bpf_jump(p, BPF_JMP, BPF_JNE, BPF_REG_0, 6, L_RET0);
    A_LDX(p, BPF_H, BPF_REG_0, BPF_REG_10, HDR + 20); /* fragment offset: */
    A_ALU_K(p, BPF_AND, BPF_REG_0, 0xff1f);           /* a later one has no TCP header */
    bpf_jump(p, BPF_JMP, BPF_JNE, BPF_REG_0, 0, L_RET0);
    A_LDX(p, BPF_B, BPF_REG_7, BPF_REG_10, HDR + 14); /* IHL */
    A_ALU_K(p, BPF_AND, BPF_REG_7, 0xf);
    A_ALU_K(p, BPF_LSH, BPF_REG_7, 2);
    bpf_jump(p, BPF_JMP, BPF_JLT, BPF_REG_7, 20, L_RET0);
    A_ALU_K(p, BPF_ADD, BPF_REG_7, 14 + 13);
    bpf_load_mac(p, BPF_REG_7, 0, -72, 1, L_RET0);
    A_LDX(p, BPF_B, BPF_REG_0, BPF_REG_10, -72);
    A_ALU_K(p, BPF_AND, BPF_REG_0, 0x12); /* SYN, ACK */
    bpf_jump(p, BPF_JMP, BPF_JNE, BPF_REG_0, 0x02, L_RET0);
    A_LDX(p, BPF_W, BPF_REG_0, BPF_REG_10, HDR + 26); /* source address: the key */
    A_STX(p, BPF_W, BPF_REG_10, BPF_REG_0, -4);
    bpf_lookup(p, map_fd, -4);
    bpf_jump(p, BPF_JMP, BPF_JEQ, BPF_REG_0, 0, L_NEW);
    A_MOV_X(p, BPF_REG_8, BPF_REG_0);
    A_CALL_FN(p, BPF_FUNC_ktime_get_ns);
    A_LDX(p, BPF_DW, BPF_REG_1, BPF_REG_8, V_START);
    A_MOV_X(p, BPF_REG_2, BPF_REG_0);
    A_ALU_X(p, BPF_SUB, BPF_REG_2, BPF_REG_1);
    bpf_jump(p, BPF_JMP, BPF_JGT, BPF_REG_2, DPN_TAPSTEER_WINDOW_MS * 1000000, L_RESET);
    A_LDX(p, BPF_DW, BPF_REG_1, BPF_REG_8, V_COUNT);
    A_ALU_K(p, BPF_ADD, BPF_REG_1, 1);
    A_STX(p, BPF_DW, BPF_REG_8, BPF_REG_1, V_COUNT); /* races between CPUs only miscount */
    bpf_jump(p, BPF_JMP, BPF_JGT, BPF_REG_1, DPN_TAPSTEER_SYN_BUDGET, L_RET2);
    bpf_ret(p, 1);
    bpf_label(p, L_RESET);
    A_STX(p, BPF_DW, BPF_REG_8, BPF_REG_0, V_START);
    A_ST(p, BPF_DW, BPF_REG_8, V_COUNT, 1);
    bpf_ret(p, 1);
    bpf_label(p, L_NEW);
    A_CALL_FN(p, BPF_FUNC_ktime_get_ns);
    A_STX(p, BPF_DW, BPF_REG_10, BPF_REG_0, -24 + V_START);
    A_ST(p, BPF_DW, BPF_REG_10, -24 + V_COUNT, 1);
    bpf_update(p, map_fd, -4, -24);
    bpf_ret(p, 1);
    bpf_label(p, L_RET2);
    bpf_ret(p, 2);
    bpf_label(p, L_RET0);
    bpf_ret(p, 0);
    bpf_resolve(p);
}

int dpn_tapsteer_load(struct dpn_tapsteer *s) {
    s->map_fd = bpf_map_new(BPF_MAP_TYPE_LRU_HASH, 4, 16, DPN_TAPSTEER_SOURCES);
    if (s->map_fd < 0)
        return s->map_fd;
    static struct bpf_asm p; /* set-up only, one thread */
    static char log[8192];
    build(&p, s->map_fd);
    s->prog_fd = bpf_prog_new(&p, log, sizeof(log));
    if (s->prog_fd < 0) {
        int rc = s->prog_fd;
        if (rc != -EPERM && rc != -ENOSYS)
            DPN_LOG(DEBUG, port, "steering program refused by the verifier: %s", log);
        close(s->map_fd);
        s->map_fd = -1;
        return rc;
    }
    return 0;
}

/* net_tap keeps its queue fds to itself: find one (tapsig.c). */
static int tun_fd(uint16_t port_id) {
    struct rte_eth_dev_info info;
    char ifname[IF_NAMESIZE];
    int fd[RTE_MAX_QUEUES_PER_PORT < 16 ? RTE_MAX_QUEUES_PER_PORT : 16];
    if (rte_eth_dev_info_get(port_id, &info) != 0 || info.if_index == 0 ||
        if_indextoname(info.if_index, ifname) == NULL)
        return -1;
    return dpn_tun_fds(ifname, fd, RTE_DIM(fd)) > 0 ? fd[0] : -1;
}

int dpn_tapsteer_attach(uint16_t port_id, struct dpn_tapsteer *s) {
    int rc = dpn_tapsteer_load(s);
    if (rc != 0)
        return rc;
    int fd = tun_fd(port_id);
    if (fd < 0 || ioctl(fd, TUNSETSTEERINGEBPF, &s->prog_fd) != 0) {
        rc = fd < 0 ? -ENODEV : -errno;
        close(s->prog_fd);
        close(s->map_fd);
        s->prog_fd = s->map_fd = -1;
    }
    return rc;
}

void dpn_tapsteer_close(struct dpn_tapsteer *s, uint16_t port_id) {
    if (s->prog_fd < 0)
        return;
    int fd = tun_fd(port_id), none = -1;
    if (fd >= 0)
        ioctl(fd, TUNSETSTEERINGEBPF, &none);
    close(s->prog_fd);
    close(s->map_fd);
    s->prog_fd = s->map_fd = -1;
}
