#!/usr/bin/env bash
# tools/guest.sh: a Debian-kernel guest under qemu runs a script with this
# machine's root, and gives what this kernel lacks. In the guest (this same
# file with --in-guest), inside a namespace: testpmd on net_tap with 4 queues
# accepts an rte_flow rule (tc flower + multiq + skbedit) steering UDP port
# 5000 to queue 2, and the datagrams the namespace's kernel sends land on
# queue 2 alone while other flows spread; netem delays loopback. The results
# come back through the shared output directory and are judged here. Also:
# the script's exit status, environment and directory pass through, and
# --timeout stops a guest that does not finish (124, no qemu left behind).

if [ "${1:-}" = --in-guest ]; then
  # ---------------------------------------------------------- in the guest
  # Record, do not judge: every step writes what it saw to $GUEST_OUT.
  set -uo pipefail
  O=$GUEST_OUT NS=dpn-g IFC=gtap0 TP=/tmp/testpmd.in
  LOG=$O/testpmd.log
  uname -r >"$O/kver"
  pwd >"$O/cwd"
  printf '%s\n' "${DPNET_GUEST_PROBE:-unset}" >"$O/probe"
  ip netns add $NS && ip netns exec $NS ip link set lo up
  nsx() { ip netns exec $NS "$@"; }
  # wait_log PATTERN SECONDS
  wait_log() { for _ in $(seq $(($2 * 5))); do grep -q "$1" "$LOG" && return 0; sleep 0.2; done; return 1; }

  # netem: 20 ms each way on loopback, so ping's RTT is at least 40 ms.
  nsx tc qdisc add dev lo root netem delay 20ms; echo $? >"$O/netem.rc"
  nsx tc qdisc show dev lo >"$O/netem.show" 2>&1
  nsx ping -c 3 -i 0.2 -W 3 127.0.0.1 >"$O/netem.ping" 2>&1

  # testpmd reads its commands from a fifo held open on fd 3.
  mkfifo $TP
  nsx stdbuf -oL dpdk-testpmd --no-pci -l 0,1 -n 1 --in-memory --vdev=net_tap0,iface=$IFC \
    -- -i --rxq=4 --txq=4 --total-num-mbufs=16384 --forward-mode=rxonly <$TP >"$LOG" 2>&1 &
  TPID=$!
  exec 3>$TP
  wait_log '^Done' 90 || echo "testpmd did not start" >>"$O/notes"
  echo 'flow create 0 ingress pattern eth / ipv4 / udp dst is 5000 / end actions queue index 2 / end' >&3
  wait_log 'Flow rule #0 created\|error\|fail' 30
  echo start >&3
  # No IPv6 and a static neighbour: the tap carries only what we send.
  nsx sysctl -qw net.ipv6.conf.$IFC.disable_ipv6=1
  nsx ip addr add 10.88.0.1/24 dev $IFC
  nsx ip link set $IFC up
  nsx ip neigh replace 10.88.0.2 lladdr 02:00:00:00:88:02 dev $IFC nud permanent

  # counts LABEL: per-queue RX packets from `show port xstats 0`, as
  # "LABEL q0 q1 q2 q3" in counts (the n-th statistics block in the log).
  nblk=0
  counts() {
    nblk=$((nblk + 1))
    echo 'show port xstats 0' >&3
    for _ in $(seq 50); do
      [ "$(grep -c 'NIC extended statistics for port 0' "$LOG")" -ge $nblk ] &&
        [ "$(awk -v n=$nblk '/NIC extended statistics for port 0/ {b++} b == n && /^rx_q3_packets:/' "$LOG")" ] && break
      sleep 0.2
    done
    awk -v n=$nblk -v l="$1" '/NIC extended statistics for port 0/ {b++}
      b == n && /^rx_q[0-3]_packets:/ {q[substr($1, 5, 1)] = $2}
      END {print l, q[0] + 0, q[1] + 0, q[2] + 0, q[3] + 0}' "$LOG" >>"$O/counts"
  }
  # settle TOTAL: wait (bounded) until testpmd has received TOTAL frames.
  settle() {
    for _ in $(seq 20); do
      counts probe
      [ "$(tail -1 "$O/counts" | awk '{print $2 + $3 + $4 + $5}')" -ge "$1" ] && return 0
      sleep 0.5
    done
  }
  counts before
  base=$(tail -1 "$O/counts" | awk '{print $2 + $3 + $4 + $5}')
  # 50 datagrams to port 5000, each from a new socket (a new source port).
  # shellcheck disable=SC2016 # expanded by the inner bash
  nsx bash -c 'for i in $(seq 50); do echo "dpnet $i" >/dev/udp/10.88.0.2/5000; done'
  settle $((base + 50)); counts udp5000
  # shellcheck disable=SC2016
  nsx bash -c 'for i in $(seq 50); do echo "other $i" >/dev/udp/10.88.0.2/6000; done'
  settle $((base + 100)); counts udp6000
  echo quit >&3
  exec 3>&-
  for _ in $(seq 100); do kill -0 $TPID 2>/dev/null || break; sleep 0.2; done
  kill -KILL $TPID 2>/dev/null
  wait $TPID; echo $? >"$O/testpmd.rc"
  ip netns del $NS
  echo finished >"$O/done"
  exit 42 # distinctive: the host checks it comes back as guest.sh's status
