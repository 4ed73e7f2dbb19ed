#!/usr/bin/env bash
# Debian's own redis-server, nginx and memcached, unmodified, on a standalone
# dpnet worker each (tools/dpnet-run --preload, net_tap); Linux behind the
# tap is the client (redis-cli, redis-benchmark, curl, wrk, pymemcache). The
# servers' address is dpnet's alone: every answer went through dpnet.
source "$(dirname "$0")/lib.sh"

for p in redis-server redis-cli redis-benchmark nginx memcached curl wrk; do
  command -v $p >/dev/null || { not_ok "$p is installed (tools/setup.sh)"; finish; exit 1; }
done
NS=dpn-sv-$TAG
new_ns "$NS"
RUN=$(cd "$HERE/../.." && pwd)/tools/dpnet-run
export DPNET_POSIX_LIB=$B/posix/libdpnet-posix.so
export ASAN_OPTIONS="$ASAN_OPTIONS:verify_asan_link_order=0"
D=/tmp/dpn-sv-$TAG
mkdir -p "$D"; track_file "$D"
in_ns() { ip netns exec "$NS" "$@"; }

# serve NAME NET LOG CMD...: a dpnet worker on tap sv<NAME><TAG> with
# address 10.NET.0.2; the Linux side gets 10.NET.0.1.
serve() {
  local name=$1 net=$2 log=$3; shift 3
  local ifc=sv$name$TAG pfx=sv$name$TAG
  track_prefix "$pfx"
  # ip netns exec, then dpnet-run, exec: $! is the server itself
  ip netns exec "$NS" "$RUN" --preload --standalone --cpus 1 \
    --eal "--no-pci --file-prefix $pfx --log-level=pmd.net.tap:error --vdev=net_tap0,iface=$ifc" \
    --dpnet "--ip 10.$net.0.2/24 --poll hybrid" -- "$@" >"$log" 2>&1 &
  SPID=$!; track_pid $SPID
  wait_log "$log" "dpnet: port 0 (net_tap) up" 30 || return 1
  in_ns ip addr add 10.$net.0.1/24 dev "$ifc"
  in_ns ip link set "$ifc" up
}
# stopped PID LOG: SIGTERM, gone within 10 s, counters printed, mbufs back
stopped() {
  local rc=0
  kill -TERM "$1" 2>/dev/null || { echo "# $1 is gone already"; return 1; }
  gone() { ! kill -0 "$1" 2>/dev/null; }
  wait_for 10 gone "$1" || { echo "# $1 still runs 10 s after SIGTERM"; kill -KILL "$1"; return 1; }
  wait "$1" || rc=$?
  [ "$rc" = 0 ] || { echo "# exit status $rc"; return 1; }
  grep -aq "dpnet stats: .*connections [1-9][0-9]* total" "$2" || { echo "# no counters in $2"; return 1; }
  mbufs_back "$2"
}

# ---- redis ----
RL=$D/redis.log
check "redis-server starts on dpnet" serve r 91 "$RL" redis-server --port 6379 --bind 0.0.0.0 \
  --save '' --appendonly no --protected-mode no --daemonize no --logfile "$D/redis-own.log"
check "... answers PING" wait_for 10 bash -c "ip netns exec $NS redis-cli -h 10.91.0.2 ping | grep -q PONG"
head -c 65536 /dev/urandom | base64 -w0 >"$D/val"
in_ns redis-cli -h 10.91.0.2 -x set big <"$D/val" >/dev/null
check "a 87 KiB value read back intact" bash -c "ip netns exec $NS redis-cli -h 10.91.0.2 --raw get big | \
  head -c \$(stat -c %s $D/val) | cmp -s - $D/val"
in_ns timeout 120 redis-benchmark -h 10.91.0.2 -q -n 20000 -t set,get,incr,lpush,lrange_100 -P 16 --csv \
  >"$D/rb.csv" 2>&1 || true
sed 's/^/# /' "$D/rb.csv" | head -8
check "redis-benchmark -P 16: SET GET INCR LPUSH LRANGE_100, 20000 each" \
  bash -c "for t in SET GET INCR LPUSH LRANGE_100; do grep -q \"^\\\"\$t\" $D/rb.csv || exit 1; done"
