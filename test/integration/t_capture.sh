#!/usr/bin/env bash
# Packet capture: dpnetctl capture writes both directions of every worker
# and of dpnetd to a pcapng file (rte_pcapng) that tcpdump reads back: the
# handshakes, the payload bytes, dpnetd's ICMP, a frame count equal to the
# worker's own counters; a filter keeps only what it names; --count ends
# it; - writes to a pipe; bad filters, a second capture and other users are
# refused; dpdk-dumpcap sees dpnetd's own frames. A standalone worker
# captures with --capture FILE.
source "$(dirname "$0")/lib.sh"

NS=dpn-cp-$TAG IFC=dp$TAG PFX=dpcp$TAG
SIP=10.89.0.2 PIP=10.89.0.1
DLOG=/tmp/dpn-cp-$TAG.log DIR=/tmp/dpn-cp-$TAG.d
track_prefix "$PFX"
track_file "$DLOG"
track_file "$DIR"
mkdir -p "$DIR"
new_ns "$NS"
nsx() { ip netns exec "$NS" "$@"; }
ctl() { "$B/app/dpnetctl" --file-prefix "$PFX" "$@"; }
# rd FILE [ARGS]: the capture as tcpdump prints it, with the bytes (-A).
rd() { local f=$1; shift; tcpdump -r "$f" -nn "$@" 2>/dev/null; }
frames() { tcpdump -r "$1" -nn 2>/dev/null | wc -l; }
export -f rd frames
# refused RC EXPECTED OUTPUT: exit status 1 and a line that says EXPECTED
refused() { [ "$1" != 0 ] && grep -q "$2" <<<"$3"; }
# epbs FILE: each Enhanced Packet Block's captured and original length and
# its queue option (the worker's slot), read with a few lines of Python.
epbs() { $PY -c '
import struct, sys
d = open(sys.argv[1], "rb").read()
o = 0
while o + 12 <= len(d):
    t, n = struct.unpack_from("<II", d, o)
    if n < 12 or o + n > len(d):
        sys.exit("bad block at %d" % o)
    if t == 6:
        cap, orig = struct.unpack_from("<II", d, o + 20)
        q, p = -1, o + 28 + ((cap + 3) & ~3)
        while p + 4 <= o + n - 4:
            code, ln = struct.unpack_from("<HH", d, p)
            if code == 0:
                break
            if code == 6:
                q = struct.unpack_from("<I", d, p + 4)[0]
            p += 4 + ((ln + 3) & ~3)
        print(cap, orig, q)
    o += n
' "$1"; }

start_dpnetd "$NS" "$IFC" "$PFX" $SIP/24 $PIP/24 "$DLOG" --queues 3
declare -A WPID WLOG
for w in web:7 other:8; do
  n=${w%:*}; WLOG[$n]=/tmp/dpn-cp-$n-$TAG.log; track_file "${WLOG[$n]}"
  ip netns exec "$NS" "$B/app/echoserver" --no-pci --proc-type=secondary --file-prefix "$PFX" \
    -l 1 --log-level=pmd.net.tap:error -- --app "$n" --port "${w#*:}" --poll hybrid \
    >"${WLOG[$n]}" 2>&1 &
  WPID[$n]=$!; track_pid "${WPID[$n]}"
  check "worker $n listens" wait_log "${WLOG[$n]}" "listening on port" 15
done
slot_of() { ctl workers --json | $PY -c 'import json,sys
print([w["slot"] for w in json.load(sys.stdin) if w.get("app") == sys.argv[1] and w["state"] == "attached"][0])' "$1"; }
# rx+tx frames a worker's slot counters show
wframes() { ctl workers --json | $PY -c 'import json,sys
w = [w for w in json.load(sys.stdin) if w.get("app") == sys.argv[1] and w["state"] == "attached"][0]
print(w["rx_pkts"] + w["tx_pkts"])' "$1"; }

# traffic N_WEB N_OTHER TAG: connections to port 7 and 8, each sends
# "TAG-<port>-<i>" and reads its echo, then closes.
traffic() {
  nsx $PY -c '
import socket, sys
for port, n in ((7, int(sys.argv[1])), (8, int(sys.argv[2]))):
    for i in range(n):
        s = socket.create_connection(("'$SIP'", port), timeout=5)
        msg = b"%s-%d-%d" % (sys.argv[3].encode(), port, i)
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            got += s.recv(64)
        if got != msg:
            sys.exit("echo differs")
        s.close()
' "$@"
}

# start_cap LOG ARGS...: dpnetctl capture in the background until it says it runs.
start_cap() {
  local log=$1; shift
  track_file "$log"
  "$B/app/dpnetctl" --file-prefix "$PFX" capture "$@" 2>"$log" &
  CAP=$!; track_pid $CAP
  wait_log "$log" "capturing from" 10
}
end_cap() { kill -INT "$CAP"; wait "$CAP"; }

# 1. everything: all workers and dpnetd
F=$DIR/all.pcapng
check "capture starts on both workers and dpnetd" start_cap "$DIR/all.log" -w "$F"
check "... it says so" grep -q "capturing from 2 workers and dpnetd" "$DIR/all.log"
check "traffic to both workers while capturing" traffic 5 3 cap1
check "a ping answered by dpnetd" nsx ping -c 2 -i 0.2 -W 2 -q $SIP
sleep 0.3
check "Ctrl-C ends the capture cleanly" end_cap
cat "$DIR/all.log" | sed 's/^/# /'
check "dpnetctl says how many frames it wrote, none lost" grep -qE " [1-9][0-9]* frames written, 0 lost" "$DIR/all.log"
check "the file is 0600 (others' traffic)" test "$(stat -c %a "$F")" = 600
check "tcpdump reads it" rd "$F" -c 1
out=$(rd "$F")
n_syn7=$(grep -c "$PIP\.[0-9]* > $SIP\.7: Flags \[S\]" <<<"$out" || true)
n_sa7=$(grep -c "$SIP\.7 > $PIP\.[0-9]*: Flags \[S\.\]" <<<"$out" || true)
n_syn8=$(grep -c "> $SIP\.8: Flags \[S\]" <<<"$out" || true)
check "5 SYNs to web and 5 SYN-ACKs from it ($n_syn7, $n_sa7)" test "$n_syn7:$n_sa7" = 5:5
check "3 SYNs to other ($n_syn8)" test "$n_syn8" = 3
check "dpnetd's ICMP echo requests and replies" test \
  "$(grep -c "ICMP echo request" <<<"$out"):$(grep -c "ICMP echo reply" <<<"$out")" = 2:2
bytes=$(rd "$F" -A)
for p in cap1-7-4 cap1-8-2; do
  check "payload $p in both directions" test "$(grep -c "$p" <<<"$bytes")" -ge 2
done
last_failed && rd "$F" | head -40 | sed 's/^/# /'
e=$(epbs "$F")
check "pcapng blocks whole; frames from dpnetd's queue 0 and both workers' slots" \
  test "$(awk '{print $3}' <<<"$e" | sort -u | tr '\n' ' ')" = "0 1 2 "
check "... as many as dpnetctl said" grep -q " $(wc -l <<<"$e") frames written" "$DIR/all.log"

# 2. one application: the file's frame count is its worker's counters' delta
F=$DIR/other.pcapng
sleep 0.2
before=$(wframes other)
check "capture of --app other" start_cap "$DIR/other.log" -w "$F" --app other
check "... one worker, not dpnetd" grep -q "capturing from 1 worker to" "$DIR/other.log"
check "traffic to both" traffic 4 4 cap2
sleep 0.3
end_cap || true
after=$(wframes other)
n=$(frames "$F")
check "frames in the file ($n) = other's rx+tx counters moved ($((after - before)))" \
  test "$n" = $((after - before))
check "none of web's frames" bash -c "! rd '$F' | grep -q '\.7[: ]'"
check "other's payload" bash -c "rd '$F' -A | grep -q cap2-8-3"

# 3. a filter keeps only what it names; --worker picks a slot
F=$DIR/filter.pcapng
check "capture with a filter" start_cap "$DIR/filter.log" -w "$F" tcp port 7 and 'tcp[tcpflags] & tcp-syn != 0'
check "traffic" traffic 3 3 cap3
sleep 0.3
end_cap || true
n=$(frames "$F")
check "only SYNs and SYN-ACKs of port 7: $n frames" test "$n" = 6
check "... nothing else" bash -c "! rd '$F' | grep -v 'Flags \[S\.\?\]' | grep -q ."
F=$DIR/slot.pcapng
s=$(slot_of web)
check "capture of --worker $s (web)" start_cap "$DIR/slot.log" -w "$F" --worker "$s" --snaplen 60
traffic 2 2 cap4 || true
sleep 0.3
end_cap || true
check "only web's port" bash -c "rd '$F' | grep -q '$SIP\.7 ' && ! rd '$F' | grep -q '\.8[: ]'"
e=$(epbs "$F")
check "--snaplen 60: no frame kept longer, some were longer on the wire" \
  bash -c "awk '\$1 > 60 {bad=1} \$2 > 60 {long=1} END {exit !(long && !bad)}' <<<'$e'"
check "... and the queue option of every frame is web's slot $s" \
  bash -c "[ -n '$e' ] && awk '\$3 != $s {bad=1} END {exit bad}' <<<'$e'"

# 4. --count ends it by itself; - writes to a pipe
F=$DIR/count.pcapng
"$B/app/dpnetctl" --file-prefix "$PFX" capture -w "$F" --count 4 2>"$DIR/count.log" &
CAP=$!; track_pid $CAP
wait_log "$DIR/count.log" "capturing from" 10 || true
traffic 3 0 cap5 || true
check "--count 4: dpnetctl ends by itself" wait_for 10 bash -c "! kill -0 $CAP 2>/dev/null"
check "... with exactly 4 frames" test "$(frames "$F")" = 4
check "... and said so" grep -q " 4 frames written" "$DIR/count.log"
(ctl capture -w - --count 6 2>"$DIR/pipe.log" | tcpdump -r - -nn >"$DIR/pipe.txt" 2>/dev/null) &
PP=$!; track_pid $PP
wait_log "$DIR/pipe.log" "capturing from" 10 || true
traffic 3 0 cap6 || true
check "-w - into tcpdump -r -: 6 frames" wait_for 10 bash -c "[ \$(wc -l <'$DIR/pipe.txt') = 6 ]"
e=$(script -qec "$B/app/dpnetctl --file-prefix $PFX capture -w -" /dev/null </dev/null 2>&1) && r=0 || r=$?
check "binary to a terminal: refused" refused $r "standard output is a terminal" "$e"

# 5. refusals
e=$(ctl capture -w "$DIR/bad.pcapng" tcp port frobnicate 2>&1) && r=0 || r=$?
check "a bad filter: exit 1 with libpcap's reason ($e)" refused $r "bad filter" "$e"
check "capture again" start_cap "$DIR/busy.log" -w "$DIR/busy.pcapng"
e=$(ctl capture -w "$DIR/busy2.pcapng" 2>&1) && r=0 || r=$?
check "a second capture at once is refused ($e)" refused $r "running already" "$e"
end_cap || true
e=$(ctl capture -w "$DIR/p.pcapng" --port 5 2>&1) && r=0 || r=$?
check "--port of another DPDK port is refused ($e)" refused $r "port 0 only" "$e"
chmod 777 "$DIR"
e=$(RUNTIME_DIRECTORY=/var/run setpriv --reuid=65534 --regid=65534 --clear-groups \
  "$B/app/dpnetctl" --file-prefix "$PFX" capture -w "$DIR/nobody.pcapng" 2>&1) && r=0 || r=$?
# The runtime directory keeps others from the socket; dpnetd refuses them too.
check "another user cannot capture ($e)" refused $r "Permission denied\\|root and dpnetd's user" "$e"
check "dpnetd still serves" traffic 1 1 cap7

# 6. dpnetd calls rte_pdump_init: Debian's dpdk-dumpcap sees what dpnetd
# itself receives and sends (here: ARP and ICMP), not the workers' queues.
F=$DIR/dumpcap.pcapng
nsx timeout 30 dpdk-dumpcap --file-prefix "$PFX" -p -c 4 -w "$F" >"$DIR/dumpcap.log" 2>&1 &
DC=$!; track_pid $DC
check "dpdk-dumpcap attaches to dpnetd" wait_log "$DIR/dumpcap.log" "^File: " 15
nsx ip neigh flush dev "$IFC" || true
nsx ping -c 6 -i 0.2 -W 2 -q $SIP >/dev/null || true
wait $DC && r=0 || r=$?
check "dpdk-dumpcap ends after 4 frames (exit $r)" test "$r" = 0
out=$(rd "$F")
check "... dpnetd's ICMP replies among them" grep -q "$SIP > $PIP: ICMP echo reply" <<<"$out"
last_failed && { echo "$out" | sed 's/^/# /'; sed 's/^/# /' "$DIR/dumpcap.log"; }

for n in web other; do check "worker $n stops cleanly" stop_proc "${WPID[$n]}"; done
check "dpnetd stops cleanly" stop_proc $DPID

# 7. standalone: --capture FILE with a filter
NS2=dpn-cps-$TAG
new_ns "$NS2"
F=$DIR/standalone.pcapng SLOG=/tmp/dpn-cps-$TAG.log
check "standalone echoserver with --capture" \
  start_tap_server "$NS2" "ds$TAG" 10.90.0.2/24 10.90.0.1/24 "$SLOG" --capture "$F" --capture-filter "tcp"
ip netns exec "$NS2" $PY -c '
import socket
s = socket.create_connection(("10.90.0.2", 7), timeout=5)
s.sendall(b"standalone-capture"); assert s.recv(64) == b"standalone-capture"; s.close()'
check "a ping (not captured: the filter says tcp)" ip netns exec "$NS2" ping -c 1 -W 2 -q 10.90.0.2
sleep 0.3
check "the standalone worker stops cleanly" stop_proc "$SERVER_PID"
check "it said what it wrote" grep -qE "dpnet capture: [1-9][0-9]* frames written to .*, 0 lost" "$SLOG"
out=$(rd "$F" -A)
# The dump goes by the environment: its bytes (tcpdump -A) may hold a quote.
check "handshake, payload, no ICMP, no ARP" env OUT="$out" bash -c 'grep -q "Flags \[S\]" <<<"$OUT" &&
  grep -q "Flags \[S\.\]" <<<"$OUT" && [ $(grep -c standalone-capture <<<"$OUT") -ge 2 ] &&
  ! grep -qE "ICMP|ARP" <<<"$OUT"'
last_failed && echo "$out" | head -20 | sed 's/^/# /'
e=$(ip netns exec "$NS2" "$B/app/echoserver" --no-pci -l 1 --vdev=net_tap0,iface=dx$TAG -- \
  --ip 10.90.0.3/24 --capture "$DIR/x.pcapng" --capture-filter "port nonsense" 2>&1) && r=0 || r=$?
check "a bad --capture-filter stops start-up with a clear line" refused $r "bad filter" "$e"
e=$(ip netns exec "$NS2" "$B/app/echoserver" --no-pci -l 1 --vdev=net_tap0,iface=dx$TAG -- \
  --ip 10.90.0.3/24 --capture /nonexistent/dir/x.pcapng 2>&1) && r=0 || r=$?
check "an unwritable --capture FILE too" refused $r "cannot open the capture file" "$e"
check "no sanitizer report" bash -c "! grep -qE 'Sanitizer|runtime error' $DLOG ${WLOG[*]} $SLOG"
finish
