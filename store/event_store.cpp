// The EventStore implementation: opening, the reads, checkpoints, snapshots
// and operations. The group-commit writer is in group_commit_writer.cpp and
// the indexer in stream_indexer.cpp; both are members of StoreImpl.
#include "store/internal/lmdb_log.h"
#include "store/internal/log_cursor.h"
#include "store/internal/store_impl.h"
#include "store/durable_file.h"
#include "store/start_thread.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <unordered_map>

namespace fs = std::filesystem;

namespace rill {

std::string ReadModelDir(const std::string& d) { return d + "/readmodels"; }

mode_t StoreFileMode(const std::string& dir) {
  struct stat st {};
  return ::stat((dir + "/log/data.mdb").c_str(), &st) == 0 ? (st.st_mode & 07777) : 0666;
}
std::string ProjectionsDir(const std::string& d) { return d + "/projections"; }
std::string MigrationsDir(const std::string& d) { return d + "/migrations"; }

std::future<Result<AppendResult>> EventStore::AppendAsync(AppendRequest request) {
  auto promise = std::make_shared<std::promise<Result<AppendResult>>>();
  auto future = promise->get_future();
  AppendAsync(std::move(request), [promise](Result<AppendResult> r) { promise->set_value(std::move(r)); });
  return future;
}

Result<AppendResult> EventStore::Append(AppendRequest request) { return AppendAsync(std::move(request)).get(); }

bool EventStore::Exists(const std::string& dir) {
  std::error_code ec;
  return fs::exists(fs::path(dir) / "log" / "data.mdb", ec);
}

Status EventStore::Probe(const std::string& dir) {
  const std::string log = dir + "/log/data.mdb";
  struct stat st {};
  if (::stat(log.c_str(), &st) == 0) return Status::OK();
  int err = errno;
  if (err == ENOENT || err == ENOTDIR) return Status::NotFound(fmt::format("no rill store at {}", dir));
  // EACCES, EIO, ELOOP...: whether a store is there is unknown, and saying
  // "no store" would invite an init over it.
  return Status::IOError(fmt::format("cannot look for a store at {}: {}: {}", dir, log, std::strerror(err)));
}

void EnsureStdDescriptors() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) == -1) {
      int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
      if (n >= 0 && n != fd) {
        dup2(n, fd);
        close(n);
      }
    }
  }
}

Status EventStore::Init(const std::string& dir) {
  if (Exists(dir)) return Status::Conflict(fmt::format("a rill store already exists at {}", dir));
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    return Status::InvalidArgument(fmt::format("{} exists and is not a directory", dir));
  // A store is made in a new or empty directory (or one holding only what an
  // operator prepares for a store: rill.conf, projections/, migrations/,
  // plugins/; a file system's lost+found), never in one full of other files: `init` in a home directory
  // or in / is a slip, and a later `rm -r` of the "store" would take them.
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name != "rill.conf" && name != "projections" && name != "migrations" && name != "plugins" &&
        name != "readmodels" && name != "lost+found")
      return Status::FailedPrecondition(fmt::format(
          "{} is not empty and is not a rill store (it holds {}): make a store in a new or empty directory", dir,
          name));
  }
  StoreOptions o;
  o.create_if_missing = true;
  auto s = Open(dir, o);
  return s.status();
}

static const char kMetaFormat[] = "format";
static const char kMetaStoreId[] = "store_id";

Result<std::unique_ptr<EventStore>> EventStore::Open(const std::string& dir, const StoreOptions& options) {
  EnsureStdDescriptors();
  bool fresh = !Exists(dir);
  if (fresh && !options.create_if_missing) return Status::NotFound(fmt::format("no rill store at {}", dir));
  std::error_code ec;
  if (fresh) {
    fs::create_directories(dir, ec);
    if (ec) return Status::IOError(fmt::format("cannot create {}: {}", dir, ec.message()));
  }
  auto impl = std::unique_ptr<StoreImpl>(new StoreImpl(dir, options));
  RILL_RETURN_IF_ERROR(impl->OpenLog(fresh));
  RILL_RETURN_IF_ERROR(impl->OpenIndex());
  RILL_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<EventStore>(std::move(impl));
}

StoreImpl::StoreImpl(std::string dir, StoreOptions options)
    : dir_(std::move(dir)), options_(std::move(options)), env_(options_.env ? options_.env : Env::Default()) {}

StoreImpl::~StoreImpl() { Stop(); }