check "... every INCR counted (20000)" bash -c "[ \"\$(ip netns exec $NS redis-cli -h 10.91.0.2 get counter:__rand_int__)\" = 20000 ]"
in_ns timeout 60 redis-benchmark -h 10.91.0.2 -q -n 5000 -t set,get -c 16 --csv >"$D/rb1.csv" 2>&1 || true
check "redis-benchmark, 16 clients without pipelining" grep -q '^"GET' "$D/rb1.csv"
check "redis-server stops on SIGTERM, its worker's counters printed, mbufs back" stopped $SPID "$RL"

# ---- redis attached to dpnetd (a worker of the daemon's port) ----
PFX=svd$TAG DLOG=$D/dpnetd.log AL=$D/redis-att.log
track_prefix "$PFX"
check "dpnetd starts" start_dpnetd "$NS" "svd$TAG" "$PFX" 10.96.0.2/24 10.96.0.1/24 "$DLOG" --queues 2
ip netns exec "$NS" "$RUN" --preload --file-prefix "$PFX" --cpus 1 --eal "--log-level=pmd.net.tap:error" \
  --dpnet "--poll hybrid" -- redis-server --port 6379 --bind 0.0.0.0 --save '' --appendonly no \
  --protected-mode no --daemonize no --logfile "$D/redis-att-own.log" >"$AL" 2>&1 &
APID=$!; track_pid $APID
check "redis-server attached to dpnetd answers PING" \
  wait_for 20 bash -c "ip netns exec $NS redis-cli -h 10.96.0.2 ping 2>/dev/null | grep -q PONG"
in_ns timeout 60 redis-benchmark -h 10.96.0.2 -q -n 10000 -t set,get -P 16 --csv >"$D/rba.csv" 2>&1 || true
check "... redis-benchmark -P 16 through dpnetd's port" grep -q '^"GET' "$D/rba.csv"
check "... dpnetd lists it as a worker" bash -c "'$B/app/dpnetctl' --file-prefix $PFX workers 2>&1 | grep -q redis-server"
check "attached redis-server stops on SIGTERM, counters printed, mbufs back" stopped $APID "$AL"
check "dpnetd stops cleanly" stop_proc $DPID

# ---- nginx ----
NL=$D/nginx.log
mkdir -p "$D/www" "$D/tmp"
head -c 1048576 /dev/urandom >"$D/www/blob"
head -c 1024 /dev/urandom >"$D/www/1k"
cat >"$D/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
error_log $NL info;
pid $D/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $D/tmp; proxy_temp_path $D/tmp; fastcgi_temp_path $D/tmp;
  uwsgi_temp_path $D/tmp; scgi_temp_path $D/tmp;
  sendfile on; tcp_nopush on; keepalive_requests 100000;
  server { listen 8080; root $D/www; }
}
EOF
check "nginx (one process) starts on dpnet" serve n 92 "$NL.out" nginx -c "$D/nginx.conf"
check "... a 1 MiB file by curl, hash compared" bash -c "ip netns exec $NS curl -sf -m 20 \
  http://10.92.0.2:8080/blob | cmp -s - $D/www/blob"
check "... 20 requests on one keep-alive connection" bash -c "ip netns exec $NS curl -sf -m 20 \
  \$(for i in \$(seq 20); do echo http://10.92.0.2:8080/1k; done) | cmp -s - <(for i in \$(seq 20); do cat $D/www/1k; done)"
for c in 1 64; do
  in_ns timeout 30 wrk -t1 -c$c -d2 http://10.92.0.2:8080/1k >"$D/wrk$c" 2>&1 || true
  echo "# wrk -c$c: $(grep -E 'Requests/sec' "$D/wrk$c")"
  check "wrk -c$c: answers, no socket errors, no non-2xx" bash -c "grep -q 'Requests/sec' $D/wrk$c && \
    ! grep -qE 'Socket errors|Non-2xx' $D/wrk$c"
done
check "nginx stops on SIGTERM, its worker's counters printed, mbufs back" stopped $SPID "$NL"
zc=$(sed -n 's/^dpnet stats: .*zero-copy tx [0-9]* pieces \([0-9]*\) bytes.*/\1/p' "$NL")
check "... its sendfile sent the 1 MiB file out of mbufs filled from it (zero-copy tx ${zc:-?} bytes)" \
  test "${zc:-0}" -ge 1048576

