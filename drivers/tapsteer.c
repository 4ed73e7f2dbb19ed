/* SYN guard queues on net_tap (tapsteer.h): the steering program, written
 * as eBPF instructions here (no libbpf, no compiler for BPF: 80
 * instructions), its map, and setting it on the tun device. */
#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_ethdev.h>

#include "log.h"
#include "tapsig.h"
#include "tapsteer.h"

static int sys_bpf(enum bpf_cmd cmd, union bpf_attr *attr) {
    return (int)syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

/* A tiny assembler: instructions in order, jumps to labels patched at the end. */
enum label { L_RET0, L_RET2, L_RESET, L_NEW, L_COUNT };
struct prog {
    struct bpf_insn insn[128];
    unsigned n;
    int at[L_COUNT];  /* instruction index of each label */
    int jump_to[128]; /* label a jump at index i goes to, or -1 */
};

static void emit(struct prog *p, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    RTE_VERIFY(p->n < RTE_DIM(p->insn)); /* a program that outgrew its array: our bug */
    p->jump_to[p->n] = -1;
    p->insn[p->n++] =
        (struct bpf_insn){.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm};
}
static void jump(struct prog *p, uint8_t op, uint8_t dst, int32_t imm, enum label l) {
    emit(p, BPF_JMP | op | BPF_K, dst, 0, 0, imm);
    p->jump_to[p->n - 1] = (int)l;
}
static void label(struct prog *p, enum label l) {
    p->at[l] = (int)p->n;
}
static void ld_map(struct prog *p, uint8_t dst, int map_fd) {
    emit(p, BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, map_fd);
    emit(p, 0, 0, 0, 0, 0);
}
static void ret(struct prog *p, int32_t v) {
    emit(p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, v);
    emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
}
#define ALU(p, op, dst, imm) emit(p, BPF_ALU64 | (op) | BPF_K, dst, 0, 0, imm)
#define MOV(p, dst, src) emit(p, BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0)
#define CALL(p, fn) emit(p, BPF_JMP | BPF_CALL, 0, 0, 0, fn)
#define LDX(p, size, dst, src, off) emit(p, BPF_LDX | BPF_MEM | (size), dst, src, off, 0)
#define STX(p, size, dst, src, off) emit(p, BPF_STX | BPF_MEM | (size), dst, src, off, 0)
#define ST(p, size, dst, off, imm) emit(p, BPF_ST | BPF_MEM | (size), dst, 0, off, imm)

/* The map's value: start of the source's current window, SYNs in it. */
#define V_START 0
#define V_COUNT 8

/* Copy len bytes at offset (a register, or an immediate when reg is -1)
 * from the Ethernet header to the stack at fp+to; on failure (frame too
 * short) queue 0. Relative to the MAC header, not skb->data: tun runs the
 * program with data at the MAC header, BPF_PROG_TEST_RUN with it pulled. */
static void load(struct prog *p, int reg, int32_t off, int16_t to, int32_t len) {
    MOV(p, BPF_REG_1, BPF_REG_6);
    if (reg >= 0)
        MOV(p, BPF_REG_2, (uint8_t)reg);
    else
        emit(p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_2, 0, 0, off);
    MOV(p, BPF_REG_3, BPF_REG_10);
    ALU(p, BPF_ADD, BPF_REG_3, to);
    emit(p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_4, 0, 0, len);
    emit(p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_5, 0, 0, BPF_HDR_START_MAC);
    CALL(p, BPF_FUNC_skb_load_bytes_relative);
    jump(p, BPF_JNE, BPF_REG_0, 0, L_RET0);
}

/* Stack: fp-66 Ethernet + IPv4 header (34 bytes), fp-72 the TCP flags,
 * fp-24 a new map value, fp-4 the key. Loaded bytes are in network order,
 * compared as the little-endian words they make. */
#define HDR (-66) /* so that the source address (HDR + 26) is 4-byte aligned */
static void build(struct prog *p, int map_fd) {
    memset(p, 0, sizeof(*p));
    MOV(p, BPF_REG_6, BPF_REG_1);
    load(p, -1, 0, HDR, 34);
    LDX(p, BPF_H, BPF_REG_0, BPF_REG_10, HDR + 12); /* ethertype 0x0800 */
    jump(p, BPF_JNE, BPF_REG_0, 0x0008, L_RET0);
    LDX(p, BPF_B, BPF_REG_0, BPF_REG_10, HDR + 23); /* protocol */
    jump(p, BPF_JNE, BPF_REG_0, 6, L_RET0);
    LDX(p, BPF_H, BPF_REG_0, BPF_REG_10, HDR + 20); /* fragment offset: */
    ALU(p, BPF_AND, BPF_REG_0, 0xff1f);             /* a later one has no TCP header */
    jump(p, BPF_JNE, BPF_REG_0, 0, L_RET0);
    LDX(p, BPF_B, BPF_REG_7, BPF_REG_10, HDR + 14); /* IHL */
    ALU(p, BPF_AND, BPF_REG_7, 0xf);
    ALU(p, BPF_LSH, BPF_REG_7, 2);
    jump(p, BPF_JLT, BPF_REG_7, 20, L_RET0);
    ALU(p, BPF_ADD, BPF_REG_7, 14 + 13);
    load(p, BPF_REG_7, 0, -72, 1);
    LDX(p, BPF_B, BPF_REG_0, BPF_REG_10, -72);
    ALU(p, BPF_AND, BPF_REG_0, 0x12); /* SYN, ACK */
    jump(p, BPF_JNE, BPF_REG_0, 0x02, L_RET0);
    LDX(p, BPF_W, BPF_REG_0, BPF_REG_10, HDR + 26); /* source address: the key */
    STX(p, BPF_W, BPF_REG_10, BPF_REG_0, -4);
    ld_map(p, BPF_REG_1, map_fd);
    MOV(p, BPF_REG_2, BPF_REG_10);
    ALU(p, BPF_ADD, BPF_REG_2, -4);
    CALL(p, BPF_FUNC_map_lookup_elem);
    jump(p, BPF_JEQ, BPF_REG_0, 0, L_NEW);
    MOV(p, BPF_REG_8, BPF_REG_0);
    CALL(p, BPF_FUNC_ktime_get_ns);
    LDX(p, BPF_DW, BPF_REG_1, BPF_REG_8, V_START);
    MOV(p, BPF_REG_2, BPF_REG_0);
    emit(p, BPF_ALU64 | BPF_SUB | BPF_X, BPF_REG_2, BPF_REG_1, 0, 0);
    jump(p, BPF_JGT, BPF_REG_2, DPN_TAPSTEER_WINDOW_MS * 1000000, L_RESET);
    LDX(p, BPF_DW, BPF_REG_1, BPF_REG_8, V_COUNT);
    ALU(p, BPF_ADD, BPF_REG_1, 1);
    STX(p, BPF_DW, BPF_REG_8, BPF_REG_1, V_COUNT); /* races between CPUs only miscount */
    jump(p, BPF_JGT, BPF_REG_1, DPN_TAPSTEER_SYN_BUDGET, L_RET2);
    ret(p, 1);
    label(p, L_RESET);
    STX(p, BPF_DW, BPF_REG_8, BPF_REG_0, V_START);
    ST(p, BPF_DW, BPF_REG_8, V_COUNT, 1);
    ret(p, 1);
    label(p, L_NEW);
    CALL(p, BPF_FUNC_ktime_get_ns);
    STX(p, BPF_DW, BPF_REG_10, BPF_REG_0, -24 + V_START);
    ST(p, BPF_DW, BPF_REG_10, -24 + V_COUNT, 1);
    ld_map(p, BPF_REG_1, map_fd);
    MOV(p, BPF_REG_2, BPF_REG_10);
    ALU(p, BPF_ADD, BPF_REG_2, -4);
    MOV(p, BPF_REG_3, BPF_REG_10);
    ALU(p, BPF_ADD, BPF_REG_3, -24);
    emit(p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_4, 0, 0, BPF_ANY);
    CALL(p, BPF_FUNC_map_update_elem);
    ret(p, 1);
    label(p, L_RET2);
    ret(p, 2);
    label(p, L_RET0);
    ret(p, 0);
    for (unsigned i = 0; i < p->n; i++)
        if (p->jump_to[i] >= 0)
            p->insn[i].off = (int16_t)(p->at[p->jump_to[i]] - (int)i - 1);
}

int dpn_tapsteer_load(struct dpn_tapsteer *s) {
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_type = BPF_MAP_TYPE_LRU_HASH;
    a.key_size = 4;
    a.value_size = 16;
    a.max_entries = DPN_TAPSTEER_SOURCES;
    s->map_fd = sys_bpf(BPF_MAP_CREATE, &a);
    if (s->map_fd < 0)
        return -errno;
    static struct prog p; /* set-up only, one thread */
    build(&p, s->map_fd);
    static char log[8192];
    memset(&a, 0, sizeof(a));
    a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    a.insns = (uintptr_t)p.insn;
    a.insn_cnt = p.n;
    a.license = (uintptr_t) "GPL"; /* ktime_get_ns and the map helpers are GPL-only */
    a.log_buf = (uintptr_t)log;
    a.log_size = sizeof(log);
    a.log_level = 1;
    s->prog_fd = sys_bpf(BPF_PROG_LOAD, &a);
    if (s->prog_fd < 0) {
        int e = errno;
        if (e != EPERM && e != ENOSYS)
            DPN_LOG(DEBUG, port, "steering program refused by the verifier: %s", log);
        close(s->map_fd);
        s->map_fd = -1;
        return -e;
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
