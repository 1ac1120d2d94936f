// The steps an Upcaster holds: one per (type, from), from a migration file
// (core/migration_file.cpp) or C++ (Upcaster::Register), indexed for the
// lookups every read makes. Loading fills it (core/upcaster.cpp); the chain
// (core/upcast_chain.cpp) runs its steps.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/internal/upcast_ops.h"
#include "core/upcaster.h"
#include "store/status.h"

namespace rill {
namespace upcast {

// One step (type, schema from) -> schema to.
struct Step {
  std::string event;
  uint32_t from = 0, to = 0;
  std::vector<Op> ops;  // declarative
  UpcastFn fn;          // or C++
  bool splits = false;
  std::string retype;
  std::string merge_into;  // a file "merge" step: the partner's type
  std::vector<std::pair<std::string, uint32_t>> produces;  // split parts' (type, schema)
  std::string source;
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Every step of one Upcaster, indexed for the lookups every read makes.
struct StepIndex {
  std::vector<Step> steps;  // sorted by (event, from)
  std::unordered_map<std::string, std::map<uint32_t, size_t>, StringHash, std::equal_to<>> by_type;
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> current;
  std::set<std::string, std::less<>> partners;  // types some "merge" step folds into

  // InvalidArgument naming both sources when (event, from) already has a step.
  Status Add(Step step);

  // Inline: every read of an event asks it.
  const Step* FindStep(std::string_view type, uint32_t schema, size_t* index = nullptr) const {
    auto t = by_type.find(type);
    if (t == by_type.end()) return nullptr;
    auto s = t->second.find(schema);
    if (s == t->second.end()) return nullptr;
    if (index) *index = s->second;
    return &steps[s->second];
  }
};

}  // namespace upcast

struct Upcaster::Impl : upcast::StepIndex {};

}  // namespace rill
