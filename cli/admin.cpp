// rill init / stats / check / backup: operating a store as a whole.
#include <fmt/format.h>

#include <algorithm>

#include <map>

#include "cli/cli.h"
#include "cli/json_input.h"
#include "core/activation.h"
#include "core/store_config.h"

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

// One row of the per-category breakdown.
struct CategoryStats {
  std::string name;
  uint64_t streams = 0, events = 0, bytes = 0;
  uint64_t last_position = 0;  // of its newest event
  int64_t last_write_us = 0;   // that event's time
  uint64_t sampled_events = 0, sampled_bytes = 0;
};

// Bytes (data + meta as stored) are counted exactly up to this many events;
// above, each category's bytes are estimated from the newest this-many events.
constexpr uint64_t kBytesSampleEvents = 200000;
// The sparkline reads $all backward from the head until the window starts,
// but never more than this many events.
constexpr uint64_t kRateMaxEvents = 1000000;
constexpr size_t kRateBuckets = 20;
constexpr int64_t kRateBucketUs = 30 * 1000000LL;  // 20 x 30 s = the last 10 minutes
constexpr size_t kReadChunk = 4096;

struct Activity {
  int64_t end_us = 0;
  std::vector<uint64_t> counts;  // events per bucket, oldest first
  bool capped = false;           // kRateMaxEvents reached before the window's start
};

Status Breakdown(EventStore& store, uint64_t last, std::vector<CategoryStats>* out, bool* estimated) {
  std::vector<StreamInfo> streams;
  RILL_RETURN_IF_ERROR(store.ListStreams("", &streams));
  std::map<std::string, CategoryStats, std::less<>> by_name;
  for (const StreamInfo& info : streams) {
    std::string_view name = CategoryOf(info.name);
    auto it = by_name.find(name);
    if (it == by_name.end()) it = by_name.emplace(std::string(name), CategoryStats{std::string(name)}).first;
    it->second.streams++;
    it->second.events += info.head_version;
    it->second.last_position = std::max(it->second.last_position, info.head_position);
  }
  // Bytes: every event when the log is small, else the newest ones.
  uint64_t from = last > kBytesSampleEvents ? last - kBytesSampleEvents + 1 : 1;
  *estimated = from > 1;
  std::vector<Event> chunk;
  for (uint64_t pos = from; pos <= last && pos > 0;) {
    chunk.clear();
    RILL_RETURN_IF_ERROR(store.ReadAll(pos, kReadChunk, &chunk, /*raw=*/true));
    if (chunk.empty()) break;
    for (const Event& e : chunk) {
      auto it = by_name.find(CategoryOf(e.stream));
      if (it == by_name.end()) continue;  // system streams
      it->second.sampled_events++;
      it->second.sampled_bytes += e.data.size() + e.meta.size();
    }
    pos = chunk.back().position + 1;
  }
  uint64_t all_events = 0, all_bytes = 0;
  for (auto& [name, c] : by_name) {
    all_events += c.sampled_events;
    all_bytes += c.sampled_bytes;
  }
  for (auto& [name, c] : by_name) {
    if (!*estimated) {
      c.bytes = c.sampled_bytes;
    } else if (c.sampled_events > 0) {
      c.bytes = static_cast<uint64_t>(static_cast<double>(c.sampled_bytes) / c.sampled_events * c.events);
    } else if (all_events > 0) {
      c.bytes = static_cast<uint64_t>(static_cast<double>(all_bytes) / all_events * c.events);
    }
    chunk.clear();
    if (c.last_position > 0) {
      RILL_RETURN_IF_ERROR(store.ReadAll(c.last_position, 1, &chunk, /*raw=*/true));
      if (!chunk.empty()) c.last_write_us = chunk.front().time_us;
    }
    out->push_back(std::move(c));
  }
  return Status::OK();
}

