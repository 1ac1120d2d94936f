// The actor runtime against real stores: single activation, ordering,
// idempotency across restarts, snapshots, passivation, commit failures,
// and no oversell.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fmt/format.h>
#include <mutex>
#include <set>
#include <thread>

#include "core/tests/test_util.h"

using namespace rill;
using namespace rill::coretest;

namespace {

struct Counter {
  int64_t total = 0, count = 0;
  template <class F> void fields(F& f) { f("total", total); f("count", count); }
};
struct Add {
  static constexpr const char* kType = "Add";
  int64_t n = 0;
  template <class F> void fields(F& f) { f("n", n); }
};
struct Added {
  static constexpr const char* kType = "Added";
  int64_t n = 0;
  template <class F> void fields(F& f) { f("n", n); }
};

std::vector<Event> ReadAllOf(EventStore& store, const std::string& stream) {
  std::vector<Event> out;
  Status s = store.ReadStream(stream, Direction::kForward, 1, 1000000, &out);
  if (!s.ok() && !s.IsNotFound()) throw std::runtime_error(s.ToString());
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(runtime)

BOOST_FIXTURE_TEST_CASE(single_activation_many_threads_one_stream, SampleStore) {
  auto rt = StartRuntime(store.get(), &registry, {.shards = 2});
  MustExecute(*rt, Cmd("OpenAccount", "account-1", R"({"owner":"ann"})"));

  constexpr int kThreads = 8, kPerThread = 400;
  std::mutex mu;
  std::set<uint64_t> versions;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      std::vector<std::future<Result<CommandResult>>> futures;
      for (int i = 0; i < kPerThread; ++i) futures.push_back(rt->Submit(Cmd("Deposit", "account-1", R"({"amount":1})")));
      for (auto& f : futures) {
        auto r = f.get();
        if (!r.ok()) {
          failures++;
          continue;
        }
        std::lock_guard lk(mu);
        versions.insert(r->last_version);
      }
    });
  for (auto& t : threads) t.join();
  BOOST_TEST(failures.load() == 0);
  BOOST_TEST(versions.size() == size_t(kThreads * kPerThread));
  BOOST_TEST(*versions.begin() == 2u);
  BOOST_TEST(*versions.rbegin() == uint64_t(kThreads * kPerThread + 1));
  auto state = rt->GetState("account-1");
  BOOST_REQUIRE(state.ok());
  BOOST_TEST(IntField(state->state, "balance") == kThreads * kPerThread);
  auto events = ReadAllOf(*store, "account-1");
  BOOST_TEST(events.size() == size_t(kThreads * kPerThread + 1));
  for (size_t i = 0; i < events.size(); ++i) BOOST_TEST(events[i].version == i + 1);
}

BOOST_FIXTURE_TEST_CASE(commands_of_a_stream_run_in_arrival_order, SampleStore) {
  auto rt = StartRuntime(store.get(), &registry, {.shards = 2});
  constexpr int kStreams = 5, kPerStream = 300;
  for (int s = 0; s < kStreams; ++s) MustExecute(*rt, Cmd("OpenAccount", fmt::format("account-{}", s), R"({"owner":"o"})"));
  std::vector<std::future<Result<CommandResult>>> futures;
  for (int i = 1; i <= kPerStream; ++i)
    for (int s = 0; s < kStreams; ++s)
      futures.push_back(rt->Submit(Cmd("Deposit", fmt::format("account-{}", s), fmt::format(R"({{"amount":{}}})", i))));
  for (auto& f : futures) BOOST_REQUIRE(f.get().ok());
  for (int s = 0; s < kStreams; ++s) {
    auto events = ReadAllOf(*store, fmt::format("account-{}", s));
    BOOST_REQUIRE(events.size() == size_t(kPerStream + 1));
    for (int i = 1; i <= kPerStream; ++i) BOOST_TEST(IntField(events[i].data, "amount") == i);
  }
}

