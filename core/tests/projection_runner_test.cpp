// The projection engine: catch-up and follow without gaps or duplicates,
// checkpoint never ahead of the rows, replay swap under a reader, resumable
// replays, concurrent runners, and a million events.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <fstream>
#include <thread>

#include "core/tests/projection_test_util.h"

using namespace rill;
using namespace rill::projection_testing;
using namespace std::chrono_literals;

namespace {

// Every event of every stream into one row keyed by position.
const char* kAllEvents = R"sql(-- rill projection: every
-- schema
CREATE TABLE IF NOT EXISTS seen(position INTEGER PRIMARY KEY, stream TEXT NOT NULL);
-- on A
INSERT INTO seen VALUES (:position, :stream);
-- on B
INSERT INTO seen VALUES (:position, :stream);
)sql";

std::vector<Appended> AB(size_t n, size_t offset = 0) {
  std::vector<Appended> out;
  for (size_t i = 0; i < n; ++i)
    out.push_back({"s-" + std::to_string((i + offset) % 37), (i % 2) ? "A" : "B", "{}"});
  return out;
}

std::vector<std::string> Positions(uint64_t n) {
  std::vector<std::string> out;
  for (uint64_t i = 1; i <= n; ++i) out.push_back(std::to_string(i));
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> SeenPositions(const std::string& path) {
  auto rows = Dump(path, "seen");
  for (auto& r : rows) r = r.substr(0, r.find('|'));
  std::sort(rows.begin(), rows.end());
  return rows;
}

// Options for a run that stops itself (Interrupted) after `commits` commits
// of 200 events.
ProjectionRunOptions StopAfterCommits(int commits) {
  auto done = std::make_shared<int>(0);
  ProjectionRunOptions o;
  o.max_batch_events = 200;
  o.on_commit = [done](const ProjectionProgress&) { ++*done; };
  o.should_stop = [done, commits] { return *done >= commits; };
  return o;
}

// A fresh store, the every-event projection and the path of its read
// model: where most of these cases start.
struct EveryEventModel {
  TempDir dir;
  std::unique_ptr<EventStore> store = OpenStore(dir.store());
  std::shared_ptr<SqlProjection> every = ParseOrDie(kAllEvents);
  std::string path = ReadModelPath(store->dir(), "every");
};

}  // namespace

BOOST_AUTO_TEST_SUITE(projection_runner)

BOOST_FIXTURE_TEST_CASE(catch_up_then_incremental_no_gap_no_duplicate, EveryEventModel) {
  AppendAll(*store, AB(1000));
  ProjectionRunOptions o;
  o.max_batch_events = 97;
  BOOST_REQUIRE(RunProjection(*store, *every, o).ok());
  BOOST_TEST(ReadReadModelState(path)->position == 1000u);
  AppendAll(*store, AB(500, 1000));
  ProjectionProgress pr;
  BOOST_REQUIRE(RunProjection(*store, *every, o, &pr).ok());
  BOOST_TEST(pr.start_position == 1000u);
  BOOST_TEST(pr.events_applied == 500u);
  BOOST_TEST(SeenPositions(path) == Positions(1500));
  auto st = ReadReadModelState(path);
  BOOST_TEST(st->position == 1500u);
  BOOST_TEST(st->applied == 1500u);
  BOOST_TEST(st->store_id == store->store_id());
  // Nothing new: nothing applied, nothing changes.
  BOOST_REQUIRE(RunProjection(*store, *every, o, &pr).ok());
  BOOST_TEST(SeenPositions(path) == Positions(1500));
}

