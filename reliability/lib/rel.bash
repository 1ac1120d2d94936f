# Shared by the reliability/*.sh tests (sourced, not run): the protocol of
# reliability/reliability.h for shell — RILL_RELIABILITY=short|long, an
# optional work dir argument, "# " log lines, one final
# `RESULT <name> PASS|FAIL key=value ...` line, exit 0 on PASS, 1 on FAIL.
#
# The rill under test: $RILL_BINARY_OVERRIDE, else $RILL_BUILD_DIR/rill,
# else build/rill in the source tree.

REL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RILL="${RILL_BINARY_OVERRIDE:-${RILL_BUILD_DIR:-$REL_ROOT/build}/rill}"
REL_MODE="${RILL_RELIABILITY:-short}"
REL_OK=1
REL_FIGURES=()
REL_START=$(date +%s)

rel_log() { echo "# $*"; }
rel_fail() { REL_OK=0; echo "# FAIL: $*"; }
rel_figure() { REL_FIGURES+=("$1=$2"); }
rel_budget() { if [ "$REL_MODE" = long ]; then echo "$2"; else echo "$1"; fi; }

# rel_init NAME [WORKDIR]: sets REL_NAME and REL_DIR (a fresh temp dir unless
# given; removed after a PASS).
rel_init() {
  REL_NAME=$1
  if [ -n "${2:-}" ]; then
    REL_DIR=$2
    REL_OWN_DIR=0
    mkdir -p "$REL_DIR"
  else
    REL_DIR=$(mktemp -d "/tmp/rill-rel-$REL_NAME-XXXXXX")
    REL_OWN_DIR=1
  fi
  if [ ! -x "$RILL" ]; then
    echo "# no rill binary at $RILL (build it, or set RILL_BINARY_OVERRIDE)"
    echo "RESULT $REL_NAME FAIL reason=no-binary"
    exit 1
  fi
  rel_log "$REL_NAME: $REL_MODE mode, work dir $REL_DIR, rill $RILL"
}

# rel_finish: prints the RESULT line and exits.
rel_finish() {
  rel_figure seconds $(( $(date +%s) - REL_START ))
  local verdict=PASS
  [ "$REL_OK" = 1 ] || verdict=FAIL
  if [ "$REL_OK" = 1 ] && [ "$REL_OWN_DIR" = 1 ]; then rm -rf "$REL_DIR"; fi
  [ "$REL_OK" = 1 ] || [ "$REL_OWN_DIR" = 0 ] || rel_log "work dir kept for inspection: $REL_DIR"
  echo "RESULT $REL_NAME $verdict ${REL_FIGURES[*]}"
  [ "$REL_OK" = 1 ]
}

# rel_run OUT ERR ARGS...: runs rill, stdout/stderr to files; returns its
# exit code (128+N when killed by signal N).
rel_run() {
  local out=$1 err=$2
  shift 2
  "$RILL" "$@" >"$out" 2>"$err"
}

# rel_one_line_error ERRFILE WHAT: the error output must be one or two
# "rill: " lines (a file's bad line plus a summary), each short.
rel_one_line_error() {
  local n
  n=$(wc -l <"$1")
  if [ "$n" -lt 1 ] || [ "$n" -gt 2 ] || ! head -1 "$1" | grep -q '^rill: ' || [ "$(awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }' "$1")" -gt 1000 ]; then
    rel_fail "$2: stderr is not one short 'rill: ' error line: $(head -c 300 "$1" | tr '\n' '|')"
    return 1
  fi
  return 0
}

# rel_events FILE: "position stream version" per event of `rill --json`
# output lines (acks or export), sorted as text (for comm); gaps are
# counted with `rel_gaps`.
rel_events() {
  sed -n 's/.*"position":\([0-9]*\).*/\1 &/p' "$1" |
    sed -E 's/^([0-9]+) .*"stream":"([^"]*)".*"version":([0-9]+).*/\1 \2 \3/; s/^([0-9]+) .*"version":([0-9]+).*"stream":"([^"]*)".*/\1 \3 \2/' |
    LC_ALL=C sort -u
}

# rel_gaps FILE (of rel_events): positions not 1..n in order.
rel_gaps() { sort -n "$1" | awk '$1 != NR { g++ } END { print g + 0 }'; }