BOOST_AUTO_TEST_CASE(idempotent_command_ids_across_restart) {
  TempDir dir;
  CommandResult first;
  {
    auto store = OpenStore(dir.path());
    auto registry = SampleDomains();
    auto rt = StartRuntime(store.get(), &registry);
    MustExecute(*rt, Cmd("OpenAccount", "account-7", R"({"owner":"bo"})", "open-7"));
    first = MustExecute(*rt, Cmd("Deposit", "account-7", R"({"amount":50})", "dep-1"));
    BOOST_TEST(!first.duplicate);
    auto again = rt->Execute(Cmd("Deposit", "account-7", R"({"amount": 50})", "dep-1"));  // same content
    BOOST_REQUIRE(again.ok());
    BOOST_TEST(again->duplicate);
    BOOST_TEST(again->last_version == first.last_version);
    BOOST_TEST(again->last_position == first.last_position);
    // A rejected command leaves no trace: its id may be used again.
    auto rejected = rt->Execute(Cmd("Withdraw", "account-7", R"({"amount":80})", "wd-1"));
    BOOST_TEST(rejected.status().code() == Code::kRejected);
    MustExecute(*rt, Cmd("Deposit", "account-7", R"({"amount":40})"));
    auto retried = rt->Execute(Cmd("Withdraw", "account-7", R"({"amount":80})", "wd-1"));
    BOOST_REQUIRE(retried.ok());
    BOOST_TEST(!retried->duplicate);
  }
  {
    auto store = OpenStore(dir.path());
    auto registry = SampleDomains();
    auto rt = StartRuntime(store.get(), &registry);
    auto again = rt->Execute(Cmd("Deposit", "account-7", R"({"amount":50})", "dep-1"));
    BOOST_REQUIRE(again.ok());
    BOOST_TEST(again->duplicate);
    BOOST_TEST(again->last_version == first.last_version);
    BOOST_TEST(again->last_position == first.last_position);
    auto other = rt->Execute(Cmd("Deposit", "account-7", R"({"amount":51})", "dep-1"));
    BOOST_TEST(other.status().code() == Code::kConflict);
    auto elsewhere = rt->Execute(Cmd("Deposit", "account-8", R"({"amount":50})", "dep-1"));
    BOOST_TEST(elsewhere.status().code() == Code::kConflict);
    auto state = rt->GetState("account-7");
    BOOST_REQUIRE(state.ok());
    BOOST_TEST(IntField(state->state, "balance") == 10);
    BOOST_TEST(ReadAllOf(*store, "account-7").size() == 4u);
  }
}

BOOST_FIXTURE_TEST_CASE(expected_version_conflict, SampleStore) {
  auto rt = StartRuntime(store.get(), &registry);
  Command open = Cmd("OpenAccount", "account-1", R"({"owner":"x"})");
  open.expected_version = 0;
  MustExecute(*rt, open);
  Command dep = Cmd("Deposit", "account-1", R"({"amount":5})");
  dep.expected_version = 0;
  BOOST_TEST(rt->Execute(dep).status().code() == Code::kConflict);
  dep.expected_version = 1;
  BOOST_TEST(rt->Execute(dep).ok());
}

BOOST_FIXTURE_TEST_CASE(another_process_writing_the_stream_is_caught_and_retried, SampleStore) {
  auto rt = StartRuntime(store.get(), &registry);
  MustExecute(*rt, Cmd("OpenAccount", "account-1", R"({"owner":"x"})"));
  MustExecute(*rt, Cmd("Deposit", "account-1", R"({"amount":10})"));
  // Behind the actor's back (as another process would).
  BOOST_REQUIRE(store->Append(MakeAppend("account-1", "Withdrawn", R"({"amount":10})")).ok());
  // The actor still believes balance 10: its append conflicts, it reloads
  // (balance 0) and the retried command is rejected by the domain.
  auto r = rt->Execute(Cmd("Withdraw", "account-1", R"({"amount":5})"));
  BOOST_TEST(r.status().code() == Code::kRejected);
  auto ok = rt->Execute(Cmd("Deposit", "account-1", R"({"amount":3})"));
  BOOST_REQUIRE(ok.ok());
  BOOST_TEST(ok->last_version == 4u);
  BOOST_TEST(rt->Stats().retries >= 1u);
}

