// rill snapshot show|rebuild|drop|verify [STREAM | --category C | --all]
//
// Snapshots are derived data (index/): rebuild recomputes them from events,
// drop forgets them (the next activation replays events), verify compares
// each with a full replay of its stream up to the snapshot's version.
#include <fmt/format.h>
#include <rapidjson/document.h>

#include "cli/cli.h"

namespace rill::cli {
namespace {

struct SnapshotOptions {
  std::string action;
  std::string stream;
  std::string category;
  bool all = false;
};

bool Selected(const SnapshotOptions& o, const std::string& stream) {
  if (o.all) return true;
  if (!o.stream.empty()) return stream == o.stream;
  return CategoryOf(stream) == o.category;
}

bool SameJson(const std::string& a, const std::string& b) {
  rapidjson::Document da, db;
  da.Parse(a.c_str());
  db.Parse(b.c_str());
  return !da.HasParseError() && !db.HasParseError() && da == db;
}

// Existing snapshots in the selection, in stream order.
Result<std::vector<std::pair<std::string, Snapshot>>> SelectedSnapshots(EventStore& store, const SnapshotOptions& o) {
  std::vector<std::pair<std::string, Snapshot>> all, out;
  RILL_RETURN_IF_ERROR(store.ListSnapshots(&all));
  for (auto& s : all)
    if (Selected(o, s.first)) out.push_back(std::move(s));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  if (out.empty() && !o.stream.empty()) return Status::NotFound(fmt::format("no snapshot for stream {}", o.stream));
  return out;
}

int Show(const GlobalOptions& g, EventStore& store, const SnapshotOptions& o) {
  auto snaps = SelectedSnapshots(store, o);
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
  auto snaps = SelectedSnapshots(store, o);
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
  auto snaps = SelectedSnapshots(store, o);
  if (!snaps.ok()) return Fail(g, snaps.status());
  Progress progress(g, "verifying snapshots", snaps->size());
  uint64_t done = 0, bad = 0;
  for (const auto& [stream, s] : *snaps) {
    if (InterruptRequested()) return Fail(g, Status::Interrupted(fmt::format("stopped after {} snapshots", done)));
    std::string problem;
    const AggregateType* type = Domains().ForStream(stream);
    if (!type) {
      problem = "no aggregate type owns this stream";
    } else if (s.state_schema != type->state_schema()) {
      problem = fmt::format("state schema {} but {} declares {} (the snapshot is ignored)", s.state_schema,
                            type->name(), type->state_schema());
    } else {
      auto replay = ReplayState(store, Domains(), stream, {.until_version = s.version});
      if (!replay.ok()) problem = "replay failed: " + replay.status().ToString();
      else if (replay->version != s.version)
        problem = fmt::format("snapshot is at version {} but the stream has only {}", s.version, replay->version);
      else if (!SameJson(replay->state, s.state))
        problem = fmt::format("state differs: snapshot {} replay {}", s.state, replay->state);
    }
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
  std::vector<std::string> streams;
  if (!o.stream.empty()) {
    streams.push_back(o.stream);
  } else {
    std::vector<StreamInfo> infos;
    if (Status s = store.ListStreams(o.all ? "" : o.category, &infos); !s.ok()) return Fail(g, s);
    for (const auto& i : infos)
      if (!i.deleted && i.head_version > 0 && Domains().ForStream(i.name)) streams.push_back(i.name);
  }
  // The runtime shows the live state (previous snapshot + events); the
  // rebuilt one must equal it, or the previous snapshot was wrong.
  auto rt = StartRuntime(store, {.shards = 1, .max_live_actors = 1024});
  if (!rt.ok()) return Fail(g, rt.status());
  Progress progress(g, "rebuilding snapshots", streams.size());
  uint64_t done = 0, differed = 0;
  for (const auto& stream : streams) {
    if (InterruptRequested()) return Fail(g, Status::Interrupted(fmt::format("stopped after {} snapshots", done)));
    const AggregateType* type = Domains().ForStream(stream);
    if (!type) return Fail(g, Status::NotFound(fmt::format("no aggregate type owns stream {}", stream)));
    auto live = (*rt)->GetState(stream);
    if (!live.ok()) return Fail(g, live.status());
    auto replay = ReplayState(store, Domains(), stream);
    if (!replay.ok()) return Fail(g, replay.status());
    bool changed = live->version != replay->version || !SameJson(live->state, replay->state);
    if (changed) ++differed;
    Snapshot snap{replay->version, type->state_schema(), replay->state};
    if (Status s = store.PutSnapshot(stream, snap); !s.ok()) return Fail(g, s);
    progress.Update(++done);
    if (g.json) {
      PrintJsonLine([&](JsonWriter& w) {
        w.StartObject();
        w.Key("stream");
        w.String(stream);
        w.Key("version");
        w.Uint64(replay->version);
        w.Key("state_schema");
        w.Uint(type->state_schema());
        w.Key("previous_differed");
        w.Bool(changed);
        w.EndObject();
      });
    } else if (changed && !g.quiet) {
      progress.Finish();
      fmt::print("{}: the previous snapshot + events gave {} at version {}; rebuilt {} at version {}\n", stream,
                 live->state, live->version, replay->state, replay->version);
    }
  }
  progress.Finish();
  if (!g.json && !g.quiet)
    fmt::print("rebuilt {} snapshot{} ({} differed from the live state)\n", done, done == 1 ? "" : "s", differed);
  return kExitOk;
}

int RunSnapshot(const GlobalOptions& g, const SnapshotOptions& o) {
  int targets = (!o.stream.empty()) + (!o.category.empty()) + o.all;
  if (targets != 1) return Fail(g, kExitUsage, "usage: give exactly one of STREAM, --category C or --all");
  if (!o.stream.empty() && !Domains().ForStream(o.stream) && o.action == "rebuild")
    return Fail(g, Status::NotFound(fmt::format("no aggregate type owns stream {} (see 'rill domains')", o.stream)));
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
  cmd->add_option("stream", o->stream, "One stream, e.g. account-42");
  cmd->add_option("--category", o->category, "Every stream of this category (aggregate type)");
  cmd->add_flag("--all", o->all, "Every stream");
  cmd->callback([o, &g] { g.exit_code = RunSnapshot(g, *o); });
}

}  // namespace

RILL_COMMANDS(60, SetupSnapshot);

}  // namespace rill::cli
