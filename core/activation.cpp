#include "core/activation.h"

#include <fmt/format.h>

#include <vector>

namespace rill {

Status ActivateState(EventStore& store, const AggregateType& type, const std::string& stream, ActivatedState* out) {
  ActivatedState& a = *out;
  a.state = type.NewState();
  a.version = a.snapshot_version = a.last_position = a.failed_version = 0;
  // One head lookup first: it answers a new stream (the common cold
  // activation: the command that creates the aggregate) by itself, and
  // tells whether a snapshot is already the whole story.
  auto head = store.GetStream(stream);
  if (head.status().IsNotFound()) return Status::OK();
  if (!head.ok()) return head.status().WithContext("cannot activate " + stream);
  if (head->deleted || head->head_version == 0) return Status::OK();
  auto snap = store.GetSnapshot(stream);
  if (snap.ok() && snap->state_schema == type.state_schema() && snap->version <= head->head_version) {
    auto state = type.NewState();
    if (type.StateFromJson(snap->state, *state).ok()) {
      a.state = std::move(state);
      a.version = a.snapshot_version = snap->version;
    }
  }
  if (a.version == head->head_version) {
    a.last_position = head->head_position;
    return Status::OK();
  }
  std::vector<Event> events;
  for (;;) {
    events.clear();
    Status s = store.ReadStream(stream, Direction::kForward, a.version + 1, 4096, &events,
                                EventStore::ReadOptions{.all_versions = true});
    if (s.IsNotFound()) {
      if (a.version > 0) {  // a snapshot of a stream that is gone (deleted): start empty
        a.state = type.NewState();
        a.version = a.snapshot_version = 0;
      }
      break;
    }
    if (!s.ok()) return s.WithContext("cannot activate " + stream);
    // Parts of a split event share its version: skip by the version this
    // read started after, not by the last applied one.
    const uint64_t after = a.version;
    for (const Event& e : events) {
      if (e.version <= after) continue;
      Status as = type.Apply(*a.state, e.type, e.data);
      if (!as.ok()) a.failed_version = e.version;
      if (!as.ok()) return as.WithContext(fmt::format("cannot activate {}: event version {}", stream, e.version));
      a.version = e.version;
      a.last_position = e.position;
    }
    if (events.size() < 4096) break;
  }
  if (a.last_position == 0 && a.version > 0) a.last_position = head->head_position;
  return Status::OK();
}

}  // namespace rill
