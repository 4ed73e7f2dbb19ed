/* Kernel steering on net_tap: the rules of steer.h as an eBPF program that
 * tun runs to pick the queue of every frame it hands to dpnet
 * (TUNSETSTEERINGEBPF), on any kernel with bpf() (no TC flower, multiq or
 * skbedit, which net_tap's rte_flow needs). dpnetd writes three maps:
 *   binds  (proto, port) -> the queues of the binding's workers
 *   eph    (proto, ephemeral range) -> the queue of the worker it belongs to
 *   flows  (source address, ports, proto) -> queue, an LRU map the program
 *          fills itself at each bare SYN: a connection stays on the worker
 *          that took its SYN when workers of the binding join or leave
 * and the program returns the queue: 0 (dpnetd) for everything no rule
 * takes (ARP, ICMP, fragments, other addresses, unbound ports). A worker's
 * frames never pass through dpnetd. Set-up and control code only. */
#include <errno.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_ethdev.h>

#include "bpf_asm.h"
#include "log.h"
#include "steer.h"
#include "tapsig.h"

#define TUN_FLOWS 65536 /* connections pinned at once (LRU beyond) */

struct bind_val {
    uint32_t n;
    uint32_t q[DPN_MAX_SLOTS];
};
struct flow_key {
    uint32_t saddr; /* as on the wire */
    uint32_t ports; /* source and destination port, as on the wire */
    uint32_t proto;
};

static struct {
    int prog, binds, eph, flows, tun_fd;
    uint16_t port_id;
} T = {-1, -1, -1, -1, -1, 0};

enum { L_RET0, L_L4, L_UNPINNED, L_HAVEQ, L_RETQ, L_EPH, L_EPH_TCP };

/* Stack: fp-66 Ethernet + IPv4 header (34 bytes: the source address at
 * fp-40 and the destination at fp-36, both 4-byte aligned), fp-72 the
 * ports, fp-76 the TCP flags, fp-80 the eph key, fp-84 the binds key,
 * fp-24 the picked queue, fp-16 the flow key (12 bytes). Loaded bytes are
 * in network order and compared as the little-endian words they make.
 * Registers kept across calls: r6 context, r7 offset of the L4 header,
 * r8 protocol, r9 a binds value. */
#define HDR (-66)
static void parse(struct bpf_asm *p, uint32_t ip_be) {
    A_MOV_X(p, BPF_REG_6, BPF_REG_1);
    bpf_load_mac(p, -1, 0, HDR, 34, L_RET0);
    A_LDX(p, BPF_H, BPF_REG_0, BPF_REG_10, HDR + 12);
    bpf_jump(p, BPF_JMP, BPF_JNE, BPF_REG_0, 0x0008, L_RET0); /* IPv4 */
    A_LDX(p, BPF_W, BPF_REG_0, BPF_REG_10, HDR + 30);
    bpf_jump(p, BPF_JMP32, BPF_JNE, BPF_REG_0, (int32_t)ip_be, L_RET0); /* to us */
    A_LDX(p, BPF_H, BPF_REG_0, BPF_REG_10, HDR + 20); /* MF or an offset: a fragment, */
    A_ALU_K(p, BPF_AND, BPF_REG_0, 0xff3f);           /* dpnetd's (as in software) */
    bpf_jump(p, BPF_JMP, BPF_JNE, BPF_REG_0, 0, L_RET0);
    A_LDX(p, BPF_B, BPF_REG_8, BPF_REG_10, HDR + 23);
    bpf_jump(p, BPF_JMP, BPF_JEQ, BPF_REG_8, DPN_PROTO_TCP, L_L4);
    bpf_jump(p, BPF_JMP, BPF_JNE, BPF_REG_8, DPN_PROTO_UDP, L_RET0);
    bpf_label(p, L_L4);
    A_LDX(p, BPF_B, BPF_REG_7, BPF_REG_10, HDR + 14);
    A_ALU_K(p, BPF_AND, BPF_REG_7, 0xf);
    A_ALU_K(p, BPF_LSH, BPF_REG_7, 2);
    bpf_jump(p, BPF_JMP, BPF_JLT, BPF_REG_7, 20, L_RET0);
    A_ALU_K(p, BPF_ADD, BPF_REG_7, 14);
    bpf_load_mac(p, BPF_REG_7, 0, -72, 4, L_RET0); /* the ports */
}

