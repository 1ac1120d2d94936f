#include "readmodel/read_model_store.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <strings.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "store/event_store.h"

namespace rill {

Status SqliteStatus(int rc, std::string message) {
  switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE: return Status::OK();
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return Status::Busy(std::move(message));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return Status::Corruption(std::move(message));
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_NOMEM: return Status::IOError(std::move(message));
    case SQLITE_INTERRUPT: return Status::Interrupted(std::move(message));
    default: return Status::InvalidArgument(std::move(message));  // SQL error, constraint, mismatch
  }
}

// ---- SqliteStatement ---------------------------------------------------------

SqliteStatement::SqliteStatement(SqliteStatement&& o) noexcept : stmt_(o.stmt_), db_(o.db_) {
  o.stmt_ = nullptr;
}

SqliteStatement& SqliteStatement::operator=(SqliteStatement&& o) noexcept {
  if (this != &o) {
    sqlite3_finalize(stmt_);
    stmt_ = o.stmt_;
    db_ = o.db_;
    o.stmt_ = nullptr;
  }
  return *this;
}

SqliteStatement::~SqliteStatement() { sqlite3_finalize(stmt_); }

Status SqliteStatement::Check(int rc, const char* what) const {
  if (rc == SQLITE_OK) return Status::OK();
  return SqliteStatus(rc, fmt::format("{}: {}", what, sqlite3_errmsg(db_)));
}

Status SqliteStatement::BindNull(int i) { return Check(sqlite3_bind_null(stmt_, i), "bind"); }
Status SqliteStatement::BindInt(int i, int64_t v) { return Check(sqlite3_bind_int64(stmt_, i, v), "bind"); }
Status SqliteStatement::BindDouble(int i, double v) { return Check(sqlite3_bind_double(stmt_, i, v), "bind"); }
Status SqliteStatement::BindText(int i, std::string_view t, bool stable) {
  return Check(sqlite3_bind_text64(stmt_, i, t.data(), t.size(), stable ? SQLITE_STATIC : SQLITE_TRANSIENT,
                                   SQLITE_UTF8),
               "bind");
}
int SqliteStatement::ParameterCount() const { return sqlite3_bind_parameter_count(stmt_); }
const char* SqliteStatement::ParameterName(int i) const { return sqlite3_bind_parameter_name(stmt_, i); }

Result<bool> SqliteStatement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  // sqlite3_step's rc is generic with the legacy interface; with _v2/_v3
  // prepare it is the real one. The message comes from the connection.
  Status s = SqliteStatus(rc, sqlite3_errmsg(db_));
  sqlite3_reset(stmt_);
  return s;
}

Status SqliteStatement::Run() {
  for (;;) {
    Result<bool> r = Step();
    if (!r.ok()) {
      Reset();
      return r.status();
    }
    if (!*r) break;
  }
  // Bindings are kept: callers rebind every parameter before the next run,
  // and clearing them costs time on the per-event path.
  sqlite3_reset(stmt_);
  return Status::OK();
}

void SqliteStatement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int SqliteStatement::ColumnCount() const { return sqlite3_column_count(stmt_); }
const char* SqliteStatement::ColumnName(int c) const { return sqlite3_column_name(stmt_, c); }
int SqliteStatement::ColumnType(int c) const { return sqlite3_column_type(stmt_, c); }
int64_t SqliteStatement::ColumnInt(int c) const { return sqlite3_column_int64(stmt_, c); }
double SqliteStatement::ColumnDouble(int c) const { return sqlite3_column_double(stmt_, c); }
std::string_view SqliteStatement::ColumnText(int c) const {
  const unsigned char* p = sqlite3_column_text(stmt_, c);
  if (p == nullptr) return {};
  return {reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, c))};
}
bool SqliteStatement::ReadOnly() const { return sqlite3_stmt_readonly(stmt_) != 0; }
const char* SqliteStatement::sql() const { return sqlite3_sql(stmt_); }

// ---- SqliteDb ----------------------------------------------------------------

