// rill migrations list [--migrations DIR]
// Each upcaster step (shipped files, C++ upcasters, <db>/migrations, DIR) and
// how many stored events still have to go through it; per type, the schema
// the domain writes and the current schema (what reads see).
#include <fmt/format.h>

#include <map>
#include <memory>

#include "cli/cli.h"
#include "core/upcast_apply.h"
#include "core/upcaster.h"

namespace rill::cli {
namespace {

struct MigrationsOptions {
  std::string migrations_dir;
};

int RunList(const GlobalOptions& g, const MigrationsOptions& o) {
  auto upcaster = LoadUpcasters(g.ResolvedDb(), o.migrations_dir);
  if (!upcaster.ok()) return Fail(g, upcaster.status());
  StoreOptions options;
  options.read_transform = [](Event&) { return Status::OK(); };
  auto store = OpenStore(g, options);
  if (!store.ok()) return Fail(g, store.status());
  UpcastScan scan;
  UpcastRunOptions run;
  Progress progress(g, "scanning", (*store)->LastPosition());
  run.progress = [&](uint64_t done, uint64_t) { progress.Update(done); };
  run.should_stop = [] { return InterruptRequested(); };
  Status s = ScanUpcast(**store, **upcaster, run, &scan);
  progress.Finish();
  if (!s.ok()) return Fail(g, s);
  auto migrations = (*upcaster)->Migrations();
  // The schema the registered domains write each type at; 0: no domain does.
  std::map<std::string, uint32_t> writes = Domains().EventSchemas();
  auto writes_of = [&](const std::string& type) -> uint32_t {
    auto it = writes.find(type);
    return it == writes.end() ? 0 : it->second;
  };
  if (g.json) {
    for (size_t i = 0; i < migrations.size(); ++i) {
      const auto& m = migrations[i];
      PrintJsonLine([&](JsonWriter& w) {
        w.StartObject();
        w.Key("event");
        w.String(m.event);
        w.Key("from");
        w.Uint(m.from);
        w.Key("to");
        w.Uint(m.to);
        w.Key("retype");
        w.String(m.retype);
        w.Key("source");
        w.String(m.source);
        w.Key("splits");
        w.Bool(m.splits);
        w.Key("merge_into");
        w.String(m.merge_into);
        w.Key("pending");
        w.Uint64(scan.pending[i]);
        w.Key("domain_schema");
        if (uint32_t d = writes_of(m.event)) w.Uint(d);
        else w.Null();
        w.Key("current_schema");
        w.Uint((*upcaster)->CurrentSchema(m.event));
        w.EndObject();
      });
    }
    return kExitOk;
  }
  if (g.quiet) return kExitOk;
  if (migrations.empty()) {
    std::printf("no migrations\n");
    return kExitOk;
  }
  Table t({"EVENT", "FROM", "TO", "BECOMES", "WRITES", "CURRENT", "PENDING", "SOURCE"},
          {false, true, true, false, true, true, true, false});
  for (size_t i = 0; i < migrations.size(); ++i) {
    const auto& m = migrations[i];
    std::string becomes = m.splits                 ? "(splits on read)"
                          : !m.merge_into.empty() ? "(merges into " + m.merge_into + " on read)"
                                                  : m.retype;
    uint32_t d = writes_of(m.event);
    t.Add({m.event, std::to_string(m.from), std::to_string(m.to), becomes, d ? std::to_string(d) : "-",
           std::to_string((*upcaster)->CurrentSchema(m.event)), std::to_string(scan.pending[i]), m.source});
  }
  t.Print();
  return kExitOk;
}

void Setup(CLI::App& root, GlobalOptions& g) {
  CLI::App* cmd = root.add_subcommand("migrations", "Event schema migrations");
  cmd->require_subcommand(1);
  auto o = std::make_shared<MigrationsOptions>();
  CLI::App* list = cmd->add_subcommand("list", "Each migration and how many stored events are still below it");
  list->add_option("--migrations", o->migrations_dir, "Extra directory of migration files");
  list->callback([&g, o] { g.exit_code = RunList(g, *o); });
}

}  // namespace

RILL_COMMANDS("migrations", Setup);

}  // namespace rill::cli
