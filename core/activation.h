// The state of one aggregate stream loaded from the store: what the actor
// runtime does when it activates an actor, as a function, so every other
// place that needs "what the aggregate is now" (the append guard, `rill
// check --domains`) reads it the same way.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/aggregate.h"
#include "store/event_store.h"
#include "store/status.h"

namespace rill {

struct ActivatedState {
  std::unique_ptr<AnyState> state;
  uint64_t version = 0;           // 0: no events (new, or deleted)
  uint64_t snapshot_version = 0;  // the snapshot it started from; 0: none
  uint64_t last_position = 0;     // position of the event at `version`
  uint64_t failed_version = 0;    // the event evolve could not read, on failure
};

// The usable snapshot (right state schema, not past the head) plus every
// event after it, upcast, whatever the stream's metadata hides from readers.
// A missing or deleted stream is new (OK, version 0). A snapshot that cannot
// be read or parsed is ignored (derived data: the events say the same).
// Only reads the store, on the calling thread: callable from any thread.
// Errors: InvalidArgument (an event evolve cannot read: "cannot activate
// <stream>: event version N: <reason>", with out->failed_version = N and
// out->state as evolved so far); the store's read errors (IOError,
// Corruption, an upcaster's), in context.
Status ActivateState(EventStore& store, const AggregateType& type, const std::string& stream, ActivatedState* out);

}  // namespace rill
