// The SQLite read-model store: a thin RAII wrapper over the SQLite C API
// (one connection, its prepared statements) with errors as rill::Status.
// Read models are plain SQLite files in <db>/readmodels/<name>.sqlite, in WAL
// mode so queries never block the projection that writes them.
//
// A SqliteDb is one connection: use it from one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "store/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace rill {

// One prepared statement. Moves, never copies; finalized on destruction.
class SqliteStatement {
 public:
  SqliteStatement() = default;
  SqliteStatement(sqlite3_stmt* stmt, sqlite3* db) : stmt_(stmt), db_(db) {}
  SqliteStatement(SqliteStatement&& o) noexcept;
  SqliteStatement& operator=(SqliteStatement&& o) noexcept;
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;
  ~SqliteStatement();

  // Parameter indexes start at 1 (SQLite's convention). Text is copied
  // unless `stable` promises it outlives the next Reset().
  Status BindNull(int index);
  Status BindInt(int index, int64_t value);
  Status BindDouble(int index, double value);
  Status BindText(int index, std::string_view text, bool stable = false);
  int ParameterCount() const;
  // ":name" as written, or nullptr for a nameless "?" parameter.
  const char* ParameterName(int index) const;

  // Runs one step: true when a row is ready, false when the statement is done.
  Result<bool> Step();
  // Steps to completion (ignoring rows), then resets, keeping the bindings
  // (rebind all before the next run). For writes.
  Status Run();
  // Makes the statement runnable again and clears its bindings.
  void Reset();

  int ColumnCount() const;
  const char* ColumnName(int col) const;
  // SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB or SQLITE_NULL.
  int ColumnType(int col) const;
  int64_t ColumnInt(int col) const;
  double ColumnDouble(int col) const;
  std::string_view ColumnText(int col) const;  // valid until the next Step

  // True if the statement cannot change the database (sqlite3_stmt_readonly).
  bool ReadOnly() const;
  const char* sql() const;
  bool valid() const { return stmt_ != nullptr; }
  sqlite3_stmt* handle() { return stmt_; }

 private:
  Status Check(int rc, const char* what) const;
  sqlite3_stmt* stmt_ = nullptr;
  sqlite3* db_ = nullptr;
};

enum class SqliteMode {
  kReadWrite,  // creates the file (and its directory) if missing; WAL mode
  kReadOnly,   // SQLITE_OPEN_READONLY: nothing this connection runs can write
  kMemory,     // private in-memory database (validation, tests)
};

// What SQL written by a user (a projection file, `rill query`) may do on a
// connection. SQLite's authorizer checks it when a statement is prepared, so
// a projection file is refused by `rill project add`, naming its line.
enum class UserSql {
  kTrusted,     // rill's own statements: anything
  kQuery,       // no ATTACH/DETACH (a probe of any file's existence), no
                // fts3_tokenizer() (returns a pointer) or load_extension()
  kProjection,  // kQuery's rules, and no BEGIN/COMMIT/ROLLBACK/SAVEPOINT/
                // RELEASE (the runner commits each batch with its checkpoint:
                // a handler that commits breaks exactly-once) and no write to
                // rill's own _rill_* tables
};

class SqliteDb {
 public:
  // Busy timeout: how long a statement waits for another connection's lock.
  static Result<std::unique_ptr<SqliteDb>> Open(const std::string& path, SqliteMode mode,
                                                int busy_timeout_ms = 10000);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Runs one or more statements without parameters.
  Status Exec(std::string_view sql);
  // Prepares the first statement of `sql`; *tail (if given) receives the
  // number of bytes consumed, so a caller can walk a multi-statement text.
  // A text holding only whitespace/comments gives an invalid statement.
  Result<SqliteStatement> Prepare(std::string_view sql, size_t* consumed = nullptr);
  // Prepared once per connection and kept, keyed by the SQL text: for C++
  // projection handlers that run the same few statements per event.
  Result<SqliteStatement*> Cached(const std::string& sql);

  Status BeginImmediate();  // takes the write lock now, not at first write
  Status Begin();           // deferred: a read transaction until it writes
  Status Commit();
  Status Rollback();        // harmless when no transaction is open
  bool InTransaction() const;
  int64_t Changes() const;  // rows changed by the last statement
  // Byte offset in the SQL text of the last error, -1 if none is known:
  // lets a caller name the line of a statement that failed to prepare.
  int LastErrorOffset() const;

  // Copies the whole database `from` into this one in one transaction
  // (sqlite3_backup): readers of this file see the old content or the new,
  // never a mix; a reader inside a transaction keeps its snapshot.
  Status ReplaceContentWith(SqliteDb& from);

  // Rules for the statements prepared from now on (kTrusted when opened).
  // A refused statement fails to prepare with the reason, e.g. "COMMIT is not
  // allowed in a projection: rill commits each batch with its checkpoint".
  void RestrictUserSql(UserSql rules);
  // Polled every few thousand SQLite VM steps while a statement runs: when it
  // returns true the statement stops with Interrupted (SQLITE_INTERRUPT) and
  // its transaction is rolled back. How a runaway statement (a recursive CTE)
  // yields to SIGINT, SIGTERM or a deadline. Empty: never stops.
  void SetStopCheck(std::function<bool()> should_stop);

  const std::string& path() const { return path_; }
  sqlite3* handle() { return db_; }
  // "<path>: <sqlite message>" status for return code rc.
  Status Error(int rc, std::string_view what) const;

 private:
  SqliteDb(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  static int Authorize(void* self, int action, const char* a, const char* b, const char* db, const char* trigger);
  static int Progress(void* self);
  sqlite3* db_;
  std::string path_;
  UserSql rules_ = UserSql::kTrusted;
  std::string denied_;  // why the authorizer refused the last statement
  std::function<bool()> should_stop_;
  std::map<std::string, SqliteStatement, std::less<>> cache_;
};

// Maps a SQLite result code to the Status class callers act on.
Status SqliteStatus(int rc, std::string message);

// <store_dir>/readmodels/<name>.sqlite
std::string ReadModelPath(const std::string& store_dir, const std::string& name);
// Deletes the database file and its -wal and -shm companions; missing files
// are fine.
Status RemoveSqliteFiles(const std::string& path);

}  // namespace rill
