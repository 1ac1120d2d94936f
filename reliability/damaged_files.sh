#!/usr/bin/env bash
# Item 7 of the reliability battery — damaged files. Each case damages one
# file of a healthy store (a copy each time) and runs the commands a user
# would: check, show, log, export, query, project run. Promise: no command
# is killed by a signal (no SIGBUS/SIGSEGV/abort, whatever the bytes); the
# log's damage is named by `rill check` (exit 1, the position or file) and
# reads of the damaged records fail with one short "rill: " line (exit 1)
# while undamaged streams stay readable; damage to derived files (the index)
# is repaired by rebuilding from the log; a garbage read model, migration or
# projection file is named in a one-line error.
# Optional argument: a work dir.
set -u
. "$(dirname "$0")/lib/rel.bash"
rel_init damaged_files "${1:-}"

cases=0 commands=0 signals=0
pristine="$REL_DIR/pristine"
db="$REL_DIR/db"
export RILL_DB="$pristine"
pad=$(head -c 40 /dev/zero | tr '\0' x)
for i in $(seq 1 300); do
  printf '{"stream":"item-%d","type":"Noted","data":{"marker":"marker-%05d","pad":"%s"}}\n' $((i % 7)) "$i" "$pad"
done >"$REL_DIR/in.jsonl"
printf -- '-- rill projection: counts\n-- schema\nCREATE TABLE IF NOT EXISTS c(s TEXT PRIMARY KEY, n INTEGER);\n-- on Noted\nINSERT INTO c VALUES(:stream, 1) ON CONFLICT(s) DO UPDATE SET n = n + 1;\n' >"$REL_DIR/counts.sql"
{ rel_run "$REL_DIR/out" "$REL_DIR/err" init &&
  rel_run "$REL_DIR/out" "$REL_DIR/err" append --file "$REL_DIR/in.jsonl" &&
  rel_run "$REL_DIR/out" "$REL_DIR/err" project add "$REL_DIR/counts.sql" &&
  rel_run "$REL_DIR/out" "$REL_DIR/err" project run counts &&
  rel_run "$REL_DIR/out" "$REL_DIR/err" backup "$REL_DIR/compact" &&
  cp "$REL_DIR/compact/log/data.mdb" "$pristine/log/data.mdb" &&
  rel_run "$REL_DIR/out" "$REL_DIR/err" check; } || rel_fail "setting up the store: $(head -1 "$REL_DIR/err")"
# The log is the compacted copy `rill backup` makes: it has no free pages, so
# each page zeroed below is one the B-tree uses. (Uncompacted, how many
# transactions the append took decided which pages were free, and a zeroed
# free page is rightly not noticed: the case failed now and then.)
log_pages=$(($(stat -c %s "$pristine/log/data.mdb") / 4096))

fresh_copy() { rm -rf "$db"; cp -a "$pristine" "$db"; export RILL_DB="$db"; cases=$((cases + 1)); CASE=$1; }

# expect CODE WORD ARGS...: rill ARGS exits CODE (never a signal); a failure
# is one short "rill: " line containing WORD (WORD "" = anything).
expect() {
  local want=$1 word=$2 code
  shift 2
  commands=$((commands + 1))
  rel_run "$REL_DIR/out" "$REL_DIR/err" "$@"
  code=$?
  local what="$CASE: rill $*"
  if [ "$code" -ge 128 ]; then
    signals=$((signals + 1))
    rel_fail "$what: killed by signal $((code - 128)): $(tail -2 "$REL_DIR/err" | tr '\n' '|')"
    return
  fi
  [ "$code" = "$want" ] || rel_fail "$what: exit $code, expected $want: $(head -1 "$REL_DIR/err") $(head -2 "$REL_DIR/out" | tr '\n' '|' | cut -c1-200)"
  if [ "$code" != 0 ]; then
    rel_one_line_error "$REL_DIR/err" "$what"
    [ -z "$word" ] || grep -q -- "$word" "$REL_DIR/err" "$REL_DIR/out" ||
      rel_fail "$what: the error does not name \"$word\": $(head -1 "$REL_DIR/err")"
  fi
}

