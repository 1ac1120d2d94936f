#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and walks
# through rill on a fresh embedded store in a temp directory.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
dir=$(scripts/build.sh | tail -n 1)
rill="$PWD/$dir/rill"
export RILL_DB=$(mktemp -d)/demo.db
trap 'rm -rf "$(dirname "$RILL_DB")"' EXIT
run() { printf '\n$ rill %s\n' "$*"; "$rill" "$@"; }

run init
run append account-1 AccountOpened --data '{"owner":"Ann"}' --expect no-stream
run append account-1 Deposited --data '{"amount":100}' --expect 1
run append account-2 AccountOpened --data '{"owner":"Bob"}'
printf '\n# a stale expected version is a conflict, exit 3:\n'
set +e; run append account-1 Deposited --data '{"amount":5}' --expect 1; echo "exit code: $?"; set -e
run streams
run show account-1
run --json log
if "$rill" submit --help >/dev/null 2>&1; then
  run submit OpenAccount --to account-3 owner=Cy
  run submit Deposit --to account-3 amount=50
  set +e; run submit Withdraw --to account-3 amount=80; echo "exit code: $?"; set -e
  run state account-3
fi
run check
run stats
