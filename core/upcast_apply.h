// Migrating stored events in place: what `rill upcast --dry-run|--apply` and
// `rill migrations list` do, as library calls (so benchmarks and applications
// can run them too).
//
// --apply rewrites each event that has steps to run, by position, with
// EventStore::RewriteEvents: type, schema, data and meta change; position,
// stream, version, id, time and request id stay. It goes through $all in
// position order, one durable transaction per batch, so:
//  - interrupted (SIGINT, kill -9, power loss), every batch is either fully
//    rewritten or untouched, and each event is at its old or its new schema;
//  - rerunning is idempotent: events already at their current schema have no
//    steps left and are skipped, so a rerun finishes the job and a second full
//    run rewrites nothing.
// Events whose next step splits or merges are not rewritten (see
// core/upcaster.h: splits and merges only happen on read), so positions and
// versions never move.
//
// Both calls read $all raw on the calling thread, where they also call the
// options' callbacks; writers may keep appending meanwhile (the walk ends at
// the first empty read, so their events are covered too). Errors, besides
// those listed per call: Interrupted (should_stop), the store's reads
// (Corruption, IOError), the upcaster's (Corruption naming the position, a
// C++ step's own error).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/upcaster.h"
#include "store/event_store.h"
#include "store/status.h"

namespace rill {

// Stored events of one (type, schema) that have steps to run.
struct UpcastGroup {
  std::string type;
  uint32_t schema = 0;
  std::string to_type;     // after the in-place chain
  uint32_t to_schema = 0;  // == schema when the first step splits
  uint64_t events = 0;
  bool split_on_read = false;  // the first step splits or merges: left as stored
  Event sample_before, sample_after;  // the first such event, raw and upcast
};

struct UpcastScan {
  uint64_t scanned = 0;    // user events looked at (system "$" events skipped)
  uint64_t to_change = 0;  // events --apply would rewrite
  std::vector<UpcastGroup> groups;       // sorted by (type, schema)
  std::vector<uint64_t> pending;         // per Upcaster::Migrations() entry:
                                         // stored events still below it
};

struct UpcastRunOptions {
  size_t batch_events = 10000;  // events read, and at most rewritten, per transaction
  // Called after each batch with (events read so far, the larger of the last
  // position at start and the position reached).
  std::function<void(uint64_t done, uint64_t total)> progress;
  // Polled between batches; true stops the run with Status::Interrupted.
  std::function<bool()> should_stop;
  // --apply only: called once, right before the first rewrite (the backup).
  std::function<Status()> before_first_rewrite;
};

struct UpcastApplyReport {
  uint64_t scanned = 0;
  uint64_t rewritten = 0;
  uint64_t batches = 0;  // rewrite transactions
};

// Reads every stored event raw and works out what --apply would do, and how
// many events each migration still has to handle. Changes nothing. On an
// error *scan holds what was counted up to it.
Status ScanUpcast(EventStore& store, const Upcaster& upcaster, const UpcastRunOptions& options, UpcastScan* scan);

// Rewrites stored events to their current schema (see above). Stopped or
// failed, *report says how far it got and every batch before stays
// rewritten (a rerun goes on from there). Errors
// besides the above: before_first_rewrite's (nothing rewritten yet);
// RewriteEvents' (NotFound, InvalidArgument: an upcast event it refuses, e.g.
// past max_event_bytes; IOError: that batch is not written).
Status ApplyUpcast(EventStore& store, const Upcaster& upcaster, const UpcastRunOptions& options,
                   UpcastApplyReport* report);

}  // namespace rill
