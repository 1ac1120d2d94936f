#!/usr/bin/env bash
# Issue 19's crash-point sweep. strace injects one fault into one run of a
# command: the N-th call of a syscall class fails (EIO, ENOSPC, ENOMEM,
# EAGAIN) or is a SIGKILL, for append, submit, import, export, backup, a
# projection replay and upcast --apply, over a sweep of N. Then, without the fault, it checks
# what a user may count on:
# - never a signal (unless the injection was SIGKILL), and exit 0 only if
#   the work was done whole;
# - the store checks clean, everything stored before the run is unchanged,
#   every acknowledged event is there (acks are --json lines), positions are
#   gapless;
# - export -o leaves the complete export or no file at all; backup leaves a
#   backup that checks clean and exports like the store, or nothing;
#   a replay leaves the live model as it was, or the rebuilt one;
#   upcast --apply leaves each event in its stored or its upcast form (whole
#   batches), its backup whole or absent, and a rerun gives exactly what an
#   uninterrupted apply gives;
# - and the command, run again without the fault, succeeds.
# strace counts calls per thread (when=N is the N-th call in a thread), so
# the sweep reaches every thread's early calls: the points where a command
# opens, maps, creates and syncs its files.
# Optional argument: a work dir.
set -u
. "$(dirname "$0")/lib/rel.bash"
rel_init crash_points "${1:-}"

if ! command -v strace >/dev/null || ! strace -f -o /dev/null -e inject=getpid:error=EIO:when=1 true 2>/dev/null; then
  rel_log "strace cannot inject faults here (install strace; ptrace must be allowed): skipped"
  rel_figure reason no-strace
  rel_finish
  exit $?
fi

pristine="$REL_DIR/pristine"
export RILL_DB="$pristine"
rel_run "$REL_DIR/out" "$REL_DIR/err" init || rel_fail "init: $(cat "$REL_DIR/err")"
for i in $(seq 1 60); do printf '{"stream":"note-%d","type":"Noted","data":{"n":%d}}\n' $((i % 6)) "$i"; done >"$REL_DIR/base.jsonl"
rel_run "$REL_DIR/out" "$REL_DIR/err" append --file "$REL_DIR/base.jsonl" || rel_fail "base append: $(head -1 "$REL_DIR/err")"
rel_run "$REL_DIR/out" "$REL_DIR/err" submit OpenAccount --to account-1 owner=ann || rel_fail "base submit: $(head -1 "$REL_DIR/err")"
cat >"$REL_DIR/counting.sql" <<'SQL'
-- rill projection: counting
-- schema
CREATE TABLE IF NOT EXISTS seen(position INTEGER PRIMARY KEY, n INTEGER);
-- on Noted
INSERT INTO seen VALUES (:position, :data.n);
SQL
rel_run "$REL_DIR/out" "$REL_DIR/err" project add "$REL_DIR/counting.sql" || rel_fail "project add: $(head -1 "$REL_DIR/err")"
rel_run "$REL_DIR/out" "$REL_DIR/err" project run counting || rel_fail "project run: $(head -1 "$REL_DIR/err")"
rel_run "$REL_DIR/pristine.export" "$REL_DIR/err" export --raw || rel_fail "export: $(head -1 "$REL_DIR/err")"
base_events=$(wc -l <"$REL_DIR/pristine.export")

# Inputs.
for i in $(seq 1 200); do printf '{"stream":"io-%d","type":"Noted","data":{"n":%d}}\n' $((i % 20)) "$i"; done >"$REL_DIR/appends.jsonl"
{
  for a in $(seq 2 6); do printf '{"command":"OpenAccount","to":"account-%d","data":{"owner":"o%d"}}\n' "$a" "$a"; done
  for i in $(seq 1 95); do printf '{"command":"Deposit","to":"account-%d","data":{"amount":%d}}\n' $((2 + i % 5)) "$i"; done
} >"$REL_DIR/commands.jsonl"
other="$REL_DIR/other"
RILL_DB="$other" rel_run "$REL_DIR/out" "$REL_DIR/err" init
for i in $(seq 1 150); do printf '{"stream":"imp-%d","type":"Noted","data":{"n":%d}}\n' $((i % 15)) "$i"; done >"$REL_DIR/imp.jsonl"
RILL_DB="$other" rel_run "$REL_DIR/out" "$REL_DIR/err" append --file "$REL_DIR/imp.jsonl"
RILL_DB="$other" rel_run "$REL_DIR/import.jsonl" "$REL_DIR/err" export --raw || rel_fail "the import file: $(head -1 "$REL_DIR/err")"

