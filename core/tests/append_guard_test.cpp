// AppendGuard against a real store: what a raw append to an aggregate's
// stream must be, checked in batch order, and surgery only when forced.
#include <boost/test/unit_test.hpp>

#include "core/append_guard.h"
#include "core/tests/test_util.h"

using namespace rill;
using namespace rill::coretest;

BOOST_AUTO_TEST_SUITE(append_guard)

BOOST_FIXTURE_TEST_CASE(aggregate_streams_take_only_events_that_evolve, SampleStore) {
  {
    auto rt = StartRuntime(store.get(), &registry, {.shards = 1});
    MustExecute(*rt, Cmd("OpenAccount", "account-1", R"({"owner":"ann"})"));
  }
  AppendGuard guard(*store, registry, {.forced_by = "test"});
  auto good = MakeAppend("account-1", "Deposited", R"({"amount":5})");
  BOOST_TEST(guard.Admit(&good).ok());
  auto bad = MakeAppend("account-1", "Deposited", R"({"amount":"lots"})");
  Status s = guard.Admit(&bad);
  BOOST_TEST(s.code() == Code::kInvalidArgument);
  BOOST_TEST(s.message().find("amount") != std::string::npos, s.message());
  BOOST_TEST(s.message().find("version 3") != std::string::npos, "checked after the admitted one: " << s.message());
  auto unknown = MakeAppend("account-1", "Bogus");
  BOOST_TEST(guard.Admit(&unknown).code() == Code::kInvalidArgument);
  auto audit = MakeAppend("audit-1", "Bogus", R"({"amount":"lots"})");
  BOOST_TEST(guard.Admit(&audit).ok());
}

BOOST_FIXTURE_TEST_CASE(forced_events_are_marked_and_break_what_follows, SampleStore) {
  AppendGuard guard(*store, registry, {.force = true, .forced_by = "test --force"});
  auto bad = MakeAppend("account-7", "Deposited", R"({"amount":"lots"})");
  bool forced = false;
  BOOST_TEST(guard.Admit(&bad, &forced).ok());
  BOOST_TEST(forced);
  BOOST_TEST(bad.events[0].meta == R"({"$forced_by":"test --force"})");
  // The aggregate cannot be activated past it, so nothing after it is checked clean.
  auto next = MakeAppend("account-7", "Deposited", R"({"amount":1})");
  BOOST_TEST(guard.Admit(&next, &forced).ok());
  BOOST_TEST(forced);
  BOOST_TEST(guard.forced() == 2u);
  BOOST_TEST(MarkForced(R"({"by":"x","$forced_by":"old"})", "new") == R"({"by":"x","$forced_by":"new"})");
}

BOOST_AUTO_TEST_SUITE_END()
