// rill run [--follow]: keeps every read model and every process manager up to
// date. Catch up, then with --follow keep going until
// SIGINT/SIGTERM, which stop each one cleanly after its current transaction.
#include <fmt/format.h>

#include "cli/cli.h"
#include "cli/project.h"
#include "core/process_manager.h"
#include "core/projection_runner.h"
#include "store/start_thread.h"

#include <algorithm>
#include <thread>

namespace rill::cli {
namespace {

int RunAll(GlobalOptions& g, bool follow) {
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(g, store.status());
  ProjectionRegistry reg;
  Status s = LoadProjections((*store)->dir(), &reg);
  if (!s.ok()) return Fail(g, s);

  std::vector<const Projection*> projections;
  // The config's `projections` key picks which ones run (empty: all).
  std::vector<std::string> wanted = ProjectionsToRun();
  for (const auto& name : wanted)
    if (!reg.Find(name))
      return Fail(g, Status::NotFound(fmt::format("no projection named '{}' (config key projections)", name)));
  for (const auto& e : reg.entries())
    if (wanted.empty() || std::find(wanted.begin(), wanted.end(), e.projection->name()) != wanted.end())
      projections.push_back(e.projection.get());

  // A stale read model stops the whole run before anything runs: the
  // operator replays it (or all of them) first.
  std::vector<std::string> stale;
  Status first_stale;
  for (const Projection* p : projections) {
    s = CheckNotStale((*store)->dir(), *p);
    if (s.code() != Code::kFailedPrecondition && !s.ok()) return Fail(g, s);
    if (s.ok()) continue;
    stale.push_back(p->name());
    if (first_stale.ok()) first_stale = s;
  }
  if (stale.size() == 1) return Fail(g, first_stale);
  if (stale.size() > 1)
    return Fail(g, Status::FailedPrecondition(fmt::format(
                       "read models {} were built by other definitions of their projections: run 'rill project "
                       "replay --all'",
                       fmt::join(stale, ", "))));

  ProjectionRunOptions o;
  o.follow = follow;
  o.should_stop = [] { return InterruptRequested(); };

  // Process managers: catching up, they run first, so the projections then
  // see the events their commands caused; following, they run beside the
  // projections on their own thread. Their status joins the exit code.
  auto runtime = StartRuntime(**store);
  if (!runtime.ok()) return Fail(g, runtime.status());
  Status pm_status;
  auto run_managers = [&] {
    ProcessRunOptions po;
    po.follow = follow;
    po.stop = [] { return InterruptRequested(); };
    pm_status = RunProcessManagers(**store, **runtime, Domains(), po);
  };
  std::thread managers;
  if (follow) {
    if (Status started = StartThread(&managers, "process manager", run_managers); !started.ok())
      return Fail(g, started);
  } else {
    run_managers();
  }

  std::vector<Status> results = RunProjections(**store, projections, o);
  if (managers.joinable()) managers.join();
  runtime->reset();

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
  if (!pm_status.ok()) {
    std::fprintf(stderr, "rill: process managers: %s\n", pm_status.ToString().c_str());
    if (exit_code == kExitOk) exit_code = ExitCodeFor(pm_status);
  }
  return exit_code;
}

void SetupRun(CLI::App& root, GlobalOptions& g) {
  auto follow = std::make_shared<bool>(false);
  CLI::App* run = root.add_subcommand("run", "Run every projection (and process manager): catch up, or --follow");
  run->add_flag("--follow,-f", *follow, "Keep going until SIGINT/SIGTERM (each stops after its current transaction)");
  run->callback([follow, &g] { g.exit_code = RunAll(g, *follow); });
}

}  // namespace

RILL_COMMANDS("run", SetupRun);

}  // namespace rill::cli
