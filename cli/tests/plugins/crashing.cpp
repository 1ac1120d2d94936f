// A plugin that crashes as it registers (a SIGSEGV no loader can catch): the
// commands that read only what is stored (check, backup, stats, streams,
// export --raw) must not load it at all.
#include <csignal>

#include "core/plugin.h"

namespace {
void Register(rill::DomainRegistry&) { std::raise(SIGSEGV); }
}  // namespace

RILL_PLUGIN("crashing", Register)
