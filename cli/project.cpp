// rill project list|status|add|run|replay|drop: SQLite read models kept by
// projections (core/projection_runner.h does the work; this file parses,
// calls and prints).
#include "cli/project.h"

#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "cli/cli.h"
#include "core/projection_loader.h"
#include "core/projection_runner.h"
#include "core/sql_projection.h"
#include "domains/sample_projections.h"
#include "readmodel/read_model_store.h"
#include "store/durable_file.h"

namespace rill::cli {

Status LoadProjections(const std::string& db_dir, ProjectionRegistry* registry) {
  RILL_RETURN_IF_ERROR(RegisterDomainProjections(registry));  // built-in and plugins'
  return LoadProjectionDirectory(ProjectionsDir(db_dir), registry);
}

namespace {

Result<const ProjectionRegistry::Entry*> FindProjection(const ProjectionRegistry& reg, const std::string& name) {
  const ProjectionRegistry::Entry* e = reg.Find(name);
  if (e == nullptr)
    return Status::NotFound(fmt::format("no projection named {} (see 'rill project list')", name));
  return e;
}

std::string Join(const std::vector<std::string>& v) { return v.empty() ? "all" : fmt::format("{}", fmt::join(v, ",")); }

void WriteStringOrNull(JsonWriter& w, const std::string& s) {
  if (s.empty()) {
    w.Null();
  } else {
    w.String(s);
  }
}

// The store and its projections, opened for one command: kExitOk, or
// Fail()'s exit code when either cannot be.
struct Opened {
  std::unique_ptr<EventStore> store;
  ProjectionRegistry reg;
};
int OpenWithProjections(GlobalOptions& g, Opened* o) {
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(g, store.status());
  o->store = std::move(store).value();
  Status s = LoadProjections(o->store->dir(), &o->reg);
  return s.ok() ? kExitOk : Fail(g, s);
}

// ---- list / status -------------------------------------------------------------

int RunList(GlobalOptions& g) {
  Opened opened;
  if (int exit = OpenWithProjections(g, &opened); exit != kExitOk) return exit;
  auto* store = &opened.store;
  ProjectionRegistry& reg = opened.reg;
  uint64_t head = (*store)->LastPosition();
  Table t({"NAME", "KIND", "SOURCE", "CHECKPOINT", "LAG", "STALE", "LAST ERROR"},
          {false, false, false, true, true, false, false});
  for (const auto& e : reg.entries()) {
    const std::string& name = e.projection->name();
    Result<ReadModelState> st = ReadReadModelState(ReadModelPath((*store)->dir(), name));
    std::string error = st.ok() ? st->last_error : st.status().message();
    bool built = st.ok() && st->exists;
    uint64_t checkpoint = built ? st->position : 0;
    uint64_t lag = head > checkpoint ? head - checkpoint : 0;
    bool stale = st.ok() && IsStale(*st, *e.projection);
    if (g.json) {
      PrintJsonLine([&](JsonWriter& w) {
        w.StartObject();
        w.Key("name");
        w.String(name);
        w.Key("kind");
        w.String(e.projection->kind());
        w.Key("source");
        w.String(SourceName(e.source));
        w.Key("built");
        w.Bool(built);
        w.Key("checkpoint");
        w.Uint64(checkpoint);
        w.Key("lag");
        w.Uint64(lag);
        w.Key("stale");
        w.Bool(stale);
        w.Key("last_error");
        WriteStringOrNull(w, error);
        w.EndObject();
      });
    } else {
      t.Add({name, e.projection->kind(), SourceName(e.source), built ? std::to_string(checkpoint) : "-",
             std::to_string(lag), stale ? "yes" : "-", error.empty() ? "-" : error});
    }
  }
  if (!g.json) t.Print();
  return kExitOk;
}

int RunStatus(GlobalOptions& g, const std::string& name) {
  Opened opened;
  if (int exit = OpenWithProjections(g, &opened); exit != kExitOk) return exit;
  auto* store = &opened.store;
  ProjectionRegistry& reg = opened.reg;
  auto found = FindProjection(reg, name);
  if (!found.ok()) return Fail(g, found.status());
  const ProjectionRegistry::Entry& e = **found;
  const Projection& p = *e.projection;
  std::string path = ReadModelPath((*store)->dir(), name);
  Result<ReadModelState> st = ReadReadModelState(path);
  if (!st.ok()) return Fail(g, st.status());
  Result<ReadModelState> rp = ReadReadModelState(ReplayPath((*store)->dir(), name));
  bool replaying = rp.ok() && rp->exists;
  uint64_t head = (*store)->LastPosition();
  uint64_t lag = head > st->position ? head - st->position : 0;
  bool stale = IsStale(*st, p);
  if (g.json) {
    PrintJsonLine([&](JsonWriter& w) {
      w.StartObject();
      w.Key("name");
      w.String(name);
      w.Key("kind");
      w.String(p.kind());
      w.Key("source");
      w.String(SourceName(e.source));
      w.Key("file");
      WriteStringOrNull(w, e.file);
      w.Key("read_model");
      w.String(path);
      w.Key("built");
      w.Bool(st->exists);
      w.Key("checkpoint");
      w.Uint64(st->position);
      w.Key("head");
      w.Uint64(head);
      w.Key("lag");
      w.Uint64(lag);
      w.Key("applied");
      w.Uint64(st->applied);
      w.Key("updated");
      WriteStringOrNull(w, st->updated);
      w.Key("stale");
      w.Bool(stale);
      w.Key("replay_checkpoint");
      if (replaying) {
        w.Uint64(rp->position);
      } else {
        w.Null();
      }
      w.Key("categories");
      w.StartArray();
      for (const auto& c : p.filter().categories) w.String(c);
      w.EndArray();
      w.Key("types");
      w.StartArray();
      for (const auto& c : p.filter().types) w.String(c);
      w.EndArray();
      w.Key("partitioned_by_stream");
      w.Bool(p.partitioned_by_stream());
      w.Key("last_error");
      WriteStringOrNull(w, st->last_error);
      w.EndObject();
    });
    return kExitOk;
  }
  Table t({"FIELD", "VALUE"});
  t.Add({"name", name});
  t.Add({"kind", fmt::format("{} ({})", p.kind(), SourceName(e.source))});
  if (!e.file.empty()) t.Add({"file", e.file});
  t.Add({"read model", st->exists ? path : path + " (not built yet)"});
  t.Add({"checkpoint", std::to_string(st->position)});
  t.Add({"head", std::to_string(head)});
  t.Add({"lag", fmt::format("{} events", lag)});
  t.Add({"applied", std::to_string(st->applied)});
  if (!st->updated.empty()) t.Add({"updated", st->updated});
  t.Add({"categories", Join(p.filter().categories)});
  t.Add({"types", Join(p.filter().types)});
  t.Add({"partition", p.partitioned_by_stream() ? "stream (applied grouped by stream)" : "-"});
  if (stale) t.Add({"definition", "changed since the model was built: run 'rill project replay " + name + "'"});
  if (replaying) t.Add({"replay", fmt::format("in progress, at position {} (resume: 'rill project replay {}')",
                                              rp->position, name)});
  t.Add({"last error", st->last_error.empty() ? "-" : st->last_error});
  t.Print();
  return kExitOk;
}

// ---- add -------------------------------------------------------------------------

int RunAdd(GlobalOptions& g, const std::string& file, bool replace) {
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(g, store.status());
  auto text = ReadFileOrStdin(file);
  if (!text.ok()) return Fail(g, text.status());
  auto parsed = ParseSqlProjection(*text, file);
  if (!parsed.ok()) return Fail(g, kExitUsage, parsed.status().message());
  Status s = ValidateSqlProjection(**parsed, [] { return InterruptRequested(); });
  if (s.code() == Code::kInterrupted) return Fail(g, s);
  if (!s.ok()) return Fail(g, kExitUsage, s.message());
  const std::string& name = (*parsed)->name();

  ProjectionRegistry reg;
  s = LoadProjections((*store)->dir(), &reg);
  if (!s.ok()) return Fail(g, s);
  bool replaced = false;
  if (const auto* e = reg.Find(name)) {
    if (e->source != ProjectionRegistry::Source::kStore)
      return Fail(g, Status::Conflict(fmt::format("{} is a {} projection; choose another name", name,
                                                  SourceName(e->source))));
    if (!replace)
      return Fail(g, Status::Conflict(
                         fmt::format("projection {} is already registered ({}); use --replace to change it", name,
                                     e->file)));
    replaced = true;
  }

  // Not while a replay or drop of this model runs: the replay would swap in
  // rows of the definition being replaced.
  Result<FileLock> lock = LockReadModel((*store)->dir(), name);
  if (!lock.ok()) return Fail(g, lock.status());
  // Write-then-rename so a crash never leaves a half-written registration.
  std::string dir = ProjectionsDir((*store)->dir());
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Fail(g, Status::IOError(fmt::format("cannot create {}: {}", dir, ec.message())));
  std::string dest = dir + "/" + name + ".sql";
  Result<AtomicFileWriter> out = AtomicFileWriter::Create(dest);
  if (!out.ok()) return Fail(g, out.status());
  if (std::fwrite(text->data(), 1, text->size(), out->file()) != text->size())
    return Fail(g, Status::IOError(fmt::format("cannot write {}: {}", dest, std::strerror(errno))));
  if (Status w = out->Commit(); !w.ok()) return Fail(g, w);

  if (g.json) {
    PrintJsonLine([&](JsonWriter& w) {
      w.StartObject();
      w.Key("name");
      w.String(name);
      w.Key("file");
      w.String(dest);
      w.Key("replaced");
      w.Bool(replaced);
      w.Key("types");
      w.StartArray();
      for (const auto& t : (*parsed)->filter().types) w.String(t);
      w.EndArray();
      w.EndObject();
    });
  } else if (!g.quiet) {
    std::printf("%s projection %s (%zu event types) as %s\n", replaced ? "replaced" : "added", name.c_str(),
                (*parsed)->filter().types.size(), dest.c_str());
    std::printf("build it with: rill project %s %s\n", replaced ? "replay" : "run", name.c_str());
  }
  return kExitOk;
}

// ---- run / replay ----------------------------------------------------------------

void PrintRunResult(const GlobalOptions& g, const std::string& name, const ProjectionProgress& p, uint64_t head,
                    double seconds) {
  uint64_t lag = head > p.position ? head - p.position : 0;
  if (g.json) {
    PrintJsonLine([&](JsonWriter& w) {
      w.StartObject();
      w.Key("name");
      w.String(name);
      w.Key("checkpoint");
      w.Uint64(p.position);
      w.Key("lag");
      w.Uint64(lag);
      w.Key("applied");
      w.Uint64(p.events_applied);
      w.Key("events");
      w.Uint64(p.position - p.start_position);
      w.Key("seconds");
      w.Double(seconds);
      w.EndObject();
    });
  } else if (!g.quiet) {
    uint64_t read = p.position - p.start_position;
    std::printf("%s: at position %llu (read %llu events, applied %llu, in %.2fs, %.0f events/s)\n", name.c_str(),
                static_cast<unsigned long long>(p.position), static_cast<unsigned long long>(read),
                static_cast<unsigned long long>(p.events_applied), seconds, seconds > 0 ? read / seconds : 0.0);
  }
}

// Runs or replays one projection, printing its result; returns its status.
Status RunOne(GlobalOptions& g, EventStore& store, const Projection& p, bool replay, bool follow) {
  const std::string& name = p.name();
  if (!replay) RILL_RETURN_IF_ERROR(CheckNotStale(store.dir(), p));  // before a progress bar shows
  uint64_t head = store.LastPosition();
  uint64_t start = 0;
  if (!replay) {
    auto st = ReadReadModelState(ReadModelPath(store.dir(), name));
    if (st.ok()) start = st->position;
  } else {
    auto st = ReadReadModelState(ReplayPath(store.dir(), name));
    if (st.ok() && st->exists && st->fingerprint == p.fingerprint()) start = st->position;
  }
  Progress progress(g, fmt::format("{} {}", replay ? "replay" : "project", name), head > start ? head - start : 0);
  ProjectionRunOptions o;
  o.follow = follow;
  if (replay) {
    o.max_batch_events = 1000000;
    o.max_batch_time = std::chrono::seconds(5);
  }
  o.should_stop = [] { return InterruptRequested(); };
  o.on_commit = [&](const ProjectionProgress& pr) {
    progress.Update(pr.position > pr.start_position ? pr.position - pr.start_position : 0);
  };
  ProjectionProgress pr;
  auto t0 = std::chrono::steady_clock::now();
  Status s = replay ? ReplayProjection(store, p, o, &pr) : RunProjection(store, p, o, &pr);
  progress.Finish();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!s.ok()) {
    if (s.code() == Code::kInterrupted)
      return Status::Interrupted(fmt::format("{}; run the same command again to resume", s.message()));
    return s;
  }
  PrintRunResult(g, name, pr, store.LastPosition(), secs);
  return Status::OK();
}

int RunOrReplay(GlobalOptions& g, const std::string& name, bool replay, bool follow) {
  Opened opened;
  if (int exit = OpenWithProjections(g, &opened); exit != kExitOk) return exit;
  auto* store = &opened.store;
  ProjectionRegistry& reg = opened.reg;
  auto found = FindProjection(reg, name);
  if (!found.ok()) return Fail(g, found.status());
  Status s = RunOne(g, **store, *(*found)->projection, replay, follow);
  return s.ok() ? kExitOk : Fail(g, s);
}

// project replay --all: replays every stale read model, one after another,
// stopping at the first failure (what was replayed before it stays swapped in).
int RunReplayStale(GlobalOptions& g) {
  Opened opened;
  if (int exit = OpenWithProjections(g, &opened); exit != kExitOk) return exit;
  auto* store = &opened.store;
  ProjectionRegistry& reg = opened.reg;
  std::vector<const Projection*> stale;
  for (const auto& e : reg.entries()) {
    Result<ReadModelState> st = ReadReadModelState(ReadModelPath((*store)->dir(), e.projection->name()));
    if (!st.ok()) return Fail(g, st.status().WithContext(fmt::format("read model {}", e.projection->name())));
    if (IsStale(*st, *e.projection)) stale.push_back(e.projection.get());
  }
  if (stale.empty() && !g.json && !g.quiet) std::printf("no read model is stale\n");
  for (const Projection* p : stale) {
    Status s = RunOne(g, **store, *p, /*replay=*/true, /*follow=*/false);
    if (!s.ok()) return Fail(g, s);
  }
  return kExitOk;
}

// ---- drop ------------------------------------------------------------------------

int RunDrop(GlobalOptions& g, const std::string& name) {
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(g, store.status());
  Status s = ValidateProjectionName(name);
  if (!s.ok()) return Fail(g, s);
  ProjectionRegistry reg;
  s = LoadProjections((*store)->dir(), &reg);
  if (!s.ok()) return Fail(g, s);
  const ProjectionRegistry::Entry* e = reg.Find(name);
  std::string path = ReadModelPath((*store)->dir(), name);
  std::error_code ec;
  bool had_model = std::filesystem::exists(path, ec) || std::filesystem::exists(ReplayPath((*store)->dir(), name), ec);
  if (e == nullptr && !had_model) return Fail(g, Status::NotFound(fmt::format("no projection named {}", name)));
  s = DropReadModel((*store)->dir(), name);
  if (!s.ok()) return Fail(g, s);
  bool unregistered = false;
  if (e != nullptr && e->source == ProjectionRegistry::Source::kStore) {
    if (!std::filesystem::remove(e->file, ec) && ec)
      return Fail(g, Status::IOError(fmt::format("cannot remove {}: {}", e->file, ec.message())));
    unregistered = true;
  }
  if (g.json) {
    PrintJsonLine([&](JsonWriter& w) {
      w.StartObject();
      w.Key("name");
      w.String(name);
      w.Key("dropped");
      w.Bool(had_model);
      w.Key("unregistered");
      w.Bool(unregistered);
      w.EndObject();
    });
  } else if (!g.quiet) {
    std::printf("dropped %s%s%s\n", name.c_str(), had_model ? " (read model deleted)" : "",
                unregistered ? " (unregistered)" : "");
  }
  return kExitOk;
}

void SetupProject(CLI::App& root, GlobalOptions& g) {
  CLI::App* project = root.add_subcommand("project", "SQLite read models kept by projections");
  project->require_subcommand(1);

  CLI::App* list = project->add_subcommand("list", "Projections with kind, checkpoint, lag and last error");
  list->callback([&g] { g.exit_code = RunList(g); });

  auto status_name = std::make_shared<std::string>();
  CLI::App* status = project->add_subcommand("status", "One projection in detail");
  status->add_option("name", *status_name, "Projection name")->required();
  status->callback([status_name, &g] { g.exit_code = RunStatus(g, *status_name); });

  auto add_file = std::make_shared<std::string>();
  auto add_replace = std::make_shared<bool>(false);
  CLI::App* add = project->add_subcommand("add", "Register an SQL projection file in the store directory");
  add->add_option("file", *add_file, "The .sql file ('-' reads stdin)")->required();
  add->add_flag("--replace", *add_replace, "Replace a registered projection of the same name");
  add->callback([add_file, add_replace, &g] { g.exit_code = RunAdd(g, *add_file, *add_replace); });

  auto run_name = std::make_shared<std::string>();
  auto run_follow = std::make_shared<bool>(false);
  CLI::App* run = project->add_subcommand("run", "Catch a read model up (and keep it up with --follow)");
  run->add_option("name", *run_name, "Projection name")->required();
  run->add_flag("--follow,-f", *run_follow, "Keep applying new events until SIGINT/SIGTERM");
  run->callback([run_name, run_follow, &g] { g.exit_code = RunOrReplay(g, *run_name, false, *run_follow); });

  auto replay_name = std::make_shared<std::string>();
  auto replay_all = std::make_shared<bool>(false);
  CLI::App* replay = project->add_subcommand("replay", "Rebuild a read model from position 1, then swap it in");
  CLI::Option* replay_name_opt = replay->add_option("name", *replay_name, "Projection name");
  CLI::Option* replay_all_opt =
      replay->add_flag("--all", *replay_all, "Replay every stale read model (built by another definition)");
  replay_name_opt->excludes(replay_all_opt);
  replay->callback([replay_name, replay_all, &g] {
    if (*replay_all) {
      g.exit_code = RunReplayStale(g);
    } else if (replay_name->empty()) {
      g.exit_code = Fail(g, kExitUsage, "project replay needs a projection NAME or --all");
    } else {
      g.exit_code = RunOrReplay(g, *replay_name, true, false);
    }
  });

  auto drop_name = std::make_shared<std::string>();
  CLI::App* drop = project->add_subcommand("drop", "Delete a read model; unregister it if it was added");
  drop->add_option("name", *drop_name, "Projection name")->required();
  drop->callback([drop_name, &g] { g.exit_code = RunDrop(g, *drop_name); });
}

}  // namespace

RILL_COMMANDS("project", SetupProject);

}  // namespace rill::cli
