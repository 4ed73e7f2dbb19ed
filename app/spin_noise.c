/* spin_noise: how often this machine takes a core away from a busy-polling
 * process, and for how long. It spins on one core reading the clock and
 * counts the gaps between two reads, the way a poll loop sees them: each gap
 * of g us lands on whatever round trip is in flight and adds about g to it.
 * tools/bench.sh runs it on both cores at once next to the latency cases, so
 * the p99.9 of a 1 us ping-pong can be set against the noise of the same run.
 *
 *   spin_noise [--cpu N] [--seconds S] [--json]
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
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
    fprintf(stderr, "usage: spin_noise [--cpu N] [--seconds S (0.1..600)] [--json]\n");
    return 2;
}

int main(int argc, char **argv) {
    int cpu = -1, json = 0;
    double seconds = 3;
    static const struct option lo[] = {{"cpu", required_argument, NULL, 'c'},
                                       {"seconds", required_argument, NULL, 's'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    for (int c; (c = getopt_long(argc, argv, "c:s:jh", lo, NULL)) != -1;) {
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
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof(set), &set) != 0) {
            fprintf(stderr, "spin_noise: cannot run on CPU %d: %s\n", cpu, strerror(errno));
            return 1;
        }
    }

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
