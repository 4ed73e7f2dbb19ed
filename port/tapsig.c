/* net_tap's RX signal quieted under load (tapsig.h). Set-up and the rare
 * transitions only. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <signal.h>
#include <sys/epoll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/kcmp.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <rte_ethdev.h>

#include "log.h"
#include "tapsig.h"

uint16_t dpn_tun_fds(const char *ifname, int *fd, uint16_t max) {
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return 0;
    uint16_t n = 0;
    int self = dirfd(d);
    for (struct dirent *e; (e = readdir(d)) != NULL && n < max;) {
        char path[64], link[64];
        int f = atoi(e->d_name);
        if (e->d_name[0] == '.' || f == self)
            continue;
        snprintf(path, sizeof(path), "/proc/self/fd/%d", f);
        ssize_t k = readlink(path, link, sizeof(link) - 1);
        if (k <= 0)
            continue;
        link[k] = '\0';
        struct ifreq ifr;
        memset(&ifr, 0, sizeof(ifr));
        if (strcmp(link, "/dev/net/tun") == 0 && ioctl(f, TUNGETIFF, &ifr) == 0 &&
            strncmp(ifr.ifr_name, ifname, IFNAMSIZ) == 0)
            fd[n++] = f;
    }
    closedir(d);
    return n;
}

struct dpn_tapsig *dpn_tapsig_open(uint16_t port_id) {
    struct rte_eth_dev_info info;
    char ifname[IF_NAMESIZE];
    if (rte_eth_dev_info_get(port_id, &info) != 0 || info.driver_name == NULL ||
        strcmp(info.driver_name, "net_tap") != 0 || info.if_index == 0 ||
        if_indextoname(info.if_index, ifname) == NULL)
        return NULL;
    struct dpn_tapsig *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    /* The fds that signal: the PMD picks a free real-time signal (F_SETSIG),
     * which the kernel queues once per frame, not SIGIO, which it merges. */
    int signo = -1;
    t->nfd = dpn_tun_fds(ifname, t->fd, RTE_DIM(t->fd));
    for (uint16_t i = 0; i < t->nfd; i++) {
        int s = fcntl(t->fd[i], F_GETSIG);
        if ((fcntl(t->fd[i], F_GETFL) & O_ASYNC) == 0 || s < 0 || (signo >= 0 && s != signo)) {
            t->fd[i--] = t->fd[--t->nfd]; /* not the trigger's */
            continue;
        }
        signo = s;
    }
    struct sigaction sa;
    if (t->nfd == 0 || sigaction(signo == 0 ? SIGIO : signo, NULL, &sa) != 0 ||
        (sa.sa_flags & SA_SIGINFO) || sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN) {
        free(t); /* the PMD runs without its trigger: it always reads */
        return NULL;
    }
    t->kick = sa.sa_handler;
    t->signo = signo == 0 ? SIGIO : signo;
    DPN_LOG(DEBUG, port, "port %u (tap %s): RX signal %d quieted under load (%u fds)", port_id,
            ifname, t->signo, t->nfd);
    return t;
}

void dpn_tapsig_set_quiet(struct dpn_tapsig *t, bool quiet) {
    for (uint16_t i = 0; i < t->nfd; i++) {
        int fl = fcntl(t->fd[i], F_GETFL);
        if (fl != -1)
            fcntl(t->fd[i], F_SETFL, quiet ? fl & ~O_ASYNC : fl | O_ASYNC);
    }
    t->quiet = quiet;
    t->empty = 0;
    /* Frames that came between the last empty read and O_ASYNC coming back
     * raised no signal: one more read finds them. */
    dpn_tapsig_kick(t);
}

void dpn_tapsig_quiet_always(struct dpn_tapsig *t) {
    dpn_tapsig_set_quiet(t, true);
    t->always = true;
}

void dpn_tapsig_close(struct dpn_tapsig *t) {
    if (t == NULL)
        return;
    if (t->quiet)
        dpn_tapsig_set_quiet(t, false);
    free(t);
}

static int cmp_int(const void *a, const void *b) {
    return *(const int *)a - *(const int *)b;
}

static bool same_file(int a, int b) {
    pid_t p = getpid();
    return syscall(SYS_kcmp, p, p, KCMP_FILE, a, b) == 0;
}

/* A DPDK secondary gets net_tap's queue fds from the primary in one
 * message, RX queues in order then TX queues (tap_mp_attach_queues), and
 * the kernel numbers received fds in ascending order: the lowest nq tun
 * fds are RX queues 0..nq-1. Checked: there are exactly 2 x nq, and RX
 * queue q and TX queue q are the same file (the primary dup()s one from
 * the other) while queues differ. Anything else: -1. */
int dpn_tun_queue_epoll(uint16_t port_id, uint16_t queue) {
    struct rte_eth_dev_info info;
    char ifname[IF_NAMESIZE];
    int fd[33];
    if (rte_eth_dev_info_get(port_id, &info) != 0 || info.driver_name == NULL ||
        strcmp(info.driver_name, "net_tap") != 0 || info.if_index == 0 ||
        if_indextoname(info.if_index, ifname) == NULL)
        return -1;
    uint16_t nq = info.nb_rx_queues, n = dpn_tun_fds(ifname, fd, RTE_DIM(fd));
    if (queue >= nq || n != 2 * nq)
        return -1;
    qsort(fd, n, sizeof(fd[0]), cmp_int);
    for (uint16_t q = 0; q < nq; q++)
        if (!same_file(fd[q], fd[nq + q]) || (q > 0 && same_file(fd[q], fd[q - 1])))
            return -1;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd[queue]};
    if (ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fd[queue], &ev) != 0) {
        close(ep);
        ep = -1;
    }
    return ep;
}
