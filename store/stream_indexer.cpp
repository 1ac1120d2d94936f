// The StreamIndexer: keeps index/ (streams, stream_index, commands) behind
// the log in large sorted batches, on its own thread, without fsync. The
// random-key writes that would cost a page per event on the durable path are
// paid here, many events per page. Several processes may index one store:
// each reads the high-water mark inside its own write transaction.
// Also: Check(), which verifies the log and the index against each other.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <unordered_map>

#include "store/event_store_impl.h"

namespace rill {


Result<uint64_t> StoreImpl::IndexOnce(uint64_t max_events) {
  uint64_t done = 0, mark = 0;
  Status s = index_env_->Write([&](MDB_txn* itxn) -> Status {
    done = 0;
    uint64_t from = IndexedIn(itxn) + 1;
    mark = from - 1;
    uint64_t next_stream = 1;
    {
      MDB_val k = Val(kNextStreamKey), v;
      if (mdb_get(itxn, indexed_db_, &k, &v) == 0 && v.mv_size == 8) next_stream = GetBigEndian64(v.mv_data);
    }
    LmdbEnv::ReadTxn ltxn;
    RILL_RETURN_IF_ERROR(log_env_->BeginRead(&ltxn));
    MDB_cursor* c;
    RILL_RETURN_IF_ERROR(LmdbStatus(mdb_cursor_open(ltxn.get(), log_db_, &c), "cursor"));
    char key[8];
    PutBigEndian64(key, from);
    MDB_val k = Val(key, 8), v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);

    std::unordered_map<std::string, StreamRecord, StringViewHash, std::equal_to<>> touched;
    std::unordered_map<std::string, RequestRecord> requests;
    struct IndexKey {
      uint64_t number, version, position;
    };
    std::vector<IndexKey> keys;
    // Sized up front: growing them re-hashed tens of thousands of streams and
    // re-copied the keys several times per batch.
    {
      uint64_t last = LastLogPositionIn(ltxn.get());
      uint64_t pending = last >= from ? std::min<uint64_t>(last - from + 1, max_events) : 0;
      keys.reserve(pending);
      touched.reserve(std::min<uint64_t>(pending, index_streams_hint_.load(std::memory_order_relaxed) + 1024));
    }
    auto stream_record = [&](std::string_view name) -> Result<StreamRecord*> {
      auto it = touched.find(name);
      if (it != touched.end()) return &it->second;
      std::string n(name);
      StreamRecord r;
      MDB_val sk = Val(n), sv;
      int g = mdb_get(itxn, streams_db_, &sk, &sv);
      if (g == 0) {
        if (!StreamRecord::Decode(View(sv), &r)) return Status::Corruption(fmt::format("stream record of {} is damaged", n));
      } else if (g == MDB_NOTFOUND) {
        r.number = next_stream++;
      } else {
        return index_env_->Check(g, "reading streams");
      }
      return &touched.emplace(std::move(n), r).first->second;
    };
    Status inner;
    while (rc == 0 && done < max_events) {
      uint64_t pos = GetBigEndian64(k.mv_data);
      RecordView rv;
      inner = DecodeRecord(View(v), &rv);
      if (!inner.ok()) break;
      if (pos != from + done || rv.position != pos) {
        inner = Status::Corruption(fmt::format("log has a gap or misplaced record at position {}", from + done));
        break;
      }
      auto sr = stream_record(rv.stream);
      if (!sr.ok()) {
        inner = sr.status();
        break;
      }
      StreamRecord* r = *sr;
      if (rv.version != r->head_version + 1) {
        inner = Status::Corruption(fmt::format("stream {} jumps from version {} to {} at position {}", rv.stream,
                                               r->head_version, rv.version, pos));
        break;
      }
      r->head_version = rv.version;
      r->head_position = pos;
      keys.push_back({r->number, rv.version, pos});
      if (IsMetaStream(rv.stream)) {
        auto tr = stream_record(MetaTarget(rv.stream));
        if (!tr.ok()) {
          inner = tr.status();
          break;
        }
        if (rv.type == kDeleteType) (*tr)->deleted = true;
        if (rv.type == kMetadataType) MetadataFromJson(rv.data, &(*tr)->metadata);
      }
      if (!rv.request_id.empty()) {
        std::string id(rv.request_id);
        auto it = requests.find(id);
        if (it == requests.end()) {
          RequestRecord existing;
          MDB_val rk = Val(id), rvv;
          if (mdb_get(itxn, commands_db_, &rk, &rvv) == 0 && RequestRecord::Decode(id, View(rvv), &existing))
            it = requests.emplace(id, existing).first;
        }
        if (it != requests.end()) {
          auto& o = it->second.outcome;
          // A request's events are consecutive; one that straddles two index
          // batches is extended here.
          if (o.last_position + 1 == pos && o.stream == rv.stream) {
            o.last_version = rv.version;
            o.last_position = pos;
            o.events++;
          }
        } else {
          RequestRecord nr;
          nr.hash = rv.request_hash;
          nr.outcome.stream = std::string(rv.stream);
          nr.outcome.first_version = nr.outcome.last_version = rv.version;
          nr.outcome.first_position = nr.outcome.last_position = pos;
          nr.outcome.events = 1;
          requests.emplace(std::move(id), std::move(nr));
        }
      }
      ++done;
      rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    ltxn.Reset();
    if (!inner.ok() && done == 0) return inner;
    // Index what decoded cleanly; a damaged record stops the index there.
    std::sort(keys.begin(), keys.end(), [](const IndexKey& a, const IndexKey& b) {
      return a.number != b.number ? a.number < b.number : a.version < b.version;
    });
    // One cursor for the sorted puts: LMDB then searches only the current
    // leaf page when the next key falls inside it, instead of descending
    // from the root for every key (mdb_put opens a fresh cursor each time).
    MDB_cursor* ic;
    RILL_RETURN_IF_ERROR(index_env_->Check(mdb_cursor_open(itxn, stream_index_db_, &ic), "cursor"));
    for (const auto& ik : keys) {
      char kb[16], vb[8];
      PutBigEndian64(kb, ik.number);
      PutBigEndian64(kb + 8, ik.version);
      PutBigEndian64(vb, ik.position);
      MDB_val kk = Val(kb, 16), vv = Val(vb, 8);
      int prc = mdb_cursor_put(ic, &kk, &vv, 0);
      if (prc) {
        mdb_cursor_close(ic);
        return index_env_->Check(prc, "writing stream_index");
      }
    }
    mdb_cursor_close(ic);
    std::vector<std::pair<const std::string*, const StreamRecord*>> sorted;
    sorted.reserve(touched.size());
    for (auto& [n, r] : touched) sorted.emplace_back(&n, &r);
    std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return *a.first < *b.first; });
    MDB_cursor* sc;
    RILL_RETURN_IF_ERROR(index_env_->Check(mdb_cursor_open(itxn, streams_db_, &sc), "cursor"));
    for (auto [n, r] : sorted) {
      std::string b = r->Encode();
      MDB_val kk = Val(*n), vv = Val(b);
      int prc = mdb_cursor_put(sc, &kk, &vv, 0);
      if (prc) {
        mdb_cursor_close(sc);
        return index_env_->Check(prc, "writing streams");
      }
    }
    mdb_cursor_close(sc);
    for (auto& [id, r] : requests) {
      std::string b = r.Encode();
      MDB_val kk = Val(id), vv = Val(b);
      RILL_RETURN_IF_ERROR(index_env_->Check(mdb_put(itxn, commands_db_, &kk, &vv, 0), "writing commands"));
    }
    index_streams_hint_.store(touched.size(), std::memory_order_relaxed);
    mark = from - 1 + done;
    char mb[8], nb[8];
    PutBigEndian64(mb, mark);
    PutBigEndian64(nb, next_stream);
    MDB_val mk = Val(kIndexedKey), mv = Val(mb, 8), nk = Val(kNextStreamKey), nv = Val(nb, 8);
    RILL_RETURN_IF_ERROR(index_env_->Check(mdb_put(itxn, indexed_db_, &mk, &mv, 0), "writing indexed"));
    RILL_RETURN_IF_ERROR(index_env_->Check(mdb_put(itxn, indexed_db_, &nk, &nv, 0), "writing next stream"));
    if (!inner.ok()) {
      std::lock_guard lock(index_mu_);
      index_error_ = inner;
    }
    return Status::OK();
  });
  if (!s.ok()) return s;
  // Trim in slices so the writer's lookups never wait behind a long trim.
  for (bool more = true; more;) {
    std::lock_guard lock(tail_.mu);
    more = tail_.TrimLocked(mark, 4096);
  }
  indexed_cv_.notify_all();
  return done;
}