/* A connection pinned at its SYN keeps its queue. */
static void pinned(struct bpf_asm *p) {
    A_LDX(p, BPF_W, BPF_REG_0, BPF_REG_10, HDR + 26);
    A_STX(p, BPF_W, BPF_REG_10, BPF_REG_0, -16);
    A_LDX(p, BPF_W, BPF_REG_0, BPF_REG_10, -72);
    A_STX(p, BPF_W, BPF_REG_10, BPF_REG_0, -12);
    A_STX(p, BPF_W, BPF_REG_10, BPF_REG_8, -8);
    bpf_lookup(p, T.flows, -16);
    bpf_jump(p, BPF_JMP, BPF_JEQ, BPF_REG_0, 0, L_UNPINNED);
    A_LDX(p, BPF_W, BPF_REG_0, BPF_REG_0, 0);
    bpf_emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
}

/* A bound port: its one worker, or one of several by a hash of the
 * source; a bare SYN pins the connection there. */
static void bound(struct bpf_asm *p) {
    bpf_label(p, L_UNPINNED);
    A_LDX(p, BPF_H, BPF_REG_0, BPF_REG_10, -70); /* destination port */
    A_MOV_X(p, BPF_REG_1, BPF_REG_8);
    A_ALU_K(p, BPF_LSH, BPF_REG_1, 16);
    A_ALU_X(p, BPF_OR, BPF_REG_1, BPF_REG_0);
    A_STX(p, BPF_W, BPF_REG_10, BPF_REG_1, -84);
    bpf_lookup(p, T.binds, -84);
    bpf_jump(p, BPF_JMP, BPF_JEQ, BPF_REG_0, 0, L_EPH);
    A_MOV_X(p, BPF_REG_9, BPF_REG_0);
    A_LDX(p, BPF_W, BPF_REG_1, BPF_REG_9, 0); /* n */
    bpf_jump(p, BPF_JMP, BPF_JEQ, BPF_REG_1, 0, L_RET0);
    bpf_jump(p, BPF_JMP, BPF_JGT, BPF_REG_1, DPN_MAX_SLOTS, L_RET0);
    A_LDX(p, BPF_W, BPF_REG_0, BPF_REG_9, 4);
    bpf_jump(p, BPF_JMP, BPF_JEQ, BPF_REG_1, 1, L_HAVEQ);
    A_LDX(p, BPF_W, BPF_REG_2, BPF_REG_10, HDR + 26);
    A_LDX(p, BPF_W, BPF_REG_3, BPF_REG_10, -72);
    A_ALU_X(p, BPF_XOR, BPF_REG_2, BPF_REG_3);
    bpf_emit(p, BPF_ALU | BPF_MUL | BPF_K, BPF_REG_2, 0, 0, (int32_t)0x9e3779b1u);
    A_ALU_K(p, BPF_RSH, BPF_REG_2, 16);
    A_ALU_X(p, BPF_MOD, BPF_REG_2, BPF_REG_1);
    bpf_jump(p, BPF_JMP, BPF_JGE, BPF_REG_2, DPN_MAX_SLOTS, L_RET0);
    A_ALU_K(p, BPF_LSH, BPF_REG_2, 2);
    A_ALU_X(p, BPF_ADD, BPF_REG_9, BPF_REG_2);
    A_LDX(p, BPF_W, BPF_REG_0, BPF_REG_9, 4);
    bpf_label(p, L_HAVEQ);
    A_STX(p, BPF_W, BPF_REG_10, BPF_REG_0, -24);
    bpf_jump(p, BPF_JMP, BPF_JNE, BPF_REG_8, DPN_PROTO_TCP, L_RETQ);
    A_ALU_K(p, BPF_ADD, BPF_REG_7, 13);
    bpf_load_mac(p, BPF_REG_7, 0, -76, 1, L_RETQ); /* TCP flags */
    A_LDX(p, BPF_B, BPF_REG_0, BPF_REG_10, -76);
    A_ALU_K(p, BPF_AND, BPF_REG_0, 0x12);
    bpf_jump(p, BPF_JMP, BPF_JNE, BPF_REG_0, 0x02, L_RETQ);
    bpf_update(p, T.flows, -16, -24);
    bpf_label(p, L_RETQ);
    A_LDX(p, BPF_W, BPF_REG_0, BPF_REG_10, -24);
    bpf_emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
}

