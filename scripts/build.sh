#!/usr/bin/env bash
# Configures and builds rill into build/ (or build-asan/ with RILL_SANITIZE=1).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${RILL_SANITIZE:-0}" = 1 ]; then
  dir=build-asan; extra=(-DRILL_SANITIZE=ON -DRILL_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo)
else
  dir=build; extra=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
fi
cmake -S . -B "$dir" "${extra[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)"
echo "$dir"