BOOST_FIXTURE_TEST_CASE(follow_applies_live_events_and_stops_cleanly, EveryEventModel) {
  AppendAll(*store, AB(100));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> committed{0};
  ProjectionRunOptions o;
  o.follow = true;
  o.follow_poll = 20ms;
  o.should_stop = [&] { return stop.load(); };
  o.on_commit = [&](const ProjectionProgress& pr) { committed = pr.position; };
  Status result;
  std::thread runner([&] { result = RunProjection(*store, *every, o); });
  for (int round = 0; round < 5; ++round) AppendAll(*store, AB(200, 100 + round * 200));
  for (int i = 0; i < 500 && committed.load() < 1100; ++i) std::this_thread::sleep_for(10ms);
  stop = true;
  runner.join();
  BOOST_TEST(result.ok(), result.ToString());
  BOOST_TEST(ReadReadModelState(path)->position == 1100u);
  BOOST_TEST(SeenPositions(path) == Positions(1100));
}

// Readers never see rows without their checkpoint or a checkpoint ahead of
// its rows: in every read transaction, count(seen) == checkpoint.
BOOST_FIXTURE_TEST_CASE(checkpoint_never_ahead_of_rows, EveryEventModel) {
  AppendAll(*store, AB(20000));
  ProjectionRunOptions o;
  o.max_batch_events = 50;
  o.max_batch_time = 1ms;
  // Create the file first so the reader can open it.
  {
    auto db = SqliteDb::Open(path, SqliteMode::kReadWrite);
    BOOST_REQUIRE(db.ok());
  }
  std::atomic<bool> done{false};
  std::atomic<int> checks{0}, bad{0};
  std::thread reader([&] {
    auto db = SqliteDb::Open(path, SqliteMode::kReadOnly);
    if (!db.ok()) return;
    while (!done) {
      if (!(*db)->Begin().ok()) continue;
      auto cp = (*db)->Prepare("SELECT position FROM _rill_projection");
      auto cnt = (*db)->Prepare("SELECT count(*), coalesce(max(position), 0) FROM seen");
      if (cp.ok() && cnt.ok()) {
        auto r1 = cp->Step();
        auto r2 = cnt->Step();
        if (r1.ok() && *r1 && r2.ok() && *r2) {
          ++checks;
          if (cp->ColumnInt(0) != cnt->ColumnInt(0) || cnt->ColumnInt(1) != cnt->ColumnInt(0)) ++bad;
        }
      }
      cp = Status::OK();  // finalize before ending the transaction
      cnt = Status::OK();
      (void)(*db)->Rollback();
    }
  });
  Status s = RunProjection(*store, *every, o);
  done = true;
  reader.join();
  BOOST_REQUIRE(s.ok());
  BOOST_TEST(checks.load() > 10);
  BOOST_TEST(bad.load() == 0);
  BOOST_TEST(SeenPositions(path) == Positions(20000));
}

// The replay writes a new file while the old one serves queries; the swap
// is atomic for readers: one inside a transaction keeps its snapshot, its
// next transaction sees the whole new model.
BOOST_FIXTURE_TEST_CASE(replay_swap_while_reader_holds_old_file, EveryEventModel) {
  AppendAll(*store, AB(300));
  BOOST_REQUIRE(RunProjection(*store, *every, {}).ok());

  auto reader = SqliteDb::Open(path, SqliteMode::kReadOnly);
  BOOST_REQUIRE(reader.ok());
  auto idle_reader = SqliteDb::Open(path, SqliteMode::kReadOnly);  // open, no transaction
  BOOST_REQUIRE(idle_reader.ok());
  BOOST_REQUIRE((*reader)->Begin().ok());
  auto count = [&](SqliteDb& db, const char* sql) {
    auto st = db.Prepare(sql);
    BOOST_REQUIRE(st.ok());
    BOOST_REQUIRE(*st->Step());
    return st->ColumnInt(0);
  };
  BOOST_TEST(count(**reader, "SELECT count(*) FROM seen") == 300);

  // A new definition (a column more) and more events, then replay.
  AppendAll(*store, AB(200, 300));
  auto changed = ParseOrDie(R"sql(-- rill projection: every
-- schema
CREATE TABLE IF NOT EXISTS seen(position INTEGER PRIMARY KEY, stream TEXT NOT NULL, type TEXT NOT NULL);
-- on A
INSERT INTO seen VALUES (:position, :stream, :type);
-- on B
INSERT INTO seen VALUES (:position, :stream, :type);
)sql");
  BOOST_REQUIRE(ReplayProjection(*store, *changed, {}).ok());

  // Still inside its transaction: the old model, untouched.
  BOOST_TEST(count(**reader, "SELECT count(*) FROM seen") == 300);
  BOOST_TEST(count(**reader, "SELECT position FROM _rill_projection") == 300);
  BOOST_REQUIRE((*reader)->Commit().ok());
  // Next transaction: the complete new model.
  BOOST_TEST(count(**reader, "SELECT count(*) FROM seen") == 500);
  BOOST_TEST(count(**reader, "SELECT count(*) FROM seen WHERE type IN ('A','B')") == 500);
  BOOST_TEST(count(**idle_reader, "SELECT count(*) FROM seen WHERE type = 'A'") == 250);
  BOOST_TEST(count(**idle_reader, "SELECT position FROM _rill_projection") == 500);
  BOOST_TEST(!std::filesystem::exists(ReplayPath(store->dir(), "every")));
  BOOST_TEST(ReadReadModelState(path)->fingerprint == changed->fingerprint());
}

