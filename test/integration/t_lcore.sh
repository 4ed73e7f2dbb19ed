#!/usr/bin/env bash
# Attached workers never need an lcore id chosen by hand: before EAL starts,
# each asks dpnetd for a free one (stack/eal_lcore.c) and runs on the CPUs
# its own lcore options named (-l, --lcores, -c; none: its affinity). Two
# applications started with "-l 1" both attach; a pending id is held for
# the connection that asked (badctl checks that in t_daemon.sh).
source "$(dirname "$0")/lib.sh"

NS=dpn-lc-$TAG IFC=dl$TAG PFX=dpnl$TAG
SIP=10.86.0.2 PIP=10.86.0.1
DLOG=/tmp/dpn-lc-$TAG.log
track_prefix "$PFX"
track_file "$DLOG"
new_ns "$NS"
nsx() { ip netns exec "$NS" "$@"; }
peer() { ip netns exec "$NS" $PY "$HERE/peer.py" "$@"; }
ctl() { "$B/app/dpnetctl" --file-prefix "$PFX" "$@"; }

start_dpnetd "$NS" "$IFC" "$PFX" $SIP/24 $PIP/24 "$DLOG" --queues 4

declare -A WPID WLOG
start() { # name port EAL-lcore-options...
  local name=$1 port=$2; shift 2
  WLOG[$name]=/tmp/dpn-lc-$name-$TAG.log; track_file "${WLOG[$name]}"
  ip netns exec "$NS" "$B/app/echoserver" --no-pci --proc-type=secondary --file-prefix "$PFX" \
    --log-level=pmd.net.tap:error "$@" -- --app "$name" --port "$port" --poll hybrid \
    >"${WLOG[$name]}" 2>&1 &
  WPID[$name]=$!; track_pid "${WPID[$name]}"
}
lcore_of() { ctl workers | awk -v p="$1" '$3 == p { print $4 }'; }
cpus_of() { sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "/proc/$1/status"; }
mine=$(cpus_of $$)

start a 7 -l 1
start b 8 -l 1
start c 9
for w in a b c; do
  check "worker $w attached and listens" wait_log "${WLOG[$w]}" "listening on port" 15
done
la=$(lcore_of "${WPID[a]}") lb=$(lcore_of "${WPID[b]}") lc=$(lcore_of "${WPID[c]}")
check "two workers started with -l 1 and one with no lcore option have their own ids ($la $lb $lc)" \
  bash -c "[ -n '$la' ] && [ -n '$lb' ] && [ -n '$lc' ] && [ $(printf '%s\n' "$la" "$lb" "$lc" 0 | sort -u | wc -l) = 4 ]"
check "... the two -l 1 workers run on CPU 1 ($(cpus_of "${WPID[a]}"), $(cpus_of "${WPID[b]}"))" \
  test "$(cpus_of "${WPID[a]}")" = 1 -a "$(cpus_of "${WPID[b]}")" = 1
check "... the one without runs where it was started ($(cpus_of "${WPID[c]}"), like $mine)" \
  test "$(cpus_of "${WPID[c]}")" = "$mine"
for w in a:7 b:8 c:9; do
  check "worker ${w%:*} echoes on port ${w#*:}" peer concurrent $SIP "${w#*:}" 10
done
check "worker c stops cleanly" stop_proc "${WPID[c]}"
gone_c() { [ -z "$(lcore_of "${WPID[c]}")" ]; }
wait_for 10 gone_c
start d 10 --lcores=5@0
check "a worker started with --lcores=5@0 attaches" wait_log "${WLOG[d]}" "listening on port" 15
ld=$(lcore_of "${WPID[d]}")
check "... with an id no other worker has ($ld) on CPU 0 ($(cpus_of "${WPID[d]}"))" \
  bash -c "[ -n '$ld' ] && [ '$ld' != '$la' ] && [ '$ld' != '$lb' ] && [ '$(cpus_of "${WPID[d]}")' = 0 ]"
check "... and echoes" peer concurrent $SIP 10 10
check "worker d stops cleanly" stop_proc "${WPID[d]}"
gone_d() { [ -z "$(lcore_of "${WPID[d]}")" ]; }
wait_for 10 gone_d
start e 11 -c 0x2
check "a worker started with -c 0x2 attaches" wait_log "${WLOG[e]}" "listening on port" 15
check "... on CPU 1 ($(cpus_of "${WPID[e]}"))" test "$(cpus_of "${WPID[e]}")" = 1
check "... and echoes" peer concurrent $SIP 11 10
for w in a b e; do check "worker $w stops cleanly" stop_proc "${WPID[$w]}"; done
check "dpnetd stops cleanly" stop_proc $DPID
check "no sanitizer report" bash -c "! grep -qE 'Sanitizer|runtime error' $DLOG ${WLOG[*]}"
finish
