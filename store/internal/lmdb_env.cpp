#include "store/internal/lmdb_env.h"

#include "store/start_thread.h"

#include <fmt/format.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

namespace rill {

Status LmdbStatus(int rc, std::string_view what) {
  if (rc == MDB_SUCCESS) return Status::OK();
  std::string msg = fmt::format("{}: {}", what, mdb_strerror(rc));
  switch (rc) {
    case MDB_NOTFOUND: return Status::NotFound(msg);
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_BAD_TXN: return Status::Corruption(msg);
    case MDB_READERS_FULL:
    case MDB_TXN_FULL:
      return Status::Busy(msg);
    case MDB_BAD_VALSIZE:
    case MDB_KEYEXIST: return Status::InvalidArgument(msg);
    default: return Status::IOError(msg);
  }
}

LmdbEnv::ReadTxn& LmdbEnv::ReadTxn::operator=(ReadTxn&& o) noexcept {
  if (this != &o) {
    Reset();
    txn_ = o.txn_;
    o.txn_ = nullptr;
    lock_ = std::move(o.lock_);
  }
  return *this;
}

void LmdbEnv::ReadTxn::Reset() {
  if (txn_) mdb_txn_abort(txn_);
  txn_ = nullptr;
  if (lock_.owns_lock()) lock_.unlock();
}

namespace {

// LMDB creates lock.mdb by ftruncate and then writes it through a shared
// mapping: on a full filesystem the first store to a page that has no block
// behind it raises SIGBUS, which no error code can report (a restored backup
// has no lock.mdb, so this is the first thing it does on a full disk).
// Allocating the file's blocks first turns that into ENOSPC here. The size
// covers LMDB's reader table for the 1024 readers set above (64 bytes a
// reader plus its header); LMDB keeps a larger file as it is.
constexpr off_t kLockFileBytes = 128 * 1024;

Status ReserveLockFile(const std::string& dir) {
  const std::string path = dir + "/lock.mdb";
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && st.st_size >= kLockFileBytes &&
      static_cast<off_t>(st.st_blocks) * 512 >= st.st_size)
    return Status::OK();  // there, and every page has its blocks
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    // A read-only directory: LMDB reports what it can or cannot do there.
    if (errno == EROFS || errno == EACCES) return Status::OK();
    return Status::IOError(fmt::format("cannot create {}: {}", path, std::strerror(errno)));
  }
  off_t want = std::max<off_t>(kLockFileBytes, st.st_size);
  int rc = ::posix_fallocate(fd, 0, want);
  ::close(fd);
  if (rc == 0 || rc == EOPNOTSUPP || rc == EINVAL) return Status::OK();  // no fallocate here: as before
  if (rc == ENOSPC)
    return Status::IOError(fmt::format("cannot create {}: no space left on the device (free some space)", path));
  return Status::IOError(fmt::format("cannot allocate {}: {}", path, std::strerror(rc)));
}

}  // namespace

Result<std::unique_ptr<LmdbEnv>> LmdbEnv::Open(const std::string& dir, const Options& options) {
  std::error_code ec;
  if (!options.read_only) std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError(fmt::format("cannot create {}: {}", dir, ec.message()));
  std::unique_ptr<LmdbEnv> e(new LmdbEnv());
  e->dir_ = dir;
  e->options_ = options;
  int rc = mdb_env_create(&e->env_);
  if (rc) return LmdbStatus(rc, "mdb_env_create");
  mdb_env_set_maxdbs(e->env_, options.max_dbs);
  mdb_env_set_maxreaders(e->env_, 1024);
  // A map smaller than the file would fail to open; start at the larger.
  size_t map = options.initial_map_bytes;
  struct stat st {};
  if (::stat((dir + "/data.mdb").c_str(), &st) == 0 && static_cast<size_t>(st.st_size) > map) map = st.st_size;
  mdb_env_set_mapsize(e->env_, map);
  // LMDB has no page checksums: a damaged page trips one of its assertions,
  // which then abort()s. Say which file is damaged and exit 1 (the exit code
  // of a corrupt store) instead of dumping core; nothing can continue safely.
  mdb_env_set_userctx(e->env_, e.get());
  mdb_env_set_assert(e->env_, [](MDB_env* env, const char* msg) {
    const auto* self = static_cast<const LmdbEnv*>(mdb_env_get_userctx(env));
    std::string line = fmt::format("rill: corruption: {}/data.mdb is damaged (LMDB: {}); restore it from a backup\n",
                                   self ? self->dir() : std::string("?"), msg);
    ssize_t ignored = ::write(2, line.data(), line.size());
    (void)ignored;
    ::_exit(1);
  });
  unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
  if (!options.sync) flags |= MDB_NOSYNC;
  if (options.read_only) flags |= MDB_RDONLY | MDB_NOLOCK;
  if (Status s = options.read_only ? Status::OK() : ReserveLockFile(dir); !s.ok()) {
    mdb_env_close(e->env_);
    e->env_ = nullptr;
    return s;
  }
  rc = mdb_env_open(e->env_, dir.c_str(), flags, 0644);
  if (rc) {
    Status s = LmdbStatus(rc, fmt::format("cannot open LMDB environment {}", dir));
    mdb_env_close(e->env_);
    e->env_ = nullptr;
    return s;
  }
  // LMDB maps the file and trusts its meta page: a data.mdb cut short (a
  // truncated copy, a full disk during a copy) would SIGBUS on the first
  // read past its end. Refuse it while that is still a clear error.
  MDB_envinfo info{};
  MDB_stat stat_info{};
  mdb_env_info(e->env_, &info);
  mdb_env_stat(e->env_, &stat_info);
  uint64_t needed = (static_cast<uint64_t>(info.me_last_pgno) + 1) * stat_info.ms_psize;
  if (::stat((dir + "/data.mdb").c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) < needed) {
    mdb_env_close(e->env_);
    e->env_ = nullptr;
    return Status::Corruption(fmt::format("{}/data.mdb is truncated: {} bytes, but its pages need {}", dir,
                                          static_cast<uint64_t>(st.st_size), needed));
  }
  int dead = 0;
  mdb_reader_check(e->env_, &dead);  // readers left by killed processes pin pages
  return e;
}

