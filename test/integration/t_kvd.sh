#!/usr/bin/env bash
# kvd (app/kvd.c), the second embedding example: memcached's text protocol
# over TCP and UDP against real clients from Debian (pymemcache, and
# libmemcached's memccp/memccat/memcexist/memcrm), with pipelining, split
# requests, a slow reader, bad input; then two workers of one application
# behind dpnetd on ports 11211 and 11212, sharded by libmemcached.
source "$(dirname "$0")/lib.sh"

NS=dpn-kv-$TAG IFC=dk$TAG
SIP=10.94.0.2 PIP=10.94.0.1
new_ns "$NS"
nsx() { ip netns exec "$NS" "$@"; }
LOG=/tmp/dpn-kv-$TAG.log
track_file "$LOG"
ip netns exec "$NS" "$B/app/kvd" --no-pci -l 1 --log-level=pmd.net.tap:error \
  --vdev="net_tap0,iface=$IFC" -- --ip $SIP/24 --poll hybrid >"$LOG" 2>&1 &
KP=$!; track_pid $KP
check "kvd standalone on net_tap serves port 11211" wait_log "$LOG" "serving port 11211" 15
nsx ip addr add $PIP/24 dev "$IFC"
nsx ip link set "$IFC" up
while IFS= read -r l; do
  case "$l" in
    "ok - "*) ok "${l#ok - }" ;;
    "not ok - "*) not_ok "${l#not ok - }" ;;
    *) echo "# $l" ;;
  esac
done < <(nsx $PY "$HERE/kvd_client.py" $SIP 11211 2>&1 || true)

# libmemcached's tools (the C client library memcached users have).
W=$(mktemp -d /tmp/dpn-kvf.XXXXXX); track_file "$W"
head -c 70000 /dev/urandom >"$W/blob"
printf 'hello from memccp\n' >"$W/note"
check "memccp stores two files" bash -c "cd '$W' && ip netns exec '$NS' memccp --servers=$SIP:11211 blob note"
check "memcexist finds them" nsx memcexist --servers=$SIP:11211 blob note
# memccat adds a newline after each value.
check "memccat gives the 70000 bytes back" \
  bash -c "ip netns exec '$NS' memccat --servers=$SIP:11211 blob | head -c -1 | cmp - '$W/blob'"
check "memcrm removes one" nsx memcrm --servers=$SIP:11211 note
check "... memcexist no longer finds it" bash -c "! ip netns exec '$NS' memcexist --servers=$SIP:11211 note"
check "kvd stops cleanly" stop_proc $KP
check "... and says what it did" grep -qE "kvd: [1-9][0-9]* sets" "$LOG"
check "no sanitizer report" bash -c "! grep -qE 'Sanitizer|runtime error' $LOG"

# Two workers of one application behind dpnetd: worker i on 11211 + i,
# one table each; libmemcached spreads the keys over both.
PFX=dpkv$TAG DLOG=/tmp/dpn-kvd-$TAG.log
track_prefix "$PFX"
start_dpnetd "$NS" "dj$TAG" "$PFX" 10.95.0.2/24 10.95.0.1/24 "$DLOG" --queues 3
export DPNET_APP_SECRET=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
for i in 1 2; do
  L=/tmp/dpn-kvw$i-$TAG.log; track_file "$L"
  ip netns exec "$NS" "$B/app/kvd" --no-pci --proc-type=secondary --file-prefix "$PFX" -l 1 \
    --log-level=pmd.net.tap:error -- --app kv --poll hybrid >"$L" 2>&1 &
  KW[$i]=$!; track_pid ${KW[$i]}
  wait_log "$L" "serving port" 15 >/dev/null || true
done
L1=/tmp/dpn-kvw1-$TAG.log L2=/tmp/dpn-kvw2-$TAG.log
check "attached: worker 0 serves 11211, worker 1 serves 11212" \
  bash -c "grep -q 'worker 0 of 1 serving port 11211' '$L1' && grep -q 'worker 1 of 2 serving port 11212' '$L2'"
for k in $(seq 20); do echo "value $k" >"$W/key$k"; done
S2=10.95.0.2:11211,10.95.0.2:11212
check "memccp spreads 20 keys over the two workers" \
  bash -c "cd '$W' && ip netns exec '$NS' memccp --servers=$S2 key{1..20}"
check "... memccat reads each back" bash -c "for k in \$(seq 20); do ip netns exec '$NS' memccat --servers=$S2 key\$k | head -c -1 | cmp -s - '$W/key'\$k || exit 1; done"
for i in 1 2; do check "worker $i stops cleanly" stop_proc ${KW[$i]}; done
s1=$(sed -n 's/^kvd: \([0-9]*\) sets.*/\1/p' "$L1") s2=$(sed -n 's/^kvd: \([0-9]*\) sets.*/\1/p' "$L2")
check "both workers hold some of the 20 keys ($s1 + $s2)" bash -c "[ '${s1:-0}' -gt 0 ] && [ '${s2:-0}' -gt 0 ] && [ $((${s1:-0} + ${s2:-0})) = 20 ]"
check "dpnetd stops cleanly" stop_proc $DPID
finish
