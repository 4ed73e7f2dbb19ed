/* The platform functions that config/lwipopts.h and stack/arch/cc.h ask for,
 * for lwIP's unit tests. The product's versions live in stack/lwip_port.c,
 * which cannot be linked here: it also defines sys_now() (the tests bring
 * their own clock, test/unit/arch/sys_arch.c) and needs a running DPDK EAL
 * (TSC frequency, logging). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <rte_ip.h>

#include "lwip/ip_addr.h"
#include "lwip/priv/tcp_priv.h"

#include "cksum.h"
#include "lwip_hooks.h"

void dpn_lwip_diag(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

void dpn_lwip_assert(const char *msg, const char *file, int line) {
    /* As in the product: abort. Check runs each test in a child process and
     * reports the signal as that test's error. */
    fprintf(stderr, "lwIP assertion \"%s\" failed at %s:%d\n", msg, file, line);
    abort();
}

uint32_t dpn_lwip_rand(void) {
    return (uint32_t)random();
}

/* The product's checksum (stack/lwip_port.c), from stack/cksum.c. */
uint16_t dpn_lwip_chksum(const void *data, int len) {
    return dpn_raw_cksum(data, (size_t)len);
}

/* lwIP's built-in ISN generator (tcp.c without LWIP_HOOK_TCP_ISN): the TCP
 * tests compute their expected sequence numbers from it (6510 + tcp_ticks).
 * The product's keyed RFC 6528 hash is not what these tests are about. */
u32_t dpn_tcp_isn(const ip_addr_t *local_ip, u16_t local_port, const ip_addr_t *remote_ip,
                  u16_t remote_port) {
    static u32_t iss = 6510;
    LWIP_UNUSED_ARG(local_ip);
    LWIP_UNUSED_ARG(local_port);
    LWIP_UNUSED_ARG(remote_ip);
    LWIP_UNUSED_ARG(remote_port);
    iss += tcp_ticks;
    return iss;
}
