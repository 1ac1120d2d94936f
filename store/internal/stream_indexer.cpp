// The StreamIndexer: keeps index/ (streams, stream_index, commands) behind
// the log in large sorted batches, on its own thread, without fsync. The
// random-key writes that would cost a page per event on the durable path are
// paid here, many events per page. Several processes may index one store:
// each reads the high-water mark inside its own write transaction.
#include <fmt/format.h>
#include <pthread.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <unordered_map>

#include "store/internal/log_cursor.h"
#include "store/internal/store_impl.h"
#include "store/start_thread.h"

namespace rill {

// `sorted` = the entries' indexes in name order: by the 16-byte key held
// beside each entry, then, for equal keys, by the whole name.
template <class Entries, class KeyOf, class NameOf>
static void SortByName(const Entries& entries, KeyOf key_of, NameOf name_of,
                       std::vector<IndexScratch::SortKey>* sorted) {
  sorted->clear();
  for (uint32_t i = 0; i < entries.size(); ++i) {
    const IndexScratch::NameKey& key = key_of(i);
    sorted->push_back({key.hi, key.lo, i});
  }
  std::sort(sorted->begin(), sorted->end(), [&](const IndexScratch::SortKey& a, const IndexScratch::SortKey& b) {
    if (a.hi != b.hi) return a.hi < b.hi;
    if (a.lo != b.lo) return a.lo < b.lo;
    return name_of(entries[a.index]) < name_of(entries[b.index]);
  });
}


IndexScratch::NameKey IndexScratch::NameKey::Of(std::string_view name) {
  char b[16] = {};
  std::memcpy(b, name.data(), std::min<size_t>(name.size(), 16));
  return NameKey{GetBigEndian64(b), GetBigEndian64(b + 8), static_cast<uint32_t>(name.size())};
}

// MurmurHash3's finalizer: every input bit reaches the low bits the table
// masks with (names share prefixes, and short ones end in zero padding).
static uint64_t Mix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ull;
  k ^= k >> 33;
  return k;
}

size_t IndexScratch::NameTable::Hash(const NameKey& k, std::string_view name) {
  uint64_t h = Mix64(k.hi ^ Mix64(k.lo ^ k.size));
  if (k.size > 16) h = Mix64(h ^ std::hash<std::string_view>{}(name.substr(16)));
  return static_cast<size_t>(h);
}

uint32_t IndexScratch::FindStream(std::string_view name, uint64_t position) {
  NameKey key = NameKey::Of(name);
  auto next = static_cast<uint32_t>(streams.size());
  uint32_t i = stream_table.Find(name, key, next, [this](uint32_t j) { return streams[j].name; });
  if (i == next) {
    AddNewStream(name, key, position);
  } else if (position < streams[i].first_touch) {
    streams[i].first_touch = position;  // a $$ event named it before its own events did
  }
  return i;
}

uint32_t IndexScratch::AddNewStream(std::string_view name, const NameKey& key, uint64_t position) {
  auto i = static_cast<uint32_t>(streams.size());
  Stream& st = streams.emplace_back();
  stream_keys.push_back(key);
  st.name = name;
  st.first_touch = position;
  st.meta = IsMetaStream(name);
  return i;
}

void IndexScratch::IndexStreamNames() {
  // The names are distinct: each Find adds its stream as entry i.
  for (uint32_t i = 0; i < streams.size(); ++i)
    stream_table.Find(streams[i].name, stream_keys[i], i, [this](uint32_t j) { return streams[j].name; });
}

// The batch's streams are far apart in memory (hundreds of thousands of
// them, in an order unrelated to the one they are walked in), so each first
// touch is a cache and TLB miss. Loops over them ask for the entry a few
// steps ahead: measured, the misses were most of the indexer's own time.
constexpr size_t kPrefetchAhead = 8;
static inline void PrefetchStream(const IndexScratch::Stream* st) {
  const char* p = reinterpret_cast<const char*>(st);
  for (size_t off = 0; off < sizeof *st; off += 64) __builtin_prefetch(p + off);
}

