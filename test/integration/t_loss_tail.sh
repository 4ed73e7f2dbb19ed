#!/usr/bin/env bash
# Round-trip tail under 5% loss each way: 64 B ping-pongs from a Python
# client (loss_tail.py) against echoserver on net_tap and, at the same time
# from the same namespace, against the Linux kernel (kecho) behind a veth.
# iptables drops LOSS (default 0.05) of the frames in each direction on the
# client's side of both links. LT_CONNS connections per server (default 12),
# LT_ROUNDS round trips each (default 500), every round trip timed.
#
# Twice: on a fresh server, and right after a SYN flood has filled its
# listener's backlog (new connections then open through SYN cookies; the
# Linux side is not flooded: it is the reference).
#
# A lost segment at the tail (the request, or its echo) is recovered only by
# a time-out: the client's (Linux: a tail loss probe after ~0.2 s, then the
# RTO of 0.2 s doubling: k losses in a row cost 0.2, 0.4, 0.8, 1.6, 3.2 s)
# or the server's (dpnet: stack/tcp_rto.c, 0.15, 0.3, 0.6, 1.2, 2.4 s).
# The worst stall of a run is its longest chain of losses, a random draw:
# checks compare with Linux in the same run, or with what Linux's own
# schedule gives for five losses in a row (3.2 s, + 0.3 s for a busy
# two-core machine: BOUND). Six in a row (about 7 * 0.05^6 per round trip,
# 12000 round trips a run) come about once in a thousand runs.
#   - no round trip of either server waits past the client's timeout (10 s);
#   - dpnet's worst round trip <= max(Linux's worst, BOUND);
#   - dpnet's round trips above 1 s <= Linux's + 3 (each takes four losses
#     in a row or so; their count is Poisson with a mean well under 1).
source "$(dirname "$0")/lib.sh"

LOSS=${LT_LOSS:-0.05}
CONNS=${LT_CONNS:-12}
ROUNDS=${LT_ROUNDS:-500}
BOUND=3.5
NS=dpn-lt-$TAG NSK=dpn-ltk-$TAG IFC=dl$TAG VC=vl$TAG VK=vk$TAG
SIP=10.84.0.2 PIP=10.84.0.1 KIP=10.84.1.2 CIP=10.84.1.1
LOG=/tmp/dpn-lt-$TAG.log KLOG=/tmp/dpn-lt-kecho-$TAG.log
new_ns "$NS"
new_ns "$NSK"
nsx() { ip netns exec "$NS" "$@"; }

# dpnet: echoserver on net_tap; its kernel side is in $NS.
start_tap_server "$NS" "$IFC" $SIP/24 $PIP/24 "$LOG" --port 7 ||
  { not_ok "echoserver start"; finish; exit 1; }
# Linux: kecho in $NSK, a veth to $NS.
ip link add "$VC" netns "$NS" type veth peer name "$VK" netns "$NSK"
nsx ip addr add $CIP/24 dev "$VC"
nsx ip link set "$VC" up
ip netns exec "$NSK" ip addr add $KIP/24 dev "$VK"
ip netns exec "$NSK" ip link set "$VK" up
track_file "$KLOG"
ip netns exec "$NSK" taskset -c 1 "$B/app/kecho" -p 7 -b $KIP >"$KLOG" 2>&1 &
track_pid $!
wait_log "$KLOG" listening 10 || { not_ok "kecho start"; finish; exit 1; }
check "dpnet and Linux answer ping" bash -c "ip netns exec $NS ping -c 1 -W 2 $SIP >/dev/null &&
  ip netns exec $NS ping -c 1 -W 2 $KIP >/dev/null"
dpn_mac=$(grep -o 'mac [0-9A-F:]*' "$LOG" | awk '{print tolower($2)}')