/* A worker's ephemeral range: replies to its outgoing connections. */
static void ephemeral(struct bpf_asm *p) {
    bpf_label(p, L_EPH);
    A_LDX(p, BPF_H, BPF_REG_0, BPF_REG_10, -70);
    bpf_emit(p, BPF_ALU | BPF_END | BPF_TO_BE, BPF_REG_0, 0, 0, 16); /* host order */
    bpf_jump(p, BPF_JMP, BPF_JLT, BPF_REG_0, DPN_EPH_BASE, L_RET0);
    A_ALU_K(p, BPF_SUB, BPF_REG_0, DPN_EPH_BASE);
    A_ALU_K(p, BPF_RSH, BPF_REG_0, 10); /* DPN_EPH_PER_SLOT */
    bpf_jump(p, BPF_JMP, BPF_JEQ, BPF_REG_8, DPN_PROTO_TCP, L_EPH_TCP);
    A_ALU_K(p, BPF_ADD, BPF_REG_0, DPN_MAX_SLOTS);
    bpf_label(p, L_EPH_TCP);
    A_STX(p, BPF_W, BPF_REG_10, BPF_REG_0, -80);
    bpf_lookup(p, T.eph, -80);
    bpf_jump(p, BPF_JMP, BPF_JEQ, BPF_REG_0, 0, L_RET0);
    A_LDX(p, BPF_W, BPF_REG_0, BPF_REG_0, 0);
    bpf_emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    bpf_label(p, L_RET0);
    bpf_ret(p, 0);
}

_Static_assert(DPN_EPH_PER_SLOT == 1024 &&
                   (65536 - DPN_EPH_BASE) / DPN_EPH_PER_SLOT == DPN_MAX_SLOTS,
               "the program's ephemeral ranges are 16 of 1024 ports from 49152");

