// EventStore behaviour on real LMDB environments in temp directories.
#include <lmdb.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include "store/tests/test_util.h"

using namespace rill;
using namespace rill::testing;

namespace {
std::vector<Event> ReadAllEvents(EventStore& s, bool raw = false) {
  std::vector<Event> out;
  BOOST_REQUIRE(s.ReadAll(1, SIZE_MAX, &out, raw).ok());
  return out;
}
void ExpectGapless(const std::vector<Event>& all) {
  std::map<std::string, uint64_t> versions;
  for (size_t i = 0; i < all.size(); ++i) {
    BOOST_REQUIRE_EQUAL(all[i].position, i + 1);
    BOOST_REQUIRE_EQUAL(all[i].version, ++versions[all[i].stream]);
  }
}

// Raw access to a closed store's index/ environment, as a format-1 rill or
// a damaged file would leave it.
struct RawIndex {
  MDB_env* env = nullptr;
  MDB_txn* txn = nullptr;
  explicit RawIndex(const std::string& dir, bool write) {
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 8);
    BOOST_REQUIRE(mdb_env_open(env, (dir + "/index").c_str(), 0, 0644) == 0);
    BOOST_REQUIRE(mdb_txn_begin(env, nullptr, write ? 0 : MDB_RDONLY, &txn) == 0);
  }
  MDB_dbi Db(const char* name) {
    MDB_dbi dbi;
    BOOST_REQUIRE(mdb_dbi_open(txn, name, 0, &dbi) == 0);
    return dbi;
  }
  // stream_index as (stream number, first version, positions) runs.
  std::vector<std::tuple<uint64_t, uint64_t, std::vector<uint64_t>>> Runs() {
    std::vector<std::tuple<uint64_t, uint64_t, std::vector<uint64_t>>> out;
    MDB_cursor* c;
    mdb_cursor_open(txn, Db("stream_index"), &c);
    MDB_val k, v;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
      auto be = [](const void* p) {
        uint64_t x = 0;
        for (int i = 0; i < 8; ++i) x = x << 8 | static_cast<const unsigned char*>(p)[i];
        return x;
      };
      std::vector<uint64_t> pos;
      for (size_t i = 0; i < v.mv_size / 8; ++i) pos.push_back(be(static_cast<char*>(v.mv_data) + 8 * i));
      out.emplace_back(be(k.mv_data), be(static_cast<char*>(k.mv_data) + 8), pos);
    }
    mdb_cursor_close(c);
    return out;
  }
  ~RawIndex() {
    if (txn) mdb_txn_commit(txn);
    mdb_env_close(env);
  }
};

// Every key and value of the index's databases, for byte comparisons.
std::map<std::string, std::map<std::string, std::string>> DumpIndex(const std::string& dir) {
  RawIndex raw(dir, false);
  std::map<std::string, std::map<std::string, std::string>> out;
  for (const char* name : {"streams", "stream_index", "commands", "indexed"}) {
    MDB_cursor* c;
    mdb_cursor_open(raw.txn, raw.Db(name), &c);
    MDB_val k, v;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
      out[name][std::string(static_cast<char*>(k.mv_data), k.mv_size)] =
          std::string(static_cast<char*>(v.mv_data), v.mv_size);
    mdb_cursor_close(c);
  }
  return out;
}

// Every way to read each stream gives exactly the versions the log holds.
void ExpectReadsMatchLog(EventStore& s) {
  std::map<std::string, std::vector<uint64_t>> positions;  // stream -> position of version i+1
  for (const Event& e : ReadAllEvents(s, true)) positions[e.stream].push_back(e.position);
  for (const auto& [stream, pos] : positions) {
    if (stream.rfind("$$", 0) == 0) continue;
    const uint64_t n = pos.size();
    for (uint64_t v = 1; v <= n + 1; ++v) {
      for (size_t count : {size_t{1}, size_t{3}, size_t{70}}) {
        std::vector<Event> fwd, back;
        BOOST_REQUIRE(s.ReadStream(stream, Direction::kForward, v, count, &fwd).ok());
        BOOST_REQUIRE_EQUAL(fwd.size(), std::min<uint64_t>(count, v <= n ? n - v + 1 : 0));
        for (size_t i = 0; i < fwd.size(); ++i) {
          BOOST_REQUIRE_EQUAL(fwd[i].version, v + i);
          BOOST_REQUIRE_EQUAL(fwd[i].position, pos[v + i - 1]);
        }
        BOOST_REQUIRE(s.ReadStream(stream, Direction::kBackward, v, count, &back).ok());
        uint64_t top = std::min(v, n);
        BOOST_REQUIRE_EQUAL(back.size(), std::min<uint64_t>(count, top));
        for (size_t i = 0; i < back.size(); ++i) {
          BOOST_REQUIRE_EQUAL(back[i].version, top - i);
          BOOST_REQUIRE_EQUAL(back[i].position, pos[top - i - 1]);
        }
      }
    }
  }
}
}  // namespace

BOOST_AUTO_TEST_SUITE(event_store)

BOOST_AUTO_TEST_CASE(appends_queued_together_keep_order_and_fail_alone) {
  // EventStore::AppendAsync of a vector: the requests keep their order (a
  // stream's versions follow it), each gets its own outcome, and a bad name
  // or a wrong expectation fails that request and no other.
  TempDir tmp;
  auto s = OpenOrDie(tmp.sub("db"));
  BOOST_REQUIRE(s->Append(MakeAppend("held-1", "E")).ok());  // head 1
  std::vector<std::optional<Result<AppendResult>>> got(200);
  std::vector<EventStore::QueuedRequest> burst;
  for (size_t i = 0; i < got.size(); ++i) {
    AppendRequest r = MakeAppend("held-" + std::to_string(i % 3), "E", "{\"i\":" + std::to_string(i) + "}");
    if (i == 50) r.stream = "";                          // invalid: fails validation at once
    if (i == 51) r.expected = ExpectedVersion::NoStream();  // held-0 exists by then: conflict
    burst.push_back({std::move(r), [&got, i](Result<AppendResult> res) { got[i] = std::move(res); }});
  }
  s->AppendAsync(&burst);
  BOOST_TEST(burst.empty());
  BOOST_REQUIRE(s->Flush().ok());
  BOOST_REQUIRE(s->WaitIndexed(s->LastPosition()).ok());
  for (size_t i = 0; i < got.size(); ++i) {
    BOOST_TEST_CONTEXT("request " << i) {
      BOOST_REQUIRE(got[i].has_value());
      BOOST_TEST(got[i]->ok() == (i != 50 && i != 51));
    }
  }
  BOOST_TEST(got[50]->status().code() == Code::kInvalidArgument);
  BOOST_TEST(got[51]->status().code() == Code::kConflict);
  BOOST_TEST(s->LastPosition() == 1u + 198u);
  // Per stream: versions 1.. in the order the requests were given.
  for (int k = 0; k < 3; ++k) {
    std::string stream = "held-" + std::to_string(k);
    std::vector<Event> events;
    BOOST_REQUIRE(s->ReadStream(stream, Direction::kForward, 1, 1000, &events).ok());
    uint64_t version = 0;
    int last_i = -1;
    for (const Event& e : events) {
      BOOST_TEST(e.version == ++version);
      if (e.data == "{}") continue;  // held-1's first event, appended alone
      int i = std::stoi(e.data.substr(5));
      BOOST_TEST(i > last_i);
      BOOST_TEST(i % 3 == k);
      last_i = i;
    }
  }
  CheckReport rep;
  BOOST_REQUIRE(s->Check(&rep).ok());
  BOOST_TEST(rep.problems.empty());
}

