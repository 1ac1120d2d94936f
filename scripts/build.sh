#!/usr/bin/env bash
# Configures and builds rill into build/ (or build-asan/ with RILL_SANITIZE=1).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${RILL_SANITIZE:-0}" = 1 ]; then
  # -O1 -g1: line tables are all a sanitizer report needs, and the build
  # costs ~40% less CPU than -O2 -g (CI has 2 cores and 30 minutes).
  dir=build-asan; extra=(-DRILL_SANITIZE=ON -DRILL_BUILD_BENCH=OFF -DRILL_BUILD_RELIABILITY=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG")
else
  dir=build; extra=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
fi
cmake -S . -B "$dir" -DRILL_WERROR=ON "${extra[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)"
echo "$dir"
