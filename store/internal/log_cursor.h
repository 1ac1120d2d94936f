// LogCursor: walks the log database of log/ (key: position u64 BE, value: an
// encoded record, record.h) in position order. Every scan of the log (the
// reads of $all, the tail's catch-up, the indexer, the checker) goes through
// it, so each sees a missing end, a read error and a damaged key the same
// way. Closed on scope exit; it must not outlive its transaction.
#pragma once

#include <string_view>

#include "store/internal/lmdb_env.h"
#include "store/internal/record.h"

namespace rill {

class LogCursor {
 public:
  // `file` (log/data.mdb's path, LmdbLog::file(); it must outlive the
  // cursor) names the log in every error. Errors: LMDB's (a bad transaction
  // or handle), as LmdbStatus gives them.
  Status Open(MDB_txn* txn, MDB_dbi log_db, std::string_view file) {
    file_ = file;
    Status s = c_.Open(txn, log_db, file_);
    return s.ok() ? s : s.WithContext("opening a log cursor");
  }

  // Each moves the cursor and then valid() says whether it is on a record.
  // Running off the end is not an error; a failed read is (its LMDB code,
  // e.g. MDB_CORRUPTED or EIO, as a Status naming the log).
  Status Seek(uint64_t position) {  // the first record at or after `position`
    char key[8];
    PutBigEndian64(key, position);
    k_ = Val(key, 8);
    return Moved(c_.Get(&k_, &v_, MDB_SET_RANGE));
  }
  Status First() { return Moved(c_.Get(&k_, &v_, MDB_FIRST)); }  // even a damaged key sorting before 1
  Status Next() { return Moved(c_.Get(&k_, &v_, MDB_NEXT)); }
  Status Last() { return Moved(c_.Get(&k_, &v_, MDB_LAST)); }

  bool valid() const { return valid_; }
  // The key is a position only if it is 8 bytes; a damaged log may hold one
  // that is not, which position() reports as 0 (never a real position).
  bool key_ok() const { return k_.mv_size == 8; }
  uint64_t position() const { return key_ok() ? GetBigEndian64(k_.mv_data) : 0; }
  size_t key_size() const { return k_.mv_size; }
  std::string_view record() const { return View(v_); }
  Status Decode(RecordView* out, bool verify_crc = true) const { return DecodeRecord(record(), out, verify_crc); }

 private:
  Status Moved(int rc) {
    valid_ = rc == 0;
    if (rc == 0 || rc == MDB_NOTFOUND) return Status::OK();
    return LmdbStatus(rc, file_);
  }

  LmdbCursor c_;
  std::string_view file_;
  MDB_val k_{}, v_{};
  bool valid_ = false;
};

}  // namespace rill