// A follower of the old definition stops when a replay swaps in rows of a
// new one; a follower of the same definition carries on from the swapped-in
// checkpoint without applying anything twice.
BOOST_FIXTURE_TEST_CASE(follower_sees_replay_swap, EveryEventModel) {
  AppendAll(*store, AB(200));
  BOOST_REQUIRE(RunProjection(*store, *every, {}).ok());
  std::atomic<bool> stop{false};
  ProjectionRunOptions o;
  o.follow = true;
  o.follow_poll = 10ms;
  o.should_stop = [&] { return stop.load(); };
  Status same_result;
  std::thread same([&] { same_result = RunProjection(*store, *every, o); });
  std::this_thread::sleep_for(50ms);
  BOOST_REQUIRE(ReplayProjection(*store, *every, {}).ok());  // same definition
  AppendAll(*store, AB(100, 200));
  for (int i = 0; i < 500 && ReadReadModelState(path)->position < 300; ++i) std::this_thread::sleep_for(10ms);
  stop = true;
  same.join();
  BOOST_TEST(same_result.ok(), same_result.ToString());
  BOOST_TEST(SeenPositions(path) == Positions(300));

  stop = false;
  Status old_result;
  std::thread old([&] { old_result = RunProjection(*store, *every, o); });
  std::this_thread::sleep_for(50ms);
  auto changed = ParseOrDie(std::string(kAllEvents) + "-- on C\nINSERT INTO seen VALUES (:position, 'c');\n");
  BOOST_REQUIRE(ReplayProjection(*store, *changed, {}).ok());
  AppendAll(*store, AB(10, 300));
  old.join();  // stops by itself
  BOOST_TEST(old_result.IsConflict(), old_result.ToString());
}

