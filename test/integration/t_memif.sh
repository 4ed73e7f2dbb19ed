#!/usr/bin/env bash
# Two dpnet hosts joined by net_memif (shared memory, no kernel on the path):
# net_latency against echoserver, TCP and UDP, one, several and 4096 connections.
source "$(dirname "$0")/lib.sh"

SOCK=/tmp/dpn-memif-$TAG.sock
SLOG=/tmp/dpn-memif-srv-$TAG.log
track_file "$SOCK"; track_file "$SLOG"
# The server logs at info: each client that leaves says goodbye first
# (stack/memif_bye.c), and the server must then serve the next one.
"$B/app/echoserver" --no-pci -l 1 --log-level='dpnet.*:info' \
  --vdev=net_memif0,role=server,socket=$SOCK -- --ip 10.78.0.1/24 --poll hybrid >"$SLOG" 2>&1 &
SERVER_PID=$!; track_pid $SERVER_PID
wait_log "$SLOG" "listening on port" 15

client() { # args for net_latency after the dpnet options
  "$B/app/net_latency" --no-pci -l 0 --vdev=net_memif0,role=client,socket=$SOCK \
    -- --ip 10.78.0.2/24 --poll hybrid --server 10.78.0.1 --timeout 60 "$@" 2>/dev/null
}
json_ok() { # output must be one JSON line with sane numbers
  /usr/bin/python3 -c '
import json, sys
r = json.loads(sys.stdin.read().strip().splitlines()[-1])
t = r["rtt_us"]
assert r["messages"] == int(sys.argv[1]), r
assert 0 < t["min"] <= t["p50"] <= t["p90"] <= t["p99"] <= t["p99.9"] <= t["max"], t
assert r["msgs_per_s"] > 0
print("# %s: p50 %.1f us p99 %.1f us, %d msgs/s" % (r["what"], t["p50"], t["p99"], r["msgs_per_s"]))
' "$1"
}
check "TCP 64 B ping-pong over memif" bash -c "$(declare -f client json_ok); B=$B SOCK=$SOCK; client --count 5000 --json | json_ok 5000"
check "UDP 64 B ping-pong over memif" bash -c "$(declare -f client json_ok); B=$B SOCK=$SOCK; client --udp --count 5000 --json | json_ok 5000"
check "TCP 16 connections, 1460 B" bash -c "$(declare -f client json_ok); B=$B SOCK=$SOCK; client --conns 16 --size 1460 --count 5000 --json | json_ok 5000"
# Many connections at once (issue 13): all 1024 SYNs leave before ARP has
# resolved the server, so all must wait in lwIP's ARP queue. It kept 3 per
# neighbour: the other 1021 were resent together 3 s later into a backlog of
# 255 (then without SYN cookies), 255 more each round, and connection 0, last
# in lwIP's pcb list, ran out of tries. net_latency exits 1 if any fails.
# 4096: past the backlog, SYN cookies, answered faster than the client
# reads them (see the cookie check at the end).
MLOG=/tmp/dpn-memif-many-$TAG.log; track_file "$MLOG"; track_file "$MLOG.out"
check "TCP 4096 connections opened at once: every one connects and echoes" bash -c "$(declare -f json_ok); \
  '$B/app/net_latency' --no-pci -l 0 --vdev=net_memif0,role=client,socket=$SOCK -- --ip 10.78.0.2/24 \
  --poll hybrid --server 10.78.0.1 --timeout 60 --conns 4096 --count 20000 --warmup 4096 --json \
  2>$MLOG >$MLOG.out || { grep '^net_latency' $MLOG | sed 's/^/# /'; exit 1; }; json_ok 20000 <$MLOG.out"
