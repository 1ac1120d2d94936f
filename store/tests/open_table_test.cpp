// util/open_table.h and util/stable_vector.h: the open-addressing table the
// store's writer and indexer and the actor core's index are built on.
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "util/open_table.h"
#include "util/stable_vector.h"

namespace rill {
namespace {

// A table shaped like the store's: slots of {tag, index + 1} into entries a
// caller-owned vector holds, with the hash function chosen by the test (a
// constant one forces every key onto one probe chain).
class Names {
 public:
  explicit Names(std::function<uint64_t(const std::string&)> hash) : hash_(std::move(hash)) {}

  // The index of `name`, added if absent.
  uint32_t Add(const std::string& name) {
    uint64_t h = hash_(name);
    slots_.MakeRoom([&](const Slots::Slot& s) { return hash_(names_[s.ref - 1]); });
    Slots::Slot& s = slots_.FindOrEmpty(h, [&](const Slots::Slot& s) { return Match(s, h, name); });
    if (!s.empty()) return s.ref - 1;
    names_.push_back(name);
    slots_.Put(s, Tag(h), static_cast<uint32_t>(names_.size()));
    return static_cast<uint32_t>(names_.size() - 1);
  }
  // The index of `name`, or -1.
  int64_t Find(const std::string& name) const {
    uint64_t h = hash_(name);
    const Slots::Slot* s = slots_.Find(h, [&](const Slots::Slot& s) { return Match(s, h, name); });
    return s ? int64_t{s->ref} - 1 : -1;
  }
  bool Erase(const std::string& name) {
    uint64_t h = hash_(name);
    Slots::Slot* s = slots_.Find(h, [&](const Slots::Slot& s) { return Match(s, h, name); });
    if (!s) return false;
    slots_.Erase(*s, [&](const Slots::Slot& o) { return hash_(names_[o.ref - 1]); });
    return true;
  }
  void Clear() {
    slots_.Clear();
    names_.clear();
  }
  size_t size() const { return slots_.size(); }
  size_t slot_count() const { return slots_.slot_count(); }

