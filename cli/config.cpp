// The store config (<db>/rill.conf) and the domains a command runs with:
//   rill config get KEY | set KEY VALUE | unset KEY | list
// and, before every other command, PrepareCommand(): read the config, apply
// --set overrides, load the built-in domains (unless --no-builtin-domains)
// and the plugins (config's, then --plugin's). Precedence: flag > config >
// default.
//
// The file is `key = value` lines; lines starting with '#' and blank lines are
// ignored; an unknown key or a bad value is an error naming the line (a typo
// must not silently fall back to the default). `set` rewrites only the
// key's line, keeps the rest (comments too), and replaces the file atomically
// (temp file, fsync, rename), so a crash leaves the old file or the new one.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "cli/cli.h"
#include "core/plugin.h"
#include "domains/domains.h"
#include "domains/sample_projections.h"

namespace rill::cli {

namespace {

struct KeySpec {
  const char* key;
  const char* default_value;
  const char* help;
};

// Every key, in the order `config list` prints them.
const KeySpec kKeys[] = {
    {"durability", "sync", "sync: fsync every batch; async: fsync every 200 ms (a power loss may drop acknowledged events)"},
    {"shards", "auto", "actor shards (worker threads) for commands: a number, or auto (one per core for run, one for submit)"},
    {"snapshot-interval", "auto", "snapshot an actor every N events (0: never), or auto (each aggregate's own)"},
    {"actor-bound", "1048576", "most live actors kept in memory (least recently used are passivated)"},
    {"plugins", "", "plugin files to load, comma-separated (relative paths: to the store directory)"},
    {"projections", "", "projections `rill run` runs, comma-separated (empty: all)"},
};

const KeySpec* FindKey(std::string_view key) {
  for (const auto& k : kKeys)
    if (key == k.key) return &k;
  return nullptr;
}

std::string KeyNames() {
  std::string s;
  for (const auto& k : kKeys) s += (s.empty() ? "" : ", ") + std::string(k.key);
  return s;
}

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

std::vector<std::string> SplitList(const std::string& value) {
  std::vector<std::string> out;
  std::stringstream ss(value);
  std::string item;
  while (std::getline(ss, item, ','))
    if (std::string t = Trim(item); !t.empty()) out.push_back(t);
  return out;
}

bool ParseCount(const std::string& v, uint64_t min, uint64_t max, uint64_t* out) {
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n < min || n > max) return false;
  if (out) *out = n;
  return true;
}

// Checks `value` for `key` and returns it in its stored form.
Result<std::string> Normalize(const std::string& key, const std::string& raw) {
  std::string v = Trim(raw);
  auto bad = [&](const char* want) {
    return Status::InvalidArgument(fmt::format("bad value '{}' for {}: want {}", v, key, want));
  };
  if (key == "durability") {
    if (v != "sync" && v != "async") return bad("sync or async");
  } else if (key == "shards") {
    if (v != "auto" && !ParseCount(v, 1, 1024, nullptr)) return bad("a number from 1 to 1024, or auto");
  } else if (key == "snapshot-interval") {
    if (v != "auto" && !ParseCount(v, 0, uint64_t{1} << 40, nullptr)) return bad("a number (0: never), or auto");
  } else if (key == "actor-bound") {
    if (!ParseCount(v, 1, uint64_t{1} << 40, nullptr)) return bad("a positive number");
  } else if (key == "plugins" || key == "projections") {
    std::vector<std::string> items = SplitList(v);
    std::string joined;
    for (const auto& i : items) {
      if (key == "projections" &&
          !std::all_of(i.begin(), i.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; }))
        return bad("projection names (letters, digits, _ and -), comma-separated");
      joined += (joined.empty() ? "" : ", ") + i;
    }
    return joined;
  } else {
    return Status::InvalidArgument(fmt::format("unknown config key '{}' (keys: {})", key, KeyNames()));
  }
  return v;
}

enum class Source { kDefault, kConfig, kFlag };
const char* SourceText(Source s) {
  switch (s) {
    case Source::kDefault: return "default";
    case Source::kConfig: return "config";
    case Source::kFlag: return "flag";
  }
  return "default";
}

struct Setting {
  std::string value;
  Source source = Source::kDefault;
};

// Effective settings of this run, and the plugin files resolved to paths.
struct Settings {
  std::map<std::string, Setting> values;
  std::vector<std::string> plugin_files;      // resolved, config's first
  std::vector<std::string> plugin_from;       // for errors: "rill.conf" or "--plugin"
  const std::string& Get(const std::string& key) const { return values.at(key).value; }
  bool IsSet(const std::string& key) const { return values.at(key).source != Source::kDefault; }
};

std::string ConfigPath(const std::string& db) { return db + "/rill.conf"; }

