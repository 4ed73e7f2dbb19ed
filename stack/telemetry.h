/* A worker's counters in its DPDK telemetry socket (/dpnet/stats). */
#ifndef DPNET_TELEMETRY_H
#define DPNET_TELEMETRY_H

struct dpn_worker;

/* The worker whose counters /dpnet/stats shows (registered the first
 * time); NULL before the worker goes away. */
void dpn_telemetry_worker(const struct dpn_worker *w);

#endif
