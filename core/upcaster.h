// Upcaster: turns stored events of an older schema into the current schema of
// their type, on the JSON form, so code only ever handles the newest shape
// (docs/design.md, "Upcasting"). Events are immutable history; their meaning moves
// forward by chains of small steps: (type, schema n) -> (type', schema n+1).
//
// Steps come from two places:
//
//  1. Migration files, one step each: migrations/<domain>/NNNN-name.json
//     (shipped with rill, compiled into the library: the binary upcasts the
//     same way wherever it is run from) and <db>/migrations/*.json (added by
//     operators, read at every open). Format:
//
//       {"event": "AccountOpened", "from": 1, "to": 2,
//        "ops": [{"op": "rename",  "from": "owner", "to": "owner.name"},
//                {"op": "default", "path": "currency", "value": "EUR"}]}
//
//     "to" must be "from" + 1. Paths are dotted ("a.b.c"; object members
//     only). Operations run in order on the event's data object; each is
//     defined at its entry in the op table, core/upcast_ops.cpp (for users:
//     docs/upcasting.md, man/rill-migrations.1). A value an op cannot handle
//     is an error on read, never a silent misread. "retype" changes the
//     event's type; the chain goes on with the steps of the new type. Two ops
//     change how many events one stored event reads as:
//       split   {parts: [{type?, schema?, ops?}, ...]}
//                                 (last op; 2+ parts; no retype in the same
//                                 file) the event reads as several: each part
//                                 starts from a copy of the data as the ops
//                                 before left it, runs its own `ops` (any op
//                                 but split, merge, retype), and leaves this
//                                 step as `type` (default: the event's) at
//                                 `schema` (default: `to` for the event's own
//                                 type, 1 for another); each part then goes on
//                                 with its own type's chain
//       merge   {into, as?}       (last op; no retype in the same file) the
//                                 event (B) is folded into its partner: the
//                                 stored event right before it in its stream
//                                 (version - 1) when that reads, on its own,
//                                 as one event of type `into` that does not
//                                 itself merge. The pair then reads as ONE
//                                 event at B's position and version (B's id,
//                                 time, meta): type and schema of the partner,
//                                 data = the partner's with B's data (after
//                                 the ops before the merge) put at path `as`,
//                                 or, without `as`, B's members copied over
//                                 the partner's top-level members; the partner
//                                 reads as nothing. Unpaired (first version,
//                                 other type before it, a split partner), B
//                                 reads on its own: type B, schema `to`, the
//                                 ops before the merge applied. Merges look at
//                                 stored history only, so they are stable once
//                                 no code writes B at its old schema (a B
//                                 appended later still merges with the event
//                                 before it; a consumer that already saw that
//                                 event alone then sees the merged one too).
//
//  2. C++ upcasters registered in code (Upcaster::Register, or
//     AddCodeUpcaster before InstallUpcasters) for what a file cannot say; a
//     C++ step may split too (not merge).
//
// Current schema of a type = the highest `to` reached by any step that
// produces that type (1 when no step does). The domain must write new events
// at that schema.
//
// Splits, merges and gapless positions/versions: splits and merges happen
// only on read, never in the log. The parts of a split keep the original's
// position, version, time and request id, carry Event::part 0..n-1 of
// Event::parts, and get ids derived from the original id (part 0 keeps it).
// `rill upcast --apply` rewrites an event only up to the step before its
// first split or merge, so stored positions and versions never move and the
// parts/pairs still come out on read. With any split or merge step loaded,
// InstallUpcasters sets the store's one-to-many hook
// (StoreOptions::read_expand, i.e. Expand()), so every read path (show, log,
// export, activation, projections, sagas) sees the parts and merged events;
// otherwise the cheaper one-to-one read_transform (UpcastInPlace()).
//
// Loading is strict: a malformed file is rejected with "file:line: reason"
// (bad JSON, unknown or missing key, wrong value type, to != from + 1,
// unknown op, bad op argument), and two steps for the same (type, from) are
// an error naming both sources.
//
// Thread safety: loading is single-threaded; once loaded, every const method
// may be called from any thread at once (the store's read hook runs on every
// reading thread). A C++ step (UpcastFn) runs on those threads too: it must
// be thread-safe and must not throw.
//
// Errors: loading returns InvalidArgument ("file:line: reason", a duplicate
// step) or IOError (a file or directory that cannot be read); upcasting
// returns Corruption naming the event's position (stored data that is not a
// JSON object or nests too deep, a value an op cannot handle, a split that
// loops) or a C++ step's own Status, in context.
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/event.h"
#include "store/event_store.h"
#include "store/status.h"

namespace rill {

// What a C++ upcaster step sees and changes.
struct UpcastEvent {
  std::string type;
  uint32_t schema = 1;
  rapidjson::Document data;  // a JSON object
};

// A C++ step from schema `from` to `to`. It changes `event` in place (type and
// data; the engine sets the schema). To split, it appends further parts to
// `extra_parts` (each with its own type and schema); `event` stays part 0.
using UpcastFn = std::function<Status(UpcastEvent& event, std::vector<UpcastEvent>* extra_parts)>;

// One step, as listed by `rill migrations list`.
struct MigrationInfo {
  std::string event;   // the type it applies to
  uint32_t from = 0;
  uint32_t to = 0;
  std::string retype;  // the type it produces, "" when unchanged
  std::string source;  // file path, "migrations/bank/0001-x.json", or "c++:<name>"
  bool splits = false; // may split; applied on read only
  std::string merge_into;  // a merge step: the partner's type; applied on read only
};

class Upcaster {
 public:
  Upcaster();
  ~Upcaster();
  Upcaster(const Upcaster&) = delete;
  Upcaster& operator=(const Upcaster&) = delete;