// Reads <db>/rill.conf into `s` (a missing file is no config).
Status ReadConfig(const std::string& db, Settings* s) {
  for (const auto& k : kKeys) s->values[k.key] = {k.default_value, Source::kDefault};
  std::string path = ConfigPath(db);
  std::ifstream in(path);
  if (!in) return Status::OK();
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::string t = Trim(line);
    if (t.empty() || t[0] == '#') continue;
    size_t eq = t.find('=');
    if (eq == std::string::npos)
      return Status::InvalidArgument(fmt::format("{}:{}: expected 'key = value', got '{}'", path, n, t));
    std::string key = Trim(t.substr(0, eq));
    auto v = Normalize(key, t.substr(eq + 1));
    if (!v.ok()) return Status::InvalidArgument(fmt::format("{}:{}: {}", path, n, v.status().message()));
    s->values[key] = {*v, Source::kConfig};
  }
  if (in.bad()) return Status::IOError(fmt::format("{}: read failed", path));
  return Status::OK();
}

// Applies --set KEY=VALUE overrides.
Status ApplyFlags(const std::vector<std::string>& flags, Settings* s) {
  for (const auto& f : flags) {
    size_t eq = f.find('=');
    if (eq == std::string::npos) return Status::InvalidArgument(fmt::format("--set {}: expected KEY=VALUE", f));
    std::string key = Trim(f.substr(0, eq));
    auto v = Normalize(key, f.substr(eq + 1));
    if (!v.ok()) return Status::InvalidArgument(fmt::format("--set: {}", v.status().message()));
    s->values[key] = {*v, Source::kFlag};
  }
  return Status::OK();
}

std::string Resolve(const std::string& path, const std::string& base) {
  if (path.empty() || path[0] == '/') return path;
  return base + "/" + path;
}

