#include "core/store_config.h"

#include "store/durable_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace rill {

namespace {

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

bool ParseCount(const std::string& v, uint64_t min, uint64_t max, uint64_t* out) {
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n < min || n > max) return false;
  if (out) *out = n;
  return true;
}

Status WriteFileAtomically(const std::string& path, const std::string& text) {
  Result<AtomicFileWriter> out = AtomicFileWriter::Create(path);
  if (!out.ok()) return out.status();
  if (std::fwrite(text.data(), 1, text.size(), out->file()) != text.size())
    return Status::IOError(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  return out->Commit();
}

}  // namespace

const std::vector<ConfigKey>& ConfigKeys() {
  static const std::vector<ConfigKey> keys = {
      {"durability", "sync", "sync: fsync every batch; async: fsync every 200 ms (a power loss may drop acknowledged events)"},
      {"shards", "auto", "actor shards (worker threads) for commands: a number, or auto (one per core for run, one for submit)"},
      {"snapshot-interval", "auto", "snapshot an actor every N events (0: never), or auto (each aggregate's own)"},
      {"actor-bound", "1048576", "most live actors kept in memory (least recently used are passivated)"},
      {"plugins", "", "plugin files to load, comma-separated (relative paths: to the store directory)"},
      {"projections", "", "projections `rill run` runs, comma-separated (empty: all)"},
  };
  return keys;
}

const ConfigKey* FindConfigKey(std::string_view key) {
  for (const auto& k : ConfigKeys())
    if (key == k.key) return &k;
  return nullptr;
}

std::string ConfigKeyNames() {
  std::string s;
  for (const auto& k : ConfigKeys()) s += (s.empty() ? "" : ", ") + std::string(k.key);
  return s;
}

Status CheckConfigKey(std::string_view key) {
  if (FindConfigKey(key)) return Status::OK();
  return Status::InvalidArgument(fmt::format("unknown config key '{}' (keys: {})", key, ConfigKeyNames()));
}

std::vector<std::string> SplitConfigList(const std::string& value) {
  std::vector<std::string> out;
  std::stringstream ss(value);
  std::string item;
  while (std::getline(ss, item, ','))
    if (std::string t = Trim(item); !t.empty()) out.push_back(t);
  return out;
}

Result<std::string> NormalizeConfigValue(const std::string& key, const std::string& raw) {
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
    std::string joined;
    for (const auto& i : SplitConfigList(v)) {
      if (key == "projections" && !std::all_of(i.begin(), i.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
          }))
        return bad("projection names (letters, digits, _ and -), comma-separated");
      joined += (joined.empty() ? "" : ", ") + i;
    }
    return joined;
  } else {
    return CheckConfigKey(key);
  }
  return v;
}

const char* ConfigSourceText(ConfigSource s) {
  switch (s) {
    case ConfigSource::kDefault: return "default";
    case ConfigSource::kConfig: return "config";
    case ConfigSource::kFlag: return "flag";
  }
  return "default";
}

StoreConfig StoreConfig::Defaults() {
  StoreConfig c;
  for (const auto& k : ConfigKeys()) c.values[k.key] = {k.default_value, ConfigSource::kDefault};
  return c;
}

Status StoreConfig::ApplyOverrides(const std::vector<std::string>& overrides, const std::string& what) {
  for (const auto& f : overrides) {
    size_t eq = f.find('=');
    if (eq == std::string::npos) return Status::InvalidArgument(fmt::format("{} {}: expected KEY=VALUE", what, f));
    std::string key = Trim(f.substr(0, eq));
    auto v = NormalizeConfigValue(key, f.substr(eq + 1));
    if (!v.ok()) return Status::InvalidArgument(fmt::format("{}: {}", what, v.status().message()));
    values[key] = {*v, ConfigSource::kFlag};
  }
  return Status::OK();
}

void StoreConfig::ApplyTo(StoreOptions* options) const {
  if (IsSet("durability")) options->durability = Get("durability") == "async" ? Durability::kAsync : Durability::kSync;
}

void StoreConfig::ApplyTo(RuntimeOptions* options) const {
  uint64_t n = 0;
  if (IsSet("shards") && ParseCount(Get("shards"), 1, 1024, &n)) options->shards = n;
  if (IsSet("actor-bound") && ParseCount(Get("actor-bound"), 1, uint64_t{1} << 40, &n)) options->max_live_actors = n;
  if (IsSet("snapshot-interval") && ParseCount(Get("snapshot-interval"), 0, uint64_t{1} << 40, &n))
    options->snapshot_every = n;
}

std::string StoreConfigPath(const std::string& db) { return db + "/rill.conf"; }

Result<StoreConfig> ReadStoreConfig(const std::string& db) {
  StoreConfig c = StoreConfig::Defaults();
  std::string path = StoreConfigPath(db);
  std::ifstream in(path);
  if (!in) return c;
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
    auto v = NormalizeConfigValue(key, t.substr(eq + 1));
    if (!v.ok()) return Status::InvalidArgument(fmt::format("{}:{}: {}", path, n, v.status().message()));
    c.values[key] = {*v, ConfigSource::kConfig};
  }
  if (in.bad()) return Status::IOError(fmt::format("{}: read failed", path));
  return c;
}

Status RewriteStoreConfig(const std::string& db, const std::string& key, const std::optional<std::string>& value) {
  std::string path = StoreConfigPath(db);
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

std::vector<std::string> StoreRelativeFiles(const StoreConfig& config) {
  std::vector<std::string> out;
  const ConfigSetting& plugins = config.values.at("plugins");
  if (plugins.source != ConfigSource::kConfig) return out;
  for (const std::string& p : SplitConfigList(plugins.value)) {
    std::filesystem::path path = std::filesystem::path(p).lexically_normal();
    if (path.empty() || path.is_absolute() || *path.begin() == "..") continue;
    out.push_back(path.string());
  }
  return out;
}

std::vector<std::string> StoreRelativeFiles(const std::string& db) {
  auto config = ReadStoreConfig(db);
  if (!config.ok()) return {};
  return StoreRelativeFiles(*config);
}

Result<ConfigSetting> SetStoreConfigValue(const std::string& db, const std::string& key,
                                          const std::optional<std::string>& raw) {
  RILL_RETURN_IF_ERROR(CheckConfigKey(key));
  std::optional<std::string> stored;
  if (raw) {
    auto v = NormalizeConfigValue(key, *raw);
    if (!v.ok()) return v.status();
    stored = *v;
    if (key == "plugins") {
      std::string joined;
      for (const auto& p : SplitConfigList(*v)) {
        std::error_code ec;
        std::string abs = std::filesystem::absolute(p, ec).lexically_normal().string();
        if (!std::filesystem::exists(abs, ec))
          return Status::InvalidArgument(fmt::format("bad value for plugins: {}: no such file", p));
        joined += (joined.empty() ? "" : ", ") + abs;
      }
      stored = joined;
    }
  }
  RILL_RETURN_IF_ERROR(RewriteStoreConfig(db, key, stored));
  if (stored) return ConfigSetting{*stored, ConfigSource::kConfig};
  return ConfigSetting{FindConfigKey(key)->default_value, ConfigSource::kDefault};
}

}  // namespace rill
