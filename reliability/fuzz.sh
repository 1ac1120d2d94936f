#!/usr/bin/env bash
# Item 10 of the reliability battery: libFuzzer runs of the JSONL readers,
# the event record decoder, the migration-file parser and the SQL-projection
# parser under ASan + UBSan (scripts/fuzz.sh does the work). Promise: no
# input crashes, hangs or trips a sanitizer in the budget (10 s per target in
# CI, 10,000,000 executions per target with RILL_RELIABILITY=long), and every
# committed regression input in testdata/fuzz/ still passes. Optional
# argument: a work dir (the fuzz build goes there instead of build-fuzz).
here=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -gt 0 ]; then exec "$here/scripts/fuzz.sh" --build-dir "$1/build-fuzz"; fi
exec "$here/scripts/fuzz.sh"
