/* spin_noise: how often this machine takes a core away from a busy-polling
 * process, and for how long. It spins on one core reading the clock and
 * counts the gaps between two reads, the way a poll loop sees them: each gap
 * of g us lands on whatever round trip is in flight and adds about g to it.
 * tools/bench.sh runs it on both cores at once next to the latency cases, so
 * the p99.9 of a 1 us ping-pong can be set against the noise of the same run.
 *
 * With --pingpong P it measures instead what one cache line costs to go from
 * core N to core P and back: two threads bounce an atomic. On this kind of
 * VM the figure moves by 4x within minutes (the host places the two vCPUs
 * near or far), and every cross-core figure of the bench moves with it, so
 * tools/bench.sh records it beside each case.
 *
 *   spin_noise [--cpu N] [--seconds S] [--json]
 *   spin_noise --cpu N --pingpong P [--seconds S] [--json]
 */
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

/* Gap thresholds in us: a gap counts in every bucket it reaches. */
static const double limits[] = {1, 2, 3, 5, 10, 20, 50, 100, 1000};
#define NLIMITS (sizeof(limits) / sizeof(limits[0]))

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The cheapest clock there is: the TSC on x86 (scaled afterwards against
 * CLOCK_MONOTONIC_RAW over the whole run), the vDSO clock elsewhere. */
static inline uint64_t ticks(void) {
#if defined(__x86_64__) || defined(__i386__)
    return __rdtsc();
#else
    return mono_ns();
#endif
}

static int usage(const char *why) {
    if (why != NULL)
        fprintf(stderr, "spin_noise: %s\n", why);
    fprintf(stderr, "usage: spin_noise [--cpu N] [--seconds S (0.1..600)] [--json]\n"
                    "       spin_noise --cpu N --pingpong P [--seconds S] [--json]\n");
    return 2;
}

static int pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (rc != 0)
        fprintf(stderr, "spin_noise: cannot run on CPU %d: %s\n", cpu, strerror(rc));
    return rc;
}

/* The line the two threads bounce: 1 = the peer's turn, 0 = ours, -1 = stop;
 * the peer first says 2 (ready on its CPU) or -2 (cannot run there). Alone
 * on its cache line so that nothing else moves with it. */
static _Alignas(64) atomic_int ball;
static _Alignas(64) int peer_cpu;

static void *pong(void *arg) {
    (void)arg;
    if (pin(peer_cpu) != 0) {
        atomic_store_explicit(&ball, -2, memory_order_release);
        return NULL;
    }
    atomic_store_explicit(&ball, 2, memory_order_release);
    for (;;) {
        int v;
        while ((v = atomic_load_explicit(&ball, memory_order_acquire)) != 1 && v != -1)
            ;
        if (v < 0)
            return NULL;
        atomic_store_explicit(&ball, 0, memory_order_release);
    }
}

/* Round trips of one cache line between the caller's CPU and peer_cpu for
 * about `seconds`, in rounds of 10000; the median round is the figure. */
static int pingpong(double seconds, int json) {
    pthread_t t;
    atomic_store(&ball, 0);
    if (pthread_create(&t, NULL, pong, NULL) != 0) {
        fprintf(stderr, "spin_noise: cannot start the peer thread\n");
        return 1;
    }
    int v;
    while ((v = atomic_load_explicit(&ball, memory_order_acquire)) == 0)
        ;
    if (v < 0) {
        pthread_join(t, NULL);
        return 1;
    }
    enum { ROUND = 10000, MAXR = 4096 };
    static double ns[MAXR];
    int n = 0;
    uint64_t t_end = mono_ns() + (uint64_t)(seconds * 1e9);
    while (n < MAXR && (n == 0 || mono_ns() < t_end)) {
        uint64_t t0 = mono_ns();
        for (int i = 0; i < ROUND; i++) {
            atomic_store_explicit(&ball, 1, memory_order_release);
            while (atomic_load_explicit(&ball, memory_order_acquire) == 1)
                ;
        }
        ns[n++] = (double)(mono_ns() - t0) / ROUND;
    }
    atomic_store_explicit(&ball, -1, memory_order_release);
    pthread_join(t, NULL);
    /* Insertion sort: at most a few thousand rounds. */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && ns[j - 1] > ns[j]; j--) {
            double x = ns[j];
            ns[j] = ns[j - 1];
            ns[j - 1] = x;
        }
    double p50 = ns[n / 2], lo = ns[0], hi = ns[n - 1];
    if (json)
        printf("{\"peer\": %d, \"rounds\": %d, \"pingpong_ns\": {\"p50\": %.1f, \"min\": %.1f, "
               "\"max\": %.1f}}\n",
               peer_cpu, n, p50, lo, hi);
    else
        printf("cache-line round trip to CPU %d: %.0f ns (median of %d rounds of %d; min %.0f, max "
               "%.0f)\n",
               peer_cpu, p50, n, ROUND, lo, hi);
    return 0;
}

