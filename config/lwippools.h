/* lwIP's heap as fixed-size pools (MEM_USE_POOLS in lwipopts.h). An
 * allocation takes the smallest pool it fits, or a bigger one when that is
 * empty; past the last it fails (ERR_MEM). Sizes are what the caller asks
 * for; lwIP adds its 8-byte pool tag. Static memory, about 81 MiB. */
LWIP_MALLOC_MEMPOOL_START
/* UDP, ICMP and ARP packets of a few hundred bytes, queued ARP copies */
LWIP_MALLOC_MEMPOOL(16384, 320)
/* TCP segments: struct pbuf (24) + headers (56) + MSS 1460 = 1544; frames
 * copied out of a nearly empty mbuf pool (1514 + 24); UDP up to MTU 1500 */
LWIP_MALLOC_MEMPOOL(40960, 1600)
/* jumbo frames and datagrams (port.mtu up to 9000); TCP segments of an
 * MSS of 8960 (a 512 KiB send buffer holds 59) */
LWIP_MALLOC_MEMPOOL(1024, 9216)
LWIP_MALLOC_MEMPOOL_END
