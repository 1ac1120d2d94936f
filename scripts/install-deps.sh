#!/usr/bin/env bash
# Installs rill's build dependencies from Debian 12's packages (root, apt).
set -euo pipefail
pkgs=(build-essential cmake pkg-config liblmdb-dev lmdb-utils libsqlite3-dev sqlite3 libcli11-dev libfmt-dev
      libcereal-dev rapidjson-dev libboost-test-dev libjemalloc-dev groff-base)
# --fuzz: also what the reliability battery needs: clang (libFuzzer) for
# scripts/fuzz.sh and reliability/fuzz.sh, strace for reliability/crash_points.sh.
[ "${1:-}" = --fuzz ] && pkgs+=(clang strace)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
