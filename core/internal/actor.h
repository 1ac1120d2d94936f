// Actor: one live aggregate of a shard, and the map that owns them.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "core/aggregate.h"

namespace rill::actors {

// It is the mapped value of its entry in the shard's actor map (key: the
// stream), so an actor costs one allocation for map node and actor
// together, plus its state; the node moves to the zombie map when the actor
// is dropped with commands in flight, and keeps its address. Measured: ~180
// bytes per live actor with a small state (see docs/actor-core.md).
struct Actor {
  const std::string* stream = nullptr;  // the key of its map entry
  uint64_t hash = 0;                    // ActorIndex::Hash(*stream)
  const AggregateType* type = nullptr;
  std::unique_ptr<AnyState> state;
  uint64_t version = 0;           // includes events still in flight
  uint64_t last_position = 0;     // of the last durable event
  uint64_t snapshot_version = 0;  // version of the last snapshot written or read
  uint32_t in_flight = 0;
  uint32_t clock_index = 0;  // position in ActorCache's clock while live
  bool referenced = true;    // CLOCK bit: used since the hand last passed it
  bool dropped = false;
  // Set by the store's writer when one of this actor's pipelined appends was
  // not written: the appends queued after it fail too (they were decided on
  // its state). A reloaded actor is a new Actor with a clear flag. Held
  // (from the shard's FlagPool) only while commands are in flight: the
  // writer reads it for every append, and in a small pool it is a cache hit
  // there instead of a miss on a line of the actor that the shard writes.
  std::atomic<bool>* pipeline_failed = nullptr;
};

using ActorMap = std::unordered_map<std::string, Actor>;

}  // namespace rill::actors
