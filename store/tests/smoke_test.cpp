#include <boost/test/unit_test.hpp>

#include "store/tests/test_util.h"

using namespace rill;
using namespace rill::testing;

BOOST_AUTO_TEST_SUITE(smoke)

BOOST_AUTO_TEST_CASE(append_and_read_back) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.sub("db"));
  auto r = store->Append(MakeAppend("account-1", "AccountOpened", R"({"owner":"Ann"})"));
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  BOOST_TEST(r->first_version == 1u);
  BOOST_TEST(r->first_position == 1u);
  auto r2 = store->Append(MakeAppend("account-1", "Deposited", R"({"amount":5})"));
  BOOST_REQUIRE(r2.ok());
  BOOST_TEST(r2->last_version == 2u);
  std::vector<Event> events;
  BOOST_REQUIRE(store->ReadStream("account-1", Direction::kForward, 1, 100, &events).ok());
  BOOST_REQUIRE_EQUAL(events.size(), 2u);
  BOOST_TEST(events[1].data == R"({"amount":5})");
  BOOST_TEST(events[1].type == "Deposited");
}

BOOST_AUTO_TEST_SUITE_END()
