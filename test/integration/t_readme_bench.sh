#!/usr/bin/env bash
# tools/readme_bench.py: README's benchmark tables and the issues' targets
# come from bench/results/bench.json and only from it.
source "$(dirname "$0")/lib.sh"
TOP=$(cd "$HERE/../.." && pwd)
RB=$TOP/tools/readme_bench.py
D=/tmp/dpn-readme-$TAG; mkdir -p "$D"; track_file "$D"

# The README in the tree is what the committed results give: a new run
# committed without regenerating it (or a hand edit of the block) fails.
cp "$TOP/README.md" "$D/README.md"
check "README's block is the one bench/results/bench.json gives" \
  $PY "$RB" --json "$TOP/bench/results/bench.json" --readme "$D/README.md"
last_failed || check "... unchanged by regenerating it" cmp -s "$TOP/README.md" "$D/README.md"
last_failed && diff "$TOP/README.md" "$D/README.md" | head -20

# A made-up run: each target on either side of its bound, --check's exit
# code says whether all are met.
mk() { # 8192/64 bulk/linux tcp/floor tcp/spin http_us
  $PY - "$@" >"$D/b.json" <<'PY'
import json, sys
c, b, f, s, h = map(float, sys.argv[1:])
lat = lambda p: {"kind": "lat", "p50": p, "p99": 2 * p, "p99.9": 3 * p}
r = {"conns64_dpnet": {"kind": "rate", "rate": 1e7}, "conns8192_dpnet": {"kind": "rate", "rate": c * 1e7},
     "bulk_linux": {"kind": "bulk", "gbit_per_s": 8.0}, "bulk_dpnet": {"kind": "bulk", "gbit_per_s": b * 8.0},
     "udp64_floor": lat(0.5), "tcp64_pair": lat(f * 0.5), "tcp64_linuxspin": lat(8.0),
     "tcp64_dpnet": lat(s * 8.0), "httpmemif_dpnet": lat(h),
     "spell_lat": {"kind": "spell", "p50": 101, "waited_s": 30}, "spell_end": {"kind": "spell", "p50": 450}}
json.dump({"generated": "2026-12-05 03:00 UTC", "runs_per_case": 3, "results": r}, sys.stdout)
PY
}
verdict() { $PY "$RB" --json "$D/b.json" --check >"$D/out" && echo met || echo missed; }
mk 0.85 3.2 1.4 0.10 1.9
check "all five targets met: --check exits 0" test "$(verdict)" = met
check "... and says met five times" test "$(grep -c '| met |' "$D/out")" = 5
check "... the placement line names the probe and the wait (101 ns, 30 s)" \
  grep -q "101-101 ns, 30 s waited" "$D/out"
for bad in "0.79 3.2 1.4 0.10 1.9" "0.85 2.9 1.4 0.10 1.9" "0.85 3.2 1.6 0.10 1.9" \
           "0.85 3.2 1.4 0.16 1.9" "0.85 3.2 1.4 0.10 2.4"; do
  # shellcheck disable=SC2086
  mk $bad
  check "one target missed ($bad): --check exits 1, one 'missed'" \
    test "$(verdict)" = missed -a "$(grep -c '| missed |' "$D/out")" = 1
done
$PY - "$D/b.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); del j["results"]["httpmemif_dpnet"]; json.dump(j, open(sys.argv[1], "w"))
PY
check "a figure a target needs is absent: 'missing', --check exits 1" \
  test "$(verdict)" = missed -a "$(grep -c '| missing |' "$D/out")" = 1

# Writing: only the lines between the markers change.
printf 'before\n%s\nold table\n%s\nafter\n' \
  "<!-- tools/readme_bench.py: begin (generated from bench/results/bench.json) -->" \
  "<!-- tools/readme_bench.py: end -->" >"$D/R.md"
$PY "$RB" --json "$D/b.json" --readme "$D/R.md" >/dev/null
check "rewrite: text around the block kept, the old table gone" \
  test "$(head -1 "$D/R.md")" = before -a "$(tail -1 "$D/R.md")" = after -a "$(grep -c 'old table' "$D/R.md")" = 0
check "rewrite: the new table in its place" grep -q '^| target | this run |' "$D/R.md"
printf 'no markers\n' >"$D/N.md"
rc=0; msg=$($PY "$RB" --json "$D/b.json" --readme "$D/N.md" 2>&1) || rc=$?
check "no markers: exit 1 with a message, file untouched" \
  test $rc = 1 -a -n "$msg" -a "$(cat "$D/N.md")" = "no markers"
rc=0; msg=$($PY "$RB" --json "$D/none.json" --readme "$D/N.md" 2>&1) || rc=$?
check "no results file: exit 1 with a message" test $rc = 1 -a -n "$msg"
finish