Status StoreImpl::OpenLog(bool fresh) {
  struct statvfs fs_info {};
  read_only_ = !fresh && ::statvfs(dir_.c_str(), &fs_info) == 0 && (fs_info.f_flag & ST_RDONLY) != 0;
  LmdbEnv::Options o;
  o.initial_map_bytes = options_.initial_map_bytes;
  o.sync = options_.durability == Durability::kSync;
  o.before_commit = [env = env_] { return env->AtFault(FaultPoint::kBeforeLogCommit); };
  o.read_only = read_only_;
  auto env = LmdbEnv::Open(dir_ + "/log", o);
  if (!env.ok()) return env.status();
  log_env_ = std::move(env).value();
  auto a = log_env_->OpenDb("log");
  if (!a.ok()) return a.status();
  log_db_ = *a;
  log_ = std::make_unique<LmdbLog>(log_env_.get(), log_db_);
  auto b = log_env_->OpenDb("meta");
  if (!b.ok()) return b.status();
  meta_db_ = *b;
  auto c = log_env_->OpenDb("checkpoints");
  if (!c.ok()) return c.status();
  checkpoints_db_ = *c;

  // Format version and store id: written once, checked on every open.
  auto check = [&](MDB_txn* txn) -> Status {
    MDB_val k = Val(kMetaFormat), v;
    int rc = mdb_get(txn, meta_db_, &k, &v);
    if (rc == MDB_NOTFOUND) {
      // An existing log without its format mark was emptied or replaced
      // (e.g. truncated to 0 bytes, which LMDB takes for a new file):
      // starting a new log over it would report a lost store as clean.
      if (!fresh)
        return Status::Corruption(fmt::format(
            "{}/log/data.mdb has no rill format mark: the log was emptied or replaced (restore it from a backup)", dir_));
      std::string fmtv = std::to_string(kFormatVersion);
      store_id_ = Uuid::Generate().ToString();
      MDB_val fv = Val(fmtv), ik = Val(kMetaStoreId), iv = Val(store_id_);
      RILL_RETURN_IF_ERROR(log_env_->Check(mdb_put(txn, meta_db_, &k, &fv, 0), "writing format"));
      return log_env_->Check(mdb_put(txn, meta_db_, &ik, &iv, 0), "writing store id");
    }
    if (rc) return log_env_->Check(rc, "reading format");
    std::string found(View(v));
    if (found != std::to_string(kFormatVersion))
      return Status::InvalidArgument(fmt::format(
          "store {} has format version {}; this rill reads format {} only", dir_, found, kFormatVersion));
    MDB_val ik = Val(kMetaStoreId), iv;
    if (mdb_get(txn, meta_db_, &ik, &iv) == 0) store_id_ = std::string(View(iv));
    return Status::OK();
  };
  if (!read_only_) return log_env_->Write(check);
  LmdbEnv::ReadTxn txn;
  RILL_RETURN_IF_ERROR(log_env_->BeginRead(&txn));
  return check(txn.get());
}

Status StoreImpl::OpenIndexEnv() {
  LmdbEnv::Options o;
  o.initial_map_bytes = options_.initial_map_bytes;
  o.sync = false;  // derived: never fsync'd, rebuilt from the log
  o.read_only = read_only_;
  auto env = LmdbEnv::Open(dir_ + "/index", o);
  if (!env.ok()) return env.status();
  index_env_ = std::move(env).value();
  for (auto [name, dbi] : {std::pair{"streams", &streams_db_}, {"stream_index", &stream_index_db_},
                           {"commands", &commands_db_}, {"snapshots", &snapshots_db_}, {"indexed", &indexed_db_}}) {
    auto r = index_env_->OpenDb(name);
    if (!r.ok()) return r.status();
    *dbi = *r;
  }
  // The index belongs to this log: a copied-in or foreign index is rebuilt.
  auto check = [&](MDB_txn* txn) -> Status {
    MDB_val k = Val(kMetaStoreId), v;
    int rc = mdb_get(txn, indexed_db_, &k, &v);
    if (rc == MDB_NOTFOUND && read_only_) return Status::Corruption("index has no owner mark");
    if (rc == MDB_NOTFOUND) {
      MDB_val nv = Val(store_id_);
      RILL_RETURN_IF_ERROR(index_env_->Check(mdb_put(txn, indexed_db_, &k, &nv, 0), "writing index owner"));
    } else if (rc) {
      return index_env_->Check(rc, "reading index owner");
    } else if (View(v) != store_id_) {
      return Status::Corruption("index belongs to another store");
    }
    // A new index gets the mark here. Format 1 (no mark) kept one position
    // per stream_index key: runs of one, which format 2 reads as they are.
    // Any other layout is rebuilt.
    MDB_val fk = Val(kIndexFormatKey), fv;
    rc = mdb_get(txn, indexed_db_, &fk, &fv);
    if (rc == MDB_NOTFOUND && read_only_) return Status::Corruption("index has no format mark");
    if (rc == MDB_NOTFOUND) {
      MDB_val nf = Val(kIndexFormat);
      return index_env_->Check(mdb_put(txn, indexed_db_, &fk, &nf, 0), "writing index format");
    }
    if (rc) return index_env_->Check(rc, "reading index format");
    if (View(fv) != kIndexFormat)
      return Status::Corruption(
          fmt::format("index has format {}, this rill writes {}", std::string(View(fv)), kIndexFormat));
    return Status::OK();
  };
  if (!read_only_) return index_env_->Write(check);
  LmdbEnv::ReadTxn txn;
  RILL_RETURN_IF_ERROR(index_env_->BeginRead(&txn));
  return check(txn.get());
}

Status StoreImpl::DropIndex() {
  index_env_.reset();
  std::error_code ec;
  fs::remove_all(dir_ + "/index", ec);
  if (ec) return Status::IOError(fmt::format("cannot remove {}/index: {}", dir_, ec.message()));
  std::lock_guard lock(tail_.mu);
  tail_.UnlinkWriterLocked();
  tail_.streams.clear();
  tail_.requests.clear();
  tail_.order.clear();
  tail_.request_order.clear();
  tail_.indexed = 0;
  tail_.known_end = 0;
  ++tail_.foreign_events;
  return Status::OK();
}

