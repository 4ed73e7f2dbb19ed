/* An attached worker's lcore id, given by dpnetd before rte_eal_init. */
#ifndef DPNET_EAL_LCORE_H
#define DPNET_EAL_LCORE_H

#include <stdbool.h>
#include <stddef.h>

/* In EAL argv v (n entries, room for cap): when it starts a secondary and
 * dpnetd answers on the prefix's control socket, replace the lcore options
 * by --lcores=ID@(CPUS) with the id dpnetd holds for us. Returns the id,
 * or -1 with v unchanged (no dpnetd to ask: the attach says so later). */
int dpn_eal_lcore_rewrite(char **v, int *n, int cap, const char *prog);
/* The connection the id was asked on (the attach goes on it: dpnetd holds
 * the id for it), once; -1 when there is none. */
int dpn_eal_lcore_conn(void);
/* DPDK's runtime directory for prefix, as eal_create_runtime_dir makes it
 * (dpnetd's control socket is there), without EAL. */
void dpn_eal_runtime_dir(const char *prefix, char *buf, size_t n);

#endif
