// Snapshot maintenance: checking stored snapshots against the events they
// summarise, and rebuilding them from the events. Snapshots are derived
// data (index/): a wrong one makes an actor start from a wrong state, so
// the operator can verify each against a full replay of its stream up to
// the snapshot's version, and rebuild them (`rill snapshot verify|rebuild`).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/actor_runtime.h"
#include "core/domain_registry.h"
#include "store/event_store.h"
#include "store/status.h"

namespace rill {

// One stream, every stream of a category, or every stream.
struct SnapshotSelection {
  std::string stream{};
  std::string category{};
  bool all = false;
  bool Contains(std::string_view name) const;
};

// The snapshots stored for the selection, in stream order. NotFound "no
// snapshot for stream S" when the selection is one stream without one.
Result<std::vector<std::pair<std::string, Snapshot>>> SelectedSnapshots(EventStore& store,
                                                                         const SnapshotSelection& selection);

// What is wrong with `snapshot` of `stream`, in one line for the operator;
// "" when it is the state a replay of the stream's events up to its version
// gives (compared as JSON values, not texts).
std::string SnapshotProblem(EventStore& store, const DomainRegistry& registry, const std::string& stream,
                            const Snapshot& snapshot);

// The streams a rebuild of the selection writes: the one stream selected,
// else every stream of the selection with events, not deleted, that an
// aggregate owns.
Result<std::vector<std::string>> StreamsToSnapshot(EventStore& store, const DomainRegistry& registry,
                                                   const SnapshotSelection& selection);

struct RebuiltSnapshot {
  StateView live;                // what `runtime` held: the previous snapshot + events
  StateView replayed;            // from the events alone: what was stored
  uint32_t state_schema = 1;
  bool previous_differed = false;  // live != replayed: the previous snapshot was wrong
};
// Replays `stream` from its events and stores the result as its snapshot.
// `runtime` (over `store` and `registry`) shows the live state the rebuilt
// one is compared with. NotFound when no aggregate owns the stream.
Result<RebuiltSnapshot> RebuildSnapshot(EventStore& store, ActorRuntime& runtime, const DomainRegistry& registry,
                                        const std::string& stream);

}  // namespace rill