static void close_all(void) {
    int *fds[] = {&T.prog, &T.binds, &T.eph, &T.flows};
    for (unsigned i = 0; i < RTE_DIM(fds); i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
}

int dpn_tun_steer_open(uint16_t port_id, uint32_t ip_be, char *why, size_t n) {
    struct rte_eth_dev_info info;
    char ifname[IF_NAMESIZE];
    int fds[16];
    if (rte_eth_dev_info_get(port_id, &info) != 0 || info.driver_name == NULL ||
        strcmp(info.driver_name, "net_tap") != 0 || info.if_index == 0 ||
        if_indextoname(info.if_index, ifname) == NULL || dpn_tun_fds(ifname, fds, 16) == 0)
        return snprintf(why, n, "not a net_tap port"), -ENOTSUP;
    T.binds =
        bpf_map_new(BPF_MAP_TYPE_HASH, 4, sizeof(struct bind_val), 2 * (DPN_MAX_BINDINGS + 1));
    T.eph = bpf_map_new(BPF_MAP_TYPE_ARRAY, 4, 4, 2 * DPN_MAX_SLOTS);
    T.flows = bpf_map_new(BPF_MAP_TYPE_LRU_HASH, sizeof(struct flow_key), 4, TUN_FLOWS);
    if (T.binds < 0 || T.eph < 0 || T.flows < 0) {
        int rc = T.binds < 0 ? T.binds : T.eph < 0 ? T.eph : T.flows;
        close_all();
        return snprintf(why, n, "bpf maps: %s", strerror(-rc)), rc;
    }
    static struct bpf_asm p; /* set-up only, one thread */
    static char log[16384];
    memset(&p, 0, sizeof(p));
    parse(&p, ip_be);
    pinned(&p);
    bound(&p);
    ephemeral(&p);
    bpf_resolve(&p);
    T.prog = bpf_prog_new(&p, log, sizeof(log));
    if (T.prog < 0) {
        int rc = T.prog;
        DPN_LOG(DEBUG, port, "tun steering program refused: %s", log);
        close_all();
        return snprintf(why, n, "bpf program: %s", strerror(-rc)), rc;
    }
    if (ioctl(fds[0], TUNSETSTEERINGEBPF, &T.prog) != 0) {
        int rc = -errno;
        close_all();
        return snprintf(why, n, "TUNSETSTEERINGEBPF: %s", strerror(-rc)), rc;
    }
    T.tun_fd = fds[0];
    T.port_id = port_id;
    return 0;
}

void dpn_tun_steer_close(void) {
    int none = -1;
    if (T.prog >= 0 && T.tun_fd >= 0)
        ioctl(T.tun_fd, TUNSETSTEERINGEBPF, &none);
    close_all();
    T.tun_fd = -1;
}

/* ---- the rules of steer.h ---- */

static uint32_t bind_key(uint8_t proto, uint16_t port) {
    return (uint32_t)proto << 16 | rte_cpu_to_be_16(port);
}

static struct dpn_flow_rule *new_rule(uint32_t key, bool eph, char *why, size_t n) {
    struct dpn_flow_rule *r = calloc(1, sizeof(*r));
    if (r == NULL)
        snprintf(why, n, "out of memory");
    else
        r->key = key, r->eph = eph;
    return r;
}

static struct dpn_flow_rule *tun_add(uint16_t port_id, uint32_t ip_be, uint8_t proto,
                                     uint16_t lport, const uint16_t *queues, unsigned nq, char *why,
                                     size_t n) {
    RTE_SET_USED(port_id);
    RTE_SET_USED(ip_be);
    struct bind_val v = {.n = nq};
    if (nq == 0 || nq > DPN_MAX_SLOTS)
        return snprintf(why, n, "bad queue count %u", nq), NULL;
    for (unsigned i = 0; i < nq; i++)
        v.q[i] = queues[i];
    uint32_t key = bind_key(proto, lport);
    int rc = bpf_map_put(T.binds, &key, &v);
    if (rc != 0)
        return snprintf(why, n, "bpf map: %s", strerror(-rc)), NULL;
    return new_rule(key, false, why, n);
}

static struct dpn_flow_rule *tun_add_range(uint16_t port_id, uint32_t ip_be, uint8_t proto,
                                           uint16_t lo, uint16_t mask, uint16_t queue, char *why,
                                           size_t n) {
    RTE_SET_USED(port_id);
    RTE_SET_USED(ip_be);
    if (lo < DPN_EPH_BASE || (uint16_t)(mask + DPN_EPH_PER_SLOT) != 0)
        return snprintf(why, n, "not an ephemeral range"), NULL;
    uint32_t key = (uint32_t)(lo - DPN_EPH_BASE) / DPN_EPH_PER_SLOT +
                   (proto == DPN_PROTO_UDP ? DPN_MAX_SLOTS : 0);
    uint32_t q = queue;
    int rc = bpf_map_put(T.eph, &key, &q);
    if (rc != 0)
        return snprintf(why, n, "bpf map: %s", strerror(-rc)), NULL;
    return new_rule(key, true, why, n);
}

static void tun_del(uint16_t port_id, struct dpn_flow_rule *r) {
    RTE_SET_USED(port_id);
    if (r == NULL)
        return;
    uint32_t none = 0;
    if (r->eph)
        bpf_map_put(T.eph, &r->key, &none);
    else
        bpf_map_del(T.binds, &r->key);
    free(r);
}

/* Connections pinned to queue go (their worker is gone): the next frame of
 * each finds the binding's live workers, which answer with a RST. */
static void tun_forget_queue(uint16_t port_id, uint16_t queue) {
    RTE_SET_USED(port_id);
    static struct flow_key gone[TUN_FLOWS];
    struct flow_key k, next;
    unsigned ng = 0;
    for (int rc = bpf_map_next(T.flows, NULL, &next); rc == 0 && ng < TUN_FLOWS;
         rc = bpf_map_next(T.flows, &k, &next)) {
        uint32_t q;
        k = next;
        if (bpf_map_get(T.flows, &k, &q) == 0 && q == queue)
            gone[ng++] = k;
    }
    for (unsigned i = 0; i < ng; i++)
        bpf_map_del(T.flows, &gone[i]);
    if (ng > 0)
        DPN_LOG(INFO, port, "queue %u: %u pinned connections forgotten", queue, ng);
}

const struct dpn_rules dpn_rules_tun = {
    .name = "kernel",
    .add = tun_add,
    .add_range = tun_add_range,
    .del = tun_del,
    .forget_queue = tun_forget_queue,
};