Status StoreImpl::OpenIndex() {
  Status s = OpenIndexEnv();
  if (s.ok()) {
    auto indexed = ReadIndexedPosition();
    Result<uint64_t> last = LastLogPosition();
    if (!last.ok()) return last.status().WithContext("reading the log");
    if (!indexed.ok()) s = indexed.status();
    else if (*indexed > *last)
      s = Status::Corruption(fmt::format("index is ahead of the log ({} > {})", *indexed, *last));
    else {
      std::lock_guard lock(tail_.mu);
      tail_.indexed = tail_.known_end = *indexed;
    }
  }
  if (!s.ok()) {
    // The index is never the only copy of anything: on evidence that it is
    // damaged, foreign or ahead of the log (Corruption), throw it away. Any
    // other failure (ENOMEM, EMFILE, EACCES, a full disk) says nothing about
    // the index, and rebuilding would cost its snapshots: it is an error.
    if (s.code() != Code::kCorruption) return s.WithContext(fmt::format("opening the index {}/index", dir_));
    if (read_only_)
      return s.WithContext(fmt::format(
          "the index {}/index must be rebuilt, and the store is on a read-only file system (rill backup copies it "
          "to where it can be)",
          dir_));
    index_rebuilds_++;
    RILL_RETURN_IF_ERROR(DropIndex());
    RILL_RETURN_IF_ERROR(OpenIndexEnv());
  }
  // Catch up synchronously so a fresh process starts with an empty tail. A
  // read-only store cannot: its reads past the index come from the tail.
  for (; !read_only_;) {
    auto n = IndexOnce(options_.index_batch_events);
    if (!n.ok()) {
      // A damaged record stops the index there; the store still opens so
      // `rill check` and reads of the good part work.
      if (n.status().code() != Code::kCorruption) return n.status().WithContext("indexing the log");
      std::lock_guard lock(index_mu_);
      index_error_ = n.status();
      break;
    }
    if (*n == 0) break;
  }
  return Status::OK();
}

Status StoreImpl::Start() {
  if (read_only_) return Status::OK();  // nothing to write, nothing to index
  {
    std::lock_guard lock(completer_mu_);
    completer_stop_ = false;
  }
  RILL_RETURN_IF_ERROR(StartThread(&completer_thread_, "completer", [this] { CompleterLoop(); }));
  Status s = StartThread(&writer_thread_, "writer", [this] {
    pthread_setname_np(pthread_self(), "rill-writer");  // for top -H, perf and the benches
    WriterLoop();
  });
  if (!s.ok()) {
    StopCompleter();
    return s;
  }
  s = StartThread(&indexer_thread_, "indexer", [this] { IndexerLoop(); });
  if (!s.ok()) Stop();
  return s;
}

void StoreImpl::Stop() {
  if (!queue_.Close()) return;
  if (writer_thread_.joinable()) writer_thread_.join();
  {
    std::lock_guard lock(index_mu_);
    index_stop_ = true;
  }
  index_cv_.notify_all();
  if (indexer_thread_.joinable()) indexer_thread_.join();
  if (log_env_ && options_.durability == Durability::kAsync) (void)log_env_->Sync(true);
}

Result<uint64_t> StoreImpl::LastLogPosition() {
  LmdbEnv::ReadTxn txn;
  RILL_RETURN_IF_ERROR(log_env_->BeginRead(&txn));
  return LastLogPositionIn(txn.get());
}

Result<uint64_t> StoreImpl::LastLogPositionIn(MDB_txn* txn) { return log_->Reader(txn).LastPosition(); }

uint64_t StoreImpl::LastPosition() {
  (void)CatchUpTail();  // best effort: a failure leaves the last known end
  std::lock_guard lock(tail_.mu);
  return tail_.known_end;
}

Result<uint64_t> StoreImpl::ReadIndexedPosition() {
  LmdbEnv::ReadTxn txn;
  RILL_RETURN_IF_ERROR(index_env_->BeginRead(&txn));
  return IndexedIn(txn.get());
}

Result<uint64_t> StoreImpl::IndexedIn(MDB_txn* txn) {
  MDB_val k = Val(kIndexedKey), v;
  int rc = mdb_get(txn, indexed_db_, &k, &v);
  if (rc == MDB_NOTFOUND) return uint64_t{0};
  RILL_RETURN_IF_ERROR(index_env_->Check(rc, "reading the indexed position"));
  if (v.mv_size != 8) return Status::Corruption(fmt::format("index: the indexed position has {} bytes", v.mv_size));
  return GetBigEndian64(v.mv_data);
}

// Brings log entries written by other processes into the tail, so this
// process's reads and version checks see them. One cursor probe when nothing
// is new.
Status StoreImpl::CatchUpTail() {
  LmdbEnv::ReadTxn txn;
  RILL_RETURN_IF_ERROR(log_env_->BeginRead(&txn));
  LmdbLogReader log = log_->Reader(txn.get());
  return CatchUpTailIn(log);
}

Status StoreImpl::CatchUpTailIn(LogReader& log) {
  Result<uint64_t> last_at = log.LastPosition();
  if (!last_at.ok()) return last_at.status();
  uint64_t last = *last_at;
  uint64_t from;
  OwnCommit own;
  {
    std::lock_guard lock(tail_.mu);
    if (last <= tail_.known_end) return Status::OK();
    from = tail_.known_end + 1;
    // Our writer's batches at the log's end, if that is where they are.
    if (own_commit_.first && own_commit_.last == last) {
      own = own_commit_;
      if (own_pending_.first && own_pending_.last + 1 == own.first) own.first = own_pending_.first;
    } else if (own_pending_.first && own_pending_.last == last) {
      own = own_pending_;
    }
  }
  if (own.first && own.first >= from) {
    // Our writer's batches, committed and about to enter the tail (see
    // own_commit_) if the record at their end is the one it wrote.
    // (A failed read only means reading them below, as anyone else's.)
    Result<std::string_view> at_end = log.Get(own.last);
    RecordView rv;
    if (at_end.ok() && DecodeRecord(*at_end, &rv, /*verify_crc=*/false).ok() && rv.id == own.last_id) {
      last = own.first - 1;
      if (last < from) return Status::OK();
    }
  }
  std::vector<std::string> records;
  RILL_RETURN_IF_ERROR(log.Scan(from, last, [&](uint64_t, std::string_view record) {
    records.emplace_back(record);
    return Status::OK();
  }));
  std::lock_guard lock(tail_.mu);
  for (const auto& r : records) {
    RecordView rv;
    Status s = DecodeRecord(r, &rv);
    if (!s.ok()) return s;
    if (rv.position > tail_.known_end) tail_.AddLocked(rv);
  }
  commit_cv_.notify_all();
  return Status::OK();
}

