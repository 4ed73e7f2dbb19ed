/* A tiny eBPF assembler for the kernel-side steering programs of net_tap
 * (tapsteer.c, steer_tun.c): instructions in order, jumps to numbered
 * labels patched at the end, loads relative to the Ethernet header, and the
 * bpf() calls to create maps and load programs. No libbpf, no BPF compiler.
 * Set-up only. */
#ifndef DPNET_BPF_ASM_H
#define DPNET_BPF_ASM_H

#include <errno.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <rte_debug.h>

#define BPF_ASM_MAX 256
#define BPF_ASM_LABELS 16

struct bpf_asm {
    struct bpf_insn insn[BPF_ASM_MAX];
    unsigned n;
    int at[BPF_ASM_LABELS];   /* instruction index of each label */
    int jump_to[BPF_ASM_MAX]; /* label a jump at index i goes to, or -1 */
};

static inline void bpf_emit(struct bpf_asm *p, uint8_t code, uint8_t dst, uint8_t src, int16_t off,
                            int32_t imm) {
    RTE_VERIFY(p->n < BPF_ASM_MAX); /* a program that outgrew its array: our bug */
    p->jump_to[p->n] = -1;
    p->insn[p->n++] =
        (struct bpf_insn){.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm};
}

/* if (dst OP imm) goto label; class BPF_JMP (64-bit) or BPF_JMP32. */
static inline void bpf_jump(struct bpf_asm *p, uint8_t cls, uint8_t op, uint8_t dst, int32_t imm,
                            int label) {
    bpf_emit(p, cls | op | BPF_K, dst, 0, 0, imm);
    p->jump_to[p->n - 1] = label;
}

static inline void bpf_label(struct bpf_asm *p, int label) {
    p->at[label] = (int)p->n;
}

static inline void bpf_ld_map(struct bpf_asm *p, uint8_t dst, int map_fd) {
    bpf_emit(p, BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, map_fd);
    bpf_emit(p, 0, 0, 0, 0, 0);
}

static inline void bpf_ret(struct bpf_asm *p, int32_t v) {
    bpf_emit(p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, v);
    bpf_emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
}

#define A_ALU_K(p, op, dst, imm) bpf_emit(p, BPF_ALU64 | (op) | BPF_K, dst, 0, 0, imm)
#define A_ALU_X(p, op, dst, src) bpf_emit(p, BPF_ALU64 | (op) | BPF_X, dst, src, 0, 0)
#define A_MOV_X(p, dst, src) A_ALU_X(p, BPF_MOV, dst, src)
#define A_MOV_K(p, dst, imm) A_ALU_K(p, BPF_MOV, dst, imm)
#define A_CALL_FN(p, fn) bpf_emit(p, BPF_JMP | BPF_CALL, 0, 0, 0, fn)
#define A_LDX(p, size, dst, src, off) bpf_emit(p, BPF_LDX | BPF_MEM | (size), dst, src, off, 0)
#define A_STX(p, size, dst, src, off) bpf_emit(p, BPF_STX | BPF_MEM | (size), dst, src, off, 0)
#define A_ST(p, size, dst, off, imm) bpf_emit(p, BPF_ST | BPF_MEM | (size), dst, 0, off, imm)

/* Copy len bytes at offset (register reg, or the immediate off when reg is
 * -1) from the Ethernet header to the stack at fp+to; a frame too short
 * jumps to fail. Relative to the MAC header, not skb->data: tun runs a
 * steering program with data at the MAC header, BPF_PROG_TEST_RUN with it
 * pulled. The context must be in r6; r1-r5 and r0 are clobbered. */
static inline void bpf_load_mac(struct bpf_asm *p, int reg, int32_t off, int16_t to, int32_t len,
                                int fail) {
    A_MOV_X(p, BPF_REG_1, BPF_REG_6);
    if (reg >= 0)
        A_MOV_X(p, BPF_REG_2, (uint8_t)reg);
    else
        A_MOV_K(p, BPF_REG_2, off);
    A_MOV_X(p, BPF_REG_3, BPF_REG_10);
    A_ALU_K(p, BPF_ADD, BPF_REG_3, to);
    A_MOV_K(p, BPF_REG_4, len);
    A_MOV_K(p, BPF_REG_5, BPF_HDR_START_MAC);
    A_CALL_FN(p, BPF_FUNC_skb_load_bytes_relative);
    bpf_jump(p, BPF_JMP, BPF_JNE, BPF_REG_0, 0, fail);
}

