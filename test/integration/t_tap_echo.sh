#!/usr/bin/env bash
# echoserver on net_tap inside a namespace; the namespace's Linux stack is the
# peer: ARP and ping, TCP round trips, bulk echo by hash, 1000 concurrent
# connections, half-close, resets, UDP 1..1472 B, answers with the PMD's RX
# signal gone (a lost signal must not strand a frame), a 16 MiB transfer
# through 2% random loss (iptables statistic; no netem on these kernels).
source "$(dirname "$0")/lib.sh"

NS=dpn-tap-$TAG IFC=dt$TAG
SIP=10.77.0.2 PIP=10.77.0.1
LOG=/tmp/dpn-tap-$TAG.log
new_ns "$NS"
start_tap_server "$NS" "$IFC" $SIP/24 $PIP/24 "$LOG" --port 7 -v
peer() { ip netns exec "$NS" $PY "$HERE/peer.py" "$@"; }
nsx() { ip netns exec "$NS" "$@"; }

check "ping (ARP + ICMP echo)" nsx ping -c 3 -i 0.2 -W 2 $SIP
dpn_mac=$(grep -o 'mac [0-9A-F:]*' "$LOG" | awk '{print tolower($2)}')
check "ARP entry is the dpnet port's MAC" \
  bash -c "ip netns exec $NS ip neigh show $SIP | grep -q 'lladdr $dpn_mac'"
check "TCP 64 B round trips (net_latency --kernel)" \
  nsx "$B/app/net_latency" --kernel --server $SIP --count 2000 --warmup 100 --timeout 30
check "TCP 8 MiB random payload echoed, compared by hash" peer bulk $SIP 7 $((8 << 20))
check "1000 concurrent connections echo" peer concurrent $SIP 7 1000
check "half-close: remaining data echoed, then FIN" peer halfclose $SIP 7
check "client resets absorbed" peer rst $SIP 7
check "closed TCP port refused with RST" peer refused $SIP 9
check "UDP echo 1..1472 B" peer udp $SIP 7 1472
# The PMD reads only after its RX signal; a frame whose signal never came
# is still read once the worker sleeps on the readable queue.
check "TCP and UDP answered with net_tap's RX signal gone" peer nosignal $SIP 7 "$SERVER_PID"

# 2% loss in both directions on the Linux side.
nsx iptables -A INPUT -i "$IFC" -m statistic --mode random --probability 0.02 -j DROP
nsx iptables -A OUTPUT -o "$IFC" -m statistic --mode random --probability 0.02 -j DROP
check "16 MiB through 2% loss arrives intact" peer bulk $SIP 7 $((16 << 20)) 300
nsx iptables -F

HLOG=/tmp/dpn-hold-$TAG.log; track_file "$HLOG"
ip netns exec "$NS" $PY "$HERE/peer.py" hold $SIP 7 >"$HLOG" 2>&1 &
HOLD=$!; track_pid $HOLD
wait_log "$HLOG" "holding" 10 || true
check "clean shutdown on SIGINT" stop_proc "$SERVER_PID"
check "shutdown closed the connection still open" wait $HOLD
check "exit counters printed" grep -q "connections accepted" "$LOG"
accepted=$(grep -o 'connections accepted [0-9]*' "$LOG" | awk '{print $3}')
check "server counted >= 1000 connections ($accepted)" test "${accepted:-0}" -ge 1000
check "no checksum drops on a clean link" grep -q "rx_dropped 0," "$LOG"
finish
