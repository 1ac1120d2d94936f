#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, -DRILL_FUZZ=ON, clang) into build-fuzz
# and runs each for a time budget with seed corpora from testdata/, under
# ASan + UBSan. Prints `RESULT fuzz PASS|FAIL execs=N crashes=N ...`.
#
#   scripts/fuzz.sh [--seconds N] [--jobs N] [--build-dir DIR] [target...]
#
# Default budget: 10 s per target. RILL_RELIABILITY=long: 10,000,000
# executions per target (-runs), capped at 5,400 s each; the run fails if a
# target stops short of them without a finding. --seconds N: N s each. A crash
# leaves its input in build-fuzz/crashes/<target>/; copy it to
# testdata/fuzz/<target>/ (the regression corpus, replayed on every run)
# once rill is fixed.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
seconds=""
runs=""
max_len=65536
build="$here/build-fuzz"
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [ -z "$seconds" ]; then
  # Long runs keep inputs to 4 KiB: left to grow to 64 KiB, the JSONL
  # corpus slows to under 2,000 executions/s under ASan; inputs far larger
  # are bad_input's cases (100 MB lines, 1M-deep nesting).
  if [ "${RILL_RELIABILITY:-short}" = long ]; then seconds=5400; runs=10000000; max_len=4096; else seconds=10; fi
fi
[ ${#targets[@]} -gt 0 ] || targets=(json_input record upcaster sql_projection)

fail() { echo "# $*"; echo "RESULT fuzz FAIL reason=$1"; exit 1; }
command -v clang++ >/dev/null || fail "no-clang: install clang (scripts/install-deps.sh --fuzz)"

echo "# building ${targets[*]} into $build"
mkdir -p "$build"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang \
  -DRILL_FUZZ=ON -DRILL_BUILD_TESTS=OFF -DRILL_BUILD_BENCH=OFF "${launcher[@]}" >"$build/configure.log" 2>&1 ||
  { tail -20 "$build/configure.log" | sed 's/^/# /'; fail configure; }
for t in "${targets[@]}"; do
  cmake --build "$build" -j2 --target "fuzz_$t" >"$build/build-$t.log" 2>&1 ||
    { tail -30 "$build/build-$t.log" | sed 's/^/# /'; fail "build-$t"; }
done

# Seeds per target: committed regression inputs first, then testdata files.
seeds_for() {
  case "$1" in
    json_input) ls "$here"/testdata/cli/*.jsonl "$here"/testdata/commands/*.jsonl "$here"/testdata/upcast/*.jsonl 2>/dev/null ;;
    record) ls "$here"/testdata/fuzz/record-seeds/* 2>/dev/null ;;
    upcaster) ls "$here"/migrations/*/*.json "$here"/testdata/bad/migrations/*.json 2>/dev/null ;;
    sql_projection) find "$here/domains" "$here/examples" "$here/testdata" -name '*.sql' 2>/dev/null ;;
  esac
}

total_execs=0
total_crashes=0
summary=""
min_execs=""
short_targets=0
for t in "${targets[@]}"; do
  work="$build/corpus/$t"
  crashes="$build/crashes/$t"
  rm -rf "$crashes"  # this run's findings only
  mkdir -p "$work" "$crashes"
  regress="$here/testdata/fuzz/$t"
  # Regression inputs must pass before any new fuzzing.
  if [ -d "$regress" ] && [ -n "$(ls -A "$regress" 2>/dev/null)" ]; then
    if ! "$build/fuzz/fuzz_$t" -runs=0 "$regress" >"$build/regress-$t.log" 2>&1; then
      tail -30 "$build/regress-$t.log" | sed 's/^/# /'
      total_crashes=$((total_crashes + 1))
      summary="$summary $t:regression-failed"
      continue
    fi
  fi
  while read -r f; do [ -n "$f" ] && cp -f "$f" "$work/seed-$(basename "$f")"; done < <(seeds_for "$t")
  dirs=("$work")
  [ -d "$regress" ] && dirs+=("$regress")
  log="$build/fuzz-$t.log"
  runs_flag=()
  [ -n "$runs" ] && runs_flag=(-runs="$runs")
  started=$(date +%s)
  "$build/fuzz/fuzz_$t" "${runs_flag[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
    -print_final_stats=1 -artifact_prefix="$crashes/" "${dirs[@]}" >"$log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  execs=${execs:-0}
  found=$(ls "$crashes" 2>/dev/null | wc -l)
  if [ "$rc" -ne 0 ] && [ "$found" -eq 0 ]; then found=1; fi
  took=$(($(date +%s) - started))
  echo "# $t: $execs executions in ${took}s, exit $rc, $found crash/timeout/leak inputs in $crashes"
  [ "$rc" -ne 0 ] && grep -m5 -E 'ERROR|SUMMARY|runtime error' "$log" | sed 's/^/#   /'
  total_execs=$((total_execs + execs))
  total_crashes=$((total_crashes + found))
  summary="$summary $t:$execs"
  [ -z "$min_execs" ] || [ "$execs" -lt "$min_execs" ] && min_execs=$execs
  if [ -n "$runs" ] && [ "$found" -eq 0 ] && [ "$execs" -lt "$runs" ]; then
    echo "# $t: only $execs of $runs executions in the ${seconds}s cap"
    short_targets=$((short_targets + 1))
  fi
done
status=PASS
[ "$total_crashes" -eq 0 ] && [ "$short_targets" -eq 0 ] || status=FAIL
echo "# executions per target:$summary"
budget="seconds_each=$seconds"
[ -n "$runs" ] && budget="runs_each=$runs cap_seconds=$seconds"
echo "RESULT fuzz $status execs=$total_execs min_execs=${min_execs:-0} crashes=$total_crashes targets=${#targets[@]} $budget"
[ "$status" = PASS ]
