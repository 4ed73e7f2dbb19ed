#!/usr/bin/env bash
# Install what is missing, build (warnings are errors), run every test.
# Last line: "N passed, N failed"; exit status non-zero when anything failed.
#
# A test that did not run, or ran and did not end the way a passing test
# ends, is a failure, whatever it printed: a unit binary that exits non-zero
# or by a signal (even after a clean Check summary), prints no summary, or
# is skipped; a `meson test --list` that fails or lists nothing; an
# integration script that exits non-zero, never reaches its "# N passed, N
# failed" line, or printed no ok line.
#
# For working on a test: DPNET_TEST_BUILD=DIR runs on that existing build
# as it is (no set-up, no build); DPNET_TEST_ONLY=REGEX runs only the tests
# whose name (unit/NAME, t_NAME, fuzz) matches it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
say() { printf '[test] %s\n' "$*"; }
only=${DPNET_TEST_ONLY:-}
wanted() { [ -z "$only" ] || [[ $1 =~ $only ]]; }

# build/ is the plain -Werror build users get; the tests run on an
# ASan+UBSan build of the same tree (DPDK works under both here), stopping at
# the first sanitizer report. DPNET_SANITIZE=none runs them on build/.
sanitize=${DPNET_SANITIZE:-address,undefined}
setup_build() { # dir sanitize
  if [ ! -f "$1/build.ninja" ]; then
    say "meson setup $1 (werror, sanitize=$2)"
    meson setup "$1" -Dwerror=true -Db_sanitize="$2" >/dev/null
  fi
  say "building $1"
  ninja -C "$1" >/dev/null
}
if [ -n "${DPNET_TEST_BUILD:-}" ]; then
  builddir=$(cd "$DPNET_TEST_BUILD" && pwd)
  [ -f "$builddir/build.ninja" ] || { say "$builddir is not a meson build directory"; exit 2; }
  say "testing $builddir as it is (DPNET_TEST_BUILD)"
else
  bash tools/setup.sh
  setup_build build none
  builddir=build
  if [ "$sanitize" != none ]; then
    builddir=build-san
    setup_build "$builddir" "$sanitize"
  fi
fi
if [ "$sanitize" != none ]; then
  # Leak checking is off for the DPDK programs: DPDK keeps its EAL
  # allocations until exit by design. tools/fuzz.sh turns it on for the
  # fuzzers, whose leaks are per input.
  export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
fi

pass=0 fail=0
failed=()
tmp=$(mktemp -d /tmp/dpnet-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# lose NAME WHY: NAME failed without a "not ok"/Check failure to count.
lose() { failed+=("$1"); fail=$((fail + 1)); say "$1 FAILED: $2"; }

# Unit tests (Check): every check counts; Check prints
# "NN%: Checks: N, Failures: F, Errors: E" per suite runner. The binary's
# exit status and meson's verdict count too: an assertion that aborts after
# the summary, a crash in a destructor or a sanitizer report at exit leave
# the summary clean.
say "unit tests"
lrc=0
meson test -C "$builddir" --suite unit --no-rebuild --list >"$tmp/list" 2>"$tmp/list.err" || lrc=$?
units=$(sed 's/^.* \/ //' "$tmp/list")
if [ "$lrc" -ne 0 ] || [ -z "$units" ]; then
  cat "$tmp/list" "$tmp/list.err" | tail -20 | sed 's/^/  | /'
  lose "unit" "meson test --list exited $lrc$([ "$lrc" -ne 0 ] || echo ' and listed no test')"
  units=""
fi
for t in $units; do
  wanted "unit/$t" || continue
  rc=0
  meson test -C "$builddir" --suite unit --no-rebuild "$t" --print-errorlogs \
    --logbase "unit-$t" >"$tmp/unit.log" 2>&1 || rc=$?
  log="$builddir/meson-logs/unit-$t.txt"
  [ -f "$log" ] || log=/dev/null
  # Sum over every summary the binary printed (one per suite runner).
  read -r n f e runners <<<"$(grep -ho 'Checks: [0-9]*, Failures: [0-9]*, Errors: [0-9]*' "$log" |
    awk '{n += $2; f += $4; e += $6; r++} END {print n + 0, f + 0, e + 0, r + 0}')"
  # meson's own verdict: exactly one test, and it passed (not skipped).
  mok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$tmp/unit.log" | tail -1)
  mskip=$(sed -n 's/^Skipped: *\([0-9]*\).*/\1/p' "$tmp/unit.log" | tail -1)
  if [ "$runners" -gt 0 ]; then
    pass=$((pass + n - f - e)); fail=$((fail + f + e))
    say "unit/$t: Checks: $n, Failures: $f, Errors: $e (exit $rc)"
  fi
  if [ "$rc" -ne 0 ] || [ "${mok:-0}" != 1 ] || [ "$runners" -eq 0 ] || [ $((f + e)) -gt 0 ]; then
    tail -40 "$tmp/unit.log" | sed 's/^/  | /'
    if [ $((f + e)) -gt 0 ]; then
      failed+=("unit/$t")
    elif [ "${mskip:-0}" != 0 ]; then
      lose "unit/$t" "skipped (exit $rc): its checks did not run"
    elif [ "$runners" -eq 0 ]; then
      lose "unit/$t" "no Check summary (exit $rc, meson Ok: ${mok:-none}): its checks did not run"
    else
      lose "unit/$t" "exit $rc (meson Ok: ${mok:-none}) after a clean Check summary"
    fi
  fi
