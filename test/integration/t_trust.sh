#!/usr/bin/env bash
# dpnetd trusts nothing a worker says or writes (issue 14): test/tools/badctl,
# a hostile DPDK secondary, spoofs pids and applications, floods dpnetd with
# descriptors, requests and RESOLVEs, exhausts its quotas, and writes at
# random into every shared structure of dpnet's own, while an attached
# echoserver serves. dpnetd may misroute, never crash (ASan build: no
# report), and once badctl is gone every slot, binding and descriptor is
# back. Then: dpnetd with poll.sleep_max_us = 1000000 sleeps, and stops
# (instead of spinning) when its tap interface is deleted.
source "$(dirname "$0")/lib.sh"

NS=dpn-tr-$TAG IFC=dtr$TAG PFX=dptr$TAG
SIP=10.83.0.2 PIP=10.83.0.1
DLOG=/tmp/dpn-tr-$TAG.log
SECRET=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
track_prefix "$PFX"
new_ns "$NS"
nsx() { ip netns exec "$NS" "$@"; }
peer() { ip netns exec "$NS" $PY "$HERE/peer.py" "$@"; }
ctl() { "$B/app/dpnetctl" --file-prefix "$PFX" "$@"; }
EAL=(--no-pci --proc-type=secondary --file-prefix "$PFX" --log-level=pmd.net.tap:error --log-level=lib.eal:error)
sanitizer_clean() { ! grep -qE "AddressSanitizer|LeakSanitizer|runtime error" "$1"; }
nfds() { ls "/proc/$1/fd" | wc -l; }

start_dpnetd "$NS" "$IFC" "$PFX" $SIP/24 $PIP/24 "$DLOG" --queues 4

WLOG=/tmp/dpn-trw-$TAG.log; track_file "$WLOG"
DPNET_APP_SECRET=$SECRET ip netns exec "$NS" "$B/app/echoserver" "${EAL[@]}" --lcores=7@1 -- --app echo --port 7 \
  --poll hybrid >"$WLOG" 2>&1 &
WPID=$!; track_pid $WPID
wait_log "$WLOG" "listening on port" 15
check "echoserver attached serves port 7" peer concurrent $SIP 7 20
SPARE=$(ctl workers | awk '$6=="echo"{print $1}')
check "found echoserver's slot ($SPARE)" test -n "$SPARE"
base_fds=$(nfds $DPID)
echo "# dpnetd holds $base_fds descriptors"

# 1. Malformed and unauthorised requests (the set t_daemon.sh runs too).
BLOG=/tmp/dpn-trb-$TAG.log; track_file "$BLOG"
check "badctl: malformed and unauthorised requests all rejected" \
  nsx "$B/test/tools/badctl" "${EAL[@]}" --lcores=10@0 -- 7 >"$BLOG" 2>&1
grep -E "^(not )?ok" "$BLOG" | sed 's/^/#   /'
check "... each case" bash -c "grep -q '^ok' $BLOG && ! grep -q '^not ok' $BLOG"

# 2. Spoofing, floods and quotas. Another uid (65534) must reach the socket:
# open the runtime directory to it for this test only.
rundir=/var/run/dpdk/$PFX
mode_top=$(stat -c %a /var/run/dpdk)
chmod o+x /var/run/dpdk "$rundir"
chmod o+rw "$rundir/dpnetd_ctl"
TLOG=/tmp/dpn-trt-$TAG.log; track_file "$TLOG"
trc=0
nsx "$B/test/tools/badctl" "${EAL[@]}" --lcores=10@0 -- 7 --trust echo "$SECRET" >"$TLOG" 2>&1 || trc=$?
chmod "$mode_top" /var/run/dpdk
grep -E "^(not )?ok" "$TLOG" | sed 's/^/#   /'
check "badctl --trust: every case as expected (exit $trc)" \
  bash -c "[ $trc -eq 0 ] && grep -q '^ok' $TLOG && ! grep -q '^not ok' $TLOG"
for c in "spoofed pid" "spoofed app" "uid 65534 joining" "port 80" "descriptors" \
  "answered during a request flood" "rate limited" "65th port" "5th connection" \
  "every worker queue is taken" "RESOLVEs"; do
  check "... covers: $c" grep -q "^ok.*$c" "$TLOG"
done

