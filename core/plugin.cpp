#include "core/plugin.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <cstdlib>
#include <set>

#include "core/process_manager.h"

namespace rill {

namespace {

// "0.1.0" -> "0.1": a 0.x minor release may change the C++ API (as the CMake
// package's SameMinorVersion says), so only major.minor must match.
std::string_view MajorMinor(std::string_view v) {
  size_t first = v.find('.');
  if (first == std::string_view::npos) return v;
  size_t second = v.find('.', first + 1);
  return second == std::string_view::npos ? v : v.substr(0, second);
}

// Runs a plugin's function; an exception it throws comes back as an error.
template <class F>
Status Guarded(F&& f) {
  try {
    f();
    return Status::OK();
  } catch (const std::exception& e) {
    return Status::InvalidArgument(fmt::format("its register function threw: {}", e.what()));
  } catch (...) {
    return Status::InvalidArgument("its register function threw (not a std::exception)");
  }
}

std::string RealPath(const std::string& path) {
  char* p = ::realpath(path.c_str(), nullptr);
  if (p == nullptr) return path;
  std::string out(p);
  std::free(p);
  return out;
}

}  // namespace

Status PluginSet::Load(const std::string& path, DomainRegistry* registry) {
  auto fail = [&](const std::string& why) {
    return Status::InvalidArgument(fmt::format("plugin {}: {}", path, why));
  };
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return fail("no such file");
  // dlopen searches the library path for a bare name; a plugin is a file.
  std::string file = path.find('/') == std::string::npos ? "./" + path : path;
  std::string real = RealPath(file);
  for (const auto& r : real_paths_)
    if (r == real) return Status::OK();

  // RTLD_NOW: a plugin needing a symbol this rill lacks fails here, with the
  // symbol's name, rather than in the middle of a command.
  void* handle = ::dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = ::dlerror();
    return fail(fmt::format("cannot load: {}", err ? err : "unknown error"));
  }
  using EntryFn = const RillPlugin* (*)();
  auto entry_fn = reinterpret_cast<EntryFn>(::dlsym(handle, RILL_PLUGIN_ENTRY_SYMBOL));
  const RillPlugin* entry = entry_fn ? entry_fn() : nullptr;
  if (entry == nullptr) {
    ::dlclose(handle);
    return fail("not a rill plugin (no " RILL_PLUGIN_ENTRY_SYMBOL "() entry point; see core/plugin.h)");
  }
  if (entry->abi_version != RILL_PLUGIN_ABI_VERSION) {
    uint32_t v = entry->abi_version;
    ::dlclose(handle);
    return fail(fmt::format("plugin ABI version {}, this rill needs {} (rebuild the plugin against rill {})", v,
                            RILL_PLUGIN_ABI_VERSION, RILL_VERSION));
  }
  std::string built = entry->rill_version ? entry->rill_version : "?";
  if (MajorMinor(built) != MajorMinor(RILL_VERSION)) {
    ::dlclose(handle);
    return fail(fmt::format("built against rill {}, this is rill {} (rebuild the plugin)", built, RILL_VERSION));
  }
  if (entry->register_domains == nullptr || entry->name == nullptr) {
    ::dlclose(handle);
    return fail("entry point has no name or no register function");
  }

  // Register into a scratch registry first, so a clash leaves `registry`
  // untouched and the error names every kind of duplicate the same way.
  // A register function that throws is the plugin's failure, reported as
  // one: an exception must not cross into rill (std::terminate).
  DomainRegistry mine;
  // (Not unloaded on failure: `mine` may hold objects whose code it is.)
  if (Status s = Guarded([&] { entry->register_domains(mine); }); !s.ok()) return fail(s.message());
  auto owner = [&](std::string_view name) {
    std::string o = OriginOf(name);
    return o.empty() ? std::string("built in") : "from plugin " + o;
  };
  std::map<std::string, std::string> host_commands, host_events;  // type -> aggregate
  for (const AggregateType* t : registry->aggregates()) {
    for (const auto& c : t->commands()) host_commands.emplace(c.type, t->name());
    for (const auto& e : t->events()) host_events.emplace(e.type, t->name());
  }
  LoadedPlugin loaded;
  loaded.path = path;
  loaded.name = entry->name;
  loaded.entry = entry;
  for (const AggregateType* t : mine.aggregates()) {
    if (registry->Find(t->name()))
      return fail(fmt::format("duplicate aggregate type '{}' (already defined, {})", t->name(), owner(t->name())));
    for (const auto& c : t->commands())
      if (auto it = host_commands.find(c.type); it != host_commands.end())
        return fail(fmt::format("duplicate command type '{}' (already handled by aggregate '{}', {})", c.type,
                                it->second, owner(it->second)));
    for (const auto& e : t->events())
      if (auto it = host_events.find(e.type); it != host_events.end())
        return fail(fmt::format("duplicate event type '{}' (already an event of aggregate '{}', {})", e.type,
                                it->second, owner(it->second)));
    loaded.aggregates.push_back(t->name());
  }
  for (const auto& pm : mine.process_managers()) {
    for (const auto& have : registry->process_managers())
      if (have->name() == pm->name())
        return fail(fmt::format("duplicate process manager '{}' ({})", pm->name(), owner(pm->name())));
    loaded.process_managers.push_back(pm->name());
  }
  // No clash: register for real (the registry takes shared ownership of the
  // plugin's objects; registering twice is cheap and keeps the API one-way).
  if (Status s = Guarded([&] { entry->register_domains(*registry); }); !s.ok()) return fail(s.message());
  plugins_.push_back(std::move(loaded));
  real_paths_.push_back(real);
  return Status::OK();
}

Status PluginSet::RegisterProjections(ProjectionRegistry* registry) const {
  for (const auto& p : plugins_) {
    if (p.entry->register_projections == nullptr) continue;
    // Into a scratch registry first: whatever source the plugin claims, its
    // projections are listed as the plugin's (with its path as the file).
    ProjectionRegistry mine;
    Status s;
    if (Status threw = Guarded([&] { s = p.entry->register_projections(&mine); }); !threw.ok()) s = threw;
    for (const auto& e : mine.entries()) {
      if (!s.ok()) break;
      s = registry->Add(e.projection, ProjectionRegistry::Source::kPlugin, p.path);
    }
    if (!s.ok()) return Status::InvalidArgument(fmt::format("plugin {}: projections: {}", p.path, s.message()));
  }
  return Status::OK();
}

std::string PluginSet::OriginOf(std::string_view name) const {
  for (const auto& p : plugins_) {
    for (const auto& a : p.aggregates)
      if (a == name) return p.name;
    for (const auto& m : p.process_managers)
      if (m == name) return p.name;
  }
  return "";
}

}  // namespace rill
