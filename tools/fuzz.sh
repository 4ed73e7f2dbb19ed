#!/usr/bin/env bash
# Build the libFuzzer harnesses (test/fuzz) in build-fuzz (clang, ASan+UBSan)
# and run each of them on a copy of its seed corpus.
#
#   tools/fuzz.sh [SECONDS] [HARNESS...]  # default 60 s each, every harness
#   tools/fuzz.sh --ci                     # regressions, then ~60 s each:
#                                          # "ok - fuzz_rx: N runs, 0 crashes"
#                                          # "# states: SYN_SENT N ..." (fuzz_rx;
#                                          # "not ok" when a TCP state got 0)
#
# The regression inputs of test/fuzz/regress/<harness>/ are replayed first.
# Inputs the fuzzer finds go to build-fuzz/fuzz-corpus/<harness>/ (kept
# between runs, never into the repository; FUZZ_MERGE=1 merges the new
# coverage into test/fuzz/corpus/ with libFuzzer's -merge=1). Crashes, leaks
# and timeouts are written to build-fuzz/fuzz-artifacts/<harness>/; replay one
# with: build-fuzz/test/fuzz/<harness> FILE. Exit status 1 when anything
# crashed. FUZZ_BUILD=DIR picks another build directory.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
say() { printf '[fuzz] %s\n' "$*"; }

ci=0
secs=60
if [ "${1:-}" = "--ci" ]; then
  ci=1
  shift
elif [[ "${1:-}" =~ ^[0-9]+$ ]]; then
  secs=$1
  shift