BOOST_AUTO_TEST_CASE(expected_version_matrix) {
  TempDir tmp;
  auto s = OpenOrDie(tmp.sub("db"));
  using EV = ExpectedVersion;
  struct Case {
    EV expected;
    uint64_t head;  // head version before the append
    bool ok;
  };
  // The stream is brought to `head` events, then one append with `expected`.
  std::vector<Case> cases = {
      {EV::Any(), 0, true},       {EV::Any(), 2, true},       {EV::NoStream(), 0, true},
      {EV::NoStream(), 2, false}, {EV::Exists(), 0, false},   {EV::Exists(), 2, true},
      {EV::Exact(0), 0, true},    {EV::Exact(0), 2, false},   {EV::Exact(2), 2, true},
      {EV::Exact(1), 2, false},   {EV::Exact(3), 2, false},   {EV::Exact(5), 0, false},
  };
  int n = 0;
  for (const auto& c : cases) {
    std::string stream = "m-" + std::to_string(n++);
    for (uint64_t i = 0; i < c.head; ++i) BOOST_REQUIRE(s->Append(MakeAppend(stream, "E")).ok());
    uint64_t before = s->LastPosition();
    auto r = s->Append(MakeAppend(stream, "E", "{}", c.expected));
    BOOST_TEST_CONTEXT("expected " << c.expected.ToString() << " head " << c.head) {
      BOOST_TEST(r.ok() == c.ok);
      if (!c.ok) {
        BOOST_TEST(r.status().code() == Code::kConflict);
        // The message names stream, expectation and actual head.
        BOOST_TEST(r.status().message().find(stream) != std::string::npos);
        BOOST_TEST(s->LastPosition() == before);
      } else {
        BOOST_TEST(r->last_version == c.head + 1);
      }
    }
  }
  auto r = s->Append(MakeAppend("m-1", "E", "{}", EV::Exact(1)));
  BOOST_TEST(r.status().message() == "stream m-1: expected version 1 but it is at version 3");
}

BOOST_AUTO_TEST_CASE(conflict_fails_alone_in_its_batch) {
  TempDir tmp;
  StoreOptions o;
  o.max_batch_requests = 10;  // exactly these ten make one batch
  o.max_batch_delay = std::chrono::seconds(10);
  auto s = OpenOrDie(tmp.sub("db"), o);
  std::vector<std::future<Result<AppendResult>>> f;
  for (int i = 0; i < 10; ++i)
    f.push_back(s->AppendAsync(MakeAppend("b-" + std::to_string(i), "E", "{}",
                                          i == 4 ? ExpectedVersion::Exact(7) : ExpectedVersion::NoStream())));
  for (int i = 0; i < 10; ++i) {
    auto r = f[i].get();
    BOOST_TEST(r.ok() == (i != 4));
  }
  BOOST_TEST(s->LastPosition() == 9u);
  BOOST_TEST(s->Stats().batches == 1u);
}

BOOST_AUTO_TEST_CASE(idempotent_appends_across_restart) {
  TempDir tmp;
  AppendResult first;
  {
    auto s = OpenOrDie(tmp.sub("db"));
    BOOST_REQUIRE(s->Append(MakeAppend("x-1", "E")).ok());
    auto r = s->Append(MakeAppend("acc-1", "Deposited", R"({"amount":1})", ExpectedVersion::Any(), "cmd-1"));
    BOOST_REQUIRE(r.ok());
    first = *r;
    BOOST_TEST(!first.duplicate);
    // Same id, same request: the first outcome, nothing written.
    auto again = s->Append(MakeAppend("acc-1", "Deposited", R"({"amount":1})", ExpectedVersion::Any(), "cmd-1"));
    BOOST_REQUIRE(again.ok());
    BOOST_TEST(again->duplicate);
    BOOST_TEST(again->last_position == first.last_position);
    BOOST_TEST(s->LastPosition() == 2u);
    // Same id, different request: conflict.
    auto other = s->Append(MakeAppend("acc-1", "Deposited", R"({"amount":2})", ExpectedVersion::Any(), "cmd-1"));
    BOOST_TEST(other.status().code() == Code::kConflict);
  }
  {
    // Before and after the index has the id.
    auto s = OpenOrDie(tmp.sub("db"));
    auto again = s->Append(MakeAppend("acc-1", "Deposited", R"({"amount":1})", ExpectedVersion::Any(), "cmd-1"));
    BOOST_REQUIRE(again.ok());
    BOOST_TEST(again->duplicate);
    BOOST_TEST(again->first_version == first.first_version);
    BOOST_TEST(again->last_position == first.last_position);
    BOOST_TEST(s->LastPosition() == 2u);
    auto look = s->LookupRequest("cmd-1");
    BOOST_REQUIRE(look.ok());
    BOOST_TEST(look->stream == "acc-1");
  }
  // After the index is thrown away and rebuilt from the log.
  std::filesystem::remove_all(tmp.sub("db/index"));
  auto s = OpenOrDie(tmp.sub("db"));
  auto again = s->Append(MakeAppend("acc-1", "Deposited", R"({"amount":1})", ExpectedVersion::Any(), "cmd-1"));
  BOOST_REQUIRE(again.ok());
  BOOST_TEST(again->duplicate);
  BOOST_TEST(s->LastPosition() == 2u);
}

BOOST_AUTO_TEST_CASE(request_split_over_two_index_batches_keeps_its_whole_outcome) {
  // The indexer takes 3 events per batch: the 5-event request at positions
  // 2..6 is indexed in two parts, and its record in `commands` must still say
  // all 5 (then a retry after a restart, served from the index, gets them).
  TempDir tmp;
  StoreOptions o;
  o.index_batch_events = 3;
  AppendRequest req = MakeAppend("acc-1", "Deposited", R"({"amount":1})", ExpectedVersion::Any(), "cmd-split");
  for (int i = 2; i <= 5; ++i) {
    NewEvent e;
    e.type = "Deposited";
    e.data = R"({"amount":)" + std::to_string(i) + "}";
    req.events.push_back(e);
  }
  {
    auto s = OpenOrDie(tmp.sub("db"), o);
    BOOST_REQUIRE(s->Append(MakeAppend("x-1", "E")).ok());
    auto first = s->Append(req);
    BOOST_REQUIRE(first.ok());
    BOOST_TEST(first->first_position == 2u);
    BOOST_TEST(first->last_position == 6u);
    BOOST_REQUIRE(s->Append(MakeAppend("x-1", "E", "{}", ExpectedVersion::Any(), "cmd-after")).ok());
    BOOST_REQUIRE(s->WaitIndexed(7).ok());
  }
  auto s = OpenOrDie(tmp.sub("db"), o);
  auto look = s->LookupRequest("cmd-split");
  BOOST_REQUIRE(look.ok());
  BOOST_TEST(look->first_version == 1u);
  BOOST_TEST(look->last_version == 5u);
  BOOST_TEST(look->first_position == 2u);
  BOOST_TEST(look->last_position == 6u);
  BOOST_TEST(look->events == 5u);
  auto again = s->Append(req);
  BOOST_REQUIRE(again.ok());
  BOOST_TEST(again->duplicate);
  BOOST_TEST(again->last_position == 6u);
  BOOST_TEST(again->events == 5u);
  BOOST_TEST(s->LastPosition() == 7u);
  auto after = s->LookupRequest("cmd-after");
  BOOST_REQUIRE(after.ok());
  BOOST_TEST(after->first_position == 7u);
}

