// rill::OpenStore: a store opened the way the `rill` CLI opens it, so an
// application sees every event at the same schema as `rill show` does.
//
//   auto opened = rill::OpenStore("/var/lib/app/rill.db", {.domains = RegisterMyDomains});
//   if (!opened.ok()) ...;                       // bad rill.conf, plugin, migration
//   rill::EventStore& store = *opened->store;
//   auto runtime = rill::ActorRuntime::Start(&store, opened->domains.get(), opened->runtime);
//
// In order: <db>/rill.conf (core/store_config.h) with the overrides on top;
// the domains (the caller's, then the plugins the config and the overrides
// name; core/plugin.h); the upcasters (shipped migrations, C++ upcasters,
// <db>/migrations; core/upcaster.h) installed as the store's read hook; every
// migration step checked against the domains (core/migration_check.h); the
// config's store settings; then EventStore::Open.
//
// Thread safety: these run on the calling thread (plugin register functions
// and overrides.domains too); not concurrently with AddCodeUpcaster.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/actor_runtime.h"
#include "core/domain_registry.h"
#include "core/plugin.h"
#include "core/store_config.h"
#include "core/upcaster.h"
#include "store/event_store.h"
#include "store/status.h"

namespace rill {

struct OpenOverrides {
  // KEY=VALUE, over <db>/rill.conf (the CLI's --set).
  std::vector<std::string> settings;
  // Registers the application's own domains, before any plugin.
  std::function<void(DomainRegistry&)> domains;
  // Plugin files loaded after the config's `plugins` (the CLI's --plugin).
  std::vector<std::string> plugins;
  // false: rill.conf is not read and its plugins are not loaded (what `rill
  // init` and `rill config` need: a broken config must stay repairable).
  bool read_config = true;
  // false: migrations are not checked against the domains (rill.conf and
  // upcasters still apply). For tools that never read through a domain.
  bool check_migrations = true;
  // true: the caller reads only what is stored, never through a domain or an
  // upcaster (check, backup, stats, a raw export): the config's plugins are
  // not loaded and no migration file is read, so a broken or crashing
  // plugin, or a migration file that does not load, cannot block the tools
  // that inspect, verify and copy the store. Plugins in `plugins` still load.
  bool as_stored = false;
  // Base store options; a read hook set here (read_transform / read_expand)
  // replaces the upcasters (raw reads) and skips the migration check.
  StoreOptions store;
  // Another directory of migration files, after <db>/migrations.
  std::string extra_migrations_dir;
};

// Everything an open needs before the store itself: config and domains.
struct StoreSetup {
  StoreConfig config;
  std::unique_ptr<PluginSet> plugins;    // outlives `domains` (their code)
  std::unique_ptr<DomainRegistry> domains;
  RuntimeOptions runtime;                // the config's shards, actor-bound, snapshot-interval
};

struct OpenedStore : StoreSetup {
  // null when the caller set its own read hook, or with as_stored
  std::shared_ptr<const Upcaster> upcaster;
  std::unique_ptr<EventStore> store;         // destroyed first
};

// The config, overrides and domains. InvalidArgument naming the line of a bad
// config, a bad override, or the plugin that does not load (and where it was
// listed); IOError when rill.conf fails while being read. Does not look for
// a store: a missing rill.conf is the defaults.
Result<StoreSetup> LoadStoreSetup(const std::string& dir, const OpenOverrides& overrides);

// Opens the store of `setup`: upcasters, the migration check, the config's
// settings. `upcaster_out` (optional) receives the upcaster installed, and
// is left alone when none is (own read hook, as_stored). Errors:
// LoadUpcasters' (InvalidArgument naming a migration file and line, IOError,
// NotFound for a missing extra_migrations_dir); InvalidArgument from the
// migration check; then EventStore::Open's (NotFound: no store, and not
// create_if_missing; InvalidArgument; Corruption; IOError).
Result<std::unique_ptr<EventStore>> OpenEventStore(const std::string& dir, const StoreSetup& setup,
                                                   const OpenOverrides& overrides,
                                                   std::shared_ptr<const Upcaster>* upcaster_out = nullptr);

// LoadStoreSetup + OpenEventStore (set overrides.store.create_if_missing to
// create a new store), with the errors of both.
Result<OpenedStore> OpenStore(const std::string& dir, OpenOverrides overrides = {});

}  // namespace rill
