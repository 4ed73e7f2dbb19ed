/* Worker set-up and tear-down: command line and config, EAL, the port
 * (standalone) and lwIP. Attaching to dpnetd will replace only open_port(). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>

#include "lwip/init.h"
#include "lwip/memp.h"
#include "lwip/stats.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "lwip/priv/tcp_priv.h"

#include "buf.h"
#include "capture.h"
#include "eal_lcore.h"
#include "fault.h"
#include "lwip_hooks.h"
#include "tcp_tw.h"
#include "telemetry.h"
#include "trace.h"
#include "log.h"
#include "port_internal.h"
#include "tapsig.h"
#include "tapsteer.h"
#include "worker.h"

struct dpn_worker *dpn_self;

int dpn_logtype_stack;
int dpn_logtype_port;
int dpn_logtype_app;

void dpn_log_init(void) {
    dpn_logtype_stack = rte_log_register_type_and_pick_level("dpnet.stack", RTE_LOG_INFO);
    dpn_logtype_port = rte_log_register_type_and_pick_level("dpnet.port", RTE_LOG_INFO);
    dpn_logtype_app = rte_log_register_type_and_pick_level("dpnet.app", RTE_LOG_INFO);
}

const char *dpn_version(void) {
    return DPN_VERSION;
}

const char *dpn_strerror(int err) {
    if (err < 0)
        err = -err;
    switch (err) {
    case 0:
        return "success";
    case DPN_ECONFIG:
        return "configuration error";
    case DPN_EEAL:
        return "DPDK initialisation failed";
    default:
        return strerror(err);
    }
}

int dpn_parse_ip(const char *s, uint32_t *ip) {
    return dpn_parse_ipv4(s, ip);
}

uint32_t dpn_local_ip(const struct dpn_worker *w) {
    return w->cfg.ip;
}

void dpn_set_quiet(struct dpn_worker *w, int on) {
    w->quiet = on != 0;
}

unsigned dpn_worker_index(const struct dpn_worker *w) {
    unsigned idx = 0, n = 1;
    if (w->att != NULL)
        dpn_attach_rank(w, &idx, &n);
    return idx;
}

unsigned dpn_worker_count(const struct dpn_worker *w) {
    unsigned idx = 0, n = 1;
    if (w->att != NULL)
        dpn_attach_rank(w, &idx, &n);
    return n;
}

static void on_signal(int sig) {
    (void)sig;
    if (dpn_self != NULL)
        dpn_stop(dpn_self);
}

static bool has_arg(char **v, int n, const char *prefix) {
    for (int i = 0; i < n; i++)
        if (strncmp(v[i], prefix, strlen(prefix)) == 0)
            return true;
    return false;
}

/* EAL argv: argv[0], the config file's eal list, the command line's EAL
 * options, then what the device and mode imply. */
static char **build_eal_argv(const struct dpn_config *cfg, char *argv0, char **cl, int ncl,
                             bool daemon, int *neal) {
    int max = 1 + cfg->eal_argc + ncl + 7;
    char **v = calloc((size_t)max + 1, sizeof(*v));
    static char vdev[DPN_CFG_STR + 8];
    static char allow[DPN_CFG_STR];
    int n = 0;
    v[n++] = argv0;
    for (int i = 0; i < cfg->eal_argc; i++)
        v[n++] = (char *)cfg->eal_argv[i];
    for (int i = 0; i < ncl; i++)
        v[n++] = cl[i];
    if (cfg->device[0] != '\0' && !dpn_port_is_pci(cfg->device)) {
        char name[DPN_CFG_STR];
        dpn_port_dev_name(cfg->device, name, sizeof(name));
        if (!has_arg(v, n, "--vdev")) {
            snprintf(vdev, sizeof(vdev), "--vdev=%s", cfg->device);
            v[n++] = vdev;
        }
    } else if (cfg->device[0] != '\0' && !has_arg(v, n, "-a") && !has_arg(v, n, "--allow")) {
        v[n++] = "-a";
        snprintf(allow, sizeof(allow), "%s", cfg->device);
        v[n++] = allow;
    }
    /* A standalone worker shares memory with nobody: keep no hugepage files. */
    if (cfg->standalone && !has_arg(v, n, "--in-memory") && !has_arg(v, n, "--file-prefix") &&
        !has_arg(v, n, "--proc-type"))
        v[n++] = "--in-memory";
    /* memif's zero-copy client hands the peer its own mbufs, which DPDK
     * can only share with one file per memory segment list; without it
     * the port fails to probe ("multi-file segments"). */
    bool memif_zc = false;
    for (int i = 0; i < n; i++)
        memif_zc |= strstr(v[i], "net_memif") != NULL && strstr(v[i], "zero-copy=yes") != NULL;
    if (memif_zc && !has_arg(v, n, "--single-file-segments"))
        v[n++] = "--single-file-segments";
    /* dpnetd maps shared memory where every secondary can map it too: above
     * ASan's shadow (ends near 0x10007fff8000), below the libraries. */
    if (daemon && !has_arg(v, n, "--base-virtaddr"))
        v[n++] = "--base-virtaddr=0x200000000000";
    /* A worker configured as attached is dpnetd's secondary. */
    if (!cfg->standalone && !daemon && !has_arg(v, n, "--proc-type"))
        v[n++] = "--proc-type=secondary";
    if (!daemon)
        dpn_eal_lcore_rewrite(v, &n, max, argv0);
    *neal = n;
    return v;
}

