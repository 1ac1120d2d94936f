#!/usr/bin/env bash
# Tests completions/rill.bash: sources it, calls _rill with COMP_WORDS set as
# bash would, and checks the candidates, against a real store.
#   completions/test-completion.sh RILL_BINARY
set -euo pipefail
rill=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
db="$tmp/store"
"$rill" --db "$db" init >/dev/null
"$rill" --db "$db" append account-1 AccountOpened --schema 1 --data '{"owner":"Ann"}' >/dev/null
"$rill" --db "$db" append account-2 AccountOpened --schema 1 --data '{"owner":"Bob"}' >/dev/null
"$rill" --db "$db" append sku-9 SkuCreated --data '{"stock":5}' >/dev/null

# shellcheck source=rill.bash
source "$here/rill.bash"
failures=0

# complete WORDS... : sets COMP_WORDS to WORDS (the last one is being typed).
complete_words() {
  COMP_WORDS=("$rill" "$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  _rill
  printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}
expect() {
  local want=$1; shift
  local got
  got=$(complete_words "$@")
  if [[ $got != "$want" ]]; then
    echo "FAIL: rill $* -> [$got], want [$want]" >&2
    failures=$((failures + 1))
  fi
}
contains() {
  local want=$1; shift
  local got
  got=" $(complete_words "$@") "
  if [[ $got != *" $want "* ]]; then
    echo "FAIL: rill $* -> [$got] lacks $want" >&2
    failures=$((failures + 1))
  fi
}

contains "show" s                                       # commands
contains "streams" s
expect "" zzz
contains "init" ""
expect "--db" --d                                        # global options
contains "--json" --
contains "--category" streams --                         # a command's options
expect "account-1 account-2" --db "$db" show acc         # streams from the store
expect "account-1 account-2 sku-9" --db "$db" show ""
expect "account-1 account-2 sku-9" --db="$db" delete ""
expect "sku-9" --db "$db" append s                       # append's first word is a stream
expect "" --db "$db" show account-1 ""                   # one stream only
expect "account sku" --db "$db" streams --category ""
expect "no-stream" --db "$db" append account-1 X --expect n
expect "" --db "$tmp/missing" show ""                     # no store: nothing, silently
(cd "$tmp" && RILL_DB="$db" expect "account-1 account-2 sku-9" show "")  # $RILL_DB
contains "$tmp/store" --db "$tmp/st"                     # --db completes directories
contains "--plugin" --                                   # plugins and the store config
expect "get list set unset" config ""
expect "durability" config get du
expect "async sync" --db "$db" config set durability ""
expect "shards=" --set sh
expect "" config list ""

# zsh: the same lookups through completions/_rill, when zsh is installed.
if command -v zsh >/dev/null; then
  ncommands=$("$rill" --help | awk '/^Subcommands:/ {on=1; next} on && /^  [a-z]/ {n++} END {print n}')
  want="account-1 account-2 sku-9
account sku
any no-stream exists
dirs

$ncommands commands
end"
  got=$(RILL="$rill" DB="$db" zsh -f "$here/test-completion.zsh" 2>&1)
  if [[ $got != "$want" ]]; then
    echo "FAIL: zsh completion gave:" >&2; echo "$got" >&2; echo "wanted:" >&2; echo "$want" >&2
    failures=$((failures + 1))
  fi
fi

if ((failures)); then echo "completion: $failures failure(s)" >&2; exit 1; fi
echo "completion: ok"
