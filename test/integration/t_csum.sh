#!/usr/bin/env bash
# port.csum between two dpnet hosts over net_memif (shared memory: no wire).
# auto (memif: trust) fills its own TCP and UDP checksums and does not check
# the peer's; none fills none, and needs a peer that trusts (as two Linux
# namespaces over veth); a port that checks (full) drops a none peer's
# segments and says why at exit. The frames on the link are read back from
# a capture.
source "$(dirname "$0")/lib.sh"

SOCK=/tmp/dpn-csum-$TAG.sock
D=/tmp/dpn-csum-$TAG
mkdir -p "$D"
track_file "$SOCK"; track_file "$D"

server() { # LOG CSUM: echoserver on the memif server side
  rm -f "$SOCK"
  "$B/app/echoserver" --no-pci -l 1 --vdev=net_memif0,role=server,socket=$SOCK -- \
    --ip 10.79.0.1/24 --poll hybrid --csum "$2" >"$1" 2>&1 &
  SERVER_PID=$!; track_pid $SERVER_PID
  wait_log "$1" "listening on port" 15
}
client() { # LOG CSUM ARGS...: net_latency on the memif client side, capturing
  local log=$1 csum=$2; shift 2
  "$B/app/net_latency" --no-pci -l 0 --vdev=net_memif0,role=client,socket=$SOCK -- \
    --ip 10.79.0.2/24 --poll hybrid --csum "$csum" --capture "$log.pcapng" --server 10.79.0.1 "$@" \
    >"$log.out" 2>"$log"
}
# sums PCAPNG: "zero good bad zero_true" over the TCP segments that carry
# data, and "udp_zero udp_good udp_bad" over UDP datagrams, as scapy
# recomputes them. A TCP sum can be 0 (1 segment in 65536): zero_true counts
# those among the zeros; good and bad count non-zero fields.
sums() {
  $PY - "$1" <<'EOF'
import sys
from scapy.all import rdpcap, Ether, IP, TCP, UDP
n = {"tz": 0, "tg": 0, "tb": 0, "t0": 0, "uz": 0, "ug": 0, "ub": 0}
for p in rdpcap(sys.argv[1]):
    if IP not in p or p[IP].frag or p[IP].flags.MF:
        continue
    l4 = TCP if TCP in p else UDP if UDP in p else None
    if l4 is None or (l4 is TCP and len(p[TCP].payload) == 0):
        continue
    c = p[l4].chksum
    q = Ether(bytes(p))
    del q[l4].chksum
    want = Ether(bytes(q))[l4].chksum
    k = ("t" if l4 is TCP else "u") + ("z" if c == 0 else "g" if c == want else "b")
    n[k] += 1
    n["t0"] += l4 is TCP and c == 0 and want == 0
print(n["tz"], n["tg"], n["tb"], n["t0"], n["uz"], n["ug"], n["ub"])
EOF
}

# auto on both: memif trusts what it receives, and still fills its sums.
server "$D/auto.log" auto
r=0; client "$D/cauto" auto --bulk $((8 << 20)) --verify --json --timeout 60 || r=$?
check "auto over memif: the start-up line says the L4 sums are trusted, filled in software" \
  grep -q "rx csum -/- (l4 trusted), tx csum ip sw tcp sw udp sw" "$D/auto.log"
check "... 8 MiB echoed intact (exit $r)" bash -c "[ $r = 0 ] && grep -q gbit_per_s '$D/cauto.out'"
r=0; client "$D/cautou" auto --udp --count 500 --timeout 20 || r=$?
check "... UDP echoed (exit $r)" test $r = 0
read -r tz tg tb t0 uz ug ub < <(sums "$D/cauto.pcapng")
echo "# auto: TCP data segments: $tg with a good sum, $tz with 0 ($t0 whose true sum is 0), $tb bad"
check "... every TCP segment with data carries its true checksum" \
  bash -c "[ $tg -gt 1000 ] && [ $tz = $t0 ] && [ $tb = 0 ]"
read -r tz tg tb t0 uz ug ub < <(sums "$D/cautou.pcapng")
check "... every UDP datagram too ($ug good, $uz none, $ub bad)" \
  bash -c "[ $ug -ge 1000 ] && [ $uz = 0 ] && [ $ub = 0 ]"
check "... the server stops cleanly" stop_proc $SERVER_PID
check "... with every mbuf back" mbufs_back "$D/auto.log"

# none on both: no TCP or UDP checksum leaves either host, and all arrives.
server "$D/none.log" none
r=0; client "$D/cnone" none --bulk $((8 << 20)) --verify --json --timeout 60 || r=$?
check "none on both ends: the start-up line says so" \
  grep -q "rx csum -/- (l4 trusted), tx csum ip sw tcp none udp none" "$D/none.log"
check "... 8 MiB echoed intact (exit $r)" bash -c "[ $r = 0 ] && grep -q gbit_per_s '$D/cnone.out'"
r=0; client "$D/cnoneu" none --udp --count 500 --timeout 20 || r=$?
check "... UDP echoed (exit $r)" test $r = 0
read -r tz tg tb t0 uz ug ub < <(sums "$D/cnone.pcapng")
echo "# none: TCP data segments: $tz with no sum, $tg good, $tb bad"
check "... no TCP segment with data carries a checksum" \
  bash -c "[ $tz -gt 1000 ] && [ $tg = 0 ] && [ $tb = 0 ]"
read -r tz tg tb t0 uz ug ub < <(sums "$D/cnoneu.pcapng")
check "... nor any UDP datagram (0: IPv4's none; $uz none, $ug good, $ub bad)" \
  bash -c "[ $uz -ge 1000 ] && [ $ug = 0 ] && [ $ub = 0 ]"
check "... the server stops cleanly" stop_proc $SERVER_PID

# A checking port against a none peer: its segments fail the check (the
# connection never opens), and the checking side says why at exit.
server "$D/full.log" full
r=0; client "$D/cmis" none --count 10 --timeout 5 || r=$?
check "full against a none peer: the connection fails (exit $r)" test $r != 0
check "... the server stops cleanly" stop_proc $SERVER_PID
check "... and names the cause: TCP segments with a zero checksum, port.csum" \
  grep -q "TCP segments with a zero checksum failed the check: .*port.csum none" "$D/full.log"
sed -n 's/^\(dpnet: [0-9]* TCP segments.*\)/# \1/p' "$D/full.log"

check "a bad port.csum is refused, saying what it takes" bash -c \
  "! '$B/app/echoserver' --no-pci -l 1 --vdev=net_null0 -- --ip 10.79.0.1/24 --csum maybe \
   >'$D/bad.log' 2>&1 && grep -q 'must be auto, full, trust or none, not \"maybe\"' '$D/bad.log'"
finish
