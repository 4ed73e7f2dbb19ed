#!/usr/bin/env bash
# The sockets layer (libdpnet-posix.so, tools/dpnet-run --preload): kecho,
# an epoll echo server written for Linux sockets, runs unmodified on a
# standalone dpnet worker over net_tap; the Linux stack behind the tap is
# its client (the address is dpnet's alone, so every byte went through
# dpnet). Then net_latency --kernel, a plain socket client, connects out
# through the layer to a Linux server; and the layer leaves loopback and a
# missing configuration to the kernel, saying so.
source "$(dirname "$0")/lib.sh"

NS=dpn-px-$TAG IFC=px$TAG PFX=px$TAG
SIP=10.86.0.2 PIP=10.86.0.1
LOG=/tmp/dpn-px-$TAG.log CLOG=/tmp/dpn-px-cli-$TAG.log
track_file "$LOG"; track_file "$CLOG"; track_prefix "$PFX"; track_prefix "${PFX}c"
new_ns "$NS"
peer() { ip netns exec "$NS" $PY "$HERE/peer.py" "$@"; }
RUN=$(cd "$HERE/../.." && pwd)/tools/dpnet-run
export DPNET_POSIX_LIB=$B/posix/libdpnet-posix.so
# An instrumented program would want its sanitizer first; these are not.
export ASAN_OPTIONS="$ASAN_OPTIONS:verify_asan_link_order=0"

ip netns exec "$NS" "$RUN" --preload --standalone --cpus 1 \
  --eal "--no-pci --file-prefix $PFX --log-level=pmd.net.tap:error --vdev=net_tap0,iface=$IFC" \
  --dpnet "--ip $SIP/24 --poll hybrid" -- "$B/app/kecho" -p 7 >"$LOG" 2>&1 &
KPID=$!; track_pid $KPID
check "kecho starts on dpnet through the layer" wait_log "$LOG" "kecho: listening on port 7" 20
check "... its worker came up on net_tap" grep -q "dpnet: port 0 (net_tap) up" "$LOG"
ip netns exec "$NS" ip addr add $PIP/24 dev "$IFC"
ip netns exec "$NS" ip link set "$IFC" up
check "dpnet answers ping for kecho's address" ip netns exec "$NS" ping -c 3 -i 0.2 -W 2 $SIP
out=$(ip netns exec "$NS" "$B/app/net_latency" --kernel --server $SIP --port 7 --count 3000 --json 2>&1 | tail -1)
echo "# $out"
check "3000 TCP round trips from Linux to kecho on dpnet" \
  $PY -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if r["messages"] == 3000 else 1)' "$out"
check "16 MiB echoed intact" peer bulk $SIP 7 $((16 << 20)) 120
check "50 concurrent connections x 3 rounds" peer concurrent $SIP 7 50
check "UDP: kecho's datagram socket on dpnet echoes every size 1..1472" peer udp $SIP 7
check "64 connections in flight at once" bash -c "ip netns exec $NS '$B/app/net_latency' --kernel \
  --server $SIP --port 7 --conns 64 --count 20000 --json | tail -1 | grep -q '\"messages\": 20000'"
check "kecho stops on SIGINT (its own handler; the layer keeps it)" stop_proc $KPID
check "... and its worker printed its counters at exit" grep -q "^dpnet stats: .*connections [1-9][0-9]* total" "$LOG"
check "... with every mbuf back" mbufs_back "$LOG"

# A client: net_latency --kernel (plain sockets) through the layer, to a
# Linux kecho on the kernel side of the tap.
ip netns exec "$NS" "$B/app/kecho" -p 9 >/dev/null 2>&1 &
LPID=$!; track_pid $LPID
ip netns exec "$NS" "$RUN" --preload --standalone --cpus 1 \
  --eal "--no-pci --file-prefix ${PFX}c --log-level=pmd.net.tap:error --vdev=net_tap0,iface=${IFC}c" \
  --dpnet "--ip 10.87.0.2/24 --poll hybrid" -- "$B/app/net_latency" --kernel --server 10.87.0.1 \
  --port 9 --count 2000 --timeout 20 --json >"$CLOG.out" 2>"$CLOG" &
CPID=$!; track_pid $CPID; track_file "$CLOG.out"
# The client's tap appears once its worker starts (at its first socket
# call): then the Linux side gets its address; the SYN waits for it.
tap_there() { ip netns exec "$NS" ip link show "${IFC}c" >/dev/null 2>&1; }
wait_for 20 tap_there || true
ip netns exec "$NS" ip addr add 10.87.0.1/24 dev "${IFC}c" 2>/dev/null || true
ip netns exec "$NS" ip link set "${IFC}c" up 2>/dev/null || true
r=0; wait $CPID || r=$?
echo "# $(tail -1 "$CLOG.out")"
check "a socket client connects out through the layer: 2000 round trips (exit $r)" \
  bash -c "[ $r = 0 ] && grep -q '\"messages\": 2000' '$CLOG.out'"
check "... from dpnet's address (its worker counted the connection)" \
  grep -q "^dpnet stats: .*connections 1 total" "$CLOG"