fi
all=(fuzz_rx fuzz_classify fuzz_ctl)
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=("${all[@]}")
B=${FUZZ_BUILD:-build-fuzz}
case $B in /*) ;; *) B=$top/$B ;; esac

declare -A max_len=([fuzz_rx]=4096 [fuzz_classify]=4096 [fuzz_ctl]=1024)

pid=""
tmp=$(mktemp -d /tmp/dpnet-fuzz.XXXXXX)
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

report_fail=0
ok() { echo "ok - $*"; }
not_ok() { report_fail=1; echo "not ok - $*"; }

# ---- build ----
if ! command -v clang >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  not_ok "fuzz: clang and libFuzzer are needed (apt-get install clang libfuzzer-14-dev)"
  exit 1
fi
if [ ! -f "$B/build.ninja" ]; then
  say "meson setup $B (clang, -Dfuzz=true, sanitize=address,undefined)"
  CC=clang meson setup "$B" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
say "building ${harnesses[*]} in $B"
targets=()
for h in "${harnesses[@]}"; do
  [ -f "test/fuzz/$h.c" ] || { echo "unknown harness '$h' (have: ${all[*]})" >&2; exit 2; }
  targets+=("test/fuzz/$h")
done
if ! ninja -C "$B" "${targets[@]}" >"$tmp/build.log" 2>&1; then
  tail -30 "$tmp/build.log"
  not_ok "fuzz: build of ${harnesses[*]} failed"
  exit 1
fi

# UB is a crash, and so is a leak: libFuzzer checks every input that
# malloc'ed more than it freed (-detect_leaks=1, its default) and
# LeakSanitizer the whole process at exit, replays of saved inputs included.
# Both need ASan's detect_leaks, on here whatever the caller's ASAN_OPTIONS
# say (tools/test.sh turns it off for the DPDK programs; later flags win).
# test/fuzz/lsan.supp lists the allocations that live as long as the
# process by design, each with its reason.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0}:detect_leaks=1
export LSAN_OPTIONS=suppressions=$top/test/fuzz/lsan.supp:print_suppressions=0

# Run a harness binary with a time limit; its output to $2.
run() { # log args...
  local log=$1 rc=0
  shift
  "$@" >"$log" 2>&1 &
  pid=$!
  wait "$pid" || rc=$?
  pid=""
  return "$rc"
}

for h in "${harnesses[@]}"; do
  bin="$B/test/fuzz/$h"
  art="$B/fuzz-artifacts/$h"
  mkdir -p "$art"
  # Regressions: every input once.
  reg=(test/fuzz/regress/"$h"/*)
  if [ -e "${reg[0]}" ]; then
    if run "$tmp/$h-regress.log" timeout 300 "$bin" -timeout=20 -detect_leaks=1 \
      -artifact_prefix="$art/" "${reg[@]}"; then
      ok "$h regressions: ${#reg[@]} inputs"
    else
      grep -E 'ERROR|fuzz:|runtime error' "$tmp/$h-regress.log" | head -5 | sed 's/^/# /'
      not_ok "$h regressions: a saved input fails again (log above)"
    fi
  fi
  # Corpus: CI starts from the seeds each time; by hand it grows in $B.
  if [ "$ci" = 1 ]; then
    corpus="$tmp/$h-corpus"
  else
    corpus="$B/fuzz-corpus/$h"
  fi
  mkdir -p "$corpus"
  cp -n test/fuzz/corpus/"$h"/* "$corpus"/ 2>/dev/null || true
  # Artifacts that count (libFuzzer's slow-unit-* are only slow on a busy machine).
  bad() { find "$art" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l; }
  before=$(bad)
  say "$h: ${secs} s, max_len ${max_len[$h]}, corpus $corpus"
  rc=0
  # CI explores the same way each run (a red CI means a regression, not
  # luck); by hand each run starts from a new seed unless FUZZ_SEED is set.
  seed=${FUZZ_SEED:-}
  [ -n "$seed" ] || { [ "$ci" = 1 ] && seed=1; } || seed=0
  run "$tmp/$h.log" timeout $((secs + 120)) "$bin" -max_total_time="$secs" -seed="$seed" \
    -max_len="${max_len[$h]}" -timeout=20 -rss_limit_mb=4096 -detect_leaks=1 -print_final_stats=1 \
    -artifact_prefix="$art/" "$corpus" || rc=$?
  after=$(bad)
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$tmp/$h.log" | grep -o '[0-9]*$' || true)
  cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$tmp/$h.log" | tail -1 || true)
  crashes=$((after - before))
  [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ] && crashes=1
  if [ "$crashes" -eq 0 ]; then
    ok "$h: ${execs:-0} runs, 0 crashes (${cov:-no coverage line})"
  else
    grep -E '==ERROR|ERROR: libFuzzer|^fuzz:|runtime error|SUMMARY|Test unit written|^Direct leak|^    #[0-3] ' \
      "$tmp/$h.log" | head -12 | sed 's/^/# /'
    not_ok "$h: ${execs:-?} runs, $crashes failing inputs: crash, leak or timeout (exit $rc; inputs in $art)"
  fi
  # fuzz_rx prints at exit, per TCP state, how many inputs reached it; in
  # CI every state must have been reached (the seeds hold one of each).
  states=$(grep -m1 '^# states:' "$tmp/$h.log" || true)
  if [ -n "$states" ]; then
    echo "$states"
    grep -m1 '^# fuzzed segments by state:' "$tmp/$h.log" || true
    # ... and how many segments header prediction took (stack/tcp_fast.c):
    # in CI some must have, or the fuzzer no longer tries that path.
    fast=$(grep -m1 '^# fast path:' "$tmp/$h.log" || true)
    [ -n "$fast" ] && echo "$fast"
    if [ "$ci" = 1 ] && { [ -z "$fast" ] || [[ "$fast" == "# fast path: 0 segments in"* ]]; }; then
      not_ok "$h: no input took the TCP fast path"
    fi
    zero=$(sed 's/^# states: //; s/ (.*//' <<<"$states" |
      awk '{ for (i = 1; i < NF; i += 2) if ($(i + 1) == 0) printf "%s ", $i }')
    if [ "$ci" = 1 ] && [ -n "$zero" ]; then
      not_ok "$h: no input reached ${zero% } (a state record no longer gets there)"
    fi
  fi
  if [ "${FUZZ_MERGE:-0}" = 1 ] && [ "$ci" = 0 ]; then
    say "$h: merging new coverage into test/fuzz/corpus/$h"
    "$bin" -merge=1 -max_len="${max_len[$h]}" test/fuzz/corpus/"$h" "$corpus" >"$tmp/$h-merge.log" 2>&1 ||
      tail -5 "$tmp/$h-merge.log"
  fi
done
exit "$report_fail"
