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
printf '\n# raw appends with expected versions; a stale one is a conflict (exit 3)\n'
run append audit-1 NoteTaken --data '{"text":"hello"}' --expect no-stream
set +e; run append audit-1 NoteTaken --data '{"text":"again"}' --expect no-stream; echo "exit code: $?"; set -e

printf '\n# commands through the actor core; the transfer saga moves the money\n'
run submit OpenAccount --to account-1 owner=Ann
run submit OpenAccount --to account-2 owner=Bob
run submit Deposit --to account-1 amount=100 --id deposit-1
run submit Deposit --to account-1 amount=100 --id deposit-1   # same id: answered once
run submit StartTransfer --to transfer-1 from=account-1 to=account-2 amount=30
set +e; run submit Withdraw --to account-2 amount=500; echo "exit code: $?"; set -e
run state account-1
run state account-2 --at 1
run state transfer-1

printf '\n# a flash sale never oversells (exit 4 once the stock is gone)\n'
run submit CreateSku --to sku-1 stock=2
run submit Purchase --to sku-1 quantity=2 user=u1
set +e; run submit Purchase --to sku-1 quantity=1 user=u2; echo "exit code: $?"; set -e

printf '\n# read models: projections into SQLite\n'
run run
run query balances "SELECT account, owner, balance, status FROM balances ORDER BY account"
run query stock "SELECT * FROM stock"
run streams
run show account-1
run --json log --count 3
run check
run stats
printf '\n# the bigger sandbox scenario\n'
run demo
