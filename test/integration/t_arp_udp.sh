#!/usr/bin/env bash
# UDP from impossible sources and ARP spoofing against a live server, seen
# from the wire (arp_udp.py, scapy on the namespace's tap interface), for a
# standalone echoserver and for one attached to dpnetd (whose lwIP answers
# ARP and publishes the neighbor table the worker sends with):
#  - datagrams to the UDP echo socket from broadcast, multicast, 0/8,
#    loopback, class E or the server's own address are never answered,
#    on dpnet's fast path and on lwIP's; normal datagrams are echoed, and
#    the application saw exactly those;
#  - a gratuitous ARP flood claiming the peer's address for another MAC,
#    while a Linux TCP connection echoes: dpnet keeps sending to the real
#    MAC, probes it, and never answers the flood's MAC;
#  - a real MAC change of the peer (the kernel side's address changed, one
#    announcement) takes effect within 5 s, once the old MAC stopped
#    answering probes; a fresh connection then echoes.
source "$(dirname "$0")/lib.sh"

NS=dpn-au-$TAG IFC=da$TAG PFX=dpnau$TAG
SIP=10.82.0.2 PIP=10.82.0.1
new_ns "$NS"
track_prefix "$PFX"
nsx() { ip netns exec "$NS" "$@"; }

# Run an arp_udp.py mode; its ok / not ok lines count here. Prints "echoed N".
run_au() {
  local out=/tmp/dpn-au-out-$TAG.log rc=0
  track_file "$out"
  timeout 60 ip netns exec "$NS" $PY "$HERE/arp_udp.py" "$@" >"$out" 2>&1 || rc=$?
  while IFS= read -r line; do
    case $line in
      "ok - "*) ok "$MODE: ${line#ok - }" ;;
      "not ok - "*) not_ok "$MODE: ${line#not ok - }" ;;
      "echoed "*) ECHOED=${line#echoed } ;;
      *) echo "$line" ;;
    esac
  done <"$out"
  check "$MODE: arp_udp.py $1 ran to the end (exit $rc)" test "$rc" -eq 0 -o "$rc" -eq 1
}

# The whole sequence against the server now behind the tap (MODE names it).
scenario() {
  local dpn_mac=$1 slog=$2
  local klog=/tmp/dpn-au-keeper-$TAG.log krc=0 n0 n1
  track_file "$klog"
  check "$MODE: ping (ARP both ways)" nsx ping -c 2 -i 0.2 -W 2 $SIP

  ECHOED=0
  run_au udp "$IFC" "$dpn_mac" $SIP $PIP 7

  ip netns exec "$NS" $PY "$HERE/arp_udp.py" keeper $SIP 7 60 >"$klog" 2>&1 &
  local keeper=$!; track_pid $keeper
  wait_log "$klog" "^rt 5$" 10 || true
  n0=$(grep -c '^rt ' "$klog" || true)
  run_au flood "$IFC" "$dpn_mac" $SIP $PIP 4
  n1=$(grep -c '^rt ' "$klog" || true)
  kill -USR1 $keeper 2>/dev/null || true
  wait $keeper || krc=$?
  grep -E '^(keeper:|FAIL)' "$klog" | sed 's/^/# /' || true
  check "$MODE: the Linux connection echoed throughout the flood ($((n1 - n0)) round trips in it)" \
    test "$krc" -eq 0 -a "$((n1 - n0))" -ge 20

  # A real move: the peer's MAC changes (arp_udp.py changes it), it
  # announces itself once.
  run_au failover "$IFC" "$dpn_mac" $SIP $PIP 02:00:00:82:00:01
  check "$MODE: a fresh connection echoes after the move" \
    nsx $PY "$HERE/peer.py" concurrent $SIP 7 5
}

# ---- standalone: the echoserver's own lwIP does ARP ----
MODE=standalone
LOG=/tmp/dpn-au-$TAG.log
start_tap_server "$NS" "$IFC" $SIP/24 $PIP/24 "$LOG" --port 7 -v
dpn_mac=$(grep -o 'mac [0-9A-F:]*' "$LOG" | awk '{print tolower($2)}')
check "$MODE: dpnet MAC found in the log ($dpn_mac)" test -n "$dpn_mac"
scenario "$dpn_mac" "$LOG"
check "$MODE: echoserver stops cleanly" stop_proc "$SERVER_PID"
udp=$(sed -n 's/.*udp \([0-9]*\) datagrams.*/\1/p' "$LOG")
check "$MODE: the application saw only the normal datagrams ($udp, expected $ECHOED)" \
  test "${udp:-x}" = "$ECHOED"
grep -E "^(echoserver: conn|dpnet stats)" "$LOG" | sed 's/^/# /'

# ---- attached: dpnetd does ARP, the worker sends with its neighbor table ----
MODE=attached
DLOG=/tmp/dpn-au-d-$TAG.log WLOG=/tmp/dpn-au-w-$TAG.log
track_file "$DLOG"
track_file "$WLOG"
nsx ip link del "$IFC" 2>/dev/null || true
start_dpnetd "$NS" "$IFC" "$PFX" $SIP/24 $PIP/24 "$DLOG" --queues 2
ip netns exec "$NS" "$B/app/echoserver" --no-pci --proc-type=secondary --file-prefix "$PFX" \
  --log-level=pmd.net.tap:error --lcores=7@1 -- --port 7 --poll hybrid -v >"$WLOG" 2>&1 &
WPID=$!; track_pid $WPID
wait_log "$WLOG" "listening on port" 15
dpn_mac=$(grep -oi 'mac [0-9A-F:]*' "$DLOG" | head -1 | awk '{print tolower($2)}')
check "$MODE: dpnetd's MAC found in its log ($dpn_mac)" test -n "$dpn_mac"
scenario "$dpn_mac" "$WLOG"
check "$MODE: the worker stops cleanly" stop_proc $WPID
udp=$(sed -n 's/.*udp \([0-9]*\) datagrams.*/\1/p' "$WLOG")
check "$MODE: the application saw only the normal datagrams ($udp, expected $ECHOED)" \
  test "${udp:-x}" = "$ECHOED"
check "$MODE: dpnetd stops cleanly" stop_proc $DPID
for f in "$LOG" "$DLOG" "$WLOG"; do
  if grep -qE "AddressSanitizer|UndefinedBehaviorSanitizer|runtime error:" "$f"; then
    grep -E -A 30 "AddressSanitizer|UndefinedBehaviorSanitizer|runtime error:" "$f" | head -40 |
      sed 's/^/#   /'
    not_ok "no sanitizer report in $(basename "$f")"
  else
    ok "no sanitizer report in $(basename "$f")"
  fi
done
finish
