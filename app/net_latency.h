/* net_latency's options and its two measurement back ends. */
#ifndef DPNET_NET_LATENCY_H
#define DPNET_NET_LATENCY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dpn_worker;

struct lat_opts {
    uint32_t server_ip; /* host order */
    uint16_t port;
    bool udp;
    unsigned conns;
    size_t size;
    uint64_t count;
    uint64_t duration_s;
    uint64_t warmup;
    uint64_t timeout_s;
    bool json;
    bool kernel;
    bool spin; /* --kernel: non-blocking sockets, polled without sleeping (Linux at its best) */
    unsigned pipeline;   /* TCP: requests in flight per connection (default 1) */
    bool connect_rate;   /* each request on a new connection: connect, echo, close */
    uint64_t bulk_bytes; /* >0: stream this many bytes per connection, count the echo */
    bool verify;         /* --bulk (dpnet): compare every echoed byte with what was sent */
    const char *samples; /* write each round trip (us, one a line) to this file */
    bool trace;          /* dpnet: critical-path breakdown at exit */
    const char *http;    /* dpnet, TCP: GET this path with keep-alive, each response checked */
};

/* Exit codes: 0 measured, 1 could not complete (error printed), 2 usage. */
int lat_run_dpnet(struct dpn_worker *w, const struct lat_opts *o);
int lat_run_kernel(const struct lat_opts *o);

#endif
