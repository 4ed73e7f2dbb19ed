#!/usr/bin/env bash
# Hostile sweep (issue 13): every TCP state by every combination of FIN SYN
# RST PSH ACK URG by every sequence and ACK edge (sweep.py says which), each
# frame on a fresh connection brought into the state just before, from an
# AF_PACKET socket in the namespace, against live dpnet servers on net_tap:
#   echoserver: SYN_RCVD, ESTABLISHED, CLOSE_WAIT, LAST_ACK, then the answers
#     RFC 793/5961 prescribe (challenge ACKs, ACK of out-of-window data, ...);
#   httpd, which closes first after an HTTP/1.0 answer: FIN_WAIT_1,
#     FIN_WAIT_2, CLOSING, TIME_WAIT (echoserver never closes first);
#   net_latency, connecting to us: SYN_SENT.
# Throughout, a Linux connection (the keeper) echoes or gets /hello every
# 50 ms; after each state a fresh Linux connection works; each server ends
# with exit 0 on SIGINT and no sanitizer report. If a server stops answering,
# the frames of the last chunk are replayed one by one against a new server
# to name the frame, and the sweep goes on with a new server.
source "$(dirname "$0")/lib.sh"

NS=dpn-swp-$TAG
SIP=10.79.0.2 PIP=10.79.0.1
SW="$HERE/sweep.py"
ROOT=/tmp/dpn-swp-root-$TAG CONF=/tmp/dpn-swp-$TAG.conf CRASH=/tmp/dpn-swp-crash-$TAG.json
mkdir -p "$ROOT"
track_file "$ROOT"; track_file "$CONF"; track_file "$CRASH"; track_file "$CRASH.frame"
# CLOSE_WAIT: with our window at 0, a send buffer of 4096 B leaves two of
# four 1400 B segments waiting in echoserver, so it does not close on our FIN.
echo 'tcp: { sndbuf = 4096; };' >"$CONF"
new_ns "$NS"
nsx() { ip netns exec "$NS" "$@"; }
# The kernel must not reset the connections sweep.py drives (its ports:
# 1025..49999; SYN_SENT: dpnet connects to port 7777 of the kernel's address).
nsx iptables -A OUTPUT -p tcp --sport 1025:49999 --tcp-flags RST RST -j DROP
nsx iptables -A OUTPUT -p tcp --sport 7777 --tcp-flags RST RST -j DROP
nsx sysctl -qw net.ipv4.ip_local_port_range="50000 60999"

FRAMES=0 NSRV=0 SPID='' KPID='' KIND='' LOG='' KLOG='' IFC='' MAC=''
T_START=$(date +%s)

# sweep.py's ok / not ok lines become ours; its "# checks N frames M" adds up.
relay() { # file
  local line
  while IFS= read -r line; do
    case $line in
      "ok - "*) ok "${line#ok - }" ;;
      "not ok - "*) not_ok "${line#not ok - }" ;;
      "# checks "*) FRAMES=$((FRAMES + $(awk '{print $5}' <<<"$line"))) ;;
      *) echo "$line" ;;
    esac
  done <"$1"
}

# start_server echo|http: a new server (and interface) of that kind.
start_server() {
  KIND=$1 NSRV=$((NSRV + 1))
  IFC=ds$NSRV$TAG LOG=/tmp/dpn-swp-$NSRV-$TAG.log
  track_file "$LOG"
  local app=("$B/app/echoserver") args=(-c "$CONF" --port 7)
  if [ "$KIND" = http ]; then
    app=("$B/app/httpd") args=(--port 7 --root "$ROOT" --max-conns 8192)
  fi
  ip netns exec "$NS" "${app[@]}" --no-pci -l 1 --log-level=pmd.net.tap:error \
    --vdev="net_tap0,iface=$IFC" -- --ip $SIP/24 --poll hybrid "${args[@]}" >"$LOG" 2>&1 &
  SPID=$!; track_pid "$SPID"
  wait_log "$LOG" "listening on port" 20 || return 1
  nsx ip addr add $PIP/24 dev "$IFC"
  nsx ip link set "$IFC" up
  for _ in $(seq 50); do nsx ping -c 1 -W 1 $SIP >/dev/null 2>&1 && break; sleep 0.1; done
  MAC=$(nsx ip neigh show $SIP dev "$IFC" | awk '{print $3}')
}

