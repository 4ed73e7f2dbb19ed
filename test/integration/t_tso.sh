#!/usr/bin/env bash
# TCP segmentation offload on net_tap (port.tso 2: DPDK 22.11's net_tap
# takes TSO frames only with segments 14 bytes under the MSS, port.c). The
# echoserver's echo (zero-copy, runs of segments) leaves as TSO frames that
# net_tap cuts with DPDK's GSO; the Linux peer checks every byte by hash,
# clean and through 2% loss, and counts the segments it received. By
# default net_tap gets no TSO and nothing is joined.
source "$(dirname "$0")/lib.sh"

NS=dpn-tso-$TAG IFC=dz$TAG
SIP=10.78.0.2 PIP=10.78.0.1
new_ns "$NS"
peer() { ip netns exec "$NS" $PY "$HERE/peer.py" "$@"; }
nsx() { ip netns exec "$NS" "$@"; }
field() { sed -n "s/^dpnet stats: .*tso \([0-9]*\) frames \([0-9]*\) segments.*/\\$2/p" "$1"; }
rx_pkts() { nsx cat /sys/class/net/$IFC/statistics/rx_packets; }

LOG0=/tmp/dpn-tso0-$TAG.log
start_tap_server "$NS" "$IFC" $SIP/24 $PIP/24 "$LOG0" --port 7
check "default on net_tap: the start-up line says tso no" grep -q "tx chains yes (zero-copy send), tso no" "$LOG0"
check "... 8 MiB echoed intact" peer bulk $SIP 7 $((8 << 20))
check "... clean shutdown" stop_proc "$SERVER_PID"
check "... no frame joined" test "$(field "$LOG0" 1)" = 0
nsx ip link del "$IFC" 2>/dev/null || true

LOG=/tmp/dpn-tso-$TAG.log
start_tap_server "$NS" "$IFC" $SIP/24 $PIP/24 "$LOG" --port 7 --tso 2
check "--tso 2: the start-up line says tso yes" grep -q "tx chains yes (zero-copy send), tso yes" "$LOG"
r0=$(rx_pkts)
check "32 MiB echoed, compared by hash" peer bulk $SIP 7 $((32 << 20))
r1=$(rx_pkts)
nsx iptables -A INPUT -i "$IFC" -m statistic --mode random --probability 0.02 -j DROP
nsx iptables -A OUTPUT -o "$IFC" -m statistic --mode random --probability 0.02 -j DROP
check "8 MiB through 2% loss (retransmissions joined too) intact" peer bulk $SIP 7 $((8 << 20)) 300
nsx iptables -F
check "1000 concurrent connections still echo" peer concurrent $SIP 7 1000
check "clean shutdown" stop_proc "$SERVER_PID"
frames=$(field "$LOG" 1) segs=$(field "$LOG" 2)
echo "# tso: ${frames:-?} frames carried ${segs:-?} segments; the peer received $((r1 - r0)) frames for 32 MiB"
check "segments were joined into TSO frames (${frames:-?} frames, ${segs:-?} segments)" \
  bash -c "[ ${frames:-0} -gt 0 ] && [ ${segs:-0} -ge $((2 * ${frames:-1})) ]"
# 32 MiB is at least 23205 segments of 1446 bytes (the MSS with TSO on
# net_tap): the kernel saw each one, not the joined frames.
check "the peer received segments, not joined frames ($((r1 - r0)) >= 23205)" test $((r1 - r0)) -ge 23205
check "mbufs back after the run" mbufs_back "$LOG"
check "no checksum drops" grep -q "rx_dropped 0," "$LOG"
finish
