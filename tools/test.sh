#!/usr/bin/env bash
# Install what is missing, build (warnings are errors), run every test.
# Last line: "N passed, N failed"; exit status non-zero when anything failed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
say() { printf '[test] %s\n' "$*"; }

bash tools/setup.sh

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
setup_build build none
builddir=build
if [ "$sanitize" != none ]; then
  builddir=build-san
  setup_build "$builddir" "$sanitize"
  # Leak checking is off: DPDK keeps its EAL allocations until exit by design.
  export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
fi

pass=0 fail=0
failed=()

# Unit tests (Check): every check counts; Check prints
# "NN%: Checks: N, Failures: F, Errors: E" per binary.
say "unit tests"
for t in $(meson test -C "$builddir" --suite unit --no-rebuild --list 2>/dev/null | sed 's/^.* \/ //'); do
  rc=0
  meson test -C "$builddir" --suite unit --no-rebuild "$t" --print-errorlogs \
    >/tmp/dpnet-unit-$$.log 2>&1 || rc=$?
  log="$builddir/meson-logs/testlog.txt"
  sum=$(grep -ho 'Checks: [0-9]*, Failures: [0-9]*, Errors: [0-9]*' "$log" /tmp/dpnet-unit-$$.log 2>/dev/null | tail -1 || true)
  if [ -n "$sum" ]; then
    read -r n f e <<<"$(echo "$sum" | tr -dc '0-9 ' | tr -s ' ')"
    pass=$((pass + n - f - e)); fail=$((fail + f + e))
    say "unit/$t: $sum"
  fi
  if [ "$rc" -ne 0 ]; then
    failed+=("unit/$t"); tail -40 /tmp/dpnet-unit-$$.log
    [ -z "$sum" ] && fail=$((fail + 1))
  elif [ -z "$sum" ]; then
    pass=$((pass + 1))
  fi
done
rm -f /tmp/dpnet-unit-$$.log

# Integration tests: each test/integration/t_*.sh prints "ok - NAME" or
# "not ok - NAME" per check and cleans up after itself (namespaces,
# processes, hugepage files). A script that dies without reporting counts
# as one failure.
for t in test/integration/t_*.sh; do
  [ -e "$t" ] || continue
  name=$(basename "$t" .sh)
  say "integration $name"
  rc=0
  DPNET_BUILD="$top/$builddir" timeout 900 bash "$t" >"/tmp/dpnet-$name-$$.log" 2>&1 || rc=$?
  grep -E '^(ok|not ok) - |^# ' "/tmp/dpnet-$name-$$.log" | sed 's/^/  /' || true
  p=$(grep -c '^ok - ' "/tmp/dpnet-$name-$$.log" || true)
  f=$(grep -c '^not ok - ' "/tmp/dpnet-$name-$$.log" || true)
  pass=$((pass + p)); fail=$((fail + f))
  if [ "$f" -gt 0 ] || [ "$rc" -ne 0 ]; then
    failed+=("$name")
    [ "$f" -eq 0 ] && fail=$((fail + 1))
    say "$name failed (exit $rc); its output:"; tail -60 "/tmp/dpnet-$name-$$.log" | sed 's/^/  | /'
  fi
  rm -f "/tmp/dpnet-$name-$$.log"
done

# Fuzzing (clang + libFuzzer, build-fuzz): saved regressions, then ~60 s per
# harness; "ok - ..." / "not ok - ..." per check. DPNET_FUZZ=0 skips it.
if [ "${DPNET_FUZZ:-1}" != 0 ]; then
  say "fuzz"
  rc=0
  timeout 900 bash tools/fuzz.sh --ci >"/tmp/dpnet-fuzz-$$.log" 2>&1 || rc=$?
  grep -E '^(ok|not ok) - |^# ' "/tmp/dpnet-fuzz-$$.log" | sed 's/^/  /' || true
  p=$(grep -c '^ok - ' "/tmp/dpnet-fuzz-$$.log" || true)
  f=$(grep -c '^not ok - ' "/tmp/dpnet-fuzz-$$.log" || true)
  pass=$((pass + p)); fail=$((fail + f))
  if [ "$f" -gt 0 ] || [ "$rc" -ne 0 ]; then
    failed+=("fuzz"); [ "$f" -eq 0 ] && fail=$((fail + 1))
    tail -40 "/tmp/dpnet-fuzz-$$.log" | sed 's/^/  | /'
  fi
  rm -f "/tmp/dpnet-fuzz-$$.log"
fi

if [ ${#failed[@]} -gt 0 ]; then say "failed: ${failed[*]}"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