void IndexScratch::AddSystemEvent(const RecordView& rv) {
  uint32_t i = FindStream(MetaTarget(rv.stream), rv.position);
  if (rv.type == kDeleteType) streams[i].set_deleted = true;
  if (rv.type == kMetadataType) {
    StreamMetadata m;
    if (ParseStreamMetadata(rv.data, &m).ok()) {
      uint32_t& slot = streams[i].metadata_slot;
      if (slot == 0) {
        stream_metadata.push_back(m);
        slot = static_cast<uint32_t>(stream_metadata.size());
      } else {
        stream_metadata[slot - 1] = m;
      }
    }
  }
}

void IndexScratch::AddRequestEvent(std::string_view id, std::string_view stream, uint64_t hash, uint64_t version,
                                   uint64_t position) {
  NameKey key = NameKey::Of(id);
  auto next = static_cast<uint32_t>(requests.size());
  uint32_t ri = request_table.Find(id, key, next, [this](uint32_t j) { return requests[j].id; });
  if (ri == next) {
    requests.push_back({id, stream, key, hash, version, version, position, position, 1});
    return;
  }
  Request& o = requests[ri];
  if (o.last_position + 1 == position && o.stream == stream) {
    o.last_version = version;
    o.last_position = position;
    o.events++;
  }
}

// Writes the batch's positions (x.positions, grouped by stream in x.sorted
// order) into stream_index runs through `c` (errors through env->Check, so a
// full map grows). A stream with indexed versions
// has its last run found next to where its new run would go (SET_RANGE lands
// on the following key, the run is just before it) and filled up first.
static Status WriteIndexRuns(LmdbEnv* env, MDB_cursor* c, const IndexScratch& x) {
  using Run = StreamIndexRun;
  char kb[Run::kKeyBytes], vb[Run::kMaxValueBytes];
  uint32_t at = 0;
  for (size_t ki = 0; ki < x.sorted.size(); ++ki) {
    if (ki + kPrefetchAhead < x.sorted.size()) PrefetchStream(&x.streams[x.sorted[ki + kPrefetchAhead].index]);
    const IndexScratch::Stream& st = x.streams[x.sorted[ki].index];
    uint64_t version = st.first_version;
    uint32_t left = st.events;
    Run::EncodeKey(kb, st.record.number, version);
    if (version > 1) {
      MDB_val kk = Val(kb, Run::kKeyBytes), vv;
      int rc = mdb_cursor_get(c, &kk, &vv, MDB_SET_RANGE);
      rc = rc == 0 ? mdb_cursor_get(c, &kk, &vv, MDB_PREV) : rc == MDB_NOTFOUND ? mdb_cursor_get(c, &kk, &vv, MDB_LAST) : rc;
      if (rc != 0 && rc != MDB_NOTFOUND) return env->Check(rc, "reading stream_index");
      uint32_t have = rc == 0 ? Run::Count(vv.mv_size) : 0;
      if (rc == 0 && Run::IsKey(kk.mv_size) && Run::Number(kk.mv_data) == st.record.number &&
          Run::FirstVersion(kk.mv_data) + have == version && have < Run::kMaxEvents &&
          vv.mv_size % Run::kPositionBytes == 0) {
        uint32_t take = std::min(left, Run::kMaxEvents - have);
        std::memcpy(vb, vv.mv_data, vv.mv_size);  // vv points into the page the put rewrites
        for (uint32_t j = 0; j < take; ++j) Run::PutPosition(vb, have + j, x.positions[at + j]);
        char run_key[Run::kKeyBytes];
        std::memcpy(run_key, kk.mv_data, Run::kKeyBytes);
        MDB_val rk = Val(run_key, Run::kKeyBytes), rv = Val(vb, (have + take) * Run::kPositionBytes);
        rc = mdb_cursor_put(c, &rk, &rv, MDB_CURRENT);
        if (rc) return env->Check(rc, "writing stream_index");
        at += take;
        left -= take;
        version += take;
      }
    }
    while (left > 0) {
      uint32_t take = std::min(left, Run::kMaxEvents);
      Run::SetFirstVersion(kb, version);
      for (uint32_t j = 0; j < take; ++j) Run::PutPosition(vb, j, x.positions[at + j]);
      MDB_val kk = Val(kb, Run::kKeyBytes), vv = Val(vb, take * Run::kPositionBytes);
      int rc = mdb_cursor_put(c, &kk, &vv, 0);
      if (rc) return env->Check(rc, "writing stream_index");
      at += take;
      left -= take;
      version += take;
    }
  }
  return Status::OK();
}

