#!/usr/bin/env bash
# MTU 9000 end to end over net_memif: TCP segments of 8960 bytes, the echo
# sent zero-copy, every echoed byte compared (net_latency --bulk --verify).
# DPDK 22.11's memif breaks frames longer than one of its buffers, so each
# end needs bsize=9216; without it dpnet says so and keeps MTU 1500.
source "$(dirname "$0")/lib.sh"

SOCK=/tmp/dpn-mj-$TAG.sock SLOG=/tmp/dpn-mj-srv-$TAG.log CLOG=/tmp/dpn-mj-cli-$TAG.log
track_file "$SOCK"; track_file "$SLOG"; track_file "$CLOG"
BULK=$((24 << 20))

server() { # extra vdev args
  rm -f "$SOCK"
  "$B/app/echoserver" --no-pci -l 1 --vdev=net_memif0,role=server,socket=$SOCK$1 -- \
    --ip 10.77.0.1/24 --poll hybrid --mtu 9000 >"$SLOG" 2>&1 &
  SERVER_PID=$!; track_pid $SERVER_PID
  wait_log "$SLOG" "listening on port" 15
}
client() { # extra vdev args, then net_latency options
  local v=$1; shift
  "$B/app/net_latency" --no-pci -l 0 --vdev=net_memif0,role=client,socket=$SOCK$v -- \
    --ip 10.77.0.2/24 --poll hybrid --mtu 9000 --server 10.77.0.1 --timeout 60 "$@" 2>"$CLOG"
}
# Average frame the server received: bytes over frames of its stats line.
avg_frame() {
  sed -n 's/^dpnet stats: rx \([0-9]*\) pkts \([0-9]*\) bytes.*/\2 \1/p' "$SLOG" |
    awk '{ if ($2 > 0) printf "%d", $1 / $2; else print 0 }'
}

check "echoserver starts at MTU 9000 with bsize=9216" server ",bsize=9216"
check "... and says so" grep -q "mtu 9000" "$SLOG"
out=$(client ",bsize=9216" --bulk $BULK --verify --json | tail -1)
echo "# $out"
check "$((BULK >> 20)) MiB echoed at MTU 9000, every byte as sent" \
  $PY -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if r["bulk"]["total_bytes"] == int(sys.argv[2]) else 1)' \
  "$out" "$BULK"
check "64 B round trips at MTU 9000" bash -c "$(declare -f client); B=$B SOCK=$SOCK CLOG=$CLOG; \
  client ',bsize=9216' --count 2000 --json | tail -1 | grep -q '\"messages\": 2000'"
check "the server stops cleanly" stop_proc $SERVER_PID
f=$(avg_frame)
echo "# server received frames of $f bytes on average"
check "jumbo segments carried the stream (average frame $f bytes > 2000)" test "${f:-0}" -gt 2000
check "the echo went out zero-copy" grep -qE "zero-copy tx [1-9][0-9]* pieces" "$SLOG"
check "no mbuf leaked" mbufs_back "$SLOG"

# Without bsize: refused for MTU 9000 with the fix named; MTU 1500 works.
check "without bsize: echoserver starts" server ""
check "... and says memif needs bsize=9216 for MTU 9000" \
  grep -q "MTU 9000 needs memif buffers of 9014 bytes or more (bsize=9216" "$SLOG"
check "... and runs at MTU 1500" grep -q "mtu 1500" "$SLOG"
out=$(client "" --bulk $((4 << 20)) --verify --json | tail -1)
check "... where 4 MiB echo intact" \
  $PY -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if r["bulk"]["total_bytes"] == 4 << 20 else 1)' "$out"
check "... the server stops cleanly" stop_proc $SERVER_PID
f=$(avg_frame)
check "... in frames of at most 1514 bytes (average $f)" test "${f:-9999}" -le 1514
finish
