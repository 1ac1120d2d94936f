// The append queue between appenders and the group-commit writer: order per
// thread, back-pressure, wake-ups, flush and close.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "store/tests/test_util.h"

using namespace rill;
using namespace rill::testing;

BOOST_AUTO_TEST_SUITE(append_queue)

// Every thread pipelines exact expected versions on its own stream without
// waiting: one request reordered within a thread would conflict.
BOOST_AUTO_TEST_CASE(each_threads_requests_reach_the_writer_in_order) {
  TempDir tmp;
  auto s = OpenOrDie(tmp.sub("db"));
  const int kThreads = 16, kPer = 400;
  std::atomic<int> failures{0};
  std::vector<std::thread> th;
  for (int t = 0; t < kThreads; ++t)
    th.emplace_back([&, t] {
      std::vector<std::future<Result<AppendResult>>> f;
      for (int i = 0; i < kPer; ++i)
        f.push_back(s->AppendAsync(
            MakeAppend("order-" + std::to_string(t), "E", "{}", ExpectedVersion::Exact(static_cast<uint64_t>(i)))));
      uint64_t last = 0;
      for (auto& x : f) {
        auto r = x.get();
        if (!r.ok() || r->first_position <= last) failures++;
        if (r.ok()) last = r->first_position;
      }
    });
  for (auto& t : th) t.join();
  BOOST_TEST(failures == 0);
  BOOST_TEST(s->LastPosition() == uint64_t(kThreads * kPer));
}

// A producer faster than the disk waits in AppendAsync once
// max_queued_requests wait for the writer; nothing is lost meanwhile.
BOOST_AUTO_TEST_CASE(back_pressure_bounds_what_is_queued) {
  TempDir tmp;
  std::atomic<bool> hold{false}, held{false};
  StoreOptions o;
  o.max_queued_requests = 8;
  testing::FaultEnv env;
  o.env = &env;
  env.on_fault = [&](FaultPoint point) {
    while (point == FaultPoint::kBeforeLogCommit && hold.load()) {
      held = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return Status::OK();
  };
  auto s = OpenOrDie(tmp.sub("db"), o);
  hold = true;  // the writer stops at its next commit, holding that batch
  const int kRequests = 100;
  std::atomic<int> returned{0}, ok{0}, done{0};
  std::thread producer([&] {
    for (int i = 0; i < kRequests; ++i) {
      s->AppendAsync(MakeAppend("bp-1", "E"), [&](Result<AppendResult> r) {
        if (r.ok()) ok++;
        done++;
      });
      returned++;
    }
  });
  // Wait until the writer holds a batch and the producer has stopped.
  int last = -1;
  for (int i = 0; i < 400 && (!held || returned != last); ++i) {
    last = returned;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  BOOST_REQUIRE(held.load());
  // At most one batch (itself at most the queue's 8) in the writer and 8 queued.
  BOOST_TEST(returned.load() >= 8);
  BOOST_TEST(returned.load() <= 16);
  BOOST_TEST(done.load() == 0);
  hold = false;
  producer.join();
  BOOST_REQUIRE(s->Flush().ok());
  BOOST_TEST(done.load() == kRequests);
  BOOST_TEST(ok.load() == kRequests);
  BOOST_TEST(s->LastPosition() == uint64_t(kRequests));
}

// Appenders that each wait for their acknowledgement leave the writer idle
// between requests: every request must still wake it (a lost wake-up hangs).
BOOST_AUTO_TEST_CASE(acknowledged_one_at_a_time_from_several_threads) {
  TempDir tmp;
  StoreOptions o;
  o.durability = Durability::kAsync;  // no fsync per request: the test stays quick
  auto s = OpenOrDie(tmp.sub("db"), o);
  const int kThreads = 4, kPer = 300;
  std::atomic<int> failures{0};
  std::vector<std::thread> th;
  for (int t = 0; t < kThreads; ++t)
    th.emplace_back([&, t] {
      for (int i = 0; i < kPer; ++i)
        if (!s->Append(MakeAppend("one-" + std::to_string(t), "E")).ok()) failures++;
    });
  for (auto& t : th) t.join();
  BOOST_TEST(failures == 0);
  BOOST_TEST(s->LastPosition() == uint64_t(kThreads * kPer));
}

// Flush returns after everything queued before it has been completed.
BOOST_AUTO_TEST_CASE(flush_waits_for_what_was_queued_before_it) {
  TempDir tmp;
  auto s = OpenOrDie(tmp.sub("db"));
  std::atomic<int> done{0};
  for (int i = 0; i < 1000; ++i) s->AppendAsync(MakeAppend("fl-" + std::to_string(i % 7), "E"), [&](auto) { done++; });
  BOOST_REQUIRE(s->Flush().ok());
  BOOST_TEST(done.load() == 1000);
}

// Closing the store writes and completes every request queued before it.
BOOST_AUTO_TEST_CASE(close_completes_everything_queued) {
  TempDir tmp;
  const int kThreads = 4, kPer = 500;
  std::atomic<int> ok{0}, done{0};
  {
    auto s = OpenOrDie(tmp.sub("db"));
    std::vector<std::thread> th;
    for (int t = 0; t < kThreads; ++t)
      th.emplace_back([&, t] {
        for (int i = 0; i < kPer; ++i)
          s->AppendAsync(MakeAppend("close-" + std::to_string(t), "E"), [&](Result<AppendResult> r) {
            if (r.ok()) ok++;
            done++;
          });
      });
    for (auto& t : th) t.join();
  }  // closes with requests still queued
  BOOST_TEST(done.load() == kThreads * kPer);
  BOOST_TEST(ok.load() == kThreads * kPer);
  auto s = OpenOrDie(tmp.sub("db"));
  BOOST_TEST(s->LastPosition() == uint64_t(kThreads * kPer));
}

BOOST_AUTO_TEST_SUITE_END()