// The head of one stream as this process knows it: the tail overlaid on the
// index. The index read transaction is opened while the tail lock is held:
// the indexer trims the tail only after its commit, so anything trimmed is
// visible to that transaction.
Result<StreamInfo> StoreImpl::StreamHead(const std::string& stream, StreamRecord* index_record) {
  StreamInfo info;
  info.name = stream;
  std::optional<UnindexedTail::Stream> tail;
  LmdbEnv::ReadTxn txn;
  {
    std::lock_guard lock(tail_.mu);
    if (auto it = tail_.streams.find(stream); it != tail_.streams.end()) {
      tail.emplace();
      if (!it->second.entries.empty())
        tail->entries.emplace_back(it->second.entries.back().first, it->second.entries.back().second);
      tail->deleted = it->second.deleted;
      tail->metadata = it->second.metadata;
    }
    RILL_RETURN_IF_ERROR(index_env_->BeginRead(&txn));
  }
  MDB_val k = Val(stream), v;
  int rc = mdb_get(txn.get(), streams_db_, &k, &v);
  std::optional<StreamRecord> rec;
  if (rc == 0) {
    rec.emplace();
    if (!StreamRecord::Decode(View(v), &*rec))
      return Status::Corruption(fmt::format("stream record of {} is damaged", stream));
    if (index_record) *index_record = *rec;
  } else if (rc != MDB_NOTFOUND) {
    return LmdbStatus(rc, "reading stream head");
  }
  if (!tail && !rec) return Status::NotFound(fmt::format("stream {} does not exist", stream));
  if (rec) {
    info.head_version = rec->head_version;
    info.head_position = rec->head_position;
    info.deleted = rec->deleted;
    info.metadata = rec->metadata;
  }
  // The tail is newer than the index wherever it says something.
  if (tail) {
    if (!tail->entries.empty() && tail->entries.back().first > info.head_version) {
      info.head_version = tail->entries.back().first;
      info.head_position = tail->entries.back().second;
    }
    if (tail->deleted) info.deleted = *tail->deleted;
    if (tail->metadata) info.metadata = *tail->metadata;
  }
  return info;
}

Result<StreamInfo> StoreImpl::GetStream(const std::string& stream) {
  RILL_RETURN_IF_ERROR(CatchUpTail());
  return StreamHead(stream, nullptr);
}

static bool Visible(const StreamInfo& info, uint64_t version, int64_t time_us, int64_t now) {
  const auto& m = info.metadata;
  if (m.truncate_before && version < m.truncate_before) return false;
  if (m.max_count && info.head_version >= m.max_count && version <= info.head_version - m.max_count) return false;
  if (m.max_age_us && time_us < now - m.max_age_us) return false;
  return true;
}

Status StoreImpl::FetchRecord(MDB_txn* log_txn, uint64_t position, Event* out) {
  char key[8];
  PutBigEndian64(key, position);
  MDB_val k = Val(key, 8), v;
  int rc = mdb_get(log_txn, log_db_, &k, &v);
  if (rc == MDB_NOTFOUND) return Status::Corruption(fmt::format("index points at position {}, which the log lacks", position));
  RILL_RETURN_IF_ERROR(LmdbStatus(rc, "reading the log"));
  RecordView rv;
  RILL_RETURN_IF_ERROR(DecodeRecord(View(v), &rv));
  if (rv.position != position)
    return Status::Corruption(fmt::format("record under key {} says it is position {}", position, rv.position));
  *out = ToEvent(rv);
  return Status::OK();
}

Status StoreImpl::Transform(Event& e) {
  if (!options_.read_transform) return Status::OK();
  // Format the context only on failure: this runs for every event read.
  Status s = options_.read_transform(e);
  if (s.ok()) return s;
  return s.WithContext(fmt::format("upcasting event at position {}", e.position));
}

Status StoreImpl::Deliver(Event&& e, bool forward, std::vector<Event>* out, size_t* added) {
  if (!options_.read_expand) {
    RILL_RETURN_IF_ERROR(Transform(e));
    out->push_back(std::move(e));
    *added = 1;
    return Status::OK();
  }
  const uint64_t position = e.position;
  const size_t before = out->size();
  auto read_stored = [this](const std::string& stream, uint64_t version, Event* stored) -> Status {
    std::vector<Event> v;
    RILL_RETURN_IF_ERROR(ReadStream(stream, Direction::kForward, version, 1, &v, /*raw=*/true));
    if (v.empty() || v[0].version != version)
      return Status::NotFound(fmt::format("{} has no version {}", stream, version));
    *stored = std::move(v[0]);
    return Status::OK();
  };
  Status s = options_.read_expand(std::move(e), read_stored, out);
  if (!s.ok()) {
    out->resize(before);
    return s.WithContext(fmt::format("upcasting event at position {}", position));
  }
  *added = out->size() - before;
  for (size_t i = before; i < out->size(); ++i) {
    (*out)[i].part = static_cast<uint32_t>(i - before);
    (*out)[i].parts = static_cast<uint32_t>(*added);
  }
  if (!forward) std::reverse(out->begin() + static_cast<std::ptrdiff_t>(before), out->end());
  return Status::OK();
}

Status StoreImpl::ReadAsStored(Event event, std::vector<Event>* out) {
  size_t added = 0;
  return Deliver(std::move(event), true, out, &added);
}

