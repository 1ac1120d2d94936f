// AppendQueue on its own (store/internal/append_queue.h), without a writer
// thread: the test takes batches itself, so each case says exactly what a
// batch holds. append_queue_test.cpp covers it inside a running store.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cstdlib>
#include <chrono>
#include <thread>
#include <vector>

#include "store/internal/append_queue.h"
#include "store/tests/test_util.h"  // operator<< for Code

using namespace rill;
using namespace std::chrono_literals;

namespace {

PendingAppend Request(std::string stream, size_t bytes = 100) {
  PendingAppend p;
  p.request.stream = std::move(stream);
  p.bytes = bytes;
  return p;
}

StoreOptions Limits(size_t queued, size_t batch_requests, size_t batch_bytes = 1u << 20) {
  StoreOptions o;
  o.max_queued_requests = queued;
  o.max_batch_requests = batch_requests;
  o.max_batch_bytes = batch_bytes;
  o.max_batch_delay = std::chrono::microseconds(0);  // take what is there
  return o;
}

std::vector<std::string> Streams(const std::vector<PendingAppend>& batch) {
  std::vector<std::string> v;
  for (const auto& p : batch) v.push_back(p.request.stream);
  return v;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(append_queue_unit)

BOOST_AUTO_TEST_CASE(a_batch_is_taken_in_push_order_within_its_limits) {
  AppendQueue q(Limits(100, 3));
  for (const char* s : {"a", "b", "c", "d"}) {
    BOOST_REQUIRE(q.Reserve(false).ok());
    q.Push(Request(s));
  }
  std::vector<PendingAppend> batch;
  BOOST_REQUIRE(q.TakeBatch(&batch, std::nullopt));
  BOOST_TEST(Streams(batch) == (std::vector<std::string>{"a", "b", "c"}));
  BOOST_REQUIRE(q.TakeBatch(&batch, std::nullopt));
  BOOST_TEST(Streams(batch) == (std::vector<std::string>{"d"}));
}

BOOST_AUTO_TEST_CASE(bytes_close_a_batch_and_an_oversized_request_goes_alone) {
  AppendQueue q(Limits(100, 100, 250));
  std::vector<PendingAppend> ps;
  ps.push_back(Request("a", 100));
  ps.push_back(Request("b", 100));
  ps.push_back(Request("c", 100));
  ps.push_back(Request("huge", 1000));
  ps.push_back(Request("e", 100));
  BOOST_REQUIRE(q.Reserve(false, ps.size()).ok());
  q.PushMany(&ps);
  BOOST_TEST(ps.empty());
  std::vector<PendingAppend> batch;
  std::vector<std::vector<std::string>> got;
  for (int i = 0; i < 3; ++i) {
    BOOST_REQUIRE(q.TakeBatch(&batch, std::nullopt));
    got.push_back(Streams(batch));
  }
  BOOST_TEST(got[0] == (std::vector<std::string>{"a", "b"}));
  BOOST_TEST(got[1] == (std::vector<std::string>{"c"}));  // c + huge would pass 250
  BOOST_TEST(got[2] == (std::vector<std::string>{"huge"}));
  BOOST_REQUIRE(q.TakeBatch(&batch, std::nullopt));
  BOOST_TEST(Streams(batch) == (std::vector<std::string>{"e"}));
}

BOOST_AUTO_TEST_CASE(an_idle_wait_ends_empty_at_its_deadline) {
  AppendQueue q(Limits(100, 10));
  std::vector<PendingAppend> batch;
  auto start = std::chrono::steady_clock::now();
  BOOST_REQUIRE(q.TakeBatch(&batch, start + 20ms));
  BOOST_TEST(batch.empty());
  BOOST_TEST((std::chrono::steady_clock::now() - start >= 20ms));
}

// Each thread's requests arrive in its order whichever path they took (the
// lock, or the overflow stack while another thread held it).
BOOST_AUTO_TEST_CASE(each_threads_order_survives_contention) {
  const int kThreads = 8, kPer = 2000;
  AppendQueue q(Limits(kThreads * kPer, 512));
  std::vector<std::thread> th;
  for (int t = 0; t < kThreads; ++t)
    th.emplace_back([&, t] {
      for (int i = 0; i < kPer; ++i) {
        if (!q.Reserve(false).ok()) std::abort();  // (Boost.Test's macros are not thread-safe)
        q.Push(Request(std::to_string(t) + ":" + std::to_string(i)));
      }
    });
  std::vector<int> next(kThreads, 0);
  int taken = 0, misordered = 0;
  std::vector<PendingAppend> batch;
  while (taken < kThreads * kPer) {
    BOOST_REQUIRE(q.TakeBatch(&batch, std::chrono::steady_clock::now() + 1s));
    for (const auto& p : batch) {
      const std::string& s = p.request.stream;
      int t = std::stoi(s.substr(0, s.find(':'))), i = std::stoi(s.substr(s.find(':') + 1));
      if (i != next[t]) ++misordered;
      next[t] = i + 1;
      ++taken;
    }
  }
  for (auto& x : th) x.join();
  BOOST_TEST(misordered == 0);
  BOOST_TEST(taken == kThreads * kPer);
}

BOOST_AUTO_TEST_CASE(back_pressure_waits_until_a_batch_is_taken) {
  AppendQueue q(Limits(2, 10));
  for (int i = 0; i < 2; ++i) {
    BOOST_REQUIRE(q.Reserve(false).ok());
    q.Push(Request("a"));
  }
  std::atomic<bool> reserved{false};
  std::thread appender([&] {
    if (!q.Reserve(false).ok()) std::abort();
    reserved = true;
    q.Push(Request("b"));
  });
  std::this_thread::sleep_for(50ms);
  BOOST_TEST(!reserved.load());  // full: it waits
  BOOST_TEST(q.Reserve(/*flush_marker=*/true).ok());  // a flush never waits for room
  PendingAppend marker;
  marker.flush_marker = true;
  q.Push(std::move(marker));
  std::vector<PendingAppend> batch;
  BOOST_REQUIRE(q.TakeBatch(&batch, std::nullopt));
  BOOST_TEST(batch.size() == 3u);
  appender.join();
  BOOST_TEST(reserved.load());
  BOOST_REQUIRE(q.TakeBatch(&batch, std::nullopt));
  BOOST_TEST(Streams(batch) == (std::vector<std::string>{"b"}));
}

BOOST_AUTO_TEST_CASE(close_refuses_new_requests_and_drains_reserved_ones) {
  AppendQueue q(Limits(100, 10));
  BOOST_REQUIRE(q.Reserve(false).ok());  // reserved before the close, pushed after
  BOOST_TEST(q.Close());
  BOOST_TEST(!q.Close());
  Status late = q.Reserve(false);
  BOOST_TEST(late.code() == Code::kIOError);
  BOOST_TEST(late.message() == "store is closing");
  std::thread pusher([&] {
    std::this_thread::sleep_for(20ms);
    q.Push(Request("last"));
  });
  std::vector<PendingAppend> batch;
  BOOST_REQUIRE(q.TakeBatch(&batch, std::nullopt));
  BOOST_TEST(Streams(batch) == (std::vector<std::string>{"last"}));
  BOOST_TEST(!q.TakeBatch(&batch, std::nullopt));  // closed and drained: the writer is done
  BOOST_TEST(batch.empty());
  pusher.join();
}

BOOST_AUTO_TEST_CASE(a_failure_refuses_appends_but_not_flushes) {
  AppendQueue q(Limits(100, 10));
  BOOST_TEST(!q.failed());
  q.Fail(Status::IOError("the log writer stopped"));
  BOOST_TEST(q.failed());
  BOOST_TEST(q.Reserve(false).message() == "the log writer stopped");
  BOOST_TEST(q.Reserve(true).ok());
  BOOST_TEST(q.failure().message() == "the log writer stopped");
}

BOOST_AUTO_TEST_SUITE_END()
