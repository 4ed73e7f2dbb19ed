/* dpnetd publishes its lwIP's ARP cache for the workers (abi/neigh.h). */
#include "lwip/etharp.h"

#include "neigh.h"
#include "neigh_pub.h"

/* dpnetd: publish lwIP's ARP cache in the shared neighbor table; entries
 * lwIP dropped become invalid for the workers too (they ask again). */
void dpn_neigh_publish(struct dpn_neigh *t, struct netif *nif) {
    ip4_addr_t *ip;
    struct netif *n;
    struct eth_addr *eth;
    for (size_t i = 0; i < ARP_TABLE_SIZE; i++)
        if (etharp_get_entry(i, &ip, &n, &eth)) {
            struct rte_ether_addr mac;
            memcpy(mac.addr_bytes, eth->addr, RTE_ETHER_ADDR_LEN);
            dpn_neigh_update(t, ip4_addr_get_u32(ip), &mac, true);
        }
    for (unsigned i = 0; i < DPN_NEIGH_SIZE; i++) {
        struct dpn_neigh *e = &t[i];
        struct eth_addr *mac;
        const ip4_addr_t *found;
        ip4_addr_t a;
        ip4_addr_set_u32(&a, e->ip);
        if (e->ip != 0 && e->valid && etharp_find_addr(nif, &a, &mac, &found) < 0)
            dpn_neigh_update(t, e->ip, NULL, false);
    }
}