// The tail holds every event after the index's mark that this process has
// seen, in log order. Copying its refs (two words each) and request ids
// under the lock keeps the writer waiting for microseconds, not for the
// batch. The streams the refs point to stay valid without the lock: a tail
// stream is erased only when Empty(), and these hold the refs' entries
// until this thread trims them (TrimLocked, after the batch commits).
Result<bool> StoreImpl::ScanTail(uint64_t from, uint64_t max_events, MDB_txn* log_txn, uint64_t* done) {
  IndexScratch& x = index_scratch_;
  {
    std::lock_guard lock(tail_.mu);
    const auto& order = tail_.order;
    if (order.empty() || order.at(0).position > from || order.at(order.size() - 1).position < from) return false;
    size_t skip = from - order.at(0).position;
    size_t n = std::min<size_t>(max_events, order.size() - skip);
    x.refs.resize(n);
    for (size_t i = 0; i < n; ++i) x.refs[i] = order.at(skip + i);
    uint64_t end = from + n;
    for (const auto& [position, id] : tail_.request_order) {
      if (position < from) continue;
      if (position >= end) break;
      auto r = tail_.requests.find(id);
      if (r == tail_.requests.end()) return false;  // cannot happen; the log knows
      x.tail_requests.push_back({position, r->second.hash, x.tail_ids.emplace_back(id)});
    }
  }
  // The ring holds consecutive positions; if it ever did not, index from the
  // log rather than guess.
  for (size_t i = 0; i < x.refs.size(); ++i)
    if (x.refs[i].position != from + i) return false;
  x.event_rank.reserve(x.refs.size());
  const uint64_t batch = ++x.batch_number;
  // Each tail stream is one map entry, so the entry itself says whether the
  // batch has its Stream yet: no name lookups. $$ events name their target
  // by name; they are applied after the loop, with the name table filled.
  const size_t n = x.refs.size();
  for (size_t i = 0; i < n; ++i) {
    if (i + 4 * kPrefetchAhead < n) {
      const auto* ahead = &*x.refs[i + 4 * kPrefetchAhead].stream;
      __builtin_prefetch(ahead);
      __builtin_prefetch(reinterpret_cast<const char*>(ahead) + 64);
    }
    const UnindexedTail::Ref& ref = x.refs[i];
    uint64_t pos = ref.position;
    UnindexedTailStream& node = ref.stream->second;
    if (node.index_batch != batch) {
      node.index_batch = batch;
      node.index_slot = x.AddNewStream(ref.stream->first, IndexScratch::NameKey::Of(ref.stream->first), pos);
    }
    uint32_t si = node.index_slot;
    IndexScratch::Stream& st = x.streams[si];
    if (st.events == 0) st.first_event = pos;
    x.event_rank.push_back(st.events++);
    st.last_position = pos;
    x.event_stream.push_back(si);
    if (st.meta) x.meta_events.push_back(pos);
  }
  if (!x.meta_events.empty()) {
    x.IndexStreamNames();
    for (uint64_t pos : x.meta_events) {
      // Rare: read the record itself for its type and data.
      char key[8];
      PutBigEndian64(key, pos);
      MDB_val k = Val(key, 8), v;
      RILL_RETURN_IF_ERROR(LmdbStatus(mdb_get(log_txn, log_db_, &k, &v), "reading the log"));
      RecordView rv;
      RILL_RETURN_IF_ERROR(DecodeRecord(View(v), &rv));
      x.AddSystemEvent(rv);
    }
  }
  *done = n;
  return true;
}

// The first position in the batch that a stream's stored record rules out
// (its versions would not follow the stored head, or the record is
// damaged), and why: the batch is then redone up to there.
struct IndexCut {
  uint64_t at = UINT64_MAX;
  Status reason;
  bool any() const { return at != UINT64_MAX; }
  void At(uint64_t position, Status why) {
    if (position < at) {
      at = position;
      reason = std::move(why);
    }
  }
};