BOOST_AUTO_TEST_CASE(stream_index_runs_are_extended_split_and_read_every_way) {
  // Batches of 50 events: "hot" fills runs across batches and, with a
  // 150-event request, past StreamIndexRun::kMaxEvents (64) inside one batch; "cold-*"
  // get a version now and then, so their runs grow one batch at a time.
  TempDir tmp;
  StoreOptions o;
  o.index_batch_events = 50;
  {
    auto s = OpenOrDie(tmp.sub("db"), o);
    for (int i = 0; i < 400; ++i) {
      AppendRequest r = MakeAppend(i % 5 ? "hot" : "cold-" + std::to_string(i % 3), "E");
      for (int extra = 0; extra < i % 4; ++extra) r.events.push_back(r.events[0]);
      if (i == 200)
        for (int extra = 0; extra < 150; ++extra) r.events.push_back(r.events[0]);
      BOOST_REQUIRE(s->Append(r).ok());
      if (i % 37 == 0) BOOST_REQUIRE(s->WaitIndexed(s->LastPosition()).ok());
    }
    BOOST_REQUIRE(s->WaitIndexed(s->LastPosition()).ok());
    ExpectReadsMatchLog(*s);
    CheckReport rep;
    BOOST_REQUIRE(s->Check(&rep).ok());
    BOOST_TEST(rep.problems.empty());
  }
  uint64_t events = 0;
  size_t longest = 0;
  std::map<uint64_t, uint64_t> next_version;
  {
    RawIndex raw(tmp.sub("db"), false);
    auto runs = raw.Runs();
    for (const auto& [number, first, pos] : runs) {
      auto& expect = next_version[number];
      BOOST_REQUIRE_EQUAL(first, expect + 1);  // no gap, no overlap
      expect = first + pos.size() - 1;
      events += pos.size();
      longest = std::max(longest, pos.size());
    }
    BOOST_TEST(runs.size() < events / 8);  // runs, not one key per event
  }
  BOOST_TEST(longest == 64u);
  auto s = OpenOrDie(tmp.sub("db"), o);
  BOOST_TEST(events == s->LastPosition());
  ExpectReadsMatchLog(*s);  // and after a restart
}

BOOST_AUTO_TEST_CASE(format_one_index_is_kept_and_extended) {
  // A format-1 index (one position per key, no format mark) is read as
  // runs of one and extended in place: no rebuild, no wrong read.
  TempDir tmp;
  StoreOptions o;
  o.index_batch_events = 10;
  {
    auto s = OpenOrDie(tmp.sub("db"), o);
    for (int i = 0; i < 90; ++i) BOOST_REQUIRE(s->Append(MakeAppend("f-" + std::to_string(i % 2), "E")).ok());
    BOOST_REQUIRE(s->WaitIndexed(90).ok());
  }
  {
    RawIndex raw(tmp.sub("db"), true);
    auto runs = raw.Runs();
    MDB_dbi si = raw.Db("stream_index"), ix = raw.Db("indexed");
    BOOST_REQUIRE(mdb_drop(raw.txn, si, 0) == 0);
    for (const auto& [number, first, pos] : runs)
      for (size_t i = 0; i < pos.size(); ++i) {
        char kb[16], vb[8];
        for (int b = 0; b < 8; ++b) {
          kb[b] = static_cast<char>(number >> (56 - 8 * b));
          kb[8 + b] = static_cast<char>((first + i) >> (56 - 8 * b));
          vb[b] = static_cast<char>(pos[i] >> (56 - 8 * b));
        }
        MDB_val k{16, kb}, v{8, vb};
        BOOST_REQUIRE(mdb_put(raw.txn, si, &k, &v, 0) == 0);
      }
    MDB_val fk{6, const_cast<char*>("format")};
    BOOST_REQUIRE(mdb_del(raw.txn, ix, &fk, nullptr) == 0);
  }
  {
    auto s = OpenOrDie(tmp.sub("db"), o);
    ExpectReadsMatchLog(*s);
    for (int i = 0; i < 30; ++i) BOOST_REQUIRE(s->Append(MakeAppend("f-" + std::to_string(i % 2), "E")).ok());
    BOOST_REQUIRE(s->WaitIndexed(120).ok());
    ExpectReadsMatchLog(*s);
    CheckReport rep;
    BOOST_REQUIRE(s->Check(&rep).ok());
    BOOST_TEST(rep.problems.empty());
    BOOST_TEST(!rep.index_rebuilt);
  }
  RawIndex raw(tmp.sub("db"), false);
  MDB_dbi ix = raw.Db("indexed");
  MDB_val fk{6, const_cast<char*>("format")}, fv;
  BOOST_REQUIRE(mdb_get(raw.txn, ix, &fk, &fv) == 0);
  BOOST_TEST(std::string(static_cast<char*>(fv.mv_data), fv.mv_size) == "2");
  // The last format-1 key of each stream was extended: 45 + 15 versions
  // each, in 45 keys of one then runs filled from the 45th on.
  auto runs = raw.Runs();
  BOOST_TEST(runs.size() < 2u * 45u + 2u);
  BOOST_TEST(std::get<2>(runs.back()).size() > 1u);
}

BOOST_AUTO_TEST_CASE(index_from_the_tail_equals_index_from_the_log) {
  // The indexer thread takes batches from the in-memory tail; a rebuild at
  // open reads the log. Both must write the same bytes: ids, multi-event
  // requests, deletes, metadata, streams new and old, any batch boundaries.
  TempDir tmp;
  StoreOptions o;
  o.index_batch_events = 37;
  {
    auto s = OpenOrDie(tmp.sub("db"), o);
    for (int i = 0; i < 600; ++i) {
      AppendRequest r = MakeAppend("t-" + std::to_string(i * 7 % 23), "E", "{}", ExpectedVersion::Any(),
                                   i % 3 ? "" : "id-" + std::to_string(i));
      for (int extra = 0; extra < i % 5; ++extra) r.events.push_back(r.events[0]);
      BOOST_REQUIRE(s->Append(r).ok());
      if (i < 150 && i % 50 == 0) BOOST_REQUIRE(s->Append(MakeAppend("gone", "E")).ok());
      if (i == 150) BOOST_REQUIRE(s->DeleteStream("gone", ExpectedVersion::Any()).ok());
      if (i == 300) {
        StreamMetadata m;
        m.max_count = 5;
        BOOST_REQUIRE(s->SetStreamMetadata("t-9", m).ok());
      }
      if (i == 400) {
        // A $$ event names a new stream before its own events do, with
        // another new stream between: numbered by that first naming.
        BOOST_REQUIRE(s->WaitIndexed(s->LastPosition()).ok());
        StreamMetadata m;
        m.max_age_us = 1000000;
        BOOST_REQUIRE(s->SetStreamMetadata("named-first", m).ok());
        BOOST_REQUIRE(s->Append(MakeAppend("between", "E")).ok());
        BOOST_REQUIRE(s->Append(MakeAppend("named-first", "E")).ok());
        m.max_age_us = 0;
        m.max_count = 7;  // the batch's last $metadata is the one kept
        BOOST_REQUIRE(s->SetStreamMetadata("named-first", m).ok());
      }
      if (i % 41 == 0) BOOST_REQUIRE(s->WaitIndexed(s->LastPosition()).ok());
    }
    BOOST_REQUIRE(s->WaitIndexed(s->LastPosition()).ok());
  }
  auto from_tail = DumpIndex(tmp.sub("db"));
  std::filesystem::remove_all(tmp.sub("db/index"));
  {
    auto s = OpenOrDie(tmp.sub("db"), o);  // rebuilt from the log at open
    auto info = s->GetStream("named-first");
    BOOST_REQUIRE(info.ok());
    BOOST_TEST(info->metadata.max_count == 7u);
    BOOST_TEST(info->metadata.max_age_us == 0);
  }
  auto from_log = DumpIndex(tmp.sub("db"));
  BOOST_TEST(from_tail["stream_index"].size() > 23u);
  BOOST_TEST(from_tail["commands"].size() == 200u);
  for (const char* db : {"streams", "stream_index", "commands", "indexed"}) {
    BOOST_TEST_CONTEXT(db) {
      BOOST_TEST(from_tail[db].size() == from_log[db].size());
      BOOST_TEST((from_tail[db] == from_log[db]));
    }
  }
}

