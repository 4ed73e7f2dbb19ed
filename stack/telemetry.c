/* A worker's counters as the DPDK telemetry command /dpnet/stats, in its
 * own process's telemetry socket (dpdk-telemetry.py -f PREFIX -i N; dpnetd
 * has its tables under /dpnet/ in its own). The command runs in EAL's
 * telemetry thread: it reads counters the worker writes (aligned 64-bit
 * words: a value may be a poll old, never torn), and nothing once the
 * worker is gone. */
#include <rte_telemetry.h>

#include "dpnet.h"
#include "log.h"
#include "telemetry.h"

static const struct dpn_worker *_Atomic tel_worker;

static int cmd_stats(const char *cmd, const char *params, struct rte_tel_data *d) {
    (void)cmd;
    (void)params;
    const struct dpn_worker *w = tel_worker;
    rte_tel_data_start_dict(d);
    if (w == NULL)
        return 0;
    struct dpn_stats st;
    dpn_get_stats(w, &st);
    const struct {
        const char *name;
        uint64_t v;
    } f[] = {
        {"rx_pkts", st.rx_pkts},
        {"rx_bytes", st.rx_bytes},
        {"tx_pkts", st.tx_pkts},
        {"tx_bytes", st.tx_bytes},
        {"rx_dropped", st.rx_dropped},
        {"tx_dropped", st.tx_dropped},
        {"rx_nombuf", st.rx_nombuf},
        {"conns_open", st.conns_open},
        {"conns_total", st.conns_total},
        {"polls", st.polls},
        {"idle_sleeps", st.idle_sleeps},
        {"syn_cookies", st.syn_cookies},
        {"syn_cookies_ok", st.syn_cookies_ok},
        {"tx_full", st.tx_full},
        {"tx_blocked", st.tx_blocked},
        {"tx_zc_segs", st.tx_zc_segs},
        {"tx_zc_bytes", st.tx_zc_bytes},
        {"tx_tso_frames", st.tx_tso_frames},
        {"tx_tso_segs", st.tx_tso_segs},
        {"tcp_fast", st.tcp_fast},
        {"tcp_fast_out", st.tcp_fast_out},
        {"rx_copied", st.rx_copied},
        {"time_wait", st.time_wait},
        {"tcp_unacceptable", st.tcp_unacceptable},
        {"tcp_bad_ack", st.tcp_bad_ack},
        {"tcp_challenged", st.tcp_challenged},
        {"tcp_acks_limited", st.tcp_acks_limited},
        {"arp_dropped", st.arp_dropped},
        {"arp_probes", st.arp_probes},
        {"arp_moved", st.arp_moved},
        {"udp_bad_src", st.udp_bad_src},
        {"udp_unread", st.udp_unread},
        {"mbufs_free", dpn_mbufs_free(w)},
    };
    for (unsigned i = 0; i < RTE_DIM(f); i++)
        rte_tel_data_add_dict_u64(d, f[i].name, f[i].v);
    return 0;
}

void dpn_telemetry_worker(const struct dpn_worker *w) {
    static bool registered;
    tel_worker = w;
    if (w == NULL || registered)
        return;
    registered = true;
    if (rte_telemetry_register_cmd("/dpnet/stats", cmd_stats,
                                   "This worker's counters (as dpn_get_stats gives them).") != 0)
        DPN_LOG(NOTICE, stack, "telemetry: /dpnet/stats not registered");
}
