/* dpnet's lwIP options. Every value that differs from lwIP's opt.h default
 * says why in one line. One lwIP instance runs per worker process (one core),
 * so lwIP's globals are per core and need no locking. */
#ifndef DPNET_LWIPOPTS_H
#define DPNET_LWIPOPTS_H

/* ---- system ---- */
#define NO_SYS 1                /* no OS threads: the worker loop drives lwIP */
#define SYS_LIGHTWEIGHT_PROT 0  /* one core per instance: nothing to protect */
#define LWIP_SOCKET 0           /* raw (callback) API only */
#define LWIP_NETCONN 0          /* raw (callback) API only */
#define LWIP_TIMERS 1           /* sys_now() comes from the TSC (stack/lwip_port.c) */
#define LWIP_SINGLE_NETIF 1     /* one port per worker: skips netif list walks */

/* ---- memory ---- */
#define MEM_ALIGNMENT 8             /* 64-bit machine */
/* lwIP's heap is a first-fit list walk: with a 512 KiB send buffer in
 * flight, mem_malloc took 42% of a bulk sender's time (perf). Fixed-size
 * pools instead (lwippools.h): O(1), and nearly every allocation is an
 * MSS-sized TCP segment anyway (TCP_OVERSIZE). */
#define MEM_USE_POOLS 1
#define MEMP_USE_CUSTOM_POOLS 1
#define MEM_USE_POOLS_TRY_BIGGER_POOL 1
#define MEMP_NUM_TCP_PCB 8192       /* thousands of concurrent connections */
#define MEMP_NUM_TCP_PCB_LISTEN 64  /* a few listeners per worker */
#define MEMP_NUM_TCP_SEG 65535      /* u16 in lwIP; unacked + unsent + ooseq segments of all connections */
#define MEMP_NUM_PBUF 65535         /* u16 in lwIP; PBUF_REF/ROM headers: zero-copy sends reference app buffers */
#define MEMP_NUM_UDP_PCB 64         /* a few UDP sockets per worker */
#define MEMP_NUM_ARP_QUEUE 1024     /* packets held while ARP resolves (many connects at once) */
#define ARP_QUEUE_LEN MEMP_NUM_ARP_QUEUE /* per neighbour too: lwIP's 3 dropped all but the last 3 SYNs of a connect burst */
#define MEMP_NUM_REASSDATA 0        /* no IP reassembly, see IP_REASSEMBLY */
#define PBUF_POOL_SIZE 512          /* RX uses mbuf-backed custom pbufs; lwIP's pool is for rare copies */
#define LWIP_SUPPORT_CUSTOM_PBUF 1  /* RX pbufs point into DPDK mbufs (zero copy) */
#define PBUF_LINK_HLEN 14           /* Ethernet, no VLAN */

/* ---- protocols ---- */
#define LWIP_IPV4 1
#define LWIP_IPV6 0      /* IPv4 first; IPv6 is future work */
#define LWIP_ARP 1       /* standalone mode resolves neighbours itself */
#define ARP_TABLE_SIZE 256 /* many peers behind one port */
#define ARP_QUEUEING 1   /* queue packets to unresolved neighbours instead of dropping */
#define ETHARP_SUPPORT_STATIC_ENTRIES 1
#define LWIP_ICMP 1
#define LWIP_RAW 0
#define LWIP_UDP 1
#define LWIP_TCP 1
#define LWIP_DHCP 0      /* addresses come from the config */
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#define LWIP_DNS 0
#define IP_REASSEMBLY 0  /* fragments are dropped: the L4 checksum cannot be verified per frame */
#define IP_FRAG 0        /* senders keep datagrams within the MTU (dpn_udp_sendto checks) */
#define IP_DEFAULT_TTL 64

/* ---- TCP ---- */
/* The largest MSS lwIP builds and advertises: jumbo frames (port.mtu up to
 * 9000) carry 8960. Each connection uses the least of this, its netif's
 * MTU - 40 (TCP_CALCULATE_EFF_SEND_MSS) and the peer's MSS: 1460 at 1500. */