BOOST_AUTO_TEST_CASE(damaged_stream_index_run_is_found_by_check) {
  TempDir tmp;
  {
    auto s = OpenOrDie(tmp.sub("db"));
    for (int i = 0; i < 20; ++i) BOOST_REQUIRE(s->Append(MakeAppend("d-1", "E")).ok());
    BOOST_REQUIRE(s->WaitIndexed(20).ok());
  }
  {
    RawIndex raw(tmp.sub("db"), true);
    auto runs = raw.Runs();
    BOOST_REQUIRE_EQUAL(runs.size(), 1u);
    MDB_dbi si = raw.Db("stream_index");
    MDB_cursor* c;
    mdb_cursor_open(raw.txn, si, &c);
    MDB_val k, v;
    BOOST_REQUIRE(mdb_cursor_get(c, &k, &v, MDB_FIRST) == 0);
    std::string value(static_cast<char*>(v.mv_data), v.mv_size);
    std::swap(value[8 * 3 + 7], value[8 * 4 + 7]);  // versions 4 and 5 swap positions
    MDB_val nv{value.size(), value.data()};
    BOOST_REQUIRE(mdb_cursor_put(c, &k, &nv, MDB_CURRENT) == 0);
    mdb_cursor_close(c);
  }
  auto s = OpenOrDie(tmp.sub("db"));
  CheckReport rep;
  BOOST_REQUIRE(s->Check(&rep).ok());
  BOOST_REQUIRE_EQUAL(rep.problems.size(), 2u);
  BOOST_TEST(rep.problems[0] == "index: entry (stream #1, version 4) -> position 5 disagrees with the log");
  std::vector<Event> ev;
  BOOST_TEST(s->ReadStream("d-1", Direction::kForward, 1, 10, &ev).code() == Code::kCorruption);
}

BOOST_AUTO_TEST_CASE(gapless_under_eight_concurrent_appenders) {
  TempDir tmp;
  StoreOptions o;
  o.index_batch_events = 1000;  // make the indexer run mid-test
  auto s = OpenOrDie(tmp.sub("db"), o);
  const int kThreads = 8, kPer = 2000;
  std::vector<std::thread> th;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t)
    th.emplace_back([&, t] {
      std::vector<std::future<Result<AppendResult>>> f;
      for (int i = 0; i < kPer; ++i)
        f.push_back(s->AppendAsync(MakeAppend("s-" + std::to_string((t * 7 + i) % 50), "E",
                                              "{\"t\":" + std::to_string(t) + ",\"i\":" + std::to_string(i) + "}")));
      for (auto& x : f)
        if (!x.get().ok()) failures++;
    });
  for (auto& t : th) t.join();
  BOOST_TEST(failures == 0);
  auto all = ReadAllEvents(*s);
  BOOST_REQUIRE_EQUAL(all.size(), size_t(kThreads * kPer));
  ExpectGapless(all);
  BOOST_TEST(s->Stats().batches < uint64_t(kThreads * kPer) / 4);  // group commit batches
  // Stream reads agree with $all, before and after indexing.
  std::vector<Event> st;
  BOOST_REQUIRE(s->ReadStream("s-3", Direction::kForward, 1, SIZE_MAX, &st).ok());
  BOOST_REQUIRE(s->WaitIndexed(s->LastPosition()).ok());
  std::vector<Event> st2;
  BOOST_REQUIRE(s->ReadStream("s-3", Direction::kForward, 1, SIZE_MAX, &st2).ok());
  BOOST_REQUIRE_EQUAL(st.size(), st2.size());
  for (size_t i = 0; i < st.size(); ++i) BOOST_TEST(st[i].position == st2[i].position);
  CheckReport rep;
  BOOST_REQUIRE(s->Check(&rep).ok());
  BOOST_TEST(rep.problems.empty());
}

BOOST_AUTO_TEST_CASE(group_commit_counts_transactions) {
  TempDir tmp;
  StoreOptions o;
  o.max_batch_requests = 100;
  o.max_batch_delay = std::chrono::seconds(5);  // only the count closes a batch
  auto s = OpenOrDie(tmp.sub("db"), o);
  std::vector<std::future<Result<AppendResult>>> f;
  for (int i = 0; i < 1000; ++i) f.push_back(s->AppendAsync(MakeAppend("g-1", "E")));
  for (auto& x : f) BOOST_REQUIRE(x.get().ok());
  BOOST_TEST(s->Stats().batches == 10u);
  BOOST_TEST(s->Stats().batched_requests == 1000u);
}

BOOST_AUTO_TEST_CASE(reads_forward_backward_and_metadata) {
  TempDir tmp;
  FaultEnv env;  // its clock ages the events below
  StoreOptions o;
  o.env = &env;
  auto s = OpenOrDie(tmp.sub("db"), o);
  for (int i = 1; i <= 10; ++i) BOOST_REQUIRE(s->Append(MakeAppend("r-1", "E", "{\"i\":" + std::to_string(i) + "}")).ok());
  for (bool indexed : {false, true}) {
    if (indexed) BOOST_REQUIRE(s->WaitIndexed(s->LastPosition()).ok());
    std::vector<Event> ev;
    BOOST_REQUIRE(s->ReadStream("r-1", Direction::kForward, 4, 3, &ev).ok());
    BOOST_REQUIRE_EQUAL(ev.size(), 3u);
    BOOST_TEST(ev[0].version == 4u);
    BOOST_TEST(ev[2].version == 6u);
    ev.clear();
    BOOST_REQUIRE(s->ReadStream("r-1", Direction::kBackward, 0, 4, &ev).ok());
    BOOST_REQUIRE_EQUAL(ev.size(), 4u);
    BOOST_TEST(ev[0].version == 10u);
    BOOST_TEST(ev[3].version == 7u);
    ev.clear();
    BOOST_REQUIRE(s->ReadStream("r-1", Direction::kBackward, 2, 10, &ev).ok());
    BOOST_REQUIRE_EQUAL(ev.size(), 2u);
    BOOST_TEST(ev[0].version == 2u);
  }
  StreamMetadata m;
  m.max_count = 3;
  BOOST_REQUIRE(s->SetStreamMetadata("r-1", m).ok());
  std::vector<Event> ev;
  BOOST_REQUIRE(s->ReadStream("r-1", Direction::kForward, 1, 100, &ev).ok());
  BOOST_REQUIRE_EQUAL(ev.size(), 3u);
  BOOST_TEST(ev[0].version == 8u);
  m = {};
  m.truncate_before = 9;
  BOOST_REQUIRE(s->SetStreamMetadata("r-1", m).ok());
  BOOST_REQUIRE(s->WaitIndexed(s->LastPosition()).ok());
  ev.clear();
  BOOST_REQUIRE(s->ReadStream("r-1", Direction::kForward, 1, 100, &ev).ok());
  BOOST_REQUIRE_EQUAL(ev.size(), 2u);
  ev.clear();
  BOOST_REQUIRE(s->ReadStream("r-1", Direction::kForward, 1, 100, &ev, /*raw=*/true).ok());
  BOOST_REQUIRE_EQUAL(ev.size(), 10u);
  m = {};
  m.max_age_us = 60'000'000;
  BOOST_REQUIRE(s->SetStreamMetadata("r-1", m).ok());
  ev.clear();
  BOOST_REQUIRE(s->ReadStream("r-1", Direction::kForward, 1, 100, &ev).ok());
  BOOST_TEST(ev.size() == 10u);  // a minute old at most: all visible (the new metadata is only max-age)
  env.Advance(std::chrono::minutes(2));
  ev.clear();
  BOOST_REQUIRE(s->ReadStream("r-1", Direction::kForward, 1, 100, &ev).ok());
  BOOST_TEST(ev.empty());  // two minutes later, all older than a minute
}

