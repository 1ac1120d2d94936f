// DomainRegistry: the names the runtime knows. Maps an aggregate type name
// (= stream category) to its code, and holds the process managers. Domains
// register themselves explicitly (domains/domains.h), never through static
// initializers, so a static library never loses one at link time.
//
// Thread safety: register everything first, from one thread; from then on the
// registry is read-only and its const methods may be called from any thread
// (the actor runtime's shards do). Returned pointers live as long as the
// registry, unless a later Add replaces that name.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/aggregate.h"

namespace rill {

class ProcessManager;

class DomainRegistry {
 public:
  // Later registrations of the same name replace earlier ones.
  void Add(std::shared_ptr<const AggregateType> type);
  void AddProcessManager(std::shared_ptr<ProcessManager> manager);

  // The aggregate type named `aggregate`; null if none.
  const AggregateType* Find(std::string_view aggregate) const;
  // The aggregate owning `stream` ("account-42" -> account); null if none,
  // also for a name without '-' (an aggregate stream is <category>-<id>).
  const AggregateType* ForStream(std::string_view stream) const;
  // Aggregates that accept command `type` (usually one).
  std::vector<const AggregateType*> ForCommand(std::string_view type) const;

  std::vector<const AggregateType*> aggregates() const;  // by name
  const std::vector<std::shared_ptr<ProcessManager>>& process_managers() const { return managers_; }

  // The schema each known event type is declared at (highest wins if two
  // aggregates share a type name). Used by the upcaster engine.
  std::map<std::string, uint32_t> EventSchemas() const;

 private:
  std::map<std::string, std::shared_ptr<const AggregateType>, std::less<>> types_;
  std::vector<std::shared_ptr<ProcessManager>> managers_;
};

}  // namespace rill
