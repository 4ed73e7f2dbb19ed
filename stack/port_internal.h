/* Internal helpers of the lwIP port (lwip_port.c). */
#ifndef DPNET_PORT_INTERNAL_H
#define DPNET_PORT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

void dpn_lwip_port_init(void);
uint64_t dpn_siphash(const uint64_t key[2], uint64_t m0, uint64_t m1);
/* SipHash under the SYN cookies' own secret key. */
uint64_t dpn_cookie_hash(uint64_t m0, uint64_t m1);
/* While on, lwIP's next ISN is isn (a SYN cookie being redeemed). */
void dpn_tcp_isn_force(bool on, uint32_t isn);

#endif