// A model built by one definition is refused by a run of another (its rows
// would mix both meanings) until a replay rebuilds it; nothing is applied by
// the refused run.
BOOST_FIXTURE_TEST_CASE(changed_definition_is_refused_until_replayed, EveryEventModel) {
  AppendAll(*store, AB(100));
  BOOST_REQUIRE(RunProjection(*store, *every, {}).ok());
  auto changed = ParseOrDie(std::string(kAllEvents) + "-- on C\nINSERT INTO seen VALUES (:position, 'c');\n");
  BOOST_TEST(!IsStale(*ReadReadModelState(path), *every));
  BOOST_TEST(IsStale(*ReadReadModelState(path), *changed));
  BOOST_TEST(CheckNotStale(store->dir(), *every).ok());

  AppendAll(*store, AB(50, 100));
  Status refused = RunProjection(*store, *changed, {});
  BOOST_TEST((refused.code() == Code::kFailedPrecondition), refused.ToString());
  BOOST_TEST(refused.message().find("rill project replay every") != std::string::npos, refused.message());
  BOOST_TEST((CheckNotStale(store->dir(), *changed).code() == Code::kFailedPrecondition));
  BOOST_TEST(ReadReadModelState(path)->position == 100u);  // nothing applied
  BOOST_TEST(SeenPositions(path) == Positions(100));

  BOOST_REQUIRE(ReplayProjection(*store, *changed, {}).ok());
  BOOST_TEST(!IsStale(*ReadReadModelState(path), *changed));
  AppendAll(*store, AB(10, 150));
  BOOST_REQUIRE(RunProjection(*store, *changed, {}).ok());
  BOOST_TEST(SeenPositions(path) == Positions(160));
  // The old definition is now the stale one.
  BOOST_TEST((RunProjection(*store, *every, {}).code() == Code::kFailedPrecondition));

  // Not built yet: not stale.
  TempDir other;
  auto fresh = OpenStore(other.store());
  BOOST_TEST(CheckNotStale(fresh->dir(), *changed).ok());
}

// Two replays of one model would share its replay file; the second is
// refused (Busy) while the first runs, and so is a drop. Neither touches the
// first one's work, which then swaps in complete.
BOOST_FIXTURE_TEST_CASE(a_second_replay_or_a_drop_is_refused_while_one_runs, EveryEventModel) {
  AppendAll(*store, AB(3000));
  BOOST_REQUIRE(RunProjection(*store, *every, {}).ok());
  std::promise<void> paused;
  std::promise<void> resume;
  std::shared_future<void> resumed = resume.get_future().share();
  ProjectionRunOptions o;
  o.max_batch_events = 500;
  bool first = true;
  o.test_hook = [&](ProjectionPoint point, uint64_t) {
    if (point != ProjectionPoint::kCommitted || !first) return;
    first = false;
    paused.set_value();
    resumed.wait();
  };
  Status replayed;
  std::thread replay([&] { replayed = ReplayProjection(*store, *every, o); });
  paused.get_future().wait();
  Status second = ReplayProjection(*store, *every, {});
  BOOST_TEST((second.code() == Code::kBusy), second.ToString());
  BOOST_TEST(second.message().find("read model every") != std::string::npos, second.message());
  Status drop = DropReadModel(store->dir(), "every");
  BOOST_TEST((drop.code() == Code::kBusy), drop.ToString());
  BOOST_TEST(!LockReadModel(store->dir(), "every").ok());
  resume.set_value();
  replay.join();
  BOOST_TEST(replayed.ok(), replayed.ToString());
  BOOST_TEST(SeenPositions(path) == Positions(3000));
  // Released: the next ones go ahead.
  BOOST_TEST(ReplayProjection(*store, *every, {}).ok());
  BOOST_TEST(DropReadModel(store->dir(), "every").ok());
}

BOOST_FIXTURE_TEST_CASE(first_replay_renames_into_place, EveryEventModel) {
  AppendAll(*store, AB(100));
  BOOST_REQUIRE(ReplayProjection(*store, *every, {}).ok());
  BOOST_TEST(SeenPositions(path) == Positions(100));
  BOOST_TEST(!std::filesystem::exists(ReplayPath(store->dir(), "every")));
  // And it keeps working as a live model.
  AppendAll(*store, AB(10, 100));
  BOOST_REQUIRE(RunProjection(*store, *every, {}).ok());
  BOOST_TEST(SeenPositions(path) == Positions(110));
}