/* What dpn_worker_new allocates (dpn_tw_free and dpn_free take NULL). */
static void worker_free(struct dpn_worker *w) {
    dpn_tw_free(w->tw);
    dpn_free(w->udp_ports);
    dpn_free(w->conns);
    dpn_free(w);
}

int dpn_worker_new(const struct dpn_config *cfg, struct dpn_worker **wp) {
    struct dpn_worker *w = dpn_zalloc(sizeof(*w));
    if (w == NULL)
        return -DPN_ENOMEM;
    w->cfg = *cfg;
    w->nconns = MEMP_NUM_TCP_PCB;
    w->conns = dpn_zalloc(w->nconns * sizeof(*w->conns));
    if (w->conns == NULL) {
        dpn_free(w);
        return -DPN_ENOMEM;
    }
    w->udp_ports = dpn_zalloc(65536 * sizeof(*w->udp_ports));
    if (w->udp_ports == NULL || dpn_tw_new(&w->tw) != 0) {
        worker_free(w);
        return -DPN_ENOMEM;
    }
    for (unsigned i = 0; i < w->nconns; i++) {
        w->conns[i].next = w->conn_free;
        w->conn_free = &w->conns[i];
    }
    w->rx_queues = 1;
    w->sleep_fd = -1;
    w->env = &dpn_env_standalone; /* dpn_attach makes it attached */
    w->poll_queue = true;
    w->steer_prog_fd = w->steer_map_fd = -1;
    w->tsc_per_ms = rte_get_tsc_hz() / 1000;
    w->spin_tsc = rte_get_tsc_hz() / 1000000 * cfg->spin_us;
    snprintf(w->name, sizeof(w->name), "dpn%d", getpid());
    *wp = w;
    return 0;
}

/* net_tap with guard queues: the kernel sorts SYNs out (tapsteer.h).
 * Without the program the queues still work (tun spreads flows over them),
 * unguarded: say so. */
static void steer_syns(struct dpn_worker *w) {
    struct dpn_tapsteer s;
    int rc = dpn_tapsteer_attach(w->port_id, &s);
    if (rc != 0) {
        DPN_LOG(WARNING, stack,
                "port %u: no SYN guard queues (steering program: %s); a SYN flood "
                "faster than the worker reads can drop established connections' frames",
                w->port_id, strerror(-rc));
        return;
    }
    w->steer_prog_fd = s.prog_fd;
    w->steer_map_fd = s.map_fd;
    DPN_LOG(INFO, stack,
            "port %u: SYN guard queues: bare SYNs on queue 1, past %u per %u ms from one "
            "source on queue 2",
            w->port_id, DPN_TAPSTEER_SYN_BUDGET, DPN_TAPSTEER_WINDOW_MS);
}

/* Standalone: this process owns the port. (Attached mode gets its queue
 * from dpnetd instead.) */
