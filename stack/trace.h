/* Critical-path breakdown (dpn_trace_enable): TSC stamps at the stage
 * boundaries of the iterations that received and sent, like the thesis's
 * tables 4.1/4.2. Compiled in; when off, each hook is one predictable
 * branch on a flag in the worker's hot cache line. */
#ifndef DPNET_TRACE_H
#define DPNET_TRACE_H

#include <stdint.h>

#include <rte_cycles.h>

enum dpn_trace_point {
    DPN_T_RX_CALL,  /* before rx_burst */
    DPN_T_RX_DONE,  /* rx_burst returned frames */
    DPN_T_APP_IN,   /* lwIP calls the application back */
    DPN_T_APP_OUT,  /* the application returned */
    DPN_T_LINK_OUT, /* lwIP hands the first frame to the driver glue */
    DPN_T_TX_CALL,  /* before tx_burst */
    DPN_T_TX_DONE,  /* tx_burst returned */
    DPN_T_POINTS
};

#define DPN_TRACE_SAMPLES 65536

struct dpn_trace {
    uint64_t t[DPN_T_POINTS];                        /* this iteration's stamps, 0 = not reached */
    uint32_t n;                                      /* samples kept */
    uint32_t d[DPN_TRACE_SAMPLES][DPN_T_POINTS - 1]; /* stage durations, ticks */
};

/* Stamp point p of this iteration: the first stamp wins. */
#define DPN_TRACE(w, p)                                                                            \
    do {                                                                                           \
        if (unlikely((w)->trace != NULL) && (w)->trace->t[p] == 0)                                 \
            (w)->trace->t[p] = rte_rdtsc();                                                        \
    } while (0)

struct dpn_worker;
/* End of an iteration: keep the sample if it went all the way round. */
void dpn_trace_iteration(struct dpn_worker *w);
void dpn_trace_report(const struct dpn_worker *w);

#endif
