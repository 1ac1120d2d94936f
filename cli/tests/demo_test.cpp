// rill demo: builds a bank in a new store, verifies it, and says what to run.
#include <boost/test/unit_test.hpp>

#include "cli/tests/harness.h"

using namespace rill::clitest;

BOOST_AUTO_TEST_SUITE(demo)

BOOST_AUTO_TEST_CASE(demo_builds_a_consistent_bank_and_the_same_seed_writes_the_same_events) {
  TempDir tmp;
  RunResult first = Rill({"--db", tmp / "a", "--json", "demo", "--accounts", "10", "--rounds", "3", "--skus", "3"});
  BOOST_TEST_REQUIRE(first.exit_code == 0, first.err);
  std::vector<std::string> lines = Lines(first.out);
  BOOST_TEST_REQUIRE(lines.size() == 1u);
  // Exact figures: the scenario is deterministic for a seed.
  BOOST_TEST(lines[0].find(R"("events":140,"appends":119,"streams":28,"accounts":10,"transfers":15,)") !=
                 std::string::npos,
             lines[0]);
  BOOST_TEST(lines[0].find(R"("conflicts_refused":1,"duplicates_answered":1)") != std::string::npos);
  BOOST_TEST(lines[0].find(R"("skus":3,"purchases":23,"units_sold":44,"purchase_races_lost":43,)") !=
             std::string::npos);
  BOOST_TEST(lines[0].find(R"("last_position":140)") != std::string::npos);
  BOOST_TEST(lines[0].find("show account-1") != std::string::npos);

  RunResult check = RillDb(tmp / "a", {"check"});
  BOOST_TEST(check.exit_code == 0, check.out + check.err);
  RunResult streams = RillDb(tmp / "a", {"--json", "streams", "--category", "account"});
  BOOST_TEST(Lines(streams.out).size() == 10u);

  // Same seed, another store: the same events (ids and times aside).
  RunResult second = Rill({"--db", tmp / "b", "--quiet", "demo", "--accounts", "10", "--rounds", "3", "--skus", "3"});
  BOOST_TEST_REQUIRE(second.exit_code == 0, second.err);
  BOOST_TEST(second.out.empty());
  for (const char* stream : {"account-3", "transfer-7", "sku-2"}) {
    RunResult a = RillDb(tmp / "a", {"--json", "show", stream});
    RunResult b = RillDb(tmp / "b", {"--json", "show", stream});
    BOOST_TEST(Lines(a.out).size() == Lines(b.out).size());
    for (size_t i = 0; i < Lines(a.out).size() && i < Lines(b.out).size(); ++i) {
      auto data = [](const std::string& line) { return line.substr(line.find("\"data\"")); };
      BOOST_TEST(data(Lines(a.out)[i]) == data(Lines(b.out)[i]));
    }
  }
}

BOOST_AUTO_TEST_CASE(demo_refuses_an_existing_store_and_bad_arguments) {
  TestStore store;
  RunResult r = store.Run({"demo"});
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.err.find("already holds a rill store") != std::string::npos, r.err);
  BOOST_TEST(store.Run({"--json", "stats"}).out.find("\"events\":0") != std::string::npos);

  TempDir tmp;
  BOOST_TEST(Rill({"--db", tmp / "x", "demo", "--accounts", "1"}).exit_code == 2);
}

BOOST_AUTO_TEST_CASE(demo_without_db_uses_a_sandbox_and_says_how_to_remove_it) {
  TempDir tmp;
  setenv("TMPDIR", tmp.path().c_str(), 1);
  RunResult r = Rill({"demo", "--accounts", "4", "--rounds", "1", "--skus", "1"});
  unsetenv("TMPDIR");
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
  BOOST_TEST(r.out.find("rill --db " + tmp.path() + "/rill-demo-") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("rm -rf " + tmp.path() + "/rill-demo-") != std::string::npos, r.out);
}

BOOST_AUTO_TEST_SUITE_END()