static int open_port(struct dpn_worker *w) {
    char pname[RTE_MEMPOOL_NAMESIZE];
    snprintf(pname, sizeof(pname), "%.15s_pool", w->name);
    w->pool =
        dpn_pool_create(pname, w->cfg.mbufs, w->cfg.mbuf_cache, w->cfg.mtu, (int)rte_socket_id());
    if (w->pool == NULL) {
        DPN_LOG(ERR, stack,
                "cannot create a pool of %u mbufs: %s (reserve more hugepages or lower "
                "pools.mbufs)",
                w->cfg.mbufs, rte_strerror(rte_errno));
        return -DPN_ENOMEM;
    }
    /* net_tap: SYN guard queues (port.syn_guard, on by default) when the
     * pool can fill their rings (the PMD gives every RX queue rx_desc mbufs
     * up front). */
    uint16_t nq = w->cfg.syn_guard && dpn_port_is_tap(&w->cfg) &&
                          w->cfg.mbufs >= (DPN_TAPSTEER_QUEUES + 2u) * w->cfg.rx_desc
                      ? DPN_TAPSTEER_QUEUES
                      : 1;
    struct rte_mempool *pools[DPN_TAPSTEER_QUEUES] = {w->pool, w->pool, w->pool};
    int rc = dpn_port_open(&w->cfg, nq, pools, nq, &w->port_id, &w->caps, &w->mac);
    if (rc != 0)
        return rc;
    w->queue_id = 0;
    w->rx_queues = nq;
    w->tapsig = dpn_tapsig_open(w->port_id);
    if (w->tapsig != NULL && w->cfg.poll == DPN_POLL_BUSY)
        dpn_tapsig_quiet_always(w->tapsig);
    if (nq > 1)
        steer_syns(w);
    /* net_tap: sleep on its queues' fds (its interrupts cannot be armed). */
    if (w->caps.rx_intr)
        w->sleep_fd = dpn_port_rx_epoll(w->port_id, w->queue_id, w->rx_queues);
    dpn_bye_init(w);
    if (w->cfg.poll == DPN_POLL_INTERRUPT && !w->caps.rx_intr) {
        DPN_LOG(ERR, stack, "poll mode interrupt: port %u (%s) has no RX interrupts; use hybrid",
                w->port_id, w->caps.driver);
        return -DPN_ENOTSUP;
    }
    return 0;
}

static int usage_error(const char *prog, const char *msg) {
    fprintf(stderr, "%s: %s\n", prog, msg);
    return -DPN_ECONFIG;
}

/* Split argv at "--", read the config and our options, start EAL. On
 * success the argument count and vector hold argv[0] and the options that are not ours. */
int dpn_setup_eal(int *argc, char ***argv, struct dpn_config *cfg, bool daemon) {
    char **av = *argv, err[512];
    int ac = *argc;
    const char *prog = av[0];

    /* EAL options come before "--", ours and the application's after. */
    int sep = 1;
    while (sep < ac && strcmp(av[sep], "--") != 0)
        sep++;
    int napp = sep < ac ? ac - sep - 1 : 0;
    /* The application's new argv: it lives as long as the process (kept
     * here, so that leak checkers see it is still held). */
    static char **app_argv;
    char **app = calloc((size_t)napp + 2, sizeof(char *));
    if (app == NULL)
        return usage_error(prog, "out of memory");
    free(app_argv);
    app_argv = app;
    app[0] = av[0];
    for (int i = 0; i < napp; i++)
        app[i + 1] = av[sep + 1 + i];
    int app_argc = napp + 1;

    dpn_config_defaults(cfg);
    if (daemon)
        cfg->standalone = false;
    if (dpn_config_parse_args(cfg, &app_argc, app, err, sizeof(err)) != 0)
        return usage_error(prog, err);
    if (daemon && cfg->standalone)
        return usage_error(prog, "dpnetd is never standalone: drop --standalone / mode");
    if (daemon && cfg->capture[0] != '\0')
        return usage_error(prog, "dpnetd captures on request: drop --capture / capture.*, "
                                 "run dpnetctl capture -w FILE");

    int neal;
    char **eal = build_eal_argv(cfg, av[0], av + 1, sep - 1, daemon, &neal);
    if (daemon && has_arg(eal, neal, "--in-memory"))
        return free(eal),
               usage_error(prog, "dpnetd shares its memory with the workers: drop --in-memory");
    int eal_rc = rte_eal_init(neal, eal);
    free(eal); /* the strings are argv's or static; EAL copied what it keeps */
    if (eal_rc < 0) {
        int fd = dpn_eal_lcore_conn(); /* no attach on it now */
        if (fd >= 0)
            close(fd);
        /* Some EAL failures (a config file another primary holds) set no
         * rte_errno: "Success" would be a lie. */
        fprintf(stderr, "%s: DPDK EAL initialisation failed: %s%s\n", prog,
                rte_errno != 0 ? rte_strerror(rte_errno) : "see EAL's message above",
                rte_errno == EALREADY || rte_errno == EBUSY
                    ? " (is another primary already running with this --file-prefix?)"
                    : "");
        return -DPN_EEAL;
    }
    dpn_log_init();
    cfg->attached = rte_eal_process_type() == RTE_PROC_SECONDARY;
    if (cfg->attached)
        cfg->standalone = false;
    if (daemon && cfg->attached) {
        rte_eal_cleanup();
        return usage_error(prog, "dpnetd must be the DPDK primary: drop --proc-type");
    }
    if (dpn_config_validate(cfg, err, sizeof(err)) != 0) {
        rte_eal_cleanup();
        return usage_error(prog, err);
    }
    *argc = app_argc;
    *argv = app;
    return 0;
}

