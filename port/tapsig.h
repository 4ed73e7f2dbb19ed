/* net_tap's RX signal, quieted while frames keep coming.
 *
 * net_tap sets O_ASYNC on its queue fds with a real-time signal (F_SETSIG):
 * the kernel queues one signal per frame, and the PMD's handler bumps a
 * trigger without which rx_burst does not even try to read (it spares an
 * empty readv per poll). Under load that is one signal delivery per frame,
 * about 15 us in this guest: a SYN flood cost 20 us of CPU per frame, 4 us
 * without the signal, and the flooder's own sends paid for raising them.
 * Once a full burst shows frames are waiting we clear O_ASYNC and bump the
 * trigger ourselves (the PMD's own handler, called directly), so the PMD
 * reads until the queue is empty; after a few empty polls the signal comes
 * back. fcntl runs on those transitions only, never per frame. A
 * busy-polling worker stays quiet for good: it reads every poll anyway,
 * and the signal alone took 35 us off a 55 us round trip over the tap. */
#ifndef DPNET_TAPSIG_H
#define DPNET_TAPSIG_H

#include <stdbool.h>
#include <stdint.h>

struct dpn_tapsig {
    void (*kick)(int); /* the PMD's handler of its RX signal */
    int signo;
    bool quiet;     /* O_ASYNC cleared: we kick before every rx_burst */
    bool always;    /* busy polling: quiet for good (a signal only costs) */
    uint16_t empty; /* consecutive empty polls while quiet */
    uint16_t nfd;
    int fd[16]; /* the port's tun fds in this process */
};

/* For a net_tap port whose PMD uses its signal trigger: the state to pass
 * below; NULL for any other port (nothing to do). */
struct dpn_tapsig *dpn_tapsig_open(uint16_t port_id);
void dpn_tapsig_close(struct dpn_tapsig *t);
void dpn_tapsig_set_quiet(struct dpn_tapsig *t, bool quiet);
/* A busy-polling reader reads anyway: no signal at all. */
void dpn_tapsig_quiet_always(struct dpn_tapsig *t);

/* The fds of /dev/net/tun attached to interface ifname in this process,
 * found in /proc/self/fd (the PMD does not export its queue fds); at most
 * max of them. Set-up only. */
uint16_t dpn_tun_fds(const char *ifname, int *fd, uint16_t max);

/* In a DPDK secondary: an epoll fd that is readable while RX queue `queue`
 * of net_tap port port_id has frames, or -1 when the port is not net_tap or
 * its fd cannot be told apart. Attached workers sleep on it. */
int dpn_tun_queue_epoll(uint16_t port_id, uint16_t queue);

#define DPN_TAPSIG_EMPTY_POLLS 8 /* empty polls before the signal comes back */

/* The PMD reads a queue only after its signal handler bumped a trigger:
 * a readable fd alone does not make it read. */
static inline void dpn_tapsig_kick(struct dpn_tapsig *t) {
    t->kick(t->signo);
}

/* Around each rx_burst of the port (per poll, not per frame). */
static inline void dpn_tapsig_before(struct dpn_tapsig *t) {
    if (t->quiet)
        dpn_tapsig_kick(t);
}

static inline void dpn_tapsig_after(struct dpn_tapsig *t, uint16_t n, uint16_t burst) {
    if (t->always)
        return;
    if (!t->quiet) {
        if (n == burst)
            dpn_tapsig_set_quiet(t, true);
    } else if (n > 0) {
        t->empty = 0;
    } else if (++t->empty >= DPN_TAPSIG_EMPTY_POLLS) {
        dpn_tapsig_set_quiet(t, false);
    }
}

#endif
