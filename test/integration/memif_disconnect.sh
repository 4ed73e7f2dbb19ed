#!/usr/bin/env bash
# Not part of tools/test.sh (no t_ prefix): a bounded reproduction of the
# net_memif disconnect crash (shared/PLATFORM.md). N times: echoserver as
# the memif server, a net_latency client that runs COUNT round trips and
# exits (or is killed with signal KILL after KILL_AFTER s), GAP s, then
# SIGINT to the echoserver; a run where the server does not exit 0 or logs
# a sanitizer report counts as a crash, and its log is kept.
#
#   DPNET_BUILD=DIR N=30 POLL=busy bash test/integration/memif_disconnect.sh
#
# Measured on build-b (ASan): POLL=busy 1 of 30 runs, SEGV in memif's RX
# burst (rte_eth_rx_burst from dpn_poll_once) as the client leaves;
# POLL=hybrid 0 of 90 (GAP 0 and 0.2, client killed mid-run or not).
# With the goodbye of stack/memif_bye.c: POLL=busy 0 of 40 (clients that
# exit; a killed client says no goodbye and the race is DPDK's).
source "$(dirname "$0")/lib.sh"
set +e
N=${N:-30} POLL=${POLL:-busy} COUNT=${COUNT:-300} GAP=${GAP:-0}
crash=0 cfail=0
for i in $(seq "$N"); do
  SOCK=/tmp/dpn-mdc-$TAG.sock SLOG=/tmp/dpn-mdc-srv-$TAG.log
  track_file "$SOCK"; track_file "$SLOG"
  "$B/app/echoserver" --no-pci -l 1 --in-memory --vdev=net_memif0,role=server,socket=$SOCK \
    -- --ip 10.78.0.1/24 --poll "$POLL" >"$SLOG" 2>&1 &
  sp=$!
  if ! wait_log "$SLOG" "listening on port" 15 >/dev/null; then
    echo "# run $i: the server did not start"; kill -KILL $sp; wait $sp; continue
  fi
  "$B/app/net_latency" --no-pci -l 0 --in-memory --vdev=net_memif0,role=client,socket=$SOCK \
    -- --ip 10.78.0.2/24 --poll "$POLL" --server 10.78.0.1 --timeout 20 --count "$COUNT" \
    --json >/dev/null 2>&1 &
  cpid=$!
  if [ -n "${KILL:-}" ]; then sleep "${KILL_AFTER:-1}"; kill "-$KILL" $cpid 2>/dev/null; fi
  wait $cpid 2>/dev/null || cfail=$((cfail + 1))
  sleep "$GAP"
  rc=0; stop_proc $sp || rc=$?
  if [ "$rc" -ne 0 ] || grep -qE "AddressSanitizer|runtime error" "$SLOG"; then
    crash=$((crash + 1))
    cp "$SLOG" "/tmp/dpn-mdc-crash-$TAG-$i.log"
    echo "# run $i: echoserver exit $rc (log: /tmp/dpn-mdc-crash-$TAG-$i.log)"
    grep -E "ERROR: AddressSanitizer|^ +#[0-3] " "$SLOG" | head -5 | sed 's/^/#   /'
  fi
  rm -f "$SOCK"
done
echo "# $crash of $N runs: echoserver failed at shutdown (poll $POLL; $cfail client runs failed)"
[ "$crash" -eq 0 ]