Status StoreImpl::ReadStream(const std::string& stream, Direction dir, uint64_t from, size_t max_count,
                             std::vector<Event>* out, const ReadOptions& options) {
  const bool raw = options.raw;
  RILL_RETURN_IF_ERROR(CatchUpTail());
  // Positions of the stream's versions: index up to its high-water mark, the
  // tail above it. Both taken under the tail lock (see StreamHead).
  std::vector<std::pair<uint64_t, uint64_t>> tail_entries;
  LmdbEnv::ReadTxn itxn;
  {
    std::lock_guard lock(tail_.mu);
    if (auto it = tail_.streams.find(stream); it != tail_.streams.end())
      tail_entries.assign(it->second.entries.begin(), it->second.entries.end());
    RILL_RETURN_IF_ERROR(index_env_->BeginRead(&itxn));
  }
  auto head = StreamHead(stream, nullptr);
  if (!head.ok()) return head.status();
  if (head->deleted && !raw) return Status::NotFound(fmt::format("stream {} is deleted", stream));
  if (head->head_version == 0) return raw ? Status::OK() : Status::NotFound(fmt::format("stream {} does not exist", stream));

  Result<uint64_t> indexed_at = IndexedIn(itxn.get());
  if (!indexed_at.ok()) return indexed_at.status();
  uint64_t indexed = *indexed_at;
  uint64_t number = 0;
  {
    MDB_val k = Val(stream), v;
    StreamRecord r;
    if (mdb_get(itxn.get(), streams_db_, &k, &v) == 0 && StreamRecord::Decode(View(v), &r)) number = r.number;
  }
  LmdbEnv::ReadTxn ltxn;
  RILL_RETURN_IF_ERROR(log_env_->BeginRead(&ltxn));
  int64_t now = env_->NowMicros();
  bool forward = dir == Direction::kForward;
  uint64_t start = forward ? std::max<uint64_t>(from, 1) : (from == 0 ? head->head_version : from);

  // Versions to positions, in read order, stopping at max_count visible.
  size_t produced = 0;
  auto emit = [&](uint64_t version, uint64_t position) -> Status {
    Event e;
    RILL_RETURN_IF_ERROR(FetchRecord(ltxn.get(), position, &e));
    if (e.stream != stream || e.version != version)
      return Status::Corruption(fmt::format("index says {}@{} is at position {}, the log disagrees", stream, version, position));
    if (!raw && !options.all_versions && !Visible(*head, version, e.time_us, now)) return Status::OK();
    size_t added = 1;
    if (raw) {
      out->push_back(std::move(e));
    } else {
      RILL_RETURN_IF_ERROR(Deliver(std::move(e), forward, out, &added));
    }
    if (added > 0) produced++;  // an event merged into a neighbour does not count
    return Status::OK();
  };
  // Tail entries above the index's mark, in version order.
  std::vector<std::pair<uint64_t, uint64_t>> above;
  for (auto& p : tail_entries)
    if (p.second > indexed) above.push_back(p);
  uint64_t first_tail_version = above.empty() ? UINT64_MAX : above.front().first;

  auto read_index = [&](uint64_t v_from, bool fwd, uint64_t v_limit) -> Status {
    // Reads indexed versions of the stream from its stream_index runs;
    // v_limit bounds them (exclusive for forward: stop before the tail's
    // first version).
    if (number == 0) return Status::OK();
    LmdbCursor c;
    RILL_RETURN_IF_ERROR(c.Open(itxn.get(), stream_index_db_, "cursor"));
    using Run = StreamIndexRun;
    char key[Run::kKeyBytes];
    Run::EncodeKey(key, number, v_from);
    MDB_val k = Val(key, Run::kKeyBytes), v;
    auto ours = [&] {
      return Run::IsKey(k.mv_size) && Run::Number(k.mv_data) == number && v.mv_size >= Run::kPositionBytes;
    };
    auto first_of = [&] { return Run::FirstVersion(k.mv_data); };
    auto runs = [&] { return static_cast<uint64_t>(Run::Count(v.mv_size)); };
    // The run holding v_from starts at it (the key SET_RANGE finds) or
    // before it (the key before that).
    int rc = c.Get(&k, &v, MDB_SET_RANGE);
    uint64_t at = 0;  // index in the current run
    if (!(rc == 0 && ours() && first_of() == v_from)) {
      rc = rc == 0 ? c.Get(&k, &v, MDB_PREV) : c.Get(&k, &v, MDB_LAST);
      bool before = rc == 0 && ours() && first_of() < v_from;
      if (fwd && !(before && first_of() + runs() > v_from)) {
        k = Val(key, Run::kKeyBytes);  // v_from is in no run: start at the next one
        rc = c.Get(&k, &v, MDB_SET_RANGE);
      } else if (before) {
        at = std::min(v_from - first_of(), runs() - 1);
      } else {
        rc = MDB_NOTFOUND;  // backward, and no run starts at or before v_from
      }
    }
    Status s;
    bool stop = false;
    while (rc == 0 && !stop && produced < max_count && ours()) {
      const char* p = static_cast<const char*>(v.mv_data);
      uint64_t first = first_of(), n = runs();
      for (uint64_t i = at; i < n && produced < max_count; fwd ? ++i : --i) {
        uint64_t ver = first + i, pos = Run::Position(p, i);
        if ((fwd && ver >= v_limit) || pos > indexed) {
          stop = true;
          break;
        }
        s = emit(ver, pos);
        if (!s.ok()) break;
      }
      if (!s.ok()) break;
      rc = c.Get(&k, &v, fwd ? MDB_NEXT : MDB_PREV);
      at = fwd || rc != 0 || v.mv_size < Run::kPositionBytes ? 0 : runs() - 1;
    }
    // A failed read is an error, never a shorter stream.
    if (s.ok() && rc != 0 && rc != MDB_NOTFOUND) s = LmdbStatus(rc, "reading stream_index");
    return s;
  };

  if (forward) {
    if (start < first_tail_version) RILL_RETURN_IF_ERROR(read_index(start, true, first_tail_version));
    for (auto& [ver, pos] : above) {
      if (produced >= max_count) break;
      if (ver >= start) RILL_RETURN_IF_ERROR(emit(ver, pos));
    }
  } else {
    for (auto it = above.rbegin(); it != above.rend() && produced < max_count; ++it)
      if (it->first <= start) RILL_RETURN_IF_ERROR(emit(it->first, it->second));
    uint64_t idx_start = std::min(start, first_tail_version == UINT64_MAX ? start : first_tail_version - 1);
    if (produced < max_count && idx_start >= 1) RILL_RETURN_IF_ERROR(read_index(idx_start, false, 0));
  }
  return Status::OK();
}

