#!/usr/bin/env bash
# net_null smoke run: the stack comes up on a PMD without offloads or
# interrupts, polls a stream of junk frames (dropped, not crashing), and
# shuts down cleanly.
source "$(dirname "$0")/lib.sh"
LOG=/tmp/dpn-null-$TAG.log; track_file "$LOG"
"$B/app/echoserver" --no-pci -l 1 --vdev=net_null0 -- --ip 10.79.0.2/24 --poll hybrid >"$LOG" 2>&1 &
PID=$!; track_pid $PID
check "echoserver starts on net_null" wait_log "$LOG" "listening on port" 15
sleep 1
check "still running after polling junk frames" kill -0 $PID
check "clean shutdown" stop_proc $PID
check "software checksums chosen (no offloads on net_null)" grep -q "tx csum ip sw tcp sw udp sw" "$LOG"
check "frames were received and counted" grep -Eq "dpnet stats: rx [1-9]" "$LOG"
finish
