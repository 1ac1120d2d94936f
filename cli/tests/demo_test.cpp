// rill demo: runs the bank and flash sale through the actor core in a new
// store, replays the read models, and says what to run next.
#include <boost/test/unit_test.hpp>

#include "cli/tests/harness.h"

using namespace rill::clitest;

BOOST_AUTO_TEST_SUITE(demo)

BOOST_AUTO_TEST_CASE(demo_conserves_money_never_oversells_and_the_same_seed_writes_the_same_events) {
  TempDir tmp;
  RunResult first = Rill({"--db", tmp / "a", "--json", "demo", "--accounts", "10", "--rounds", "3", "--skus", "3",
                          "--buyers", "20"});
  BOOST_TEST_REQUIRE(first.exit_code == 0, first.err);
  std::vector<std::string> lines = Lines(first.out);
  BOOST_TEST_REQUIRE(lines.size() == 1u);
  const std::string& r = lines[0];
  auto num = [&r](const char* key) { return std::stoll(JsonField(r, key)); };
  // Every command went through the actor core; 5 transfers a round.
  BOOST_TEST(num("accounts") == 10);
  BOOST_TEST(num("transfers") == 15);
  BOOST_TEST(num("transfers_completed") + num("transfers_failed") == 15);
  BOOST_TEST(num("conflicts_refused") == 1);
  BOOST_TEST(num("duplicates_answered") == 1);
  // Money conserved: the balances model holds what the holders paid in minus
  // what they took out; transfers only moved it.
  BOOST_TEST(num("total_balance") == num("money_in"));
  BOOST_TEST(num("money_in") > 0);
  // No oversell: what was sold plus what is left is what was stocked.
  BOOST_TEST(num("purchases") + num("purchases_rejected") == 60);
  BOOST_TEST(num("purchases_rejected") > 0, r);  // 20 buyers a SKU for at most 30 units: the sale sells out
  BOOST_TEST(num("units_sold") + num("units_remaining") == num("stock"));
  BOOST_TEST(num("oversold") == 0);
  BOOST_TEST(r.find("stats") != std::string::npos);

  // The read models, as an operator would query them after the demo.
  RunResult money = RillDb(tmp / "a", {"--json", "query", "balances",
                                       "SELECT SUM(balance) AS total, SUM(balance < 0) AS negative FROM balances"});
  BOOST_TEST_REQUIRE(money.exit_code == 0, money.err);
  BOOST_TEST(JsonField(money.out, "total") == JsonField(r, "total_balance"));
  BOOST_TEST(JsonField(money.out, "negative") == "0");
  RunResult stock = RillDb(tmp / "a", {"--json", "query", "stock",
                                       "SELECT SUM(sold) AS sold, SUM(remaining < 0) AS oversold FROM stock"});
  BOOST_TEST_REQUIRE(stock.exit_code == 0, stock.err);
  BOOST_TEST(JsonField(stock.out, "sold") == JsonField(r, "units_sold"));
  BOOST_TEST(JsonField(stock.out, "oversold") == "0");
  RunResult pending = RillDb(tmp / "a", {"--json", "query", "transfers",
                                         "SELECT COUNT(*) AS n FROM transfers WHERE state NOT IN ('completed','failed')"});
  BOOST_TEST(JsonField(pending.out, "n") == "0", pending.out + pending.err);

  RunResult check = RillDb(tmp / "a", {"check"});
  BOOST_TEST(check.exit_code == 0, check.out + check.err);
  RunResult streams = RillDb(tmp / "a", {"--json", "streams", "--category", "account"});
  BOOST_TEST(Lines(streams.out).size() == 10u);

  // Same seed, another store: the same events (ids and times aside).
  RunResult second = Rill({"--db", tmp / "b", "--quiet", "demo", "--accounts", "10", "--rounds", "3", "--skus", "3",
                           "--buyers", "20"});
  BOOST_TEST_REQUIRE(second.exit_code == 0, second.err);
  BOOST_TEST(second.out.empty());
  for (const char* stream : {"account-3", "transfer-7", "sku-2"}) {
    RunResult a = RillDb(tmp / "a", {"--json", "show", stream});
    RunResult b = RillDb(tmp / "b", {"--json", "show", stream});
    BOOST_TEST(Lines(a.out).size() == Lines(b.out).size());
    for (size_t i = 0; i < Lines(a.out).size() && i < Lines(b.out).size(); ++i) {
      auto data = [](const std::string& line) { return line.substr(line.find("\"data\"")); };
      auto type = [](const std::string& line) { return JsonField(line, "type"); };
      BOOST_TEST(type(Lines(a.out)[i]) == type(Lines(b.out)[i]));
      BOOST_TEST(data(Lines(a.out)[i]).substr(0, data(Lines(a.out)[i]).find("\"meta\"")) ==
                 data(Lines(b.out)[i]).substr(0, data(Lines(b.out)[i]).find("\"meta\"")));
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