// An interrupted replay leaves the old model serving and resumes later.
BOOST_AUTO_TEST_CASE(interrupted_replay_keeps_old_model_and_resumes) {
  TempDir dir;
  auto store = OpenStore(dir.store());
  auto p = ParseOrDie(kLedgerBalances);
  AppendAll(*store, BankEvents(50, 3000, 7));
  BOOST_REQUIRE(RunProjection(*store, *p, {}).ok());
  std::string path = ReadModelPath(store->dir(), "ledger");
  auto before = Dump(path, "balances");
  AppendAll(*store, BankEvents(50, 3000, 8, 50));

  Status s = ReplayProjection(*store, *p, StopAfterCommits(1));
  BOOST_TEST((s.code() == Code::kInterrupted), s.ToString());
  BOOST_TEST(Dump(path, "balances") == before);  // old model intact
  auto partial = ReadReadModelState(ReplayPath(store->dir(), "ledger"));
  BOOST_TEST(partial->exists);
  BOOST_TEST(partial->position > 0u);
  BOOST_TEST(partial->position < 6000u);

  ProjectionProgress pr;
  BOOST_REQUIRE(ReplayProjection(*store, *p, {}, &pr).ok());
  BOOST_TEST(pr.start_position == partial->position);  // resumed, not restarted
  auto resumed = Dump(path, "balances");
  auto resumed_ledger = Dump(path, "ledger");
  BOOST_TEST(resumed_ledger.size() == 6000u);

  BOOST_REQUIRE(DropReadModel(store->dir(), "ledger").ok());
  BOOST_REQUIRE(ReplayProjection(*store, *p, {}).ok());
  BOOST_TEST(Dump(path, "balances") == resumed);
  BOOST_TEST(Dump(path, "ledger") == resumed_ledger);
}

// Replays write without fsync; a marker holding the boot id says so until
// the file is synced. A marker from another boot means the machine crashed
// mid-replay (the file may have lost writes): the replay restarts from 1.
// From this boot (the process was killed): the file is sound, it resumes.
BOOST_AUTO_TEST_CASE(unsynced_replay_restarts_after_a_reboot_and_resumes_after_a_kill) {
  TempDir dir;
  auto store = OpenStore(dir.store());
  auto p = ParseOrDie(kLedgerBalances);
  AppendAll(*store, BankEvents(50, 10000, 11));
  std::string replay = ReplayPath(store->dir(), "ledger");
  std::string marker = replay + "-unsynced";
  std::string boot;
  {
    std::ifstream in("/proc/sys/kernel/random/boot_id");
    std::getline(in, boot);
  }
  auto interrupt = [&] {
    Status s = ReplayProjection(*store, *p, StopAfterCommits(2));
    BOOST_TEST((s.code() == Code::kInterrupted), s.ToString());
    BOOST_TEST(!std::filesystem::exists(marker));  // a clean stop syncs and drops it
    auto partial = ReadReadModelState(replay);
    BOOST_REQUIRE(partial->position > 0u);
    return partial->position;
  };
  auto write_marker = [&](const std::string& content) {
    std::ofstream out(marker);
    out << content;
  };

  // Killed under this boot: resumes.
  uint64_t at = interrupt();
  if (!boot.empty()) {
    write_marker(boot);
    ProjectionProgress pr;
    BOOST_REQUIRE(ReplayProjection(*store, *p, {}, &pr).ok());
    BOOST_TEST(pr.start_position == at);
    BOOST_TEST(!std::filesystem::exists(marker));
  }

  // Crashed under another boot: starts over from position 1.
  AppendAll(*store, BankEvents(50, 1000, 12, 50));
  interrupt();
  write_marker("00000000-0000-0000-0000-000000000000");
  ProjectionProgress pr;
  BOOST_REQUIRE(ReplayProjection(*store, *p, {}, &pr).ok());
  BOOST_TEST(pr.start_position == 0u);
  BOOST_TEST(!std::filesystem::exists(marker));
  BOOST_TEST(!std::filesystem::exists(replay));
  std::string path = ReadModelPath(store->dir(), "ledger");
  auto rebuilt = Dump(path, "ledger");
  BOOST_TEST(rebuilt.size() == 11000u);
  BOOST_REQUIRE(DropReadModel(store->dir(), "ledger").ok());
  BOOST_REQUIRE(ReplayProjection(*store, *p, {}).ok());
  BOOST_TEST(Dump(path, "ledger") == rebuilt);
}