flip() { printf "\\x$(printf %02x "$3")" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
marker_offset() { grep -obUa "marker-00150" "$db/log/data.mdb" | head -1 | cut -d: -f1; }
stream_of_150="item-$((150 % 7))"

# 1. A flipped byte in an event's data: CRC names position 150.
fresh_copy "flipped data byte"
off=$(marker_offset)
flip "$db/log/data.mdb" $((off + 3)) 0x41
expect 1 "position 150" check
expect 1 "150" show "$stream_of_150"
expect 1 "150" export
expect 1 "150" log --from 140 --count 20
expect 0 "" show item-1

# 2. A flipped byte in the record header (the type's length).
fresh_copy "flipped header byte"
off=$(marker_offset)
start=$((off - 11 - 72 - 6 - 5 - 2))  # {"marker":" ; header; stream; type; meta {}
flip "$db/log/data.mdb" $((start + 6)) 0x7f
expect 1 "150" check
expect 1 "150" show "$stream_of_150"
expect 0 "" show item-2 --count 3

# 3. A zeroed B-tree page in the log (LMDB has no page checksums).
for page in 3 $((log_pages / 2)) $((log_pages - 1)); do
  fresh_copy "zeroed log page $page"
  dd if=/dev/zero of="$db/log/data.mdb" bs=4096 seek="$page" count=1 conv=notrunc status=none
  expect 1 "" check
  expect 1 "" export
done

# 4. The log's data.mdb truncated: to half, to one page, to nothing.
size=$(stat -c %s "$pristine/log/data.mdb")
for cut in $((size / 2)) 4096 0; do
  fresh_copy "log/data.mdb truncated to $cut bytes"
  truncate -s "$cut" "$db/log/data.mdb"
  expect 1 "log" check
  expect 1 "log" show item-1
  expect 1 "log" append item-1 Noted
done

# 5. The index (derived, never fsync'd) truncated or garbage: rebuilt.
isize=$(stat -c %s "$pristine/index/data.mdb")
for how in half garbage; do
  fresh_copy "index/data.mdb $how"
  if [ "$how" = half ]; then truncate -s $((isize / 2)) "$db/index/data.mdb"; else head -c "$isize" /dev/urandom >"$db/index/data.mdb"; fi
  expect 0 "" check
  expect 0 "" show item-3
  rel_run "$REL_DIR/out" "$REL_DIR/err" --json export
  n=$(grep -c '"position"' "$REL_DIR/out")
  [ "$n" = 300 ] || rel_fail "$CASE: export has $n events after the rebuild, not 300"
done

# 6. A garbage read model: named, and a replay rebuilds it.
fresh_copy "garbage read model"
head -c 20000 /dev/urandom >"$db/readmodels/counts.sqlite"
expect 1 "counts.sqlite" query counts "SELECT count(*) FROM c"
expect 1 "counts.sqlite" project run counts
expect 0 "" project replay counts
expect 0 "" query counts "SELECT count(*) FROM c"

# 7. A garbage migration file in the store: named with file:line, exit 2,
# by every command that reads through the upcasters; the ones that read
# only what is stored (check, backup, export --raw) are not blocked by it.
fresh_copy "garbage migration"
mkdir -p "$db/migrations"
printf '{"event":"Noted","from":1,"to":2,"ops":[{"op":"frob"}]}' >"$db/migrations/0001-x.json"
expect 2 "0001-x.json:1" show item-1
head -c 3000 /dev/urandom >"$db/migrations/0001-x.json"
expect 2 "0001-x.json" show item-1
expect 2 "0001-x.json" export
expect 0 "" check
expect 0 "" export --raw
expect 0 "" backup "$REL_DIR/backup-with-garbage-migration"

# 8. A garbage projection file in the store: named with file:line.
fresh_copy "garbage projection"
head -c 3000 /dev/urandom >"$db/projections/counts.sql"
expect 2 "counts.sql" project list
expect 2 "counts.sql" project run counts

rel_figure cases "$cases"
rel_figure commands "$commands"
rel_figure signals "$signals"
rel_finish
