#!/usr/bin/env bash
# The embedding API's newer calls and corrected contracts against the Linux
# stack behind a net_tap port (test/tools/apiprobe.c, dpnet.h only): read
# pause and resume with the window closing meanwhile, a lingering close that
# never resets a peer still sending, the idle timeout, TCP keepalive against
# a peer that went silent, the connection's local address, gathered sends
# and their completion, closed(0) after an orderly end, timers with handles,
# --quiet; the worker's index among two attached workers of one application.
source "$(dirname "$0")/lib.sh"

NS=dpn-api-$TAG IFC=da$TAG
SIP=10.91.0.2 PIP=10.91.0.1
LOG=/tmp/dpn-api-$TAG.log
new_ns "$NS"
nsx() { ip netns exec "$NS" "$@"; }
PROBE=$B/test/tools/apiprobe

track_file "$LOG"
ip netns exec "$NS" "$PROBE" --no-pci -l 1 --log-level=pmd.net.tap:error --vdev="net_tap0,iface=$IFC" \
  -- --ip $SIP/24 --poll hybrid --quiet >"$LOG" 2>&1 &
SP=$!; track_pid $SP
check "apiprobe listens" wait_log "$LOG" "^listening" 15
nsx ip addr add $PIP/24 dev "$IFC"
nsx ip link set "$IFC" up
check "standalone: worker 0 of 1" grep -q "^worker 0 of 1" "$LOG"
ev() { grep -c "^$1 $2" "$LOG" || true; }
export -f wait_log

# pause: the client sends 1 MiB at once; the worker reads nothing for
# 1 s, so the window closes and the client's socket stops taking data;
# then the worker reads it all, in order: at the client's FIN it answers
# with the byte count and a checksum of what it read.
out=$(nsx $PY - "$SIP" <<'PY'
import socket, sys, time
s = socket.create_connection((sys.argv[1], 7001), timeout=10)
s.setblocking(False)
import fcntl, struct, termios
data = bytes(range(256)) * 4096  # 1 MiB
sent = 0
t0 = time.time()
while sent < len(data) and time.time() - t0 < 0.3:
    try:
        sent += s.send(data[sent:sent + 65536])
    except BlockingIOError:
        time.sleep(0.01)
# Within the worker's 1 s pause: what our kernel still holds, unacked or
# unsent, is all but the window the worker had open.
outq = struct.unpack("i", fcntl.ioctl(s, termios.TIOCOUTQ, b"\0" * 4))[0]
stalled = outq >= sent - 300 * 1024
print("# sent %d, still queued here %d" % (sent, outq))
s.setblocking(True)
s.sendall(data[sent:])
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    got += b
import zlib
want = b"%d %08x\n" % (len(data), zlib.crc32(data))
print("stalled" if stalled else "never-stalled", got == want, got)
PY
)
echo "# pause: $out"
check "pause: the window closed while the worker did not read (at most 300 KiB taken)" grep -q "^stalled " <<<"$out"
check "... then the worker read all 1 MiB, in order (its count and CRC-32)" grep -q "^stalled True " <<<"$out"
check "... paused and resumed once, eof, then closed(0)" \
  bash -c "[ $(ev 7001 'pause 0') = 1 ] && [ $(ev 7001 'resume 0') = 1 ] && wait_log '$LOG' '^7001 closed 0' 5 >/dev/null"

# linger: the worker closes at the first data; the client goes on sending
# 256 KiB and sees a clean EOF, no reset.
out=$(nsx $PY - "$SIP" <<'PY'
import socket, sys
s = socket.create_connection((sys.argv[1], 7002), timeout=10)
try:
    s.sendall(b"x" * 1000)
    for i in range(64):
        s.sendall(b"y" * 4096)
    s.shutdown(socket.SHUT_WR)
    print("eof" if s.recv(10) == b"" else "data")
except ConnectionResetError:
    print("reset")
PY
)
check "linger: a peer still sending after our close gets EOF, not RST ($out)" test "$out" = eof
check "... one close, no callback after it" bash -c "[ $(ev 7002 close) = 1 ] && [ $(ev 7002 closed) = 0 ]"

