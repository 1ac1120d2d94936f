// State of one stream rebuilt from the store, outside the actor runtime:
// time travel (`rill state --at`, `rill diff`) and snapshot verification.
#include <fmt/format.h>

#include "core/actor_runtime.h"

namespace rill {

Result<StateView> ReplayState(EventStore& store, const DomainRegistry& registry, const std::string& stream,
                              const ReplayOptions& options) {
  const AggregateType* type = registry.ForStream(stream);
  if (!type) return Status::NotFound(fmt::format("no aggregate type owns stream {}", stream));
  StateView view;
  view.stream = stream;
  view.aggregate = type->name();
  auto state = type->NewState();
  uint64_t version = 0;
  if (options.use_snapshot && options.until_time_us == 0) {
    auto snap = store.GetSnapshot(stream);
    if (snap.ok() && snap->state_schema == type->state_schema() &&
        (options.until_version == 0 || snap->version <= options.until_version)) {
      auto s = type->NewState();
      if (type->StateFromJson(snap->state, *s).ok()) {
        state = std::move(s);
        version = snap->version;
      }
    }
  }
  constexpr size_t kChunk = 4096;
  std::vector<Event> events;
  bool done = false;
  while (!done) {
    events.clear();
    Status s = store.ReadStream(stream, Direction::kForward, version + 1, kChunk, &events,
                               EventStore::ReadOptions{.all_versions = true});
    if (s.IsNotFound() && version == 0) return Status::NotFound(fmt::format("stream {} not found", stream));
    if (s.IsNotFound()) break;
    RILL_RETURN_IF_ERROR(s);
    const uint64_t after = version;  // parts of a split event share its version
    for (const Event& e : events) {
      if (e.version <= after) continue;
      if ((options.until_version && e.version > options.until_version) ||
          (options.until_time_us && e.time_us > options.until_time_us)) {
        done = true;
        break;
      }
      RILL_RETURN_IF_ERROR(
          type->Apply(*state, e.type, e.data).WithContext(fmt::format("{} version {}", stream, e.version)));
      version = e.version;
    }
    if (events.size() < kChunk) break;
  }
  view.version = version;
  view.state = type->StateToJson(*state);
  return view;
}

}  // namespace rill