// Two runners on one model (two processes in real life): every event still
// applied exactly once, thanks to the checkpoint check in each transaction.
BOOST_FIXTURE_TEST_CASE(concurrent_runners_apply_each_event_once, EveryEventModel) {
  AppendAll(*store, AB(20000));
  ProjectionRunOptions o;
  o.max_batch_events = 100;
  Status s1, s2;
  std::thread t1([&] { s1 = RunProjection(*store, *every, o); });
  std::thread t2([&] { s2 = RunProjection(*store, *every, o); });
  t1.join();
  t2.join();
  BOOST_TEST(s1.ok(), s1.ToString());
  BOOST_TEST(s2.ok(), s2.ToString());
  BOOST_TEST(SeenPositions(path) == Positions(20000));
}

BOOST_AUTO_TEST_CASE(read_model_of_another_store_is_refused) {
  TempDir a, b;
  auto p = ParseOrDie(kAllEvents);
  std::string path;
  {
    auto store = OpenStore(a.store());
    AppendAll(*store, AB(10));
    BOOST_REQUIRE(RunProjection(*store, *p, {}).ok());
    path = ReadModelPath(store->dir(), "every");
  }
  auto other = OpenStore(b.store());
  std::filesystem::create_directories(ReadModelDir(other->dir()));
  std::filesystem::copy_file(path, ReadModelPath(other->dir(), "every"));
  Status s = RunProjection(*other, *p, {});
  BOOST_TEST(s.IsConflict(), s.ToString());
  BOOST_TEST(ReplayProjection(*other, *p, {}).ok());  // replay replaces it
  BOOST_TEST(ReadReadModelState(ReadModelPath(other->dir(), "every"))->store_id == other->store_id());
}

BOOST_FIXTURE_TEST_CASE(drop_removes_model_and_replay, EveryEventModel) {
  AppendAll(*store, AB(10));
  BOOST_REQUIRE(RunProjection(*store, *every, {}).ok());
  BOOST_REQUIRE(DropReadModel(store->dir(), "every").ok());
  BOOST_TEST(!std::filesystem::exists(path));
  BOOST_TEST(!ReadReadModelState(path)->exists);
}

