#!/usr/bin/env bash
# spin_noise, the machine-noise probe of tools/bench.sh: it reports what a
# busy poller loses on a core, and it does see a process competing for it.
source "$(dirname "$0")/lib.sh"
OUT=/tmp/dpn-noise-$TAG.json; track_file "$OUT"

# field FILE EXPR: evaluate EXPR over the JSON line (as j) and print it.
field() { $PY -c 'import json,sys; j=json.loads(open(sys.argv[1]).read()); print(eval(sys.argv[2]))' "$1" "$2"; }

"$B/app/spin_noise" --cpu 1 --seconds 0.5 --json >"$OUT"
g=$(field "$OUT" 'j["gaps_per_s"]')
check "one JSON line with the gap counts ($g)" \
  test "$(field "$OUT" 'sorted(j["gaps_per_s"], key=float) == ["1","2","3","5","10","20","50","100","1000"]')" = True
check "counts do not grow with the gap size" \
  test "$(field "$OUT" 'all(a >= b for a, b in zip(*[[j["gaps_per_s"][k] for k in sorted(j["gaps_per_s"], key=float)][i:] for i in (0, 1)]))')" = True
# On a loaded two-core machine other processes take their share of core 1
# too, and the probe must report that, not less: what it lost is compared
# with what /proc/stat says the rest of the machine took from core 1 while it
# ran (core 1's busy time minus the probe's own CPU time). On an idle
# machine that share is 0 and the condition is the old "< 20%".
cpu1() { awk '$1=="cpu1"{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
TIMES=/tmp/dpn-noise-t-$TAG; track_file "$TIMES"
read -r b0 t0 < <(cpu1)
TIMEFORMAT='%3U %3S'
{ time "$B/app/spin_noise" --cpu 1 --seconds 1 --json >"$OUT" 2>/dev/null; } 2>"$TIMES"
read -r b1 t1 < <(cpu1)
others=$($PY -c 'import sys; u, s = map(float, open(sys.argv[1]).read().split()); b, t, hz = map(int, sys.argv[2:])
print(round(max(0.0, (b - (u + s) * hz) * 100.0 / max(t, 1)), 1))' "$TIMES" $((b1 - b0)) $((t1 - t0)) "$(getconf CLK_TCK)")
quiet=$(field "$OUT" 'j["lost_pct"]')
check "the probe loses little beyond what others took from its core (${quiet}% lost, others ${others}%)" \
  test "$(field "$OUT" "j['lost_pct'] < $others + 20")" = True

# A CPU hog on the same core takes about half of it in scheduler slices.
taskset -c 1 bash -c 'while :; do :; done' &
HOG=$!; track_pid $HOG
"$B/app/spin_noise" --cpu 1 --seconds 1 --json >"$OUT"
kill -KILL $HOG; wait $HOG 2>/dev/null || true
busy=$(field "$OUT" 'j["lost_pct"]')
check "a competing process shows as lost time (${busy}%)" test "$(field "$OUT" 'j["lost_pct"] > 20')" = True
check "and as gaps of a millisecond or more" test "$(field "$OUT" 'j["gaps_per_s"]["1000"] > 0')" = True

rc=0; "$B/app/spin_noise" --seconds 0 >/dev/null 2>&1 || rc=$?
check "--seconds out of range: exit 2" test $rc = 2
rc=0; msg=$("$B/app/spin_noise" --cpu 99999 2>&1) || rc=$?
check "bad CPU: exit 2 with a message" test $rc = 2 -a -n "$msg"
rc=0; msg=$("$B/app/spin_noise" --cpu 1000 2>&1) || rc=$?
check "a CPU this machine lacks: exit 1 ($msg)" test $rc = 1

# --pingpong: one cache line's round trip between two cores (bench.sh's
# host-state probe). It takes about --seconds and reports a median between
# its min and max, in the tens to thousands of ns a cache line can take.
SECONDS=0
"$B/app/spin_noise" --cpu 0 --pingpong 1 --seconds 0.3 --json >"$OUT"
took=$SECONDS
pp=$(field "$OUT" 'j["pingpong_ns"]')
check "pingpong: one JSON line, min <= p50 <= max, 20 ns < p50 < 100 us ($pp)" \
  test "$(field "$OUT" 'j["peer"] == 1 and j["rounds"] >= 1 and j["pingpong_ns"]["min"] <= j["pingpong_ns"]["p50"] <= j["pingpong_ns"]["max"] and 20 < j["pingpong_ns"]["p50"] < 1e5')" = True
check "pingpong: done in about --seconds (${took} s)" test "$took" -le 5
txt=$("$B/app/spin_noise" --cpu 1 --pingpong 0 --seconds 0.1)
check "pingpong: a readable line without --json ($txt)" \
  grep -Eq '^cache-line round trip to CPU 0: [0-9]+ ns' <<<"$txt"
rc=0; msg=$("$B/app/spin_noise" --cpu 0 --pingpong 0 2>&1) || rc=$?
check "pingpong with itself: exit 2 with a message" test $rc = 2 -a -n "$msg"
rc=0; msg=$("$B/app/spin_noise" --pingpong 1 2>&1) || rc=$?
check "pingpong without --cpu: exit 2 with a message" test $rc = 2 -a -n "$msg"
rc=0; msg=$("$B/app/spin_noise" --cpu 0 --pingpong 1000 2>&1) || rc=$?
check "pingpong to a CPU this machine lacks: exit 1, no hang ($msg)" test $rc = 1
rc=0; msg=$("$B/app/spin_noise" --cpu 0 --pingpong x1 2>&1) || rc=$?
check "pingpong to a bad CPU number: exit 2" test $rc = 2
finish
