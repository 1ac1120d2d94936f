// The rule for raw appends (`rill append`, `rill import --append`): an
// aggregate's state is a function of its stream's events as its domain reads
// them, so an event appended to a stream a registered aggregate owns must be
// one that aggregate evolves, and must evolve cleanly onto the stream's state
// as it will be by then. Anything else would leave the aggregate unable to
// activate (every later command failing) with nothing to say why. Surgery is
// possible, but only asked for (force) and recorded in the event's meta.
// Streams no aggregate owns ("audit-1") take anything.
//
// Thread safety: a guard caches the streams it has loaded; use it from one
// thread. It assumes every request it admitted is then appended: after a
// failed append, make a new guard (its cache is ahead of the store).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/aggregate.h"
#include "core/domain_registry.h"
#include "store/event.h"
#include "store/event_store.h"
#include "store/status.h"

namespace rill {

// The meta key a forced event carries; its value says who forced it.
inline constexpr const char* kForcedByMetaKey = "$forced_by";

class AppendGuard {
 public:
  struct Options {
    bool force = false;
    // Written as the forced events' meta "$forced_by" ("rill append --force").
    std::string forced_by;
    // How the refusal says surgery is asked for ("--force").
    std::string force_hint = "--force";
  };
  // `store` and `registry` must outlive the guard.
  AppendGuard(EventStore& store, const DomainRegistry& registry, Options options);

  // Checks the request's events in order, after every event admitted before
  // (so a batch is checked as it will be stored: each touched stream's
  // state is loaded once, then evolved). InvalidArgument naming the stream,
  // version, type and reason for an event the owning aggregate cannot take
  // (not an event it evolves, a schema newer than the aggregate's, data its
  // evolve cannot read, an upcaster failing on it, or a stream whose stored
  // events already cannot be activated); with force, such events get
  // "$forced_by" in their meta and *forced is set instead. A request whose
  // expected version does not hold is admitted unchecked (the store answers
  // it with Conflict). Loading a stream's state: the store's IOError or
  // Corruption, returned as is.
  Status Admit(AppendRequest* request, bool* forced = nullptr);

  // Events forced in so far by this guard.
  uint64_t forced() const { return forced_; }

 private:
  struct Stream {
    const AggregateType* type = nullptr;
    std::unique_ptr<AnyState> state;
    uint64_t version = 0;
    Status broken;  // it cannot be activated as stored
  };
  Result<Stream*> Load(const std::string& stream, const AggregateType* type);
  Status Evolve(Stream& s, const std::string& stream, const NewEvent& e);

  EventStore& store_;
  const DomainRegistry& registry_;
  Options options_;
  std::unordered_map<std::string, Stream> streams_;
  uint64_t forced_ = 0;
};

// `meta` (a JSON object text) with "$forced_by": `by` set, replacing any
// earlier one. Meta that is not a JSON object is replaced by {"$forced_by": by}.
std::string MarkForced(std::string_view meta, std::string_view by);

}  // namespace rill