BOOST_AUTO_TEST_CASE(snapshot_plus_tail_equals_full_replay) {
  TempDir dir;
  DomainRegistry registry;
  registry.Add(Aggregate<Counter>("counter")
                   .Decide<Add>([](const Counter&, const Add& c) { return Accept(Added{c.n}); })
                   .Evolve<Added>([](Counter& s, const Added& e) { s.total += e.n; s.count++; })
                   .SnapshotEvery(10));
  std::string live;
  {
    auto store = OpenStore(dir.path());
    auto rt = StartRuntime(store.get(), &registry);
    for (int i = 1; i <= 105; ++i) MustExecute(*rt, Cmd("Add", "counter-1", fmt::format(R"({{"n":{}}})", i)));
    rt->Drain();
    auto snap = store->GetSnapshot("counter-1");
    BOOST_REQUIRE(snap.ok());
    BOOST_TEST(snap->version >= 100u);
    BOOST_TEST(snap->version <= 105u);
    live = rt->GetState("counter-1")->state;
    auto full = ReplayState(*store, registry, "counter-1");
    auto from_snapshot = ReplayState(*store, registry, "counter-1", {.use_snapshot = true});
    BOOST_REQUIRE(full.ok());
    BOOST_REQUIRE(from_snapshot.ok());
    BOOST_TEST(full->state == live);
    BOOST_TEST(from_snapshot->state == live);
    BOOST_TEST(live == R"({"total":5565,"count":105})");
    auto at = ReplayState(*store, registry, "counter-1", {.until_version = 3});
    BOOST_TEST(at->state == R"({"total":6,"count":3})");
  }
  {
    // Reactivation from snapshot + tail gives the same state.
    auto store = OpenStore(dir.path());
    auto rt = StartRuntime(store.get(), &registry);
    BOOST_TEST(rt->GetState("counter-1")->state == live);
  }
  {
    // A snapshot of another state schema is ignored: rebuilt from events.
    auto store = OpenStore(dir.path());
    BOOST_REQUIRE(store->PutSnapshot("counter-1", Snapshot{105, 99, R"({"total":-1,"count":-1})"}).ok());
    auto rt = StartRuntime(store.get(), &registry);
    BOOST_TEST(rt->GetState("counter-1")->state == live);
  }
}

BOOST_FIXTURE_TEST_CASE(passivation_under_a_tiny_bound_keeps_state_correct, SampleStore) {
  auto rt = StartRuntime(store.get(), &registry, {.shards = 2, .max_live_actors = 4});
  constexpr int kAccounts = 60;
  for (int a = 0; a < kAccounts; ++a)
    MustExecute(*rt, Cmd("OpenAccount", fmt::format("account-{}", a), R"({"owner":"o"})"));
  std::vector<int64_t> expected(kAccounts, 0);
  std::vector<std::future<Result<CommandResult>>> futures;
  uint32_t seed = 12345;
  for (int i = 0; i < 3000; ++i) {
    seed = seed * 1103515245 + 12345;
    int a = (seed >> 8) % kAccounts;
    int amount = 1 + (seed >> 20) % 9;
    expected[a] += amount;
    futures.push_back(rt->Submit(Cmd("Deposit", fmt::format("account-{}", a), fmt::format(R"({{"amount":{}}})", amount))));
  }
  for (auto& f : futures) BOOST_REQUIRE(f.get().ok());
  rt->Drain();
  auto stats = rt->Stats();
  BOOST_TEST(stats.passivations > 20u);
  BOOST_TEST(stats.live_actors <= 4u);
  for (int a = 0; a < kAccounts; ++a) {
    auto s = rt->GetState(fmt::format("account-{}", a));
    BOOST_REQUIRE(s.ok());
    BOOST_TEST(IntField(s->state, "balance") == expected[a]);
  }
}

