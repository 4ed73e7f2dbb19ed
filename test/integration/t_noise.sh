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
quiet=$(field "$OUT" 'j["lost_pct"]')
check "an idle core loses little (${quiet}%)" test "$(field "$OUT" 'j["lost_pct"] < 20')" = True

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
finish
