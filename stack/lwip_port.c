/* What lwIP needs from its platform: time, randomness, checksums,
 * diagnostics, and the keyed initial sequence numbers of RFC 6528. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <rte_cycles.h>
#include <rte_ip.h>
#include <rte_random.h>

#include "lwip/ip_addr.h"
#include "lwip/sys.h"

#include "cksum.h"
#include "lwip_hooks.h"
#include "log.h"
#include "port_internal.h"

static uint64_t isn_key[2];
static uint64_t cookie_key[2]; /* SYN cookies (tcp_cookie.c) */
static bool isn_forced;
static uint32_t isn_force;

/* TSC cycles to milliseconds and nanoseconds by a multiply and a shift:
 * two 64-bit divisions per call were 13% of a client's time at 10 M
 * requests/s (dpn_now_ns) and ran for every segment (sys_now). */
static uint64_t ms_mult, ns_mult; /* ms per cycle << 44, ns per cycle << 32 */

static void clock_init(void) {
    uint64_t hz = rte_get_tsc_hz();
    if (hz == 0)
        hz = 1;
    ms_mult = (uint64_t)(((unsigned __int128)1000 << 44) / hz);
    ns_mult = (uint64_t)(((unsigned __int128)1000000000 << 32) / hz);
}

void dpn_lwip_port_init(void) {
    clock_init();
    /* Secret for ISNs: from the kernel's CSPRNG, not the TSC-seeded rte_rand. */
    if (getrandom(isn_key, sizeof(isn_key), 0) != sizeof(isn_key)) {
        isn_key[0] = rte_rand();
        isn_key[1] = rte_rand() ^ rte_rdtsc();
    }
    if (getrandom(cookie_key, sizeof(cookie_key), 0) != sizeof(cookie_key)) {
        cookie_key[0] = rte_rand() ^ isn_key[1];
        cookie_key[1] = rte_rand() ^ rte_rdtsc();
    }
    rte_srand(isn_key[0] ^ rte_rdtsc());
}

u32_t sys_now(void) {
    if (unlikely(ms_mult == 0))
        clock_init();
    return (u32_t)(((unsigned __int128)rte_get_tsc_cycles() * ms_mult) >> 44);
}

uint64_t dpn_now_ns(void) {
    if (unlikely(ns_mult == 0))
        clock_init();
    return (uint64_t)(((unsigned __int128)rte_get_tsc_cycles() * ns_mult) >> 32);
}

void dpn_lwip_diag(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    rte_vlog(RTE_LOG_DEBUG, dpn_logtype_stack, fmt, ap);
    va_end(ap);
}

void dpn_lwip_assert(const char *msg, const char *file, int line) {
    /* An lwIP invariant broke: the stack's state cannot be trusted any more. */
    rte_log(RTE_LOG_CRIT, dpn_logtype_stack, "dpnet: lwIP assertion \"%s\" failed at %s:%d\n", msg,
            file, line);
    abort();
}

uint32_t dpn_lwip_rand(void) {
    return (uint32_t)rte_rand();
}

uint16_t dpn_lwip_chksum(const void *data, int len) {
    /* lwIP wants the folded one's complement sum in network order, not inverted. */
    return dpn_raw_cksum(data, (size_t)len);
}

/* SipHash-2-4: a keyed PRF, as RFC 6528 asks for (it names MD5 as an example). */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

uint64_t dpn_siphash(const uint64_t key[2], uint64_t m0, uint64_t m1) {
    uint64_t v0 = 0x736f6d6570736575ull ^ key[0], v1 = 0x646f72616e646f6dull ^ key[1];
    uint64_t v2 = 0x6c7967656e657261ull ^ key[0], v3 = 0x7465646279746573ull ^ key[1];
    uint64_t msg[3] = {m0, m1, (uint64_t)16 << 56};
    for (int i = 0; i < 3; i++) {
        v3 ^= msg[i];
        SIPROUND;
        SIPROUND;
        v0 ^= msg[i];
    }
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

u32_t dpn_tcp_isn(const ip_addr_t *local_ip, u16_t local_port, const ip_addr_t *remote_ip,
                  u16_t remote_port) {
    uint64_t m0 = ((uint64_t)ip4_addr_get_u32(ip_2_ip4(local_ip)) << 32) |
                  ip4_addr_get_u32(ip_2_ip4(remote_ip));
    uint64_t m1 = ((uint64_t)local_port << 16) | remote_port;
    if (isn_forced)
        return isn_force; /* a connection opened by a SYN cookie */
    /* RFC 6528: ISN = M + F(4-tuple, key), M a clock ticking every 4 us. */
    uint32_t m = (uint32_t)(dpn_now_ns() / 4000);
    return m + (uint32_t)dpn_siphash(isn_key, m0, m1);
}

void dpn_tcp_isn_force(bool on, uint32_t isn) {
    isn_forced = on;
    isn_force = isn;
}

uint64_t dpn_cookie_hash(uint64_t m0, uint64_t m1) {
    return dpn_siphash(cookie_key, m0, m1);
}