Status StoreImpl::ReadAll(uint64_t from, size_t max_count, std::vector<Event>* out, bool raw) {
  LmdbEnv::ReadTxn txn;
  RILL_RETURN_IF_ERROR(log_env_->BeginRead(&txn));
  LogCursor c;
  RILL_RETURN_IF_ERROR(c.Open(txn.get(), log_db_, log_->file()));
  size_t n = 0;
  RILL_RETURN_IF_ERROR(c.Seek(std::max<uint64_t>(from, 1)));
  while (c.valid() && n < max_count) {
    RecordView rv;
    RILL_RETURN_IF_ERROR(c.Decode(&rv));
    if (rv.position != c.position())
      return Status::Corruption(fmt::format("record under key {} says it is position {}", c.position(), rv.position));
    Event e = ToEvent(rv);
    size_t added = 1;
    if (raw) out->push_back(std::move(e));
    else RILL_RETURN_IF_ERROR(Deliver(std::move(e), /*forward=*/true, out, &added));
    if (added > 0) ++n;  // an event merged into a neighbour does not count
    RILL_RETURN_IF_ERROR(c.Next());
  }
  return Status::OK();
}

Status StoreImpl::ListStreams(const std::string& category, std::vector<StreamInfo>* out, bool include_system) {
  RILL_RETURN_IF_ERROR(CatchUpTail());
  std::map<std::string, StreamInfo> found;
  std::vector<std::string> tail_names;
  LmdbEnv::ReadTxn txn;
  {
    std::lock_guard lock(tail_.mu);
    for (auto& [name, st] : tail_.streams)
      if (!st.Empty()) tail_names.push_back(name);
    RILL_RETURN_IF_ERROR(index_env_->BeginRead(&txn));
  }
  auto wanted = [&](std::string_view name) {
    if (!include_system && !name.empty() && name[0] == '$') return false;
    return category.empty() || CategoryOf(name) == category;
  };
  LmdbCursor c;
  RILL_RETURN_IF_ERROR(c.Open(txn.get(), streams_db_, "cursor"));
  MDB_val k = Val(category), v;
  int rc = category.empty() ? c.Get(&k, &v, MDB_FIRST) : c.Get(&k, &v, MDB_SET_RANGE);
  while (rc == 0) {
    std::string_view name = View(k);
    if (!category.empty() && name.substr(0, category.size()) != category) break;
    if (wanted(name)) {
      StreamRecord r;
      if (StreamRecord::Decode(View(v), &r)) {
        StreamInfo info{std::string(name), r.head_version, r.head_position, r.deleted, r.metadata};
        found.emplace(info.name, info);
      }
    }
    rc = c.Get(&k, &v, MDB_NEXT);
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return LmdbStatus(rc, "listing streams");  // (0: past the category)
  c.Close();
  txn.Reset();
  for (auto& name : tail_names) {
    if (!wanted(name)) continue;
    auto h = StreamHead(name, nullptr);
    if (h.ok()) found[name] = *h;
  }
  for (auto& [name, info] : found)
    if (info.head_version > 0 || info.deleted) out->push_back(std::move(info));
  return Status::OK();
}

Result<AppendResult> StoreImpl::LookupRequest(const std::string& id) {
  RILL_RETURN_IF_ERROR(CatchUpTail());
  auto r = FindRequest(id);
  if (!r.ok()) return r.status();
  AppendResult out = r->outcome;
  out.duplicate = true;
  return out;
}

Result<RequestRecord> StoreImpl::FindRequest(const std::string& id) {
  LmdbEnv::ReadTxn txn;
  {
    std::lock_guard lock(tail_.mu);
    if (auto it = tail_.requests.find(id); it != tail_.requests.end()) return it->second;
    RILL_RETURN_IF_ERROR(index_env_->BeginRead(&txn));
  }
  MDB_val k = Val(id), v;
  int rc = mdb_get(txn.get(), commands_db_, &k, &v);
  if (rc == MDB_NOTFOUND) return Status::NotFound(fmt::format("no request with id {}", id));
  RILL_RETURN_IF_ERROR(LmdbStatus(rc, "reading request ids"));
  RequestRecord r;
  if (!RequestRecord::Decode(id, View(v), &r)) return Status::Corruption(fmt::format("request record {} is damaged", id));
  return r;
}

// ---- Checkpoints ------------------------------------------------------------

Result<uint64_t> StoreImpl::GetCheckpoint(const std::string& name) {
  LmdbEnv::ReadTxn txn;
  RILL_RETURN_IF_ERROR(log_env_->BeginRead(&txn));
  MDB_val k = Val(name), v;
  int rc = mdb_get(txn.get(), checkpoints_db_, &k, &v);
  if (rc == MDB_NOTFOUND) return uint64_t{0};
  RILL_RETURN_IF_ERROR(LmdbStatus(rc, "reading checkpoint"));
  if (v.mv_size != 8) return Status::Corruption(fmt::format("checkpoint {} is damaged", name));
  return GetBigEndian64(v.mv_data);
}

Status StoreImpl::SetCheckpoint(const std::string& name, uint64_t position) {
  if (name.empty() || name.size() > 400) return Status::InvalidArgument("checkpoint name must be 1..400 bytes");
  char val[8];
  PutBigEndian64(val, position);
  return log_env_->Write([&](MDB_txn* txn) {
    MDB_val k = Val(name), v = Val(val, 8);
    return log_env_->Check(mdb_put(txn, checkpoints_db_, &k, &v, 0), "writing checkpoint");
  });
}

Status StoreImpl::ListCheckpoints(std::vector<std::pair<std::string, uint64_t>>* out) {
  LmdbEnv::ReadTxn txn;
  RILL_RETURN_IF_ERROR(log_env_->BeginRead(&txn));
  LmdbCursor c;
  RILL_RETURN_IF_ERROR(c.Open(txn.get(), checkpoints_db_, "cursor"));
  MDB_val k, v;
  int rc = c.Get(&k, &v, MDB_FIRST);
  while (rc == 0) {
    if (v.mv_size == 8) out->emplace_back(std::string(View(k)), GetBigEndian64(v.mv_data));
    rc = c.Get(&k, &v, MDB_NEXT);
  }
  if (rc != MDB_NOTFOUND) return LmdbStatus(rc, "listing checkpoints");
  return Status::OK();
}

// ---- Snapshots --------------------------------------------------------------

static std::string EncodeSnapshot(const Snapshot& s) {
  std::string b(12, '\0');
  PutBigEndian64(b.data(), s.version);
  uint32_t schema = s.state_schema;
  std::memcpy(b.data() + 8, &schema, 4);
  b += s.state;
  return b;
}

static bool DecodeSnapshot(std::string_view b, Snapshot* s) {
  if (b.size() < 12) return false;
  s->version = GetBigEndian64(b.data());
  std::memcpy(&s->state_schema, b.data() + 8, 4);
  s->state.assign(b.substr(12));
  return true;
}

Result<Snapshot> StoreImpl::GetSnapshot(const std::string& stream) {
  LmdbEnv::ReadTxn txn;
  RILL_RETURN_IF_ERROR(index_env_->BeginRead(&txn));
  MDB_val k = Val(stream), v;
  int rc = mdb_get(txn.get(), snapshots_db_, &k, &v);
  if (rc == MDB_NOTFOUND) return Status::NotFound(fmt::format("no snapshot of {}", stream));
  RILL_RETURN_IF_ERROR(LmdbStatus(rc, "reading snapshot"));
  Snapshot s;
  if (!DecodeSnapshot(View(v), &s)) return Status::Corruption(fmt::format("snapshot of {} is damaged", stream));
  return s;
}

Status StoreImpl::PutSnapshot(const std::string& stream, const Snapshot& snapshot) {
  RILL_RETURN_IF_ERROR(ValidateStreamName(stream, true));
  std::string b = EncodeSnapshot(snapshot);
  return index_env_->Write([&](MDB_txn* txn) {
    MDB_val k = Val(stream), v = Val(b);
    return index_env_->Check(mdb_put(txn, snapshots_db_, &k, &v, 0), "writing snapshot");
  });
}

Status StoreImpl::DeleteSnapshot(const std::string& stream) {
  return index_env_->Write([&](MDB_txn* txn) -> Status {
    MDB_val k = Val(stream);
    int rc = mdb_del(txn, snapshots_db_, &k, nullptr);
    if (rc == MDB_NOTFOUND) return Status::OK();
    return index_env_->Check(rc, "deleting snapshot");
  });
}

Status StoreImpl::ListSnapshots(std::vector<std::pair<std::string, Snapshot>>* out) {
  LmdbEnv::ReadTxn txn;
  RILL_RETURN_IF_ERROR(index_env_->BeginRead(&txn));
  LmdbCursor c;
  RILL_RETURN_IF_ERROR(c.Open(txn.get(), snapshots_db_, "cursor"));
  MDB_val k, v;
  int rc = c.Get(&k, &v, MDB_FIRST);
  while (rc == 0) {
    Snapshot s;
    if (DecodeSnapshot(View(v), &s)) out->emplace_back(std::string(View(k)), std::move(s));
    rc = c.Get(&k, &v, MDB_NEXT);
  }
  if (rc != MDB_NOTFOUND) return LmdbStatus(rc, "listing snapshots");
  return Status::OK();
}

// ---- Subscriptions -------------------------------------------------------------

namespace {
class LogSubscription : public Subscription {
 public:
  LogSubscription(StoreImpl* store, uint64_t after, bool raw) : store_(store), position_(after), raw_(raw) {}
  Status Next(std::vector<Event>* out, size_t max, std::chrono::milliseconds wait) override {
    auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
      size_t before = out->size();
      RILL_RETURN_IF_ERROR(store_->ReadAll(position_ + 1, max, out, raw_));
      if (out->size() > before) {
        position_ = out->back().position;
        return Status::OK();
      }
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return Status::OK();
      // Woken by this process's commits; polls for other processes' commits.
      store_->WaitForCommit(position_, std::min<std::chrono::steady_clock::time_point>(
                                           deadline, now + std::chrono::milliseconds(50)));
    }
  }
  uint64_t position() const override { return position_; }

 private:
  StoreImpl* store_;
  uint64_t position_;
  bool raw_;
};
}  // namespace

