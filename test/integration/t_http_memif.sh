#!/usr/bin/env bash
# httpd over net_memif with a DPDK client (net_latency --http): keep-alive
# GETs of /hello and of a cached file, every response's status line checked
# and its length learned from the first; a 404 is reported, not measured.
source "$(dirname "$0")/lib.sh"

SOCK=/tmp/dpn-hm-$TAG.sock SLOG=/tmp/dpn-hm-srv-$TAG.log ROOT=/tmp/dpn-hm-root-$TAG
track_file "$SOCK"; track_file "$SLOG"; track_file "$ROOT"
mkdir -p "$ROOT"; printf 'a small file\n' >"$ROOT/small.txt"
"$B/app/httpd" --no-pci -l 1 --vdev=net_memif0,role=server,socket=$SOCK -- --ip 10.79.0.1/24 \
  --poll hybrid --port 80 --root "$ROOT" >"$SLOG" 2>&1 &
SERVER_PID=$!; track_pid $SERVER_PID
check "httpd listens on memif" wait_log "$SLOG" "listening on port" 15
client() {
  "$B/app/net_latency" --no-pci -l 0 --vdev=net_memif0,role=client,socket=$SOCK \
    -- --ip 10.79.0.2/24 --poll hybrid --server 10.79.0.1 --port 80 --timeout 60 "$@"
}
out=$(client --http /hello --count 3000 --warmup 100 --json 2>/dev/null | tail -1)
echo "# $out"
check "3000 GET /hello over memif, each a 200" \
  $PY -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if r["messages"] == 3000 and "http GET /hello" in r["what"] else 1)' "$out"
out=$(client --http /small.txt --count 2000 --warmup 100 --json 2>/dev/null | tail -1)
check "2000 GET of a cached file" \
  $PY -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if r["messages"] == 2000 else 1)' "$out"
e=$(client --http /missing --count 10 2>&1) && r=0 || r=$?
check "a 404 ends the measurement with a message (exit $r)" \
  bash -c "[ $r = 1 ] && grep -q 'not an HTTP 200 response' <<<'$e'"
e=$(client --http nopath --count 10 2>&1) && r=0 || r=$?
check "--http takes an absolute path only (exit $r)" test "$r" = 2
check "httpd stops cleanly" stop_proc $SERVER_PID
check "... served them from its file cache" grep -qE "file cache [1-9][0-9]* hits" "$SLOG"
finish
