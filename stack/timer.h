/* Application timers with handles (dpn_timer_new/start/stop/free): a
 * binary min-heap on the due time, run from the worker's millisecond tick.
 * The heap's room is reserved when a timer is made, so starting one never
 * allocates. Internal to libdpnet. */
#ifndef DPNET_TIMER_H
#define DPNET_TIMER_H

#include <stdint.h>

struct dpn_worker;
struct dpn_timer;

struct dpn_timers {
    struct dpn_timer **heap;
    unsigned n;    /* timers pending */
    unsigned cap;  /* room in heap: at least the timers made */
    unsigned made; /* timers made and not freed */
};

/* Run the timers due at now (TSC). */
void dpn_timers_run(struct dpn_worker *w, uint64_t now);
/* Microseconds to the next due timer from now, UINT64_MAX for none. */
uint64_t dpn_timers_next_us(const struct dpn_worker *w, uint64_t now);
void dpn_timers_fini(struct dpn_worker *w);

#endif