BOOST_AUTO_TEST_CASE(commit_failure_leaves_memory_equal_to_the_store) {
  TempDir dir;
  std::atomic<int> commits{0};
  StoreOptions o;
  o.max_batch_requests = 16;
  // Every 5th commit fails, as if the disk had refused the batch.
  testing::FaultEnv env;
  o.env = &env;
  env.on_fault = [&](FaultPoint point) {
    if (point == FaultPoint::kBeforeLogCommit && ++commits % 5 == 0) return Status::IOError("injected commit failure");
    return Status::OK();
  };
  auto store = OpenStore(dir.path(), o);
  auto registry = SampleDomains();
  auto rt = StartRuntime(store.get(), &registry, {.shards = 2});
  constexpr int kAccounts = 4;
  for (int a = 0; a < kAccounts; ++a) {
    for (int attempt = 0; attempt < 5; ++attempt)
      if (rt->Execute(Cmd("OpenAccount", fmt::format("account-{}", a), R"({"owner":"o"})")).ok()) break;
  }
  std::vector<int64_t> accepted(kAccounts, 0);
  std::vector<std::pair<int, std::future<Result<CommandResult>>>> futures;
  for (int i = 0; i < 4000; ++i) {
    int a = i % kAccounts;
    futures.emplace_back(a, rt->Submit(Cmd("Deposit", fmt::format("account-{}", a), R"({"amount":1})")));
  }
  int failed = 0;
  for (auto& [a, f] : futures) {
    auto r = f.get();
    if (r.ok()) {
      accepted[a] += 1;
    } else {
      ++failed;
      BOOST_TEST((r.status().code() == Code::kIOError || r.status().code() == Code::kConflict));
      BOOST_TEST(r.status().message().find("not applied") != std::string::npos);
    }
  }
  BOOST_TEST(failed > 0);
  for (int a = 0; a < kAccounts; ++a) {
    std::string stream = fmt::format("account-{}", a);
    auto live = rt->GetState(stream);
    auto replay = ReplayState(*store, registry, stream);
    BOOST_REQUIRE(live.ok());
    BOOST_REQUIRE(replay.ok());
    BOOST_TEST(live->state == replay->state);
    BOOST_TEST(live->version == replay->version);
    BOOST_TEST(IntField(live->state, "balance") == accepted[a]);
  }
}

// The pipelining hazard: the actor hands its next command to the writer
// before the previous one is durable. If another process writes the stream
// in between, the first command conflicts; the second was decided on the
// first's effect and its expected version may match what the other process
// wrote. The store's pipeline flag makes it fail too (then both are retried
// in order after the reload): the account never goes below zero.
BOOST_AUTO_TEST_CASE(pipelined_command_after_a_conflict_is_not_committed) {
  TempDir dir;
  // A gate in the writer: while armed, the next commit waits for release,
  // so appends pile up in the queue in a known order.
  std::mutex mu;
  std::condition_variable cv;
  bool armed = false, held = false, released = false;
  StoreOptions o;
  testing::FaultEnv env;
  o.env = &env;
  env.on_fault = [&](FaultPoint point) {
    if (point != FaultPoint::kBeforeLogCommit) return Status::OK();
    std::unique_lock lk(mu);
    if (!armed) return Status::OK();
    armed = false;
    held = true;
    cv.notify_all();
    cv.wait(lk, [&] { return released; });
    return Status::OK();
  };
  auto store = OpenStore(dir.path(), o);
  auto registry = SampleDomains();
  auto rt = StartRuntime(store.get(), &registry, {.shards = 1});
  MustExecute(*rt, Cmd("OpenAccount", "account-1", R"({"owner":"x"})"));
  MustExecute(*rt, Cmd("Deposit", "account-1", R"({"amount":10})"));  // version 2, balance 10

  // Hold the writer inside the commit of an unrelated append.
  {
    std::lock_guard lk(mu);
    armed = true;
  }
  auto blocker = store->AppendAsync(MakeAppend("other-1", "Noted"));
  {
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return held; });
  }
  // Another process writes the account first (queued ahead of the actor) ...
  auto their_append = store->AppendAsync(MakeAppend("account-1", "Deposited", R"({"amount":1})"));
  // ... while the actor pipelines two commands; the withdrawal is allowed
  // only because of the deposit before it. They expect versions 2 and 3.
  auto deposit = rt->Submit(Cmd("Deposit", "account-1", R"({"amount":100})"));
  auto withdraw = rt->Submit(Cmd("Withdraw", "account-1", R"({"amount":100})"));
  // The actor answers a later message only after handing both to the writer.
  BOOST_TEST(rt->GetState("account-1")->version == 4u);
  {
    std::lock_guard lk(mu);
    released = true;
  }
  cv.notify_all();
  BOOST_REQUIRE(blocker.get().ok());
  BOOST_REQUIRE(their_append.get().ok());  // version 3
  auto d = deposit.get();
  auto w = withdraw.get();
  rt->Drain();

  // Without the flag the withdrawal committed as version 4 on a balance of
  // 11: the account went to -89.
  auto events = ReadAllOf(*store, "account-1");
  for (uint64_t v = 1; v <= events.size(); ++v) {
    auto at = ReplayState(*store, registry, "account-1", {.until_version = v});
    BOOST_REQUIRE(at.ok());
    BOOST_TEST(IntField(at->state, "balance") >= 0, "balance at version " << v << ": " << at->state);
  }
  // With it both failed with the conflict and were retried, in order, after
  // the reload.
  BOOST_TEST(d.ok());
  BOOST_TEST(w.ok());
  BOOST_TEST(rt->Stats().retries == 2u);
  BOOST_REQUIRE(events.size() == 5u);
  BOOST_TEST(events[2].type == "Deposited");
  BOOST_TEST(events[3].type == "Deposited");
  BOOST_TEST(events[4].type == "Withdrawn");
  auto live = rt->GetState("account-1");
  auto replay = ReplayState(*store, registry, "account-1");
  BOOST_TEST(live->state == replay->state);
  BOOST_TEST(IntField(replay->state, "balance") == 11);
}

