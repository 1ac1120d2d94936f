// A plugin whose register functions throw: the loader must turn that into a
// one-line error naming the plugin, not let it take rill down (SIGABRT).
// RILL_TEST_THROW_IN=projections makes only its projections throw.
#include <cstdlib>
#include <stdexcept>
#include <string_view>

#include "core/plugin.h"

namespace {
bool ProjectionsOnly() {
  const char* where = std::getenv("RILL_TEST_THROW_IN");
  return where && std::string_view(where) == "projections";
}
void Register(rill::DomainRegistry&) {
  if (!ProjectionsOnly()) throw std::runtime_error("cannot reach the licence server");
}
rill::Status RegisterProjections(rill::ProjectionRegistry*) { throw 42; }
}  // namespace

RILL_PLUGIN_WITH_PROJECTIONS("throwing", Register, RegisterProjections)
