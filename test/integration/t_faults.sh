#!/usr/bin/env bash
# Network faults: echoserver on net_tap with dpnet's own fault-injection
# layer (seeded: drop, reorder, duplicate, corrupt, delay with jitter, a link
# that goes down for two seconds) and iptables loss on the Linux side. Each
# profile moves FAULT_MB MiB each way (default 64), compared by SHA-256:
# nothing lost or altered, or a clear error, never a hang. The 5% loss
# profile (FAULT_LOSS_MB, default 16) is the slow one: lwIP recovers from
# several losses in a window by timeout (no SACK on its send side), and the
# echo's receive window closes behind it (64 MiB took 230 s at 2-3 Mbit/s).
# The echo is sent zero-copy (mbuf chains): retransmissions, duplicates and
# corrupted copies must leave the data that lwIP keeps intact. Once, in a
# clean-clone CI run with 64 MiB, the Linux sender's retransmission backed
# off to 120 s while dpnet waited at its rcv_nxt for 12 minutes, and the
# 900 s limit per test failed it (not seen in 17 runs since; open): a
# transfer that makes no progress either way for STALL_S seconds is ended
# there, with both sides' state printed (stall_watch).
source "$(dirname "$0")/lib.sh"

MB=${FAULT_MB:-64}
LOSS_MB=${FAULT_LOSS_MB:-16}
NS=dpn-flt-$TAG IFC=df$TAG
SIP=10.83.0.2 PIP=10.83.0.1
new_ns "$NS"
peer() { ip netns exec "$NS" $PY "$HERE/peer.py" "$@"; }
STALL_S=${FAULT_STALL_S:-120}

# stall_watch BULK_PID SERVER_PID PREFIX FILE: every 5 s, the bytes the
# Linux side has had acknowledged and received; when neither moved for
# STALL_S seconds (5% loss needs 6 losses of one segment in a row for
# 25 s), the state of both sides goes to FILE and the transfer is ended.
stall_watch() {
  local bp=$1 sp=$2 pfx=$3 f=$4 last="" now still=0 q
  set +e # its own subshell: a query that fails must not end the watch
  while kill -0 "$bp" 2>/dev/null; do
    sleep 5
    now=$(ip netns exec "$NS" ss -tni '( dport = :7 )' 2>/dev/null |
      grep -o 'bytes_\(acked\|received\):[0-9]*' | tr '\n' ' ') || true
    if [ -n "$now" ] && [ "$now" = "$last" ]; then still=$((still + 5)); else still=0; last=$now; fi
    [ "$still" -ge "$STALL_S" ] || continue
    {
      echo "no progress for ${still} s ($(date +%T)): $now"
      ip netns exec "$NS" ss -tni '( dport = :7 )'
      ip netns exec "$NS" nstat -az 2>/dev/null | awk '$2 != 0 && /Tcp|Ip(In|Out)/'
      ip netns exec "$NS" ip -s link show "$IFC"
      ip netns exec "$NS" ip -s neigh show dev "$IFC"
      ps -L -o tid,stat,wchan:32,comm -p "$sp"
      for q in /dpnet/stats /ethdev/stats,0; do
        echo "$q" | timeout 10 dpdk-telemetry.py -f "$pfx" 2>&1
      done
      echo "frames on the tap for 3 s:"
      timeout 3 ip netns exec "$NS" tcpdump -ni "$IFC" -c 40 2>&1 | grep -v '^tcpdump\|^listening'
      echo "the transfer is ended here"
    } >"$f" 2>&1
    kill "$bp" 2>/dev/null
    return
  done
}

# profile NAME SPEC [iptables loss probability]
profile() {
  local name=$1 spec=$2 loss=${3:-} log=/tmp/dpn-flt-$TAG-$1.log t0 t1 mb=$MB
  [ -z "$loss" ] || mb=$LOSS_MB
  [ -z "${FAULT_ONLY:-}" ] || [ "$FAULT_ONLY" = "$name" ] || return 0
  track_file "$log"
  local pfx=dpn-flt-$TAG-$name stall=/tmp/dpn-flt-$TAG-$name.stall
  track_prefix "$pfx"; track_file "$stall"
  ip netns exec "$NS" "$B/app/echoserver" --no-pci -l 1 --file-prefix "$pfx" \
    --log-level=pmd.net.tap:error --vdev="net_tap0,iface=$IFC" -- \
    --ip $SIP/24 --poll hybrid --port 7 --fault "$spec" >"$log" 2>&1 &
  local pid=$!; track_pid $pid
  wait_log "$log" "listening on port" 15 || { not_ok "$name: server start"; return; }
  ip netns exec "$NS" ip addr add $PIP/24 dev "$IFC"
  ip netns exec "$NS" ip link set "$IFC" up
  if [ -n "$loss" ]; then
    ip netns exec "$NS" iptables -A INPUT -i "$IFC" -m statistic --mode random --probability "$loss" -j DROP
    ip netns exec "$NS" iptables -A OUTPUT -o "$IFC" -m statistic --mode random --probability "$loss" -j DROP
  fi
  t0=$(date +%s)
  ip netns exec "$NS" $PY "$HERE/peer.py" bulk $SIP 7 $((mb << 20)) 700 &
  local bp=$!; track_pid $bp
  stall_watch $bp $pid "$pfx" "$stall" &
  local wp=$!
  check "$name: $mb MiB each way intact ($spec${loss:+, iptables loss $loss})" wait $bp
  t1=$(date +%s)
  kill $wp 2>/dev/null || true
  wait $wp 2>/dev/null || true
  [ ! -s "$stall" ] || sed 's/^/# stall: /' "$stall"
  ip netns exec "$NS" iptables -F
  check "$name: the server still echoes" peer concurrent $SIP 7 20
  check "$name: clean shutdown" stop_proc $pid
  grep -h "^dpnet faults:" "$log" | sed "s/^/# $name ($((t1 - t0)) s): /"
  check "$name: faults were injected" grep -qE "^dpnet faults: .*[1-9]" "$log"
  check "$name: no mbuf leaked" mbufs_back "$log"
  # The echo goes back with dpn_send_buf: net_tap takes mbuf chains, so
  # the payload (retransmissions too) goes out in place, never copied.
  grep -ho "zero-copy tx [0-9]* pieces [0-9]* bytes" "$log" | sed "s/^/# $name: /"
  check "$name: echoed data sent in place (zero-copy)" grep -qE "zero-copy tx [1-9][0-9]* pieces" "$log"
}

profile loss "drop=0.025,seed=11" 0.025
profile reorder "reorder=0.05,seed=12"
profile duplicate "dup=0.05,seed=13"
profile corrupt "corrupt=0.01,seed=14"
profile delay "delay=300:250,seed=15"
profile linkdown "down=200:2000,seed=16"
finish
