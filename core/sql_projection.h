// SQL projections: a projection written as one plain .sql file, so any SQL
// editor reads it and no C++ is needed (docs/design.md, "Projections"):
//
//   -- rill projection: cart_totals
//   -- category: cart                 (optional; several lines or "a, b" allowed)
//   -- partition: stream              (optional: see below)
//   -- schema
//   CREATE TABLE IF NOT EXISTS totals(cart TEXT PRIMARY KEY, qty INTEGER NOT NULL);
//   -- on ItemAdded
//   INSERT INTO totals(cart, qty) VALUES (:stream_id, :data.qty)
//     ON CONFLICT(cart) DO UPDATE SET qty = qty + excluded.qty;
//   -- on ItemRemoved
//   UPDATE totals SET qty = qty - :data.qty WHERE cart = :stream_id;
//
// The schema section runs when the read model is opened (so it must be
// idempotent: IF NOT EXISTS). Each "-- on TYPE" section holds one or more
// statements run, in order, for every event of that type; the set of "on"
// types is the projection's type filter, other events are skipped. Other
// "--" comments are plain comments.
//
// "-- partition: stream" promises that every statement reads and writes only
// rows of the event's own stream (keyed by :stream or :stream_id), so the
// runner may apply events grouped by stream (Projection::partitioned_by_stream):
// several times faster on a big model. rill cannot check the promise; a
// projection with a cross-stream row (a total over all carts) must not make it.
//
// Parameters, bound from the event:
//   :stream      "account-42"           :stream_id  "42" (after the first '-')
//   :category    "account"              :type       "Deposited"
//   :version     per-stream version     :position   global position
//   :time        "2026-11-23T10:14:00.123456Z" (UTC, text)
//   :id          event UUID (text)      :schema     event schema number
//   :part        0, or the part index of an event split on read (parts share
//                :position and :version: key rows on (:position, :part))
//   :data.a.b    field a.b of the data JSON, :meta.x field x of the metadata
// JSON values bind as SQL values: integers as INTEGER, other numbers as REAL,
// strings as TEXT, true/false as 1/0, objects and arrays as their JSON text,
// and null or a MISSING field (or a path through a non-object) as NULL.
// Path segments are [A-Za-z0-9_]. Any other parameter is a parse error.
//
// The runner owns the transactions: it applies a batch of events and moves
// the checkpoint in one commit, which is what makes a model exactly-once. So
// the schema and handlers may not BEGIN, COMMIT, ROLLBACK, SAVEPOINT or
// RELEASE, nor write rill's _rill_* tables, nor ATTACH another file
// (UserSql::kProjection in readmodel/read_model_store.h); such a file is
// refused when added, naming its line. A statement that runs away stops when
// the runner is asked to stop (SIGINT, SIGTERM), and its batch is rolled back.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/projection.h"

namespace rill {

class SqlProjection : public Projection {
 public:
  struct Section {
    std::string type;   // "" for the schema section
    std::string sql;    // as written, params rewritten to SQLite-legal names
    int first_line = 0;  // line of the section's first SQL line in the file
  };

  const std::string& name() const override { return name_; }
  const char* kind() const override { return "sql"; }
  const EventFilter& filter() const override { return filter_; }
  std::string fingerprint() const override { return fingerprint_; }
  Result<std::unique_ptr<ProjectionHandler>> Attach(SqliteDb& db) const override;
  bool partitioned_by_stream() const override { return partitioned_; }

  const std::string& origin() const { return origin_; }  // file name for messages
  const std::string& text() const { return text_; }      // the file as read
  const std::string& schema_sql() const { return schema_.sql; }
  const std::vector<Section>& handlers() const { return handlers_; }

 private:
  friend Result<std::shared_ptr<SqlProjection>> ParseSqlProjection(std::string_view, const std::string&);
  std::string name_, origin_, text_, fingerprint_;
  EventFilter filter_;
  bool partitioned_ = false;
  Section schema_;
  std::vector<Section> handlers_;  // one per "-- on", in file order
};

// Parses a projection file's text. `origin` names it in errors, which read
// "<origin>:<line>: <what>". Checks the structure and parameter names only;
// ValidateSqlProjection also compiles every statement.
Result<std::shared_ptr<SqlProjection>> ParseSqlProjection(std::string_view text, const std::string& origin);
Result<std::shared_ptr<SqlProjection>> LoadSqlProjectionFile(const std::string& path);
// Runs the schema and prepares every statement on a private in-memory
// database: what `rill project add` does before registering a file. A schema
// that runs away (a recursive CTE) stops when `should_stop` says so.
Status ValidateSqlProjection(const SqlProjection& projection, std::function<bool()> should_stop = {});

}  // namespace rill