# The calls' contracts (test/tools/posixprobe.c), through the layer against
# a Linux peer: an echo port, a resetting port, a closed port, a silent one
# (and a late one, for the signals below).
ip netns exec "$NS" $PY "$HERE/posix_peer.py" 17 18 20 21 >/dev/null 2>&1 &
track_pid $!
PL=/tmp/dpn-px-probe-$TAG.log; track_file "$PL"; track_file "$PL.err"
ip netns exec "$NS" "$RUN" --preload --standalone --cpus 1 \
  --eal "--no-pci --file-prefix ${PFX}p --log-level=pmd.net.tap:error --vdev=net_tap0,iface=${IFC}p" \
  --dpnet "--ip 10.89.0.2/24 --poll hybrid" -- "$B/test/tools/posixprobe" 10.89.0.1 17 18 19 20 \
  >"$PL" 2>"$PL.err" &
PP=$!; track_pid $PP; track_prefix "${PFX}p"
probe_tap() { ip netns exec "$NS" ip link show "${IFC}p" >/dev/null 2>&1; }
wait_for 20 probe_tap || true
ip netns exec "$NS" ip addr add 10.89.0.1/24 dev "${IFC}p" 2>/dev/null || true
ip netns exec "$NS" ip link set "${IFC}p" up 2>/dev/null || true
r=0; wait $PP || r=$?
sed 's/^/  /' "$PL"
check "posixprobe: every contract held (exit $r)" bash -c "[ $r = 0 ] && grep -q '^# posixprobe: 0 failed' '$PL'"
check "... through dpnet (its worker's counters)" grep -q "^dpnet stats: .*connections [1-9][0-9]* total" "$PL.err"
zc=$(sed -n 's/^dpnet stats: .*zero-copy tx [0-9]* pieces \([0-9]*\) bytes.*/\1/p' "$PL.err")
# 3.1 MB through sendfile; a piece under 1024 bytes (the tail of a partial
# send, the part of a piece that fills a segment) is copied into the frame,
# as any small piece is (buf.h: DPN_ZC_MIN): 2.66 MB went in place here.
check "... sendfile's 3.1 MB went out of mbufs filled from the file, most of it (zero-copy tx ${zc:-?} bytes)" \
  test "${zc:-0}" -ge 2400000
check "... SO_REUSEPORT was named as accepted, once" \
  bash -c "[ \$(grep -c 'SO_REUSEPORT: accepted' '$PL.err') = 1 ]"
check "... the refused listen said why" grep -q "listen on an unbound socket or port 0 is not supported" "$PL.err"

# A caught signal and a socket timeout end a blocking call as the kernel's
# do (posixprobe --signals): while the layer sleeps in the kernel (the
# default) and while it spins in the program's thread (busy: a signal then
# never meets a system call; nginx once missed its SIGTERM that way).
sub=90
for spin in 50 busy; do
  SL=/tmp/dpn-px-sig$sub-$TAG.log; track_file "$SL"; track_file "$SL.err"; track_prefix "${PFX}s$sub"
  ip netns exec "$NS" env DPNET_POSIX_SPIN_US=$spin "$RUN" --preload --standalone --cpus 1 \
    --eal "--no-pci --file-prefix ${PFX}s$sub --log-level=pmd.net.tap:error --vdev=net_tap0,iface=${IFC}s$sub" \
    --dpnet "--ip 10.$sub.0.2/24 --poll hybrid" -- "$B/test/tools/posixprobe" --signals 10.$sub.0.1 17 20 21 \
    >"$SL" 2>"$SL.err" &
  PP=$!; track_pid $PP
  sig_tap() { ip netns exec "$NS" ip link show "${IFC}s$sub" >/dev/null 2>&1; }
  wait_for 20 sig_tap || true
  ip netns exec "$NS" ip addr add 10.$sub.0.1/24 dev "${IFC}s$sub" 2>/dev/null || true
  ip netns exec "$NS" ip link set "${IFC}s$sub" up 2>/dev/null || true
  r=0; wait $PP || r=$?
  sed 's/^/  /' "$SL"
  check "signals and timeouts, the layer's wait spinning $spin: every contract held (exit $r)" \
    bash -c "[ $r = 0 ] && grep -q '^# posixprobe: 0 failed' '$SL'"
  check "... through dpnet (its worker's counters)" grep -q "^dpnet stats: .*connections [1-9][0-9]* total" "$SL.err"
  sub=$((sub + 1))
done

# Without DPNET_ARGS the layer says so and the kernel serves (an address
# of the namespace's own, not loopback, which never asks for dpnet).
ip netns exec "$NS" ip addr add 10.88.0.1/32 dev lo
ip netns exec "$NS" env LD_PRELOAD="$DPNET_POSIX_LIB" DPNET_ARGS= timeout 10 "$B/app/net_latency" \
  --kernel --server 10.88.0.1 --port 9 --count 200 >"$CLOG" 2>&1 && r=0 || r=$?
check "without DPNET_ARGS: a clear message, and the kernel's sockets work (exit $r)" \
  bash -c "[ $r = 0 ] && grep -q 'DPNET_ARGS is not set' '$CLOG'"
check "dpnet-run --preload without a mode: refused, saying what is missing" \
  bash -c "! '$RUN' --preload -- true 2>'$CLOG' && grep -q 'needs --file-prefix' '$CLOG'"
finish
