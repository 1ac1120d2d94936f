// The checker: verifies the log (CRCs, positions gapless from 1, versions
// gapless per stream) and then the index against it (every stream head,
// every stream_index run), on one log snapshot, so a live store can be
// checked while it takes appends. With repair it rebuilds a damaged index
// from a clean log; a damaged log is only reported (it is the truth: nothing
// else could repair it).
#include <fmt/format.h>

#include <unordered_map>

#include "store/internal/log_cursor.h"
#include "store/internal/store_impl.h"
#include "store/start_thread.h"

namespace rill {

Status StoreImpl::Check(CheckReport* report, bool repair, const std::function<void(uint64_t, uint64_t)>& progress) {
  if (repair && read_only_)
    return Status::IOError(fmt::format("{} is on a read-only file system: check can verify it, not repair it", dir_));
  const size_t kMaxProblems = 100;
  size_t dropped = 0;
  auto problem = [&](std::string p) {
    if (report->problems.size() < kMaxProblems) report->problems.push_back(std::move(p));
    else ++dropped;
  };
  // One log snapshot: appends that land while checking (a live store) are
  // past `last` and left out of every comparison.
  RILL_RETURN_IF_ERROR(Flush());
  LmdbEnv::ReadTxn log_txn;
  RILL_RETURN_IF_ERROR(log_env_->BeginRead(&log_txn));
  Result<uint64_t> last_at = LastLogPositionIn(log_txn.get());
  if (!last_at.ok()) return last_at.status();
  uint64_t last = *last_at;

  // 1. The log: CRCs, positions gapless from 1, versions gapless per stream.
  struct Head {
    uint64_t version = 0, position = 0;
  };
  std::unordered_map<std::string, Head> heads;
  std::vector<uint64_t> fingerprint(last + 1, 0);  // position -> hash(stream, version)
  {
    LogCursor c;
    RILL_RETURN_IF_ERROR(c.Open(log_txn.get(), log_db_, log_->file()));
    uint64_t expect = 1;
    Status read = c.First();
    while (read.ok() && c.valid()) {
      uint64_t pos = c.position();  // 0 for a damaged key
      if (pos > last) break;
      if (pos != expect) problem(fmt::format("log: position {} follows {} (gap or bad key)", pos, expect - 1));
      expect = pos + 1;
      RecordView rv;
      Status s = c.Decode(&rv);
      if (!s.ok()) {
        problem(fmt::format("log: position {}: {}", pos, s.message()));
      } else if (rv.position != pos) {
        problem(fmt::format("log: key {} holds the record of position {}", pos, rv.position));
      } else {
        auto& h = heads[std::string(rv.stream)];
        if (rv.version != h.version + 1)
          problem(fmt::format("log: stream {} goes from version {} to {} at position {}", rv.stream, h.version,
                              rv.version, pos));
        h.version = rv.version;
        h.position = pos;
        if (pos <= last) fingerprint[pos] = Fnv1a64(std::to_string(rv.version), Fnv1a64(rv.stream));
      }
      report->events_checked++;
      if (progress && report->events_checked % 65536 == 0) progress(report->events_checked, last);
      read = c.Next();
    }
    // A page LMDB cannot read (a torn copy) ends the walk: say where, in
    // which file, instead of a later "MDB_BAD_TXN" naming neither.
    if (!read.ok())
      problem(fmt::format("log: {}/log/data.mdb cannot be read after position {} (of {}): {}", dir_, expect - 1, last,
                          read.message()));
  }
  log_txn.Reset();
  report->streams_checked = heads.size();
  bool log_clean = report->problems.empty();

  // 2. The index against the log: every stream head, every index entry.
  std::vector<std::string> index_problems;
  Status ws = Status::OK();
  // A read-only store's index cannot catch up (its reads past the index come
  // from the log): one that lags is not compared, which is no damage.
  bool index_behind_read_only = false;
  if (read_only_) {
    std::lock_guard lock(tail_.mu);
    index_behind_read_only = tail_.indexed < last;
  }
  if (log_clean && !index_behind_read_only) ws = WaitIndexed(last);
  if (index_behind_read_only) {
    // Compared once a writable open has caught it up.
  } else if (!ws.ok()) {
    index_problems.push_back(fmt::format("index: cannot reach position {}: {}", last, ws.message()));
  } else if (log_clean) {
    LmdbEnv::ReadTxn txn;
    RILL_RETURN_IF_ERROR(index_env_->BeginRead(&txn));
    std::unordered_map<uint64_t, std::string> names;
    LmdbCursor c;
    RILL_RETURN_IF_ERROR(c.Open(txn.get(), streams_db_, dir_ + "/index/data.mdb: cursor"));
    MDB_val k, v;
    size_t seen = 0;
    int rc;
    for (rc = c.Get(&k, &v, MDB_FIRST); rc == 0; rc = c.Get(&k, &v, MDB_NEXT)) {
      std::string name(View(k));
      StreamRecord r;
      if (!StreamRecord::Decode(View(v), &r)) {
        index_problems.push_back(fmt::format("index: stream record of {} is damaged", name));
        continue;
      }
      names[r.number] = name;
      if (r.head_position > last) {  // moved on since the snapshot
        if (heads.count(name)) ++seen;
        continue;
      }
      auto h = heads.find(name);
      if (h == heads.end()) {
        if (r.head_version != 0) index_problems.push_back(fmt::format("index: stream {} is not in the log", name));
        continue;
      }
      ++seen;
      if (h->second.version != r.head_version || h->second.position != r.head_position)
        index_problems.push_back(fmt::format("index: stream {} head is {}@{}, the log says {}@{}", name,
                                             r.head_version, r.head_position, h->second.version, h->second.position));
    }
    if (rc != MDB_NOTFOUND)
      index_problems.push_back(
          fmt::format("index: {}/index/data.mdb: {}", dir_, LmdbStatus(rc, "streams cannot be read").message()));
    if (seen != heads.size())
      index_problems.push_back(fmt::format("index: knows {} of the log's {} streams", seen, heads.size()));
    uint64_t entries = 0;
    RILL_RETURN_IF_ERROR(c.Open(txn.get(), stream_index_db_, dir_ + "/index/data.mdb: cursor"));
    uint64_t run_end_number = 0, run_end_version = 0;  // where the previous run ended
    for (rc = c.Get(&k, &v, MDB_FIRST); rc == 0; rc = c.Get(&k, &v, MDB_NEXT)) {
      if (!StreamIndexRun::IsKey(k.mv_size) || !StreamIndexRun::IsValue(v.mv_size)) {
        index_problems.push_back("index: malformed stream_index entry");
        continue;
      }
      uint64_t num = StreamIndexRun::Number(k.mv_data), first = StreamIndexRun::FirstVersion(k.mv_data);
      const uint32_t count = StreamIndexRun::Count(v.mv_size);
      if (num == run_end_number && first < run_end_version && index_problems.size() < kMaxProblems)
        index_problems.push_back(fmt::format("index: runs of stream #{} overlap at version {}", num, first));
      run_end_number = num;
      run_end_version = first + count;
      auto n = names.find(num);
      for (size_t i = 0; i < count; ++i) {
        uint64_t ver = first + i, pos = StreamIndexRun::Position(v.mv_data, i);
        if (pos > last) continue;  // indexed after the log snapshot was taken
        ++entries;
        if (n == names.end() || pos == 0 || fingerprint[pos] != Fnv1a64(std::to_string(ver), Fnv1a64(n->second))) {
          if (index_problems.size() < kMaxProblems)
            index_problems.push_back(
                fmt::format("index: entry (stream #{}, version {}) -> position {} disagrees with the log", num, ver, pos));
        }
      }
    }
    if (rc != MDB_NOTFOUND)
      index_problems.push_back(
          fmt::format("index: {}/index/data.mdb: {}", dir_, LmdbStatus(rc, "stream_index cannot be read").message()));
    if (entries != last)
      index_problems.push_back(fmt::format("index: has {} stream entries for {} events", entries, last));
  }
  for (auto& p : index_problems) problem(p);
  if (dropped) report->problems.push_back(fmt::format("... and {} more problems", dropped));

  if (repair && !index_problems.empty() && log_clean) {
    // Rebuild: the index is derived, the log is the truth. The caller
    // guarantees nothing else uses this EventStore while it repairs.
    {
      std::lock_guard lock(index_mu_);
      index_stop_ = true;
    }
    index_cv_.notify_all();
    if (indexer_thread_.joinable()) indexer_thread_.join();
    RILL_RETURN_IF_ERROR(DropIndex());
    RILL_RETURN_IF_ERROR(OpenIndexEnv());
    {
      std::lock_guard lock(index_mu_);
      index_stop_ = false;
      index_error_ = Status::OK();
    }
    for (;;) {
      auto n = IndexOnce(options_.index_batch_events);
      if (!n.ok()) return n.status().WithContext("rebuilding the index");
      if (*n == 0) break;
    }
    RILL_RETURN_IF_ERROR(StartThread(&indexer_thread_, "indexer", [this] { IndexerLoop(); }));
    report->index_rebuilt = true;
    index_rebuilds_++;
  }
  return Status::OK();
}

}  // namespace rill
