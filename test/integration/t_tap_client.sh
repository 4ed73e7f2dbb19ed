#!/usr/bin/env bash
# dpnet as the client: net_latency on net_tap connects out (lwIP resolves the
# Linux peer with ARP) to a Linux echo server in the namespace. Also checks
# poll modes: hybrid idles without burning its core, interrupt mode works on
# tap and is refused with a clear error on memif (no RX interrupts).
source "$(dirname "$0")/lib.sh"

NS=dpn-cli-$TAG
new_ns "$NS"
nsx() { ip netns exec "$NS" "$@"; }
KLOG=/tmp/dpn-kecho-$TAG.log; track_file "$KLOG"
# net_tap creates the kernel interface at EAL init; lwIP's first ARP request
# may go out before the kernel side has its address: lwIP repeats it every
# second while the SYN waits in the ARP queue.
client() { # log, extra args
  local log=$1; shift
  ip netns exec "$NS" "$B/app/net_latency" --no-pci -l 1 --log-level=pmd.net.tap:error \
    --vdev=net_tap0,iface=dc$TAG -- --ip 10.76.0.2/24 --poll hybrid --server 10.76.0.1 \
    --timeout 30 "$@" >"$log" 2>&1 &
  CPID=$!; track_pid $CPID
  for _ in $(seq 100); do nsx ip link show dc$TAG >/dev/null 2>&1 && break; sleep 0.1; done
  nsx ip addr add 10.76.0.1/24 dev dc$TAG 2>/dev/null || true
  nsx ip link set dc$TAG up
}
# The Linux server listens on every address of the namespace, before any
# tap exists.
ip netns exec "$NS" "$B/app/kecho" -p 7 >"$KLOG" 2>&1 &
track_pid $!
wait_log "$KLOG" listening 5
LOG=/tmp/dpn-cli-$TAG.log; track_file "$LOG"
client "$LOG" --count 2000 --warmup 100
check "dpnet TCP client reaches a Linux server and measures" wait "$CPID"
check "RTT percentiles printed" grep -q "rtt_us min" "$LOG"

LOG2=/tmp/dpn-cli2-$TAG.log; track_file "$LOG2"
client "$LOG2" --udp --count 2000 --warmup 100
check "dpnet UDP client against a Linux server" wait "$CPID"

# Interrupt polling on tap (RX interrupts exist): same job.
LOG3=/tmp/dpn-cli3-$TAG.log; track_file "$LOG3"
client "$LOG3" --count 500 --warmup 10 --poll interrupt
check "interrupt poll mode works on net_tap" wait "$CPID"

# An idle hybrid worker sleeps: CPU time over 2 s of idleness stays small.
ELOG=/tmp/dpn-idle-$TAG.log; track_file "$ELOG"
ip netns exec "$NS" "$B/app/echoserver" --no-pci -l 1 --vdev=net_tap1,iface=di$TAG -- --ip 10.75.0.2/24 \
  --poll hybrid >"$ELOG" 2>&1 &
EPID=$!; track_pid $EPID
wait_log "$ELOG" "listening on port" 15
ticks() { awk '{print $14 + $15}' /proc/$EPID/stat; }
t0=$(ticks); sleep 2; t1=$(ticks)
hz=$(getconf CLK_TCK)
echo "# idle hybrid echoserver used $(( (t1 - t0) * 1000 / hz )) ms CPU in 2000 ms"
check "idle hybrid worker uses < 10% of a core" test $(( (t1 - t0) * 1000 / hz )) -lt 200
check "idle worker stops cleanly" stop_proc $EPID

# memif has no RX interrupts: interrupt mode is refused, clearly.
MLOG=/tmp/dpn-memif-int-$TAG.log; track_file "$MLOG"; track_file /tmp/dpn-int-$TAG.sock
rc=0
timeout 20 "$B/app/echoserver" --no-pci -l 1 --vdev=net_memif0,role=server,socket=/tmp/dpn-int-$TAG.sock \
  -- --ip 10.74.0.1/24 --poll interrupt >"$MLOG" 2>&1 || rc=$?
check "interrupt mode on memif exits non-zero" test "$rc" -ne 0
check "... with a message naming the cause" grep -q "no RX interrupts; use hybrid" "$MLOG"
finish