LmdbEnv::~LmdbEnv() {
  if (env_) mdb_env_close(env_);
}

Result<MDB_dbi> LmdbEnv::OpenDb(const char* name) {
  MDB_dbi dbi = 0;
  if (options_.read_only) {
    MDB_txn* txn = nullptr;
    RILL_RETURN_IF_ERROR(Check(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn), name));
    int rc = mdb_dbi_open(txn, name, 0, &dbi);
    if (rc != 0) {
      mdb_txn_abort(txn);
      return Check(rc, name);
    }
    RILL_RETURN_IF_ERROR(Check(mdb_txn_commit(txn), name));  // keeps the handle
    return dbi;
  }
  Status s = Write([&](MDB_txn* txn) { return Check(mdb_dbi_open(txn, name, MDB_CREATE, &dbi), name); });
  if (!s.ok()) return s;
  return dbi;
}

Status LmdbEnv::AdoptNewSize() {
  std::unique_lock lock(resize_mu_);
  return LmdbStatus(mdb_env_set_mapsize(env_, 0), "adopting map size");
}

Status LmdbEnv::BeginRead(ReadTxn* out) {
  out->Reset();
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::shared_lock lock(resize_mu_);
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
    if (rc == MDB_MAP_RESIZED) {
      lock.unlock();
      RILL_RETURN_IF_ERROR(AdoptNewSize());
      continue;
    }
    if (rc) return LmdbStatus(rc, "begin read transaction");
    out->txn_ = txn;
    out->lock_ = std::move(lock);
    return Status::OK();
  }
  return Status::Busy("map resized repeatedly while opening a read transaction");
}

Status LmdbEnv::Check(int rc, std::string_view what) {
  if (rc == MDB_MAP_FULL) map_full_ = true;
  // Damage is reported with the file it is in: "reading format: MDB_CORRUPTED"
  // alone does not say which of the store's files to restore.
  if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_BAD_TXN || rc == MDB_INVALID)
    return LmdbStatus(rc, fmt::format("{}/data.mdb: {}", dir_, what));
  return LmdbStatus(rc, what);
}

Status LmdbEnv::Grow() {
  std::unique_lock lock(resize_mu_);
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  size_t cur = info.me_mapsize;
  size_t step = std::min<size_t>(cur, size_t{8} << 30);  // double, at most +8 GiB a time
  int rc = mdb_env_set_mapsize(env_, cur + step);
  if (rc) return LmdbStatus(rc, "growing the map");
  growths_.fetch_add(1);
  return Status::OK();
}