// A projection partitioned by stream is applied grouped by stream inside
// each transaction; per stream the order stays the log's, and the model is
// the one applying in log order gives: catch-up in several transactions,
// incremental runs, following live appends, and a replay.
BOOST_AUTO_TEST_CASE(partitioned_projection_equals_log_order) {
  const char* text = R"sql(-- rill projection: %s
%s-- schema
CREATE TABLE IF NOT EXISTS seq(stream TEXT PRIMARY KEY, versions TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen(position INTEGER PRIMARY KEY, stream TEXT NOT NULL);
-- on A
INSERT INTO seq VALUES (:stream, :version) ON CONFLICT(stream) DO UPDATE SET versions = versions || ',' || excluded.versions;
INSERT INTO seen VALUES (:position, :stream);
-- on B
INSERT INTO seq VALUES (:stream, :version) ON CONFLICT(stream) DO UPDATE SET versions = versions || ',' || excluded.versions;
INSERT INTO seen VALUES (:position, :stream);
)sql";
  char buf[1024];
  std::snprintf(buf, sizeof buf, text, "plain", "");
  auto plain = ParseOrDie(buf);
  std::snprintf(buf, sizeof buf, text, "grouped", "-- partition: stream\n");
  auto grouped = ParseOrDie(buf);
  BOOST_REQUIRE(grouped->partitioned_by_stream());

  TempDir dir;
  auto store = OpenStore(dir.store());
  AppendAll(*store, AB(5000));
  std::vector<uint64_t> order;
  ProjectionRunOptions o;
  o.max_batch_events = 700;  // chunks of 700: several transactions
  o.test_hook = [&](ProjectionPoint point, uint64_t pos) {
    if (point == ProjectionPoint::kApplied) order.push_back(pos);
  };
  ProjectionProgress pr;
  BOOST_REQUIRE(RunProjection(*store, *grouped, o, &pr).ok());
  BOOST_TEST(pr.transactions >= 7u);
  // Grouped within each chunk of 700: the first chunk starts with s-0's
  // events (positions 1, 38, 75, ...), not in log order.
  BOOST_REQUIRE(order.size() == 5000u);
  BOOST_TEST(order[0] == 1u);
  BOOST_TEST(order[1] == 38u);
  std::vector<uint64_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  BOOST_TEST((std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end()));  // none twice
  BOOST_TEST((sorted.front() == 1u && sorted.back() == 5000u));
  for (size_t c = 0; c < order.size(); c += 700)  // chunks hold consecutive positions
    BOOST_TEST(*std::min_element(order.begin() + c, order.begin() + std::min(order.size(), c + 700)) == c + 1);

  BOOST_REQUIRE(RunProjection(*store, *plain, {}).ok());
  std::string g = ReadModelPath(store->dir(), "grouped"), pl = ReadModelPath(store->dir(), "plain");
  BOOST_TEST(Dump(g, "seq") == Dump(pl, "seq"));
  BOOST_TEST(Dump(g, "seen") == Dump(pl, "seen"));
  // Per stream, every version once, in order.
  for (const auto& row : Dump(g, "seq")) {
    std::string versions = row.substr(row.find('|') + 1);
    size_t n = std::count(versions.begin(), versions.end(), ',') + 1;
    std::string expect;
    for (size_t v = 1; v <= n; ++v) {
      if (v > 1) expect += ',';
      expect += std::to_string(v);
    }
    BOOST_TEST(versions == expect);
  }

  // Incremental, and following live appends.
  AppendAll(*store, AB(1000, 5000));
  o.test_hook = nullptr;
  BOOST_REQUIRE(RunProjection(*store, *grouped, o).ok());
  std::atomic<bool> stop{false};
  ProjectionRunOptions f = o;
  f.follow = true;
  f.follow_poll = 5ms;
  f.should_stop = [&] { return stop.load(); };
  Status followed;
  std::thread follower([&] { followed = RunProjection(*store, *grouped, f); });
  for (int i = 0; i < 10; ++i) {
    AppendAll(*store, AB(300, 6000 + i * 300));
    std::this_thread::sleep_for(3ms);
  }
  BOOST_REQUIRE(store->Flush().ok());
  for (int i = 0; i < 2000 && ReadReadModelState(g)->position < 9000u; ++i) std::this_thread::sleep_for(5ms);
  stop = true;
  follower.join();
  BOOST_TEST(followed.ok(), followed.ToString());
  BOOST_REQUIRE(RunProjection(*store, *plain, {}).ok());
  BOOST_TEST(ReadReadModelState(g)->position == 9000u);
  BOOST_TEST(Dump(g, "seq") == Dump(pl, "seq"));
  BOOST_TEST(Dump(g, "seen") == Dump(pl, "seen"));
  // A replay of the grouped one gives the same again.
  auto before = Dump(g, "seq");
  BOOST_REQUIRE(ReplayProjection(*store, *grouped, {}).ok());
  BOOST_TEST(Dump(g, "seq") == before);
  BOOST_TEST(SeenPositions(g) == Positions(9000));
}