done

# Integration tests: each test/integration/t_*.sh prints "ok - NAME" or
# "not ok - NAME" per check (tools it runs may print their own), ends with
# lib.sh's "# P passed, F failed", and cleans up after itself (namespaces,
# processes, hugepage files).
for t in test/integration/t_*.sh; do
  [ -e "$t" ] || continue
  name=$(basename "$t" .sh)
  wanted "$name" || continue
  say "integration $name"
  out="$tmp/$name.log"
  rc=0
  DPNET_BUILD="$(cd "$builddir" && pwd)" timeout 900 bash "$t" >"$out" 2>&1 || rc=$?
  grep -E '^(ok|not ok) - |^# ' "$out" | sed 's/^/  /' || true
  p=$(grep -c '^ok - ' "$out" || true)
  f=$(grep -c '^not ok - ' "$out" || true)
  pass=$((pass + p)); fail=$((fail + f))
  # lib.sh's finish line: the script got to its end.
  fin=$(grep -E '^# [0-9]+ passed, [0-9]+ failed$' "$out" | tail -1 || true)
  why=""
  if [ "$rc" -ne 0 ]; then
    why="exit $rc"
  elif [ -z "$fin" ]; then
    why="exit 0 without its '# N passed, N failed' line (did not run to the end)"
  elif [ "$p" -eq 0 ]; then
    why="ran no check"
  fi
  if [ "$f" -gt 0 ] || [ -n "$why" ]; then
    say "$name failed (${why:-$f not ok}); its output:"; tail -60 "$out" | sed 's/^/  | /'
    if [ "$f" -eq 0 ]; then lose "$name" "$why"; else failed+=("$name"); fi
  fi
done

# Fuzzing (clang + libFuzzer, build-fuzz): saved regressions, then ~60 s per
# harness; "ok - ..." / "not ok - ..." per check. DPNET_FUZZ=0 skips it.
if [ "${DPNET_FUZZ:-1}" != 0 ] && wanted fuzz; then
  say "fuzz"
  rc=0
  timeout 900 bash tools/fuzz.sh --ci >"$tmp/fuzz.log" 2>&1 || rc=$?
  grep -E '^(ok|not ok) - |^# ' "$tmp/fuzz.log" | sed 's/^/  /' || true
  p=$(grep -c '^ok - ' "$tmp/fuzz.log" || true)
  f=$(grep -c '^not ok - ' "$tmp/fuzz.log" || true)
  pass=$((pass + p)); fail=$((fail + f))
  if [ "$f" -gt 0 ] || [ "$rc" -ne 0 ] || [ "$p" -eq 0 ]; then
    tail -40 "$tmp/fuzz.log" | sed 's/^/  | /'
    if [ "$f" -eq 0 ]; then lose fuzz "exit $rc, $p ok lines"; else failed+=("fuzz"); fi
  fi
fi

if [ ${#failed[@]} -gt 0 ]; then say "failed: ${failed[*]}"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ ${#failed[@]} -eq 0 ]
