// kill -9 at the worst moments: in the middle of a replay transaction, right
// after a commit, while following live appends, and at random instants.
// After each crash the read model holds exactly the events up to its
// checkpoint, and resuming gives, row for row, what a clean replay gives.
//
// The projection runs in a forked child (the parent holds no store across
// fork(): LMDB environments must not cross it) that SIGKILLs itself from the
// runner's test hook, or is SIGKILLed by the parent.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <functional>
#include <random>
#include <thread>

#include "core/tests/projection_test_util.h"

using namespace rill;
using namespace rill::projection_testing;
using namespace std::chrono_literals;

namespace {

pid_t StartChild(const std::function<int()>& body) {
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int rc = 1;
    try {
      rc = body();
    } catch (...) {
      rc = 3;
    }
    _exit(rc);
  }
  return pid;
}

// Waits up to `limit` for the child; kills it if it overstays. Returns the
// wait status, or -1 on timeout.
int WaitChild(pid_t pid, std::chrono::seconds limit = std::chrono::seconds(120)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    std::this_thread::sleep_for(5ms);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

bool KilledBySigkill(int status) { return status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL; }

// What a crash may leave: rows exactly through the checkpoint.
void CheckConsistent(const std::string& path) {
  if (!std::filesystem::exists(path)) return;
  auto st = ReadReadModelState(path);
  BOOST_REQUIRE(st.ok());
  int64_t rows = QueryInt(path, "SELECT count(*) FROM ledger");
  int64_t max = QueryInt(path, "SELECT coalesce(max(position), 0) FROM ledger");
  BOOST_TEST(rows == static_cast<int64_t>(st->position));
  BOOST_TEST(max == static_cast<int64_t>(st->position));
}

struct Model {
  std::vector<std::string> balances, ledger;
  bool operator==(const Model&) const = default;
};
std::ostream& operator<<(std::ostream& o, const Model& m) {
  return o << m.balances.size() << " balances, " << m.ledger.size() << " ledger rows";
}

Model Read(const std::string& path) { return {Dump(path, "balances"), Dump(path, "ledger")}; }

// Appends with a store opened for this call only: the parent holds none
// across fork().
void AppendInParent(const std::string& store_dir, const std::vector<Appended>& events) {
  auto store = OpenStore(store_dir);
  AppendAll(*store, events);
}

// Drops the model and replays it from scratch, in this process.
Model CleanReplay(const std::string& store_dir, const Projection& p) {
  auto store = OpenStore(store_dir);
  BOOST_REQUIRE(DropReadModel(store_dir, p.name()).ok());
  BOOST_REQUIRE(ReplayProjection(*store, p, {}).ok());
  return Read(ReadModelPath(store_dir, p.name()));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(projection_crash)

BOOST_AUTO_TEST_CASE(kill9_mid_replay_then_resume_equals_clean_replay) {
  // (hook point, position): mid-transaction on the first event, deep inside
  // a later transaction, and just after a commit.
  // Partitioned, each transaction's events are applied grouped by stream.
  const std::vector<std::pair<ProjectionPoint, uint64_t>> kill_points = {
      {ProjectionPoint::kApplied, 1}, {ProjectionPoint::kApplied, 10000}, {ProjectionPoint::kCommitted, 0}};
  for (const std::string& text : {std::string(kLedgerBalances), LedgerBalancesPartitioned()})
  for (const auto& [point, at] : kill_points) {
    BOOST_TEST_CONTEXT("kill at " << (point == ProjectionPoint::kApplied ? "applied" : "committed") << " " << at << (text == kLedgerBalances ? "" : ", partitioned")) {
      TempDir dir;
      auto p = ParseOrDie(text);
      std::string live = ReadModelPath(dir.store(), "ledger");
      std::string replay = ReplayPath(dir.store(), "ledger");
      Model old_model;
      {
        auto store = OpenStore(dir.store());
        AppendAll(*store, BankEvents(300, 6000, 1));
        BOOST_REQUIRE(RunProjection(*store, *p, {}).ok());  // a live model exists
        old_model = Read(live);
        AppendAll(*store, BankEvents(300, 20000, 2, 300));
      }
      pid_t child = StartChild([&, point = point, at = at] {
        auto store = OpenStore(dir.store());
        ProjectionRunOptions o;
        o.max_batch_events = 1000;
        o.test_hook = [&](ProjectionPoint hp, uint64_t pos) {
          if (point == hp && (at == 0 || pos == at)) raise(SIGKILL);
        };
        return ReplayProjection(*store, *p, o).ok() ? 0 : 2;
      });
      BOOST_REQUIRE(KilledBySigkill(WaitChild(child)));

      BOOST_TEST(Read(live) == old_model);  // queries kept the old model
      CheckConsistent(replay);
      auto crashed = ReadReadModelState(replay);
      if (point == ProjectionPoint::kApplied) BOOST_TEST(crashed->position < at);
      if (point == ProjectionPoint::kCommitted) BOOST_TEST(crashed->position > 0u);

      ProjectionProgress pr;
      {
        auto store = OpenStore(dir.store());
        BOOST_REQUIRE(ReplayProjection(*store, *p, {}, &pr).ok());
      }
      BOOST_TEST(pr.start_position == crashed->position);  // resumed
      Model resumed = Read(live);
      BOOST_TEST(resumed.ledger.size() == 26000u);
      BOOST_TEST(resumed == CleanReplay(dir.store(), *p));
    }
  }
}

BOOST_AUTO_TEST_CASE(kill9_mid_follow_then_resume_equals_clean_replay) {
  TempDir dir;
  auto p = ParseOrDie(kLedgerBalances);
  std::string live = ReadModelPath(dir.store(), "ledger");
  AppendInParent(dir.store(), BankEvents(200, 5000, 3));
  const uint64_t kKillAt = 12345;
  pid_t child = StartChild([&] {
    auto store = OpenStore(dir.store());
    ProjectionRunOptions o;
    o.follow = true;
    o.follow_poll = 10ms;
    o.test_hook = [&](ProjectionPoint hp, uint64_t pos) {
      if (hp == ProjectionPoint::kApplied && pos == kKillAt) raise(SIGKILL);
    };
    return RunProjection(*store, *p, o).ok() ? 0 : 2;
  });
  // The live appends start once the child has committed the history, or a
  // loaded machine lets them outrun it into its first batch (and the kill
  // would land before any commit).
  for (int i = 0; i < 6000; ++i) {
    auto st = ReadReadModelState(live);
    if (st.ok() && st->position >= 5000u) break;
    std::this_thread::sleep_for(10ms);
  }
  {
    // Live appends from this process while the child follows.
    auto store = OpenStore(dir.store());
    auto more = BankEvents(200, 15000, 4, 200);
    for (size_t i = 0; i < more.size(); i += 500) {
      AppendAll(*store, std::vector<Appended>(more.begin() + i, more.begin() + std::min(more.size(), i + 500)));
      std::this_thread::sleep_for(2ms);
    }
  }
  BOOST_REQUIRE(KilledBySigkill(WaitChild(child)));
  CheckConsistent(live);
  auto crashed = ReadReadModelState(live);
  BOOST_TEST(crashed->position < kKillAt);
  BOOST_TEST(crashed->position >= 5000u);  // it had caught up with the history

  {
    auto store = OpenStore(dir.store());
    BOOST_REQUIRE(RunProjection(*store, *p, {}).ok());
  }
  Model resumed = Read(live);
  BOOST_TEST(resumed.ledger.size() == 20000u);
  BOOST_TEST(resumed == CleanReplay(dir.store(), *p));
}

// Real timing: SIGKILL from outside at random instants of a replay, three
// times in a row, then let it finish.
BOOST_AUTO_TEST_CASE(kill9_at_random_instants) {
  TempDir dir;
  auto p = ParseOrDie(kLedgerBalances);
  std::string replay = ReplayPath(dir.store(), "ledger");
  std::string live = ReadModelPath(dir.store(), "ledger");
  AppendInParent(dir.store(), BankEvents(1000, 200000, 5));
  std::mt19937 rng(99);
  int killed = 0;
  for (int round = 0; round < 3; ++round) {
    uint64_t before = 0;
    if (auto st = ReadReadModelState(replay); st.ok()) before = st->position;
    pid_t child = StartChild([&] {
      auto store = OpenStore(dir.store());
      ProjectionRunOptions o;
      o.max_batch_events = 2000;
      return ReplayProjection(*store, *p, o).ok() ? 0 : 2;
    });
    // Wait for progress past where it started, then kill at a random moment.
    for (int i = 0; i < 2000; ++i) {
      auto st = ReadReadModelState(replay);
      if (st.ok() && st->exists && st->position > before) break;
      std::this_thread::sleep_for(1ms);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 30000));
    kill(child, SIGKILL);
    int status = WaitChild(child);
    if (KilledBySigkill(status)) ++killed;
    CheckConsistent(replay);
  }
  BOOST_TEST(killed >= 1);
  {
    auto store = OpenStore(dir.store());
    BOOST_REQUIRE(ReplayProjection(*store, *p, {}).ok());
  }
  Model resumed = Read(live);
  BOOST_TEST(resumed.ledger.size() == 200000u);
  BOOST_TEST(resumed == CleanReplay(dir.store(), *p));
}

BOOST_AUTO_TEST_SUITE_END()
