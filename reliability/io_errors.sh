#!/usr/bin/env bash
# Item 6 of the reliability battery — I/O errors. An LD_PRELOAD shim
# (reliability/shim/faultshim.c) makes the N-th fdatasync / fsync / pwrite /
# write on the log's data.mdb fail with EIO, for several N, while
# `rill append --file` and `rill submit --file` write batches. Promise: when
# a fault fires, the run ends with exit 1 (never a signal, never exit 0 as if
# all were stored) and a short "rill: " error; every event it acknowledged
# before the fault, and everything stored before the run, is still there
# with the same position, stream and version; anything else that appears is
# whole (check verifies CRCs and gaps); and the store, reopened without the
# fault, is clean and takes writes again.
# Optional argument: a work dir.
set -u
. "$(dirname "$0")/lib/rel.bash"
rel_init io_errors "${1:-}"

shim="$REL_DIR/librill_faultshim.so"
if ! cc -shared -fPIC -O1 -o "$shim" "$REL_ROOT/reliability/shim/faultshim.c" -ldl 2>"$REL_DIR/cc.err"; then
  rel_fail "cannot build the fault shim: $(head -3 "$REL_DIR/cc.err")"
  rel_finish
  exit $?
fi

pristine="$REL_DIR/pristine"
export RILL_DB="$pristine"
rel_run "$REL_DIR/out" "$REL_DIR/err" init || rel_fail "init: $(cat "$REL_DIR/err")"
for i in $(seq 1 40); do
  printf '{"stream":"base-%d","type":"Based","data":{"n":%d}}\n' $((i % 4)) "$i"
done >"$REL_DIR/base.jsonl"
rel_run "$REL_DIR/base.acks" "$REL_DIR/err" --json append --file "$REL_DIR/base.jsonl" || rel_fail "base append: $(head -1 "$REL_DIR/err")"
rel_run "$REL_DIR/out" "$REL_DIR/err" submit OpenAccount --to account-1 owner=ann || rel_fail "base submit: $(head -1 "$REL_DIR/err")"
grep -h '"position"' "$REL_DIR/base.acks" >"$REL_DIR/base.acked"

# Inputs: 300 appends on 30 streams; 200 commands on 10 accounts.
for i in $(seq 1 300); do
  printf '{"stream":"io-%d","type":"Written","data":{"n":%d}}\n' $((i % 30)) "$i"
done >"$REL_DIR/appends.jsonl"
{
  for a in $(seq 2 11); do printf '{"command":"OpenAccount","to":"account-%d","data":{"owner":"o%d"}}\n' "$a" "$a"; done
  for i in $(seq 1 190); do printf '{"command":"Deposit","to":"account-%d","data":{"amount":%d}}\n' $((2 + i % 10)) "$i"; done
} >"$REL_DIR/commands.jsonl"

# Short: the first and second call of each kind (a batch's page write, its
# meta write / sync). Long: more calls and fsync too (LMDB uses fdatasync).
if [ "$REL_MODE" = long ]; then at_list=$(seq 1 8); ops="fdatasync pwrite write fsync"; else at_list="1 2"; ops="fdatasync pwrite write"; fi
runs=0 fired=0 errors_reported=0 acked_total=0 lost_total=0
for kind in append submit; do
  for op in $ops; do
    for at in $at_list; do
      runs=$((runs + 1))
      db="$REL_DIR/db"
      rm -rf "$db"
      cp -a "$pristine" "$db"
      export RILL_DB="$db"
      what="$kind with $op #$at failing"
      flog="$REL_DIR/fault.log"
      rm -f "$flog"
      if [ "$kind" = append ]; then args=(--json append --file "$REL_DIR/appends.jsonl"); else args=(--json submit --no-wait --file "$REL_DIR/commands.jsonl"); fi
      LD_PRELOAD="$shim" RILL_FAULT_OP=$op RILL_FAULT_AT=$at RILL_FAULT_PATH=log/data.mdb RILL_FAULT_LOG="$flog" \
        "$RILL" "${args[@]}" >"$REL_DIR/out" 2>"$REL_DIR/err"
      code=$?
      [ "$code" -lt 128 ] || rel_fail "$what: rill was killed by signal $((code - 128))"
      if [ -s "$flog" ]; then
        fired=$((fired + 1))
        if [ "$code" = 0 ]; then
          rel_fail "$what: the fault fired ($(head -1 "$flog")) but rill reported success"
        else
          errors_reported=$((errors_reported + 1))
          [ "$code" = 1 ] || rel_fail "$what: exit $code, documented 1 for an I/O error: $(head -1 "$REL_DIR/err")"
          head -1 "$REL_DIR/err" | grep -q '^rill: ' || rel_fail "$what: no 'rill: ' error line: $(head -c 200 "$REL_DIR/err")"
          [ "$(awk 'length($0) > 1000' "$REL_DIR/err" | wc -l)" = 0 ] || rel_fail "$what: an error line over 1000 bytes"
        fi
      fi
      # Reopened without the fault: clean, nothing acknowledged lost.
      rel_run "$REL_DIR/check.out" "$REL_DIR/check.err" check
      c=$?
      [ "$c" = 0 ] || rel_fail "$what: check afterwards: exit $c: $(head -2 "$REL_DIR/check.out" | tr '\n' '|') $(head -1 "$REL_DIR/check.err")"
      rel_run "$REL_DIR/export" "$REL_DIR/export.err" --json export ||
        rel_fail "$what: export afterwards: $(head -1 "$REL_DIR/export.err")"
      cat "$REL_DIR/base.acked" >"$REL_DIR/acks"
      grep '"position"' "$REL_DIR/out" | grep -v '"error"' >>"$REL_DIR/acks"
      rel_events "$REL_DIR/acks" >"$REL_DIR/acked"
      rel_events "$REL_DIR/export" >"$REL_DIR/stored"
      lost=$(comm -23 "$REL_DIR/acked" "$REL_DIR/stored" | wc -l)
      acked_total=$((acked_total + $(wc -l <"$REL_DIR/acked")))
      lost_total=$((lost_total + lost))
      [ "$lost" = 0 ] || rel_fail "$what: $lost acknowledged events lost, e.g. $(comm -23 "$REL_DIR/acked" "$REL_DIR/stored" | head -1)"
      gaps=$(rel_gaps "$REL_DIR/stored")
      [ "$gaps" = 0 ] || rel_fail "$what: positions out of sequence after the fault"
      # And it takes writes again.
      rel_run "$REL_DIR/out2" "$REL_DIR/err2" append after-1 Recovered || rel_fail "$what: append afterwards: $(head -1 "$REL_DIR/err2")"
      rel_run "$REL_DIR/out2" "$REL_DIR/err2" submit Deposit --to account-1 amount=1 || rel_fail "$what: submit afterwards: $(head -1 "$REL_DIR/err2")"
      rel_log "$what: exit $code, fault $( [ -s "$flog" ] && echo fired || echo 'not reached'), $(wc -l <"$REL_DIR/acked") acked, $(wc -l <"$REL_DIR/stored") stored: $(head -1 "$REL_DIR/err" | cut -c1-150)"
    done
  done
done
[ "$fired" -gt 0 ] || rel_fail "no fault ever fired: the shim is not intercepting rill's I/O"
rel_figure runs "$runs"
rel_figure faults "$fired"
rel_figure errors_reported "$errors_reported"
rel_figure acked "$acked_total"
rel_figure lost "$lost_total"
rel_finish