start_keeper() {
  KLOG=/tmp/dpn-swp-keeper-$NSRV-$TAG.log; track_file "$KLOG"
  ip netns exec "$NS" "$PY" "$SW" keeper "$KIND" $SIP 7 600 >"$KLOG" 2>&1 &
  KPID=$!; track_pid $KPID
  wait_log "$KLOG" "^rt 5$" 10 || true
}

stop_keeper() {
  local krc=0
  kill -USR1 "$KPID" 2>/dev/null || true
  wait "$KPID" || krc=$?
  grep -E '^(keeper:|FAIL)' "$KLOG" | sed 's/^/# /' || true
  check "$KIND server $NSRV: keeper connection worked throughout ($(grep -c '^rt ' "$KLOG") round trips)" \
    test "$krc" -eq 0
}

sanitizer_clean() { # log
  if grep -qE "AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:|Assertion|assert" "$1"; then
    grep -E -A 20 "AddressSanitizer|UndefinedBehaviorSanitizer|runtime error:|Assertion|assert" "$1" |
      head -30 | sed 's/^/#   /'
    return 1
  fi
}

stop_server() {
  check "$KIND server $NSRV: clean shutdown on SIGINT (exit 0)" stop_proc "$SPID"
  check "$KIND server $NSRV: no sanitizer report or assertion in its log" sanitizer_clean "$LOG"
  grep -E "^(echoserver: connections|httpd:|dpnet stats)" "$LOG" | cut -c1-400 | sed 's/^/# /' || true
}

# sweep.py's arguments for the current server.
common() { COMMON=(--iface "$IFC" --mac "$MAC" --dip "$SIP" --pip "$PIP" --port 7 --pid "$SPID"
  --keeper-log "$KLOG" --kind "$KIND" --crash-file "$CRASH"); }

# sweep_state STATE: one state against the current server. When the server
# stops answering: its log, the replay that names the frame, a new server,
# and the sweep goes on after the chunk that stopped it (at most 5 times).
sweep_state() {
  local st=$1 out=/tmp/dpn-swp-out-$TAG.txt rc k lo start=0 crashes=0
  track_file "$out"
  # Each state of a server its own source ports: never a 4-tuple that an
  # earlier state left in TIME_WAIT or half-closed.
  case $st in SYN_RCVD | FIN_WAIT_1) k=0 ;; ESTABLISHED | FIN_WAIT_2) k=1 ;;
    CLOSE_WAIT | CLOSING) k=2 ;; *) k=3 ;; esac
  lo=$((1025 + k * 11000))
  while :; do
    rm -f "$CRASH" "$CRASH.frame"
    rc=0
    common
    timeout 150 ip netns exec "$NS" "$PY" "$SW" server --state "$st" --start "$start" "${COMMON[@]}" \
      --port-lo $lo --port-hi $((lo + 10999)) >"$out" 2>&1 || rc=$?
    relay "$out"
    [ "$rc" -eq 3 ] || { check "$st: sweep.py ran to the end (exit $rc)" test "$rc" -le 1; return 0; }
    crashes=$((crashes + 1))
    start=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["resume"])' "$CRASH")
    sleep 0.5
    echo "# $st: the $KIND server stopped answering; its log ends:"
    tail -3 "$LOG" | sed 's/^/#   /'
    kill -KILL "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
    kill -KILL "$KPID" 2>/dev/null || true
    wait "$KPID" 2>/dev/null || true
    start_server "$KIND"
    rc=0
    common
    timeout 60 ip netns exec "$NS" "$PY" "$SW" replay "${COMMON[@]}" >"$out" 2>&1 || rc=$?
    relay "$out"
    if [ -s "$CRASH.frame" ]; then
      not_ok "$st: the server survives every frame; this one stops it: $(cat "$CRASH.frame")"
      grep -E -A3 "Assertion|assert|AddressSanitizer|runtime error" "$LOG" | head -8 | sed 's/^/#   /'
    fi
    kill -KILL "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
    start_server "$KIND"
    start_keeper
    [ "$crashes" -lt 5 ] || { not_ok "$st: sweep given up after 5 servers stopped"; return 0; }
  done
}