check "TCP 16 connections x 8 requests in flight" bash -c "$(declare -f client json_ok); B=$B SOCK=$SOCK; client --conns 16 --pipeline 8 --count 50000 --json | json_ok 50000"
check "TCP 64 KiB messages" bash -c "$(declare -f client json_ok); B=$B SOCK=$SOCK; client --size 65536 --count 300 --warmup 10 --json | json_ok 300"
# memif's zero-copy client: the server's memif copies straight into and out
# of the client's own mbufs, header mbufs and zero-copy pieces alike; dpnet
# adds the --single-file-segments it needs. Every echoed byte is compared.
ZLOG=/tmp/dpn-memif-zc-$TAG.log; track_file "$ZLOG"
check "TCP bulk, client memif zero-copy=yes: 64 MiB echoed intact" bash -c "\
  '$B/app/net_latency' --no-pci -l 0 --vdev=net_memif0,role=client,socket=$SOCK,zero-copy=yes -- \
  --ip 10.78.0.2/24 --poll hybrid --server 10.78.0.1 --timeout 60 --bulk 67108864 --verify >$ZLOG 2>&1 \
  && grep -q 'B echoed in' $ZLOG"
# More connections than the 16384 local ports: the client (which closes
# first) keeps TIME_WAIT in its table and reuses the oldest ports.
CRLOG=/tmp/dpn-memif-cr-$TAG.log; track_file "$CRLOG"
check "40000 connections, client closing first: local ports wrap through TIME_WAIT" bash -c "$(declare -f json_ok); \
  '$B/app/net_latency' --no-pci -l 0 --vdev=net_memif0,role=client,socket=$SOCK -- --ip 10.78.0.2/24 \
  --poll hybrid --server 10.78.0.1 --timeout 60 --connect-rate --conns 16 --count 40000 --warmup 0 --json \
  2>$CRLOG | json_ok 40000 && grep -Eq 'time_wait 1[0-9]{4},' $CRLOG"
check "text output has the percentiles" bash -c "$(declare -f client); B=$B SOCK=$SOCK; client --count 1000 | grep -q 'rtt_us min .* p50 .* p90 .* p99 .* p99.9 .* max'"
# 9 clients ran; after each goodbye the next client was served above.
byes() { test "$(grep -c "the memif peer is leaving" "$SLOG")" -eq 9; }
wait_for 5 byes || true
check "every client said goodbye before leaving ($(grep -c "the memif peer is leaving" "$SLOG") of 9)" byes
check "server stops cleanly" stop_proc $SERVER_PID
check "server echoed TCP and UDP" grep -Eq "accepted [1-9][0-9]*.*udp [1-9][0-9]* datagrams" "$SLOG"
# The 4096 connections overflow the backlog of 255: the rest get SYN
# cookies, faster than the client takes them. A cookie SYN-ACK that finds
# the ring full waits for room; none may be lost, or its client sends its
# SYN again and gets a second cookie (sent > redeemed: 4616 > 3235 before).
cookies() { grep -Eo 'syn cookies [0-9]+ sent [0-9]+ ok' "$SLOG" | awk '{print $3, $5}'; }
# A memif server whose peer never comes: its first frames (the gratuitous
# ARP) wait in the batch, refused on every iteration; that is one spell of
# a full ring, not one per retry (185 M in 3 s, busy, before).
LSOCK=/tmp/dpn-memif-lone-$TAG.sock LLOG=/tmp/dpn-memif-lone-$TAG.log
track_file "$LSOCK"; track_file "$LLOG"
"$B/app/echoserver" --no-pci -l 1 --vdev=net_memif0,role=server,socket=$LSOCK -- \
  --ip 10.78.1.1/24 --poll hybrid >"$LLOG" 2>&1 &
LONE=$!; track_pid $LONE
wait_log "$LLOG" "listening on port" 15
sleep 1
stop_proc $LONE || true
lone() { grep -Eo "$1 [0-9]+" "$LLOG" | awk '{print $NF}' | tail -1; }
check "no peer: $(lone polls) iterations, TX ring full counted $(lone 'tx ring full') time(s)" \
  bash -c "[ '$(lone polls)' -gt 100 ] && [ '$(lone 'tx ring full')' -le 1 ]"
check "every SYN cookie sent was redeemed ($(cookies))" \
  bash -c "read s o <<<'$(cookies)'; [ \"\${s:-0}\" -gt 0 ] && [ \"\$s\" = \"\$o\" ]"
finish
