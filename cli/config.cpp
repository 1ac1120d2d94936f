// `rill config get KEY | set KEY VALUE | unset KEY | list`, and
// PrepareCommand(): before every other command, the config, --set, the
// built-in domains (unless --no-builtin-domains) and the plugins (config's,
// then --plugin's), through the library (core/open_store.h) so the CLI and an
// application open a store the same way. The file's format and keys live in
// core/store_config.h.
#include <fmt/format.h>

#include <cstdlib>
#include <optional>

#include "cli/cli.h"
#include "core/open_store.h"
#include "core/plugin.h"
#include "domains/domains.h"
#include "domains/sample_projections.h"

namespace rill::cli {

namespace {

// The state PrepareCommand builds for the command that runs.
struct RunState {
  StoreSetup setup;      // config, domains and plugins (core/open_store.h)
  OpenOverrides overrides;
  std::shared_ptr<const Upcaster> upcaster;  // of the last OpenStore
  bool builtin = true;
  bool prepared = false;
};
RunState& State() {
  static RunState s;
  return s;
}

bool NoBuiltinFromEnv() {
  const char* e = std::getenv("RILL_NO_BUILTIN_DOMAINS");
  return e && *e && std::string_view(e) != "0";
}

void PrintSetting(const GlobalOptions& g, const std::string& key, const ConfigSetting& s) {
  PrintJsonLine([&](JsonWriter& w) {
    w.StartObject();
    w.Key("key");
    w.String(key);
    w.Key("value");
    w.String(s.value);
    w.Key("source");
    w.String(ConfigSourceText(s.source));
    w.EndObject();
  });
  (void)g;
}

// `rill config ...`: reads the file itself (PrepareCommand skips `config`, so
// a config naming a broken plugin can still be repaired).
int RunConfig(GlobalOptions& g, const std::string& action, const std::string& key, const std::string& value) {
  std::string db = g.ResolvedDb();
  if (!EventStore::Exists(db))
    return Fail(g, Status::NotFound(fmt::format("no rill store at {} (create one with 'rill --db {} init')", db, db)));
  if (action != "list")
    if (Status known = CheckConfigKey(key); !known.ok()) return Fail(g, known);
  if (action == "set" || action == "unset") {
    auto now = SetStoreConfigValue(db, key, action == "set" ? std::optional<std::string>(value) : std::nullopt);
    if (!now.ok()) return Fail(g, now.status());
    if (g.json) PrintSetting(g, key, *now);
    else if (!g.quiet)
      fmt::print("{} = {}{}\n", key, now->value, now->source == ConfigSource::kConfig ? "" : "  (default)");
    return kExitOk;
  }
  auto read = ReadStoreConfig(db);
  if (!read.ok()) return Fail(g, read.status());
  StoreConfig settings = std::move(read).value();
  if (Status s = settings.ApplyOverrides(g.settings); !s.ok()) return Fail(g, s);
  if (action == "get") {
    const ConfigSetting& st = settings.values.at(key);
    if (g.json) PrintSetting(g, key, st);
    else fmt::print("{}\n", st.value);
    return kExitOk;
  }
  if (g.json) {
    for (const auto& k : ConfigKeys()) PrintSetting(g, k.key, settings.values.at(k.key));
    return kExitOk;
  }
  if (g.quiet) return kExitOk;
  Table t({"KEY", "VALUE", "SOURCE"});
  for (const auto& k : ConfigKeys()) {
    const ConfigSetting& st = settings.values.at(k.key);
    t.Add({k.key, st.value.empty() ? "-" : st.value, ConfigSourceText(st.source)});
  }
  t.Print();
  return kExitOk;
}

void SetupConfig(CLI::App& root, GlobalOptions& g) {
  auto* cmd = root.add_subcommand("config", "Show or change the store's config (<db>/rill.conf)");
  cmd->require_subcommand(1);
  auto key = std::make_shared<std::string>();
  auto value = std::make_shared<std::string>();
  auto* get = cmd->add_subcommand("get", "Print a key's value (flag > config > default)");
  get->add_option("KEY", *key, "durability, shards, snapshot-interval, actor-bound, plugins, projections")->required();
  get->callback([&g, key] { g.exit_code = RunConfig(g, "get", *key, ""); });
  auto* set = cmd->add_subcommand("set", "Set a key in <db>/rill.conf (validated; written atomically)");
  set->add_option("KEY", *key, "The key")->required();
  set->add_option("VALUE", *value, "The value (lists: comma-separated)")->required();
  set->callback([&g, key, value] { g.exit_code = RunConfig(g, "set", *key, *value); });
  auto* unset = cmd->add_subcommand("unset", "Remove a key from <db>/rill.conf (back to its default)");
  unset->add_option("KEY", *key, "The key")->required();
  unset->callback([&g, key] { g.exit_code = RunConfig(g, "unset", *key, ""); });
  auto* list = cmd->add_subcommand("list", "Every key with its value and source (default, config or flag)");
  list->callback([&g] { g.exit_code = RunConfig(g, "list", "", ""); });
}

}  // namespace

RILL_COMMANDS("config", SetupConfig);

Status PrepareCommand(const GlobalOptions& g, const CLI::App* sub) {
  const std::string command = sub ? sub->get_name() : "";
  auto flag = [&](const char* name) {
    const CLI::Option* opt = sub ? sub->get_option_no_throw(name) : nullptr;
    return opt != nullptr && opt->count() > 0;
  };
  RunState& st = State();
  st.prepared = true;
  st.builtin = !(g.no_builtin_domains || NoBuiltinFromEnv());
  OpenOverrides& o = st.overrides;
  o.settings = g.settings;
  // `config` repairs the file, `init` creates the store: neither needs (or
  // may be blocked by) the config's plugins.
  o.read_config = command != "config" && command != "init";
  if (command != "config") o.plugins = g.plugins;
  if (st.builtin) o.domains = [](DomainRegistry& r) { domains::RegisterAll(r); };
  // Commands that read only what is stored open without the config's
  // plugins and without migrations, so that a plugin that fails (or
  // crashes) or a migration file that disagrees with the domains never
  // keeps the operator from inspecting, checking, backing up or exporting
  // the store as stored (rill-migrations(1), rill-config(1)).
  o.as_stored = flag("--raw") || command == "backup" || command == "stats" || command == "streams" ||
                (command == "check" && !flag("--domains"));
  o.check_migrations = !o.as_stored && command != "migrations" && command != "config" && command != "init";
  auto setup = LoadStoreSetup(g.ResolvedDb(), o);
  if (!setup.ok()) return setup.status();
  st.setup = std::move(setup).value();
  return Status::OK();
}

const DomainRegistry& Domains() {
  RunState& st = State();
  if (!st.prepared) {  // a path that never ran PrepareCommand: built-ins only
    st.prepared = true;
    st.builtin = !NoBuiltinFromEnv();
    OpenOverrides o;
    o.read_config = false;  // no config, no plugins: nothing that can fail
    if (st.builtin) o.domains = [](DomainRegistry& r) { domains::RegisterAll(r); };
    st.setup = LoadStoreSetup("", o).value();
  }
  return *st.setup.domains;
}

Result<std::unique_ptr<EventStore>> OpenPreparedStore(const std::string& dir, StoreOptions options) {
  Domains();
  RunState& st = State();
  OpenOverrides o = st.overrides;
  o.store = std::move(options);
  return OpenEventStore(dir, st.setup, o, &st.upcaster);
}

uint32_t CurrentSchema(std::string_view type) { return State().upcaster ? State().upcaster->CurrentSchema(type) : 1; }

Status RegisterDomainProjections(ProjectionRegistry* registry) {
  Domains();
  if (State().builtin) RILL_RETURN_IF_ERROR(RegisterSampleProjections(registry));
  return State().setup.plugins->RegisterProjections(registry);
}

std::string DomainOrigin(const std::string& name) {
  Domains();
  return State().setup.plugins->OriginOf(name);
}

std::vector<std::string> ProjectionsToRun() {
  if (!State().prepared || State().setup.config.values.empty()) return {};
  return SplitConfigList(State().setup.config.Get("projections"));
}

static bool DebugSettings() {
  const char* e = std::getenv("RILL_DEBUG");
  return e && *e;
}

void ApplySettings(StoreOptions* options) {
  Domains();
  State().setup.config.ApplyTo(options);
  if (DebugSettings())
    std::fprintf(stderr, "rill: debug: store durability=%s\n",
                 options->durability == Durability::kAsync ? "async" : "sync");
}

void ApplySettings(RuntimeOptions* options) {
  Domains();
  State().setup.config.ApplyTo(options);
  if (DebugSettings())
    std::fprintf(stderr, "rill: debug: runtime shards=%zu actor-bound=%zu snapshot-interval=%s\n", options->shards,
                 options->max_live_actors,
                 options->snapshot_every ? std::to_string(*options->snapshot_every).c_str() : "auto");
}

}  // namespace rill::cli