// The shard starts loading the actors of commands further down its batch
// while it runs earlier ones. Many streams, a live bound far below them (so
// actors are passivated and reactivated between a command's prefetch and
// its turn) and one shard (long batches): each stream's commands must still
// run in arrival order, and each state must equal its events.
BOOST_FIXTURE_TEST_CASE(order_per_stream_holds_over_long_batches_with_passivation, SampleStore) {
  auto rt = StartRuntime(store.get(), &registry, {.shards = 1, .max_live_actors = 16});
  constexpr int kStreams = 300, kPerStream = 8;
  std::vector<std::future<Result<CommandResult>>> futures;
  for (int s = 0; s < kStreams; ++s)
    futures.push_back(rt->Submit(Cmd("OpenAccount", fmt::format("account-{}", s), R"({"owner":"o"})")));
  // Submitted back to back, so they reach the shard in large batches;
  // neighbours in the batch are mostly different streams.
  uint32_t seed = 7;
  std::vector<int> next(kStreams, 1);
  for (int i = 0; i < kStreams * kPerStream; ++i) {
    seed = seed * 1103515245 + 12345;
    int s = (seed >> 8) % kStreams;
    if (next[s] > kPerStream) s = static_cast<int>(std::find_if(next.begin(), next.end(), [](int n) { return n <= kPerStream; }) - next.begin());
    futures.push_back(rt->Submit(Cmd("Deposit", fmt::format("account-{}", s), fmt::format(R"({{"amount":{}}})", next[s]++))));
  }
  for (auto& f : futures) BOOST_REQUIRE(f.get().ok());
  rt->Drain();
  BOOST_TEST(rt->Stats().passivations > 100u);
  for (int s = 0; s < kStreams; ++s) {
    std::string stream = fmt::format("account-{}", s);
    auto events = ReadAllOf(*store, stream);
    BOOST_REQUIRE(events.size() == size_t(kPerStream + 1));
    for (int i = 1; i <= kPerStream; ++i) BOOST_TEST(IntField(events[i].data, "amount") == i, stream);
    auto live = rt->GetState(stream);
    BOOST_REQUIRE(live.ok());
    BOOST_TEST(IntField(live->state, "balance") == kPerStream * (kPerStream + 1) / 2);
  }
}