BOOST_AUTO_TEST_CASE(million_events) {
  TempDir dir;
  auto store = OpenStore(dir.store());
  const size_t kEvents = 1000000, kAccounts = 20000;
  AppendAll(*store, BankEvents(kAccounts, kEvents, 42));
  // Expected balances computed independently of SQLite.
  std::map<std::string, int64_t> expected;
  {
    std::vector<Event> evs;
    uint64_t from = 1;
    while (true) {
      evs.clear();
      BOOST_REQUIRE(store->ReadAll(from, 65536, &evs).ok());
      if (evs.empty()) break;
      for (const auto& e : evs) {
        int64_t amount = 0;
        auto pos = e.data.find("\"amount\":");
        if (pos != std::string::npos) amount = std::stoll(e.data.substr(pos + 9));
        if (e.type == "AccountOpened") expected[e.stream] = 0;
        if (e.type == "Deposited") expected[e.stream] += amount;
        if (e.type == "Withdrawn") expected[e.stream] -= amount;
      }
      from = evs.back().position + 1;
    }
  }
  // Partitioned: the replay applies chunks of up to 262,144 events grouped
  // by stream, as the CLI's replay of the sample balances does.
  auto p = ParseOrDie(LedgerBalancesPartitioned());
  ProjectionProgress pr;
  ProjectionRunOptions o;
  o.max_batch_events = 1000000;
  BOOST_REQUIRE(ReplayProjection(*store, *p, o, &pr).ok());
  std::string path = ReadModelPath(store->dir(), "ledger");
  BOOST_TEST(pr.position == kEvents);
  BOOST_TEST(pr.events_applied == kEvents);
  BOOST_TEST(QueryInt(path, "SELECT count(*) FROM ledger") == static_cast<int64_t>(kEvents));
  BOOST_TEST(QueryInt(path, "SELECT max(position) FROM ledger") == static_cast<int64_t>(kEvents));
  auto rows = Dump(path, "balances");
  BOOST_REQUIRE(rows.size() == expected.size());
  size_t mismatches = 0;
  for (const auto& r : rows) {
    std::string account = r.substr(0, r.find('|'));
    auto fields_end = r.rfind('|');
    auto bal_start = r.rfind('|', fields_end - 1) + 1;
    int64_t balance = std::stoll(r.substr(bal_start, fields_end - bal_start));
    if (expected.at(account) != balance) ++mismatches;
  }
  BOOST_TEST(mismatches == 0u);
}

// A handler statement that never ends (a recursive CTE) yields to the stop
// request: the run ends Interrupted, its batch undone, the checkpoint where
// the last commit left it and no error recorded against the projection.
BOOST_AUTO_TEST_CASE(a_runaway_handler_statement_stops_on_request) {
  TempDir dir;
  auto store = OpenStore(dir.store());
  auto p = ParseOrDie(R"sql(-- rill projection: runaway
-- schema
CREATE TABLE IF NOT EXISTS seen(position INTEGER PRIMARY KEY);
-- on A
INSERT INTO seen VALUES (:position);
-- on B
WITH RECURSIVE forever(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM forever) SELECT count(*) FROM forever;
)sql");
  AppendAll(*store, {{"s-1", "A", "{}"}, {"s-1", "A", "{}"}});
  BOOST_REQUIRE(RunProjection(*store, *p, ProjectionRunOptions{}).ok());
  AppendAll(*store, {{"s-1", "A", "{}"}, {"s-1", "B", "{}"}});
  std::atomic<bool> stop{false};
  ProjectionRunOptions o;
  o.should_stop = [&] { return stop.load(); };
  Status result;
  std::thread runner([&] { result = RunProjection(*store, *p, o); });
  std::this_thread::sleep_for(300ms);
  auto asked = std::chrono::steady_clock::now();
  stop = true;
  runner.join();
  BOOST_TEST((std::chrono::steady_clock::now() - asked < 5s));
  BOOST_TEST((result.code() == Code::kInterrupted), result.ToString());
  std::string path = ReadModelPath(store->dir(), "runaway");
  auto st = ReadReadModelState(path);
  BOOST_TEST(st->position == 2u);
  BOOST_TEST(st->last_error.empty(), st->last_error);
  BOOST_TEST(SeenPositions(path) == Positions(2));
}

BOOST_AUTO_TEST_SUITE_END()