int main(int argc, char **argv) {
    int cpu = -1, json = 0, peer = -1;
    double seconds = -1;
    static const struct option lo[] = {
        {"cpu", required_argument, NULL, 'c'},      {"seconds", required_argument, NULL, 's'},
        {"pingpong", required_argument, NULL, 'p'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    for (int c; (c = getopt_long(argc, argv, "c:s:p:jh", lo, NULL)) != -1;) {
        char *end = NULL;
        switch (c) {
        case 'c':
            cpu = (int)strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || cpu < 0 || cpu >= CPU_SETSIZE)
                return usage("--cpu takes a CPU number");
            break;
        case 's':
            seconds = strtod(optarg, &end);
            if (*optarg == '\0' || *end != '\0' || !(seconds >= 0.1 && seconds <= 600))
                return usage("--seconds takes 0.1 to 600");
            break;
        case 'p':
            peer = (int)strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || peer < 0 || peer >= CPU_SETSIZE)
                return usage("--pingpong takes a CPU number");
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            usage(NULL);
            return 0;
        default:
            return usage(NULL);
        }
    }
    if (optind != argc)
        return usage("unexpected argument");
    if (peer >= 0) {
        if (cpu < 0)
            return usage("--pingpong needs --cpu");
        if (cpu == peer)
            return usage("--pingpong needs a CPU other than --cpu");
        peer_cpu = peer;
        if (pin(cpu) != 0)
            return 1;
        return pingpong(seconds < 0 ? 0.2 : seconds, json);
    }
    if (seconds < 0)
        seconds = 3;
    if (cpu >= 0 && pin(cpu) != 0)
        return 1;

    /* Calibrate on a short spin first so the loop can compare raw ticks. */
    uint64_t n0 = mono_ns(), t0 = ticks();
    while (mono_ns() - n0 < 20000000u)
        ;
    double ticks_per_us = (double)(ticks() - t0) / ((double)(mono_ns() - n0) / 1000.0);
    uint64_t lim[NLIMITS], count[NLIMITS] = {0}, lost = 0, max_gap = 0, loops = 0;
    for (size_t i = 0; i < NLIMITS; i++)
        lim[i] = (uint64_t)(limits[i] * ticks_per_us);

    uint64_t start_ns = mono_ns(), start = ticks(), last = start;
    uint64_t end = start + (uint64_t)(seconds * 1e6 * ticks_per_us);
    while (last < end) {
        uint64_t now = ticks(), gap = now - last;
        last = now;
        loops++;
        if (gap < lim[0])
            continue;
        lost += gap;
        if (gap > max_gap)
            max_gap = gap;
        for (size_t i = 0; i < NLIMITS && gap >= lim[i]; i++)
            count[i]++;
    }
    double secs = (double)(mono_ns() - start_ns) / 1e9;
    ticks_per_us = (double)(last - start) / (secs * 1e6); /* the whole run is the better scale */

    if (json) {
        printf("{\"cpu\": %d, \"seconds\": %.3f, \"gaps_per_s\": {", cpu, secs);
        for (size_t i = 0; i < NLIMITS; i++)
            printf("%s\"%g\": %.1f", i ? ", " : "", limits[i], (double)count[i] / secs);
        printf("}, \"lost_pct\": %.3f, \"max_us\": %.1f, \"loop_ns\": %.1f}\n",
               100.0 * (double)lost / (double)(last - start), (double)max_gap / ticks_per_us,
               1e9 * secs / (double)loops);
        return 0;
    }
    printf("CPU %d, %.1f s: gaps per second of at least", cpu, secs);
    for (size_t i = 0; i < NLIMITS; i++)
        printf(" %g us: %.0f%s", limits[i], (double)count[i] / secs, i + 1 < NLIMITS ? "," : "");
    printf("\n  time lost %.3f%%, longest gap %.1f us\n",
           100.0 * (double)lost / (double)(last - start), (double)max_gap / ticks_per_us);
    return 0;
}
