// rill upcast [--dry-run | --apply] [--migrations DIR] [--no-backup] [--backup DIR] [--batch N]
// Shows (dry run, the default) or performs (--apply) the in-place migration of
// stored events to their current schema. See core/upcast_apply.h for why it
// is safe to interrupt and to rerun.
#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <memory>

#include "cli/cli.h"
#include "core/upcast_apply.h"
#include "core/migration_check.h"
#include "core/upcaster.h"

namespace rill::cli {
namespace {

struct UpcastOptions {
  bool dry_run = false;
  bool apply = false;
  std::string migrations_dir;
  bool no_backup = false;
  std::string backup_dir;
  size_t batch = 10000;
};

// "<db>.pre-upcast-20261123T101400Z", beside the store.
std::string DefaultBackupDir(std::string db) {
  while (db.size() > 1 && db.back() == '/') db.pop_back();
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  return db + ".pre-upcast-" + stamp;
}

std::string Shape(const std::string& type, uint32_t schema) { return fmt::format("{} v{}", type, schema); }

void PrintGroupJson(const UpcastGroup& g, bool with_sample) {
  PrintJsonLine([&](JsonWriter& w) {
    w.StartObject();
    w.Key("type");
    w.String(g.type);
    w.Key("schema");
    w.Uint(g.schema);
    w.Key("to_type");
    w.String(g.to_type);
    w.Key("to_schema");
    w.Uint(g.to_schema);
    w.Key("events");
    w.Uint64(g.events);
    w.Key("split_on_read");
    w.Bool(g.split_on_read);
    if (with_sample) {
      w.Key("sample");
      w.StartObject();
      w.Key("position");
      w.Uint64(g.sample_before.position);
      w.Key("stream");
      w.String(g.sample_before.stream);
      w.Key("version");
      w.Uint64(g.sample_before.version);
      w.Key("before");
      w.RawValue(g.sample_before.data.data(), g.sample_before.data.size(), rapidjson::kObjectType);
      w.Key("after");
      w.RawValue(g.sample_after.data.data(), g.sample_after.data.size(), rapidjson::kObjectType);
      w.EndObject();
    }
    w.EndObject();
  });
}

int RunDryRun(const GlobalOptions& g, EventStore& store, const Upcaster& upcaster, const UpcastOptions& o) {
  UpcastScan scan;
  UpcastRunOptions run;
  run.batch_events = o.batch;
  Progress progress(g, "scanning", store.LastPosition());
  run.progress = [&](uint64_t done, uint64_t) { progress.Update(done); };
  run.should_stop = [] { return InterruptRequested(); };
  Status s = ScanUpcast(store, upcaster, run, &scan);
  progress.Finish();
  if (!s.ok()) return Fail(g, s);
  if (g.json) {
    for (const auto& grp : scan.groups) PrintGroupJson(grp, true);
    PrintJsonLine([&](JsonWriter& w) {
      w.StartObject();
      w.Key("dry_run");
      w.Bool(true);
      w.Key("scanned");
      w.Uint64(scan.scanned);
      w.Key("to_change");
      w.Uint64(scan.to_change);
      w.EndObject();
    });
    return kExitOk;
  }
  if (g.quiet) return kExitOk;
  if (scan.groups.empty()) {
    std::printf("all %llu events are at their current schema; nothing to do\n",
                static_cast<unsigned long long>(scan.scanned));
    return kExitOk;
  }
  Table t({"TYPE", "SCHEMA", "BECOMES", "EVENTS"}, {false, true, false, true});
  for (const auto& grp : scan.groups)
    t.Add({grp.type, std::to_string(grp.schema),
           grp.split_on_read ? "(split/merge on read only)" : Shape(grp.to_type, grp.to_schema), std::to_string(grp.events)});
  t.Print();
  std::printf("%llu of %llu events would change (dry run: nothing written; 'rill upcast --apply' does it)\n",
              static_cast<unsigned long long>(scan.to_change), static_cast<unsigned long long>(scan.scanned));
  for (const auto& grp : scan.groups) {
    if (grp.split_on_read) continue;
    std::printf("\n%s -> %s, e.g. position %llu (%s version %llu):\n- %s\n+ %s\n",
                Shape(grp.type, grp.schema).c_str(), Shape(grp.to_type, grp.to_schema).c_str(),
                static_cast<unsigned long long>(grp.sample_before.position), grp.sample_before.stream.c_str(),
                static_cast<unsigned long long>(grp.sample_before.version), grp.sample_before.data.c_str(),
                grp.sample_after.data.c_str());
  }
  return kExitOk;
}

int RunApply(const GlobalOptions& g, EventStore& store, const Upcaster& upcaster, const UpcastOptions& o) {
  std::string backup;
  UpcastRunOptions run;
  run.batch_events = o.batch;
  Progress progress(g, "upcasting", store.LastPosition());
  run.progress = [&](uint64_t done, uint64_t) { progress.Update(done); };
  run.should_stop = [] { return InterruptRequested(); };
  if (!o.no_backup) {
    // Only when something will change, so a rerun with nothing left to do
    // leaves no clutter.
    run.before_first_rewrite = [&]() -> Status {
      backup = o.backup_dir.empty() ? DefaultBackupDir(g.ResolvedDb()) : o.backup_dir;
      Status s = store.Backup(backup);
      return s.WithContext("backup before upcast (use --no-backup to skip)");
    };
  }
  auto start = std::chrono::steady_clock::now();
  UpcastApplyReport report;
  Status s = ApplyUpcast(store, upcaster, run, &report);
  progress.Finish();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!s.ok() && s.code() != Code::kInterrupted) return Fail(g, s);
  if (g.json) {
    PrintJsonLine([&](JsonWriter& w) {
      w.StartObject();
      w.Key("applied");
      w.Bool(s.ok());
      w.Key("scanned");
      w.Uint64(report.scanned);
      w.Key("rewritten");
      w.Uint64(report.rewritten);
      w.Key("batches");
      w.Uint64(report.batches);
      w.Key("seconds");
      w.Double(secs);
      if (!backup.empty()) {
        w.Key("backup");
        w.String(backup);
      }
      w.EndObject();
    });
  } else if (!g.quiet) {
    std::printf("rewrote %llu of %llu events in %.2f s%s\n", static_cast<unsigned long long>(report.rewritten),
                static_cast<unsigned long long>(report.scanned), secs,
                backup.empty() ? "" : fmt::format("; backup of the store before: {}", backup).c_str());
  }
  if (!s.ok())
    return Fail(g, Status::Interrupted(fmt::format(
                       "upcast stopped after rewriting {} events; every batch is whole, rerun 'rill upcast --apply' to finish",
                       report.rewritten)));
  return kExitOk;
}

int Run(const GlobalOptions& g, const UpcastOptions& o) {
  if (o.dry_run && o.apply) return Fail(g, kExitUsage, "usage: --dry-run and --apply exclude each other");
  if (o.batch == 0) return Fail(g, kExitUsage, "usage: --batch must be at least 1");
  auto upcaster = LoadUpcasters(g.ResolvedDb(), o.migrations_dir);
  if (!upcaster.ok()) return Fail(g, upcaster.status());
  // Rewriting through a step the domains cannot read is refused as an open is.
  if (Status c = CheckMigrationsAgainstDomains(**upcaster, Domains()); !c.ok()) return Fail(g, c);
  // Raw reads only: this command compares stored and upcast forms itself.
  StoreOptions options;
  options.read_transform = [](Event&) { return Status::OK(); };
  auto store = OpenStore(g, options);
  if (!store.ok()) return Fail(g, store.status());
  return o.apply ? RunApply(g, **store, **upcaster, o) : RunDryRun(g, **store, **upcaster, o);
}

void Setup(CLI::App& root, GlobalOptions& g) {
  auto o = std::make_shared<UpcastOptions>();
  CLI::App* cmd = root.add_subcommand("upcast", "Show (--dry-run, the default) or apply the migration of stored events to their current schema");
  cmd->add_flag("--dry-run", o->dry_run, "Per event type, how many events would change and a sample diff (default)");
  cmd->add_flag("--apply", o->apply, "Rewrite stored events in place, in batches, after a backup");
  cmd->add_option("--migrations", o->migrations_dir, "Extra directory of migration files (besides shipped and <db>/migrations)");
  cmd->add_flag("--no-backup", o->no_backup, "With --apply: do not back the store up first");
  cmd->add_option("--backup", o->backup_dir, "With --apply: backup directory (default <db>.pre-upcast-<UTC time>)");
  cmd->add_option("--batch", o->batch, "Events per read and per rewrite transaction")->capture_default_str();
  cmd->callback([&g, o] { g.exit_code = Run(g, *o); });
}

}  // namespace

RILL_COMMANDS("upcast", Setup);

}  // namespace rill::cli
