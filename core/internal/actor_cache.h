// ActorCache: the actors a shard holds in memory, and their passivation.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/internal/actor.h"
#include "core/internal/actor_index.h"
#include "core/internal/message.h"
#include "store/status.h"
#include "util/prefetch.h"

namespace rill::actors {

// A dropped actor whose commands are still in flight: its node (so those
// completions can still reach it) and the commands that wait for the reload.
struct Zombie {
  ActorMap::node_type node;
  Status cause;  // OK: dropped without a failure (DropAll)
  // Commands to run, in order, once the last in-flight one has completed
  // (retries first, then later arrivals).
  std::vector<Message> retry_held, parked;
};

// One shard's live actors: owned by an ActorMap, found through an
// ActorIndex, at most max_live of them kept (CLOCK, an LRU approximation
// whose bookkeeping on a hit is one bit in the actor itself: `referenced`).
// An actor dropped with commands in flight lives on as a Zombie until they
// have completed. Only the shard's thread uses it.
class ActorCache {
 public:
  explicit ActorCache(size_t max_live) : max_live_(std::max<size_t>(1, max_live)) {}

  size_t size() const { return actors_.size(); }  // live actors
  bool OverLimit() const { return actors_.size() > max_live_; }

  // The live actor of `stream` (hash: ActorIndex::Hash(stream)), or null.
  Actor* Find(std::string_view stream, uint64_t hash) const { return index_.Find(stream, hash); }
  // For prefetching ahead of a Find: see ActorIndex.
  void PrefetchSlot(uint64_t hash) const { index_.PrefetchSlot(hash); }
  const Actor* Peek(uint64_t hash) const { return index_.Peek(hash); }
  // Every cache line of the actor's map node that finding and running it
  // reads: its name (the key, just before the actor) and the actor.
  void PrefetchActor(const Actor* a) const {
    const char* first = reinterpret_cast<const char*>(a) - key_to_actor_;
    const char* last = reinterpret_cast<const char*>(a + 1) - 1;
    for (const char* p = first; p < last; p += 64) Prefetch(p);
    Prefetch(last);
  }

  // Adds a live actor of `stream`, which has none: load(actor) fills in its
  // state (Status); on an error the actor is gone again and that is the
  // result. May leave the cache over its limit: Passivate next.
  template <class Load>
  Result<Actor*> Add(const std::string& stream, uint64_t hash, const AggregateType* type, const Load& load) {
    auto [it, fresh] = actors_.try_emplace(stream);
    Actor& a = it->second;
    a.stream = &it->first;
    key_to_actor_ = reinterpret_cast<const char*>(&a) - reinterpret_cast<const char*>(&it->first);
    a.hash = hash;
    a.type = type;
    if (Status s = load(a); !s.ok()) {
      actors_.erase(it);
      return s;
    }
    index_.Insert(hash, &a);
    Track(a);
    return &a;
  }

  // Forgets the actor; its stream's next command reactivates it from the
  // store. With commands in flight (or while its completion is being
  // handled: `completing`) it becomes a zombie until they have completed.
  void Drop(Actor& actor, const Status& cause, bool completing);
  // Drops every live actor, without a failure (in-flight commands complete
  // normally).
  void DropAll();

  // Parks `m` (moves it out) if its stream's dropped actor still has
  // commands in flight, so that it runs after the retries, in arrival order.
  bool Park(Message& m) {
    if (zombies_.empty()) return false;
    auto it = zombies_.find(m.command.stream);
    if (it == zombies_.end()) return false;
    it->second.parked.push_back(std::move(m));
    return true;
  }
  // The zombie of `stream`, which has one.
  Zombie& ZombieOf(const std::string& stream) { return zombies_.at(stream); }
  // The dropped actor's last in-flight command completed: what waited for
  // it goes to the back of *ready (retries first) and the zombie goes.
  void Release(const std::string& stream, std::deque<Message>* ready);

  // Passivates idle actors not used since the clock hand last passed them
  // until at most max_live are live (or a bounded scan found none). `keep`
  // (the actor being activated) stays, as does every actor with commands in
  // flight. before(actor) runs for each just before it goes (a snapshot).
  void Passivate(const Actor* keep, const std::function<void(Actor&)>& before);

 private:
  bool Tracked(const Actor& a) const { return a.clock_index < clock_.size() && clock_[a.clock_index] == &a; }
  void Track(Actor& a) {
    a.clock_index = static_cast<uint32_t>(clock_.size());
    clock_.push_back(&a);
  }
  void Untrack(Actor& a);

  const size_t max_live_;
  ActorMap actors_;   // owns the live actors
  ActorIndex index_;  // finds them
  // Bytes from an ActorMap node's key to its actor (the same in every node).
  ptrdiff_t key_to_actor_ = 0;
  std::vector<Actor*> clock_;  // live actors, in no particular order
  size_t hand_ = 0;
  std::unordered_map<std::string, Zombie> zombies_;
};

}  // namespace rill::actors