BOOST_AUTO_TEST_CASE(tombstone_keeps_all_but_hides_stream) {
  TempDir tmp;
  auto s = OpenOrDie(tmp.sub("db"));
  BOOST_REQUIRE(s->Append(MakeAppend("d-1", "E")).ok());
  BOOST_REQUIRE(s->Append(MakeAppend("d-2", "E")).ok());
  BOOST_TEST(s->DeleteStream("d-1", ExpectedVersion::Exact(5)).code() == Code::kConflict);
  BOOST_REQUIRE(s->DeleteStream("d-1", ExpectedVersion::Exact(1)).ok());
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<Event> ev;
    BOOST_TEST(s->ReadStream("d-1", Direction::kForward, 1, 10, &ev).code() == Code::kNotFound);
    auto r = s->Append(MakeAppend("d-1", "E"));
    BOOST_TEST(r.status().code() == Code::kConflict);
    auto all = ReadAllEvents(*s);
    BOOST_TEST(all.size() == 3u);  // two events and the tombstone
    BOOST_TEST(all[0].stream == "d-1");
    std::vector<StreamInfo> streams;
    BOOST_REQUIRE(s->ListStreams("", &streams).ok());
    BOOST_REQUIRE_EQUAL(streams.size(), 2u);
    BOOST_TEST(streams[0].deleted);
    BOOST_REQUIRE(s->WaitIndexed(s->LastPosition()).ok());
  }
  BOOST_TEST(s->DeleteStream("nope-1", ExpectedVersion::Any()).code() == Code::kNotFound);
}

BOOST_AUTO_TEST_CASE(list_streams_by_category) {
  TempDir tmp;
  auto s = OpenOrDie(tmp.sub("db"));
  for (auto n : {"account-2", "account-1", "sku-9", "accountx-1", "plain"}) BOOST_REQUIRE(s->Append(MakeAppend(n, "E")).ok());
  BOOST_REQUIRE(s->WaitIndexed(3).ok());
  std::vector<StreamInfo> v;
  BOOST_REQUIRE(s->ListStreams("account", &v).ok());
  BOOST_REQUIRE_EQUAL(v.size(), 2u);
  BOOST_TEST(v[0].name == "account-1");
  BOOST_TEST(v[1].name == "account-2");
  v.clear();
  BOOST_REQUIRE(s->ListStreams("", &v).ok());
  BOOST_TEST(v.size() == 5u);
}

BOOST_AUTO_TEST_CASE(bad_input_is_refused_without_sinking_the_batch) {
  TempDir tmp;
  StoreOptions o;
  o.max_event_bytes = 1 << 20;
  o.max_batch_delay = std::chrono::milliseconds(20);
  auto s = OpenOrDie(tmp.sub("db"), o);
  auto good = s->AppendAsync(MakeAppend("ok-1", "E"));
  auto huge = s->AppendAsync(MakeAppend("ok-2", "E", "{\"x\":\"" + std::string(2 << 20, 'a') + "\"}"));
  auto good2 = s->AppendAsync(MakeAppend("ok-3", "E"));
  BOOST_TEST(good.get().ok());
  auto h = huge.get();
  BOOST_TEST(h.status().code() == Code::kInvalidArgument);
  BOOST_TEST(h.status().message().find("limit") != std::string::npos);
  BOOST_TEST(good2.get().ok());
  for (std::string bad : {std::string(""), std::string("$system"), std::string(401, 'a'), std::string("a\nb"),
                          std::string("bad\xff"), std::string("nul\0x", 5)})
    BOOST_TEST(s->Append(MakeAppend(bad, "E")).status().code() == Code::kInvalidArgument);
  BOOST_TEST(s->Append(MakeAppend("ok-4", "$delete")).status().code() == Code::kInvalidArgument);
  BOOST_TEST(s->Append(MakeAppend("ok-4", "")).status().code() == Code::kInvalidArgument);
  AppendRequest empty;
  empty.stream = "ok-5";
  BOOST_TEST(s->Append(empty).status().code() == Code::kInvalidArgument);
  BOOST_TEST(s->LastPosition() == 2u);
}

BOOST_AUTO_TEST_CASE(map_grows_when_full) {
  TempDir tmp;
  StoreOptions o;
  o.initial_map_bytes = 1 << 20;  // 1 MiB: fills after a few thousand events
  auto s = OpenOrDie(tmp.sub("db"), o);
  std::string payload = "{\"pad\":\"" + std::string(1000, 'p') + "\"}";
  std::vector<std::future<Result<AppendResult>>> f;
  for (int i = 0; i < 5000; ++i) f.push_back(s->AppendAsync(MakeAppend("grow-" + std::to_string(i % 100), "E", payload)));
  for (auto& x : f) BOOST_REQUIRE(x.get().ok());
  BOOST_TEST(s->Stats().map_growths > 0u);
  BOOST_TEST(s->LastPosition() == 5000u);
  ExpectGapless(ReadAllEvents(*s));
}

BOOST_AUTO_TEST_CASE(corrupted_record_is_found_by_check) {
  TempDir tmp;
  {
    auto s = OpenOrDie(tmp.sub("db"));
    for (int i = 0; i < 100; ++i)
      BOOST_REQUIRE(s->Append(MakeAppend("c-" + std::to_string(i % 5), "E", "{\"marker\":\"MARK" + std::to_string(i) + "\"}")).ok());
  }
  // Flip one byte inside event 42's payload in data.mdb (every copy: LMDB
  // keeps stale copies of pages it has copied on write).
  std::string path = tmp.sub("db/log/data.mdb");
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), {});
  size_t at = bytes.find("MARK42\"");
  BOOST_REQUIRE(at != std::string::npos);
  for (; at != std::string::npos; at = bytes.find("MARK42\"", at + 1)) {
    f.seekp(at + 4);
    f.put('X');
  }
  f.close();
  auto s = OpenOrDie(tmp.sub("db"));
  CheckReport rep;
  BOOST_REQUIRE(s->Check(&rep).ok());
  BOOST_REQUIRE(!rep.problems.empty());
  BOOST_TEST(rep.problems[0].find("position 43") != std::string::npos);
  BOOST_TEST(rep.problems[0].find("CRC32C") != std::string::npos);
  std::vector<Event> ev;
  BOOST_TEST(s->ReadAll(43, 1, &ev).code() == Code::kCorruption);
}

BOOST_AUTO_TEST_CASE(check_is_clean_on_a_live_store) {
  TempDir tmp;
  StoreOptions o;
  o.index_batch_events = 500;
  auto s = OpenOrDie(tmp.sub("db"), o);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      std::vector<std::future<Result<AppendResult>>> f;
      for (int k = 0; k < 50; ++k) f.push_back(s->AppendAsync(MakeAppend("live-" + std::to_string((i + k) % 40), "E")));
      for (auto& x : f) (void)x.get();
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  for (int round = 0; round < 3; ++round) {
    CheckReport rep;
    BOOST_REQUIRE(s->Check(&rep).ok());
    BOOST_TEST(rep.problems.empty());
    for (auto& p : rep.problems) BOOST_TEST_MESSAGE(p);
    BOOST_TEST(rep.events_checked > 0u);
  }
  stop = true;
  writer.join();
}

