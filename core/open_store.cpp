#include "core/open_store.h"

#include "core/migration_check.h"

namespace rill {

namespace {

std::string Resolve(const std::string& path, const std::string& base) {
  if (path.empty() || path[0] == '/') return path;
  return base + "/" + path;
}

}  // namespace

Result<StoreSetup> LoadStoreSetup(const std::string& dir, const OpenOverrides& overrides) {
  StoreSetup setup;
  if (overrides.read_config) {
    auto config = ReadStoreConfig(dir);
    if (!config.ok()) return config.status();
    setup.config = std::move(config).value();
  } else {
    setup.config = StoreConfig::Defaults();
  }
  RILL_RETURN_IF_ERROR(setup.config.ApplyOverrides(overrides.settings));
  setup.config.ApplyTo(&setup.runtime);
  setup.plugins = std::make_unique<PluginSet>();
  setup.domains = std::make_unique<DomainRegistry>();
  if (overrides.domains) overrides.domains(*setup.domains);
  // Relative paths in rill.conf mean the store directory; given as an
  // override, they mean what the caller meant (its working directory).
  std::vector<std::pair<std::string, std::string>> files;  // path, where it was listed
  if (overrides.read_config && !overrides.as_stored) {
    const ConfigSetting& listed = setup.config.values.at("plugins");
    bool from_file = listed.source == ConfigSource::kConfig;
    for (const auto& p : SplitConfigList(listed.value))
      files.emplace_back(from_file ? Resolve(p, dir) : p, from_file ? StoreConfigPath(dir) : "--set plugins");
  }
  for (const auto& p : overrides.plugins) files.emplace_back(p, "");
  for (const auto& [path, from] : files) {
    Status s = setup.plugins->Load(path, setup.domains.get());
    if (!s.ok() && !from.empty()) return Status::InvalidArgument(s.message() + " (listed in " + from + ")");
    if (!s.ok()) return s;
  }
  return setup;
}

Result<std::unique_ptr<EventStore>> OpenEventStore(const std::string& dir, const StoreSetup& setup,
                                                   const OpenOverrides& overrides,
                                                   std::shared_ptr<const Upcaster>* upcaster_out) {
  StoreOptions options = overrides.store;
  if (!options.read_transform && !options.read_expand && !overrides.as_stored) {
    auto loaded = LoadUpcasters(dir, overrides.extra_migrations_dir);
    if (!loaded.ok()) return loaded.status();
    std::shared_ptr<const Upcaster> upcaster = std::move(loaded).value();
    if (overrides.check_migrations && setup.domains)
      RILL_RETURN_IF_ERROR(CheckMigrationsAgainstDomains(*upcaster, *setup.domains));
    InstallUpcaster(&options, upcaster);
    if (upcaster_out) *upcaster_out = std::move(upcaster);
  }
  setup.config.ApplyTo(&options);
  return EventStore::Open(dir, options);
}

Result<OpenedStore> OpenStore(const std::string& dir, OpenOverrides overrides) {
  auto setup = LoadStoreSetup(dir, overrides);
  if (!setup.ok()) return setup.status();
  OpenedStore opened;
  static_cast<StoreSetup&>(opened) = std::move(setup).value();
  auto store = OpenEventStore(dir, opened, overrides, &opened.upcaster);
  if (!store.ok()) return store.status();
  opened.store = std::move(store).value();
  return opened;
}

}  // namespace rill