#define TCP_MSS 8960
#define LWIP_WND_SCALE 1                   /* windows above 64 KiB */
#define TCP_RCV_SCALE 4                    /* up to 1 MiB advertised */
#define TCP_WND (512 * 1024)               /* large window for bulk streams; per-connection rcvbuf can lower it */
#define TCP_SND_BUF (512 * 1024)           /* large send buffer; per-connection sndbuf can lower it */
#define TCP_SND_QUEUELEN 0xfff0            /* queue of pbufs per connection; bounded by TCP_SND_BUF in practice */
#define TCP_SNDLOWAT (1460 * 4)            /* report writable when this much space is free */
#define TCP_SNDQUEUELOWAT 64
#define TCP_WND_UPDATE_THRESHOLD (1460 * 4) /* lwIP's own, at an MSS of 1460: TCP_MSS is the jumbo one */
#define TCP_OVERSIZE TCP_MSS               /* small writes fill MSS-sized segments (the connection's MSS): fewer pbufs */
#define TCP_QUEUE_OOSEQ 1                  /* keep out-of-order segments: loss recovery without refetch */
/* Out-of-order data bounded per connection and per worker (the numbers
 * are in stack/tcp_pcbs.h): peers sending holes cannot hold the mbuf pool. */
#define TCP_OOSEQ_BYTES_LIMIT(pcb) dpn_ooseq_bytes_limit(pcb)
#define TCP_OOSEQ_PBUFS_LIMIT(pcb) dpn_ooseq_pbufs_limit(pcb)
#define TCP_LISTEN_BACKLOG 1               /* bounded accept backlog (SYN flood) */
#define TCP_DEFAULT_LISTEN_BACKLOG 255 /* half-open connections per listener (u8_t in lwIP) */
#define MEMP_NUM_SYS_TIMEOUT (LWIP_NUM_SYS_TIMEOUT_INTERNAL + 256) /* + application timers */
#define LWIP_TCP_KEEPALIVE 1
#define TCP_TMR_INTERVAL 25               /* RTO granularity 50 ms instead of 500 ms: loss recovery on a LAN */
#define TCP_MAXRTX 8                       /* give up on a dead peer sooner than lwIP's 12 */
#define TCP_SYNMAXRTX 6                    /* SYN RTO 1, 2, 4 ... s (tcp_rto.c): a dead peer fails a connect after 63 s */
#define LWIP_TCP_TIMESTAMPS 0              /* 12 bytes per segment for nothing on a LAN */
#define LWIP_RANDOMIZE_INITIAL_LOCAL_PORTS 1 /* ephemeral ports not guessable */

/* Keyed initial sequence numbers (RFC 6528): stack/lwip_hooks.h. */
#define LWIP_HOOK_FILENAME "lwip_hooks.h"
#define LWIP_HOOK_TCP_ISN(local_ip, local_port, remote_ip, remote_port) \
    dpn_tcp_isn(local_ip, local_port, remote_ip, remote_port)
/* A segment finds its pcb in a 4-tuple index, not by walking every active
 * pcb (stack/tcp_pcbs.h; the two hooks come from config/lwip-tcp-index.patch);
 * pcbs leave the index through an ext-arg destroy callback. */
#define LWIP_TCP_PCB_NUM_EXT_ARGS 1
#define LWIP_HOOK_TCP_ACTIVE_REG(pcb) dpn_pcbs_reg(pcb)
#define LWIP_HOOK_TCP_INPUT_ACTIVE_PCB(sport, dport, src, dst) dpn_pcbs_input(sport, dport, src, dst)
/* RFC 793 acceptability and RFC 5961 before lwIP processes a segment of a
 * known connection (stack/tcp_guard.c). */