BOOST_AUTO_TEST_CASE(damaged_index_is_rebuilt_from_the_log) {
  TempDir tmp;
  {
    auto s = OpenOrDie(tmp.sub("db"));
    for (int i = 0; i < 500; ++i) BOOST_REQUIRE(s->Append(MakeAppend("i-" + std::to_string(i % 7), "E")).ok());
    BOOST_REQUIRE(s->WaitIndexed(500).ok());
  }
  // Garbage where the index was.
  std::filesystem::remove_all(tmp.sub("db/index"));
  std::filesystem::create_directories(tmp.sub("db/index"));
  std::ofstream(tmp.sub("db/index/data.mdb")) << "this is not an LMDB file";
  auto s = OpenOrDie(tmp.sub("db"));
  auto h = s->GetStream("i-3");
  BOOST_REQUIRE(h.ok());
  BOOST_TEST(h->head_version == 71u);  // i = 3, 10, ..., 493
  CheckReport rep;
  BOOST_REQUIRE(s->Check(&rep).ok());
  BOOST_TEST(rep.problems.empty());
}

BOOST_AUTO_TEST_CASE(unknown_format_is_refused) {
  TempDir tmp;
  { OpenOrDie(tmp.sub("db")); }
  {
    MDB_env* env;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 8);
    BOOST_REQUIRE(mdb_env_open(env, tmp.sub("db/log").c_str(), 0, 0644) == 0);
    MDB_txn* txn;
    mdb_txn_begin(env, nullptr, 0, &txn);
    MDB_dbi dbi;
    mdb_dbi_open(txn, "meta", 0, &dbi);
    MDB_val k{6, const_cast<char*>("format")}, v{2, const_cast<char*>("99")};
    mdb_put(txn, dbi, &k, &v, 0);
    mdb_txn_commit(txn);
    mdb_env_close(env);
  }
  auto r = EventStore::Open(tmp.sub("db"), {});
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().message().find("format version 99") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(subscription_catches_up_then_follows) {
  TempDir tmp;
  auto s = OpenOrDie(tmp.sub("db"));
  for (int i = 0; i < 5; ++i) BOOST_REQUIRE(s->Append(MakeAppend("sub-1", "E")).ok());
  auto sub = s->Subscribe(2);
  std::vector<Event> got;
  BOOST_REQUIRE(sub->Next(&got, 100, std::chrono::milliseconds(10)).ok());
  BOOST_REQUIRE_EQUAL(got.size(), 3u);
  BOOST_TEST(got[0].position == 3u);
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    (void)s->Append(MakeAppend("sub-1", "Late"));
  });
  got.clear();
  BOOST_REQUIRE(sub->Next(&got, 100, std::chrono::seconds(5)).ok());
  writer.join();
  BOOST_REQUIRE_EQUAL(got.size(), 1u);
  BOOST_TEST(got[0].type == "Late");
  BOOST_TEST(sub->position() == 6u);
}

BOOST_AUTO_TEST_CASE(two_processes_append_at_once) {
  TempDir tmp;
  { OpenOrDie(tmp.sub("db")); }
  const int kPer = 3000;
  std::vector<pid_t> kids;
  for (int p = 0; p < 2; ++p) {
    pid_t pid = fork();
    if (pid == 0) {
      // The child opens its own environment (never across fork). A small
      // map makes both processes grow it, and adopt each other's growth.
      StoreOptions o;
      o.initial_map_bytes = 1 << 20;
      auto r = EventStore::Open(tmp.sub("db"), o);
      if (!r.ok()) _exit(2);
      auto& s = *r;
      std::vector<std::future<Result<AppendResult>>> f;
      std::string pad(200, 'x');
      for (int i = 0; i < kPer; ++i)
        f.push_back(s->AppendAsync(
            MakeAppend("p-" + std::to_string(i % 10), "E", "{\"p\":" + std::to_string(p) + ",\"pad\":\"" + pad + "\"}")));
      int bad = 0;
      for (auto& x : f) bad += !x.get().ok();
      s.reset();
      _exit(bad ? 1 : 0);
    }
    kids.push_back(pid);
  }
  for (pid_t k : kids) {
    int st;
    waitpid(k, &st, 0);
    BOOST_TEST((WIFEXITED(st) && WEXITSTATUS(st) == 0));
  }
  auto s = OpenOrDie(tmp.sub("db"));
  auto all = ReadAllEvents(*s);
  BOOST_REQUIRE_EQUAL(all.size(), size_t(2 * kPer));
  ExpectGapless(all);
  CheckReport rep;
  BOOST_REQUIRE(s->Check(&rep).ok());
  BOOST_TEST(rep.problems.empty());
}

BOOST_AUTO_TEST_CASE(closed_stderr_never_becomes_a_database_file) {
  TempDir tmp;
  pid_t pid = fork();
  if (pid == 0) {
    close(2);
    StoreOptions o;
    o.create_if_missing = true;
    auto r = EventStore::Open(tmp.sub("db"), o);
    if (!r.ok()) _exit(3);
    char link[256] = {0};
    ssize_t n = readlink("/proc/self/fd/2", link, sizeof link - 1);
    _exit(n > 0 && std::string(link, n) == "/dev/null" ? 0 : 1);
  }
  int st;
  waitpid(pid, &st, 0);
  BOOST_TEST((WIFEXITED(st) && WEXITSTATUS(st) == 0));
}

BOOST_AUTO_TEST_CASE(reader_left_by_killed_process_is_cleared) {
  TempDir tmp;
  { OpenOrDie(tmp.sub("db")); }
  int pipefd[2];
  BOOST_REQUIRE(pipe(pipefd) == 0);
  pid_t pid = fork();
  if (pid == 0) {
    auto r = EventStore::Open(tmp.sub("db"), {});
    std::vector<Event> ev;
    auto sub = (*r)->Subscribe(0);
    // Hold a read transaction open forever.
    MDB_env* env;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 8);
    mdb_env_open(env, tmp.sub("db/log").c_str(), MDB_NOTLS, 0644);
    MDB_txn* txn;
    mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn);
    (void)!write(pipefd[1], "x", 1);
    pause();
    _exit(0);
  }
  char c;
  BOOST_REQUIRE(read(pipefd[0], &c, 1) == 1);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  auto s = OpenOrDie(tmp.sub("db"));  // runs mdb_reader_check
  MDB_env* env;
  mdb_env_create(&env);
  mdb_env_set_maxdbs(env, 8);
  mdb_env_open(env, tmp.sub("db/log").c_str(), MDB_NOTLS, 0644);
  int dead = -1;
  mdb_reader_check(env, &dead);
  BOOST_TEST(dead == 0);  // already cleared by Open
  mdb_env_close(env);
  BOOST_TEST(s->Append(MakeAppend("after-1", "E")).ok());
}

BOOST_AUTO_TEST_CASE(failed_commit_fails_its_callers_and_the_store_goes_on) {
  TempDir tmp;
  std::atomic<int> fail_next{0};
  StoreOptions o;
  testing::FaultEnv env;
  o.env = &env;
  env.on_fault = [&](FaultPoint point) {
    if (point != FaultPoint::kBeforeLogCommit) return Status::OK();
    return fail_next.exchange(0) ? Status::IOError("injected write failure") : Status::OK();
  };
  auto s = OpenOrDie(tmp.sub("db"), o);
  BOOST_REQUIRE(s->Append(MakeAppend("f-1", "E")).ok());
  fail_next = 1;
  auto r = s->Append(MakeAppend("f-1", "E"));
  BOOST_TEST(r.status().code() == Code::kIOError);
  auto r2 = s->Append(MakeAppend("f-1", "E"));
  BOOST_REQUIRE(r2.ok());
  BOOST_TEST(r2->last_version == 2u);  // the failed batch left no trace
  ExpectGapless(ReadAllEvents(*s));
}