  // ---- Loading -------------------------------------------------------------
  // One migration file's text; `source` names it in errors and listings.
  // InvalidArgument for a malformed file or a step already defined for its
  // (type, from); the upcaster is unchanged then.
  Status LoadJson(std::string_view text, const std::string& source);
  // LoadJson of the file's text; IOError if it cannot be read.
  Status LoadFile(const std::string& path);
  // Every *.json regular file in `dir`, in name order; stops at the first
  // that fails (those before it stay loaded). A missing directory holds none
  // (OK); InvalidArgument if `dir` is not a directory; IOError if it cannot
  // be listed.
  Status LoadDirectory(const std::string& dir);
  // The migrations compiled in from migrations/<domain>/.
  Status LoadShipped();
  // A C++ step. `splits` must be true for a step that may add parts.
  // InvalidArgument (source "c++:<name>"): a bad type name, from < 1, to !=
  // from + 1, no function, a step already defined for (event, from).
  Status Register(const std::string& event, uint32_t from, uint32_t to, UpcastFn fn,
                  const std::string& name, bool splits = false);

  // ---- Questions -------------------------------------------------------------
  bool empty() const;
  // See "Current schema" above: 1 for a type no step produces.
  uint32_t CurrentSchema(std::string_view type) const;
  // True when some step applies to (type, schema).
  bool NeedsUpcast(std::string_view type, uint32_t schema) const;
  // Every step, sorted by (event, from).
  std::vector<MigrationInfo> Migrations() const;
  // Indexes into Migrations() of the steps an event at (type, schema) goes
  // through on read, in order.
  std::vector<size_t> ChainOf(std::string_view type, uint32_t schema) const;

  // ---- Upcasting -------------------------------------------------------------
  // Upcasts `event` in place up to its current schema, or up to the step
  // before the first split or merge. What the one-to-one read hook and
  // --apply use. Corruption (naming the event's position) when data is not a
  // JSON object or a step fails; a C++ step's own error in context. An event
  // with nothing to do is left untouched; on an error `event` is too.
  Status UpcastInPlace(Event& event) const;
  // The event on its own, its whole chain, splits included (a merge step
  // leaves it unpaired): appends one or more events (part/parts set) to *out.
  // Errors as UpcastInPlace; *out gets nothing then.
  Status Upcast(const Event& event, std::vector<Event>* out) const;
  // What a read shows for one stored event: Upcast() plus merges, reading the
  // neighbours of merge partners through `read_stored`. Appends zero (folded
  // into the next event), one or more events. The store's read_expand hook.
  // Errors: Upcast's (for the event or a neighbour), and read_stored's other
  // than NotFound (no neighbour: the event reads unpaired).
  Status Expand(Event&& event, const StoreOptions::StoredEventReader& read_stored, std::vector<Event>* out) const;
  // True when some step splits or merges (the read hook must be read_expand).
  bool ExpandsOnRead() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// C++ upcasters that domains register for every Upcaster that
// InstallUpcasters/LoadUpcasters builds. Call before opening stores (e.g. from
// the domain's registration function); not thread-safe with loading. Not
// checked here: a bad step fails every later LoadUpcasters (Register's errors).
void AddCodeUpcaster(const std::string& event, uint32_t from, uint32_t to, UpcastFn fn,
                     const std::string& name, bool splits = false);

// Shipped + code + <store_dir>/migrations (store_dir "": none) +
// `extra_migrations_dir` (if not empty). Errors name the offending file and
// line: InvalidArgument, IOError as for LoadDirectory; NotFound when
// extra_migrations_dir is not a directory.
Result<std::shared_ptr<const Upcaster>> LoadUpcasters(const std::string& store_dir,
                                                      const std::string& extra_migrations_dir = "");

// Loads as LoadUpcasters does (its errors; *options unchanged then) and
// installs the result as InstallUpcaster does.
Status InstallUpcasters(StoreOptions* options, const std::string& store_dir,
                        const std::string& extra_migrations_dir = "");
// Sets the read hook for an upcaster already loaded, so every non-raw read
// of that store sees events at their current schema: read_expand when some
// step splits or merges, else read_transform. Null or empty: nothing set (no
// cost on reads). The hook shares ownership of the upcaster.
void InstallUpcaster(StoreOptions* options, std::shared_ptr<const Upcaster> upcaster);

// Checks a domain's declared current schemas (type -> schema its code
// writes and reads) against the steps: they must agree, or new events would
// be written at one schema while old ones are upcast to another. A type with
// no steps is at schema 1. InvalidArgument naming every mismatch (one line).
// Not run by OpenStore (CheckMigrationsAgainstDomains is).
Status CheckDeclaredSchemas(const Upcaster& upcaster,
                            const std::vector<std::pair<std::string, uint32_t>>& declared);

// A migration file compiled into the library (generated from migrations/ by
// CMakeLists.txt).
struct ShippedMigration {
  const char* path;       // "migrations/bank/0001-owner-object.json"
  std::string_view text;
};
const std::vector<ShippedMigration>& ShippedMigrations();

}  // namespace rill