void StoreImpl::IndexerLoop() {
  for (;;) {
    {
      std::unique_lock lock(index_mu_);
      index_cv_.wait_for(lock, options_.index_interval, [&] { return index_stop_ || index_wanted_; });
      if (index_stop_) return;
      index_wanted_ = false;
    }
    for (;;) {
      auto n = IndexOnce(options_.index_batch_events);
      if (!n.ok()) {
        std::lock_guard lock(index_mu_);
        index_error_ = n.status();
        break;
      }
      if (*n > 0) {
        std::lock_guard lock(index_mu_);
        if (index_error_.code() != Code::kCorruption) index_error_ = Status::OK();  // a passing failure
      }
      if (*n < options_.index_batch_events) break;
    }
  }
}

Status StoreImpl::Check(CheckReport* report, bool repair, const std::function<void(uint64_t, uint64_t)>& progress) {
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
  uint64_t last = LastLogPositionIn(log_txn.get());

  // 1. The log: CRCs, positions gapless from 1, versions gapless per stream.
  struct Head {
    uint64_t version = 0, position = 0;
  };
  std::unordered_map<std::string, Head> heads;
  std::vector<uint64_t> fingerprint(last + 1, 0);  // position -> hash(stream, version)
  {
    MDB_cursor* c;
    RILL_RETURN_IF_ERROR(LmdbStatus(mdb_cursor_open(log_txn.get(), log_db_, &c), "cursor"));
    MDB_val k, v;
    uint64_t expect = 1;
    int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    while (rc == 0) {
      uint64_t pos = k.mv_size == 8 ? GetBigEndian64(k.mv_data) : 0;
      if (pos > last) break;
      if (pos != expect) problem(fmt::format("log: position {} follows {} (gap or bad key)", pos, expect - 1));
      expect = pos + 1;
      RecordView rv;
      Status s = DecodeRecord(View(v), &rv);
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
      rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
  }
  log_txn.Reset();
  report->streams_checked = heads.size();
  bool log_clean = report->problems.empty();

  // 2. The index against the log: every stream head, every index entry.
  std::vector<std::string> index_problems;
  Status ws = Status::OK();
  if (log_clean) ws = WaitIndexed(last);
  if (!ws.ok()) {
    index_problems.push_back(fmt::format("index: cannot reach position {}: {}", last, ws.message()));
  } else if (log_clean) {
    LmdbEnv::ReadTxn txn;
    RILL_RETURN_IF_ERROR(index_env_->BeginRead(&txn));
    std::unordered_map<uint64_t, std::string> names;
    MDB_cursor* c;
    RILL_RETURN_IF_ERROR(LmdbStatus(mdb_cursor_open(txn.get(), streams_db_, &c), "cursor"));
    MDB_val k, v;
    size_t seen = 0;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
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
    mdb_cursor_close(c);
    if (seen != heads.size())
      index_problems.push_back(fmt::format("index: knows {} of the log's {} streams", seen, heads.size()));
    uint64_t entries = 0;
    RILL_RETURN_IF_ERROR(LmdbStatus(mdb_cursor_open(txn.get(), stream_index_db_, &c), "cursor"));
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
      ++entries;
      if (k.mv_size != 16 || v.mv_size != 8) {
        index_problems.push_back("index: malformed stream_index entry");
        continue;
      }
      uint64_t num = GetBigEndian64(k.mv_data), ver = GetBigEndian64(static_cast<char*>(k.mv_data) + 8);
      uint64_t pos = GetBigEndian64(v.mv_data);
      if (pos > last) {
        --entries;
        continue;
      }
      auto n = names.find(num);
      if (n == names.end() || pos == 0 || pos > last ||
          fingerprint[pos] != Fnv1a64(std::to_string(ver), Fnv1a64(n->second))) {
        if (index_problems.size() < kMaxProblems)
          index_problems.push_back(fmt::format("index: entry (stream #{}, version {}) -> position {} disagrees with the log", num, ver, pos));
      }
    }
    mdb_cursor_close(c);
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
    indexer_thread_ = std::thread([this] { IndexerLoop(); });
    report->index_rebuilt = true;
    index_rebuilds_++;
  }
  return Status::OK();
}

}  // namespace rill