BOOST_AUTO_TEST_CASE(checkpoints_and_snapshots_persist) {
  TempDir tmp;
  {
    auto s = OpenOrDie(tmp.sub("db"));
    BOOST_REQUIRE(s->SetCheckpoint("proj", 42).ok());
    BOOST_REQUIRE(s->PutSnapshot("account-1", Snapshot{3, 2, R"({"balance":5})"}).ok());
  }
  auto s = OpenOrDie(tmp.sub("db"));
  BOOST_TEST(*s->GetCheckpoint("proj") == 42u);
  BOOST_TEST(*s->GetCheckpoint("none") == 0u);
  auto snap = s->GetSnapshot("account-1");
  BOOST_REQUIRE(snap.ok());
  BOOST_TEST(snap->version == 3u);
  BOOST_TEST(snap->state_schema == 2u);
  BOOST_TEST(snap->state == R"({"balance":5})");
  BOOST_REQUIRE(s->DeleteSnapshot("account-1").ok());
  BOOST_TEST(s->GetSnapshot("account-1").status().code() == Code::kNotFound);
}

BOOST_AUTO_TEST_CASE(backup_is_a_consistent_store) {
  TempDir tmp;
  auto s = OpenOrDie(tmp.sub("db"));
  std::atomic<bool> stop{false};
  std::atomic<int> acked{0};
  std::thread writer([&] {
    int i = 0;
    while (!stop)
      if (s->Append(MakeAppend("bk-" + std::to_string(i++ % 3), "E")).ok()) ++acked;
  });
  // The backup must start with writers running and something committed; on a
  // loaded machine 50 ms may not be enough for the first fsync.
  while (acked < 3) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  // Files kept beside the store travel with it.
  {
    std::ofstream(tmp.sub("db") + "/rill.conf") << "durability = async\n";
    std::filesystem::create_directories(tmp.sub("db") + "/projections");
    std::ofstream(tmp.sub("db") + "/projections/p.sql") << "-- rill projection: p\n";
  }
  BOOST_REQUIRE(s->Backup(tmp.sub("copy")).ok());
  auto slurp = [](const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  BOOST_TEST(slurp(tmp.sub("copy") + "/rill.conf") == "durability = async\n");
  BOOST_TEST(slurp(tmp.sub("copy") + "/projections/p.sql") == "-- rill projection: p\n");
  stop = true;
  writer.join();
  auto copy = OpenOrDie(tmp.sub("copy"));
  auto all = ReadAllEvents(*copy);
  BOOST_TEST(!all.empty());
  ExpectGapless(all);
  CheckReport rep;
  BOOST_REQUIRE(copy->Check(&rep).ok());
  BOOST_TEST(rep.problems.empty());
  BOOST_TEST(s->Backup(tmp.sub("copy")).code() == Code::kConflict);
}

// A stopped backup (SIGINT in the CLI) and a failed one leave nothing that
// could be taken for a backup; a finished one keeps every source mode and
// carries the extra files it is given.
BOOST_AUTO_TEST_CASE(backup_stops_cleanly_keeps_modes_and_carries_extra_files) {
  TempDir tmp;
  auto s = OpenOrDie(tmp.sub("db"));
  for (int i = 0; i < 3000; ++i) BOOST_REQUIRE(s->Append(MakeAppend("m-" + std::to_string(i % 50), "E",
                                                                    "{\"pad\":\"" + std::string(1000, 'p') + "\"}")).ok());
  BOOST_REQUIRE(s->WaitIndexed(s->LastPosition()).ok());

  // Stopped at the first progress report: Interrupted, the copy removed; an
  // empty destination that existed stays, empty.
  for (bool existed : {false, true}) {
    std::string dest = tmp.sub(existed ? "empty" : "new");
    if (existed) std::filesystem::create_directories(dest);
    std::atomic<bool> stop{false};
    BackupOptions o;
    o.should_stop = [&] { return stop.load(); };
    uint64_t reported = 0;
    o.progress = [&](uint64_t bytes) {
      reported = bytes;
      stop = true;
    };
    Status st = s->Backup(dest, o);
    BOOST_TEST((st.code() == Code::kInterrupted), st.ToString());
    BOOST_TEST(reported > 0u);
    BOOST_TEST(std::filesystem::exists(dest) == existed);
    if (existed) BOOST_TEST(std::filesystem::is_empty(dest));
  }

  // Private store files stay private in the copy, whatever the umask.
  for (const char* sub : {"", "/log", "/index"}) ::chmod((tmp.sub("db") + sub).c_str(), 0700);
  ::chmod((tmp.sub("db") + "/log/data.mdb").c_str(), 0600);
  ::chmod((tmp.sub("db") + "/index/data.mdb").c_str(), 0640);
  std::filesystem::create_directories(tmp.sub("db") + "/plugins");
  std::ofstream(tmp.sub("db") + "/plugins/p.so") << "not really a plugin";
  ::chmod((tmp.sub("db") + "/plugins/p.so").c_str(), 0750);
  BackupOptions o;
  o.also_copy = {"plugins/p.so"};
  mode_t old_mask = ::umask(022);
  Status st = s->Backup(tmp.sub("copy"), o);
  ::umask(old_mask);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  auto mode = [](const std::string& path) {
    struct stat sb {};
    ::stat(path.c_str(), &sb);
    return sb.st_mode & 07777;
  };
  BOOST_TEST(mode(tmp.sub("copy")) == 0700u);
  BOOST_TEST(mode(tmp.sub("copy") + "/log") == 0700u);
  BOOST_TEST(mode(tmp.sub("copy") + "/log/data.mdb") == 0600u);
  BOOST_TEST(mode(tmp.sub("copy") + "/index/data.mdb") == 0640u);
  BOOST_TEST(mode(tmp.sub("copy") + "/plugins/p.so") == 0750u);
  BOOST_TEST(StoreFileMode(tmp.sub("db")) == 0600u);
  auto copy = OpenOrDie(tmp.sub("copy"));
  BOOST_TEST(copy->LastPosition() == 3000u);

  // A path that leaves the store is refused, and nothing is left.
  o.also_copy = {"../db/log"};
  st = s->Backup(tmp.sub("copy2"), o);
  BOOST_TEST((st.code() == Code::kInvalidArgument), st.ToString());
  BOOST_TEST(!std::filesystem::exists(tmp.sub("copy2")));
}

BOOST_AUTO_TEST_CASE(rewrite_keeps_identity) {
  TempDir tmp;
  auto s = OpenOrDie(tmp.sub("db"));
  BOOST_REQUIRE(s->Append(MakeAppend("u-1", "Old", R"({"a":1})")).ok());
  auto before = ReadAllEvents(*s);
  Event e = before[0];
  e.type = "New";
  e.schema = 2;
  e.data = R"({"b":1})";
  BOOST_REQUIRE(s->RewriteEvents({e}).ok());
  auto after = ReadAllEvents(*s);
  BOOST_TEST(after[0].type == "New");
  BOOST_TEST(after[0].schema == 2u);
  BOOST_TEST(after[0].id == before[0].id);
  BOOST_TEST(after[0].time_us == before[0].time_us);
  BOOST_TEST(after[0].version == 1u);
}


// The writer caches stream heads across batches; an append by another process
// must still be seen by the next version check (the cache is dropped when the
// log moved under it).
BOOST_AUTO_TEST_CASE(writer_head_cache_sees_other_process_appends) {
  TempDir tmp;
  auto s = OpenOrDie(tmp.sub("db"));
  BOOST_REQUIRE(s->Append(MakeAppend("acct-1", "E")).ok());  // the writer now knows version 1
  std::string cmd =
      std::string(RILL_BINARY) + " --db " + tmp.sub("db") + " append acct-1 E --expect 1 >/dev/null 2>&1";
  BOOST_REQUIRE_EQUAL(std::system(cmd.c_str()), 0);
  auto stale = MakeAppend("acct-1", "E");
  stale.expected = ExpectedVersion::Exact(1);
  BOOST_TEST(s->Append(stale).status().code() == Code::kConflict);
  auto fresh = MakeAppend("acct-1", "E");
  fresh.expected = ExpectedVersion::Exact(2);
  auto r = s->Append(fresh);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->first_version == 3u);
}

