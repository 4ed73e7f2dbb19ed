# Shared helpers for integration tests (sourced). Every test creates its own
# namespaces, processes and files, and removes them on any exit.
set -euo pipefail
B=${DPNET_BUILD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3 # Debian's python: sees python3-scapy
# Run by hand on a sanitizer build, as tools/test.sh runs it: DPDK keeps its
# EAL allocations until exit, so LeakSanitizer would fail every clean exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
TAG=$$
_NS=() _PIDS=() _FILES=() _PREFIXES=()
_pass=0 _fail=0

cleanup() {
  local p
  for p in "${_PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${_PIDS[@]}"; do
    for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  for n in "${_NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  for f in "${_FILES[@]}"; do rm -rf "$f"; done
  for x in "${_PREFIXES[@]}"; do rm -rf /dev/hugepages/"$x"map_* /var/run/dpdk/"$x"; done
}
trap cleanup EXIT

ok()     { _pass=$((_pass + 1)); _last=ok; echo "ok - $*"; }
not_ok() { _fail=$((_fail + 1)); _last=fail; echo "not ok - $*"; }
# check NAME CMD...: run CMD, record the outcome under NAME. It returns 0
# either way (scripts run under set -e); `last_failed && CMD` runs CMD
# (say, show a log) only when the check just recorded failed.
check() {
  local name=$1; shift
  if "$@"; then ok "$name"; else not_ok "$name"; fi
}
last_failed() { [ "${_last:-}" = fail ]; }
finish() { echo "# $_pass passed, $_fail failed"; [ "$_fail" -eq 0 ]; }

new_ns() { # name
  ip netns add "$1"; _NS+=("$1")
  ip netns exec "$1" ip link set lo up
}
track_pid() { _PIDS+=("$1"); }
track_file() { _FILES+=("$1"); }
track_prefix() { _PREFIXES+=("$1"); }

# mbufs_back LOG: the exit line of dpnet's stats ("mbufs free N (M after
# start-up)") is in LOG and N >= M. No line is a failure, not a pass.
mbufs_back() {
  local l
  l=$(sed -n 's/.*mbufs free \([0-9]*\) (\([0-9]*\) after start-up).*/\1 \2/p' "$1" | tail -1)
  if [ -z "$l" ]; then echo "# no 'mbufs free' line in $1"; return 1; fi
  echo "# mbufs free ${l% *}, ${l#* } after start-up"
  [ "${l% *}" -ge "${l#* }" ]
}

# wait_for SECONDS CMD...: run CMD every 0.1 s until it succeeds (0) or
# SECONDS have passed (1). For conditions that take a while on a loaded
# machine: the check is the condition, the time only a bound.
wait_for() {
  local end=$((SECONDS + $1)); shift
  until "$@"; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.1
  done
}

wait_log() { # file pattern seconds
  local i
  for i in $(seq $(($3 * 10))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "# timed out waiting for '$2' in $1:"; tail -20 "$1" | sed 's/^/#   /'; return 1
}

# stop_proc PID: SIGINT (clean shutdown) and wait up to 10 s; fails if it
# had to be killed or exited non-zero.
stop_proc() {
  local p=$1 rc=0
  kill -INT "$p" 2>/dev/null || return 1
  for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$p" 2>/dev/null; then kill -KILL "$p"; return 1; fi
  wait "$p" || rc=$?
  return "$rc"
}

# start_tap_server NS IFACE DPNET_IP/LEN PEER_IP/LEN LOG [app args...]:
# echoserver inside NS on a net_tap port; the kernel side of the tap gets
# PEER_IP. Sets SERVER_PID.
start_tap_server() {
  local ns=$1 ifc=$2 ip=$3 peer=$4 log=$5; shift 5
  track_file "$log"
  ip netns exec "$ns" "$B/app/echoserver" --no-pci -l 1 --log-level=pmd.net.tap:error \
    --vdev="net_tap0,iface=$ifc" -- --ip "$ip" --poll hybrid "$@" >"$log" 2>&1 &
  SERVER_PID=$!; track_pid "$SERVER_PID"
  wait_log "$log" "listening on port" 15 || return 1
  ip netns exec "$ns" ip addr add "$peer" dev "$ifc"
  ip netns exec "$ns" ip link set "$ifc" up
}

# start_dpnetd NS IFACE PREFIX DPNETD_IP/LEN PEER_IP/LEN LOG [options]: dpnetd
# inside NS on a net_tap port, polling hybrid, with the options after "--";
# once it serves, the kernel side of the tap gets PEER_IP. Sets DPID.
start_dpnetd() {
  local ns=$1 ifc=$2 pfx=$3 ip=$4 peer=$5 log=$6; shift 6
  track_file "$log"
  ip netns exec "$ns" "$B/app/dpnetd" --no-pci -l 0 --file-prefix "$pfx" \
    --log-level=pmd.net.tap:error --vdev="net_tap0,iface=$ifc" -- --ip "$ip" --poll hybrid "$@" \
    >"$log" 2>&1 &
  DPID=$!; track_pid "$DPID"
  wait_log "$log" "dpnetd: serving" 15 || return 1
  ip netns exec "$ns" ip addr add "$peer" dev "$ifc"
  ip netns exec "$ns" ip link set "$ifc" up
}

# guest_tee "$@": first thing in a script tools/guest.sh runs for a host-side
# test (guest_run): its output also goes to DPNET_GUEST_LOG on the share,
# whole before the guest powers off.
guest_tee() {
  [ -n "${DPNET_GUEST_LOG:-}" ] && [ -z "${_DPN_TEED:-}" ] || return 0
  trap - EXIT
  set +e
  _DPN_TEED=1 bash "$0" "$@" 2>&1 | tee "$DPNET_GUEST_LOG"
  exit "${PIPESTATUS[0]}"
}

# guest_run SCRIPT [guest.sh run options]: run SCRIPT (a test of its own,
# calling guest_tee) inside the Debian-kernel guest and report its checks
# here. The checkout and the build are shared with the guest even where its
# own tmpfs would hide them (a clone under /tmp).
guest_run() {
  local script=$1 top out rc=0 line
  shift
  top=$(cd "$HERE/../.." && pwd)
  out=$(mktemp -d "/tmp/dpn-guest-$TAG.XXXXXX")
  track_file "$out"
  (cd "$top" && DPNET_BUILD=$B DPNET_GUEST_LOG=$out/checks.log timeout 850 bash tools/guest.sh run \
    --timeout 800 "$@" --out "$out" --share "$B" -- "$HERE/$script" >"$out/run.log" 2>&1) || rc=$?
  while IFS= read -r line; do
    case $line in
      "ok - "*) ok "guest: ${line#ok - }" ;;
      "not ok - "*) not_ok "guest: ${line#not ok - }" ;;
      "# "*) echo "$line" ;;
    esac
  done < <(tr -d '\r' <"$out/checks.log" 2>/dev/null || true)
  check "the guest ran $script to its end (exit $rc)" test "$rc" -eq 0
  if last_failed; then
    tail -30 "$out/run.log" | sed 's/^/# /'
    [ -f "$out/guest-console.log" ] && tail -40 "$out/guest-console.log" | tr -d '\r' | sed 's/^/# console: /'
  fi
  return 0
}
