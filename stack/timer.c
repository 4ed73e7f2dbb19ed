/* Application timers with handles (timer.h, dpnet.h). */
#include <stdlib.h>

#include <rte_cycles.h>

#include "timer.h"
#include "worker.h"

struct dpn_timer {
    struct dpn_worker *w;
    dpn_timer_fn fn;
    void *arg;
    uint64_t due_tsc;
    uint64_t period_tsc; /* 0: once */
    int idx;             /* in the heap, -1 = not pending */
};

static void place(struct dpn_timers *h, unsigned i, struct dpn_timer *t) {
    h->heap[i] = t;
    t->idx = (int)i;
}

static void sift_up(struct dpn_timers *h, unsigned i) {
    struct dpn_timer *t = h->heap[i];
    while (i > 0 && h->heap[(i - 1) / 2]->due_tsc > t->due_tsc) {
        place(h, i, h->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    place(h, i, t);
}

static void sift_down(struct dpn_timers *h, unsigned i) {
    struct dpn_timer *t = h->heap[i];
    for (;;) {
        unsigned c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->heap[c + 1]->due_tsc < h->heap[c]->due_tsc)
            c++;
        if (h->heap[c]->due_tsc >= t->due_tsc)
            break;
        place(h, i, h->heap[c]);
        i = c;
    }
    place(h, i, t);
}

static void heap_remove(struct dpn_timers *h, struct dpn_timer *t) {
    unsigned i = (unsigned)t->idx;
    t->idx = -1;
    struct dpn_timer *last = h->heap[--h->n];
    if (i == h->n)
        return;
    place(h, i, last);
    sift_down(h, i);
    sift_up(h, (unsigned)last->idx);
}

static void heap_insert(struct dpn_timers *h, struct dpn_timer *t) {
    h->heap[h->n] = t;
    t->idx = (int)h->n++;
    sift_up(h, (unsigned)t->idx);
}

struct dpn_timer *dpn_timer_new(struct dpn_worker *w, dpn_timer_fn fn, void *arg) {
    if (w == NULL || fn == NULL)
        return NULL;
    struct dpn_timers *h = &w->timers;
    if (h->made == h->cap) { /* room for every timer made: start never allocates */
        unsigned cap = h->cap == 0 ? 16 : h->cap * 2;
        struct dpn_timer **heap = realloc(h->heap, cap * sizeof(*heap));
        if (heap == NULL)
            return NULL;
        h->heap = heap;
        h->cap = cap;
    }
    struct dpn_timer *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->w = w;
    t->fn = fn;
    t->arg = arg;
    t->idx = -1;
    h->made++;
    return t;
}

int dpn_timer_start(struct dpn_timer *t, uint32_t ms, uint32_t period_ms) {
    if (t == NULL)
        return -DPN_EINVAL;
    struct dpn_timers *h = &t->w->timers;
    uint64_t per_ms = t->w->tsc_per_ms;
    if (t->idx >= 0)
        heap_remove(h, t);
    t->due_tsc = rte_rdtsc() + ms * per_ms;
    t->period_tsc = (uint64_t)period_ms * per_ms;
    heap_insert(h, t);
    return 0;
}

void dpn_timer_stop(struct dpn_timer *t) {
    if (t != NULL && t->idx >= 0)
        heap_remove(&t->w->timers, t);
}

int dpn_timer_pending(const struct dpn_timer *t) {
    return t != NULL && t->idx >= 0;
}

void dpn_timer_free(struct dpn_timer *t) {
    if (t == NULL)
        return;
    dpn_timer_stop(t);
    t->w->timers.made--;
    free(t);
}

void dpn_timers_run(struct dpn_worker *w, uint64_t now) {
    struct dpn_timers *h = &w->timers;
    /* Each timer due now runs once per tick, even a periodic one behind
     * by several periods: it is put back before its callback (which may
     * stop, restart or free it), one period from its due time or from
     * now, whichever is later. */
    unsigned budget = h->n;
    while (h->n > 0 && budget-- > 0 && h->heap[0]->due_tsc <= now) {
        struct dpn_timer *t = h->heap[0];
        heap_remove(h, t);
        if (t->period_tsc != 0) {
            t->due_tsc += t->period_tsc;
            if (t->due_tsc <= now)
                t->due_tsc = now + t->period_tsc;
            heap_insert(h, t);
        }
        t->fn(t->arg);
    }
}

uint64_t dpn_timers_next_us(const struct dpn_worker *w, uint64_t now) {
    const struct dpn_timers *h = &w->timers;
    if (h->n == 0)
        return UINT64_MAX;
    uint64_t due = h->heap[0]->due_tsc;
    return due <= now ? 0 : (due - now) * 1000 / w->tsc_per_ms;
}

void dpn_timers_fini(struct dpn_worker *w) {
    /* Timers the application did not free stay its own; they can no longer run. */
    for (unsigned i = 0; i < w->timers.n; i++)
        w->timers.heap[i]->idx = -1;
    free(w->timers.heap);
    w->timers.heap = NULL;
    w->timers.n = w->timers.cap = 0;
}