// The state PrepareCommand builds for the command that runs.
struct RunState {
  Settings settings;
  DomainRegistry registry;
  PluginSet plugins;
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

Status WriteFileAtomically(const std::string& path, const std::string& text) {
  std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError(fmt::format("{}: {}", tmp, std::strerror(errno)));
  size_t done = 0;
  while (done < text.size()) {
    ssize_t w = ::write(fd, text.data() + done, text.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      Status s = Status::IOError(fmt::format("{}: {}", tmp, std::strerror(errno)));
      ::close(fd);
      ::unlink(tmp.c_str());
      return s;
    }
    done += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return Status::IOError(fmt::format("{}: {}", tmp, std::strerror(errno)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = Status::IOError(fmt::format("rename to {}: {}", path, std::strerror(errno)));
    ::unlink(tmp.c_str());
    return s;
  }
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::OK();
}

// Sets (value != nullopt) or removes `key` in the file, keeping every other
// line as it was.
Status RewriteConfig(const std::string& db, const std::string& key, const std::optional<std::string>& value) {
  std::string path = ConfigPath(db);
  std::vector<std::string> lines;
  {
    std::ifstream in(path);
    std::string line;
    while (in && std::getline(in, line)) lines.push_back(line);
  }
  if (lines.empty())
    lines.push_back("# rill store config: `key = value`; see rill-config(1). Command-line flags override it.");
  bool replaced = false;
  std::vector<std::string> out;
  for (const auto& line : lines) {
    std::string t = Trim(line);
    size_t eq = t.find('=');
    if (!t.empty() && t[0] != '#' && eq != std::string::npos && Trim(t.substr(0, eq)) == key) {
      if (value && !replaced) out.push_back(fmt::format("{} = {}", key, *value));
      replaced = true;
      continue;
    }
    out.push_back(line);
  }
  if (value && !replaced) out.push_back(fmt::format("{} = {}", key, *value));
  std::string text;
  for (const auto& l : out) text += l + "\n";
  return WriteFileAtomically(path, text);
}

void PrintSetting(const GlobalOptions& g, const std::string& key, const Setting& s) {
  PrintJsonLine([&](JsonWriter& w) {
    w.StartObject();
    w.Key("key");
    w.String(key);
    w.Key("value");
    w.String(s.value);
    w.Key("source");
    w.String(SourceText(s.source));
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
  if (action != "list" && !FindKey(key))
    return Fail(g, Status::InvalidArgument(fmt::format("unknown config key '{}' (keys: {})", key, KeyNames())));
  if (action == "set" || action == "unset") {
    std::optional<std::string> stored;
    if (action == "set") {
      auto v = Normalize(key, value);
      if (!v.ok()) return Fail(g, v.status());
      stored = *v;
      if (key == "plugins") {
        // Given on a command line, a relative path means the current
        // directory; stored absolute so the file means the same from anywhere.
        std::string joined;
        for (const auto& p : SplitList(*v)) {
          std::error_code ec;
          std::string abs = std::filesystem::absolute(p, ec).lexically_normal().string();
          if (!std::filesystem::exists(abs, ec))
            return Fail(g, Status::InvalidArgument(fmt::format("bad value for plugins: {}: no such file", p)));
          joined += (joined.empty() ? "" : ", ") + abs;
        }
        stored = joined;
      }
    }
    Status s = RewriteConfig(db, key, stored);
    if (!s.ok()) return Fail(g, s);
    Setting now = stored ? Setting{*stored, Source::kConfig} : Setting{FindKey(key)->default_value, Source::kDefault};
    if (g.json) PrintSetting(g, key, now);
    else if (!g.quiet) fmt::print("{} = {}{}\n", key, now.value, stored ? "" : "  (default)");
    return kExitOk;
  }
  Settings settings;
  Status s = ReadConfig(db, &settings);
  if (s.ok()) s = ApplyFlags(g.settings, &settings);
  if (!s.ok()) return Fail(g, s);
  if (action == "get") {
    const Setting& st = settings.values.at(key);
    if (g.json) PrintSetting(g, key, st);
    else fmt::print("{}\n", st.value);
    return kExitOk;
  }
  if (g.json) {
    for (const auto& k : kKeys) PrintSetting(g, k.key, settings.values.at(k.key));
    return kExitOk;
  }
  if (g.quiet) return kExitOk;
  Table t({"KEY", "VALUE", "SOURCE"});
  for (const auto& k : kKeys) {
    const Setting& st = settings.values.at(k.key);
    t.Add({k.key, st.value.empty() ? "-" : st.value, SourceText(st.source)});
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

RILL_COMMANDS(92, SetupConfig);

Status PrepareCommand(const GlobalOptions& g, const std::string& command) {
  RunState& st = State();
  st.prepared = true;
  std::string db = g.ResolvedDb();
  // `config` repairs the file, `init` creates the store: neither needs (or
  // may be blocked by) the config's plugins.
  bool read_config = command != "config" && command != "init";
  if (read_config) {
    RILL_RETURN_IF_ERROR(ReadConfig(db, &st.settings));
  } else {
    for (const auto& k : kKeys) st.settings.values[k.key] = {k.default_value, Source::kDefault};
  }
  RILL_RETURN_IF_ERROR(ApplyFlags(g.settings, &st.settings));
  const Setting& plugins = st.settings.values.at("plugins");
  std::vector<std::pair<std::string, std::string>> files;  // path, where it was named
  if (command != "config") {
    for (const auto& p : SplitList(plugins.value))
      files.emplace_back(plugins.source == Source::kConfig ? Resolve(p, db) : p,
                         plugins.source == Source::kConfig ? ConfigPath(db) : "--set plugins");
    for (const auto& p : g.plugins) files.emplace_back(p, "");
  }
  st.builtin = !(g.no_builtin_domains || NoBuiltinFromEnv());
  if (st.builtin) domains::RegisterAll(st.registry);
  for (const auto& [path, from] : files) {
    Status s = st.plugins.Load(path, &st.registry);
    if (!s.ok() && !from.empty()) return Status::InvalidArgument(s.message() + " (listed in " + from + ")");
    if (!s.ok()) return s;
  }
  return Status::OK();
}

const DomainRegistry& Domains() {
  RunState& st = State();
  if (!st.prepared) {  // a path that never ran PrepareCommand: built-ins only
    st.prepared = true;
    st.builtin = !NoBuiltinFromEnv();
    if (st.builtin) domains::RegisterAll(st.registry);
  }
  return st.registry;
}

Status RegisterDomainProjections(ProjectionRegistry* registry) {
  Domains();
  if (State().builtin) RILL_RETURN_IF_ERROR(RegisterSampleProjections(registry));
  return State().plugins.RegisterProjections(registry);
}

std::string DomainOrigin(const std::string& name) { return State().plugins.OriginOf(name); }

std::vector<std::string> ProjectionsToRun() {
  if (State().settings.values.empty()) return {};
  return SplitList(State().settings.Get("projections"));
}

static bool DebugSettings() {
  const char* e = std::getenv("RILL_DEBUG");
  return e && *e;
}

void ApplySettings(StoreOptions* options) {
  const Settings& s = State().settings;
  if (!s.values.empty() && s.IsSet("durability"))
    options->durability = s.Get("durability") == "async" ? Durability::kAsync : Durability::kSync;
  if (DebugSettings())
    std::fprintf(stderr, "rill: debug: store durability=%s\n",
                 options->durability == Durability::kAsync ? "async" : "sync");
}

void ApplySettings(RuntimeOptions* options) {
  const Settings& s = State().settings;
  if (!s.values.empty()) {
    uint64_t n = 0;
    if (s.IsSet("shards") && ParseCount(s.Get("shards"), 1, 1024, &n)) options->shards = n;
    if (s.IsSet("actor-bound") && ParseCount(s.Get("actor-bound"), 1, uint64_t{1} << 40, &n))
      options->max_live_actors = n;
    if (s.IsSet("snapshot-interval") && ParseCount(s.Get("snapshot-interval"), 0, uint64_t{1} << 40, &n))
      options->snapshot_every = n;
  }
  if (DebugSettings())
    std::fprintf(stderr, "rill: debug: runtime shards=%zu actor-bound=%zu snapshot-interval=%s\n", options->shards,
                 options->max_live_actors,
                 options->snapshot_every ? std::to_string(*options->snapshot_every).c_str() : "auto");
}

}  // namespace rill::cli
