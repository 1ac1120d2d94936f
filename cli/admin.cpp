// rill init / stats / check / backup: operating a store as a whole.
#include <fmt/format.h>

#include "cli/cli.h"
#include "cli/json_input.h"

namespace rill::cli {
namespace {

// ---- init ------------------------------------------------------------------

int RunInit(GlobalOptions& g) {
  std::string dir = g.ResolvedDb();
  // Refusing keeps `init` from ever looking like it reset a store. Exit 1
  // (error), documented in rill-init(1).
  if (EventStore::Exists(dir)) return Fail(g, kExitError, fmt::format("a rill store already exists at {}", dir));
  Status s = EventStore::Init(dir);
  if (!s.ok()) return Fail(g, s.WithContext(fmt::format("cannot create a store at {}", dir)));
  if (g.json) {
    PrintJsonLine([&](JsonWriter& w) {
      w.StartObject();
      w.Key("created");
      w.String(dir);
      w.EndObject();
    });
  } else if (!g.quiet) {
    std::printf("created a rill store at %s\n", dir.c_str());
  }
  return kExitOk;
}

// ---- stats -----------------------------------------------------------------

std::string Bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", n) : fmt::format("{:.1f} {}", v, units[u]);
}

std::string MapUse(uint64_t used, uint64_t map) {
  double pct = map ? 100.0 * static_cast<double>(used) / static_cast<double>(map) : 0;
  return fmt::format("{} of {} map ({:.1f}%)", Bytes(used), Bytes(map), pct);
}

int RunStats(GlobalOptions& g) {
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(g, store.status());
  StoreStats st = (*store)->Stats();
  uint64_t last = (*store)->LastPosition();
  if (g.json) {
    PrintJsonLine([&](JsonWriter& w) {
      w.StartObject();
      w.Key("store_id");
      w.String(st.store_id);
      w.Key("format_version");
      w.Uint(st.format_version);
      w.Key("events");
      w.Uint64(st.events);
      w.Key("streams");
      w.Uint64(st.streams);
      w.Key("last_position");
      w.Uint64(last);
      w.Key("indexed_position");
      w.Uint64(st.indexed_position);
      w.Key("log_file_bytes");
      w.Uint64(st.log_file_bytes);
      w.Key("log_used_bytes");
      w.Uint64(st.log_used_bytes);
      w.Key("log_map_bytes");
      w.Uint64(st.log_map_bytes);
      w.Key("index_file_bytes");
      w.Uint64(st.index_file_bytes);
      w.Key("index_used_bytes");
      w.Uint64(st.index_used_bytes);
      w.Key("index_map_bytes");
      w.Uint64(st.index_map_bytes);
      w.Key("map_growths");
      w.Uint64(st.map_growths);
      w.EndObject();
    });
    return kExitOk;
  }
  if (g.quiet) return kExitOk;
  // Two columns of label and value; a header row would say nothing.
  auto row = [](const char* label, const std::string& value) { fmt::print("{:<16} {}\n", label, value); };
  row("store", (*store)->dir());
  row("store id", st.store_id);
  row("format version", std::to_string(st.format_version));
  row("events", std::to_string(st.events));
  row("streams", std::to_string(st.streams));
  row("last position", std::to_string(last));
  row("indexed through", std::to_string(st.indexed_position));
  row("log file", fmt::format("{}, {}", Bytes(st.log_file_bytes), MapUse(st.log_used_bytes, st.log_map_bytes)));
  row("index file", fmt::format("{}, {}", Bytes(st.index_file_bytes), MapUse(st.index_used_bytes, st.index_map_bytes)));
  row("map growths", std::to_string(st.map_growths));
  return kExitOk;
}

// ---- check -----------------------------------------------------------------

struct CheckArgs {
  bool repair = false;
};

int RunCheck(GlobalOptions& g, const CheckArgs& a) {
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(g, store.status());
  CheckReport report;
  Status s;
  {
    Progress progress(g, "check");
    s = (*store)->Check(&report, a.repair, [&](uint64_t done, uint64_t) { progress.Update(done); });
  }
  // A repair rebuilds what it can; a second pass says whether damage remains.
  std::vector<std::string> repaired;
  if (s.ok() && a.repair && !report.problems.empty()) {
    repaired = report.problems;
    CheckReport again;
    s = (*store)->Check(&again, false);
    again.index_rebuilt = report.index_rebuilt;
    report = again;
  }
  if (!s.ok() && report.problems.empty()) return Fail(g, s);
  if (!s.ok()) report.problems.push_back(s.ToString());
  bool clean = report.problems.empty();
  if (g.json) {
    PrintJsonLine([&](JsonWriter& w) {
      w.StartObject();
      w.Key("clean");
      w.Bool(clean);
      w.Key("events_checked");
      w.Uint64(report.events_checked);
      w.Key("streams_checked");
      w.Uint64(report.streams_checked);
      w.Key("problems");
      w.StartArray();
      for (const auto& p : report.problems) w.String(p);
      w.EndArray();
      if (a.repair) {
        w.Key("repaired");
        w.StartArray();
        for (const auto& p : repaired) w.String(p);
        w.EndArray();
        w.Key("index_rebuilt");
        w.Bool(report.index_rebuilt);
      }
      w.EndObject();
    });
  } else {
    for (const auto& p : repaired) std::printf("repaired: %s\n", p.c_str());
    if (report.index_rebuilt) std::printf("index rebuilt from the log\n");
    for (const auto& p : report.problems) std::printf("problem: %s\n", p.c_str());
    if (!g.quiet || !clean)
      std::printf("%s: %llu events in %llu streams checked%s\n", clean ? "clean" : "DAMAGED",
                  static_cast<unsigned long long>(report.events_checked),
                  static_cast<unsigned long long>(report.streams_checked),
                  clean ? "" : fmt::format(", {} problem{}", report.problems.size(),
                                           report.problems.size() == 1 ? "" : "s").c_str());
  }
  if (!clean) {
    std::fprintf(stderr, "rill: corruption: the store at %s is damaged (%zu problem%s)%s\n", (*store)->dir().c_str(),
                 report.problems.size(), report.problems.size() == 1 ? "" : "s",
                 a.repair ? "" : "; 'rill check --repair' rebuilds the index");
    return kExitError;
  }
  return kExitOk;
}

// ---- backup ----------------------------------------------------------------

struct BackupArgs {
  std::string dest;
};

int RunBackup(GlobalOptions& g, const BackupArgs& a) {
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(g, store.status());
  uint64_t last = (*store)->LastPosition();
  Status s = (*store)->Backup(a.dest);
  if (!s.ok()) return Fail(g, s.WithContext(fmt::format("backup to {}", a.dest)));
  if (g.json) {
    PrintJsonLine([&](JsonWriter& w) {
      w.StartObject();
      w.Key("backup");
      w.String(a.dest);
      w.Key("position");
      w.Uint64(last);
      w.EndObject();
    });
  } else if (!g.quiet) {
    std::printf("backed up %s to %s (through position %llu at least)\n", (*store)->dir().c_str(), a.dest.c_str(),
                static_cast<unsigned long long>(last));
  }
  return kExitOk;
}

void SetupInit(CLI::App& root, GlobalOptions& g) {
  CLI::App* init = root.add_subcommand("init", "Create an empty store (refuses if one exists)");
  init->callback([&g] { g.exit_code = RunInit(g); });
}

void SetupAdmin(CLI::App& root, GlobalOptions& g) {
  CLI::App* stats = root.add_subcommand("stats", "Counts, sizes, map use and positions of the store");
  stats->callback([&g] { g.exit_code = RunStats(g); });

  auto ca = std::make_shared<CheckArgs>();
  CLI::App* check = root.add_subcommand("check", "Verify CRCs, gaps and index agreement (exit 1 on damage)");
  check->add_flag("--repair", ca->repair, "Rebuild the index from the log when it disagrees");
  check->callback([ca, &g] { g.exit_code = RunCheck(g, *ca); });

  auto ba = std::make_shared<BackupArgs>();
  CLI::App* backup = root.add_subcommand("backup", "Consistent, compacted copy of the store, while writers run");
  backup->add_option("dest", ba->dest, "Destination directory (must not exist, or be empty)")->required();
  backup->callback([ba, &g] { g.exit_code = RunBackup(g, *ba); });
}

}  // namespace

RILL_COMMANDS(10, SetupInit);
RILL_COMMANDS(80, SetupAdmin);

}  // namespace rill::cli
