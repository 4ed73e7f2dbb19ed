/* Round-trip samples and their summary, shared by net_latency's dpnet and
 * kernel modes so both are measured and reported the same way. */
#ifndef DPNET_LATENCY_STATS_H
#define DPNET_LATENCY_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lat_run {
    uint32_t *rtt_ns; /* samples after warm-up */
    uint64_t n, cap;
    uint64_t warmup_left;
    uint64_t count;       /* stop after this many samples (0: duration decides) */
    uint64_t duration_ns; /* stop after this long (0: count decides) */
    uint64_t t_start, t_end;
    uint64_t lost; /* UDP: requests that timed out */
};

static inline int lat_init(struct lat_run *r, uint64_t count, uint64_t duration_ns,
                           uint64_t warmup) {
    r->cap = count > 0 ? count : 20000000; /* duration mode: up to 20M samples */
    r->rtt_ns = malloc(r->cap * sizeof(*r->rtt_ns));
    /* Touch every page now: a first-touch page fault once every 1024
     * samples would otherwise land in the measurement loop. Not with
     * memset(0): GCC turns malloc + memset(0) into calloc, whose pages are
     * only mapped at the first write (about 800 faults/s in the loop). */
    if (r->rtt_ns != NULL)
        for (size_t i = 0; i < r->cap * sizeof(*r->rtt_ns); i += 4096)
            ((volatile char *)r->rtt_ns)[i] = 0;
    r->n = 0;
    r->warmup_left = warmup;
    r->count = count;
    r->duration_ns = duration_ns;
    r->t_start = r->t_end = 0;
    r->lost = 0;
    return r->rtt_ns != NULL ? 0 : -1;
}

/* Record one round trip ending at now; returns true when the run is done. */
static inline bool lat_record(struct lat_run *r, uint64_t rtt, uint64_t now) {
    if (r->warmup_left > 0) {
        if (--r->warmup_left == 0)
            r->t_start = now;
        return false;
    }
    if (r->t_start == 0)
        r->t_start = now - rtt;
    if (r->n < r->cap)
        r->rtt_ns[r->n++] = rtt > UINT32_MAX ? UINT32_MAX : (uint32_t)rtt;
    bool done = (r->count > 0 && r->n >= r->count) ||
                (r->duration_ns > 0 && now - r->t_start >= r->duration_ns) || r->n >= r->cap;
    if (done)
        r->t_end = now;
    return done;
}

static int lat_cmp(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile in microseconds; samples must be sorted. */
static inline double lat_pct(const struct lat_run *r, double q) {
    if (r->n == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)r->n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > r->n)
        rank = r->n;
    return r->rtt_ns[rank - 1] / 1000.0;
}

static inline void lat_report(struct lat_run *r, bool json, const char *what) {
    qsort(r->rtt_ns, r->n, sizeof(*r->rtt_ns), lat_cmp);
    double secs = r->t_end > r->t_start ? (double)(r->t_end - r->t_start) / 1e9 : 0;
    double rate = secs > 0 ? (double)r->n / secs : 0;
    double p[6] = {lat_pct(r, 0),    lat_pct(r, 0.5),   lat_pct(r, 0.9),
                   lat_pct(r, 0.99), lat_pct(r, 0.999), lat_pct(r, 1.0)};
    if (r->n > 0)
        p[0] = r->rtt_ns[0] / 1000.0;
    if (json) {
        printf("{\"rtt_us\": {\"min\": %.2f, \"p50\": %.2f, \"p90\": %.2f, \"p99\": %.2f, "
               "\"p99.9\": %.2f, \"max\": %.2f}, \"messages\": %llu, \"msgs_per_s\": %.0f, "
               "\"lost\": %llu, \"what\": \"%s\"}\n",
               p[0], p[1], p[2], p[3], p[4], p[5], (unsigned long long)r->n, rate,
               (unsigned long long)r->lost, what);
    } else {
        printf("net_latency: %s\n", what);
        printf("messages %llu in %.3f s: %.0f msgs/s%s\n", (unsigned long long)r->n, secs, rate,
               r->lost > 0 ? " (some requests lost and resent)" : "");
        printf("rtt_us min %.2f p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f\n", p[0], p[1], p[2],
               p[3], p[4], p[5]);
        if (r->lost > 0)
            printf("lost %llu\n", (unsigned long long)r->lost);
    }
    fflush(stdout);
}

/* Write the samples, in the order measured, one a line in microseconds
 * (before lat_report sorts them). Returns 0 or -1 (message printed). */
static inline int lat_dump(const struct lat_run *r, const char *path) {
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    for (uint64_t i = 0; i < r->n; i++)
        fprintf(f, "%.3f\n", r->rtt_ns[i] / 1000.0);
    if (fclose(f) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

/* Bulk mode: bytes echoed back in the measured window of secs seconds. */
static inline void lat_report_bulk(uint64_t bytes, double secs, uint64_t total, bool json,
                                   const char *what) {
    double gbit = secs > 0 ? (double)bytes * 8 / secs / 1e9 : 0;
    if (json)
        printf("{\"bulk\": {\"bytes\": %llu, \"secs\": %.6f, \"gbit_per_s\": %.3f, "
               "\"total_bytes\": %llu}, \"what\": \"%s\"}\n",
               (unsigned long long)bytes, secs, gbit, (unsigned long long)total, what);
    else
        printf("net_latency: %s\nbulk: %llu B echoed in %.3f s (measured after the first "
               "eighth): %.3f Gbit/s\n",
               what, (unsigned long long)bytes, secs, gbit);
    fflush(stdout);
}

#endif
