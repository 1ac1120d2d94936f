// A plugin from a future rill: its ABI version is not this rill's, so the
// loader must refuse it before touching anything else in the struct.
#include "core/plugin.h"

extern "C" __attribute__((visibility("default"))) const RillPlugin* rill_plugin() {
  static const RillPlugin plugin = {RILL_PLUGIN_ABI_VERSION + 41, RILL_VERSION, "future", nullptr, nullptr};
  return &plugin;
}