# idle: a silent client is reset after 300 ms; the worker hears -ETIMEDOUT.
out=$(nsx $PY - "$SIP" <<'PY'
import socket, sys, time
s = socket.create_connection((sys.argv[1], 7003), timeout=10)
try:
    r = s.recv(10)
    print("eof" if r == b"" else "data")
except ConnectionResetError:
    print("reset")
PY
)
check "idle timeout: the silent client is reset ($out)" test "$out" = reset
check "... closed(-ETIMEDOUT) in the worker" wait_log "$LOG" "^7003 closed -110" 5

# local: the connection's local address, then an orderly end: closed(0).
out=$(nsx $PY - "$SIP" <<'PY'
import socket, sys
s = socket.create_connection((sys.argv[1], 7004), timeout=10)
line = s.makefile().readline().strip()
peer = "%s:%d" % s.getpeername()
print(line == peer, line, peer)
s.close()
PY
)
check "dpn_conn_local is what the client connected to ($out)" grep -q "^True" <<<"$out"
check "... dpn_shutdown then the client's close: closed(0)" wait_log "$LOG" "^7004 closed 0" 5

# keepalive: the client's kernel stops answering (iptables drops what the
# worker sends it); after 300 ms idle and 2 unanswered probes, -ETIMEDOUT.
nsx $PY - "$SIP" <<'PY' &
import socket, sys, time
s = socket.create_connection((sys.argv[1], 7005), timeout=10)
time.sleep(4)
PY
KP=$!; track_pid $KP
wait_log "$LOG" "^7005 keepalive 0" 5 >/dev/null || true
nsx iptables -I INPUT -p tcp --sport 7005 -j DROP
check "keepalive: a silent peer ends the connection with -ETIMEDOUT" wait_log "$LOG" "^7005 closed -110" 5
nsx iptables -D INPUT -p tcp --sport 7005 -j DROP
wait $KP 2>/dev/null || true

# sendv: three pieces, one stream; complete once acked; then shutdown.
out=$(nsx $PY - "$SIP" <<'PY'
import socket, sys
s = socket.create_connection((sys.argv[1], 7006), timeout=10)
got = b""
while True:
    b = s.recv(100)
    if not b:
        break
    got += b
print(got)
s.close()
PY
)
check "dpn_sendv: the three pieces in order ($out)" test "$out" = "b'one two three\\n'"
check "... 14 bytes queued, and acked (dpn_conn_acked)" \
  bash -c "grep -q '^7006 sendv 14' '$LOG' && wait_log '$LOG' '^7006 acked 14' 5 >/dev/null"

check "apiprobe stops cleanly" stop_proc $SP
check "a periodic timer ticked, a stopped one never ran" grep -qE "^timer ticks [1-9][0-9]*, stopped timer ran 0 times" "$LOG"
check "--quiet: no counters at exit" bash -c "! grep -q 'dpnet stats' '$LOG'"
check "no sanitizer report" bash -c "! grep -qE 'Sanitizer|runtime error' $LOG"
last_failed && tail -30 "$LOG" | sed 's/^/# /'

# Two workers of one application behind dpnetd: index 0 and 1 of 2.
PFX=dpapi$TAG DLOG=/tmp/dpn-apid-$TAG.log
track_prefix "$PFX"
start_dpnetd "$NS" "dd$TAG" "$PFX" 10.92.0.2/24 10.92.0.1/24 "$DLOG" --queues 3
# Workers of one application share its secret (tools/dpnet-run makes one).
export DPNET_APP_SECRET=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
for i in 1 2; do
  L=/tmp/dpn-apiw$i-$TAG.log; track_file "$L"
  ip netns exec "$NS" "$PROBE" --no-pci --proc-type=secondary --file-prefix "$PFX" -l 1 \
    --log-level=pmd.net.tap:error -- --app probe --poll hybrid >"$L" 2>&1 &
  W[$i]=$!; track_pid ${W[$i]}
  wait_log "$L" "^listening" 15 >/dev/null || true
done
L1=/tmp/dpn-apiw1-$TAG.log L2=/tmp/dpn-apiw2-$TAG.log
check "attached: the first worker was 0 of 1 when it started" grep -q "^worker 0 of 1" "$L1"
check "... the second 1 of 2" grep -q "^worker 1 of 2" "$L2"
last_failed && sed 's/^/# /' "$L2" | tail -8
for i in 1 2; do check "worker $i stops cleanly" stop_proc ${W[$i]}; done
check "dpnetd stops cleanly" stop_proc $DPID
finish
