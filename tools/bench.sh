#!/usr/bin/env bash
# dpnet vs Linux, every case in one run on this machine with the same pinning
# (client side on core 0, server side on core 1; dpnet busy-polls, Linux
# processes are pinned with taskset):
#   1. TCP 64 B ping-pong RTT: dpnet <-memif-> dpnet vs the kernel over veth
#      (net_latency --kernel against kecho, and sockperf; sockperf prints
#      one-way = RTT/2, shown here as RTT)
#   2. the same for UDP, plus the floor: dpnet against dpdk-testpmd 5tswap
#   3. TCP RTT for 64..16384 B messages
#   4. requests/s: 64 connections x 8 requests in flight, 64 B echo
#   4b. requests/s with 64 and with 8192 connections x 8 in flight, one after
#      the other in each run: per-segment cost must not grow with connections
#   5. new connections/s: connect, 64 B echo, close; 16 in parallel
#   6. one bulk TCP stream through the echo server (echoed Gbit/s)
#   7. RTT through dpnetd (attached echoserver) vs standalone, Linux client
#      over net_tap; and, if it comes up, two dpnetd over memif
#   8. httpd (dpnet, net_tap) vs nginx (veth) under wrk, 1 and 64 connections
#   9. unmodified servers on the sockets layer (libdpnet-posix.so): redis-server
#      (redis-benchmark GET/SET, -P 1 and -P 16) and nginx (wrk -c1/-c64) on
#      dpnet over net_tap vs the same binaries on Linux over veth; and what
#      the layer costs: kecho through it vs echoserver, 64 B over memif
# and, before each case 1 run, the machine's own noise: spin_noise on both
# cores at once (how often a busy poller loses the core, and for how long).
# Each case runs REPS times; the tables show the median run. Results:
# bench/results/ (full run) or bench/results/quick/ (--quick): bench.md,
# bench.json, PNG plots, machine.txt.
#
#   tools/bench.sh [--quick] [--cases LIST] [--wait-near S]   DPNET_BUILD=DIR (default build/), BENCH_OUT=DIR
# --cases: a comma-separated subset of lat (1, 2 and the noise probe), floor,
# size, tput, conns (4b), work (4c), cps, bulk, tap, workers (7d), memifd (7b), guest (7c), http,
# servers (9), capture (what packet capture costs a worker per frame);
# default all. A
# subset reports to bench/tmp/cases-LIST/ (not committed) unless BENCH_OUT.
# --wait-near S: before each run of the cases with targets (lat, floor,
# conns, bulk, HTTP over memif), wait up to S seconds for the host to place
# the two cores near each other (a cache line's round trip between them under
# NEAR_NS, default 200 ns; this VM moves between about 100 and 450 ns within
# minutes). bench.md lists the round trip before every case and such run,
# and each wait.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { say "error: $*" >&2; exit 1; }