// Pipeline flags are pooled per shard: the flag a failed commit set must
// not be handed, still set, to the next actor (its appends would all fail
// as if its own pipeline had broken).
BOOST_AUTO_TEST_CASE(a_broken_pipeline_does_not_break_the_next_actor) {
  TempDir dir;
  std::atomic<bool> fail_next{false};
  StoreOptions o;
  testing::FaultEnv env;
  o.env = &env;
  env.on_fault = [&](FaultPoint point) {
    if (point == FaultPoint::kBeforeLogCommit && fail_next.exchange(false)) return Status::IOError("injected");
    return Status::OK();
  };
  auto store = OpenStore(dir.path(), o);
  auto registry = SampleDomains();
  auto rt = StartRuntime(store.get(), &registry, {.shards = 1});
  MustExecute(*rt, Cmd("OpenAccount", "account-1", R"({"owner":"o"})"));
  fail_next = true;
  auto failed = rt->Execute(Cmd("Deposit", "account-1", R"({"amount":5})"));
  BOOST_REQUIRE(!failed.ok());
  BOOST_TEST(failed.status().code() == Code::kIOError);
  // Every later actor (and account-1 reloaded) commits normally, first try.
  for (int s = 1; s <= 3; ++s) {
    std::string stream = fmt::format("account-{}", s);
    if (s > 1) MustExecute(*rt, Cmd("OpenAccount", stream, R"({"owner":"o"})"));
    MustExecute(*rt, Cmd("Deposit", stream, R"({"amount":7})"));
    BOOST_TEST(IntField(rt->GetState(stream)->state, "balance") == 7);
  }
  BOOST_TEST(rt->Stats().retries == 0u);
  BOOST_TEST(rt->Stats().failed == 1u);
}

BOOST_FIXTURE_TEST_CASE(no_oversell_with_many_concurrent_purchasers, SampleStore) {
  auto rt = StartRuntime(store.get(), &registry, {.shards = 2});
  MustExecute(*rt, Cmd("CreateSku", "sku-1", R"({"stock":1000})"));
  constexpr int kThreads = 8, kPerThread = 500;
  std::atomic<int> ok{0}, out_of_stock{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      std::vector<std::future<Result<CommandResult>>> futures;
      for (int i = 0; i < kPerThread; ++i)
        futures.push_back(rt->Submit(Cmd("Purchase", "sku-1", fmt::format(R"({{"quantity":1,"user":"u{}"}})", t))));
      for (auto& f : futures) {
        auto r = f.get();
        if (r.ok()) ok++;
        else if (r.status().code() == Code::kRejected && r.status().message().find("out of stock") == 0) out_of_stock++;
        else other++;
      }
    });
  for (auto& t : threads) t.join();
  BOOST_TEST(ok.load() == 1000);
  BOOST_TEST(out_of_stock.load() == kThreads * kPerThread - 1000);
  BOOST_TEST(other.load() == 0);
  BOOST_TEST(rt->GetState("sku-1")->state == R"({"stock":0,"sold":1000})");
  BOOST_TEST(ReadAllOf(*store, "sku-1").size() == 1001u);
}

BOOST_FIXTURE_TEST_CASE(bad_commands_are_clear_errors, SampleStore) {
  auto rt = StartRuntime(store.get(), &registry);
  auto unknown = rt->Execute(Cmd("Deposit", "wallet-1", R"({"amount":1})"));
  BOOST_TEST(unknown.status().code() == Code::kNotFound);
  auto wrong = rt->Execute(Cmd("Purchase", "account-1", R"({"quantity":1,"user":"x"})"));
  BOOST_TEST(wrong.status().code() == Code::kInvalidArgument);
  auto typo = rt->Execute(Cmd("Deposit", "account-1", R"({"ammount":1})"));
  BOOST_TEST(typo.status().code() == Code::kInvalidArgument);
  auto type = rt->Execute(Cmd("Deposit", "account-1", R"({"amount":"1"})"));
  BOOST_TEST(type.status().code() == Code::kInvalidArgument);
  BOOST_TEST(type.status().message() == "Deposit: field \"amount\" must be an integer");
  auto missing = rt->Execute(Cmd("Deposit", "account-1", R"({"amount":1})"));
  BOOST_TEST(missing.status().code() == Code::kRejected);
  BOOST_TEST(missing.status().message() == "account does not exist");
  BOOST_TEST(store->LastPosition() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
