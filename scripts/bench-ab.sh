#!/usr/bin/env bash
# Interleaved A/B of the three benchmarks a restructuring must not slow:
# bench_append (64 appenders), bench_flash_sale --small --scenario uniform
# and bench_projection_replay, PAIRS pairs, alternating which build runs
# first. A and B are build directories (e.g. a worktree of the commit before
# the change, and build/). Logs go to OUT; the summary lines are printed.
#   scripts/bench-ab.sh A_BUILD B_BUILD [PAIRS=3] [OUT=/tmp/bench-ab]
set -euo pipefail
a=$1 b=$2 pairs=${3:-3} out=${4:-/tmp/bench-ab}
mkdir -p "$out"
run() {  # tag build bench args...
  local tag=$1 dir=$2 bench=$3
  shift 3
  /usr/bin/time -f "wall_s=%e user_s=%U sys_s=%S" "$dir/$bench" "$@" >"$out/$tag.log" 2>&1
}
for ((p = 1; p <= pairs; p++)); do
  order=(A B)
  ((p % 2 == 0)) && order=(B A)
  for side in "${order[@]}"; do
    dir=$a
    [ "$side" = B ] && dir=$b
    run "append-$p-$side" "$dir" bench_append --appenders 64 --events 1000000
    run "flash-$p-$side" "$dir" bench_flash_sale --small --scenario uniform
    run "replay-$p-$side" "$dir" bench_projection_replay --events 1000000 --accounts 100000
  done
done
for f in "$out"/*.log; do
  echo "== $(basename "$f" .log)"
  grep -E "events/s|purchases|per second|/s=|wall_s" "$f" | head -6
done
