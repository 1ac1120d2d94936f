// ActorIndex: a shard's lookup from stream to live actor.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "core/internal/actor.h"
#include "util/open_table.h"

namespace rill::actors {

// In front of the ActorMap that owns the live actors (see ActorCache): an
// OpenTable of 16-byte slots (the name's hash and the actor), deletion by
// backward shift (no tombstones). Finding an actor touches one slot and the
// actor's own node; the map's bucket, node chain and cached hash cost three
// dependent cache misses per command at millions of actors (a third of the
// shard's time in the flash sale). Every live actor in the map is here, and
// nothing else.
class ActorIndex {
 public:
  static uint64_t Hash(std::string_view stream) { return std::hash<std::string_view>{}(stream); }
  Actor* Find(std::string_view stream, uint64_t hash) const {
    const Slots::Slot* s =
        slots_.Find(hash, [&](const Slots::Slot& s) { return s.tag == hash && *s.ref->stream == stream; });
    return s ? s->ref : nullptr;
  }
  // Starts loading the slot where the search for `hash` begins.
  void PrefetchSlot(uint64_t hash) const { slots_.PrefetchHome(hash); }
  // The actor whose name has this hash, judged by the hash alone (the name
  // is not compared, so nothing outside the slots is read): for prefetching
  // only. Null if none.
  const Actor* Peek(uint64_t hash) const {
    const Slots::Slot* s = slots_.Find(hash, [&](const Slots::Slot& s) { return s.tag == hash; });
    return s ? s->ref : nullptr;
  }
  void Insert(uint64_t hash, Actor* actor) {
    slots_.MakeRoom(HashOf);
    slots_.Put(slots_.FindOrEmpty(hash, [](const Slots::Slot&) { return false; }), hash, actor);
  }
  void Erase(uint64_t hash, const Actor* actor) {
    if (Slots::Slot* s = slots_.Find(hash, [&](const Slots::Slot& s) { return s.ref == actor; }))
      slots_.Erase(*s, HashOf);
  }

 private:
  using Slots = OpenTable<uint64_t, Actor*>;  // the name's hash, the actor
  static uint64_t HashOf(const Slots::Slot& s) { return s.tag; }
  Slots slots_;
};

}  // namespace rill::actors
