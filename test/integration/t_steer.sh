#!/usr/bin/env bash
# dpnetd's steering on net_tap, both ways: kernel steering (app/dpnetd/
# steer_tun.c: tun runs dpnetd's eBPF program to pick each frame's queue, so
# attached workers read their own queue and dpnetd sees only ARP, ICMP and
# unclaimed frames) and software steering (dpnetd reads every queue and
# hands frames over). In both, flows never move: 200 connections to two
# workers of one application keep echoing when a third joins, and when one
# of the first two is killed with -9 only its own connections fail; new
# connections spread over the live workers.
source "$(dirname "$0")/lib.sh"

run_mode() { # kernel | software
local MODE=$1
echo "# ---- $MODE steering"

local M=${MODE:0:1}
NS=dpn-k$M-$TAG IFC=dk$M$TAG PFX=dpnk$M$TAG
SIP=10.81.0.2 PIP=10.81.0.1
N=200
DLOG=/tmp/dpn-k$M-$TAG.log
track_prefix "$PFX"
track_file "$DLOG"
new_ns "$NS"
nsx() { ip netns exec "$NS" "$@"; }
peer() { ip netns exec "$NS" $PY "$HERE/peer.py" "$@"; }
ctl() { "$B/app/dpnetctl" --file-prefix "$PFX" "$@"; }

start_dpnetd "$NS" "$IFC" "$PFX" $SIP/24 $PIP/24 "$DLOG" --queues 4 --steering "$MODE"
check "dpnetd: $MODE steering" grep -q "$MODE steering" "$DLOG"
last_failed && tail -5 "$DLOG" | sed 's/^/# /'
check "dpnetd answers ping (ARP and ICMP on queue 0)" nsx ping -c 2 -i 0.2 -W 2 -q $SIP

# Workers of one application: same secret, own lcore ids.
export DPNET_APP_SECRET
DPNET_APP_SECRET=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
declare -A WPID WLOG
start_worker() { # name lcore cpu
  WLOG[$1]=/tmp/dpn-k$M-$1-$TAG.log; track_file "${WLOG[$1]}"
  ip netns exec "$NS" "$B/app/echoserver" --no-pci --proc-type=secondary --file-prefix "$PFX" \
    --log-level=pmd.net.tap:error --lcores="$2@$3" -- --app web --port 7 --poll hybrid \
    >"${WLOG[$1]}" 2>&1 &
  WPID[$1]=$!; track_pid "${WPID[$1]}"
  wait_log "${WLOG[$1]}" "listening on port 7" 15
}
# field F of the workers table for the worker with pid P
wfield() { ctl workers | awk -v p="$1" -v f="$2" '$3 == p { print $f }'; }
daemon_rx() { ctl stats | sed -n 's/^dpnetd: rx \([0-9]*\) frames.*/\1/p'; }

start_worker a 5 1
start_worker b 6 0
check "two workers of 'web' listen on port 7" test -n "$(wfield "${WPID[a]}" 5)" -a -n "$(wfield "${WPID[b]}" 5)"
flows=$(ctl flows)
echo "$flows" | sed 's/^/# /'
qa=$(wfield "${WPID[a]}" 5) qb=$(wfield "${WPID[b]}" 5)
check "a $MODE rule sends port 7 to both workers' queues ($qa, $qb)" \
  grep -qE "^$MODE .* tcp dst 7 -> queues ($qa $qb|$qb $qa)$" <<<"$flows"

coproc STICKY { ip netns exec "$NS" $PY "$HERE/peer.py" sticky $SIP 7 $N 2>&1; }
track_pid "$STICKY_PID"
round() { # one echo on every connection still open: "K F"
  local line
  echo echo >&"${STICKY[1]}"
  read -r -t 30 line <&"${STICKY[0]}" || { echo "x x"; return; }
  [[ $line =~ ^echoed\ ([0-9]+)\ failed\ ([0-9]+)$ ]] && echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]}" || {
    echo "# sticky: $line" >&2
    echo "x x"
  }
}
d0=$(daemon_rx)
read -r ok bad <<<"$(round)"
check "$N connections echo ($ok echoed, $bad failed)" test "$ok" = $N
d1=$(daemon_rx)
if [ "$MODE" = kernel ]; then
  check "dpnetd saw none of the workers' frames (its RX count $d0 -> $d1)" test "$((d1 - d0))" -le 4
else
  check "dpnetd handed the workers' frames over (its RX count $d0 -> $d1)" test "$((d1 - d0))" -ge $N
fi
ca=$(wfield "${WPID[a]}" 11) cb=$(wfield "${WPID[b]}" 11)
check "both workers carry connections ($ca and $cb of $N, each 30-70%)" \
  test "${ca:-0}" -ge $((N * 3 / 10)) -a "${cb:-0}" -ge $((N * 3 / 10)) \
  -a "${ca:-0}" -le $((N * 7 / 10)) -a "${cb:-0}" -le $((N * 7 / 10))

start_worker c 7 1
qc=$(wfield "${WPID[c]}" 5)
check "a third worker joins port 7 (queue $qc)" grep -qE "tcp dst 7 -> queues .*\b$qc\b" <<<"$(ctl flows)"
read -r ok bad <<<"$(round)"
check "after it joined, all $N connections still echo on their worker ($ok echoed, $bad failed)" \
  test "$ok" = $N