std::unique_ptr<Subscription> StoreImpl::Subscribe(uint64_t after, bool raw) {
  return std::make_unique<LogSubscription>(this, after, raw);
}

void StoreImpl::WaitForCommit(uint64_t after, std::chrono::steady_clock::time_point until) {
  std::unique_lock lock(tail_.mu);
  commit_cv_.wait_until(lock, until, [&] { return tail_.known_end > after; });
}

// ---- Operations -------------------------------------------------------------

StoreStats StoreImpl::Stats() {
  StoreStats s;
  s.events = LastPosition();
  s.store_id = store_id_;
  s.format_version = kFormatVersion;
  {
    std::lock_guard lock(tail_.mu);
    s.indexed_position = tail_.indexed;
  }
  auto lu = log_env_->GetUsage();
  s.log_map_bytes = lu.map_bytes;
  s.log_used_bytes = lu.used_bytes;
  s.log_file_bytes = lu.file_bytes;
  auto iu = index_env_->GetUsage();
  s.index_map_bytes = iu.map_bytes;
  s.index_used_bytes = iu.used_bytes;
  s.index_file_bytes = iu.file_bytes;
  s.batches = batches_.load();
  s.batched_requests = batched_requests_.load();
  s.map_growths = log_env_->map_growths() + index_env_->map_growths();
  {
    std::lock_guard lock(tail_.mu);
    s.foreign_events = tail_.foreign_events;
  }
  // Streams the index knows (system $$ streams included); cheap, unlike a
  // listing.
  LmdbEnv::ReadTxn txn;
  if (index_env_->BeginRead(&txn).ok()) {
    MDB_stat st;
    if (mdb_stat(txn.get(), streams_db_, &st) == 0) s.streams = st.ms_entries;
  }
  return s;
}