// Events per bucket of the last 10 minutes, read backward from the head in
// chunks: the cost is bounded by the events in the window (and a cap), not
// by the size of the log.
Status RecentActivity(EventStore& store, uint64_t last, Activity* a) {
  a->end_us = DisplayNowMicros();
  int64_t start = a->end_us - static_cast<int64_t>(kRateBuckets) * kRateBucketUs;
  std::vector<int64_t> times;
  std::vector<Event> chunk;
  for (uint64_t pos = last; pos > 0;) {
    if (times.size() >= kRateMaxEvents) {
      a->capped = true;
      break;
    }
    uint64_t from = pos > kReadChunk ? pos - kReadChunk + 1 : 1;
    chunk.clear();
    RILL_RETURN_IF_ERROR(store.ReadAll(from, pos - from + 1, &chunk, /*raw=*/true));
    bool older = false;
    for (const Event& e : chunk) {
      if (e.stream.starts_with('$')) continue;
      times.push_back(e.time_us);
      older = older || e.time_us < start;
    }
    // Times follow positions (the writer stamps them in order); a chunk that
    // reaches before the window ends the walk.
    if (older) break;
    pos = from - 1;
  }
  a->counts = BucketCounts(times, a->end_us, kRateBuckets, kRateBucketUs);
  return Status::OK();
}

int RunStats(GlobalOptions& g) {
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(g, store.status());
  StoreStats st = (*store)->Stats();
  uint64_t last = (*store)->LastPosition();
  std::vector<CategoryStats> categories;
  bool bytes_estimated = false;
  Activity activity;
  Status s = Breakdown(**store, last, &categories, &bytes_estimated);
  if (s.ok()) s = RecentActivity(**store, last, &activity);
  if (!s.ok()) return Fail(g, s);
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
      w.Key("categories");
      w.StartArray();
      for (const CategoryStats& c : categories) {
        w.StartObject();
        w.Key("category");
        w.String(c.name);
        w.Key("streams");
        w.Uint64(c.streams);
        w.Key("events");
        w.Uint64(c.events);
        w.Key("bytes");
        w.Uint64(c.bytes);
        w.Key("last_write");
        if (c.last_write_us) w.String(FormatTime(c.last_write_us));
        else w.Null();
        w.EndObject();
      }
      w.EndArray();
      w.Key("bytes_estimated");
      w.Bool(bytes_estimated);
      w.Key("activity");
      w.StartObject();
      w.Key("end");
      w.String(FormatTime(activity.end_us));
      w.Key("bucket_seconds");
      w.Uint64(kRateBucketUs / 1000000);
      w.Key("buckets");
      w.StartArray();
      for (uint64_t n : activity.counts) w.Uint64(n);
      w.EndArray();
      w.Key("capped");
      w.Bool(activity.capped);
      w.EndObject();
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
  uint64_t recent = 0, peak = 0;
  for (uint64_t n : activity.counts) {
    recent += n;
    peak = std::max(peak, n);
  }
  row("last 10 min", fmt::format("{} {} event{}, peak {:.1f}/s{}", Sparkline(activity.counts), recent,
                                 recent == 1 ? "" : "s", static_cast<double>(peak) / (kRateBucketUs / 1000000),
                                 activity.capped ? " (capped: more events than shown)" : ""));
  if (categories.empty()) return kExitOk;
  std::printf("\n");
  Table t({"CATEGORY", "STREAMS", "EVENTS", bytes_estimated ? "BYTES (EST.)" : "BYTES", "LAST WRITE"},
          {false, true, true, true, false});
  for (const CategoryStats& c : categories)
    t.Add({c.name, std::to_string(c.streams), std::to_string(c.events), Bytes(c.bytes),
           c.last_write_us ? DisplayTime(c.last_write_us) : "-"});
  std::fflush(stdout);
  t.Print();
  return kExitOk;
}

// ---- check -----------------------------------------------------------------

struct CheckArgs {
  bool repair = false;
  bool domains = false;
};