ca=$(wfield "${WPID[a]}" 11)
rx_free() { ctl pools | awk '$1=="dpnd_rx"{print $3}'; }
rx0=$(rx_free)
# Connections that never read: the workers hold their echoes' mbufs when a dies.
SLOG=/tmp/dpn-ks$M-$TAG.log; track_file "$SLOG"
ip netns exec "$NS" $PY "$HERE/peer.py" stuff $SIP 7 16 400000 6 >"$SLOG" 2>&1 &
STUFF=$!; track_pid $STUFF
check "16 connections that never read are stuffed" wait_log "$SLOG" stuffed 15
# echoserver echoes without copying: what it holds are dpnetd's RX mbufs.
held() { [ "$(rx_free)" -lt "$((rx0 - 100))" ]; }
check "the workers hold received mbufs of the stuffed connections ($(rx_free) free, $rx0 before)" held
# Datagrams parked on worker a: stopped, it reads neither its queue nor its
# ring, so what steering gives it waits there until it dies. Then dpnetd
# steers it again (to b or c) instead of dropping it with the queue or ring.
kill -STOP "${WPID[a]}"
ULOG=/tmp/dpn-ku$M-$TAG.log; track_file "$ULOG"
ip netns exec "$NS" $PY "$HERE/peer.py" udpwait $SIP 7 60 20 >"$ULOG" 2>&1 &
UDPW=$!; track_pid $UDPW
wait_log "$ULOG" pending 10
parked=$(sed -n 's/^pending //p' "$ULOG")
check "datagrams of 60 flows wait for the stopped worker a (${parked:-?} of them)" test "${parked:-0}" -gt 0
kill -KILL "${WPID[a]}"
urc=0; wait $UDPW || urc=$?
check "... and all come back echoed once a is killed ($(tail -1 "$ULOG"))" test "$urc" = 0
gone() { [ -z "$(wfield "${WPID[a]}" 3)" ]; }
check "dpnetd releases the killed worker's slot" wait_for 10 gone
# What it held comes back: its TX pool whole, the RX mbufs it had (tagged,
# with kernel steering too, where they come from its own queue).
tx_whole() { ctl pools | awk -v p="dpnd_q$qa" '$1 == p || index($1, p ".") == 1 { ok = ($3 == $2) } END { exit !ok }'; }
check "the killed worker's TX pool (dpnd_q$qa) is whole again" wait_for 10 tx_whole
last_failed && ctl pools | sed 's/^/# /'
rx_back() { [ "$(rx_free)" -ge "$rx0" ]; }
check "dpnetd's RX pool has at least what it had before the kill ($rx0 free)" wait_for 10 rx_back
wait $STUFF || true
read -r ok bad <<<"$(round)"
check "after worker a (${ca} connections) was killed: the other $((N - ca)) echo, its own fail ($ok echoed, $bad failed)" \
  test "$ok" = "$((N - ca))" -a "$bad" = "$ca"
echo quit >&"${STICKY[1]}" || true
wait "$STICKY_PID" 2>/dev/null || true

rb=$(wfield "${WPID[b]}" 7) rc=$(wfield "${WPID[c]}" 7)
check "60 new connections echo" peer concurrent $SIP 7 60
rb2=$(wfield "${WPID[b]}" 7) rc2=$(wfield "${WPID[c]}" 7)
check "new connections spread over the live workers (frames: b +$((rb2 - rb)), c +$((rc2 - rc)))" \
  test "$((rb2 - rb))" -gt 0 -a "$((rc2 - rc))" -gt 0
# Outgoing: replies come back on the client worker's queue by its
# ephemeral range's rule, not through dpnetd.
KE=/tmp/dpn-kke$M-$TAG.log; track_file "$KE"
ip netns exec "$NS" "$B/app/kecho" -p 9000 -b $PIP >"$KE" 2>&1 &
KECHO=$!; track_pid $KECHO
kecho_listens() { nsx ss -Hltn 'sport = :9000' | grep -q .; }
check "kecho (Linux server) listens on 9000" wait_for 10 kecho_listens
EAL=(--no-pci --proc-type=secondary --file-prefix "$PFX" --log-level=pmd.net.tap:error)
d0=$(daemon_rx)
for proto in tcp udp; do
  check "attached net_latency -> Linux server, $proto" \
    nsx "$B/app/net_latency" "${EAL[@]}" --lcores=11@0 -- --server $PIP --port 9000 \
    $([ $proto = udp ] && echo --udp) --count 500 --warmup 20 --timeout 20 --poll hybrid
done
d1=$(daemon_rx)
[ "$MODE" = kernel ] && check "dpnetd saw none of the replies (its RX count $d0 -> $d1, 1040 round trips)" \
  test "$((d1 - d0))" -le 8
check "worker b stops cleanly on SIGINT" stop_proc "${WPID[b]}"
check "worker c stops cleanly on SIGINT" stop_proc "${WPID[c]}"
for w in b c; do check "worker $w: mbufs back" mbufs_back "${WLOG[$w]}"; done
unbound() { ! ctl flows | grep -q "dst 7 "; }
check "port 7's rule goes with its last worker" wait_for 5 unbound
check "port 7 now refused by dpnetd (RST from queue 0)" peer refused $SIP 7
check "dpnetd stops cleanly on SIGINT" stop_proc $DPID
check "dpnetd printed its summary" grep -q "^dpnetd: rx" "$DLOG"
if grep -qE "AddressSanitizer|runtime error:" "$DLOG" "${WLOG[@]}"; then
  not_ok "no sanitizer report"
else
  ok "no sanitizer report"
fi
stop_proc $KECHO || true
}

run_mode kernel
run_mode software
finish
