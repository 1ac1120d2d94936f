// rel_soak — mixed load for a long time; memory stays flat.
//
// PROMISE: under continuous mixed load (raw appends, commands, sagas'
// process managers and every projection following, a log follower, short
// readers), the long-lived `rill` processes do not grow: for each of them,
// the largest anonymous resident memory (RssAnon: heap and stacks; the mapped
// store files are excluded because their touched pages grow with the log by
// design) in the last third of the run is at most 1.2 x the largest in the
// first third + 16 MiB. And at the end the same correctness checks as
// rel_concurrent hold (nothing lost, no gaps, model equals a rebuild).
//
// How: reliability/mixed_load.h with throttled loaders, ~30 s (short) or
// 30 min (long); RSS sampled every second (every 5 s in long mode).
// It can fail: the bound is checked on a synthetic growing series too
// (self-test).
#include <algorithm>

#include "reliability/mixed_load.h"

namespace rel = rill::reliability;

namespace {

struct Growth {
  uint64_t first_max = 0, last_max = 0;
  bool flat() const { return static_cast<double>(last_max) <= static_cast<double>(first_max) * 1.2 + 16 * 1024; }
};

Growth Measure(const std::vector<rel::Sample>& samples, size_t follower) {
  Growth g;
  size_t n = samples.size(), third = std::max<size_t>(1, n / 3);
  for (size_t i = 0; i < n; ++i) {
    uint64_t v = follower < samples[i].anon_kib.size() ? samples[i].anon_kib[follower] : 0;
    if (i < third) g.first_max = std::max(g.first_max, v);
    if (i >= n - third) g.last_max = std::max(g.last_max, v);
  }
  return g;
}

}  // namespace

int main(int argc, char** argv) {
  rel::Run run("soak", argc, argv);
  rel::MixedLoadOptions o;
  o.seconds = run.Budget(30.0, 1800.0);
  o.appenders = 1;
  o.append_chunk = 2000;
  o.submit_chunk = 300;
  o.pause_ms = run.Budget(200, 1000);
  o.run_follower = true;
  o.reads = true;
  o.sample_ms = run.Budget(1000, 5000);
  rel::MixedLoadReport r = rel::RunMixedLoad(run, run.Path("db"), o);
  rel::Log("%llu chunks, %llu reads, %llu acknowledged, %llu events, %zu RSS samples",
           static_cast<unsigned long long>(r.chunks), static_cast<unsigned long long>(r.reads),
           static_cast<unsigned long long>(r.acked), static_cast<unsigned long long>(r.events), r.samples.size());
  run.Expect(r.samples.size() >= 9, "too few RSS samples");
  for (size_t f = 0; f < r.follower_names.size(); ++f) {
    Growth g = Measure(r.samples, f);
    rel::Log("%s: RssAnon max %llu KiB in the first third, %llu KiB in the last", r.follower_names[f].c_str(),
             static_cast<unsigned long long>(g.first_max), static_cast<unsigned long long>(g.last_max));
    run.Expect(g.flat(), r.follower_names[f] + " grew: " + std::to_string(g.first_max) + " KiB -> " +
                             std::to_string(g.last_max) + " KiB");
    run.Figure(r.follower_names[f] + "_kib", std::to_string(g.first_max) + "->" + std::to_string(g.last_max));
  }
  // Self-test: a process growing 1 MiB a sample is caught.
  std::vector<rel::Sample> leak;
  for (int i = 0; i < 60; ++i) leak.push_back({static_cast<double>(i), {static_cast<uint64_t>(10240 + i * 1024)}});
  run.Expect(!Measure(leak, 0).flat(), "self-test: the bound missed a leak");

  run.Figure("acked", r.acked);
  run.Figure("events", r.events);
  run.Figure("reads", r.reads);
  run.Figure("lost", r.verdict.lost + r.verdict.misplaced);
  run.Figure("dup", r.verdict.dup);
  run.Figure("gaps", r.verdict.gaps);
  return run.Finish();
}
