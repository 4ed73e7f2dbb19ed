/* The Internet checksum's raw sum (RFC 1071), the one routine every frame
 * without checksum offload goes through twice (lwIP's TX sum, our RX
 * check). DPDK 22.11's rte_raw_cksum adds 16 bits at a time: 700 cycles for
 * 1460 bytes here. Wider words with deferred carries give the same sum
 * (RFC 1071: the sum is independent of word size and byte order up to the
 * final fold): 134 cycles in plain C, 66 with AVX2, chosen at the first call. */
#include <string.h>

#include <immintrin.h>

#include "cksum.h"

static inline uint16_t fold64(uint64_t s) {
    s = (s & 0xffffffffu) + (s >> 32);
    s = (s & 0xffffffffu) + (s >> 32);
    return dpn_cksum_fold((uint32_t)s);
}

/* The last len < 16 bytes into a 64-bit sum (no overflow: each add is
 * below 2^32 and there are at most 5 of them). */
static inline uint64_t tail(const uint8_t *p, size_t len, uint64_t s) {
    for (; len >= 4; p += 4, len -= 4) {
        uint32_t x;
        memcpy(&x, p, 4);
        s += x;
    }
    if (len >= 2) {
        uint16_t x;
        memcpy(&x, p, 2);
        s += x;
        p += 2;
        len -= 2;
    }
    if (len == 1) {
        uint16_t x = 0; /* as if padded with a zero byte, in memory order */
        memcpy(&x, p, 1);
        s += x;
    }
    return s;
}

uint16_t dpn_raw_cksum_c(const void *buf, size_t len) {
    const uint8_t *p = buf;
    /* Two 64-bit sums with their carries counted apart: independent chains. */
    uint64_t a = 0, b = 0, ca = 0, cb = 0;
    for (; len >= 16; p += 16, len -= 16) {
        uint64_t w0, w1;
        memcpy(&w0, p, 8);
        memcpy(&w1, p + 8, 8);
        a += w0;
        ca += a < w0;
        b += w1;
        cb += b < w1;
    }
    uint64_t s = a + b;
    uint64_t c = ca + cb + (s < a); /* carries, each worth 2^64 == 1 (mod 2^16 - 1) */
    uint64_t t = tail(p, len, 0);
    /* Fold the 64-bit sum to 32 bits first so that adding c and t cannot wrap. */
    s = (s & 0xffffffffu) + (s >> 32) + c + t;
    return fold64(s);
}

__attribute__((target("avx2"))) uint16_t dpn_raw_cksum_avx2(const void *buf, size_t len) {
    const uint8_t *p = buf;
    const __m256i z = _mm256_setzero_si256();
    __m256i s0 = z, s1 = z;
    /* 32-bit words widened to 64-bit lanes: no carry is lost below 2^32
     * words, far beyond any frame. */
    for (; len >= 64; p += 64, len -= 64) {
        __m256i v0 = _mm256_loadu_si256((const __m256i *)p);
        __m256i v1 = _mm256_loadu_si256((const __m256i *)(p + 32));
        s0 = _mm256_add_epi64(s0, _mm256_unpacklo_epi32(v0, z));
        s1 = _mm256_add_epi64(s1, _mm256_unpackhi_epi32(v0, z));
        s0 = _mm256_add_epi64(s0, _mm256_unpacklo_epi32(v1, z));
        s1 = _mm256_add_epi64(s1, _mm256_unpackhi_epi32(v1, z));
    }
    s0 = _mm256_add_epi64(s0, s1);
    uint64_t l[4];
    _mm256_storeu_si256((__m256i *)l, s0);
    uint64_t s = l[0] + l[1] + l[2] + l[3];
    for (; len >= 16; p += 16, len -= 16) {
        uint32_t x[4];
        memcpy(x, p, 16);
        s += (uint64_t)x[0] + x[1] + x[2] + x[3];
    }
    return fold64(tail(p, len, s));
}

/* Chosen at the first call rather than by an ifunc: an ifunc resolver
 * runs during relocation, before ASan is set up, and crashed there. */
static uint16_t first_call(const void *buf, size_t len);
static uint16_t (*raw_cksum)(const void *, size_t) = first_call;

static uint16_t first_call(const void *buf, size_t len) {
    __builtin_cpu_init();
    raw_cksum = __builtin_cpu_supports("avx2") ? dpn_raw_cksum_avx2 : dpn_raw_cksum_c;
    return raw_cksum(buf, len);
}

uint16_t dpn_raw_cksum(const void *buf, size_t len) {
    return raw_cksum(buf, len);
}
