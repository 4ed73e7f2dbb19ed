/* dpnetd: its lwIP's ARP cache into the shared neighbor table. */
#ifndef DPNET_NEIGH_PUB_H
#define DPNET_NEIGH_PUB_H

#include "lwip/netif.h"

#include "abi.h"

/* Entries lwIP dropped become invalid for the workers too (they ask again). */
void dpn_neigh_publish(struct dpn_neigh *t, struct netif *nif);

#endif