Status StoreImpl::Backup(const std::string& dest, const BackupOptions& options) {
  std::error_code ec;
  const bool existed = fs::exists(dest, ec);
  if (existed && !fs::is_empty(dest, ec))
    return Status::Conflict(fmt::format("backup destination {} exists and is not empty", dest));
  // Whatever stops the backup, nothing half-copied is left to be mistaken
  // for a backup.
  auto undo = [&](Status s) {
    std::error_code ignored;
    if (existed) {
      for (auto it = fs::directory_iterator(dest, ignored); !ignored && it != fs::directory_iterator();
           it.increment(ignored))
        fs::remove_all(it->path(), ignored);
    } else {
      fs::remove_all(dest, ignored);
    }
    return s;
  };
  fs::create_directories(dest, ec);
  if (ec) return Status::IOError(fmt::format("cannot create {}: {}", dest, ec.message()));
  uint64_t index_bytes = 0;
  auto report = [&](uint64_t bytes) {
    if (options.progress) options.progress(bytes);
  };
  // Index first, then log: the copy's index may lag its log (it catches up on
  // open) but is never ahead of it.
  Status s = index_env_->CopyCompact(dest + "/index", options.should_stop, [&](uint64_t bytes) {
    index_bytes = bytes;
    report(bytes);
  });
  if (s.ok())
    s = log_env_->CopyCompact(dest + "/log", options.should_stop, [&](uint64_t bytes) { report(index_bytes + bytes); });
  if (!s.ok()) return undo(s);
  // What the operator put beside the store goes along: registered
  // projections, migrations, the config (rill.conf) and the files it names.
  // Read models are derived: a restored store rebuilds them.
  std::vector<std::string> beside = {"projections", "migrations", "rill.conf"};
  beside.insert(beside.end(), options.also_copy.begin(), options.also_copy.end());
  for (const std::string& sub : beside) {
    if (options.should_stop && options.should_stop()) return undo(Status::Interrupted("backup stopped"));
    fs::path relative = fs::path(sub).lexically_normal();
    if (relative.empty() || relative.is_absolute() || *relative.begin() == "..")
      return undo(Status::InvalidArgument(fmt::format("{} is not a path inside the store", sub)));
    fs::path from = fs::path(dir_) / relative;
    fs::path to = fs::path(dest) / sub;
    if (!fs::exists(from, ec) || fs::exists(to, ec)) continue;
    fs::create_directories(to.parent_path(), ec);
    if (!ec) fs::copy(from, to, fs::copy_options::recursive, ec);
    if (ec) return undo(Status::IOError(fmt::format("copying {}: {}", from.string(), ec.message())));
  }
  s = CopyModes(dir_, dest);
  // Durable before the backup is reported: every file and directory of the
  // copy, and the name of the copy in its parent.
  if (s.ok()) s = SyncTree(dest, env_);
  return s.ok() ? s : undo(s);
}

Status StoreImpl::WaitIndexed(uint64_t position) {
  if (read_only_) {
    std::lock_guard lock(tail_.mu);
    if (tail_.indexed >= position) return Status::OK();
    return Status::IOError(fmt::format("{} is on a read-only file system: its index stays at position {}", dir_,
                                       tail_.indexed));
  }
  for (;;) {
    {
      std::lock_guard lock(tail_.mu);
      if (tail_.indexed >= position) return Status::OK();
    }
    {
      std::lock_guard lock(index_mu_);
      if (!index_error_.ok()) return index_error_;
      index_wanted_ = true;
    }
    index_cv_.notify_all();
    std::unique_lock lock(tail_.mu);
    indexed_cv_.wait_for(lock, std::chrono::milliseconds(20), [&] { return tail_.indexed >= position; });
  }
}

Status StoreImpl::Flush() {
  if (read_only_) return Status::OK();  // nothing can have been queued
  // An empty marker request drains the queue behind everything before it.
  std::promise<void> done;
  auto f = done.get_future();
  RILL_RETURN_IF_ERROR(Reserve(/*flush_marker=*/true));
  PendingAppend marker;
  marker.flush_marker = true;
  marker.done = [&done](Result<AppendResult>) { done.set_value(); };
  queue_.Push(std::move(marker));
  f.wait();
  return log_env_->Sync(true);
}

}  // namespace rill
