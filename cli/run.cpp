// rill run [--follow]: keeps every read model (and, once wired, every process
// manager) up to date. Catch up, then with --follow keep going until
// SIGINT/SIGTERM, which stop each one cleanly after its current transaction.
#include <fmt/format.h>

#include "cli/cli.h"
#include "cli/project.h"
#include "core/projection_runner.h"

namespace rill::cli {
namespace {

int RunAll(GlobalOptions& g, bool follow) {
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(g, store.status());
  ProjectionRegistry reg;
  Status s = LoadProjections((*store)->dir(), &reg);
  if (!s.ok()) return Fail(g, s);

  std::vector<const Projection*> projections;
  for (const auto& e : reg.entries()) projections.push_back(e.projection.get());

  ProjectionRunOptions o;
  o.follow = follow;
  o.should_stop = [] { return InterruptRequested(); };

  // ---- PROCESS MANAGERS HOOK ------------------------------------------------
  // Process managers (core/, actor-core work) start here too, on their own
  // threads, with the same `follow` and should_stop, before the projections
  // block below; join them after it and merge their statuses into the exit
  // code. Nothing to start until that API lands.
  // ---------------------------------------------------------------------------

  std::vector<Status> results = RunProjections(**store, projections, o);

  uint64_t head = (*store)->LastPosition();
  int exit_code = kExitOk;
  Table t({"PROJECTION", "CHECKPOINT", "LAG", "RESULT"}, {false, true, true, false});
  for (size_t i = 0; i < projections.size(); ++i) {
    const std::string& name = projections[i]->name();
    auto st = ReadReadModelState(ReadModelPath((*store)->dir(), name));
    uint64_t cp = st.ok() ? st->position : 0;
    uint64_t lag = head > cp ? head - cp : 0;
    const Status& r = results[i];
    if (!r.ok()) {
      std::fprintf(stderr, "rill: %s: %s\n", r.CodeName(), r.message().c_str());
      if (exit_code == kExitOk) exit_code = ExitCodeFor(r);
    }
    if (g.json) {
      PrintJsonLine([&](JsonWriter& w) {
        w.StartObject();
        w.Key("name");
        w.String(name);
        w.Key("checkpoint");
        w.Uint64(cp);
        w.Key("lag");
        w.Uint64(lag);
        w.Key("error");
        if (r.ok()) {
          w.Null();
        } else {
          w.String(r.CodeName());
          w.Key("reason");
          w.String(r.message());
        }
        w.EndObject();
      });
    } else {
      t.Add({name, std::to_string(cp), std::to_string(lag), r.ok() ? "ok" : r.CodeName()});
    }
  }
  if (!g.json && !g.quiet) t.Print();
  return exit_code;
}

void SetupRun(CLI::App& root, GlobalOptions& g) {
  auto follow = std::make_shared<bool>(false);
  CLI::App* run = root.add_subcommand("run", "Run every projection (and process manager): catch up, or --follow");
  run->add_flag("--follow,-f", *follow, "Keep going until SIGINT/SIGTERM (each stops after its current transaction)");
  run->callback([follow, &g] { g.exit_code = RunAll(g, *follow); });
}

}  // namespace

RILL_COMMANDS(61, SetupRun);

}  // namespace rill::cli
