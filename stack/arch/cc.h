/* lwIP port definitions for dpnet (Linux, x86-64/arm64, GCC/clang). */
#ifndef DPNET_ARCH_CC_H
#define DPNET_ARCH_CC_H

#include <stdint.h>
#include <stdlib.h>
#include <sys/time.h>

#define LWIP_TIMEVAL_PRIVATE 0
#define LWIP_ERRNO_STDINCLUDE 1
#define LWIP_NO_CTYPE_H 0

#define BYTE_ORDER LITTLE_ENDIAN
/* Byte swaps inline (lwIP's own are out-of-line functions in def.c, called
 * for every header field on the per-segment path). */
#define lwip_htons(x) ((uint16_t)__builtin_bswap16((uint16_t)(x)))
#define lwip_htonl(x) ((uint32_t)__builtin_bswap32((uint32_t)(x)))
#define LWIP_DONT_PROVIDE_BYTEORDER_FUNCTIONS /* htons and friends stay libc's */

void dpn_lwip_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void dpn_lwip_assert(const char *msg, const char *file, int line) __attribute__((noreturn));
uint32_t dpn_lwip_rand(void);
uint16_t dpn_lwip_chksum(const void *data, int len);

#define LWIP_PLATFORM_DIAG(x)                                                                      \
    do {                                                                                           \
        dpn_lwip_diag x;                                                                           \
    } while (0)
#define LWIP_PLATFORM_ASSERT(x) dpn_lwip_assert((x), __FILE__, __LINE__)
#define LWIP_RAND() dpn_lwip_rand()

#endif
