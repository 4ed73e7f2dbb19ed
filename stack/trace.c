/* Critical-path breakdown: per-stage medians over the iterations that took
 * a frame in and put one out (a request and its answer). Set-up and report
 * code here; the stamps themselves are the DPN_TRACE macro. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"
#include "worker.h"

static const char *const stage[DPN_T_POINTS - 1] = {
    "driver RX (rx_burst)",    "lwIP input to callback", "application",
    "callback to lwIP output", "output glue + batch",    "driver TX (tx_burst)",
};

int dpn_trace_enable(struct dpn_worker *w, int on) {
    if (on && w->trace == NULL) {
        w->trace = dpn_zalloc(sizeof(*w->trace));
        return w->trace == NULL ? -DPN_ENOMEM : 0;
    }
    if (!on && w->trace != NULL) {
        dpn_free(w->trace);
        w->trace = NULL;
    }
    return 0;
}

void dpn_trace_iteration(struct dpn_worker *w) {
    struct dpn_trace *t = w->trace;
    bool full = t->t[DPN_T_RX_DONE] != 0 && t->t[DPN_T_APP_IN] != 0 && t->t[DPN_T_APP_OUT] != 0 &&
                t->t[DPN_T_LINK_OUT] != 0 && t->t[DPN_T_TX_DONE] != 0;
    /* A frame sent from inside the callback (UDP sends at once; TCP at the
     * flush after it): the send counts as application time. */
    if (t->t[DPN_T_LINK_OUT] < t->t[DPN_T_APP_OUT])
        t->t[DPN_T_LINK_OUT] = t->t[DPN_T_APP_OUT];
    if (full && t->n < DPN_TRACE_SAMPLES) {
        for (int s = 0; s < DPN_T_POINTS - 1; s++)
            t->d[t->n][s] = (uint32_t)(t->t[s + 1] - t->t[s]);
        t->n++;
    }
    memset(t->t, 0, sizeof(t->t));
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void dpn_trace_report(const struct dpn_worker *w) {
    const struct dpn_trace *t = w->trace;
    if (t == NULL)
        return;
    if (t->n == 0) {
        fprintf(stderr, "dpnet trace: no complete request/answer iteration recorded\n");
        return;
    }
    uint32_t *v = malloc(sizeof(*v) * t->n);
    double ns = 1e9 / (double)rte_get_tsc_hz(), med[DPN_T_POINTS - 1], total = 0;
    for (int s = 0; s < DPN_T_POINTS - 1; s++) {
        for (uint32_t i = 0; i < t->n; i++)
            v[i] = t->d[i][s];
        qsort(v, t->n, sizeof(*v), cmp_u32);
        med[s] = v[t->n / 2] * ns;
        total += med[s];
    }
    free(v);
    fprintf(stderr, "dpnet trace: %u iterations (a frame in, a frame out), medians:\n", t->n);
    fprintf(stderr, "  %-26s %10s %7s\n", "stage", "ns", "share");
    for (int s = 0; s < DPN_T_POINTS - 1; s++)
        fprintf(stderr, "  %-26s %10.0f %6.1f%%\n", stage[s], med[s], 100 * med[s] / total);
    fprintf(stderr, "  %-26s %10.0f %6.1f%%\n", "total (sum of medians)", total, 100.0);
}