# 3. Random writes into shared memory while traffic flows: TCP echo to the
# echoserver, UDP to badctl's own port 4001 (dpnetd enqueues into the ring
# whose header badctl scribbles).
ULOG=/tmp/dpn-tru-$TAG.log; track_file "$ULOG"
ip netns exec "$NS" bash -c "for i in \$(seq 3000); do echo x >/dev/udp/$SIP/4001; sleep 0.002; done" >/dev/null 2>&1 &
UDP=$!; track_pid $UDP
KLOG=/tmp/dpn-trk-$TAG.log; track_file "$KLOG"
SLOG=/tmp/dpn-trs-$TAG.log; track_file "$SLOG"
src=0
nsx "$B/test/tools/badctl" "${EAL[@]}" --lcores=10@0 -- 7 --scribble 5 "$SPARE" >"$SLOG" 2>&1 || src=$?
wait $UDP 2>/dev/null || true
grep -E "^(not )?ok" "$SLOG" | sed 's/^/#   /'
check "badctl --scribble: dpnetd republished and kept answering (exit $src)" \
  bash -c "[ $src -eq 0 ] && ! grep -q '^not ok' $SLOG"
check "dpnetd is alive" kill -0 $DPID
check "dpnetd: no sanitizer report" sanitizer_clean "$DLOG"
check "dpnetd answers ping" nsx ping -c 2 -i 0.2 -W 2 $SIP
check "echoserver still serves port 7" peer concurrent $SIP 7 20
check "echoserver is alive" kill -0 $WPID

# 4. Every slot, binding and descriptor is back.
for _ in $(seq 30); do
  [ "$(ctl workers | grep -c attached)" -eq 1 ] && [ "$(nfds $DPID)" -eq "$base_fds" ] && break
  sleep 0.1
done
ctl workers | sed 's/^/# /'
check "only echoserver is attached" test "$(ctl workers | grep -c attached)" -eq 1
ctl bindings | sed 's/^/# /'
check "only echoserver's binding is left" test "$(ctl bindings | awk 'NR>1 && $1!=7' | wc -l)" -eq 0
check "dpnetd holds as many descriptors as before badctl ($(nfds $DPID) now, $base_fds before)" \
  test "$(nfds $DPID)" -eq "$base_fds"
check "the control socket is still there" test -S "$rundir/dpnetd_ctl"

check "echoserver stops cleanly" stop_proc $WPID
check "dpnetd stops cleanly" stop_proc $DPID
check "dpnetd: no sanitizer report at exit" sanitizer_clean "$DLOG"
check "dpnetd counted the ARP requests it held back" grep -qE "ARP requests for workers \([1-9]" "$DLOG"

# 5. poll.sleep_max_us = 1000000 (a second is 1000000000 ns, not a valid
# tv_nsec), and the tap interface deleted under dpnetd.
CONF=/tmp/dpn-trc-$TAG.conf; track_file "$CONF"
printf 'poll: { mode = "hybrid"; sleep_max_us = 1000000; };\n' >"$CONF"
PFX2=dptq$TAG IFC2=dtq$TAG; track_prefix "$PFX2"
DLOG2=/tmp/dpn-trq-$TAG.log; track_file "$DLOG2"
ip netns exec "$NS" "$B/app/dpnetd" --no-pci -l 0 --file-prefix "$PFX2" --log-level=pmd.net.tap:error \
  --vdev="net_tap0,iface=$IFC2" -- -c "$CONF" --ip 10.84.0.2/24 --queues 2 >"$DLOG2" 2>&1 &
D2=$!; track_pid $D2
wait_log "$DLOG2" "dpnetd: serving" 15
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sleep 1 # set-up is over
t0=$(ticks $D2); sleep 2; t1=$(ticks $D2)
echo "# idle dpnetd (sleep_max_us 1000000): $((t1 - t0)) CPU ticks in 2 s ($(getconf CLK_TCK)/s)"
check "dpnetd with sleep_max_us 1000000 sleeps (under half a CPU)" test $((t1 - t0)) -lt "$(getconf CLK_TCK)"
nsx ip link del "$IFC2"
for _ in $(seq 100); do kill -0 $D2 2>/dev/null || break; sleep 0.1; done
grep -iE "gone|stopping|interrupt" "$DLOG2" | sed 's/^/# /' || true
check "dpnetd stops when its tap interface is deleted" bash -c "! kill -0 $D2 2>/dev/null"
check "... saying why" grep -q "is gone" "$DLOG2"
rc2=0; wait $D2 || rc2=$?
check "... cleanly (exit $rc2)" test "$rc2" -eq 0
check "... without a sanitizer report" sanitizer_clean "$DLOG2"
finish