# An upcast for upcast --apply: Noted 1 -> 2, in batches of 20 events.
mkdir -p "$REL_DIR/upcasts"
printf '%s\n' '{"event":"Noted","from":1,"to":2,"ops":[{"op":"default","path":"tag","value":"swept"}]}' \
  >"$REL_DIR/upcasts/0001-noted-tag.json"
upcast_args=(upcast --apply --migrations "$REL_DIR/upcasts" --batch 20)
rm -rf "$REL_DIR/ref-up"
cp -a "$pristine" "$REL_DIR/ref-up"
RILL_DB="$REL_DIR/ref-up" rel_run "$REL_DIR/out" "$REL_DIR/err" "${upcast_args[@]}" --no-backup ||
  rel_fail "reference upcast: $(head -1 "$REL_DIR/err")"
RILL_DB="$REL_DIR/ref-up" rel_run "$REL_DIR/upcast.export" "$REL_DIR/err" export --raw
cmp -s "$REL_DIR/upcast.export" "$REL_DIR/pristine.export" && rel_fail "the reference upcast changed nothing"
sort "$REL_DIR/pristine.export" "$REL_DIR/upcast.export" >"$REL_DIR/either.export"

# The dynamic loader's own mmap and openat calls come first (mapping the
# shared libraries); a failure there is ld.so's to report (exit 127, or a
# crash inside ld.so at its very first mmap), before any of rill runs. The
# sweep counts those classes from the first call after them.
loader_calls() {
  strace -f -qq -o "$REL_DIR/loader.log" -e trace=mmap,openat "$RILL" --version >/dev/null 2>&1
  awk -v sc="$1" '{ line[NR] = $0 } /MAP_DENYWRITE|\.so/ { last = NR }
    END { for (i = 1; i <= last; i++) if (index(line[i], sc "(") > 0) n++; print n + 0 }' "$REL_DIR/loader.log"
}
loader_mmap=$(loader_calls mmap)
loader_openat=$(loader_calls openat)
rel_log "the loader makes $loader_mmap mmap and $loader_openat openat calls; those are skipped"

# Fault classes: "syscalls:injection".
faults=(
  "write,pwrite64,writev:error=EIO"
  "write,pwrite64,writev:error=ENOSPC"
  "fdatasync,fsync,msync:error=EIO"
  "openat:error=EIO"
  "openat:error=EMFILE"
  "mmap:error=ENOMEM"
  "clone,clone3:error=EAGAIN"
  "rename,renameat,renameat2:error=EIO"
  "write,pwrite64,writev:signal=KILL"
  "fdatasync,fsync:signal=KILL"
  "rename,renameat,renameat2:signal=KILL"
)
commands=(append submit import export backup replay upcast)
at_list=$(rel_budget "1 2 4 9" "$(seq 1 30)")