 private:
  using Slots = OpenTable<uint32_t, uint32_t>;
  static uint32_t Tag(uint64_t h) { return static_cast<uint32_t>(h >> 32); }
  bool Match(const Slots::Slot& s, uint64_t h, const std::string& name) const {
    return s.tag == Tag(h) && names_[s.ref - 1] == name;
  }
  std::function<uint64_t(const std::string&)> hash_;
  Slots slots_;
  std::vector<std::string> names_;
};

uint64_t StdHash(const std::string& s) { return std::hash<std::string>{}(s); }
std::string Name(int i) { return "stream-" + std::to_string(i); }

BOOST_AUTO_TEST_SUITE(open_table)

BOOST_AUTO_TEST_CASE(empty_table_finds_nothing) {
  Names t(StdHash);
  BOOST_CHECK_EQUAL(t.Find("a"), -1);
  BOOST_CHECK(!t.Erase("a"));
  BOOST_CHECK_EQUAL(t.slot_count(), 0u);
  t.Clear();  // nothing to sweep, no slots
  BOOST_CHECK_EQUAL(t.size(), 0u);
}

BOOST_AUTO_TEST_CASE(insert_then_find) {
  Names t(StdHash);
  BOOST_CHECK_EQUAL(t.Add("a"), 0u);
  BOOST_CHECK_EQUAL(t.Add("b"), 1u);
  BOOST_CHECK_EQUAL(t.Add("a"), 0u);  // found, not added again
  BOOST_CHECK_EQUAL(t.size(), 2u);
  BOOST_CHECK_EQUAL(t.Find("a"), 0);
  BOOST_CHECK_EQUAL(t.Find("b"), 1);
  BOOST_CHECK_EQUAL(t.Find("c"), -1);
  BOOST_CHECK_EQUAL(t.slot_count(), (OpenTable<uint32_t, uint32_t>::kMinSlots));
}

BOOST_AUTO_TEST_CASE(grows_in_powers_of_two_at_most_half_full) {
  Names t(StdHash);
  size_t last = 0;
  int grew = 0;
  for (int i = 0; i < 20000; ++i) {
    BOOST_REQUIRE_EQUAL(t.Add(Name(i)), static_cast<uint32_t>(i));
    BOOST_REQUIRE_LE(t.size() * 2, t.slot_count());
    BOOST_REQUIRE_EQUAL(t.slot_count() & (t.slot_count() - 1), 0u);
    if (t.slot_count() != last) ++grew, last = t.slot_count();
  }
  BOOST_CHECK_GE(grew, 5);  // 1024 .. 65536
  BOOST_CHECK_EQUAL(t.slot_count(), 65536u);
  for (int i = 0; i < 20000; ++i) BOOST_REQUIRE_EQUAL(t.Find(Name(i)), i);
  BOOST_CHECK_EQUAL(t.Find(Name(20000)), -1);
}

BOOST_AUTO_TEST_CASE(clear_empties_and_keeps_working) {
  Names t(StdHash);
  for (int i = 0; i < 3000; ++i) t.Add(Name(i));
  size_t slots = t.slot_count();
  t.Clear();
  BOOST_CHECK_EQUAL(t.size(), 0u);
  BOOST_CHECK_EQUAL(t.slot_count(), slots);  // keeps its memory
  for (int i = 0; i < 3000; ++i) BOOST_REQUIRE_EQUAL(t.Find(Name(i)), -1);
  BOOST_CHECK_EQUAL(t.Add(Name(7)), 0u);
  BOOST_CHECK_EQUAL(t.Find(Name(7)), 0);
  BOOST_CHECK_EQUAL(t.Find(Name(8)), -1);
}

BOOST_AUTO_TEST_CASE(equal_hashes_share_one_chain) {
  Names t([](const std::string&) { return uint64_t{42}; });
  for (int i = 0; i < 1500; ++i) BOOST_REQUIRE_EQUAL(t.Add(Name(i)), static_cast<uint32_t>(i));  // grows once
  BOOST_CHECK_EQUAL(t.slot_count(), 4096u);
  for (int i = 0; i < 1500; ++i) BOOST_REQUIRE_EQUAL(t.Find(Name(i)), i);
  BOOST_CHECK_EQUAL(t.Find("other"), -1);
}

BOOST_AUTO_TEST_CASE(erase_keeps_every_chain_whole) {
  // Two hashes whose chains run into each other, across the end of the
  // array: erasing from the middle must pull later entries back, not cut
  // their chains short.
  auto hash = [](const std::string& s) -> uint64_t { return s[0] == 'x' ? 1022 : 1023; };
  Names t(hash);
  std::vector<std::string> names;
  for (int i = 0; i < 6; ++i) names.push_back("x" + std::to_string(i)), names.push_back("y" + std::to_string(i));
  for (const auto& n : names) t.Add(n);
  for (size_t k = 0; k < names.size(); k += 3) {
    BOOST_REQUIRE(t.Erase(names[k]));
    BOOST_REQUIRE(!t.Erase(names[k]));
  }
  for (size_t k = 0; k < names.size(); ++k) {
    if (k % 3 == 0) BOOST_CHECK_EQUAL(t.Find(names[k]), -1);
    else BOOST_CHECK_EQUAL(t.Find(names[k]), static_cast<int64_t>(k));
  }
  BOOST_CHECK_EQUAL(t.size(), names.size() - 4);
  for (size_t k = 1; k < names.size(); k += 3) BOOST_REQUIRE(t.Erase(names[k]));
  for (size_t k = 2; k < names.size(); k += 3) BOOST_REQUIRE(t.Erase(names[k]));
  BOOST_CHECK_EQUAL(t.size(), 0u);
  for (const auto& n : names) BOOST_CHECK_EQUAL(t.Find(n), -1);
}

BOOST_AUTO_TEST_CASE(erase_many_random_then_reinsert) {
  Names t(StdHash);
  for (int i = 0; i < 5000; ++i) t.Add(Name(i));
  for (int i = 0; i < 5000; i += 2) BOOST_REQUIRE(t.Erase(Name(i)));
  for (int i = 0; i < 5000; ++i) BOOST_REQUIRE_EQUAL(t.Find(Name(i)), i % 2 ? i : -1);
  BOOST_CHECK_EQUAL(t.size(), 2500u);
}

// Pointer refs into entries another container owns, as the actor index has:
// growth moves the slots, never the entries, so every ref still reaches the
// entry it was put with.
BOOST_AUTO_TEST_CASE(pointer_refs_survive_growth) {
  StableVector<std::string, 64> owned;
  OpenTable<uint64_t, const std::string*> t;
  auto hash_of = [](const OpenTable<uint64_t, const std::string*>::Slot& s) { return s.tag; };
  std::vector<const std::string*> added;
  for (int i = 0; i < 4000; ++i) {
    std::string& s = owned.Append();
    s = Name(i);
    uint64_t h = StdHash(s);
    t.MakeRoom(hash_of);
    t.Put(t.FindOrEmpty(h, [](const auto&) { return false; }), h, &s);
    added.push_back(&s);
  }
  for (int i = 0; i < 4000; ++i) {
    std::string n = Name(i);
    uint64_t h = StdHash(n);
    const auto* s = t.Find(h, [&](const auto& s) { return s.tag == h && *s.ref == n; });
    BOOST_REQUIRE(s);
    BOOST_REQUIRE_EQUAL(s->ref, added[i]);
    BOOST_REQUIRE_EQUAL(&owned[i], added[i]);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(stable_vector)

BOOST_AUTO_TEST_CASE(elements_never_move) {
  StableVector<std::string, 16> v;
  std::vector<std::string*> where;
  for (int i = 0; i < 1000; ++i) {
    std::string& s = v.Append();
    BOOST_REQUIRE(s.empty());  // fresh
    s = Name(i);
    where.push_back(&s);
  }
  BOOST_CHECK_EQUAL(v.size(), 1000u);
  for (int i = 0; i < 1000; ++i) {
    BOOST_REQUIRE_EQUAL(&v[i], where[i]);
    BOOST_REQUIRE_EQUAL(v[i], Name(i));
  }
}

BOOST_AUTO_TEST_CASE(clear_starts_fresh) {
  StableVector<int, 4> v;
  for (int i = 0; i < 10; ++i) v.Append() = i + 1;
  v.clear();
  BOOST_CHECK_EQUAL(v.size(), 0u);
  for (int i = 0; i < 10; ++i) BOOST_REQUIRE_EQUAL(v.Append(), 0);  // value-initialized, not the old values
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace rill
