// rel_concurrent — several rill processes on one store at once.
//
// PROMISE: raw appenders, a command submitter (actor core), a projection
// follower and a log follower, all separate `rill` processes on one store at
// the same time, lose nothing and duplicate nothing: every acknowledged event
// is in the log once at the position and version it was acknowledged with,
// positions and versions are gapless, `rill check` is clean, the log
// follower saw the log's events in order without a gap, and the followed
// balances model equals the log and a clean rebuild, row for row.
//
// How: reliability/mixed_load.h, for ~20 s (short) or 60 s (long).
// It can fail: a forged acknowledgement must be reported lost (self-test).
#include "reliability/mixed_load.h"

namespace rel = rill::reliability;

int main(int argc, char** argv) {
  rel::Run run("concurrent", argc, argv);
  rel::MixedLoadOptions o;
  o.seconds = run.Budget(20.0, 60.0);
  o.appenders = 2;
  rel::MixedLoadReport r = rel::RunMixedLoad(run, run.Path("db"), o);
  rel::Log("%llu chunks, %llu acknowledged, %llu events, log follower saw %llu",
           static_cast<unsigned long long>(r.chunks), static_cast<unsigned long long>(r.acked),
           static_cast<unsigned long long>(r.events), static_cast<unsigned long long>(r.follower_lines));
  run.Figure("processes", static_cast<uint64_t>(o.appenders + 3));
  run.Figure("acked", r.acked);
  run.Figure("events", r.events);
  run.Figure("lost", r.verdict.lost + r.verdict.misplaced);
  run.Figure("dup", r.verdict.dup);
  run.Figure("gaps", r.verdict.gaps);
  run.Figure("followed", r.follower_lines);
  return run.Finish();
}