fi

# ------------------------------------------------------------- on the host
source "$(dirname "$0")/lib.sh"
G=$(cd "$HERE/../.." && pwd)/tools/guest.sh
OUT=$(mktemp -d /tmp/dpn-guest.XXXXXX); track_file "$OUT"

# Idempotent; the first time it downloads Debian's kernel (~70 MB).
rc=0
bash "$G" prepare >"$OUT/prepare.log" 2>&1 || rc=$?
check "guest kernel and initramfs prepared (exit $rc)" test "$rc" -eq 0
if last_failed; then sed 's/^/# /' "$OUT/prepare.log"; finish; exit; fi

# Run from test/integration: the guest starts the script in the same directory.
t0=$SECONDS rc=0
(cd "$HERE" && DPNET_GUEST_PROBE="probe $TAG" timeout 330 bash "$G" run --timeout 300 \
  --out "$OUT/res" -- t_guest.sh --in-guest) >"$OUT/run.log" 2>&1 || rc=$?
echo "# guest run: $((SECONDS - t0)) s"
R=$OUT/res
check "the script's exit status comes back (42, got $rc)" test "$rc" -eq 42
last_failed && tail -50 "$OUT/run.log" | sed 's/^/# /'
check "the script ran to its end" test -f "$R/done"
check "guest runs Debian's kernel ($(cat "$R/kver" 2>/dev/null), here $(uname -r))" \
  bash -c "grep -q -- '-amd64\$' '$R/kver' && [ \"\$(cat '$R/kver')\" != \"\$(uname -r)\" ]"
check "DPNET_* variables pass into the guest" grep -qx "probe $TAG" "$R/probe"
check "the script starts in the caller's directory" grep -qx "$HERE" "$R/cwd"
check "qemu's console log is kept" grep -q 'guest: script exited with status 42' "$R/guest-console.log"

check "netem: tc qdisc add ... netem delay 20ms succeeds" grep -qx 0 "$R/netem.rc"
check "... and is in place" grep -q 'qdisc netem .*delay 20ms' "$R/netem.show"
rtt=$(sed -n 's|^rtt .* = [0-9.]*/\([0-9.]*\)/.*|\1|p' "$R/netem.ping" 2>/dev/null)
check "... loopback ping RTT >= 40 ms (avg ${rtt:-none} ms)" \
  bash -c "[ -n '$rtt' ] && awk 'BEGIN {exit !($rtt >= 40)}'"
last_failed && sed 's/^/# /' "$R/netem.ping" 2>/dev/null

TLOG=$R/testpmd.log
check "testpmd starts on net_tap with 4 RX queues" grep -q '^Done' "$TLOG"
check "rte_flow rule 'udp dst is 5000 -> queue 2' created on net_tap" grep -q 'Flow rule #0 created' "$TLOG"
last_failed && grep -i -m5 'flow\|error\|fail' "$TLOG" | sed 's/^/# /'
sed 's/^/# rx per queue (q0 q1 q2 q3): /' "$R/counts" 2>/dev/null | grep -v ': probe ' || true
# delta FROM TO Q: packets queue Q got between the rows labelled FROM and TO.
delta() {
  awk -v f="$1" -v t="$2" -v q="$3" '$1 == f {a = $(q + 2)} $1 == t {b = $(q + 2)} END {print b - a}' "$R/counts"
}
d=$(for q in 0 1 2 3; do delta before udp5000 $q; done | tr '\n' ' ')
check "50 datagrams to UDP port 5000 all on queue 2, none elsewhere (per queue: $d)" \
  test "$d" = "0 0 50 0 "
sum=0 spread=0
for q in 0 1 2 3; do
  n=$(delta udp5000 udp6000 $q); sum=$((sum + n))
  [ "$q" -eq 2 ] || [ "$n" -eq 0 ] || spread=1
done
check "50 flows to port 6000 all reached testpmd ($sum), spread beyond queue 2 (per queue: $(
  for q in 0 1 2 3; do delta udp5000 udp6000 $q; done | tr '\n' ' '))" test "$sum" -eq 50 -a "$spread" -eq 1
check "testpmd quit cleanly" grep -qx 0 "$R/testpmd.rc"
last_failed && tail -20 "$TLOG" | sed 's/^/# /'

# A guest that does not finish is stopped: 124, and no qemu stays behind.
printf 'sleep 1000\n' >"$OUT/sleep.sh"
t0=$SECONDS rc=0
timeout 120 bash "$G" run --timeout 20 --out "$OUT/slow" -- "$OUT/sleep.sh" >"$OUT/slow.log" 2>&1 || rc=$?
took=$((SECONDS - t0))
check "--timeout 20: exit 124 (got $rc) within 40 s (took $took s)" test "$rc" -eq 124 -a "$took" -le 40
# no_qemu DIR: no qemu serves DIR (a function: a `bash -c` would match itself).
no_qemu() { ! pgrep -f -- "^qemu-system-x86_64 .*path=$1," >/dev/null; }
check "... and its qemu is gone" no_qemu "$OUT/slow"
check "the first run's qemu is gone too" no_qemu "$R"
finish
