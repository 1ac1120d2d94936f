// The store config, <db>/rill.conf: `key = value` lines; '#' lines and blank
// lines are ignored. An unknown key or a bad value is an error naming the line
// (a typo must not silently fall back to the default). Precedence: override
// (the CLI's --set, an application's OpenOverrides::settings) > file >
// default. Rewrites keep every other line (comments too) and replace the file
// atomically (temp file, fsync, rename), so a crash leaves the old file or the
// new one.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/actor_runtime.h"
#include "store/event_store.h"
#include "store/status.h"

namespace rill {

struct ConfigKey {
  const char* key;
  const char* default_value;
  const char* help;
};
// Every key, in the order `rill config list` prints them.
const std::vector<ConfigKey>& ConfigKeys();
const ConfigKey* FindConfigKey(std::string_view key);
std::string ConfigKeyNames();  // "durability, shards, ..."
// InvalidArgument "unknown config key 'K' (keys: ...)" unless `key` is one.
Status CheckConfigKey(std::string_view key);

// Checks `raw` for `key` and returns it in its stored form (trimmed; lists
// joined by ", "). InvalidArgument for an unknown key or a bad value.
Result<std::string> NormalizeConfigValue(const std::string& key, const std::string& raw);
// "a, b,,c" -> {"a","b","c"}.
std::vector<std::string> SplitConfigList(const std::string& value);

enum class ConfigSource { kDefault, kConfig, kFlag };
const char* ConfigSourceText(ConfigSource s);  // "default", "config", "flag"

struct ConfigSetting {
  std::string value;
  ConfigSource source = ConfigSource::kDefault;
};

// The effective settings of one open: every key has a value.
struct StoreConfig {
  std::map<std::string, ConfigSetting> values;

  static StoreConfig Defaults();
  const std::string& Get(const std::string& key) const { return values.at(key).value; }
  bool IsSet(const std::string& key) const { return values.at(key).source != ConfigSource::kDefault; }
  // KEY=VALUE overrides (source kFlag); errors start with `what`.
  Status ApplyOverrides(const std::vector<std::string>& overrides, const std::string& what = "--set");
  // durability, when set.
  void ApplyTo(StoreOptions* options) const;
  // shards, actor-bound, snapshot-interval, when set.
  void ApplyTo(RuntimeOptions* options) const;
};

// The plugin files rill.conf names by relative paths (which mean the store
// directory), as normalized relative paths that stay inside it: what a
// backup carries along so that the copy opens as the store does.
std::vector<std::string> StoreRelativeFiles(const StoreConfig& config);
// The same for <db>/rill.conf; none when it does not parse (a backup still
// copies the file; only the files it names cannot be known).
std::vector<std::string> StoreRelativeFiles(const std::string& db);

std::string StoreConfigPath(const std::string& db);
// Defaults, then <db>/rill.conf (a missing file is no config).
Result<StoreConfig> ReadStoreConfig(const std::string& db);
// Sets (value given) or removes `key` in <db>/rill.conf; `value` must already
// be normalized.
Status RewriteStoreConfig(const std::string& db, const std::string& key, const std::optional<std::string>& value);
// What `rill config set KEY VALUE` (and, without a value, `unset KEY`) does:
// `raw` checked and normalized, then written with RewriteStoreConfig; the
// key's setting afterwards is returned. Plugin files given here mean the
// caller's working directory, not the store's: each must exist, and is
// stored as an absolute path so the file means the same from anywhere.
Result<ConfigSetting> SetStoreConfigValue(const std::string& db, const std::string& key,
                                          const std::optional<std::string>& raw);

}  // namespace rill
