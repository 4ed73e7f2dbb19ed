/* Hooks that lwIP's core calls into dpnet (LWIP_HOOK_FILENAME). */
#ifndef DPNET_LWIP_HOOKS_H
#define DPNET_LWIP_HOOKS_H

#include "lwip/ip_addr.h"

/* RFC 6528 initial sequence number: keyed hash of the 4-tuple plus a clock. */
u32_t dpn_tcp_isn(const ip_addr_t *local_ip, u16_t local_port, const ip_addr_t *remote_ip,
                  u16_t remote_port);

#endif
