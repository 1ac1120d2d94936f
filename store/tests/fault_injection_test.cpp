// I/O faults under the real LMDB: this test binary interposes fdatasync (an
// executable's symbols win over libc's for liblmdb's calls), so a test can
// make the next fsync fail the way a dying disk would.
#include <dlfcn.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <cerrno>

#include "store/tests/test_util.h"

namespace {
std::atomic<int> g_fail_fsyncs{0};
}

extern "C" int fdatasync(int fd) {
  if (g_fail_fsyncs.load() > 0) {
    g_fail_fsyncs--;
    errno = EIO;
    return -1;
  }
  using Fn = int (*)(int);
  static Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "fdatasync"));
  return real(fd);
}

using namespace rill;
using namespace rill::testing;

BOOST_AUTO_TEST_SUITE(fault_injection)

BOOST_AUTO_TEST_CASE(fsync_failure_is_fatal_to_the_writer_and_loses_nothing_acknowledged) {
  TempDir tmp;
  {
    auto s = OpenOrDie(tmp.sub("db"));
    for (int i = 0; i < 10; ++i) BOOST_REQUIRE(s->Append(MakeAppend("ok-1", "E")).ok());
    g_fail_fsyncs = 1;
    auto r = s->Append(MakeAppend("ok-1", "Lost"));
    BOOST_TEST(r.status().code() == Code::kIOError);
    // Retrying an fsync can report success over lost pages: the writer stops.
    auto r2 = s->Append(MakeAppend("ok-1", "After"));
    BOOST_TEST(r2.status().code() == Code::kIOError);
    BOOST_TEST(r2.status().message().find("reopen") != std::string::npos);
    // Reads still work.
    std::vector<Event> ev;
    BOOST_REQUIRE(s->ReadStream("ok-1", Direction::kForward, 1, 100, &ev).ok());
    BOOST_TEST(ev.size() == 10u);
  }
  g_fail_fsyncs = 0;
  auto s = OpenOrDie(tmp.sub("db"));
  std::vector<Event> all;
  BOOST_REQUIRE(s->ReadAll(1, 1000, &all).ok());
  BOOST_REQUIRE_EQUAL(all.size(), 10u);  // every acknowledged event, nothing of the failed batch
  for (auto& e : all) BOOST_TEST(e.type == "E");
  auto r = s->Append(MakeAppend("ok-1", "E", "{}", ExpectedVersion::Exact(10)));
  BOOST_TEST(r.ok());
  CheckReport rep;
  BOOST_REQUIRE(s->Check(&rep).ok());
  BOOST_TEST(rep.problems.empty());
}

// Durability::kAsync acknowledges before the fsync: the writer's periodic
// fsync failing must stop the writer just as a failed commit does.
BOOST_AUTO_TEST_CASE(async_fsync_failure_stops_the_writer) {
  TempDir tmp;
  StoreOptions o;
  o.durability = Durability::kAsync;
  o.async_flush_interval = std::chrono::milliseconds(10);
  {
    auto s = OpenOrDie(tmp.sub("db"), o);
    for (int i = 0; i < 10; ++i) BOOST_REQUIRE(s->Append(MakeAppend("a-1", "E")).ok());
    g_fail_fsyncs = 1;
    // The writer fsyncs on its own within the interval; appends succeed
    // until it has failed, then every one fails.
    Status failed;
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (failed.ok() && std::chrono::steady_clock::now() < until) {
      auto r = s->Append(MakeAppend("a-1", "E"));
      if (!r.ok()) failed = r.status();
    }
    BOOST_TEST(g_fail_fsyncs.load() == 0);
    BOOST_TEST(failed.code() == Code::kIOError);
    BOOST_TEST(failed.message().find("failed fsync") != std::string::npos, failed.message());
    auto again = s->Append(MakeAppend("a-1", "E"));
    BOOST_TEST(again.status().message() == failed.message());
  }
  g_fail_fsyncs = 0;
  auto s = OpenOrDie(tmp.sub("db"), o);
  BOOST_TEST(s->Append(MakeAppend("a-1", "E")).ok());
  CheckReport rep;
  BOOST_REQUIRE(s->Check(&rep).ok());
  BOOST_TEST(rep.problems.empty());
}

BOOST_AUTO_TEST_SUITE_END()