QUICK=0 WAIT_NEAR=0 NEAR_NS=${NEAR_NS:-200}
ALL_CASES=lat,floor,size,tput,conns,work,cps,bulk,tap,workers,memifd,guest,http,servers,capture
CASES=$ALL_CASES
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --cases)
      [ $# -ge 2 ] || die "--cases needs a list (of $ALL_CASES)"
      CASES=$2; shift
      for c in ${CASES//,/ }; do
        [[ ",$ALL_CASES," == *",$c,"* ]] || die "--cases: unknown case '$c' (cases: $ALL_CASES)"
      done ;;
    --wait-near)
      [ $# -ge 2 ] && [[ "$2" =~ ^[0-9]+$ ]] || die "--wait-near needs a number of seconds"
      WAIT_NEAR=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (tools/bench.sh [--quick] [--cases LIST] [--wait-near S])" ;;
  esac
  shift
done
want() { [[ ",$CASES," == *",$1,"* ]]; }
[ "$(id -u)" -eq 0 ] || die "run as root (namespaces, hugepages)"

B=${DPNET_BUILD:-$top/build}
A=$B/app
for p in echoserver net_latency kecho dpnetd httpd spin_noise; do
  [ -x "$A/$p" ] || die "$A/$p missing: build first (tools/setup.sh; meson setup build && ninja -C build) or set DPNET_BUILD"
done
PY=/usr/bin/python3
need() { # command debian-package
  command -v "$1" >/dev/null && return 0
  say "installing $2 (for $1)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null 2>&1 || true
  command -v "$1" >/dev/null || { say "warning: $1 unavailable: its cases are skipped"; return 1; }
}
HAVE_TESTPMD=1 HAVE_SOCKPERF=1 HAVE_WRK=1 HAVE_NGINX=1
need dpdk-testpmd dpdk-dev || HAVE_TESTPMD=0
need sockperf sockperf || HAVE_SOCKPERF=0
need wrk wrk || HAVE_WRK=0
need nginx nginx-light || HAVE_NGINX=0
$PY -c 'import matplotlib' 2>/dev/null || need /usr/bin/true python3-matplotlib || true
grep -q hugetlbfs /proc/mounts || die "no hugetlbfs mounted: run tools/setup.sh"

if [ "$QUICK" = 1 ]; then
  REPS=1 LAT=(--count 3000 --warmup 500) SP_T=1 TP_RUN=(--count 100000) TP_WARM=5000
  CR=(--count 2000 --warmup 200) BULK=$((32 << 20)) WRK_D=1
  NOISE_S=0.5
  RESULTS=$top/bench/results/quick
else
  REPS=3 LAT=(--duration 2 --warmup 2000) SP_T=2 TP_RUN=(--duration 2) TP_WARM=20000
  CR=(--duration 2 --warmup 1000) BULK=$((512 << 20)) WRK_D=3
  NOISE_S=2
  RESULTS=$top/bench/results
fi
[ "$CASES" = "$ALL_CASES" ] || RESULTS=$top/bench/tmp/cases-${CASES//,/-}$( [ "$QUICK" = 0 ] || echo -quick)
RESULTS=${BENCH_OUT:-$RESULTS}
TP=("${TP_RUN[@]}" --warmup $TP_WARM)
SIZES=(64 512 1460 4096 16384)

tag=$$
out=$(mktemp -d /tmp/dpn-bench.XXXXXX)
chmod 755 "$out"
mkdir -p "$out/raw"
MAN=$out/manifest.tsv
: >"$MAN"
pids=()
NS_S=dpnb-s-$tag NS_C=dpnb-c-$tag NS_T=dpnb-t-$tag
nss=("$NS_S" "$NS_C" "$NS_T")
prefixes=()
cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  exec 7>&- 2>/dev/null || true
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  for n in "${nss[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  for x in "${prefixes[@]}"; do rm -rf /dev/hugepages/"$x"map_* /var/run/dpdk/"$x"; done
  rm -rf "$out"
  [ "$rc" -eq 0 ] || say "stopped (exit $rc); cleaned up"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Start a background process (kept for cleanup); prints nothing, sets LAST.
bg() { "$@" & LAST=$!; pids+=("$LAST"); }
# Stop one of ours: SIGINT, wait, SIGKILL.
stop() {
  local p=$1
  kill -INT "$p" 2>/dev/null || return 0
  for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}
waitfor() { # file pattern [seconds]
  for _ in $(seq $((${3:-15} * 10))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  say "timed out waiting for '$2' in $1:"; tail -5 "$1" | sed 's/^/    /'; return 1
}
# record ID KIND REP FILE SAMPLES LABEL: one measurement for the report.
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$MAN"; }
summ() { # kind file: one-line summary of a result
  $PY - "$1" "$2" <<'PY' 2>/dev/null || echo "failed (see log)"
import json, re, sys
kind, f = sys.argv[1], sys.argv[2]
txt = open(f).read()
if kind == "sockperf":
    p = {q: 2 * float(v) for q, v in re.findall(r"percentile (\d+\.\d+) =\s*([\d.]+)", txt)}
    print("RTT p50 %.2f p99 %.2f p99.9 %.2f us (sockperf one-way x2)" % (p["50.000"], p["99.000"], p["99.900"]))
else:
    r = json.loads([l for l in txt.splitlines() if l.startswith("{")][-1])
    if kind == "bulk":
        print("%.2f Gbit/s echoed" % r["bulk"]["gbit_per_s"])
    elif kind == "wrk":
        print("%.0f req/s, p50 %.1f p99 %.1f p99.9 %.1f us, errors %d" % (r["rps"], r["p50"], r["p99"], r["p99.9"], r["errors"]))
    else:
        t = r["rtt_us"]
        print("p50 %.2f p99 %.2f p99.9 %.2f us, %.0f/s" % (t["p50"], t["p99"], t["p99.9"], r["msgs_per_s"]))
PY
}
# measure ID KIND REP LABEL SAMPLES|- CMD...: run one measurement (timeout 120 s).
measure() {
  local id=$1 kind=$2 rep=$3 label=$4 samples=$5; shift 5
  local f=$out/raw/$id.r$rep.out
  if timeout -s INT -k 5 120 "$@" >"$f" 2>"$f.err"; then
    record "$id" "$kind" "$rep" "$f" "$samples" "$label"
    say "  $id run $rep: $(summ "$kind" "$f")"
    return 0
  fi
  say "  $id run $rep: FAILED:"; grep -v '^dpnet: port\|^EAL\|^TELEMETRY\|mp action' "$f.err" | tail -3 | sed 's/^/    /'
  return 1
}

say "output: $RESULTS; build: $B; $( [ "$QUICK" = 1 ] && echo "quick (1 run, small counts)" || echo "full ($REPS runs per case)"); cases: $CASES"
say "pinning: client side on core 0, server side on core 1 (dpnet -l, Linux taskset -c); dpnet polls busy"

# ---- machine description and a noise check --------------------------------
{
  echo "# date"; date -u +%Y-%m-%dT%H:%M:%SZ
  echo "# uname"; uname -a
  echo "# lscpu"; lscpu
  echo "# DPDK"; pkg-config --modversion libdpdk 2>/dev/null || true
  dpkg-query -W -f='${Package} ${Version}\n' dpdk libdpdk-dev dpdk-dev sockperf wrk nginx-light 2>/dev/null || true
  echo "# compiler"; cc --version | head -1
  echo "# build"; echo "$B"
  echo "# other processes using CPU when the run started (they disturb busy polling)"
  top -b -n 2 -d 0.5 -w 200 | awk '/^top -/{n++} n==2 && $1 ~ /^[0-9]+$/ && $9+0 >= 5 {print}' || true
} >"$out/machine.txt"
busy=$(top -b -n 2 -d 0.5 -w 200 | awk '/^top -/{n++} n==2 && $1 ~ /^[0-9]+$/ && $9+0 >= 20 {printf "%s(%s%%) ", $12, $9}')
[ -z "$busy" ] || say "WARNING: other processes are using CPU and will disturb the figures: $busy"

# ---- network set-up: veth between two namespaces; a third for net_tap -----
SIP=10.95.0.1 CIP=10.95.0.2 TIP=10.96.0.2 TPEER=10.96.0.1
say "set-up: veth $NS_S ($SIP) <-> $NS_C ($CIP); tap namespace $NS_T"
for n in "${nss[@]}"; do ip netns add "$n"; ip netns exec "$n" ip link set lo up; done
ip link add bs$tag type veth peer name bc$tag
ip link set bs$tag netns "$NS_S"; ip link set bc$tag netns "$NS_C"
ip netns exec "$NS_S" ip addr add $SIP/24 dev bs$tag
ip netns exec "$NS_C" ip addr add $CIP/24 dev bc$tag
ip netns exec "$NS_S" ip link set bs$tag up; ip netns exec "$NS_C" ip link set bc$tag up
# Client-side TIME_WAIT for the connection-rate case (per namespace sysctls).
ip netns exec "$NS_C" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65535"
ip netns exec "$NS_T" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65535"
# As arrays, not functions: timeout and bg need a real command (ip netns exec
# and taskset exec the program, so a recorded PID is the program's own).
nsS=(ip netns exec "$NS_S") nsC=(ip netns exec "$NS_C") nsT=(ip netns exec "$NS_T")

bg "${nsS[@]}" taskset -c 1 "$A/kecho" -p 7 -b $SIP >"$out/kecho.log" 2>&1; KECHO=$LAST
waitfor "$out/kecho.log" listening
if [ $HAVE_SOCKPERF = 1 ]; then
  bg "${nsS[@]}" taskset -c 1 sockperf sr --tcp -i $SIP -p 11111 >"$out/sp-tcp.log" 2>&1
  bg "${nsS[@]}" taskset -c 1 sockperf sr -i $SIP -p 11112 >"$out/sp-udp.log" 2>&1
fi
KNL=("${nsC[@]}" taskset -c 0 "$A/net_latency" --kernel --server $SIP --json --timeout 100)

# dpnet echoserver over memif (server side, core 1), restarted if it died.
MSOCK=$out/memif.sock MLOG=$out/memif-srv.log MPID=0
memif_up() {
  if [ "$MPID" != 0 ] && kill -0 "$MPID" 2>/dev/null; then return 0; fi
  [ "$MPID" = 0 ] || say "  (memif echoserver exited: restarting it)"
  rm -f "$MSOCK"
  bg "$A/echoserver" --no-pci -l 1 --vdev=net_memif0,role=server,socket=$MSOCK -- \
    --ip 10.97.0.1/24 --poll busy >"$MLOG" 2>&1
  MPID=$LAST
  waitfor "$MLOG" "listening on port"
}
memif_down() { [ "$MPID" = 0 ] || stop "$MPID"; MPID=0; }
DNL=("$A/net_latency" --no-pci -l 0 --vdev=net_memif0,role=client,socket=$MSOCK -- \
  --ip 10.97.0.2/24 --poll busy --server 10.97.0.1 --json --timeout 100)
# dpnet measurement over memif: the server must be up; one retry after a crash.
dmeasure() {
  local id=$1 kind=$2 rep=$3 label=$4 samples=$5; shift 5
  memif_up
  measure "$id" "$kind" "$rep" "$label" "$samples" "${DNL[@]}" "$@" && return 0
  memif_down; memif_up
  measure "$id" "$kind" "$rep" "$label" "$samples" "${DNL[@]}" "$@" || true
}
kmeasure() { measure "$@" || true; }

L_DP="dpnet <-memif-> dpnet (echoserver core 1, net_latency core 0, busy)"
L_LX="Linux veth, blocking sockets: net_latency --kernel -> kecho (core 0 -> core 1)"
L_LS="Linux veth, spinning non-blocking sockets: net_latency --kernel --spin -> kecho -s (core 0 -> core 1)"
L_SP="Linux veth, sockperf pp -> sr (core 0 -> core 1), RTT = 2 x one-way"

# Machine noise: spin_noise on both cores at once, with nothing of ours
# busy, measures what any busy poller here loses; the report sets it against
# the 64 B tails.
noise() { # rep
  local c f np=()
  for c in 0 1; do
    f=$out/raw/noise_core$c.r$1.out
    "$A/spin_noise" --cpu $c --seconds $NOISE_S --json >"$f" 2>"$f.err" &
    np+=($!)
  done
  for c in 0 1; do
    f=$out/raw/noise_core$c.r$1.out
    if wait "${np[$c]}"; then
      record noise_core$c noise "$1" "$f" - "spin_noise on core $c (both cores at once, ${NOISE_S} s)"
    else
      say "  noise_core$c run $1: FAILED: $(tail -1 "$f.err")"
    fi
  done
  say "  noise run $1: gaps >= 2 us per second: core 0 $(noise_g2 0 "$1"), core 1 $(noise_g2 1 "$1")"
}
noise_g2() { $PY -c 'import json,sys; print("%.0f" % json.load(open(sys.argv[1]))["gaps_per_s"]["2"])' \
  "$out/raw/noise_core$1.r$2.out" 2>/dev/null || echo "?"; }

# The host's placement of our two vCPUs: one cache line's round trip between
# core 0 and core 1 (spin_noise --pingpong), nothing of ours running, before
# each case and at the end. Here it reads 100-130 ns or 430-500 ns and moves
# within minutes, and every cross-core figure moves with it: the floor and
# bulk by 2-4x. bench.md lists it per case so that figures are read with it.
# --wait-near waits for the cases with targets in the issues only (and
# their runs: "bulk.r2"); the others are measured as the host is.
near_case() { [ "$WAIT_NEAR" -gt 0 ] && [[ " lat floor conns bulk http.memif " == *" ${1%.r[0-9]*} "* ]]; }
spell() { # case
  memif_down
  local f=$out/raw/spell_$1.out waited=0 p
  while :; do
    if ! "$A/spin_noise" --cpu 0 --pingpong 1 --seconds 0.3 --json >"$f" 2>"$f.err"; then
      say "host before case $1: cache-line round trip not measured: $(tail -1 "$f.err")"
      return 0
    fi
    p=$($PY -c 'import json,sys; print("%.0f" % json.load(open(sys.argv[1]))["pingpong_ns"]["p50"])' "$f" 2>/dev/null || echo 0)
    # --wait-near: wait (bounded) for the near placement before the case.
    near_case "$1" && [ "$p" -ge "$NEAR_NS" ] &&
      [ "$waited" -lt "$WAIT_NEAR" ] || break
    local nap=$((WAIT_NEAR - waited < 10 ? WAIT_NEAR - waited : 10))
    sleep "$nap"
    waited=$((waited + nap))
  done
  $PY - "$f" "$waited" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["waited_s"] = int(sys.argv[2])
json.dump(j, open(sys.argv[1], "w"))
PY
  record "spell_$1" spell 1 "$f" - "core 0 <-> core 1 cache-line round trip, before case $1"
  say "host before case $1: core 0 <-> core 1 cache-line round trip $p ns$(near_case "$1" && echo " (waited $waited s for < $NEAR_NS ns)")"
}

# --wait-near: the cases with targets wait again before each later run, as
# a near spell here lasts 1-4 minutes, less than such a case's three runs.
# Nothing of ours may be running on the two cores then (the probe needs both).
near_again() { # case rep
  if [ "$WAIT_NEAR" -gt 0 ] && [ "$2" -gt 1 ]; then spell "$1.r$2"; fi
}

# ---- 1, 2: 64 B ping-pong --------------------------------------------------
if want lat; then
  spell lat
  say "case 1+2: 64 B ping-pong, TCP and UDP, one connection"
  for r in $(seq $REPS); do
    near_again lat "$r"
    memif_down # a busy echoserver on core 1 would be the noise
    noise "$r"
    for proto in tcp udp; do
      u=(); [ $proto = udp ] && u=(--udp)
      dmeasure ${proto}64_dpnet lat $r "$L_DP" "$out/raw/${proto}64_dpnet.r$r.samples" \
        "${u[@]}" "${LAT[@]}" --samples "$out/raw/${proto}64_dpnet.r$r.samples"
      kmeasure ${proto}64_linux lat $r "$L_LX" "$out/raw/${proto}64_linux.r$r.samples" \
        "${KNL[@]}" "${u[@]}" "${LAT[@]}" --samples "$out/raw/${proto}64_linux.r$r.samples"
      # Linux at its best: both ends spinning on non-blocking sockets (a
      # second kecho, only while measured: it takes core 1 whole).
      bg "${nsS[@]}" taskset -c 1 "$A/kecho" -s -p 8 -b $SIP >"$out/kecho-spin.log" 2>&1; KS=$LAST
      waitfor "$out/kecho-spin.log" listening
      kmeasure ${proto}64_linuxspin lat $r "$L_LS" "$out/raw/${proto}64_linuxspin.r$r.samples" \
        "${KNL[@]}" --spin --port 8 "${u[@]}" "${LAT[@]}" --samples "$out/raw/${proto}64_linuxspin.r$r.samples"
      stop "$KS"
      if [ $HAVE_SOCKPERF = 1 ]; then
        if [ $proto = tcp ]; then sp=(--tcp -p 11111); else sp=(-p 11112); fi
        kmeasure ${proto}64_sockperf sockperf $r "$L_SP" - \
          "${nsC[@]}" taskset -c 0 sockperf pp "${sp[@]}" -i $SIP -m 64 -t $SP_T
      fi
    done
  done
fi

# UDP floor: net_latency (dpnet, core 0) against testpmd 5tswap (forwarding
# lcore on core 1, its main lcore on core 0 idle in the command line). testpmd
# answers no ARP: icmpecho mode first (it answers ARP), then 5tswap.
if [ $HAVE_TESTPMD = 1 ] && want floor; then
  spell floor
  say "case 2: UDP floor: net_latency (dpnet) <-memif-> dpdk-testpmd --forward-mode=5tswap"
  memif_down
  trap '' PIPE # a testpmd that died must not kill us through its FIFO
  for r in $(seq $REPS); do
    near_again floor "$r"
    tsock=$out/tp$r.sock fifo=$out/tp$r.fifo tlog=$out/testpmd$r.log
    mkfifo "$fifo"
    # Not through bg: a function's "cmd &" gets /dev/null as stdin, and a
    # redirection on the function call would open the FIFO in this shell.
    dpdk-testpmd --no-pci -l 0,1 --main-lcore 0 --in-memory --log-level=pmd.net.memif:error \
      --vdev=net_memif0,role=server,socket=$tsock -- -i --total-num-mbufs=16384 --nb-cores=1 \
      <"$fifo" >"$tlog" 2>&1 &
    TPID=$!; pids+=("$TPID")
    exec 7>"$fifo" # unblocks testpmd's open of the FIFO
    echo "set fwd icmpecho" >&7 || true; echo "start" >&7 || true
    waitfor "$tlog" "Checking link statuses" || true
    f=$out/raw/udp64_floor.r$r
    ( timeout -s INT -k 5 120 "$A/net_latency" --no-pci -l 0 --vdev=net_memif0,role=client,socket=$tsock -- \
        --ip 10.98.0.2/24 --poll busy --server 10.98.0.1 --json --timeout 100 --udp "${LAT[@]}" \
        --samples "$f.samples" >"$f.out" 2>"$f.out.err" ) &
    NLP=$!
    # Switch to 5tswap once icmpecho has answered net_latency's ARP request (the
    # request queued behind it is dropped there and resent after 200 ms).
    for _ in $(seq 100); do
      echo "show port stats 0" >&7 || true
      sleep 0.1
      grep -q "TX-packets: *[1-9]" "$tlog" && break
    done
    { echo "stop"; echo "set fwd 5tswap"; echo "start"; } >&7 || true
    if wait $NLP; then
      record udp64_floor lat $r "$f.out" "$f.samples" "floor: dpnet net_latency <-memif-> dpdk-testpmd 5tswap (fwd lcore core 1)"
      say "  udp64_floor run $r: $(summ lat "$f.out")"
    else
      say "  udp64_floor run $r: FAILED"; tail -3 "$f.out.err" | sed 's/^/    /'
    fi
    echo "stop" >&7 || true; echo "quit" >&7 || true; exec 7>&-
    stop $TPID
    # TCP against the floor, interleaved: right after each floor run, so that
    # the host's slow spells hit both.
    dmeasure tcp64_pair lat $r "$L_DP (right after each floor run)" "$out/raw/tcp64_pair.r$r.samples" \
      "${LAT[@]}" --samples "$out/raw/tcp64_pair.r$r.samples"
    memif_down
  done
  trap - PIPE
fi

# ---- 3: message sizes ------------------------------------------------------
if want size; then
  spell size
  say "case 3: TCP RTT vs message size (${SIZES[*]} B)"
  for r in $(seq $REPS); do
    for s in "${SIZES[@]}"; do
      [ "$s" = 64 ] && continue # case 1
      w=(); [ "$QUICK" = 0 ] && [ "$s" -ge 4096 ] && w=(--warmup 500)
      dmeasure size${s}_dpnet lat $r "$L_DP" - --size $s "${LAT[@]}" "${w[@]}"
      kmeasure size${s}_linux lat $r "$L_LX" - "${KNL[@]}" --size $s "${LAT[@]}" "${w[@]}"
    done
  done
fi

# ---- 4: requests/s ---------------------------------------------------------
if want tput; then
  spell tput
  say "case 4: throughput: 64 connections x 8 requests in flight, 64 B echo"
  for r in $(seq $REPS); do
    dmeasure tput_dpnet rate $r "$L_DP" - --conns 64 --pipeline 8 "${TP[@]}"
    kmeasure tput_linux rate $r "$L_LX (epoll)" - "${KNL[@]}" --conns 64 --pipeline 8 "${TP[@]}"
  done
fi

# ---- 4b: requests/s vs number of connections -------------------------------
# The same pipelined echo with 64 and with 8192 connections (MEMP_NUM_TCP_PCB
# per worker), one after the other in each run so that both see the same
# machine. A fresh echoserver for each: no pcbs left from the previous client.
# The warm-up lets every connection go round a few times first.
if want conns; then
  spell conns
  say "case 4b: requests/s with 64 and with 8192 connections x 8 in flight, 64 B echo"
  for r in $(seq $REPS); do
    near_again conns "$r"
    for c in 64 8192; do
      memif_down
      w=$((4 * 8 * c)); [ $w -ge $TP_WARM ] || w=$TP_WARM
      dmeasure conns${c}_dpnet rate $r "$L_DP, $c connections" - --conns $c --pipeline 8 \
        "${TP_RUN[@]}" --warmup $w
    done
  done
  memif_down
fi

# ---- 4c: cost vs work -------------------------------------------------------
# What a request costs as the work grows: the 64 B echo with 1, 64, 1024 and
# 8192 connections, one request in flight on each (RTT and requests/s), and
# bulk with 1, 4 and 16 streams (one connection each, the same bytes in
# all). A fresh echoserver for each connection count.
if want work; then
  spell work
  say "case 4c: cost vs work: 64 B echo, 1/64/1024/8192 connections x 1 in flight; bulk, 1/4/16 streams"
  for r in $(seq $REPS); do
    for c in 1 64 1024 8192; do
      memif_down
      w=$((4 * c)); [ $w -ge $TP_WARM ] || w=$TP_WARM
      dmeasure work_c$c rate $r "$L_DP, $c connection(s) x 1 in flight" - --conns $c "${TP_RUN[@]}" --warmup $w
    done
    for s in 1 4 16; do
      dmeasure work_s$s bulk $r "$L_DP, $s stream(s) of $((BULK / s >> 20)) MiB" - --conns $s --bulk $((BULK / s))
    done
  done
  memif_down
fi

# ---- 5: connections/s ------------------------------------------------------
if want cps; then
  spell cps
  say "case 5: new connections/s: connect, 64 B echo, close (client closes first), 16 in parallel"
  for r in $(seq $REPS); do
    dmeasure cps_dpnet rate $r "$L_DP" - --connect-rate --conns 16 "${CR[@]}"
    kmeasure cps_linux rate $r "$L_LX (epoll; tcp_tw_reuse=1)" - "${KNL[@]}" --connect-rate --conns 16 "${CR[@]}"
  done
fi

# ---- 6: bulk ---------------------------------------------------------------
if want bulk; then
  spell bulk
  say "case 6: one bulk TCP stream of $((BULK >> 20)) MiB through the echo server"
  for r in $(seq $REPS); do
    near_again bulk "$r"
    dmeasure bulk_dpnet bulk $r "$L_DP, MTU 1500" - --bulk $BULK
    kmeasure bulk_linux bulk $r "$L_LX, MTU 1500 (TSO/GSO on veth)" - "${KNL[@]}" --bulk $BULK
  done
  # No checksums at all (port.csum none on both ends), as Linux over veth
  # computes none; the rows above fill them (memif's auto: trust, fill).
  memif_down
  NSOCK=$MSOCK.nocsum NLOG=$out/raw/bulk_nocsum_server.log
  rm -f "$NSOCK"
  bg "$A/echoserver" --no-pci -l 1 --vdev=net_memif0,role=server,socket=$NSOCK -- \
    --ip 10.97.0.1/24 --poll busy --csum none >"$NLOG" 2>&1
  NPID=$LAST
  if waitfor "$NLOG" "listening on port"; then
    for r in $(seq $REPS); do
      kmeasure bulk_nocsum_dpnet bulk $r "$L_DP, MTU 1500, port.csum none on both ends (no TCP checksums, as veth)" - \
        "$A/net_latency" --no-pci -l 0 --vdev=net_memif0,role=client,socket=$NSOCK -- \
        --ip 10.97.0.2/24 --poll busy --csum none --server 10.97.0.1 --json --timeout 100 --bulk $BULK
      # The client's memif in zero-copy mode: the server's memif copies
      # into and out of the client's own mbufs, one copy per frame where
      # there were two (dpnet adds --single-file-segments, which it needs).
      kmeasure bulk_zc_dpnet bulk $r "$L_DP, MTU 1500, port.csum none on both ends, client memif zero-copy=yes" - \
        "$A/net_latency" --no-pci -l 0 --vdev=net_memif0,role=client,socket=$NSOCK,zero-copy=yes -- \
        --ip 10.97.0.2/24 --poll busy --csum none --server 10.97.0.1 --json --timeout 100 --bulk $BULK
      # Linux again, beside these rows too: the host's speed swings within
      # minutes, and all these rows are read against bulk_linux's median.
      kmeasure bulk_linux bulk $((REPS + r)) "$L_LX, MTU 1500 (TSO/GSO on veth)" - "${KNL[@]}" --bulk $BULK
    done
  fi
  stop "$NPID"; rm -f "$NSOCK"
  # tcp.send_zc 2 on both ends (by default on PCI NICs only): dpn_send
  # copies once, into mbufs that go out as they are, and the echo goes out
  # in the mbufs it arrived in; the client's send side copies each byte
  # twice (into the mbuf, memif into its ring), not three times.
  ZSOCK=$MSOCK.sendzc ZLOG=$out/raw/bulk_sendzc_server.log
  rm -f "$ZSOCK"
  bg "$A/echoserver" --no-pci -l 1 --vdev=net_memif0,role=server,socket=$ZSOCK -- \
    --ip 10.97.0.1/24 --poll busy --send-zc 2 >"$ZLOG" 2>&1
  ZPID=$LAST
  if waitfor "$ZLOG" "listening on port"; then
    for r in $(seq $REPS); do
      kmeasure bulk_sendzc_dpnet bulk $r "$L_DP, MTU 1500, tcp.send_zc 2 on both ends" - \
        "$A/net_latency" --no-pci -l 0 --vdev=net_memif0,role=client,socket=$ZSOCK -- \
        --ip 10.97.0.2/24 --poll busy --send-zc 2 --server 10.97.0.1 --json --timeout 100 --bulk $BULK
    done
  fi
  stop "$ZPID"; rm -f "$ZSOCK"
  # MTU 9000: memif buffers of 9216 bytes on both ends (DPDK 22.11's memif
  # breaks frames over one buffer; port.c), 8960-byte segments.
  JSOCK=$MSOCK.jumbo JLOG=$out/raw/bulk_jumbo_server.log
  rm -f "$JSOCK"
  bg "$A/echoserver" --no-pci -l 1 --vdev=net_memif0,role=server,socket=$JSOCK,bsize=9216 -- \
    --ip 10.97.0.1/24 --poll busy --mtu 9000 >"$JLOG" 2>&1
  JPID=$LAST
  if waitfor "$JLOG" "listening on port"; then
    for r in $(seq $REPS); do
      kmeasure bulk9k_dpnet bulk $r "${L_DP/dpnet <-memif-> dpnet/dpnet <-memif (bsize=9216)-> dpnet}, MTU 9000" - \
        "$A/net_latency" --no-pci -l 0 --vdev=net_memif0,role=client,socket=$JSOCK,bsize=9216 -- \
        --ip 10.97.0.2/24 --poll busy --mtu 9000 --server 10.97.0.1 --json --timeout 100 --bulk $BULK
    done
  fi
  stop "$JPID"; rm -f "$JSOCK"
  # The ceiling: raw DPDK bursts of 1514-byte frames (bench/memif_burst, no
  # stack) over the same memif link, sent back by testpmd's io forwarding on
  # core 1; counted as 1460 payload bytes per frame, like the rows above.
  if [ $HAVE_TESTPMD = 1 ] && [ -x "$B/bench/memif_burst" ]; then
    for r in $(seq $REPS); do
      csock=$out/ceil$r.sock clog=$out/testpmd-ceil$r.log
      rm -f "$csock"
      # --stats-period: forwards until SIGINT (else it quits at stdin's EOF).
      bg dpdk-testpmd --no-pci -l 0,1 --main-lcore 0 --in-memory --log-level=pmd.net.memif:error \
        --vdev=net_memif0,role=server,socket="$csock" -- --forward-mode=io --auto-start \
        --nb-cores=1 --total-num-mbufs=16384 --stats-period 600 >"$clog" 2>&1
      CPID=$LAST
      if waitfor "$clog" "start packet forwarding"; then
        kmeasure bulk_ceiling bulk $r "ceiling: bench/memif_burst (core 0) <-memif-> dpdk-testpmd io (core 1), 1514 B frames" - \
          "$B/bench/memif_burst" --no-pci -l 0 --in-memory --log-level=pmd.net.memif:error \
          --vdev=net_memif0,role=client,socket=$csock -- --bytes $BULK
      fi
      stop "$CPID"; rm -f "$csock"
    done
  fi
fi
memif_down

# ---- 7: dpnetd (attached) vs standalone, Linux client over net_tap ---------
tap_up() { # iface log: wait for the tap, give the kernel side its address
  waitfor "$2" "${3:-listening on port}" || return 1
  "${nsT[@]}" ip addr add $TPEER/24 dev "$1"; "${nsT[@]}" ip link set "$1" up
  for _ in $(seq 50); do "${nsT[@]}" ping -c 1 -W 1 $TIP >/dev/null 2>&1 && return 0; sleep 0.1; done
  say "  no ping reply from $TIP"; return 1
}
TKNL=("${nsT[@]}" taskset -c 0 "$A/net_latency" --kernel --server $TIP --json --timeout 100)
L_TS="Linux client (core 0) -> echoserver standalone on net_tap (core 1, busy)"
L_TA="Linux client (core 0) -> echoserver attached to dpnetd (worker core 1 busy; dpnetd core 0 hybrid), net_tap"
if want tap; then
  spell tap
  say "case 7: Linux client -> echoserver on net_tap: standalone vs attached to dpnetd"
  bg "${nsT[@]}" "$A/echoserver" --no-pci -l 1 --log-level=pmd.net.tap:error --vdev=net_tap0,iface=bt1$tag -- \
    --ip $TIP/24 --poll busy >"$out/tap-sa.log" 2>&1; SA=$LAST
  if tap_up bt1$tag "$out/tap-sa.log"; then
    for r in $(seq $REPS); do
      kmeasure tap_standalone_tcp lat $r "$L_TS" - "${TKNL[@]}" "${LAT[@]}"
      kmeasure tap_standalone_udp lat $r "$L_TS" - "${TKNL[@]}" --udp "${LAT[@]}"
    done
  fi
  stop $SA
  # Kernel steering (the default on net_tap: dpnetd off the data path) and
  # software steering (dpnetd hands every frame over: memif's way), side by side.
  for mode in kernel software; do
    DPFX=dpnb$mode$tag; prefixes+=("$DPFX")
    id=tap_attached; [ $mode = kernel ] || id=tap_attached_sw
    bg "${nsT[@]}" "$A/dpnetd" --no-pci -l 0 --file-prefix $DPFX --log-level=pmd.net.tap:error \
      --vdev=net_tap0,iface=bt2$tag -- --ip $TIP/24 --queues 2 --poll hybrid --steering $mode \
      >"$out/dpnetd-$mode.log" 2>&1; DPD=$LAST
    if tap_up bt2$tag "$out/dpnetd-$mode.log" "dpnetd: serving"; then
      bg "${nsT[@]}" "$A/echoserver" --no-pci --lcores=1@1 --proc-type=secondary --file-prefix $DPFX \
        --log-level=pmd.net.tap:error -- --app bench --port 7 --poll busy >"$out/tap-att-$mode.log" 2>&1; WK=$LAST
      if waitfor "$out/tap-att-$mode.log" "listening on port"; then
        for r in $(seq $REPS); do
          kmeasure ${id}_tcp lat $r "$L_TA, $mode steering" - "${TKNL[@]}" "${LAT[@]}"
          kmeasure ${id}_udp lat $r "$L_TA, $mode steering" - "${TKNL[@]}" --udp "${LAT[@]}"
        done
      fi
      stop $WK
    fi
    stop $DPD
  done
fi

# One application, one worker and then two, behind dpnetd on net_tap
# (kernel steering): a Linux client with 64 connections x 8 in flight. The
# two workers share core 1 (the client has core 0, dpnetd sleeps beside it),
# so the second adds no CPU: what counts is that requests/s does not drop,
# that the connections spread and that dpnetd sees none of the frames.
if want workers; then
  spell workers
  say "case 7d: requests/s through dpnetd (kernel steering, net_tap): one worker vs two of one application"
  DPFX=dpnbw$tag; prefixes+=("$DPFX")
  bg "${nsT[@]}" "$A/dpnetd" --no-pci -l 0 --file-prefix $DPFX --log-level=pmd.net.tap:error \
    --vdev=net_tap0,iface=bt3$tag -- --ip $TIP/24 --queues 3 --poll hybrid >"$out/dpnetd-w.log" 2>&1; DPD=$LAST
  if tap_up bt3$tag "$out/dpnetd-w.log" "dpnetd: serving"; then
    WKS=()
    # Workers of one application share its secret (dpnetd refuses a stranger).
    export DPNET_APP_SECRET
    DPNET_APP_SECRET=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
    wctl() { "$A/dpnetctl" --file-prefix $DPFX "$@"; }
    for n in 1 2; do
      bg "${nsT[@]}" "$A/echoserver" --no-pci --lcores=$n@1 --proc-type=secondary --file-prefix $DPFX \
        --log-level=pmd.net.tap:error -- --app bench --port 7 --poll hybrid >"$out/tap-w$n.log" 2>&1
      WKS+=("$LAST")
      waitfor "$out/tap-w$n.log" "listening on port" || break
      for r in $(seq $REPS); do
        d0=$(wctl stats | sed -n 's/^dpnetd: rx \([0-9]*\) frames.*/\1/p')
        w0=($(wctl workers | awk 'NR > 1 && NF > 5 { print $7 }'))
        kmeasure workers${n}_tput rate $r "Linux client (core 0, 64 conns x 8) -> $n echoserver worker(s) of one application on core 1, dpnetd kernel steering, net_tap" - \
          "${TKNL[@]}" --conns 64 --pipeline 8 "${TP[@]}"
        d1=$(wctl stats | sed -n 's/^dpnetd: rx \([0-9]*\) frames.*/\1/p')
        w1=($(wctl workers | awk 'NR > 1 && NF > 5 { print $7 }'))
        spread=""; for i in "${!w1[@]}"; do spread+=" +$((w1[i] - ${w0[i]:-0}))"; done
        say "  workers$n run $r: dpnetd rx +$((d1 - d0)) frames; frames received per worker:$spread"
      done
    done
    for w in "${WKS[@]}"; do stop $w; done
  fi
  stop $DPD
fi

# Inside a Debian-kernel guest (tools/guest.sh; TC flower there): the same
# Linux client -> attached echoserver with hardware rules and with software
# steering. Software emulation: only the ratio of the two means anything.
# Packet capture's price per frame (bench/cap_cost: the producer on bursts,
# the real writer thread draining into /dev/null; no port, no network).
if want capture; then
  spell capture
  say "case 8: packet capture, ns per frame (off, every frame, filtered)"
  prefixes+=("dpnbcap$tag")
  for r in $(seq "$REPS"); do
    f=$out/raw/capture.r$r.out; mkdir -p "$out/raw"
    if "$B/bench/cap_cost" --no-pci --no-huge -m 512 -l 0-1 --log-level=error --file-prefix dpnbcap$tag \
        -- "$([ "$QUICK" = 1 ] && echo 300 || echo 1000)" >"$f" 2>/dev/null; then
      record capture capcost "$r" "$f" - "packet capture: dpn_cap_frames per frame, writer into /dev/null"
      say "  run $r: $(grep -E '^(off|all-64B|all-1514B|match-64B) ' "$f" | tr '\n' ' ')"
    else
      say "  capture run $r FAILED"
    fi
  done
fi

if want guest; then
  spell guest
  say "case 7c: in a Debian-kernel guest (qemu, software emulation): hardware rules vs software steering"
  G=$out/raw/guest; mkdir -p "$G"
  if DPNET_BUILD=$B DPNET_BENCH_OUT=$G DPNET_BENCH_REPS=$REPS \
      DPNET_BENCH_COUNT=$([ "$QUICK" = 1 ] && echo 500 || echo 2000) \
      timeout 900 bash "$top/tools/guest.sh" run --timeout 800 --out "$G" --share "$B" -- "$top/tools/bench_guest.sh" \
      >"$out/guest.log" 2>&1; then
    for f in "$G"/guest_*.r*.out; do
      [ -s "$f" ] || continue
      b=$(basename "$f" .out); id=${b%.r*}; r=${b##*.r}
      how="hardware rules (rte_flow on TC flower)"; [ "${id#guest_sw}" = "$id" ] || how="software steering"
      record "$id" lat "$r" "$f" - "guest (qemu TCG): Linux client -> echoserver attached to dpnetd on net_tap, $how"
      say "  $id run $r: $(summ lat "$f")"
    done
  else
    say "  guest run FAILED: $(tail -3 "$out/guest.log" | tr '\n' ' ')"
  fi
fi

# Two dpnetd over memif (one per side, 2 queue pairs each, software steering),
# an attached worker on each side: net_latency -> echoserver. Four processes on
# two cores: the daemons poll hybrid (memif has no RX interrupt: back-off
# sleeps), the workers busy; daemon and worker of one side share its core.
if want memifd; then
  spell memifd
  say "case 7b: net_latency (attached) -> echoserver (attached), two dpnetd over memif"
  P1=dpnbs$tag P2=dpnbc$tag; prefixes+=("$P1" "$P2")
  DSOCK=$out/dmemif.sock
  bg "$A/dpnetd" --no-pci -l 1 --file-prefix $P1 --vdev=net_memif0,role=server,socket=$DSOCK -- \
    --ip 10.99.0.1/24 --queues 2 --poll hybrid --spin-us 200 >"$out/dpnetd-s.log" 2>&1; D1=$LAST
  waitfor "$out/dpnetd-s.log" "dpnetd: serving" || true # the memif server's socket first
  bg "$A/dpnetd" --no-pci -l 0 --file-prefix $P2 --vdev=net_memif0,role=client,socket=$DSOCK -- \
    --ip 10.99.0.2/24 --queues 2 --poll hybrid --spin-us 200 >"$out/dpnetd-c.log" 2>&1; D2=$LAST
  if waitfor "$out/dpnetd-s.log" "dpnetd: serving" && waitfor "$out/dpnetd-c.log" "dpnetd: serving"; then
    bg "$A/echoserver" --no-pci --lcores=2@1 --proc-type=secondary --file-prefix $P1 -- \
      --app bench --port 7 --poll busy >"$out/dmemif-w.log" 2>&1; W1=$LAST
    if waitfor "$out/dmemif-w.log" "listening on port"; then
      sleep 1 # memif link up between the daemons
      for r in $(seq $REPS); do
        kmeasure memifd_tcp lat $r "dpnet attached <-memif-> dpnet attached (two dpnetd hybrid, workers busy; side A core 0, side B core 1)" - \
          "$A/net_latency" --no-pci --lcores=1@0 --proc-type=secondary --file-prefix $P2 -- \
          --poll busy --server 10.99.0.1 --json --timeout 30 "${LAT[@]}"
      done
    fi
    stop $W1
  fi
  stop $D2; stop $D1
fi

# ---- 8: httpd vs nginx under wrk -------------------------------------------
if [ $HAVE_WRK = 1 ] && want http; then
  spell http
  say "case 8: HTTP GET of a 64 B file: dpnet httpd (net_tap) vs nginx (veth), wrk -t1 on core 0"
  mkdir -p "$out/www" "$out/nginx/tmp"
  head -c 63 /dev/zero | tr '\0' 'x' >"$out/www/b64"; echo >>"$out/www/b64"
  chmod -R a+rX "$out/www"
  cat >"$out/report.lua" <<'LUA'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %d, "duration_us": %d, "errors": %d, "rps": %.1f, ' ..
    '"p50": %.1f, "p90": %.1f, "p99": %.1f, "p99.9": %.1f, "max": %.1f}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end
LUA
  wrk_run() { # id rep label ns url conns
    local c=$6 t=1
    kmeasure "$1" wrk "$2" "$3" - ip netns exec "$4" taskset -c 0 wrk -t$t -c$c -d${WRK_D}s --latency \
      -s "$out/report.lua" "$5"
  }
  bg "${nsT[@]}" "$A/httpd" --no-pci -l 1 --log-level=pmd.net.tap:error --vdev=net_tap0,iface=bt3$tag -- \
    --ip $TIP/24 --poll busy --port 80 --root "$out/www" >"$out/httpd.log" 2>&1; HP=$LAST
  if tap_up bt3$tag "$out/httpd.log"; then
    for r in $(seq $REPS); do
      wrk_run http1_dpnet $r "dpnet httpd on net_tap (core 1, busy) <- wrk -t1 -c1 (core 0)" "$NS_T" http://$TIP/b64 1
      wrk_run http64_dpnet $r "dpnet httpd on net_tap (core 1, busy) <- wrk -t1 -c64 (core 0)" "$NS_T" http://$TIP/b64 64
    done
  fi
  stop $HP
  # One connection over memif with a DPDK client (net_latency --http): the
  # server's own cost per request, no kernel on either side.
  memif_down
  if [ "$WAIT_NEAR" -gt 0 ]; then spell http.memif; fi # the busy httpd on net_tap has gone
  rm -f "$MSOCK"
  bg "$A/httpd" --no-pci -l 1 --vdev=net_memif0,role=server,socket=$MSOCK -- \
    --ip 10.97.0.1/24 --poll busy --port 80 --root "$out/www" >"$out/httpd-memif.log" 2>&1; HM=$LAST
  if waitfor "$out/httpd-memif.log" "listening on port"; then
    for r in $(seq $REPS); do
      measure httpmemif_dpnet lat $r "dpnet httpd on memif (core 1, busy) <- net_latency --http (core 0, busy), GET /b64 keep-alive" - \
        "${DNL[@]}" --port 80 --http /b64 "${LAT[@]}" || true
    done
  fi
  stop $HM
  if [ $HAVE_NGINX = 1 ]; then
    cat >"$out/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $out/nginx/nginx.pid;
error_log $out/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on; tcp_nodelay on;
  keepalive_requests 100000000; keepalive_timeout 120;
  client_body_temp_path $out/nginx/tmp/body; proxy_temp_path $out/nginx/tmp/proxy;
  fastcgi_temp_path $out/nginx/tmp/fcgi; uwsgi_temp_path $out/nginx/tmp/uwsgi;
  scgi_temp_path $out/nginx/tmp/scgi;
  default_type application/octet-stream;
  server { listen $SIP:8080; root $out/www; }
}
EOF
    bg "${nsS[@]}" taskset -c 1 nginx -e "$out/nginx/error.log" -p "$out/nginx" -c "$out/nginx/nginx.conf"; NGX=$LAST
    for _ in $(seq 50); do "${nsC[@]}" bash -c "exec 3<>/dev/tcp/$SIP/8080" 2>/dev/null && break; sleep 0.1; done
    for r in $(seq $REPS); do
      wrk_run http1_nginx $r "nginx 1.22 (1 worker, core 1) on veth <- wrk -t1 -c1 (core 0)" "$NS_C" http://$SIP:8080/b64 1
      wrk_run http64_nginx $r "nginx 1.22 (1 worker, core 1) on veth <- wrk -t1 -c64 (core 0)" "$NS_C" http://$SIP:8080/b64 64
    done
    kill -QUIT $NGX 2>/dev/null || true; sleep 0.5; stop $NGX
  fi
fi

# ---- 9: unmodified servers on the sockets layer -----------------------------
HAVE_REDIS=1
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || HAVE_REDIS=0
if want servers; then
  spell servers
  say "case 9: unmodified servers on libdpnet-posix.so (net_tap) vs Linux (veth); the layer's cost (memif)"
  PRE=(env DPNET_POSIX_LIB="$B/posix/libdpnet-posix.so" DPNET_POSIX_SPIN_US=busy "$top/tools/dpnet-run"
       --preload --standalone --cpus 1)
  RN=$([ "$QUICK" = 1 ] && echo 20000 || echo 100000)
  # redis-benchmark's CSV (ms: avg min p50 p95 p99 max) as wrk's JSON (us;
  # its p90 field holds p95, its p99.9 the max)
  rb_json='import csv, json, sys
r = [x for x in csv.reader(sys.stdin) if x and x[0] != "test"][-1]
us = lambda i: float(r[i]) * 1000
print(json.dumps({"requests": 0, "duration_us": 0, "errors": 0, "rps": float(r[1]), "p50": us(4),
                  "p90": us(5), "p99": us(6), "p99.9": us(7), "max": us(7)}))'
  rb_run() { # id rep label ns ip test conns pipeline
    kmeasure "$1" wrk "$2" "$3" - ip netns exec "$4" taskset -c 0 bash -c \
      "redis-benchmark -h $5 -p 6379 -t $6 -c $7 -P $8 -n $RN --csv | $PY -c '$rb_json'"
  }
  rb_all() { # system ns ip label
    local t c
    for r in $(seq $REPS); do
      for t in get set; do
        rb_run srv_redis_${t}1_$1 $r "$4 <- redis-benchmark -t $t -c 1 -P 1 (core 0)" "$2" "$3" $t 1 1
        rb_run srv_redis_${t}16_$1 $r "$4 <- redis-benchmark -t $t -c 16 -P 16 (core 0)" "$2" "$3" $t 16 16
      done
    done
  }
  RARGS=(--port 6379 --save '' --appendonly no --protected-mode no --daemonize no)
  if [ $HAVE_REDIS = 1 ]; then
    bg "${nsT[@]}" "${PRE[@]}" --eal "--no-pci --file-prefix bsr$tag --log-level=pmd.net.tap:error --vdev=net_tap0,iface=bt4$tag" \
      --dpnet "--ip $TIP/24 --poll busy" -- redis-server --bind 0.0.0.0 "${RARGS[@]}" >"$out/redis-dpnet.log" 2>&1; RP=$LAST
    tap_up bt4$tag "$out/redis-dpnet.log" "Ready to accept" && rb_all dpnet "$NS_T" $TIP "redis-server 7 on dpnet (layer, net_tap, core 1, busy)"
    stop $RP
    bg "${nsS[@]}" taskset -c 1 redis-server --bind $SIP "${RARGS[@]}" >"$out/redis-linux.log" 2>&1; RP=$LAST
    waitfor "$out/redis-linux.log" "Ready to accept" && rb_all linux "$NS_C" $SIP "redis-server 7 on Linux (veth, core 1)"
    stop $RP
  else
    say "  redis-server or redis-benchmark missing: redis rows skipped (tools/setup.sh installs them)"
  fi
  if [ $HAVE_WRK = 1 ] && [ $HAVE_NGINX = 1 ] && [ -f "$out/report.lua" ]; then
    mkdir -p "$out/nginx-dp/tmp"
    sed -e "s|^daemon off;|daemon off;\nmaster_process off;|" -e "s|listen $SIP:8080|listen 8080|" \
      -e "s|$out/nginx/|$out/nginx-dp/|g" "$out/nginx/nginx.conf" >"$out/nginx-dp/nginx.conf"
    bg "${nsT[@]}" "${PRE[@]}" --eal "--no-pci --file-prefix bsn$tag --log-level=pmd.net.tap:error --vdev=net_tap0,iface=bt5$tag" \
      --dpnet "--ip $TIP/24 --poll busy" -- nginx -e "$out/nginx-dp/error.log" -p "$out/nginx-dp" \
      -c "$out/nginx-dp/nginx.conf" >"$out/nginx-dpnet.log" 2>&1; NP=$LAST
    if tap_up bt5$tag "$out/nginx-dpnet.log" "dpnet: port 0 (net_tap) up"; then
      for r in $(seq $REPS); do
        wrk_run srv_nginx1_dpnet $r "nginx 1.22 (one process) on dpnet (layer, net_tap, core 1, busy) <- wrk -t1 -c1 (core 0)" "$NS_T" http://$TIP:8080/b64 1
        wrk_run srv_nginx64_dpnet $r "nginx 1.22 (one process) on dpnet (layer, net_tap, core 1, busy) <- wrk -t1 -c64 (core 0)" "$NS_T" http://$TIP:8080/b64 64
      done
    fi
    stop $NP
  else
    say "  nginx rows need case http (its nginx.conf and wrk script) and wrk/nginx"
  fi
  # The layer's own cost: kecho (epoll, plain sockets) through it vs
  # echoserver on the callback API, both over memif, net_latency the client.
  memif_up
  for r in $(seq $REPS); do
    measure srv_echo_memif lat $r "echoserver (callback API) on memif (core 1, busy) <- net_latency (core 0, busy), TCP 64 B" - \
      "${DNL[@]}" "${LAT[@]}" || true
  done
  memif_down
  rm -f "$MSOCK"
  bg env LD_PRELOAD="$B/posix/libdpnet-posix.so" DPNET_POSIX_SPIN_US=busy \
    DPNET_ARGS="--no-pci -l 1 --file-prefix bsk$tag --vdev=net_memif0,role=server,socket=$MSOCK -- --ip 10.97.0.1/24 --poll busy" \
    "$A/kecho" -p 7 >"$out/kecho-layer.log" 2>&1; KP=$LAST
  if waitfor "$out/kecho-layer.log" "kecho: listening"; then
    for r in $(seq $REPS); do
      measure srv_kecho_memif lat $r "kecho (epoll, sockets) through libdpnet-posix.so on memif (core 1, busy) <- net_latency (core 0, busy), TCP 64 B" - \
        "${DNL[@]}" "${LAT[@]}" || true
    done
  fi
  stop $KP
  rm -rf /dev/hugepages/bs[rnk]$tag* /var/run/dpdk/bs[rnk]$tag
fi

# ---- report ----------------------------------------------------------------
spell end
say "writing the report"
mkdir -p "$RESULTS"
cp "$out/machine.txt" "$RESULTS/machine.txt"
$PY "$top/tools/bench_report.py" --manifest "$MAN" --out "$RESULTS" --reps $REPS \
  $( [ "$QUICK" = 1 ] && echo --quick ) --bulk-bytes $BULK
say "results in $RESULTS"
