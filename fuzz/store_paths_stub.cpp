// The two store-directory paths that upcaster.cpp and projection.cpp name
// (their definitions live in store/event_store.cpp with the whole store):
// the same one-liners, so the parser targets need not compile the store.
#include "store/event_store.h"

namespace rill {
std::string ReadModelDir(const std::string& d) { return d + "/readmodels"; }
std::string MigrationsDir(const std::string& d) { return d + "/migrations"; }
}  // namespace rill
