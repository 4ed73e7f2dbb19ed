/* Options for lwIP's own unit tests (third_party/lwip/test/unit, see
 * docs/lwip-unit.md): dpnet's config/lwipopts.h unchanged, then only what the
 * test harness needs. lwIP and the tests are compiled with this file; the
 * product's lwIP (stack/meson.build) never sees it. */
#ifndef DPNET_TEST_LWIPOPTS_H
#define DPNET_TEST_LWIPOPTS_H

#include "../../config/lwipopts.h"

/* ---- both binaries (lwip_unit, lwip_unit_tcp): instrumentation only ---- */
#define LWIP_TESTMODE 1 /* timeouts.c exposes its timer list to test_timers.c */
#undef TCP_STATS
#define TCP_STATS 1 /* tcp_helper.c, test_tcp*.c #error without it (counters only) */
#undef UDP_STATS
#define UDP_STATS 1 /* test_udp.c, test_etharp.c #error without it (counters only) */
#undef ETHARP_STATS
#define ETHARP_STATS 1             /* test_etharp.c #errors without it (counters only) */
#define LWIP_MEM_ILLEGAL_FREE(msg) /* test_mem frees bad pointers on purpose, checks the stats */
/* test_netif.c #errors without it; no other test registers a callback */
#define LWIP_NETIF_EXT_STATUS_CALLBACK 1

/* The harness puts pcbs on lwIP's lists itself (tcp_helper.c: TCP_REG), past
 * LWIP_HOOK_TCP_ACTIVE_REG, so the index cannot know them: segments find
 * their pcb by lwIP's own walk here. The input guard runs as in the product. */
#undef LWIP_HOOK_TCP_INPUT_ACTIVE_PCB
/* Zero-copy tagging and the wait for room in the TX ring serve our TX path
 * (stack/tx.c), which is not here. */
#undef LWIP_HOOK_TCP_WRITE_REF
#undef LWIP_HOOK_TCP_OUTPUT_HOLD

/* Ours bound the out-of-order queue through TCP_OOSEQ_BYTES_LIMIT(pcb) and
 * leave these at lwIP's 0, which compiles test_tcp_oos.c's unbounded cases
 * (they need more than our 256 segments per connection) and its
 * TCP_OOSEQ_MAX_BYTES case (which does not compile in lwIP 2.1.3). The
 * values dpnet had before keep them out, as docs/lwip-unit.md says. */
#define TCP_OOSEQ_MAX_BYTES (1024 * 1024)
#define TCP_OOSEQ_MAX_PBUFS 1024

/* ---- lwip_unit_tcp only: two deviations from our options, see docs/lwip-unit.md ---- */
#ifdef DPN_LWIP_UNIT_TCP
#undef LWIP_SINGLE_NETIF
#define LWIP_SINGLE_NETIF 0 /* the harness links its test netifs through netif_list/netif->next */
#undef TCP_SND_BUF
#define TCP_SND_BUF (TCP_WND + TCP_MSS) /* test_tcp.c #errors unless TCP_SND_BUF > TCP_WND */
#endif

#endif
