// Helpers for projection tests: real LMDB stores and real SQLite files in
// temp directories, bulk appends, and whole-table dumps for comparisons.
#pragma once

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <filesystem>
#include <future>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/projection.h"
#include "core/projection_runner.h"
#include "core/sql_projection.h"
#include "readmodel/read_model_store.h"
#include "store/event_store.h"
#include "store/tests/test_util.h"

namespace rill::projection_testing {

// The store tests' temp directory, with a place for the store in it (db/).
class TempDir : public rill::testing::TempDir {
 public:
  std::string store() const { return sub("db"); }
};

inline std::unique_ptr<EventStore> OpenStore(const std::string& dir) {
  StoreOptions o;
  o.create_if_missing = true;
  o.durability = Durability::kAsync;  // tests crash processes, not machines
  auto r = EventStore::Open(dir, o);
  if (!r.ok()) throw std::runtime_error(r.status().ToString());
  return std::move(r).value();
}

struct Appended {
  std::string stream, type, data, meta = "{}";
};

// Appends each event as its own request, many in flight; waits for all.
inline void AppendAll(EventStore& store, const std::vector<Appended>& events) {
  std::vector<std::future<Result<AppendResult>>> pending;
  auto drain = [&] {
    for (auto& f : pending) {
      auto r = f.get();
      if (!r.ok()) throw std::runtime_error(r.status().ToString());
    }
    pending.clear();
  };
  for (const auto& a : events) {
    AppendRequest req;
    req.stream = a.stream;
    NewEvent e;
    e.type = a.type;
    e.data = a.data;
    e.meta = a.meta;
    req.events.push_back(std::move(e));
    pending.push_back(store.AppendAsync(std::move(req)));
    if (pending.size() >= 20000) drain();
  }
  drain();
}

// A bank-like workload: `accounts` AccountOpened, then deposits and
// withdrawals (and the odd closing) up to `total` events, in a seeded order.
inline std::vector<Appended> BankEvents(size_t accounts, size_t total, uint32_t seed, size_t first_account = 0) {
  std::vector<Appended> out;
  std::mt19937 rng(seed);
  for (size_t i = 0; i < accounts && out.size() < total; ++i)
    out.push_back({"account-" + std::to_string(first_account + i), "AccountOpened",
                   "{\"owner\":\"owner" + std::to_string(first_account + i) + "\"}"});
  while (out.size() < total) {
    size_t a = first_account + rng() % accounts;
    uint32_t r = rng() % 100;
    std::string type = r < 60 ? "Deposited" : r < 99 ? "Withdrawn" : "AccountClosed";
    std::string data = type == "AccountClosed" ? "{}" : "{\"amount\":" + std::to_string(1 + rng() % 1000) + "}";
    out.push_back({"account-" + std::to_string(a), type, data});
  }
  return out;
}

// Every row of `table` (ordered by all columns), as text.
inline std::vector<std::string> Dump(const std::string& db_path, const std::string& table) {
  auto db = SqliteDb::Open(db_path, SqliteMode::kReadOnly);
  if (!db.ok()) throw std::runtime_error(db.status().ToString());
  auto st = (*db)->Prepare("SELECT * FROM " + table);
  if (!st.ok()) throw std::runtime_error(st.status().ToString());
  std::vector<std::string> rows;
  while (true) {
    auto more = st->Step();
    if (!more.ok()) throw std::runtime_error(more.status().ToString());
    if (!*more) break;
    std::string row;
    for (int c = 0; c < st->ColumnCount(); ++c) {
      if (c) row += '|';
      row += st->ColumnType(c) == 5 /*SQLITE_NULL*/ ? "NULL" : std::string(st->ColumnText(c));
    }
    rows.push_back(std::move(row));
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

inline int64_t QueryInt(const std::string& db_path, const std::string& sql) {
  auto db = SqliteDb::Open(db_path, SqliteMode::kReadOnly);
  if (!db.ok()) throw std::runtime_error(db.status().ToString());
  auto st = (*db)->Prepare(sql);
  if (!st.ok()) throw std::runtime_error(st.status().ToString());
  auto more = st->Step();
  if (!more.ok() || !*more) throw std::runtime_error("no row: " + sql);
  return st->ColumnInt(0);
}

inline std::shared_ptr<SqlProjection> ParseOrDie(const std::string& text, const std::string& origin = "test.sql") {
  auto p = ParseSqlProjection(text, origin);
  if (!p.ok()) throw std::runtime_error(p.status().ToString());
  return std::move(p).value();
}

// The balances model plus a ledger of every applied event keyed by
// position: applying an event twice fails on the key, skipping one leaves a
// gap; balance arithmetic is not idempotent either.
inline const char* kLedgerBalances = R"sql(-- rill projection: ledger
-- category: account
-- schema
CREATE TABLE IF NOT EXISTS balances(account TEXT PRIMARY KEY, owner TEXT, balance INTEGER NOT NULL, status TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger(position INTEGER PRIMARY KEY, account TEXT NOT NULL, type TEXT NOT NULL);
-- on AccountOpened
INSERT INTO balances VALUES (:stream, :data.owner, 0, 'open');
INSERT INTO ledger VALUES (:position, :stream, :type);
-- on Deposited
UPDATE balances SET balance = balance + :data.amount WHERE account = :stream;
INSERT INTO ledger VALUES (:position, :stream, :type);
-- on Withdrawn
UPDATE balances SET balance = balance - :data.amount WHERE account = :stream;
INSERT INTO ledger VALUES (:position, :stream, :type);
-- on AccountClosed
UPDATE balances SET status = 'closed' WHERE account = :stream;
INSERT INTO ledger VALUES (:position, :stream, :type);
)sql";

// The same model, partitioned by stream (every row it writes is keyed by
// the event's stream or position): the runner applies it grouped by stream.
inline std::string LedgerBalancesPartitioned() {
  std::string text = kLedgerBalances;
  text.insert(text.find("-- schema"), "-- partition: stream\n");
  return text;
}

}  // namespace rill::projection_testing
