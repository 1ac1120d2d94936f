// Domain plugins: a domain (aggregates, process managers, projections)
// compiled as a shared library and loaded at run time, so a user runs their
// own domain without rebuilding rill:
//
//   rill --plugin ./libmydomain.so submit OpenCart --to cart-1
//
// A plugin is one ordinary domain file plus one line:
//
//   #include "core/plugin.h"
//   void RegisterCart(rill::DomainRegistry& registry) { registry.Add(...); }
//   RILL_PLUGIN("cart", RegisterCart)
//
// (RILL_PLUGIN_WITH_PROJECTIONS adds a `Status(ProjectionRegistry*)`.)
//
// The entry point is one C symbol, `rill_plugin`, returning a RillPlugin
// whose first member is the ABI version: that member stays first in every
// future version, so any rill can read it and refuse a plugin built for
// another one with a clear message instead of crashing.
//
// Why plugins must NOT link rill's static libraries (rill::core, rill::store):
// C++ objects cross the boundary (DomainRegistry, AggregateType, Status,
// std::function), so the plugin and the host must share one copy of that
// code and of its data. The `rill` executable exports its symbols (-rdynamic,
// with all of core/ and store/ linked in), and a plugin leaves them undefined
// so the dynamic loader binds them to the host's. A plugin compiles its own
// code with hidden visibility (CMake: CXX_VISIBILITY_PRESET hidden) so that
// none of its functions is silently replaced by a same-named one in the
// host; RILL_PLUGIN exports just the entry point. Build one with CMake:
//
//   find_package(rill)
//   add_library(mydomain MODULE mydomain.cpp)
//   target_link_libraries(mydomain PRIVATE rill::plugin)   # headers only
//   set_target_properties(mydomain PROPERTIES CXX_VISIBILITY_PRESET hidden)
//
// or by hand: c++ -std=c++20 -fPIC -shared -fvisibility=hidden
//   -I<prefix>/include/rill -o libmydomain.so mydomain.cpp
//
// Because C++ types cross, a plugin must be built against the same rill
// release (major.minor) with a compatible compiler and standard library;
// the loader checks the version, not the compiler. Plugins are never
// unloaded: the registry keeps pointers into their code until exit.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/domain_registry.h"
#include "core/projection.h"
#include "store/status.h"

// The rill release this header belongs to (CMakeLists.txt checks it matches
// the project version).
#define RILL_VERSION "0.1.0"
// Bumped whenever RillPlugin or anything it exposes changes incompatibly.
#define RILL_PLUGIN_ABI_VERSION 3

extern "C" {
struct RillPlugin {
  uint32_t abi_version;      // RILL_PLUGIN_ABI_VERSION when built; always first
  const char* rill_version;  // RILL_VERSION when built
  const char* name;          // short name shown by `rill domains` and in errors
  void (*register_domains)(rill::DomainRegistry& registry);
  // Optional (null: none): adds the plugin's read models to `rill run`/`project`.
  rill::Status (*register_projections)(rill::ProjectionRegistry* registry);
};
}

#define RILL_PLUGIN_ENTRY_SYMBOL "rill_plugin"

#define RILL_PLUGIN_WITH_PROJECTIONS(NAME, REGISTER_DOMAINS, REGISTER_PROJECTIONS)                     \
  extern "C" __attribute__((visibility("default"))) const RillPlugin* rill_plugin() {                 \
    static const RillPlugin plugin = {RILL_PLUGIN_ABI_VERSION, RILL_VERSION, NAME, REGISTER_DOMAINS, \
                                      REGISTER_PROJECTIONS};                                         \
    return &plugin;                                                                                  \
  }
#define RILL_PLUGIN(NAME, REGISTER_DOMAINS) RILL_PLUGIN_WITH_PROJECTIONS(NAME, REGISTER_DOMAINS, nullptr)

namespace rill {

struct LoadedPlugin {
  std::string path;  // as given
  std::string name;
  std::vector<std::string> aggregates, process_managers;
  const RillPlugin* entry = nullptr;
};

// The plugins one process has loaded, and which names each one brought.
// Use one PluginSet from one thread at a time; its plugins' register
// functions run on the calling thread, and one that throws is that plugin's
// InvalidArgument, not a crash.
class PluginSet {
 public:
  // Loads the shared library at `path` and adds its domains to `registry`.
  // InvalidArgument, naming the file, when: it does not exist or cannot be
  // loaded (dlerror), it has no `rill_plugin` entry point, its ABI version or
  // rill release differs from this one, its entry has no name or register
  // function, its register function throws, or it defines an aggregate,
  // command type, event type or process manager `registry` already has
  // (built in, or from another plugin); then `registry` is unchanged.
  // InvalidArgument is the only error. Loading the same file twice (by its
  // real path) is a no-op.
  Status Load(const std::string& path, DomainRegistry* registry);

  // Adds every loaded plugin's projections; InvalidArgument naming the
  // plugin for a name taken, a register_projections that fails or throws.
  // Stops at the first failure; what was added before it stays.
  Status RegisterProjections(ProjectionRegistry* registry) const;

  const std::vector<LoadedPlugin>& plugins() const { return plugins_; }
  // The plugin that registered aggregate / process manager `name`; "" if
  // none did (built in).
  std::string OriginOf(std::string_view name) const;

 private:
  std::vector<LoadedPlugin> plugins_;
  std::vector<std::string> real_paths_;
};

}  // namespace rill