// Step 1 from the log (the tail does not hold `from`): up to `limit` records
// from `from` grouped by stream into x, *done set to how many. It checks
// positions follow one another and each stream's versions inside the batch;
// a record that breaks either (or fails to decode) ends the scan with the
// reason, what came before it still grouped.
static Status ScanLog(LogCursor& c, IndexScratch& x, uint64_t from, uint64_t limit, uint64_t* done) {
  RILL_RETURN_IF_ERROR(c.Seek(from));
  while (c.valid() && *done < limit) {
    uint64_t pos = c.position();
    RecordView rv;
    RILL_RETURN_IF_ERROR(c.Decode(&rv));
    if (pos != from + *done || rv.position != pos)
      return Status::Corruption(fmt::format("log has a gap or misplaced record at position {}", from + *done));
    uint32_t si = x.FindStream(rv.stream, pos);
    IndexScratch::Stream* st = &x.streams[si];
    if (st->events == 0) {
      st->first_event = pos;
      st->first_version = rv.version;
    } else if (rv.version != st->last_version + 1) {
      return Status::Corruption(fmt::format("stream {} jumps from version {} to {} at position {}", rv.stream,
                                            st->last_version, rv.version, pos));
    }
    st->events++;
    st->last_version = rv.version;
    st->last_position = pos;
    x.event_stream.push_back(si);
    if (IsMetaStream(rv.stream)) x.AddSystemEvent(rv);
    if (!rv.request_id.empty()) x.AddRequestEvent(rv.request_id, rv.stream, rv.request_hash, rv.version, pos);
    ++*done;
    RILL_RETURN_IF_ERROR(c.Next());
  }
  return Status::OK();
}

// Step 2: the touched streams in name order through one cursor on
// `streams`: each stored record is read and the updated one written over it
// (sorted keys keep the cursor on the page it is already on); streams new to
// the index are numbered in the order the log first named them and then
// written in name order. Writes nothing once a stored record rules part of
// the batch out (*cut): the attempt is rolled back and redone shorter.
static Status UpdateStreamRecords(LmdbEnv* env, LmdbCursor& sc, IndexScratch& x, bool from_tail,
                                  uint64_t* next_stream, IndexCut* cut) {
  SortByName(
      x.streams, [&](uint32_t i) -> const auto& { return x.stream_keys[i]; },
      [](const IndexScratch::Stream& st) -> const auto& { return st.name; }, &x.sorted);
  auto update = [&](IndexScratch::Stream& st) {
    StreamRecord& r = st.record;
    if (st.events) {
      r.head_version = st.last_version;
      r.head_position = st.last_position;
    }
    if (st.set_deleted) r.deleted = true;
    if (st.metadata_slot) r.metadata = x.stream_metadata[st.metadata_slot - 1];
  };
  size_t fresh = 0;
  for (size_t ki = 0; ki < x.sorted.size(); ++ki) {
    if (ki + kPrefetchAhead < x.sorted.size()) PrefetchStream(&x.streams[x.sorted[ki + kPrefetchAhead].index]);
    if (ki + kPrefetchAhead / 2 < x.sorted.size())
      __builtin_prefetch(x.streams[x.sorted[ki + kPrefetchAhead / 2].index].name.data());
    IndexScratch::Stream& st = x.streams[x.sorted[ki].index];
    MDB_val sk = Val(st.name), sv;
    int g = sc.Get(&sk, &sv, MDB_SET_KEY);
    // A batch from the tail knows each stream's versions only from here:
    // they follow the stored head, as they did when the writer checked
    // them against this same head.
    auto derive_versions = [&](uint64_t head) {
      if (from_tail && st.events) {
        st.first_version = head + 1;
        st.last_version = head + st.events;
      }
    };
    if (g == MDB_NOTFOUND) {
      st.stored = false;
      st.record = StreamRecord{};
      ++fresh;
      derive_versions(0);
      if (st.events && st.first_version != 1)
        cut->At(st.first_event, Status::Corruption(fmt::format("stream {} jumps from version 0 to {} at position {}",
                                                               st.name, st.first_version, st.first_event)));
      continue;
    }
    if (g != 0) return env->Check(g, "reading streams");
    st.stored = true;
    if (!StreamRecord::Decode(View(sv), &st.record)) {
      cut->At(st.first_touch, Status::Corruption(fmt::format("stream record of {} is damaged", st.name)));
      continue;
    }
    derive_versions(st.record.head_version);
    if (st.events && st.first_version != st.record.head_version + 1) {
      cut->At(st.first_event,
              Status::Corruption(fmt::format("stream {} jumps from version {} to {} at position {}", st.name,
                                             st.record.head_version, st.first_version, st.first_event)));
      continue;
    }
    if (cut->any()) continue;  // the batch is redone shorter: write nothing more
    update(st);
    char b[StreamRecord::kBytes];
    st.record.EncodeTo(b);
    MDB_val vv = Val(b, sizeof b);
    if (int prc = sc.Put(&sk, &vv, MDB_CURRENT)) return env->Check(prc, "writing streams");
  }
  if (cut->any() || !fresh) return Status::OK();
  std::vector<uint32_t>& news = x.cursor;  // borrowed until step 3
  news.clear();
  for (const auto& k : x.sorted)
    if (!x.streams[k.index].stored) news.push_back(k.index);
  std::vector<uint32_t> by_touch(news);
  std::sort(by_touch.begin(), by_touch.end(),
            [&](uint32_t a, uint32_t b) { return x.streams[a].first_touch < x.streams[b].first_touch; });
  for (uint32_t i : by_touch) x.streams[i].record.number = (*next_stream)++;
  for (uint32_t i : news) {
    IndexScratch::Stream& st = x.streams[i];
    update(st);
    char b[StreamRecord::kBytes];
    st.record.EncodeTo(b);
    MDB_val sk = Val(st.name), vv = Val(b, sizeof b);
    if (int prc = sc.Put(&sk, &vv, 0)) return env->Check(prc, "writing streams");
  }
  return Status::OK();
}