# Handshakes are spared: after a lost SYN the Linux client starts its data
# at a 3 s RTO (RFC 6298 5.7), whichever server it talks to.
for ifc in "$IFC" "$VC"; do
  nsx iptables -A INPUT -i "$ifc" -p tcp --tcp-flags SYN SYN -j ACCEPT
  nsx iptables -A OUTPUT -o "$ifc" -p tcp --tcp-flags SYN SYN -j ACCEPT
  nsx iptables -A INPUT -i "$ifc" -m statistic --mode random --probability "$LOSS" -j DROP
  nsx iptables -A OUTPUT -o "$ifc" -m statistic --mode random --probability "$LOSS" -j DROP
done

# phase NAME: one measurement of both servers; checks and "# loss tail" line.
phase() {
  local name=$1 out=/tmp/dpn-lt-$TAG-$1.out rc=0
  track_file "$out"
  nsx taskset -c 0 $PY "$HERE/loss_tail.py" run dpnet=$SIP:7 linux=$KIP:7 \
    --conns "$CONNS" --rounds "$ROUNDS" --timeout 10 --budget 100 >"$out" 2>&1 || rc=$?
  grep '^#' "$out" | sed "s/^# /# $name: /"
  check "$name: every connection to both servers echoed correctly (exit $rc)" test "$rc" -eq 0
  local d l
  d=$(grep '^dpnet ' "$out" || true) l=$(grep '^linux ' "$out" || true)
  if [ -z "$d" ] || [ -z "$l" ]; then not_ok "$name: figures printed"; return; fi
  # fields: NAME n N p50 A p99 B p999 C max D over1s E timeouts F conns_failed G
  read -r _ _ dn _ d50 _ d99 _ d999 _ dmax _ d1s _ dto _ <<<"$d"
  read -r _ _ ln _ l50 _ l99 _ l999 _ lmax _ l1s _ lto _ <<<"$l"
  echo "# loss tail ($name, loss $LOSS each way, $CONNS x $ROUNDS round trips):" \
    "dpnet max $dmax s (p99.9 $d999, p99 $d99, p50 $d50; $d1s over 1 s; n $dn)," \
    "linux max $lmax s (p99.9 $l999, p99 $l99, p50 $l50; $l1s over 1 s; n $ln)"
  check "$name: at least 90% of the round trips done by both ($dn, $ln)" \
    test "$dn" -ge $((CONNS * ROUNDS * 9 / 10)) -a "$ln" -ge $((CONNS * ROUNDS * 9 / 10))
  check "$name: no dpnet round trip waited past 10 s ($dto)" test "$dto" -eq 0
  check "$name: no Linux round trip waited past 10 s ($lto)" test "$lto" -eq 0
  check "$name: dpnet's worst stall $dmax s <= max(Linux's $lmax s, $BOUND s)" \
    awk -v d="$dmax" -v l="$lmax" -v b=$BOUND 'BEGIN { exit !(d <= (l > b ? l : b)) }'
  check "$name: dpnet round trips over 1 s ($d1s) <= Linux's ($l1s) + 3" \
    test "$d1s" -le $((l1s + 3))
}

phase fresh
# A SYN flood from spoofed addresses fills both listeners' backlogs (255
# half-open in dpnet); the next connections open through SYN cookies.
nsx $PY "$HERE/loss_tail.py" synflood "$IFC" "$dpn_mac" $SIP 7 10.84.0 2000 | sed 's/^/# /'
phase after-flood

check "echoserver still running" kill -0 "$SERVER_PID"
check "clean shutdown on SIGINT (exit 0)" stop_proc "$SERVER_PID"
grep -E "^(echoserver: connections|dpnet stats)" "$LOG" | sed 's/^/# /'
check "the flood was answered with SYN cookies" grep -qE "syn cookies [1-9]" "$LOG"
if grep -qE "AddressSanitizer|UndefinedBehaviorSanitizer|runtime error:" "$LOG"; then
  grep -E -A 30 "AddressSanitizer|UndefinedBehaviorSanitizer|runtime error:" "$LOG" | head -60 | sed 's/^/#   /'
  not_ok "no sanitizer report in the server's log"
else
  ok "no sanitizer report in the server's log"
fi
finish