# ---- echoserver: SYN_RCVD, ESTABLISHED, CLOSE_WAIT, LAST_ACK, RFC answers
start_server echo
check "echoserver answers ping; MAC $MAC" test -n "$MAC"
start_keeper
for st in ${SWEEP_STATES:-SYN_RCVD ESTABLISHED CLOSE_WAIT LAST_ACK}; do
  case $st in SYN_RCVD | ESTABLISHED | CLOSE_WAIT | LAST_ACK) sweep_state "$st" ;; esac
done
if [ -z "${SWEEP_STATES:-}" ] || [[ " $SWEEP_STATES " == *" RFC "* ]]; then
  out=/tmp/dpn-swp-rfc-$TAG.txt; track_file "$out"
  rc=0
  common
  timeout 120 ip netns exec "$NS" "$PY" "$SW" rfc "${COMMON[@]}" --port-lo 49000 >"$out" 2>&1 || rc=$?
  relay "$out"
  check "RFC checks ran to the end (exit $rc)" test "$rc" -le 1
fi
stop_keeper
stop_server

# ---- httpd: FIN_WAIT_1, FIN_WAIT_2, CLOSING, TIME_WAIT
if [ -z "${SWEEP_STATES:-}" ] || [[ "$SWEEP_STATES" == *FIN_WAIT* || "$SWEEP_STATES" == *CLOSING* ||
  "$SWEEP_STATES" == *TIME_WAIT* ]]; then
  start_server http
  start_keeper
  for st in ${SWEEP_STATES:-FIN_WAIT_1 FIN_WAIT_2 CLOSING TIME_WAIT}; do
    case $st in FIN_WAIT_1 | FIN_WAIT_2 | CLOSING | TIME_WAIT) sweep_state "$st" ;; esac
  done
  stop_keeper
  stop_server
fi

# ---- net_latency (dpnet as the client): SYN_SENT
if [ -z "${SWEEP_STATES:-}" ] || [[ " $SWEEP_STATES " == *" SYN_SENT "* ]]; then
  NSRV=$((NSRV + 1)) IFC=ds$NSRV$TAG
  CLOG=/tmp/dpn-swp-cli-$TAG.log; track_file "$CLOG"
  out=/tmp/dpn-swp-cli-out-$TAG.txt; track_file "$out"
  ip netns exec "$NS" "$B/app/net_latency" --no-pci -l 1 --log-level=pmd.net.tap:error \
    --vdev="net_tap0,iface=$IFC" -- --ip $SIP/24 --poll hybrid --server $PIP --port 7777 \
    --conns 300 --count 1 --warmup 0 --timeout 40 >"$CLOG" 2>&1 &
  CPID=$!; track_pid $CPID
  for _ in $(seq 200); do nsx ip link show "$IFC" >/dev/null 2>&1 && break; sleep 0.1; done
  nsx ip addr add $PIP/24 dev "$IFC"
  nsx ip link set "$IFC" up
  rc=0
  timeout 60 ip netns exec "$NS" "$PY" "$SW" client --iface "$IFC" --mac auto --dip $SIP --pip $PIP \
    --port 7777 --pid $CPID --conns 300 >"$out" 2>&1 || rc=$?
  relay "$out"
  crc=0
  for _ in $(seq 100); do kill -0 $CPID 2>/dev/null || break; sleep 0.1; done
  kill -0 $CPID 2>/dev/null && kill -INT $CPID
  wait $CPID || crc=$?
  check "SYN_SENT: net_latency's connection fails on the acceptable RST ($(grep -o \
    'connection [0-9]* failed.*' "$CLOG" | head -1))" grep -q "connection [0-9]* failed: Connection refused" "$CLOG"
  check "SYN_SENT: net_latency exits 1, not on a signal (exit $crc)" test "$crc" -eq 1
  check "SYN_SENT: no sanitizer report or assertion in net_latency's log" sanitizer_clean "$CLOG"
fi

echo "# hostile checks: $((FRAMES + _pass + _fail)) ($FRAMES sweep frames, each answered by the" \
  "server; $((_pass + _fail)) assertions), in $(($(date +%s) - T_START)) s"
finish