// Step 3's input: the batch's positions grouped by stream, streams in
// number order (x.sorted, carrying each stream's event count). A stream's
// events in the batch are its versions first..last in log order, so this
// gives the stream_index keys sorted.
static void GroupPositionsByStream(IndexScratch& x, uint64_t from, uint64_t done) {
  x.sorted.clear();
  for (uint32_t i = 0; i < x.streams.size(); ++i)
    if (x.streams[i].events) x.sorted.push_back({x.streams[i].record.number, x.streams[i].events, i});
  std::sort(x.sorted.begin(), x.sorted.end(), [](const auto& a, const auto& b) { return a.hi < b.hi; });
  x.cursor.assign(x.streams.size(), 0);
  uint32_t at = 0;
  for (const auto& k : x.sorted) {
    x.cursor[k.index] = at;
    at += static_cast<uint32_t>(k.lo);  // the stream's events, carried in the sort key
  }
  x.positions.resize(done);
  for (uint64_t e = 0; e < done; ++e) x.positions[x.cursor[x.event_stream[e]]++] = from + e;
}

// Step 4: `commands`, request id -> outcome, in key order through one
// cursor. A stored record is kept, extended when this batch continues it (a
// request split over two batches).
static Status WriteRequestRecords(LmdbEnv* env, LmdbCursor& c, IndexScratch& x) {
  SortByName(
      x.requests, [&](uint32_t i) -> const auto& { return x.requests[i].key; },
      [](const IndexScratch::Request& q) -> const auto& { return q.id; }, &x.sorted);
  RequestRecord r;
  std::string b;
  for (const auto& sk : x.sorted) {
    const IndexScratch::Request& q = x.requests[sk.index];
    r.hash = q.hash;
    r.outcome.stream.assign(q.stream);
    r.outcome.first_version = q.first_version;
    r.outcome.last_version = q.last_version;
    r.outcome.first_position = q.first_position;
    r.outcome.last_position = q.last_position;
    r.outcome.events = q.events;
    r.EncodeTo(&b);
    MDB_val kk = Val(q.id), vv = Val(b);
    int prc = c.Put(&kk, &vv, MDB_NOOVERWRITE);
    if (prc == MDB_KEYEXIST) {
      // vv is the stored record now.
      RequestRecord stored;
      if (RequestRecord::Decode(q.id, View(vv), &stored)) {
        auto& o = stored.outcome;
        if (o.last_position + 1 != q.first_position || o.stream != q.stream) continue;  // keep it as it is
        o.last_version = q.last_version;
        o.last_position = q.last_position;
        o.events += q.events;
        stored.EncodeTo(&b);
      }
      vv = Val(b);
      prc = c.Put(&kk, &vv, 0);
    }
    if (prc) return env->Check(prc, "writing commands");
  }
  return Status::OK();
}

