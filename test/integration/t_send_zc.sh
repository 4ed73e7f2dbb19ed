#!/usr/bin/env bash
# tcp.send_zc: TCP data sent from mbufs (dpn_send copies once, into mbufs;
# each frame goes out in its data's mbuf). On by default only on PCI NICs;
# here forced on (send_zc 2) on both ends of a memif link, with dpnet's
# fault layer dropping, duplicating, reordering and corrupting the client's
# frames: the bulk echo must come back intact (retransmissions reuse the
# same mbufs), and every mbuf must be back in its pool at exit. Both ends
# check checksums (port.csum full; memif's default trusts them), or a
# corrupted frame would pass.
source "$(dirname "$0")/lib.sh"

SOCK=/tmp/dpn-szc-$TAG.sock
D=/tmp/dpn-szc-$TAG
mkdir -p "$D"
track_file "$SOCK"; track_file "$D"

"$B/app/echoserver" --no-pci -l 1 --log-level='dpnet.*:info' \
  --vdev=net_memif0,role=server,socket=$SOCK -- --ip 10.80.0.1/24 --poll hybrid --send-zc 2 \
  --csum full >"$D/srv.log" 2>&1 &
SERVER_PID=$!; track_pid $SERVER_PID
wait_log "$D/srv.log" "listening on port" 15

client() { # LOG ARGS...
  local log=$1; shift
  "$B/app/net_latency" --no-pci -l 0 --log-level='dpnet.*:info' \
    --vdev=net_memif0,role=client,socket=$SOCK -- --ip 10.80.0.2/24 --poll hybrid --csum full \
    --server 10.80.0.1 --timeout 120 "$@" >"$log.out" 2>"$log"
}

r=0; client "$D/clean" --send-zc 2 --bulk $((16 << 20)) --verify --json || r=$?
check "send_zc 2: the start-up says TCP data goes from mbufs" \
  grep -q "TCP data sent from mbufs (tcp.send_zc 2): yes" "$D/clean"
check "... 16 MiB echoed intact (exit $r)" bash -c "[ $r = 0 ] && grep -q gbit_per_s '$D/clean.out'"
zc() { grep -o "zero-copy tx [0-9]* pieces" "$1" | awk '{print $3}'; }
check "... the client's frames went out in their mbufs ($(zc "$D/clean") pieces)" \
  bash -c "[ \"\$(grep -o 'zero-copy tx [0-9]* pieces' '$D/clean' | awk '{print \$3}')\" -gt 5000 ]"
check "... every client mbuf back" mbufs_back "$D/clean"

spec="drop=0.02,dup=0.02,reorder=0.02,corrupt=0.01,seed=21"
r=0; client "$D/loss" --send-zc 2 --fault "$spec" --bulk $((8 << 20)) --verify --json || r=$?
grep -h "^dpnet faults:" "$D/loss" | sed "s/^/# /"
check "faults on the client ($spec): 8 MiB echoed intact (exit $r)" \
  bash -c "[ $r = 0 ] && grep -q gbit_per_s '$D/loss.out'"
check "... faults were injected" grep -qE "^dpnet faults: .*dropped [1-9]" "$D/loss"
check "... every client mbuf back" mbufs_back "$D/loss"

r=0; client "$D/off" --send-zc 0 --bulk $((4 << 20)) --verify --json || r=$?
check "send_zc 0: copied (no piece sent in place), 4 MiB intact (exit $r)" \
  bash -c "[ $r = 0 ] && grep -q 'tcp.send_zc 0): no' '$D/off' && grep -q 'zero-copy tx 0 pieces' '$D/off'"
check "server stops cleanly" stop_proc $SERVER_PID
check "... with every mbuf back" mbufs_back "$D/srv.log"
finish
