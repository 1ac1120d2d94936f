#include "store/internal/lmdb_log.h"

#include <fmt/format.h>

namespace rill {

Result<uint64_t> LmdbLogReader::LastPosition() {
  LogCursor c;
  RILL_RETURN_IF_ERROR(c.Open(txn_, db_, file_));
  RILL_RETURN_IF_ERROR(c.Last());
  if (!c.valid()) return uint64_t{0};
  if (!c.key_ok()) return Status::Corruption(fmt::format("{}: a log key of {} bytes", file_, c.key_size()));
  return c.position();
}

Result<std::string_view> LmdbLogReader::Get(uint64_t position) {
  char key[8];
  PutBigEndian64(key, position);
  MDB_val k = Val(key, 8), v;
  int rc = mdb_get(txn_, db_, &k, &v);
  if (rc == MDB_NOTFOUND) return Status::NotFound(fmt::format("no event at position {}", position));
  RILL_RETURN_IF_ERROR(LmdbStatus(rc, "reading the log"));
  return View(v);
}

Status LmdbLogReader::Scan(uint64_t from, uint64_t through,
                           const std::function<Status(uint64_t position, std::string_view record)>& fn) {
  LogCursor c;
  RILL_RETURN_IF_ERROR(c.Open(txn_, db_, file_));
  RILL_RETURN_IF_ERROR(c.Seek(from));
  // A damaged key ends the scan: what follows it is not known to be in order.
  while (c.valid() && c.key_ok() && c.position() <= through) {
    RILL_RETURN_IF_ERROR(fn(c.position(), c.record()));
    RILL_RETURN_IF_ERROR(c.Next());
  }
  return Status::OK();
}

namespace {
// One write transaction's batch. The cursor is opened on first use: a batch
// that only finds conflicts and duplicates opens none.
class LmdbLogAppender final : public LogAppender {
 public:
  LmdbLogAppender(LmdbEnv* env, MDB_txn* txn, MDB_dbi db, std::string_view file)
      : reader_(txn, db, file), env_(env), txn_(txn), db_(db) {}
  Result<uint64_t> LastPosition() override { return reader_.LastPosition(); }
  Result<std::string_view> Get(uint64_t position) override { return reader_.Get(position); }
  Status Scan(uint64_t from, uint64_t through,
              const std::function<Status(uint64_t position, std::string_view record)>& fn) override {
    return reader_.Scan(from, through, fn);
  }
  Result<char*> Reserve(uint64_t position, size_t bytes) override {
    if (!cursor_.get()) RILL_RETURN_IF_ERROR(cursor_.Open(txn_, db_, "opening a log cursor"));
    char key[8];
    PutBigEndian64(key, position);
    MDB_val k = Val(key, 8), v{bytes, nullptr};
    // Through Check: a full map is remembered, grown and the batch retried.
    RILL_RETURN_IF_ERROR(env_->Check(cursor_.Put(&k, &v, MDB_APPEND | MDB_RESERVE), "appending to the log"));
    return static_cast<char*>(v.mv_data);
  }

 private:
  LmdbLogReader reader_;
  LmdbEnv* env_;
  MDB_txn* txn_;
  MDB_dbi db_;
  LmdbCursor cursor_;
};
}  // namespace

Status LmdbLog::Append(const std::function<Status(LogAppender&)>& fill) {
  return env_->Write([&](MDB_txn* txn) -> Status {
    LmdbLogAppender batch(env_, txn, db_, file_);
    return fill(batch);
  });
}

}  // namespace rill