Result<uint64_t> StoreImpl::NextStreamNumberIn(MDB_txn* index_txn) {
  MDB_val k = Val(kNextStreamKey), v;
  int rc = mdb_get(index_txn, indexed_db_, &k, &v);
  if (rc == MDB_NOTFOUND) return uint64_t{1};
  // Never a guess: numbering from 1 again would give two streams one number.
  RILL_RETURN_IF_ERROR(index_env_->Check(rc, "reading the next stream number"));
  if (v.mv_size != 8) return Status::Corruption(fmt::format("index: the next stream number has {} bytes", v.mv_size));
  return GetBigEndian64(v.mv_data);
}

// One batch, in steps that each touch a stream once: scan (from the tail or
// the log) and group the events by stream, with no index lookups; update
// the touched streams' records (UpdateStreamRecords); write the stream_index
// runs in key order (WriteIndexRuns) and the request ids (WriteRequestRecords);
// then move the mark. A stream new to the index is numbered in the order the
// log first names it.
Result<uint64_t> StoreImpl::IndexOnce(uint64_t max_events) {
  uint64_t done = 0, mark = 0;
  Status damaged;  // a damaged log record or stream record: the index stops before it
  for (;;) {
    IndexCut cut;
    Status s = index_env_->Write([&](MDB_txn* itxn) -> Status {
      IndexScratch& x = index_scratch_;
      x.Clear();
      done = 0;
      cut = IndexCut{};
      Result<uint64_t> indexed = IndexedIn(itxn);
      if (!indexed.ok()) return indexed.status();
      uint64_t from = *indexed + 1;
      mark = from - 1;
      Result<uint64_t> next_stream = NextStreamNumberIn(itxn);
      if (!next_stream.ok()) return next_stream.status();
      // Open until the batch is written: names the log scan puts in x point
      // into its pages.
      LmdbEnv::ReadTxn ltxn;
      RILL_RETURN_IF_ERROR(log_env_->BeginRead(&ltxn));
      // 1. Scan. Events still in the in-memory tail come from there (the
      // writer has checked their versions); the log is read only for what
      // the tail does not hold: a store catching up at open, or another
      // process's appends.
      auto tail_scan = ScanTail(from, max_events, ltxn.get(), &done);
      if (!tail_scan.ok()) return tail_scan.status();
      const bool from_tail = *tail_scan;
      if (!from_tail) {
        // Not our writer's batches that the completer is about to add to
        // the tail: indexed from the log, they would count as foreign.
        uint64_t own_from;
        {
          std::lock_guard lock(tail_.mu);
          own_from = OwnUnlistedLocked();
        }
        uint64_t log_limit = max_events;
        if (own_from) log_limit = own_from <= from ? 0 : std::min<uint64_t>(max_events, own_from - from);
        LogCursor c;
        RILL_RETURN_IF_ERROR(c.Open(ltxn.get(), log_db_, log_->file()));
        Status scanned = ScanLog(c, x, from, log_limit, &done);
        if (!scanned.ok() && done == 0) return scanned;
        // Index what decoded cleanly; it stops there.
        if (!scanned.ok()) cut.reason = scanned;
      }
      // 2. Stream records.
      {
        LmdbCursor sc;
        RILL_RETURN_IF_ERROR(sc.Open(itxn, streams_db_, "opening a cursor on streams"));
        RILL_RETURN_IF_ERROR(UpdateStreamRecords(index_env_.get(), sc, x, from_tail, &*next_stream, &cut));
      }
      if (cut.any()) return cut.reason;  // rolls this attempt back; redone shorter below
      // The tail's request events, now that their versions are known.
      for (const auto& q : x.tail_requests) {
        uint64_t e = q.position - from;
        const IndexScratch::Stream& st = x.streams[x.event_stream[e]];
        x.AddRequestEvent(q.id, st.name, q.hash, st.first_version + x.event_rank[e], q.position);
      }
      // 3. stream_index. One cursor for the sorted writes: LMDB then
      // searches only the current leaf page when the next key falls inside
      // it, instead of descending from the root for every key (mdb_put
      // opens a fresh cursor each time).
      GroupPositionsByStream(x, from, done);
      {
        LmdbCursor ic;
        RILL_RETURN_IF_ERROR(ic.Open(itxn, stream_index_db_, "opening a cursor on stream_index"));
        RILL_RETURN_IF_ERROR(WriteIndexRuns(index_env_.get(), ic.get(), x));
      }
      // 4. commands.
      if (!x.requests.empty()) {
        LmdbCursor rc;
        RILL_RETURN_IF_ERROR(rc.Open(itxn, commands_db_, "opening a cursor on commands"));
        RILL_RETURN_IF_ERROR(WriteRequestRecords(index_env_.get(), rc, x));
      }
      mark = from - 1 + done;
      char mb[8], nb[8];
      PutBigEndian64(mb, mark);
      PutBigEndian64(nb, *next_stream);
      MDB_val mk = Val(kIndexedKey), mv = Val(mb, 8), nk = Val(kNextStreamKey), nv = Val(nb, 8);
      RILL_RETURN_IF_ERROR(index_env_->Check(mdb_put(itxn, indexed_db_, &mk, &mv, 0), "writing indexed"));
      RILL_RETURN_IF_ERROR(index_env_->Check(mdb_put(itxn, indexed_db_, &nk, &nv, 0), "writing next stream"));
      return Status::OK();
    });
    if (cut.any()) {
      // Redo the batch up to the first event the stored records rule out.
      damaged = cut.reason;
      uint64_t from = mark + 1;
      if (cut.at <= from) return damaged;
      max_events = std::min<uint64_t>(max_events, cut.at - from);
      continue;
    }
    if (!s.ok()) return s;
    if (!cut.reason.ok()) damaged = cut.reason;
    break;
  }
  if (!damaged.ok()) {
    std::lock_guard lock(index_mu_);
    index_error_ = damaged;
  }
  // Trim in slices so the writer's lookups never wait behind a long trim.
  for (bool more = true; more;) {
    std::lock_guard lock(tail_.mu);
    more = tail_.TrimLocked(mark, 4096);
  }
  indexed_cv_.notify_all();
  return done;
}

void StoreImpl::IndexerLoop() {
  pthread_setname_np(pthread_self(), "rill-indexer");  // for top -H, perf and the benches
  // A batch costs about the pages it touches, and a batch of many streams
  // touches most of the index's pages however few events it holds: while
  // appends keep coming, the indexer waits for a full batch (the writer asks)
  // or kMaxLagTicks intervals, not for every interval. A store that went
  // quiet is indexed at the next tick.
  constexpr int kMaxLagTicks = 100;
  uint64_t end_at_last_tick = 0;
  int ticks = 0;
  for (;;) {
    bool asked;
    {
      std::unique_lock lock(index_mu_);
      asked = index_cv_.wait_for(lock, options_.index_interval, [&] { return index_stop_ || index_wanted_; });
      if (index_stop_) return;
      index_wanted_ = false;
    }
    if (!asked) {
      uint64_t end;
      {
        std::lock_guard lock(tail_.mu);
        end = tail_.known_end;
      }
      bool growing = end != end_at_last_tick;
      end_at_last_tick = end;
      if (growing && ++ticks < kMaxLagTicks) continue;
    }
    ticks = 0;
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

}  // namespace rill