/* r0 = the value under the key at fp+key_off in map_fd, or 0 (NULL). */
static inline void bpf_lookup(struct bpf_asm *p, int map_fd, int16_t key_off) {
    bpf_ld_map(p, BPF_REG_1, map_fd);
    A_MOV_X(p, BPF_REG_2, BPF_REG_10);
    A_ALU_K(p, BPF_ADD, BPF_REG_2, key_off);
    A_CALL_FN(p, BPF_FUNC_map_lookup_elem);
}

/* map_update_elem(map, fp + key_off, fp + value_off, BPF_ANY). */
static inline void bpf_update(struct bpf_asm *p, int map_fd, int16_t key_off, int16_t value_off) {
    bpf_ld_map(p, BPF_REG_1, map_fd);
    A_MOV_X(p, BPF_REG_2, BPF_REG_10);
    A_ALU_K(p, BPF_ADD, BPF_REG_2, key_off);
    A_MOV_X(p, BPF_REG_3, BPF_REG_10);
    A_ALU_K(p, BPF_ADD, BPF_REG_3, value_off);
    A_MOV_K(p, BPF_REG_4, BPF_ANY);
    A_CALL_FN(p, BPF_FUNC_map_update_elem);
}

/* Patch the jumps once every label is placed. */
static inline void bpf_resolve(struct bpf_asm *p) {
    for (unsigned i = 0; i < p->n; i++)
        if (p->jump_to[i] >= 0)
            p->insn[i].off = (int16_t)(p->at[p->jump_to[i]] - (int)i - 1);
}

static inline int bpf_sys(enum bpf_cmd cmd, union bpf_attr *attr) {
    return (int)syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

/* A map; its fd or -errno. */
static inline int bpf_map_new(enum bpf_map_type type, uint32_t key, uint32_t value, uint32_t max) {
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_type = type;
    a.key_size = key;
    a.value_size = value;
    a.max_entries = max;
    int fd = bpf_sys(BPF_MAP_CREATE, &a);
    return fd >= 0 ? fd : -errno;
}

/* Load p as a socket filter (the type tun's steering takes); its fd or
 * -errno, with the verifier's words in log. */
static inline int bpf_prog_new(const struct bpf_asm *p, char *log, uint32_t log_size) {
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    a.insns = (uintptr_t)p->insn;
    a.insn_cnt = p->n;
    a.license = (uintptr_t) "GPL"; /* ktime_get_ns and the map helpers are GPL-only */
    a.log_buf = (uintptr_t)log;
    a.log_size = log_size;
    a.log_level = log != NULL ? 1 : 0;
    if (log != NULL && log_size > 0)
        log[0] = '\0';
    int fd = bpf_sys(BPF_PROG_LOAD, &a);
    return fd >= 0 ? fd : -errno;
}

static inline int bpf_map_put(int map_fd, const void *key, const void *value) {
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_fd = (uint32_t)map_fd;
    a.key = (uintptr_t)key;
    a.value = (uintptr_t)value;
    a.flags = BPF_ANY;
    return bpf_sys(BPF_MAP_UPDATE_ELEM, &a) == 0 ? 0 : -errno;
}

static inline int bpf_map_del(int map_fd, const void *key) {
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_fd = (uint32_t)map_fd;
    a.key = (uintptr_t)key;
    return bpf_sys(BPF_MAP_DELETE_ELEM, &a) == 0 ? 0 : -errno;
}

static inline int bpf_map_get(int map_fd, const void *key, void *value) {
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_fd = (uint32_t)map_fd;
    a.key = (uintptr_t)key;
    a.value = (uintptr_t)value;
    return bpf_sys(BPF_MAP_LOOKUP_ELEM, &a) == 0 ? 0 : -errno;
}

/* The key after key (NULL: the first); 0, or -ENOENT at the end. */
static inline int bpf_map_next(int map_fd, const void *key, void *next) {
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_fd = (uint32_t)map_fd;
    a.key = (uintptr_t)key;
    a.next_key = (uintptr_t)next;
    return bpf_sys(BPF_MAP_GET_NEXT_KEY, &a) == 0 ? 0 : -errno;
}

#endif
