/* Internal helpers of the lwIP port (lwip_port.c). */
#ifndef DPNET_PORT_INTERNAL_H
#define DPNET_PORT_INTERNAL_H

#include <stdint.h>

void dpn_lwip_port_init(void);
uint64_t dpn_siphash(const uint64_t key[2], uint64_t m0, uint64_t m1);

#endif