Status LmdbEnv::Write(const std::function<Status(MDB_txn*)>& fn) {
  if (options_.read_only)
    return Status::IOError(fmt::format("{} is on a read-only file system: the store can be read, not written", dir_));
  hard_failure_ = false;
  for (int attempt = 0; attempt < 64; ++attempt) {
    std::shared_lock lock(resize_mu_);
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    if (rc == MDB_MAP_RESIZED) {
      lock.unlock();
      RILL_RETURN_IF_ERROR(AdoptNewSize());
      continue;
    }
    if (rc) return LmdbStatus(rc, "begin write transaction");
    map_full_ = false;
    Status s = fn(txn);
    if (s.ok() && options_.before_commit) {
      s = options_.before_commit();
      if (!s.ok()) {
        mdb_txn_abort(txn);
        return s;
      }
    }
    if (!s.ok()) {
      mdb_txn_abort(txn);
      if (map_full_) {
        lock.unlock();
        RILL_RETURN_IF_ERROR(Grow());
        continue;
      }
      return s;
    }
    rc = mdb_txn_commit(txn);
    if (rc == MDB_MAP_FULL) {
      lock.unlock();
      RILL_RETURN_IF_ERROR(Grow());
      continue;
    }
    if (rc) {
      // EIO/ENOSPC from write or fsync: LMDB has aborted the transaction. An
      // fsync error may have dropped pages the kernel will not write again,
      // so the caller must treat this as fatal rather than retry.
      hard_failure_ = true;
      // LMDB reports a short page write as EIO, hiding ENOSPC: say so when
      // the filesystem is (nearly) full, the cause a user can fix.
      struct statvfs fs {};
      if ((rc == EIO || rc == ENOSPC) && ::statvfs(dir_.c_str(), &fs) == 0 &&
          static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize < (16u << 20))
        return LmdbStatus(rc, fmt::format("commit: no space left on device ({} KiB free in {})",
                                          static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize / 1024, dir_));
      return LmdbStatus(rc, "commit");
    }
    return Status::OK();
  }
  return Status::IOError("the map kept filling up while writing one transaction");
}

Status LmdbEnv::Sync(bool force) {
  if (options_.read_only) return Status::OK();  // nothing was written
  return LmdbStatus(mdb_env_sync(env_, force ? 1 : 0), "fsync");
}

Status LmdbEnv::CopyCompact(const std::string& dest_dir, const std::function<bool()>& should_stop,
                            const std::function<void(uint64_t copied)>& copied) {
  std::error_code ec;
  std::filesystem::create_directories(dest_dir, ec);
  if (ec) return Status::IOError(fmt::format("cannot create {}: {}", dest_dir, ec.message()));
  struct stat source {};
  mode_t mode = ::stat((dir_ + "/data.mdb").c_str(), &source) == 0 ? (source.st_mode & 07777) : 0644;
  const std::string target = dest_dir + "/data.mdb";
  int out = ::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (out < 0) return Status::IOError(fmt::format("cannot create {}: {}", target, std::strerror(errno)));
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    int err = errno;
    ::close(out);
    ::unlink(target.c_str());
    return Status::IOError(fmt::format("copying to {}: pipe: {}", dest_dir, std::strerror(err)));
  }
  std::shared_lock lock(resize_mu_);
  // LMDB's copy blocks SIGPIPE in its writer thread and reports EPIPE: a
  // stop is closing the pipe's read end.
  int copy_rc = 0;
  std::thread writer;
  Status started = StartThread(&writer, "backup copy", [&] {
    copy_rc = mdb_env_copyfd2(env_, pipe_fds[1], MDB_CP_COMPACT);
    ::close(pipe_fds[1]);
  });
  if (!started.ok()) {
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    ::close(out);
    ::unlink(target.c_str());
    return started;
  }
  Status result;
  std::vector<char> buffer(1 << 20);
  uint64_t total = 0;
  for (;;) {
    if (should_stop && should_stop()) {
      result = Status::Interrupted(fmt::format("copying to {} stopped after {} bytes", dest_dir, total));
      break;
    }
    ssize_t n = ::read(pipe_fds[0], buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      result = Status::IOError(fmt::format("copying to {}: {}", dest_dir, std::strerror(errno)));
      break;
    }
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(out, buffer.data() + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        result = Status::IOError(fmt::format("cannot write {}: {}", target, std::strerror(errno)));
        break;
      }
      done += w;
    }
    if (!result.ok()) break;
    total += static_cast<uint64_t>(n);
    if (copied) copied(total);
  }
  ::close(pipe_fds[0]);  // a copy still writing gets EPIPE and ends
  writer.join();
  if (result.ok() && copy_rc != 0) result = LmdbStatus(copy_rc, fmt::format("copying to {}", dest_dir));
  if (::close(out) != 0 && result.ok())
    result = Status::IOError(fmt::format("cannot write {}: {}", target, std::strerror(errno)));
  if (!result.ok()) ::unlink(target.c_str());
  return result;
}

LmdbEnv::Usage LmdbEnv::GetUsage() {
  MDB_envinfo info;
  MDB_stat st;
  mdb_env_info(env_, &info);
  mdb_env_stat(env_, &st);
  Usage u{};
  u.map_bytes = info.me_mapsize;
  u.used_bytes = (info.me_last_pgno + 1) * static_cast<uint64_t>(st.ms_psize);
  struct stat fs {};
  if (::stat((dir_ + "/data.mdb").c_str(), &fs) == 0) u.file_bytes = fs.st_size;
  return u;
}

}  // namespace rill
