#!/usr/bin/env bash
# Inside the Debian-kernel guest (t_hwsteer.sh runs it through tools/
# guest.sh): dpnetd on net_tap with hardware steering, i.e. rte_flow rules
# that net_tap turns into TC flower rules. Each binding's rule puts its
# frames on its worker's queue with dpnetd seeing none of them; the
# catch-all rule keeps ARP, ICMP and unbound ports on dpnetd's queue 0;
# a binding a second worker joins goes to software and the first worker
# keeps its connections; a killed worker's rule goes, its mbufs come back;
# outgoing connections come back on the client's queue.
source "$(dirname "$0")/lib.sh"
guest_tee "$@"

NS=dpn-hw-$TAG IFC=dhw$TAG PFX=dpnhw$TAG
SIP=10.83.0.2 PIP=10.83.0.1
N=100
DLOG=/tmp/dpn-hw-$TAG.log
track_prefix "$PFX"
track_file "$DLOG"
new_ns "$NS"
nsx() { ip netns exec "$NS" "$@"; }
peer() { ip netns exec "$NS" $PY "$HERE/peer.py" "$@"; }
ctl() { "$B/app/dpnetctl" --file-prefix "$PFX" "$@"; }

ip netns exec "$NS" "$B/app/dpnetd" --no-pci -l 0 --file-prefix "$PFX" --log-level=pmd.net.tap:error \
  --vdev="net_tap0,iface=$IFC" -- --ip $SIP/24 --queues 4 --poll hybrid --steering hardware \
  >"$DLOG" 2>&1 &
DPID=$!; track_pid $DPID
wait_log "$DLOG" "dpnetd: serving" 60
nsx ip addr add $PIP/24 dev "$IFC"
for k in 11 12 13 14 15 16; do nsx ip addr add 10.83.0.$k/24 dev "$IFC"; done
nsx ip link set "$IFC" up
check "dpnetd: rte_flow steering (net_tap's TC flower)" grep -q "rte_flow steering" "$DLOG"
last_failed && tail -5 "$DLOG" | sed 's/^/# /'
check "dpnetd installed its catch-all rule" bash -c "! grep -q 'no catch-all rule' '$DLOG'"
pings=0
for a in $PIP 10.83.0.11 10.83.0.12 10.83.0.13 10.83.0.14 10.83.0.15 10.83.0.16; do
  nsx ping -c 1 -W 3 -q -I $a $SIP >/dev/null 2>&1 && pings=$((pings + 1))
done
check "dpnetd answers pings from all 7 addresses (frames no rule matches reach queue 0): $pings" \
  test $pings = 7

export DPNET_APP_SECRET
DPNET_APP_SECRET=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
declare -A WPID WLOG
start_worker() { # name lcore cpu app port
  WLOG[$1]=/tmp/dpn-hw-$1-$TAG.log; track_file "${WLOG[$1]}"
  ip netns exec "$NS" "$B/app/echoserver" --no-pci --proc-type=secondary --file-prefix "$PFX" \
    --log-level=pmd.net.tap:error --lcores="$2@$3" -- --app "$4" --port "$5" --poll hybrid \
    >"${WLOG[$1]}" 2>&1 &
  WPID[$1]=$!; track_pid "${WPID[$1]}"
  wait_log "${WLOG[$1]}" "listening on port $5" 60
}
wfield() { ctl workers | awk -v p="$1" -v f="$2" '$3 == p { print $f }'; }
daemon_rx() { ctl stats | sed -n 's/^dpnetd: rx \([0-9]*\) frames.*/\1/p'; }

start_worker a 5 1 web 7
qa=$(wfield "${WPID[a]}" 5)
flows=$(ctl flows); echo "$flows" | sed 's/^/# /'
check "a rule sends port 7 to worker a's queue $qa" \
  grep -qE "^rte_flow .* tcp dst 7 -> queues $qa$" <<<"$flows"

coproc STICKY { ip netns exec "$NS" $PY "$HERE/peer.py" sticky $SIP 7 $N 2>&1; }
track_pid "$STICKY_PID"
round() { # one echo on every connection still open: "K F"
  local line
  echo echo >&"${STICKY[1]}"
  read -r -t 60 line <&"${STICKY[0]}" || { echo "x x"; return; }
  [[ $line =~ ^echoed\ ([0-9]+)\ failed\ ([0-9]+)$ ]] && echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]}" || {
    echo "# sticky: $line" >&2
    echo "x x"
  }
}
d0=$(daemon_rx)
read -r ok bad <<<"$(round)"
check "$N connections to worker a echo ($ok echoed, $bad failed)" test "$ok" = $N
d1=$(daemon_rx)
check "dpnetd saw none of their frames (its RX count $d0 -> $d1)" test "$((d1 - d0))" -le 4

# A second worker of 'web': net_tap takes no RSS action, so port 7 goes to
# software steering; a's connections, which dpnetd never saw, stay with a.
start_worker b 6 0 web 7
qb=$(wfield "${WPID[b]}" 5)
flows=$(ctl flows); echo "$flows" | sed 's/^/# /'
check "with two workers port 7 is steered in software to queues $qa and $qb" \
  grep -qE "^software .* tcp dst 7 -> queues ($qa $qb|$qb $qa)$" <<<"$flows"