Result<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path, SqliteMode mode, int busy_timeout_ms) {
  // Memory statistics take a global mutex on every allocation: measurable on
  // the per-event path and unused here. Only possible before SQLite
  // initializes, so done once, first; a no-op if someone initialized it.
  static const bool configured = [] {
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    return true;
  }();
  (void)configured;
  int flags = SQLITE_OPEN_NOMUTEX;
  std::string target = path;
  switch (mode) {
    case SqliteMode::kReadWrite: {
      flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
      std::error_code ec;
      auto parent = std::filesystem::path(path).parent_path();
      if (!parent.empty()) std::filesystem::create_directories(parent, ec);
      if (ec) return Status::IOError(fmt::format("cannot create {}: {}", parent.string(), ec.message()));
      break;
    }
    case SqliteMode::kReadOnly: flags |= SQLITE_OPEN_READONLY; break;
    case SqliteMode::kMemory:
      flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY;
      target = ":memory:";
      break;
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(target.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return SqliteStatus(rc, fmt::format("cannot open {}: {}", path, msg));
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, busy_timeout_ms);
  std::unique_ptr<SqliteDb> out(new SqliteDb(db, path));
  if (mode == SqliteMode::kReadWrite) {
    // WAL: readers never block the writer nor see its open transaction.
    // synchronous=NORMAL: in WAL mode a commit may be lost on power failure
    // but the file is never corrupted; the checkpoint row shares the fate of
    // the rows it covers, so a lost commit is simply redone.
    // Two connections creating one new file race for the exclusive lock the
    // switch to WAL takes, and SQLite reports that as busy without calling
    // the busy handler: wait for the other one here instead.
    Status s = out->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY;");
    for (int waited = 0; s.code() == Code::kBusy && waited < busy_timeout_ms; waited += 5) {
      sqlite3_sleep(5);
      s = out->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY;");
    }
    RILL_RETURN_IF_ERROR(s);
  }
  return out;
}

SqliteDb::~SqliteDb() {
  cache_.clear();  // statements must be finalized before the connection closes
  sqlite3_close(db_);
}

Status SqliteDb::Error(int rc, std::string_view what) const {
  return SqliteStatus(rc, fmt::format("{}: {}: {}", path_, what, sqlite3_errmsg(db_)));
}

Status SqliteDb::Exec(std::string_view sql) {
  std::string text(sql);
  char* err = nullptr;
  denied_.clear();
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = !denied_.empty() ? denied_ : err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return SqliteStatus(rc, fmt::format("{}: {}", path_, msg));
  }
  return Status::OK();
}

Result<SqliteStatement> SqliteDb::Prepare(std::string_view sql, size_t* consumed) {
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  denied_.clear();
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
  if (rc != SQLITE_OK && !denied_.empty()) return Status::InvalidArgument(denied_);
  if (rc != SQLITE_OK) return SqliteStatus(rc, sqlite3_errmsg(db_));
  if (consumed) *consumed = tail ? static_cast<size_t>(tail - sql.data()) : sql.size();
  return SqliteStatement(stmt, db_);
}

Result<SqliteStatement*> SqliteDb::Cached(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) return &it->second;
  Result<SqliteStatement> st = Prepare(sql);
  if (!st.ok()) return st.status().WithContext(sql);
  if (!st->valid()) return Status::InvalidArgument("empty statement");
  auto [pos, inserted] = cache_.emplace(sql, std::move(st).value());
  (void)inserted;
  return &pos->second;
}

Status SqliteDb::BeginImmediate() { return Exec("BEGIN IMMEDIATE"); }
Status SqliteDb::Begin() { return Exec("BEGIN"); }
Status SqliteDb::Commit() { return Exec("COMMIT"); }
Status SqliteDb::Rollback() {
  if (!InTransaction()) return Status::OK();
  return Exec("ROLLBACK");
}
bool SqliteDb::InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }
int64_t SqliteDb::Changes() const { return sqlite3_changes64(db_); }
int SqliteDb::LastErrorOffset() const { return sqlite3_error_offset(db_); }

