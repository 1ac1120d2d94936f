// LmdbLog: the log in log/data.mdb's `log` database (key: position u64 BE,
// value: an encoded record), behind the LogBackend seam. A batch is one LMDB
// write transaction, its records written with MDB_APPEND (keys only grow, so
// each lands on the last page: one page touched per ~30 events) and
// MDB_RESERVE (encoded in place, no copy).
#pragma once

#include <string>
#include <string_view>

#include "store/internal/lmdb_env.h"
#include "store/internal/log_backend.h"
#include "store/internal/log_cursor.h"

namespace rill {

// A LogReader over an LMDB transaction of the log environment (read or
// write); it must not outlive the transaction.
class LmdbLogReader : public LogReader {
 public:
  // `file` names the log in messages and must outlive the reader.
  LmdbLogReader(MDB_txn* txn, MDB_dbi log_db, std::string_view file) : txn_(txn), db_(log_db), file_(file) {}
  Result<uint64_t> LastPosition() override;
  Result<std::string_view> Get(uint64_t position) override;
  Status Scan(uint64_t from, uint64_t through,
              const std::function<Status(uint64_t position, std::string_view record)>& fn) override;

 protected:
  MDB_txn* txn_;
  MDB_dbi db_;
  std::string_view file_;  // log/data.mdb's path, for messages
};

class LmdbLog : public LogBackend {
 public:
  LmdbLog(LmdbEnv* env, MDB_dbi log_db) : env_(env), db_(log_db), file_(env->dir() + "/data.mdb") {}
  Status Append(const std::function<Status(LogAppender&)>& fill) override;
  bool last_commit_failed_hard() const override { return env_->last_commit_failed_hard(); }
  // A reader on `txn`, a transaction of this log's environment.
  // (Made per read: it holds no allocation.)
  LmdbLogReader Reader(MDB_txn* txn) const { return LmdbLogReader(txn, db_, file_); }
  // log/data.mdb's path, for messages (LogCursor::Open takes it).
  const std::string& file() const { return file_; }

 private:
  LmdbEnv* env_;
  MDB_dbi db_;
  std::string file_;
};

}  // namespace rill