// The writer's head table grows (from 512 streams up) and keeps every head
// right: thousands of streams appended in big batches, each round expecting
// the exact version the last left, one stale expectation failing alone.
BOOST_AUTO_TEST_CASE(writer_heads_stay_exact_across_many_streams) {
  TempDir tmp;
  auto s = OpenOrDie(tmp.sub("db"));
  constexpr int kStreams = 5000, kRounds = 3;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::future<Result<AppendResult>>> results;
    for (int i = 0; i < kStreams; ++i) {
      auto expected = round == 0 ? ExpectedVersion::NoStream() : ExpectedVersion::Exact(round);
      if (round == 2 && i == 1234) expected = ExpectedVersion::Exact(0);  // stale
      results.push_back(AppendLater(s.get(), MakeAppend("many-" + std::to_string(i), "E", "{}", expected)));
    }
    for (int i = 0; i < kStreams; ++i) {
      auto r = results[i].get();
      if (round == 2 && i == 1234) {
        BOOST_TEST(r.status().code() == Code::kConflict);
        continue;
      }
      BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
      BOOST_TEST(r->first_version == uint64_t(round + 1));
    }
  }
  auto head = s->GetStream("many-1234");
  BOOST_REQUIRE(head.ok());
  BOOST_TEST(head->head_version == 2u);
  BOOST_TEST(s->GetStream("many-4999")->head_version == 3u);
}

// Readers catch the tail up from the log (for other processes' appends). One
// that runs between the writer's commit and its own update of the tail finds
// the writer's batch there: that batch is this process's, not foreign, or the
// writer would drop every head it caches (and re-read them all) each time.
// Another process's append still counts, and is seen.
BOOST_AUTO_TEST_CASE(own_commits_found_by_racing_readers_are_not_foreign) {
  TempDir tmp;
  // A reader inside the window, on every commit: the writer's hook after its
  // commit and before its tail update reads the log's end as a reader would.
  EventStore* store = nullptr;
  std::atomic<int> in_window{0};
  StoreOptions o;
  testing::FaultEnv env;
  o.env = &env;
  env.on_fault = [&](FaultPoint point) {
    if (point == FaultPoint::kAfterLogCommit && store) {
      (void)store->LastPosition();
      in_window.fetch_add(1);
    }
    return Status::OK();
  };
  auto s = OpenOrDie(tmp.sub("db"), o);
  store = s.get();
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t)
    readers.emplace_back([&] {
      while (!stop.load()) {
        (void)s->LastPosition();
        (void)s->GetStream("race-7");
        reads.fetch_add(1);
      }
    });
  constexpr int kStreams = 500, kRounds = 20;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::future<Result<AppendResult>>> results;
    for (int i = 0; i < kStreams; ++i) {
      auto expected = round == 0 ? ExpectedVersion::NoStream() : ExpectedVersion::Exact(round);
      results.push_back(AppendLater(s.get(), MakeAppend("race-" + std::to_string(i), "E", "{}", expected)));
    }
    for (auto& f : results) {
      auto r = f.get();
      BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
      BOOST_REQUIRE_EQUAL(r->first_version, uint64_t(round + 1));
    }
  }
  stop = true;
  for (auto& t : readers) t.join();
  BOOST_TEST_MESSAGE("reads during the appends: " << reads.load() << ", in the window: " << in_window.load());
  BOOST_TEST(in_window.load() >= kRounds);
  BOOST_TEST(s->Stats().foreign_events == 0u);
  BOOST_TEST(s->LastPosition() == uint64_t(kStreams) * kRounds);

  std::string cmd = std::string(RILL_BINARY) + " --db " + tmp.sub("db") + " append race-7 E --expect " +
                    std::to_string(kRounds) + " >/dev/null 2>&1";
  BOOST_REQUIRE_EQUAL(std::system(cmd.c_str()), 0);
  BOOST_TEST(s->GetStream("race-7")->head_version == uint64_t(kRounds) + 1);
  BOOST_TEST(s->Stats().foreign_events == 1u);
  auto next = MakeAppend("race-7", "E", "{}", ExpectedVersion::Exact(kRounds + 1));
  auto r = s->Append(next);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  BOOST_TEST(r->first_version == uint64_t(kRounds) + 2);
}

BOOST_AUTO_TEST_CASE(a_batch_the_completer_holds_is_known_to_the_next_batch_and_to_readers) {
  TempDir tmp;
  // The completer thread adds a committed batch to the tail while the writer
  // writes the next one. Hold it there, before its tail update: the batch's
  // request id and its events are in no tail yet, and the log has them.
  std::mutex mu;
  std::condition_variable cv;
  bool hold = false, held = false;
  StoreOptions o;
  o.complete_inline_below = 0;  // one-request batches too go through the completer
  testing::FaultEnv env;
  o.env = &env;
  env.on_fault = [&](FaultPoint point) {
    if (point == FaultPoint::kBeforeComplete) {
      std::unique_lock lock(mu);
      if (hold) {
        held = true;
        cv.notify_all();
        cv.wait(lock, [&] { return !hold; });
      }
    }
    return Status::OK();
  };
  auto s = OpenOrDie(tmp.sub("db"), o);
  auto warm = s->Append(MakeAppend("held-0", "E", "{}", ExpectedVersion::NoStream()));
  BOOST_REQUIRE(warm.ok());
  const uint64_t batches = s->Stats().batches;
  {
    std::lock_guard lock(mu);
    hold = true;
  }
  AppendRequest first = MakeAppend("held-1", "E", R"({"n":1})", ExpectedVersion::NoStream());
  first.request_id = "req-held-1";
  auto f1 = AppendLater(s.get(), first);
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return held; });
  }
  // Readers catch up meanwhile: the held batch is the writer's, not foreign,
  // and not acknowledged yet, so not listed yet either.
  BOOST_TEST(s->LastPosition() == 1u);
  (void)s->GetStream("held-1");
  // The same request again: the next batch must find its id (a second write
  // would be an event applied twice), and a version check must see the held
  // events.
  auto f2 = AppendLater(s.get(), first);
  auto f3 = AppendLater(s.get(), MakeAppend("held-1", "E", "{}", ExpectedVersion::Exact(1)));
  // Both written (a regression may instead stall the writer: fail, not hang).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (s->Stats().batches < batches + 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  BOOST_TEST(s->Stats().batches >= batches + 2);
  {
    std::lock_guard lock(mu);
    hold = false;
  }
  cv.notify_all();
  auto r1 = f1.get(), r2 = f2.get(), r3 = f3.get();
  BOOST_REQUIRE_MESSAGE(r1.ok(), r1.status().ToString());
  BOOST_REQUIRE_MESSAGE(r2.ok(), r2.status().ToString());
  BOOST_REQUIRE_MESSAGE(r3.ok(), r3.status().ToString());
  BOOST_TEST(!r1->duplicate);
  BOOST_TEST(r2->duplicate);
  BOOST_TEST(r2->first_position == r1->first_position);
  BOOST_TEST(r3->first_version == 2u);
  BOOST_TEST(r3->first_position == 3u);
  BOOST_TEST(s->LastPosition() == 3u);
  BOOST_TEST(s->GetStream("held-1")->head_version == 2u);
  BOOST_TEST(s->Stats().foreign_events == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