/* lwIP and the worker's interface; the worker becomes this process's. */
int dpn_stack_start(struct dpn_worker *w) {
    dpn_lwip_port_init();
    lwip_init();
    int rc = dpn_netif_setup(w);
    if (rc == 0)
        rc = dpn_fault_init(w);
    if (rc != 0)
        return rc;
    dpn_self = w;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    return 0;
}

int dpn_init(int *argc, char ***argv, struct dpn_worker **wp) {
    const char *prog = (*argv)[0];
    struct dpn_config cfg;
    int rc = dpn_setup_eal(argc, argv, &cfg, false);
    if (rc != 0)
        return rc;
    struct dpn_worker *w = NULL;
    rc = dpn_worker_new(&cfg, &w);
    if (rc == 0)
        rc = cfg.attached ? dpn_attach(w, prog) : open_port(w);
    if (rc == 0 && (rc = dpn_stack_start(w)) != 0)
        fprintf(stderr, "%s: network interface set-up failed\n", prog);
    if (rc == 0)
        rc = dpn_cap_file_open(w, prog);
    if (rc != 0) {
        if (rc != -DPN_ENOTSUP && rc != -DPN_ENODEV && !cfg.attached)
            fprintf(stderr, "%s: %s\n", prog, dpn_strerror(rc));
        if (w != NULL) /* DPDK's own memory goes with the EAL */
            worker_free(w);
        rte_eal_cleanup();
        return rc;
    }
    w->mbufs_start = dpn_mbufs_free(w);
    dpn_telemetry_worker(w);
    *wp = w;
    return 0;
}

void dpn_get_stats(const struct dpn_worker *w, struct dpn_stats *st) {
    *st = w->st;
    st->rx_nombuf = w->env->rx_nombuf(w);
    st->time_wait = dpn_tw_count(w->tw);
    dpn_tcp_guard_stats(st);
}