// --domains: every stream a registered aggregate owns, activated as the
// actor runtime would; the ones that cannot be are listed.
int RunCheckDomains(GlobalOptions& g) {
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(g, store.status());
  uint64_t checked = 0, broken = 0;
  Table table({"STREAM", "VERSION", "REASON"}, {false, true, false});
  for (const AggregateType* type : Domains().aggregates()) {
    std::vector<StreamInfo> streams;
    if (Status s = (*store)->ListStreams(type->name(), &streams); !s.ok()) return Fail(g, s);
    for (const StreamInfo& info : streams) {
      if (info.deleted || Domains().ForStream(info.name) != type) continue;
      ++checked;
      ActivatedState loaded;
      Status s = ActivateState(**store, *type, info.name, &loaded);
      if (s.ok()) continue;
      if (s.code() != Code::kInvalidArgument) return Fail(g, s);
      ++broken;
      if (g.json) {
        PrintJsonLine([&](JsonWriter& w) {
          w.StartObject();
          w.Key("stream");
          w.String(info.name);
          w.Key("version");
          w.Uint64(loaded.failed_version);
          w.Key("reason");
          w.String(s.message());
          w.EndObject();
        });
      } else {
        table.Add({info.name, std::to_string(loaded.failed_version), s.message()});
      }
    }
  }
  if (!g.json && table.size() > 0) table.Print();
  if (!g.quiet && !g.json)
    std::printf("%s: %llu aggregate streams checked, %llu cannot be activated\n", broken ? "BROKEN" : "clean",
                static_cast<unsigned long long>(checked), static_cast<unsigned long long>(broken));
  return broken ? kExitError : kExitOk;
}

int RunCheck(GlobalOptions& g, const CheckArgs& a) {
  if (a.domains) return RunCheckDomains(g);
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(g, store.status());
  CheckReport report;
  Status s;
  {
    Progress progress(g, "check");
    s = (*store)->Check(&report, a.repair, [&](uint64_t done, uint64_t) { progress.Update(done); });
  }
  // A repair rebuilds what it can (the index); a second pass says what
  // remains: a problem gone from it was repaired, one still there was not
  // (the log is the only copy of the data).
  std::vector<std::string> repaired;
  if (s.ok() && a.repair && !report.problems.empty()) {
    CheckReport again;
    s = (*store)->Check(&again, false);
    for (const auto& p : report.problems)
      if (std::find(again.problems.begin(), again.problems.end(), p) == again.problems.end()) repaired.push_back(p);
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
        w.Key("not_repaired");
        w.StartArray();
        for (const auto& p : report.problems) w.String(p);
        w.EndArray();
        w.Key("index_rebuilt");
        w.Bool(report.index_rebuilt);
      }
      w.EndObject();
    });
  } else {
    for (const auto& p : repaired) std::printf("repaired: %s\n", p.c_str());
    if (report.index_rebuilt) std::printf("index rebuilt from the log\n");
    for (const auto& p : report.problems) std::printf("%s: %s\n", a.repair ? "not repaired" : "problem", p.c_str());
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
                 a.repair ? "; --repair rebuilds only the index: restore the log from a backup"
                          : "; 'rill check --repair' rebuilds the index");
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
  BackupOptions o;
  o.also_copy = StoreRelativeFiles((*store)->dir());
  o.should_stop = [] { return InterruptRequested(); };
  Progress progress(g, "backup (MiB)");
  o.progress = [&](uint64_t bytes) { progress.Update(bytes >> 20); };
  Status s = (*store)->Backup(a.dest, o);
  progress.Finish();
  if (s.code() == Code::kInterrupted)
    return Fail(g, Status::Interrupted(fmt::format("backup to {} stopped by a signal; nothing was left there", a.dest)));
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
  check->add_flag("--domains", ca->domains,
                  "Instead: activate every aggregate stream; list those that cannot be (exit 1 if any)");
  check->callback([ca, &g] { g.exit_code = RunCheck(g, *ca); });

  auto ba = std::make_shared<BackupArgs>();
  CLI::App* backup = root.add_subcommand("backup", "Consistent, compacted copy of the store, while writers run");
  backup->add_option("dest", ba->dest, "Destination directory (must not exist, or be empty)")->required();
  backup->callback([ba, &g] { g.exit_code = RunBackup(g, *ba); });
}

}  // namespace

RILL_COMMANDS("init", SetupInit);
RILL_COMMANDS("admin", SetupAdmin);

}  // namespace rill::cli
