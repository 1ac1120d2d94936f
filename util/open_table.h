// OpenTable: the slots of an open-addressing hash table.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "util/prefetch.h"

namespace rill {

// A power-of-two array of slots, at most half full, probed linearly from
// hash & mask. Each slot holds a Tag (what the user compares before it looks
// at an entry: a piece of the hash, the whole hash, a key) and a Ref to the
// entry (an index + 1, or a pointer: Ref{} marks an empty slot). The entries
// themselves are not here: the user keeps them (in a vector, in chunks that
// never move, in another map's nodes) and says how to match and rehash them.
// So a lookup touches a slot, then the one entry its tag picks, and a user
// can start loading both well before it looks (PrefetchHome, then Find by
// tag alone): a node-based map's bucket, node and cached hash were a chain
// of dependent cache misses per lookup.
//
// Growing moves slots, never entries: a Ref (and what it points to) stays
// valid across growth. Slot pointers do not: a Slot* is good until the next
// MakeRoom or Erase.
template <class Tag, class Ref>
class OpenTable {
 public:
  struct Slot {
    Tag tag{};
    Ref ref{};
    bool empty() const { return ref == Ref{}; }
  };
  static constexpr size_t kMinSlots = 1024;

  size_t size() const { return size_; }  // filled slots
  size_t slot_count() const { return slots_.size(); }

  // Starts loading the slot where the probe for `hash` begins.
  void PrefetchHome(uint64_t hash) const {
    if (!slots_.empty()) Prefetch(&slots_[hash & mask_]);
  }

  // The first filled slot on `hash`'s probe chain that match(slot) accepts;
  // null when the chain ends (an empty slot) first, or there are no slots.
  template <class Match>
  const Slot* Find(uint64_t hash, const Match& match) const {
    if (slots_.empty()) return nullptr;
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.empty()) return nullptr;
      if (match(s)) return &s;
    }
  }
  template <class Match>
  Slot* Find(uint64_t hash, const Match& match) {
    return const_cast<Slot*>(static_cast<const OpenTable*>(this)->Find(hash, match));
  }

  // Makes room for one more entry: when it would fill more than half the
  // slots, doubles them (at least kMinSlots) and places every entry again by
  // hash_of(slot), the hash it was placed by.
  template <class HashOf>
  void MakeRoom(const HashOf& hash_of) {
    if ((size_ + 1) * 2 > slots_.size()) Grow(hash_of);
  }

  // After MakeRoom: the first filled slot on `hash`'s chain that match
  // accepts, or else the empty slot that ends the chain (fill it with Put).
  template <class Match>
  Slot& FindOrEmpty(uint64_t hash, const Match& match) {
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.empty() || match(s)) return s;
    }
  }
  // Fills the empty slot FindOrEmpty returned.
  void Put(Slot& empty, Tag tag, Ref ref) {
    empty = Slot{tag, ref};
    ++size_;
  }

  // Empties a filled slot by backward shift: each later entry of its run
  // that may sit in the hole moves into it, so no probe chain is cut short
  // and no tombstones build up. hash_of(slot) as for MakeRoom.
  template <class HashOf>
  void Erase(Slot& slot, const HashOf& hash_of) {
    size_t i = static_cast<size_t>(&slot - slots_.data());
    for (size_t j = (i + 1) & mask_; !slots_[j].empty(); j = (j + 1) & mask_) {
      size_t home = hash_of(slots_[j]) & mask_;
      if (((j - home) & mask_) >= ((j - i) & mask_)) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = Slot{};
    --size_;
  }

  // Empties every slot and keeps the array. An empty table skips the sweep:
  // a table reused per batch may be large and mostly unused.
  void Clear() {
    if (size_) std::fill(slots_.begin(), slots_.end(), Slot{});
    size_ = 0;
  }

 private:
  template <class HashOf>
  void Grow(const HashOf& hash_of) {
    std::vector<Slot> old(std::max<size_t>(kMinSlots, slots_.size() * 2));
    old.swap(slots_);
    mask_ = slots_.size() - 1;
    for (const Slot& o : old) {
      if (o.empty()) continue;
      size_t i = hash_of(o) & mask_;
      while (!slots_[i].empty()) i = (i + 1) & mask_;
      slots_[i] = o;
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0, size_ = 0;
};

}  // namespace rill
