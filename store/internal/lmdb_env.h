// LmdbEnv: one LMDB environment with the rules rill needs around it (private
// to store/). LMDB return codes become Status here and nowhere else.
//
// - Read transactions hold a shared lock on resize_mu_; growing the map takes
//   it exclusively, because mdb_env_set_mapsize must not run while this
//   process has transactions open.
// - Write() reruns its function after growing the map on MDB_MAP_FULL: a
//   failed page allocation kills the whole transaction, so the function must
//   not change memory outside the transaction until Write returns OK.
// - MDB_MAP_RESIZED (another process grew the map) is adopted and retried.
// - MDB_NOTLS: read transactions are not tied to threads.
// - mdb_reader_check runs at open to clear readers left by killed processes.
#pragma once

#include <lmdb.h>

#include <atomic>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>

#include "store/status.h"

namespace rill {

Status LmdbStatus(int rc, std::string_view what);

class LmdbEnv {
 public:
  struct Options {
    size_t initial_map_bytes = 256u << 20;
    bool sync = true;           // false: MDB_NOSYNC (caller flushes)
    unsigned max_dbs = 8;
    // Called before each commit; a non-OK status aborts that transaction
    // and is Write's result (the store's FaultPoint::kBeforeLogCommit).
    std::function<Status()> before_commit;
    // MDB_RDONLY | MDB_NOLOCK: for a store on a read-only file system, where
    // LMDB cannot even create its lock file and no process can write. Write
    // and OpenDb of a missing database fail; nothing is created.
    bool read_only = false;
  };

  static Result<std::unique_ptr<LmdbEnv>> Open(const std::string& dir, const Options& options);
  ~LmdbEnv();
  LmdbEnv(const LmdbEnv&) = delete;
  LmdbEnv& operator=(const LmdbEnv&) = delete;

  // Opens (creating) a named database; call before concurrent use.
  Result<MDB_dbi> OpenDb(const char* name);

  class ReadTxn {
   public:
    ReadTxn() = default;
    ReadTxn(ReadTxn&& o) noexcept : txn_(o.txn_), lock_(std::move(o.lock_)) { o.txn_ = nullptr; }
    ReadTxn& operator=(ReadTxn&& o) noexcept;
    ~ReadTxn() { Reset(); }
    MDB_txn* get() const { return txn_; }
    void Reset();

   private:
    friend class LmdbEnv;
    MDB_txn* txn_ = nullptr;
    std::shared_lock<std::shared_mutex> lock_;
  };
  Status BeginRead(ReadTxn* out);

  // Runs fn inside a write transaction and commits it. fn reports LMDB
  // failures through Check() so map-full can be told from other errors.
  Status Write(const std::function<Status(MDB_txn*)>& fn);
  // Translates rc; remembers MDB_MAP_FULL for Write's retry.
  Status Check(int rc, std::string_view what);

  Status Sync(bool force);
  // A compacted copy of the environment into dest_dir/data.mdb, which gets
  // the mode of this environment's data.mdb (less the umask). LMDB writes
  // the copy into a pipe that this thread drains into the file, so that
  // `should_stop` is polled (at every read of the pipe, 64 KiB at most) and `copied` told the bytes so far;
  // stopped, the copy is removed and the result is Interrupted. Not synced:
  // the caller syncs the whole copy.
  Status CopyCompact(const std::string& dest_dir, const std::function<bool()>& should_stop = {},
                     const std::function<void(uint64_t copied)>& copied = {});

  MDB_env* env() const { return env_; }
  bool read_only() const { return options_.read_only; }
  const std::string& dir() const { return dir_; }
  uint64_t map_growths() const { return growths_.load(); }
  // Commit failures other than injected faults: fsync errors are fatal.
  bool last_commit_failed_hard() const { return hard_failure_; }
  struct Usage {
    uint64_t map_bytes, used_bytes, file_bytes;
  };
  Usage GetUsage();

 private:
  LmdbEnv() = default;
  Status Grow();
  Status AdoptNewSize();

  MDB_env* env_ = nullptr;
  std::string dir_;
  Options options_;
  std::shared_mutex resize_mu_;
  std::atomic<uint64_t> growths_{0};
  bool map_full_ = false;  // only touched by the write-transaction holder
  bool hard_failure_ = false;
};

// A cursor on one database of a transaction, closed when it goes out of
// scope, so no return path leaks it (a read-only transaction's cursors must
// be closed by hand; LMDB frees a write transaction's at commit or abort, and
// closing them first is allowed). It must not outlive its transaction.
class LmdbCursor {
 public:
  LmdbCursor() = default;
  LmdbCursor(LmdbCursor&& o) noexcept : c_(o.c_) { o.c_ = nullptr; }
  LmdbCursor& operator=(LmdbCursor&& o) noexcept {
    if (this != &o) {
      Close();
      c_ = o.c_;
      o.c_ = nullptr;
    }
    return *this;
  }
  ~LmdbCursor() { Close(); }
  // Errors: InvalidArgument-like LMDB errors (EINVAL: a bad transaction or
  // database handle) as LmdbStatus(rc, what) translates them.
  Status Open(MDB_txn* txn, MDB_dbi dbi, std::string_view what) {
    Close();
    return LmdbStatus(mdb_cursor_open(txn, dbi, &c_), what);
  }
  // mdb_cursor_get / mdb_cursor_put: the raw LMDB code (0, MDB_NOTFOUND,
  // MDB_KEYEXIST, MDB_MAP_FULL, ...) for the caller to branch on or pass to
  // LmdbStatus / LmdbEnv::Check.
  int Get(MDB_val* k, MDB_val* v, MDB_cursor_op op) { return mdb_cursor_get(c_, k, v, op); }
  int Put(MDB_val* k, MDB_val* v, unsigned flags) { return mdb_cursor_put(c_, k, v, flags); }
  MDB_cursor* get() const { return c_; }
  void Close() {
    if (c_) mdb_cursor_close(c_);
    c_ = nullptr;
  }

 private:
  MDB_cursor* c_ = nullptr;
};

// Big-endian u64 keys sort numerically under LMDB's default memcmp order.
inline void PutBigEndian64(char* p, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
}
inline uint64_t GetBigEndian64(const void* data) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}
inline MDB_val Val(const void* p, size_t n) { return MDB_val{n, const_cast<void*>(p)}; }
inline MDB_val Val(std::string_view s) { return Val(s.data(), s.size()); }
inline std::string_view View(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

}  // namespace rill