# ---- memcached ----
ML=$D/memcached.log
check "memcached -t 1 (a listener and a worker thread) starts on dpnet" \
  serve m 93 "$ML" memcached -t 1 -U 11211 -p 11211 -l 0.0.0.0 -u root
check "... 300 set/get of 1 B to 100 KiB intact (pymemcache)" in_ns $PY -c '
from pymemcache.client.base import Client
c = Client(("10.93.0.2", 11211), connect_timeout=5, timeout=10)
vals = {"k%d" % i: bytes([i % 251]) * (1 + i * 337 % 102400) for i in range(300)}
for k, v in vals.items():
    assert c.set(k, v, noreply=False)
assert all(c.get(k) == v for k, v in vals.items())
c.close()'
check "... UDP (memcached's frame header): set, then get it back" in_ns $PY -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
def ask(rid, cmd):
    s.sendto(rid.to_bytes(2, "big") + b"\x00\x00\x00\x01\x00\x00" + cmd, ("10.93.0.2", 11211))
    d, _ = s.recvfrom(65536)
    assert d[:2] == rid.to_bytes(2, "big"), d
    return d[8:]
assert ask(7, b"set udpkey 0 0 11\r\nhello world\r\n") == b"STORED\r\n"
assert ask(8, b"get udpkey\r\n") == b"VALUE udpkey 0 11\r\nhello world\r\nEND\r\n"'
check "memcached stops on SIGTERM, its worker's counters printed, mbufs back" stopped $SPID "$ML"

# ---- clients through the layer, to Linux servers (outgoing connections) ----
# client NAME NET OUT CMD...: CMD on a dpnet worker (10.NET.0.2); once its
# tap appears, the Linux side gets 10.NET.0.1 (its first SYN waits for that).
client() {
  local name=$1 net=$2 out=$3; shift 3
  local ifc=sv$name$TAG pfx=sv$name$TAG r=0
  track_prefix "$pfx"
  ip netns exec "$NS" "$RUN" --preload --standalone --cpus 1 \
    --eal "--no-pci --file-prefix $pfx --log-level=pmd.net.tap:error --vdev=net_tap0,iface=$ifc" \
    --dpnet "--ip 10.$net.0.2/24 --poll hybrid" -- "$@" >"$out" 2>"$out.err" &
  local p=$!; track_pid $p
  tap_up() { ip netns exec "$NS" ip link show "$1" >/dev/null 2>&1; }
  wait_for 20 tap_up "$ifc" || true
  in_ns ip addr add 10.$net.0.1/24 dev "$ifc" 2>/dev/null || true
  in_ns ip link set "$ifc" up 2>/dev/null || true
  wait "$p" || r=$?
  grep -q "dpnet stats: .*connections [1-9][0-9]* total" "$out.err" || { echo "# not through dpnet"; return 1; }
  return "$r"
}
ip netns exec "$NS" $PY -m http.server 8088 --bind 0.0.0.0 --directory "$D/www" >/dev/null 2>&1 &
track_pid $!
ip netns exec "$NS" redis-server --port 6390 --bind 0.0.0.0 --save '' --appendonly no \
  --protected-mode no --daemonize no --logfile "$D/kredis.log" &
track_pid $!
check "curl through the layer fetches 1 MiB from a Linux server, hash compared" \
  client c 94 "$D/curl.out" curl -sf -m 30 --retry 3 --retry-connrefused -o "$D/got" http://10.94.0.1:8088/blob
check "... intact" cmp -s "$D/got" "$D/www/blob"
check "redis-benchmark through the layer against a Linux redis-server" \
  client b 95 "$D/rbk.out" redis-benchmark -h 10.95.0.1 -p 6390 -q -n 2000 -t set,get -c 4 --csv
check "... both tests ran" bash -c "grep -q '^\"SET' $D/rbk.out && grep -q '^\"GET' $D/rbk.out"
grep -ah "^dpnet-posix:" "$D"/*.log "$D"/*.out "$D"/*.err 2>/dev/null | sort | uniq -c | sed "s/^/# met: /"
finish
