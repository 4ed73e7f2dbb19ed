/* Host configuration: libconfig file + command-line overrides, validated.
 * Set-up code only (never on the fast path). */
#ifndef DPNET_CONFIG_H
#define DPNET_CONFIG_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

enum dpn_poll_mode { DPN_POLL_BUSY = 0, DPN_POLL_HYBRID, DPN_POLL_INTERRUPT };
/* TCP and UDP checksums where the PMD does not offload them (port.c):
 * full: computed on TX, verified on RX; trust: computed on TX, not verified
 * on RX (a link of shared memory, no wire: memif's default, as Linux trusts
 * veth); none: neither (both ends dpnet with trust or none, as two Linux
 * namespaces over veth). auto: trust on memif, full elsewhere. */
enum dpn_csum_mode { DPN_CSUM_AUTO = 0, DPN_CSUM_FULL, DPN_CSUM_TRUST, DPN_CSUM_NONE };
enum dpn_steer_mode {
    DPN_STEER_AUTO = 0,
    DPN_STEER_HARDWARE,
    DPN_STEER_SOFTWARE,
    DPN_STEER_KERNEL
};

/* Fault injection for tests (stack/fault.h); all zero = off. */
struct dpn_fault_spec {
    double drop, dup, reorder, corrupt; /* probability per frame, 0..1 */
    uint32_t delay_us, jitter_us;
    uint32_t down_at_ms, down_for_ms; /* timed from the first TCP frame received */
    uint64_t seed;
    bool rx, tx; /* directions */
    bool on;
};

#define DPN_CFG_MAX_EAL_ARGS 64
#define DPN_CFG_STR 256

struct dpn_config {
    char source[DPN_CFG_STR]; /* file the values came from ("" = defaults only) */

    /* EAL arguments from the file's `eal` list (prepended to the command line's). */
    int eal_argc;
    char eal_argv[DPN_CFG_MAX_EAL_ARGS][DPN_CFG_STR];

    /* port */
    char device[DPN_CFG_STR]; /* "net_tap0,iface=x" (vdev), "0000:03:00.0" (PCI), "" = port 0 */
    uint16_t mtu;             /* 68..9000, default 1500 */
    uint16_t rx_desc;         /* power of two 64..4096, default 1024 */
    uint16_t tx_desc;         /* power of two 64..4096, default 1024 */

    /* addresses, host byte order */
    bool ip_set;
    uint32_t ip;
    uint8_t prefix_len; /* 1..32 */
    uint32_t gateway;   /* 0 = none */
    bool mac_set;
    uint8_t mac[6]; /* overrides the port's MAC */

    /* polling */
    enum dpn_poll_mode poll;
    uint32_t spin_us;      /* hybrid: spin this long without packets before sleeping (0..1000000),
                              default 50 */
    uint32_t sleep_max_us; /* hybrid/interrupt: longest single sleep (1..1000000), default 1000 */
    uint32_t tso;          /* TCP segmentation offload: 0 off, 1 (default) where the PMD has it but
                              DPDK 22.11's net_tap, 2 net_tap too (port.c) */
    enum dpn_csum_mode csum; /* port.csum, default auto */
    uint32_t syn_guard; /* net_tap standalone: SYN guard queues (tapsteer.h), 0 or 1 (default) */

    /* pools */
    uint32_t mbufs;      /* mbufs in the worker's pool (1024..1048576), default 16383 */
    uint32_t mbuf_cache; /* per-lcore cache (0..512, <= mbufs/1.5), default 256 */

    /* TCP, bytes */
    uint32_t tcp_sndbuf;    /* per connection (2*MSS .. TCP_SND_BUF), default 262144 */
    uint32_t tcp_rcvbuf;    /* per connection (2*MSS .. TCP_WND), default 262144 */
    uint32_t send_zc;       /* TCP data sent from mbufs, no copy after the application's (tcp.c,
                               tx.c): 0 off, 1 (default) on PCI NICs, 2 on every port */
    uint32_t tcp_fast_path; /* header prediction (tcp_fast.c): 1 (default) on, 0 every segment
                               through lwIP's input */

    bool standalone; /* own DPDK primary, lwIP does its own ARP */
    bool attached;   /* a DPDK secondary of dpnetd: addresses come from the daemon */
    char app[32];    /* attached: application name; workers with one name share ports */
    uint32_t quiet;  /* 1: dpn_close prints no counters (--quiet) */

    /* dpnetd */
    uint16_t queues; /* queue pairs incl. the daemon's queue 0 (2..16), default 4 */
    enum dpn_steer_mode
        steering; /* auto (kernel, else hardware, where the port can), hardware, software, kernel */
    char exception[16]; /* Linux interface that gets unclaimed traffic ("" = none: RST/ICMP) */

    /* standalone: capture every frame to this pcapng file ("" = none) */
    char capture[DPN_CFG_STR];
    char capture_filter[DPN_CFG_STR]; /* tcpdump's syntax, "" = every frame */
    uint32_t capture_snaplen;         /* bytes kept of each frame (0..16384, 0 = all) */

    /* tests: fault injection between the worker and its queue */
    struct dpn_fault_spec fault;
};

/* Fill cfg with defaults (no address set). */
void dpn_config_defaults(struct dpn_config *cfg);
/* Every option and config key with what it takes, one per line (--help). */
void dpn_config_help(FILE *f);

/* Load a libconfig file over cfg. On error returns -1 and writes one line to
 * err: "FILE:LINE: key 'x': what is wrong" (LINE of the offending setting, or
 * of the syntax error). Unknown keys are errors. */
int dpn_config_load(struct dpn_config *cfg, const char *path, char *err, size_t errlen);

/* Consume dpnet's options from argv[1..argc-1] (the part after EAL's "--"):
 * -c/--config FILE, --ip ADDR/LEN, --gw ADDR, --mac MAC, --dev DEVICE,
 * --poll busy|hybrid|interrupt, --spin-us N, --mtu N, --standalone, --app NAME,
 * --queues N, --steering auto|kernel|hardware|software, --exception IFNAME;
 * both "--opt value" and "--opt=value". A config file named on the command
 * line is loaded first, then the other options override it whatever their
 * order. Options not ours are kept, in order, in argv[1..*argc-1] (argv[0]
 * stays). Returns 0, or -1 with "option '--x': what is wrong" in err. */
int dpn_config_parse_args(struct dpn_config *cfg, int *argc, char **argv, char *err, size_t errlen);

/* Cross-field checks after everything is loaded (address set, gateway inside
 * the subnet, cache vs pool size...). Returns 0 or -1 with a message. */
int dpn_config_validate(const struct dpn_config *cfg, char *err, size_t errlen);

/* Parsers shared with the applications; 0 on success, -1 on bad input. */
int dpn_parse_ipv4(const char *s, uint32_t *ip);                      /* host order */
int dpn_parse_cidr(const char *s, uint32_t *ip, uint8_t *prefix_len); /* "a.b.c.d/len" */
int dpn_parse_mac(const char *s, uint8_t mac[6]);                     /* "02:00:00:00:00:01" */
int dpn_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);

const char *dpn_poll_mode_name(enum dpn_poll_mode m);
const char *dpn_steer_mode_name(enum dpn_steer_mode m);
const char *dpn_csum_mode_name(enum dpn_csum_mode m);

/* Fault spec "drop=P,dup=P,reorder=P,corrupt=P,delay=US[:JITTER],down=AT:FOR,
 * seed=N,dir=rx|tx|both" (see stack/fault.h). 0, or -1 with a reason. */
int dpn_fault_parse(const char *spec, struct dpn_fault_spec *f, char *err, size_t errlen);

#endif
