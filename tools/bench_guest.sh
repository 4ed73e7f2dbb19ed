#!/usr/bin/env bash
# Run inside the Debian-kernel guest by tools/bench.sh (case guest, through
# tools/guest.sh): a Linux client -> echoserver attached to dpnetd on
# net_tap, with hardware rules (rte_flow on TC flower) and with software
# steering, one after the other, REPS times each. Writes
# $DPNET_BENCH_OUT/guest_{hw,sw}_{tcp,udp}.rN.out (net_latency's JSON).
# Figures under software emulation: compare the two modes, nothing else.
set -uo pipefail
B=${DPNET_BUILD:?}
OUT=${DPNET_BENCH_OUT:?}
REPS=${DPNET_BENCH_REPS:-3}
COUNT=${DPNET_BENCH_COUNT:-2000}
NS=dpn-bg$$ IFC=bg$$ SIP=10.84.0.2 PIP=10.84.0.1
ip netns add $NS && ip netns exec $NS ip link set lo up
trap 'ip netns del $NS 2>/dev/null' EXIT
waitfor() { for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
for mode in hardware software; do
  id=guest_hw; [ $mode = hardware ] || id=guest_sw
  PFX=dpnbg$mode
  ip netns exec $NS "$B/app/dpnetd" --no-pci -l 0 --file-prefix $PFX --log-level=pmd.net.tap:error \
    --vdev=net_tap0,iface=$IFC -- --ip $SIP/24 --queues 2 --poll hybrid --steering $mode \
    >"$OUT/dpnetd-$mode.log" 2>&1 &
  D=$!
  if waitfor "$OUT/dpnetd-$mode.log" "dpnetd: serving"; then
    ip netns exec $NS ip addr add $PIP/24 dev $IFC
    ip netns exec $NS ip link set $IFC up
    ip netns exec $NS "$B/app/echoserver" --no-pci --lcores=1@1 --proc-type=secondary \
      --file-prefix $PFX --log-level=pmd.net.tap:error -- --app bench --port 7 --poll hybrid \
      >"$OUT/worker-$mode.log" 2>&1 &
    W=$!
    if waitfor "$OUT/worker-$mode.log" "listening on port"; then
      for r in $(seq "$REPS"); do
        for proto in tcp udp; do
          ip netns exec $NS taskset -c 0 "$B/app/net_latency" --kernel --server $SIP --json \
            --timeout 100 $([ $proto = udp ] && echo --udp) --count "$COUNT" --warmup 200 \
            >"$OUT/${id}_$proto.r$r.out" 2>"$OUT/${id}_$proto.r$r.err" ||
            echo "guest bench: ${id}_$proto run $r failed"
        done
      done
    fi
    kill -INT $W; wait $W
  fi
  kill -INT $D; wait $D
  rm -rf /dev/hugepages/${PFX}map_* /var/run/dpdk/$PFX
done