read -r ok bad <<<"$(round)"
check "after b joined, all $N connections still echo on worker a ($ok echoed, $bad failed)" \
  test "$ok" = $N
check "worker b holds none of them ($(wfield "${WPID[b]}" 11) connections)" \
  test "$(wfield "${WPID[b]}" 11)" = 0
rb=$(wfield "${WPID[b]}" 7)
check "40 new connections echo" peer concurrent $SIP 7 40
rb2=$(wfield "${WPID[b]}" 7)
check "new connections reach worker b too (its frames +$((rb2 - rb)))" test "$((rb2 - rb))" -gt 0

# Another application on port 8: a rule of its own beside port 7's.
start_worker c 7 1 other 8
qc=$(wfield "${WPID[c]}" 5)
check "a rule sends port 8 to worker c's queue $qc" \
  grep -qE "^rte_flow .* tcp dst 8 -> queues $qc$" <<<"$(ctl flows)"
d0=$(daemon_rx)
check "port 8 echoes 256 KiB" peer bulk $SIP 8 262144
d1=$(daemon_rx)
check "dpnetd saw none of port 8's frames (its RX count $d0 -> $d1)" test "$((d1 - d0))" -le 4

# Worker a dies holding mbufs: its connections fail, b gets port 7's rule.
rx_free() { ctl pools | awk '$1=="dpnd_rx"{print $3}'; }
rx0=$(rx_free)
kill -KILL "${WPID[a]}"
gone() { [ -z "$(wfield "${WPID[a]}" 3)" ]; }
check "dpnetd releases the killed worker's slot" wait_for 20 gone
tx_whole() { ctl pools | awk -v p="dpnd_q$qa" '$1 == p || index($1, p ".") == 1 { ok = ($3 == $2) } END { exit !ok }'; }
check "the killed worker's TX pool (dpnd_q$qa) is whole again" wait_for 20 tx_whole
last_failed && ctl pools | sed 's/^/# /'
rx_back() { [ "$(rx_free)" -ge "$rx0" ]; }
check "dpnetd's RX pool has at least what it had before the kill ($rx0 free)" wait_for 20 rx_back
rule_b() { ctl flows | grep -qE "^rte_flow .* tcp dst 7 -> queues $qb$"; }
check "port 7's rule now goes to worker b's queue $qb" wait_for 10 rule_b
read -r ok bad <<<"$(round)"
check "worker a's $N connections fail ($ok echoed, $bad failed)" test "$bad" = $N
echo quit >&"${STICKY[1]}" || true
wait "$STICKY_PID" 2>/dev/null || true
check "new connections to port 7 echo on worker b" peer concurrent $SIP 7 20

# Outgoing: replies come back on the client worker's own queue.
KE=/tmp/dpn-hw-kecho-$TAG.log; track_file "$KE"
ip netns exec "$NS" "$B/app/kecho" -p 9000 -b $PIP >"$KE" 2>&1 &
KECHO=$!; track_pid $KECHO
kecho_listens() { nsx ss -Hltn 'sport = :9000' | grep -q .; }
check "kecho (Linux server) listens on 9000" wait_for 20 kecho_listens
EAL=(--no-pci --proc-type=secondary --file-prefix "$PFX" --log-level=pmd.net.tap:error)
d0=$(daemon_rx)
for proto in tcp udp; do
  check "attached net_latency -> Linux server, $proto" \
    nsx "$B/app/net_latency" "${EAL[@]}" --lcores=11@0 -- --server $PIP --port 9000 \
    $([ $proto = udp ] && echo --udp) --count 300 --warmup 20 --timeout 60 --poll hybrid
done
d1=$(daemon_rx)
# TC flower takes no port masks: no rule for a whole range, so each
# outgoing connection's port gets its own rule (DPN_REQ_CONNECT).
check "the outgoing range is steered by a rule per port in use" \
  grep -q "a rule per port in use" <<<"$(ctl flows)"
check "dpnetd saw none of the replies (its RX count $d0 -> $d1, 640 round trips)" \
  test "$((d1 - d0))" -le 8
check "worker b stops cleanly on SIGINT" stop_proc "${WPID[b]}"
check "worker c stops cleanly on SIGINT" stop_proc "${WPID[c]}"
for w in b c; do check "worker $w: mbufs back" mbufs_back "${WLOG[$w]}"; done
unbound() { ! ctl flows | grep -qE "dst (7|8) "; }
check "the rules go with their last worker" wait_for 10 unbound
check "port 7 now refused by dpnetd (RST from queue 0)" peer refused $SIP 7
check "dpnetd stops cleanly on SIGINT" stop_proc $DPID
check "dpnetd printed its summary" grep -q "^dpnetd: rx" "$DLOG"
if grep -qE "AddressSanitizer|runtime error:" "$DLOG" "${WLOG[@]}"; then
  grep -hE -A20 "AddressSanitizer|runtime error:" "$DLOG" "${WLOG[@]}" | head -40 | sed 's/^/#   /'
  not_ok "no sanitizer report"
else
  ok "no sanitizer report"
fi
stop_proc $KECHO || true
finish
