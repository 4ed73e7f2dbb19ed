#!/usr/bin/env bash
# dpnet demo: set up, build, then measure 64 B ping-pong round trips
#   - Linux kernel stack over a veth pair between two namespaces (baseline)
#   - dpnet <-> dpnet over net_memif (busy polling, one pinned core each)
#   - Linux client -> dpnet echoserver over net_tap in a namespace
# and print the percentiles side by side. Cleans up on any exit.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
say() { printf '[demo] %s\n' "$*"; }
COUNT=${DEMO_COUNT:-50000}

bash tools/setup.sh
if [ ! -f build/build.ninja ]; then meson setup build >/dev/null; fi
say "building"; ninja -C build >/dev/null
B=$top/build/app
tag=$$
out=$(mktemp -d /tmp/dpn-demo.XXXXXX)
pids=()
nss=(dpn-demo-a-$tag dpn-demo-b-$tag dpn-demo-t-$tag)
cleanup() {
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for n in "${nss[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$out"
}
trap cleanup EXIT

waitfor() { for _ in $(seq 150); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "timed out: $1"; cat "$1"; return 1; }
lat() { # name, command...: run a net_latency command, keep its JSON line
  local name=$1; shift
  say "measuring: $name"
  "$@" --json --count "$COUNT" --warmup 2000 2>"$out/$name.err" | tail -1 >"$out/$name.json" ||
    { say "$name failed:"; tail -5 "$out/$name.err"; echo '{}' >"$out/$name.json"; }
}

# --- Linux baseline: veth between two namespaces, server core 1, client core 0.
say "Linux kernel stack over veth (namespaces ${nss[0]} <-> ${nss[1]})"
ip netns add "${nss[0]}"; ip netns add "${nss[1]}"
ip link add va$tag type veth peer name vb$tag
ip link set va$tag netns "${nss[0]}"; ip link set vb$tag netns "${nss[1]}"
ip netns exec "${nss[0]}" ip addr add 10.80.0.1/24 dev va$tag
ip netns exec "${nss[1]}" ip addr add 10.80.0.2/24 dev vb$tag
for n in 0 1; do ip netns exec "${nss[$n]}" ip link set lo up; done
ip netns exec "${nss[0]}" ip link set va$tag up; ip netns exec "${nss[1]}" ip link set vb$tag up
ip netns exec "${nss[0]}" taskset -c 1 "$B/kecho" -p 7 >"$out/kecho.log" 2>&1 & pids+=($!)
waitfor "$out/kecho.log" listening
lat linux_tcp ip netns exec "${nss[1]}" taskset -c 0 "$B/net_latency" --kernel --server 10.80.0.1
lat linux_udp ip netns exec "${nss[1]}" taskset -c 0 "$B/net_latency" --kernel --udp --server 10.80.0.1
if command -v sockperf >/dev/null; then
  ip netns exec "${nss[0]}" taskset -c 1 sockperf sr --tcp -i 10.80.0.1 -p 11111 >"$out/sp.log" 2>&1 & pids+=($!)
  sleep 1
  ip netns exec "${nss[1]}" taskset -c 0 sockperf pp --tcp -i 10.80.0.1 -p 11111 -m 64 -t 3 \
    >"$out/sockperf.txt" 2>&1 || true
fi

# --- dpnet <-> dpnet over memif, busy polling, pinned.
say "dpnet over net_memif (echoserver core 1, net_latency core 0, busy polling)"
sock=$out/memif.sock
"$B/echoserver" --no-pci -l 1 --vdev=net_memif0,role=server,socket=$sock -- \
  --ip 10.81.0.1/24 --poll busy >"$out/memif-srv.log" 2>&1 & pids+=($!)
waitfor "$out/memif-srv.log" "listening on port"
mc=(--no-pci -l 0 --vdev=net_memif0,role=client,socket=$sock -- --ip 10.81.0.2/24 --poll busy --server 10.81.0.1)
lat dpnet_memif_tcp "$B/net_latency" "${mc[@]}"
lat dpnet_memif_udp "$B/net_latency" "${mc[@]}" --udp
kill -INT "${pids[-1]}"; sleep 0.5

# --- Linux client -> dpnet echoserver on net_tap in a namespace.
say "Linux client -> dpnet echoserver over net_tap (namespace ${nss[2]})"
ip netns add "${nss[2]}"; ip netns exec "${nss[2]}" ip link set lo up
ip netns exec "${nss[2]}" "$B/echoserver" --no-pci -l 1 --log-level=pmd.net.tap:error \
  --vdev=net_tap0,iface=dtd$tag -- --ip 10.82.0.2/24 --poll busy >"$out/tap-srv.log" 2>&1 & pids+=($!)
waitfor "$out/tap-srv.log" "listening on port"
ip netns exec "${nss[2]}" ip addr add 10.82.0.1/24 dev dtd$tag
ip netns exec "${nss[2]}" ip link set dtd$tag up
lat tap_tcp ip netns exec "${nss[2]}" taskset -c 0 "$B/net_latency" --kernel --server 10.82.0.2
lat tap_udp ip netns exec "${nss[2]}" taskset -c 0 "$B/net_latency" --kernel --udp --server 10.82.0.2

/usr/bin/python3 - "$out" <<'PY'
import json, os, re, sys
d = sys.argv[1]
def load(n):
    try:
        return json.load(open(os.path.join(d, n + ".json")))
    except Exception:
        return {}
rows = [("TCP 64 B  Linux kernel, veth", "linux_tcp"),
        ("TCP 64 B  dpnet <-> dpnet, memif", "dpnet_memif_tcp"),
        ("TCP 64 B  Linux client -> dpnet, tap", "tap_tcp"),
        ("UDP 64 B  Linux kernel, veth", "linux_udp"),
        ("UDP 64 B  dpnet <-> dpnet, memif", "dpnet_memif_udp"),
        ("UDP 64 B  Linux client -> dpnet, tap", "tap_udp")]
print()
print("Round-trip time, microseconds (net_latency, closed loop, one connection)")
print("%-38s %9s %9s %9s %9s %11s" % ("case", "p50", "p99", "p99.9", "max", "msgs/s"))
res = {}
for label, key in rows:
    r = load(key); t = r.get("rtt_us")
    res[key] = r
    if not t:
        print("%-38s %9s" % (label, "failed")); continue
    print("%-38s %9.2f %9.2f %9.2f %9.2f %11.0f" % (label, t["p50"], t["p99"], t["p99.9"], t["max"], r["msgs_per_s"]))
for proto in ("tcp", "udp"):
    a, b = res.get("dpnet_memif_" + proto, {}).get("rtt_us"), res.get("linux_" + proto, {}).get("rtt_us")
    if a and b:
        print("%s p50: dpnet/Linux = %.3f (%.0fx faster)" % (proto.upper(), a["p50"] / b["p50"], b["p50"] / a["p50"]))
try:
    sp = open(os.path.join(d, "sockperf.txt")).read()
    m = re.search(r"percentile 50.000 =\s*([\d.]+)", sp)
    if m:
        print("sockperf TCP 64 B over veth: p50 %.2f us one-way = %.2f us round trip (cross-check of the Linux row)" % (float(m.group(1)), 2 * float(m.group(1))))
except OSError:
    pass
PY
say "done; cleaning up"