runs=0 allocator_boot=0 injected=0 killed=0 failed_runs=0 acked_total=0 lost_total=0 bad=0
db="$REL_DIR/db"
for cmd in "${commands[@]}"; do
  for fault in "${faults[@]}"; do
    syscalls=${fault%%:*}
    how=${fault#*:}
    offset=0
    case $syscalls in mmap*) offset=$loader_mmap ;; openat*) offset=$loader_openat ;; esac
    for at in $at_list; do
      at=$((at + offset))
      runs=$((runs + 1))
      rm -rf "$db" "$REL_DIR/dest" "$REL_DIR/events.out" "$REL_DIR/pre"
      cp -a "$pristine" "$db"
      export RILL_DB="$db"
      case $cmd in
        append) args=(--json append --file "$REL_DIR/appends.jsonl") ;;
        submit) args=(--json submit --no-wait --file "$REL_DIR/commands.jsonl") ;;
        import) args=(import --append "$REL_DIR/import.jsonl") ;;
        export) args=(export -o "$REL_DIR/events.out") ;;
        backup) args=(backup "$REL_DIR/dest") ;;
        replay) args=(project replay counting) ;;
        upcast) args=("${upcast_args[@]}" --backup "$REL_DIR/pre") ;;
      esac
      what="$cmd with $syscalls:$how at call $at"
      # In a subshell whose stderr is dropped: bash's own "Killed" and
      # "Segmentation fault" notices are not the test's output.
      (strace -f -qq -o "$REL_DIR/strace.log" -e trace="$syscalls" -e inject="$syscalls:$how:when=$at" \
        "$RILL" "${args[@]}" >"$REL_DIR/out" 2>"$REL_DIR/err") 2>/dev/null
      code=$?
      grep -q 'INJECTED' "$REL_DIR/strace.log" && fired=1 || fired=0
      [ "$fired" = 1 ] && injected=$((injected + 1))
      problems_before=$bad
      fail() { bad=$((bad + 1)); rel_fail "$what: $*"; }
      if [ "$code" -ge 128 ]; then
        if [[ "$how" == signal=KILL ]] && [ "$code" = 137 ]; then
          killed=$((killed + 1))
        elif head -1 "$REL_DIR/err" | grep -q '^<jemalloc>: '; then
          # jemalloc's own boot, before main: it reports the failed mmap,
          # then crashes; nothing of rill has run (docs/reliability.md).
          allocator_boot=$((allocator_boot + 1))
        else
          fail "killed by signal $((code - 128)): $(head -1 "$REL_DIR/err")"
        fi
      fi
      [ "$code" != 0 ] && failed_runs=$((failed_runs + 1))

      # The store: clean, what was there before unchanged, acks kept.
      rel_run "$REL_DIR/check.out" "$REL_DIR/check.err" check || fail "check afterwards: $(head -2 "$REL_DIR/check.out" | tr '\n' '|') $(head -1 "$REL_DIR/check.err")"
      rel_run "$REL_DIR/after.export" "$REL_DIR/x.err" export --raw || fail "export afterwards: $(head -1 "$REL_DIR/x.err")"
      if [ "$cmd" = upcast ]; then
        sort "$REL_DIR/after.export" | comm -23 - "$REL_DIR/either.export" | grep -q . &&
          fail "an event is neither as stored nor as upcast"
        [ "$(wc -l <"$REL_DIR/after.export")" = "$base_events" ] || fail "upcast changed the number of events"
      else
        head -n "$base_events" "$REL_DIR/after.export" | cmp -s - "$REL_DIR/pristine.export" || fail "events stored before the run changed"
      fi
      rel_events "$REL_DIR/after.export" >"$REL_DIR/stored"
      [ "$(rel_gaps "$REL_DIR/stored")" = 0 ] || fail "positions out of sequence"
      stored=$(wc -l <"$REL_DIR/after.export")
      case $cmd in
        append | submit)
          grep '"position"' "$REL_DIR/out" | grep -v '"error"' >"$REL_DIR/acks" || true
          rel_events "$REL_DIR/acks" >"$REL_DIR/acked"
          lost=$(comm -23 "$REL_DIR/acked" "$REL_DIR/stored" | wc -l)
          acked_total=$((acked_total + $(wc -l <"$REL_DIR/acked")))
          lost_total=$((lost_total + lost))
          [ "$lost" = 0 ] || fail "$lost acknowledged events lost"
          if [ "$code" = 0 ] && [ "$cmd" = append ] && [ "$stored" != $((base_events + 200)) ]; then fail "exit 0 but $((stored - base_events)) of 200 lines stored"; fi
          ;;
        import)
          if [ "$code" = 0 ] && [ "$stored" != $((base_events + 150)) ]; then fail "exit 0 but $((stored - base_events)) of 150 events imported"; fi
          ;;
        export)
          # The file is whole or absent. (Present after a failure is right
          # when the failure came after the rename: the directory's fsync.)
          if [ -e "$REL_DIR/events.out" ]; then
            rel_run "$REL_DIR/clean.export" "$REL_DIR/x.err" export
            cmp -s "$REL_DIR/events.out" "$REL_DIR/clean.export" || fail "export -o left an incomplete file (exit $code)"
          fi
          [ "$code" != 0 ] || [ -e "$REL_DIR/events.out" ] || fail "exit 0 without the export file"
          # A killed export cannot remove its private temporary; any other
          # failure must.
          if [[ "$how" != signal=KILL ]] && ls "$REL_DIR" | grep -q '^events.out.tmp'; then
            fail "a temporary was left beside the export"
          fi
          rm -f "$REL_DIR"/events.out.tmp.*
          ;;
        backup)
          if [ "$code" = 0 ]; then
            RILL_DB="$REL_DIR/dest" rel_run "$REL_DIR/b.out" "$REL_DIR/b.err" check || fail "exit 0, but the backup does not check clean: $(head -1 "$REL_DIR/b.out")"
            RILL_DB="$REL_DIR/dest" rel_run "$REL_DIR/b.export" "$REL_DIR/b.err" export --raw
            cmp -s "$REL_DIR/b.export" "$REL_DIR/after.export" || fail "exit 0, but the backup's events differ"
          elif [ -e "$REL_DIR/dest" ] && [[ "$how" != signal=KILL ]]; then
            # Left behind only when the failure came after the copy was
            # whole and durable (writing the report to stdout): then it is a
            # backup like any other.
            RILL_DB="$REL_DIR/dest" rel_run "$REL_DIR/b.out" "$REL_DIR/b.err" check &&
              RILL_DB="$REL_DIR/dest" rel_run "$REL_DIR/b.export" "$REL_DIR/b.err" export --raw &&
              cmp -s "$REL_DIR/b.export" "$REL_DIR/after.export" ||
              fail "a failed backup left a partial copy at $REL_DIR/dest: $(head -1 "$REL_DIR/err")"
          fi
          ;;
        upcast)
          # The backup is taken before the first rewrite: whole (the store
          # as it was) or absent; a killed one may be partial (rill-backup(1)).
          if [ -e "$REL_DIR/pre" ] && [[ "$how" != signal=KILL ]]; then
            RILL_DB="$REL_DIR/pre" rel_run "$REL_DIR/b.out" "$REL_DIR/b.err" check &&
              RILL_DB="$REL_DIR/pre" rel_run "$REL_DIR/b.export" "$REL_DIR/b.err" export --raw &&
              cmp -s "$REL_DIR/b.export" "$REL_DIR/pristine.export" ||
              fail "upcast --apply left a backup that is not the store before it: $(head -1 "$REL_DIR/err")"
          fi
          if [ "$code" = 0 ]; then cmp -s "$REL_DIR/after.export" "$REL_DIR/upcast.export" || fail "exit 0 but the apply is not whole"; fi
          ;;
        replay)
          rel_run "$REL_DIR/q.out" "$REL_DIR/q.err" --json query counting "SELECT count(*) AS n FROM seen" || fail "the live model does not answer: $(head -1 "$REL_DIR/q.err")"
          grep -q '^{"n":60}$' "$REL_DIR/q.out" || fail "the live model holds $(cat "$REL_DIR/q.out") rows, not 60"
          ;;
      esac
      # Without the fault, the command itself works on what was left.
      case $cmd in
        export) rel_run "$REL_DIR/out2" "$REL_DIR/err2" export -o "$REL_DIR/events.out" ;;
        backup) rm -rf "$REL_DIR/dest"; rel_run "$REL_DIR/out2" "$REL_DIR/err2" backup "$REL_DIR/dest" ;;
        replay) rel_run "$REL_DIR/out2" "$REL_DIR/err2" project replay counting ;;
        upcast)
          rel_run "$REL_DIR/out2" "$REL_DIR/err2" "${upcast_args[@]}" --no-backup &&
            rel_run "$REL_DIR/again.export" "$REL_DIR/x.err" export --raw &&
            cmp -s "$REL_DIR/again.export" "$REL_DIR/upcast.export" ||
            { [ -s "$REL_DIR/err2" ] || echo "the rerun's events differ from an uninterrupted apply" >"$REL_DIR/err2"; false; }
          ;;
        *) rel_run "$REL_DIR/out2" "$REL_DIR/err2" append after-1 Recovered ;;
      esac
      [ $? = 0 ] || fail "$cmd again, without the fault: $(head -1 "$REL_DIR/err2")"
      [ "$bad" = "$problems_before" ] && [ "$REL_MODE" = long ] ||
        rel_log "$what: exit $code, $( [ "$fired" = 1 ] && echo injected || echo 'not reached'): $(head -1 "$REL_DIR/err" | cut -c1-140)"
    done
  done
done
[ "$injected" -gt 0 ] || rel_fail "no fault was ever injected: strace is not reaching rill's calls"
rel_figure runs "$runs"
rel_figure injected "$injected"
rel_figure killed "$killed"
rel_figure errors "$failed_runs"
rel_figure acked "$acked_total"
rel_figure lost "$lost_total"
rel_figure allocator_boot "$allocator_boot"
rel_figure broken "$bad"
rel_finish
