#!/usr/bin/env bash
# DPDK telemetry, read with dpdk-telemetry.py itself (Debian's dpdk
# package): dpnetd's /dpnet/workers, bindings, flows, neigh, stats and pools
# show what dpnetctl shows of a run with traffic, and a worker (attached,
# then standalone) answers /dpnet/stats in its own telemetry socket.
source "$(dirname "$0")/lib.sh"

NS=dpn-tm-$TAG IFC=dt$TAG PFX=dpnt$TAG SPFX=dpnts$TAG
SIP=10.87.0.2 PIP=10.87.0.1
DLOG=/tmp/dpn-tm-$TAG.log WLOG=/tmp/dpn-tmw-$TAG.log
track_prefix "$PFX"
track_prefix "$SPFX"
track_file "$DLOG"
track_file "$WLOG"
new_ns "$NS"
nsx() { ip netns exec "$NS" "$@"; }
peer() { ip netns exec "$NS" $PY "$HERE/peer.py" "$@"; }
ctl() { "$B/app/dpnetctl" --file-prefix "$PFX" "$@"; }
# tel PREFIX INSTANCE COMMAND: the command's JSON value
tel() {
  echo "$3" | timeout 10 dpdk-telemetry.py -f "$1" -i "$2" 2>/dev/null |
    $PY -c 'import json,sys
for line in sys.stdin:
    line = line.strip()
    if line.startswith("{"):
        d = json.loads(line)
        if sys.argv[1] in d:
            print(json.dumps(d[sys.argv[1]]))' "${3%%,*}"
}
# js JSON PYTHON-EXPRESSION-OF-v: exit 0 when true
js() { $PY -c 'import json,sys; v = json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2"; }

start_dpnetd "$NS" "$IFC" "$PFX" $SIP/24 $PIP/24 "$DLOG" --queues 2
ip netns exec "$NS" "$B/app/echoserver" --no-pci --proc-type=secondary --file-prefix "$PFX" -l 1 \
  --log-level=pmd.net.tap:error -- --app web --port 7 --poll hybrid >"$WLOG" 2>&1 &
WPID=$!; track_pid $WPID
check "an attached worker listens" wait_log "$WLOG" "listening on port 7" 15
check "20 connections echo" peer concurrent $SIP 7 20
check "dpnetd answers ping (its ARP table learns the peer)" nsx ping -c 1 -W 2 -q $SIP
sleep 0.3 # published every 100 ms

v=$(tel "$PFX" 0 /dpnet/workers)
echo "# /dpnet/workers: $v"
check "/dpnet/workers: slot 1 is the worker (pid $WPID, app web) with its 20 connections" \
  js "$v" "v['1']['pid'] == $WPID and v['1']['app'] == 'web' and v['1']['conns_total'] >= 20 and v['1']['rx_pkts'] > 0"
v=$(tel "$PFX" 0 /dpnet/bindings)
check "/dpnet/bindings: tcp 7 and udp 7 are web's, on queue 1 ($v)" \
  js "$v" "v['tcp_7']['app'] == 'web' and v['udp_7']['queues'] == [1]"
v=$(tel "$PFX" 0 /dpnet/flows)
check "/dpnet/flows: the rules dpnetctl flows prints ($v)" \
  js "$v" "any('tcp dst 7 -> queues 1' in r for r in v) and len(v) == $(ctl flows | grep -c ' -> ')"
v=$(tel "$PFX" 0 /dpnet/neigh)
check "/dpnet/neigh: the peer $PIP and its MAC ($v)" \
  js "$v" "any(e['ip'] == '$PIP' and e['mac'].lower() == '$(nsx cat /sys/class/net/$IFC/address)' for e in v.values())"
drx=$(ctl stats | sed -n 's/^dpnetd: rx \([0-9]*\) frames.*/\1/p')
v=$(tel "$PFX" 0 /dpnet/stats)
check "/dpnet/stats: dpnetd's and the port's counters (rx $drx in dpnetctl) ($v)" \
  js "$v" "v['rx_pkts'] >= $drx and v['port_ipackets'] > 0 and v['ctl_requests'] > 0"
v=$(tel "$PFX" 0 /dpnet/pools)
check "/dpnet/pools: dpnd_rx and the worker's pool ($v)" \
  js "$v" "v['dpnd_rx']['size'] > 0 and v['dpnd_q1']['free'] + v['dpnd_q1']['in_use'] == v['dpnd_q1']['size']"
# DPDK 22.11 opens no telemetry socket in a secondary: an attached worker's
# counters are in dpnetd's /dpnet/workers (above).
check "the attached worker has no socket of its own (22.11: secondaries have none)" \
  test "$(ls /var/run/dpdk/$PFX/ | grep -c '^dpdk_telemetry')" = 1
check "worker stops cleanly" stop_proc $WPID
check "dpnetd stops cleanly" stop_proc $DPID

# A standalone worker registers /dpnet/stats the same way.
SNS=dpn-tms-$TAG SIFC=ds$TAG SLOG=/tmp/dpn-tms-$TAG.log
new_ns "$SNS"
ip netns exec "$SNS" "$B/app/echoserver" --no-pci -l 1 --file-prefix "$SPFX" --in-memory \
  --log-level=pmd.net.tap:error --vdev="net_tap0,iface=$SIFC" -- --ip $SIP/24 --poll hybrid \
  >"$SLOG" 2>&1 &
SP=$!; track_pid $SP; track_file "$SLOG"
check "a standalone echoserver listens" wait_log "$SLOG" "listening on port" 15
ip netns exec "$SNS" ip addr add $PIP/24 dev "$SIFC"
ip netns exec "$SNS" ip link set "$SIFC" up
check "5 connections echo" ip netns exec "$SNS" $PY "$HERE/peer.py" concurrent $SIP 7 5
v=$(tel "$SPFX" 0 /dpnet/stats)
check "its /dpnet/stats shows them ($v)" js "$v" "v['conns_total'] >= 5 and v['tx_pkts'] > 0"
check "standalone echoserver stops cleanly" stop_proc $SP
check "no sanitizer report" bash -c "! grep -qE 'Sanitizer|runtime error' $DLOG $WLOG $SLOG"
finish