static void print_stats(const struct dpn_worker *w) {
    struct dpn_stats st;
    dpn_get_stats(w, &st);
    fprintf(stderr,
            "dpnet stats: rx %" PRIu64 " pkts %" PRIu64 " bytes, tx %" PRIu64 " pkts %" PRIu64
            " bytes, rx_dropped %" PRIu64 ", tx_dropped %" PRIu64 ", rx_nombuf %" PRIu64
            ", connections %" PRIu64 " total, polls %" PRIu64 ", idle sleeps %" PRIu64
            ", syn cookies %" PRIu64 " sent %" PRIu64 " ok, tx ring full %" PRIu64 " (%" PRIu64
            " refused to tcp), rx copied %" PRIu64 ", time_wait %" PRIu64 ", tcp guard %" PRIu64
            " unacceptable %" PRIu64 " bad ack %" PRIu64 " challenged %" PRIu64
            " limited, arp %" PRIu64 " dropped %" PRIu64 " probes %" PRIu64 " moved, udp %" PRIu64
            " bad source %" PRIu64 " unread, zero-copy tx %" PRIu64 " pieces %" PRIu64
            " bytes, tso %" PRIu64 " frames %" PRIu64 " segments, tcp fast path %" PRIu64
            " in %" PRIu64 " out, mbufs free %u (%u after start-up)\n",
            st.rx_pkts, st.rx_bytes, st.tx_pkts, st.tx_bytes, st.rx_dropped, st.tx_dropped,
            st.rx_nombuf, st.conns_total, st.polls, st.idle_sleeps, st.syn_cookies,
            st.syn_cookies_ok, st.tx_full, st.tx_blocked, st.rx_copied, st.time_wait,
            st.tcp_unacceptable, st.tcp_bad_ack, st.tcp_challenged, st.tcp_acks_limited,
            st.arp_dropped, st.arp_probes, st.arp_moved, st.udp_bad_src, st.udp_unread,
            st.tx_zc_segs, st.tx_zc_bytes, st.tx_tso_frames, st.tx_tso_segs, st.tcp_fast,
            st.tcp_fast_out, dpn_mbufs_free(w), w->mbufs_start);
    if (w->csum0_drops > 0)
        fprintf(stderr,
                "dpnet: %" PRIu64 " TCP segments with a zero checksum failed the check: if the "
                "peer sends without checksums (port.csum none), set port.csum trust or none here "
                "too\n",
                w->csum0_drops);
    struct rte_eth_stats es;
    if (w->rx_queues > 1 && w->att == NULL && rte_eth_stats_get(w->port_id, &es) == 0)
        fprintf(stderr,
                "dpnet guard queues: rx %" PRIu64 " other, %" PRIu64 " SYNs, %" PRIu64
                " SYNs past a source's budget (steering %s)\n",
                es.q_ipackets[0], es.q_ipackets[1], es.q_ipackets[2],
                w->steer_prog_fd >= 0 ? "on" : "off");
    if (w->fault != NULL) {
        struct dpn_fault_counters c;
        dpn_fault_counters(w, &c);
        fprintf(stderr,
                "dpnet faults: dropped %" PRIu64 ", duplicated %" PRIu64 ", reordered %" PRIu64
                ", corrupted %" PRIu64 ", delayed %" PRIu64 ", dropped while down %" PRIu64 "\n",
                c.dropped, c.duplicated, c.reordered, c.corrupted, c.delayed, c.down_dropped);
    }
}

/* Poll without sleeping for up to ms milliseconds or until no connection is open. */
static void drain(struct dpn_worker *w, unsigned ms) {
    uint64_t end = rte_rdtsc() + w->tsc_per_ms * ms;
    uint64_t now;
    while ((now = rte_rdtsc()) < end && (tcp_active_pcbs != NULL || w->tx_n > 0))
        dpn_poll_once(w, now);
}

void dpn_close(struct dpn_worker *w) {
    if (w == NULL)
        return;
    /* FIN every connection and give the peers a moment to finish, then RST
     * whatever is left so nobody waits on us. */
    dpn_tcp_close_all(w, false);
    drain(w, 500);
    dpn_tcp_close_all(w, true);
    for (struct tcp_pcb *p = tcp_active_pcbs; p != NULL;) {
        struct tcp_pcb *next = p->next;
        tcp_abort(p);
        p = next;
    }
    if (w->tx_n > 0)
        dpn_tx_flush(w);
    dpn_tx_drop_all(w);
    dpn_cap_file_close(w);
    if (w->att == NULL)
        dpn_port_tx_release(w->port_id, w->queue_id);
    if (!w->quiet && !w->cfg.quiet)
        print_stats(w);
    dpn_trace_report(w);
    dpn_trace_enable(w, 0);
    dpn_fault_fini(w);
    dpn_telemetry_worker(NULL);
    dpn_self = NULL;
    if (w->att != NULL) {
        dpn_detach(w); /* the port and the pool are dpnetd's */
    } else {
        dpn_bye_leave(w); /* a memif peer must stop polling before we go */
        if (w->sleep_fd >= 0)
            close(w->sleep_fd);
        dpn_tapsig_close(w->tapsig);
        struct dpn_tapsteer s = {w->steer_prog_fd, w->steer_map_fd};
        dpn_tapsteer_close(&s, w->port_id);
        dpn_port_close(w->port_id);
        rte_mempool_free(w->pool);
    }
    dpn_timers_fini(w);
    worker_free(w);
    rte_eal_cleanup();
}