Status SqliteDb::ReplaceContentWith(SqliteDb& from) {
  sqlite3_backup* b = sqlite3_backup_init(db_, "main", from.db_, "main");
  if (b == nullptr) return Error(sqlite3_errcode(db_), "backup");
  int rc;
  // -1: all pages in one step, hence one transaction on this database.
  // Busy/locked: another connection holds the write lock; wait and retry.
  for (int attempt = 0;; ++attempt) {
    rc = sqlite3_backup_step(b, -1);
    if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && attempt < 200) {
      sqlite3_sleep(50);
      continue;
    }
    break;
  }
  int frc = sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) return SqliteStatus(rc, fmt::format("{}: replacing content: {}", path_, sqlite3_errstr(rc)));
  if (frc != SQLITE_OK) return Error(frc, "replacing content");
  return Status::OK();
}

// ---- what user SQL may do ---------------------------------------------------

namespace {

bool IsRillTable(const char* name) { return name != nullptr && strncasecmp(name, "_rill_", 6) == 0; }

}  // namespace

int SqliteDb::Authorize(void* self, int action, const char* a, const char* b, const char*, const char*) {
  auto* db = static_cast<SqliteDb*>(self);
  if (db->rules_ == UserSql::kTrusted) return SQLITE_OK;
  auto deny = [&](std::string why) {
    db->denied_ = std::move(why);
    return SQLITE_DENY;
  };
  const char* where = db->rules_ == UserSql::kQuery ? "in rill query" : "in a projection";
  switch (action) {
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
      return deny(fmt::format("{} is not allowed {}: a read model is its own file",
                              action == SQLITE_ATTACH ? "ATTACH" : "DETACH", where));
    case SQLITE_FUNCTION:
      if (b != nullptr && (strcasecmp(b, "fts3_tokenizer") == 0 || strcasecmp(b, "load_extension") == 0))
        return deny(fmt::format("{}() is not allowed {}", b, where));
      return SQLITE_OK;
    default: break;
  }
  if (db->rules_ != UserSql::kProjection) return SQLITE_OK;
  switch (action) {
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT: {
      std::string_view op = a ? a : "";
      if (action == SQLITE_SAVEPOINT) op = op == "BEGIN" ? "SAVEPOINT" : op == "RELEASE" ? "RELEASE" : "ROLLBACK TO";
      return deny(fmt::format("{} is not allowed in a projection: rill commits each batch with its checkpoint", op));
    }
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
    case SQLITE_DROP_TABLE:
    case SQLITE_CREATE_TABLE:
      if (IsRillTable(a)) return deny(fmt::format("{} is rill's table: a projection may not write it", a));
      return SQLITE_OK;
    case SQLITE_ALTER_TABLE:
    case SQLITE_CREATE_INDEX:
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_DROP_INDEX:
    case SQLITE_DROP_TRIGGER:
      if (IsRillTable(b)) return deny(fmt::format("{} is rill's table: a projection may not change it", b));
      return SQLITE_OK;
    default: return SQLITE_OK;
  }
}

void SqliteDb::RestrictUserSql(UserSql rules) {
  rules_ = rules;
  sqlite3_set_authorizer(db_, rules == UserSql::kTrusted ? nullptr : &SqliteDb::Authorize, this);
}

int SqliteDb::Progress(void* self) {
  auto* db = static_cast<SqliteDb*>(self);
  return db->should_stop_ && db->should_stop_() ? 1 : 0;
}

void SqliteDb::SetStopCheck(std::function<bool()> should_stop) {
  should_stop_ = std::move(should_stop);
  // Every 4096 VM steps: a few microseconds apart, and too rare to cost a
  // projection's per-event statements anything measurable.
  sqlite3_progress_handler(db_, should_stop_ ? 4096 : 0, should_stop_ ? &SqliteDb::Progress : nullptr, this);
}

std::string ReadModelPath(const std::string& store_dir, const std::string& name) {
  return ReadModelDir(store_dir) + "/" + name + ".sqlite";
}

Status RemoveSqliteFiles(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::string p = path + suffix;
    if (std::remove(p.c_str()) != 0 && errno != ENOENT)
      return Status::IOError(fmt::format("cannot remove {}: {}", p, std::strerror(errno)));
  }
  return Status::OK();
}

}  // namespace rill
