// rill snapshot show|rebuild|drop|verify [STREAM | --category C | --all]
//
// Snapshots are derived data (index/): rebuild recomputes them from events,
// drop forgets them (the next activation replays events), verify compares
// each with a full replay of its stream up to the snapshot's version
// (core/snapshot_tools.h).
#include <fmt/format.h>

#include "cli/cli.h"
#include "core/snapshot_tools.h"

namespace rill::cli {
namespace {

struct SnapshotOptions {
  std::string action;
  SnapshotSelection selection;
};

int Show(const GlobalOptions& g, EventStore& store, const SnapshotOptions& o) {
  auto snaps = SelectedSnapshots(store, o.selection);
  if (!snaps.ok()) return Fail(g, snaps.status());
  if (g.json) {
    for (const auto& [stream, s] : *snaps)
      PrintJsonLine([&](JsonWriter& w) {
        w.StartObject();
        w.Key("stream");
        w.String(stream);
        w.Key("version");
        w.Uint64(s.version);
        w.Key("state_schema");
        w.Uint(s.state_schema);
        w.Key("state");
        w.RawValue(s.state.data(), s.state.size(), rapidjson::kObjectType);
        w.EndObject();
      });
    return kExitOk;
  }
  if (g.quiet) return kExitOk;
  Table t({"stream", "version", "schema", "state"}, {false, true, true, false});
  for (const auto& [stream, s] : *snaps) t.Add({stream, std::to_string(s.version), std::to_string(s.state_schema), s.state});
  if (t.size() == 0) fmt::print("no snapshots\n");
  else t.Print();
  return kExitOk;
}

int Drop(const GlobalOptions& g, EventStore& store, const SnapshotOptions& o) {
  auto snaps = SelectedSnapshots(store, o.selection);
  if (!snaps.ok()) return Fail(g, snaps.status());
  for (const auto& [stream, s] : *snaps) {
    if (Status st = store.DeleteSnapshot(stream); !st.ok()) return Fail(g, st);
    if (g.json)
      PrintJsonLine([&](JsonWriter& w) {
        w.StartObject();
        w.Key("stream");
        w.String(stream);
        w.Key("dropped");
        w.Bool(true);
        w.EndObject();
      });
  }
  if (!g.json && !g.quiet) fmt::print("dropped {} snapshot{}\n", snaps->size(), snaps->size() == 1 ? "" : "s");
  return kExitOk;
}

int Verify(const GlobalOptions& g, EventStore& store, const SnapshotOptions& o) {
  auto snaps = SelectedSnapshots(store, o.selection);
  if (!snaps.ok()) return Fail(g, snaps.status());
  Progress progress(g, "verifying snapshots", snaps->size());
  uint64_t done = 0, bad = 0;
  for (const auto& [stream, s] : *snaps) {
    if (InterruptRequested()) return Fail(g, Status::Interrupted(fmt::format("stopped after {} snapshots", done)));
    std::string problem = SnapshotProblem(store, Domains(), stream, s);
    if (!problem.empty()) ++bad;
    progress.Update(++done);
    if (g.json) {
      PrintJsonLine([&](JsonWriter& w) {
        w.StartObject();
        w.Key("stream");
        w.String(stream);
        w.Key("version");
        w.Uint64(s.version);
        w.Key("ok");
        w.Bool(problem.empty());
        if (!problem.empty()) {
          w.Key("problem");
          w.String(problem);
        }
        w.EndObject();
      });
    } else if (!problem.empty()) {
      progress.Finish();
      fmt::print("{} version {}: {}\n", stream, s.version, problem);
    }
  }
  progress.Finish();
  if (!g.json && !g.quiet)
    fmt::print("verified {} snapshot{}: {} mismatch{}\n", done, done == 1 ? "" : "s", bad, bad == 1 ? "" : "es");
  if (bad) {
    std::fprintf(stderr, "rill: corruption: %llu snapshot(s) disagree with their events (fix: rill snapshot rebuild)\n",
                 static_cast<unsigned long long>(bad));
    return kExitError;
  }
  return kExitOk;
}

int Rebuild(const GlobalOptions& g, EventStore& store, const SnapshotOptions& o) {
  auto streams = StreamsToSnapshot(store, Domains(), o.selection);
  if (!streams.ok()) return Fail(g, streams.status());
  // The runtime shows the live state (previous snapshot + events); the
  // rebuilt one must equal it, or the previous snapshot was wrong.
  auto rt = StartRuntime(store, {.shards = 1, .max_live_actors = 1024});
  if (!rt.ok()) return Fail(g, rt.status());
  Progress progress(g, "rebuilding snapshots", streams->size());
  uint64_t done = 0, differed = 0;
  for (const auto& stream : *streams) {
    if (InterruptRequested()) return Fail(g, Status::Interrupted(fmt::format("stopped after {} snapshots", done)));
    auto rebuilt = RebuildSnapshot(store, **rt, Domains(), stream);
    if (!rebuilt.ok()) return Fail(g, rebuilt.status());
    const StateView& live = rebuilt->live;
    const StateView& replay = rebuilt->replayed;
    bool changed = rebuilt->previous_differed;
    if (changed) ++differed;
    progress.Update(++done);
    if (g.json) {
      PrintJsonLine([&](JsonWriter& w) {
        w.StartObject();
        w.Key("stream");
        w.String(stream);
        w.Key("version");
        w.Uint64(replay.version);
        w.Key("state_schema");
        w.Uint(rebuilt->state_schema);
        w.Key("previous_differed");
        w.Bool(changed);
        w.EndObject();
      });
    } else if (changed && !g.quiet) {
      progress.Finish();
      fmt::print("{}: the previous snapshot + events gave {} at version {}; rebuilt {} at version {}\n", stream,
                 live.state, live.version, replay.state, replay.version);
    }
  }
  progress.Finish();
  if (!g.json && !g.quiet)
    fmt::print("rebuilt {} snapshot{} ({} differed from the live state)\n", done, done == 1 ? "" : "s", differed);
  return kExitOk;
}

int RunSnapshot(const GlobalOptions& g, const SnapshotOptions& o) {
  const SnapshotSelection& sel = o.selection;
  int targets = (!sel.stream.empty()) + (!sel.category.empty()) + sel.all;
  if (targets != 1) return Fail(g, kExitUsage, "usage: give exactly one of STREAM, --category C or --all");
  if (!sel.stream.empty() && !Domains().ForStream(sel.stream) && o.action == "rebuild")
    return Fail(g, Status::NotFound(fmt::format("no aggregate type owns stream {} (see 'rill domains')", sel.stream)));
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(g, store.status());
  if (o.action == "show") return Show(g, **store, o);
  if (o.action == "drop") return Drop(g, **store, o);
  if (o.action == "verify") return Verify(g, **store, o);
  return Rebuild(g, **store, o);
}

void SetupSnapshot(CLI::App& root, GlobalOptions& g) {
  auto o = std::make_shared<SnapshotOptions>();
  auto* cmd = root.add_subcommand("snapshot", "Show, rebuild, drop or verify aggregate snapshots");
  cmd->add_option("action", o->action, "show | rebuild | drop | verify")
      ->required()
      ->check(CLI::IsMember({"show", "rebuild", "drop", "verify"}));
  cmd->add_option("stream", o->selection.stream, "One stream, e.g. account-42");
  cmd->add_option("--category", o->selection.category, "Every stream of this category (aggregate type)");
  cmd->add_flag("--all", o->selection.all, "Every stream");
  cmd->callback([o, &g] { g.exit_code = RunSnapshot(g, *o); });
}

}  // namespace

RILL_COMMANDS("snapshot", SetupSnapshot);

}  // namespace rill::cli
