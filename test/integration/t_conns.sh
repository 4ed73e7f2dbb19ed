#!/usr/bin/env bash
# dpnetctl conns, like ss -tni: every connection of every attached worker
# (4-tuple, state, queues, srtt/rto, cwnd/ssthresh, retransmissions, age),
# listed by the workers themselves when asked (no per-packet cost), checked
# against what the Linux peer's ss sees; --app filters, --json parses.
source "$(dirname "$0")/lib.sh"

NS=dpn-cn-$TAG IFC=dc$TAG PFX=dpnc$TAG
SIP=10.88.0.2 PIP=10.88.0.1
DLOG=/tmp/dpn-cn-$TAG.log CLOG=/tmp/dpn-cnc-$TAG.log
track_prefix "$PFX"
track_file "$DLOG"
track_file "$CLOG"
new_ns "$NS"
nsx() { ip netns exec "$NS" "$@"; }
ctl() { "$B/app/dpnetctl" --file-prefix "$PFX" "$@"; }

start_dpnetd "$NS" "$IFC" "$PFX" $SIP/24 $PIP/24 "$DLOG" --queues 3
declare -A WPID WLOG
for w in web:7 other:8; do
  n=${w%:*}; WLOG[$n]=/tmp/dpn-cn-$n-$TAG.log; track_file "${WLOG[$n]}"
  ip netns exec "$NS" "$B/app/echoserver" --no-pci --proc-type=secondary --file-prefix "$PFX" \
    -l 1 --log-level=pmd.net.tap:error -- --app "$n" --port "${w#*:}" --poll hybrid \
    >"${WLOG[$n]}" 2>&1 &
  WPID[$n]=$!; track_pid "${WPID[$n]}"
  check "worker $n listens" wait_log "${WLOG[$n]}" "listening on port" 15
done

# 10 connections to web, 3 to other, each echoed once, then held open.
ip netns exec "$NS" $PY -c '
import socket, sys, time
socks = []
for port, n in ((7, 10), (8, 3)):
    for i in range(n):
        s = socket.create_connection(("'$SIP'", port), timeout=5)
        s.sendall(b"hello %d" % i)
        if s.recv(64) != b"hello %d" % i:
            sys.exit("echo differs")
        socks.append(s)
print("open", flush=True)
time.sleep(50)
' >"$CLOG" 2>&1 &
CP=$!; track_pid $CP
check "13 connections open and echoed" wait_log "$CLOG" open 20

out=$(ctl conns)
echo "$out" | head -4 | sed 's/^/# /'
check "dpnetctl conns lists web's 10 established connections" \
  test "$(grep -c " web .* ESTAB .*$SIP:7 .*$PIP:" <<<"$out")" = 10
check "... and other's 3" test "$(grep -c " other .* ESTAB .*$SIP:8 " <<<"$out")" = 3
check "... and each worker's listener" test "$(grep -c " LISTEN " <<<"$out")" -ge 2
# The same 4-tuples as the Linux side's ss.
mine=$(grep " ESTAB " <<<"$out" | awk '{print $6 " " $5}' | sort)
theirs=$(nsx ss -Htn state established "( dport = :7 or dport = :8 )" | awk '{print $3 " " $4}' | sort)
check "the 4-tuples are those ss shows on the peer" test "$mine" = "$theirs"
last_failed && { echo "# mine: $mine"; echo "# ss: $theirs"; }
j=$(ctl conns --app web --json)
check "--app web --json: 10 established, with rto, cwnd and an age" \
  $PY -c 'import json,sys
v = json.loads(sys.argv[1])
est = [c for c in v if c["state"] == "ESTAB"]
ok = len(est) == 10 and all(c["app"] == "web" and c["rto_ms"] > 0 and c["cwnd"] > 0 and
     c["age_ms"] > 0 and c["send_q"] == 0 for c in est)
sys.exit(0 if ok else 1)' "$j"
last_failed && echo "# $j"
# Every other view takes --json too; "all" gives an object of them.
a=$(ctl --json)
check "dpnetctl --json: one object of every view, the same as the text views" \
  $PY -c 'import json,sys
v = json.loads(sys.argv[1])
w = [x for x in v["workers"] if x["state"] == "attached"]
ok = sorted(x["app"] for x in w) == ["other", "web"] and \
     sorted(b["port"] for b in v["bindings"]) == [7, 7, 8, 8] and \
     len(v["flows"]["rules"]) == int(sys.argv[2]) and v["device"]["bus"] == "vdev" and \
     v["stats"]["port"]["ipackets"] > 0 and v["stats"]["pools"][0]["pool"] == "dpnd_rx" and \
     isinstance(v["neigh"], list)
sys.exit(0 if ok else 1)' "$a" "$(ctl flows | grep -c ' -> ')"
last_failed && echo "# $a"
for view in workers bindings flows neigh stats pools device; do
  check "dpnetctl $view --json parses" $PY -c 'import json,sys; json.loads(sys.argv[1])' "$(ctl $view --json)"
done
kill -STOP "${WPID[other]}"
out=$(ctl conns)
check "a stopped worker is named, not waited for ($(grep -c 'did not answer' <<<"$out") line)" \
  grep -q "other .*did not answer" <<<"$out"
kill -CONT "${WPID[other]}"
kill $CP 2>/dev/null; wait $CP 2>/dev/null || true
for n in web other; do check "worker $n stops cleanly" stop_proc "${WPID[$n]}"; done
check "dpnetd stops cleanly" stop_proc $DPID
check "no sanitizer report" bash -c "! grep -qE 'Sanitizer|runtime error' $DLOG ${WLOG[*]}"
finish