#define LWIP_HOOK_TCP_INPACKET_PCB(pcb, hdr, optlen, opt1len, opt2, p) dpn_tcp_inpacket(pcb, hdr, p)
/* Zero-copy send: each reference pbuf tcp_write makes for data given with
 * dpn_send_buf names the mbuf that holds the bytes, so the frame can carry
 * them in place (stack/tx.c; the hook comes from config/lwip-tcp-zc.patch).
 * The field is valid only with DPN_PBUF_FLAG_ZC set (stack/buf.h): lwIP
 * clears the flags of every pbuf it allocates, not this field. */
#define LWIP_PBUF_CUSTOM_DATA void *dpn_src;
#define LWIP_HOOK_TCP_WRITE_REF(pcb, p) dpn_tcp_write_ref(p)
/* While connections wait for room in the TX ring, the others' output waits
 * behind them (stack/tx.c; the hook from config/lwip-tcp-output-hold.patch). */
#define LWIP_HOOK_TCP_OUTPUT_HOLD(pcb) dpn_tcp_output_hold(pcb)
/* Sanitizer (test) builds check the queue tails config/lwip-tcp-tails.patch
 * keeps against a walk of each queue, wherever lwIP uses them: every TCP
 * test and the fuzzers then prove the patch's bookkeeping. Not in a
 * production build (the walk is what the patch takes out). */
#ifdef __SANITIZE_ADDRESS__
#define DPN_TAIL_CHECK(q, tail, what)                                                   \
    do {                                                                               \
        const struct tcp_seg *t_ = (q);                                                \
        if (t_ != NULL && (tail) != NULL) {                                            \
            while (t_->next != NULL)                                                   \
                t_ = t_->next;                                                         \
            if (t_ != (tail))                                                          \
                LWIP_PLATFORM_ASSERT("dpnet: " what " is not the last segment");      \
        }                                                                              \
    } while (0)
#define LWIP_DPNET_TAILS_CHECK(pcb)                                                     \
    do {                                                                               \
        DPN_TAIL_CHECK((pcb)->unsent, (pcb)->unsent_tail, "unsent_tail");              \
        DPN_TAIL_CHECK((pcb)->unacked, (pcb)->unacked_tail, "unacked_tail");           \
    } while (0)
#endif

/* ---- checksums ---- */
#define LWIP_CHECKSUM_CTRL_PER_NETIF 1     /* offload where the PMD advertises it, software otherwise */
#define LWIP_CHKSUM dpn_lwip_chksum        /* DPDK's optimized raw checksum */
#define LWIP_CHKSUM_ALGORITHM 0
#define LWIP_CHECKSUM_ON_COPY 0            /* copies go through memcpy; offload does the rest */

/* ---- callbacks, stats, debug ---- */
#define LWIP_NETIF_STATUS_CALLBACK 0
#define LWIP_NETIF_LINK_CALLBACK 0
#define LWIP_STATS 1
#define LWIP_STATS_DISPLAY 0
#define LINK_STATS 0
#define ETHARP_STATS 0
#define IP_STATS 0
#define IPFRAG_STATS 0
#define ICMP_STATS 0
#define UDP_STATS 0
#define TCP_STATS 0
#define SYS_STATS 0
#define MEM_STATS 1   /* pool counts let tests prove that nothing leaks */
#define MEMP_STATS 1


/* Debug output of lwIP itself: build with -Dc_args=-DDPN_LWIP_DEBUG and run
 * with --log-level=dpnet.stack:debug. */
#ifdef DPN_LWIP_DEBUG
#define LWIP_DEBUG 1
#define LWIP_DBG_TYPES_ON LWIP_DBG_ON
#define TCP_INPUT_DEBUG LWIP_DBG_ON
#define TCP_OUTPUT_DEBUG LWIP_DBG_ON
#define TCP_DEBUG LWIP_DBG_ON
#define IP_DEBUG LWIP_DBG_ON
#define ETHARP_DEBUG LWIP_DBG_ON
#endif

#endif
