#!/usr/bin/env bash
# dpnetd's exception path: traffic no worker claims goes to a Linux
# interface (the kernel answers: ssh-like services keep working on a port
# given to DPDK), while a worker serves its own port beside it. The kernel
# side lives in a second namespace so that it is a different host from the
# peer.
source "$(dirname "$0")/lib.sh"

NS=dpn-x-$TAG HOSTNS=dpn-xh-$TAG IFC=dx$TAG EXC=dk$TAG PFX=dpnx$TAG
SIP=10.82.0.2 PIP=10.82.0.1
DLOG=/tmp/dpn-x-$TAG.log
track_prefix "$PFX"
new_ns "$NS"
new_ns "$HOSTNS"
peer() { ip netns exec "$NS" $PY "$HERE/peer.py" "$@"; }

track_file "$DLOG"
ip netns exec "$NS" "$B/app/dpnetd" --no-pci -l 0 --file-prefix "$PFX" \
  --log-level=pmd.net.tap:error --vdev="net_tap0,iface=$IFC" \
  -- --ip $SIP/24 --queues 2 --poll hybrid --exception "tap:$EXC" >"$DLOG" 2>&1 &
DPID=$!; track_pid $DPID
wait_log "$DLOG" "dpnetd: serving" 15
check "dpnetd created the exception interface" grep -q "unclaimed traffic goes to Linux interface $EXC" "$DLOG"
# The kernel host: the exception interface, moved to its own namespace, gets the host's address.
ip netns exec "$NS" ip link set "$EXC" netns "$HOSTNS"
ip netns exec "$HOSTNS" ip addr add $SIP/24 dev "$EXC"
ip netns exec "$HOSTNS" ip link set "$EXC" up
ip netns exec "$NS" ip addr add $PIP/24 dev "$IFC"
ip netns exec "$NS" ip link set "$IFC" up

SLOG=/tmp/dpn-xs-$TAG.log; track_file "$SLOG"
ip netns exec "$HOSTNS" "$B/app/kecho" -p 2222 -b $SIP >"$SLOG" 2>&1 &
KPID=$!; track_pid $KPID
WLOG=/tmp/dpn-xw-$TAG.log; track_file "$WLOG"
ip netns exec "$NS" "$B/app/echoserver" --no-pci --lcores=1@1 --proc-type=secondary \
  --file-prefix "$PFX" --log-level=pmd.net.tap:error -- --port 7 --poll hybrid >"$WLOG" 2>&1 &
WPID=$!; track_pid $WPID
wait_log "$WLOG" "listening on port" 15
sleep 0.3

check "ping answered (by the kernel behind dpnetd)" ip netns exec "$NS" ping -c 3 -i 0.2 -W 2 $SIP
check "a Linux TCP server on the exception interface is reachable" \
  ip netns exec "$NS" "$B/app/net_latency" --kernel --server $SIP --port 2222 --count 200 --timeout 10
check "... and a Linux UDP one" \
  ip netns exec "$NS" "$B/app/net_latency" --kernel --udp --server $SIP --port 2222 --count 200 --timeout 10
check "1 MiB through the exception path intact" peer bulk $SIP 2222 $((1 << 20))
check "the worker still serves its own port beside it" peer concurrent $SIP 7 50
check "a port nobody serves is refused by the kernel" peer refused $SIP 9
"$B/app/dpnetctl" --file-prefix "$PFX" stats | grep exception | sed 's/^/# /'
check "dpnetd counted frames both ways" \
  bash -c "$B/app/dpnetctl --file-prefix $PFX stats | grep -qE 'exception path: [1-9][0-9]* frames to the kernel, [1-9][0-9]* from it'"
check "worker stops cleanly" stop_proc $WPID
check "dpnetd stops cleanly" stop_proc $DPID
finish
