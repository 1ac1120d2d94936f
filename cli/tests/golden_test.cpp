// Golden outputs: a store is loaded from testdata/cli/fixture.jsonl (fixed
// ids and times), then each read command's text and --json output must match
// testdata/cli/<name> byte for byte. RILL_UPDATE_GOLDEN=1 rewrites them.
#include <boost/test/unit_test.hpp>

#include "cli/tests/harness.h"

using namespace rill::clitest;

namespace {

struct FixtureStore : TestStore {
  FixtureStore() {
    RunResult r = Run({"import", TestData("fixture.jsonl")});
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, "import of the fixture failed: " + r.err);
  }
};

void ExpectGolden(const TestStore& s, const std::vector<std::string>& args, const std::string& golden,
                  int exit_code = 0) {
  RunResult r = s.Run(args);
  BOOST_TEST_CONTEXT("rill " << args.front() << " -> " << golden) {
    BOOST_TEST(r.exit_code == exit_code);
    if (exit_code == 0) BOOST_TEST(r.err == "");
    std::string diff = CompareGolden(golden, r.out);
    BOOST_TEST(diff.empty(), diff);
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(golden)

BOOST_FIXTURE_TEST_CASE(read_commands_match_golden_files, FixtureStore) {
  ExpectGolden(*this, {"streams"}, "streams.txt");
  ExpectGolden(*this, {"streams", "--json"}, "streams.jsonl");
  ExpectGolden(*this, {"streams", "--category", "account"}, "streams_account.txt");
  ExpectGolden(*this, {"show", "account-1"}, "show.txt");
  ExpectGolden(*this, {"show", "account-1", "--json"}, "show.jsonl");
  ExpectGolden(*this, {"show", "account-1", "--backward", "--count", "2"}, "show_backward.txt");
  ExpectGolden(*this, {"show", "sku-7", "--from", "2", "--json"}, "show_from.jsonl");
  ExpectGolden(*this, {"log"}, "log.txt");
  ExpectGolden(*this, {"log", "--json"}, "log.jsonl");
  ExpectGolden(*this, {"log", "--category", "account", "--type", "Deposited"}, "log_filtered.txt");
  ExpectGolden(*this, {"log", "--from", "3", "--count", "2", "--json"}, "log_window.jsonl");
  // Reads upcast (AccountOpened v1 reads as v3, core/upcaster.h); --raw shows what is stored.
  ExpectGolden(*this, {"show", "account-1", "--raw", "--json"}, "show_raw.jsonl");
  ExpectGolden(*this, {"export"}, "export_upcast.jsonl");
}

BOOST_FIXTURE_TEST_CASE(export_of_an_imported_fixture_is_the_fixture, FixtureStore) {
  BOOST_TEST(Export() == ReadFile(TestData("fixture.jsonl")));
}

BOOST_FIXTURE_TEST_CASE(missing_stream_is_not_found, FixtureStore) {
  RunResult r = Run({"show", "account-404"});
  BOOST_TEST(r.exit_code == 5);
  BOOST_TEST(CountChar(r.err, '\n') == 1u);
  BOOST_TEST(r.err.find("account-404") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(append_results_match_golden_files) {
  // Appends carry no ids or times in their output: positions and versions of
  // a fresh store are deterministic.
  {
    TestStore s;
    ExpectGolden(s, {"append", "--file", TestData("appends.jsonl"), "--json"}, "appends_result.jsonl", 3);
  }
  {
    TestStore s;
    RunResult r = s.Run({"append", "--file", TestData("appends.jsonl")});
    BOOST_TEST(r.exit_code == 3);
    BOOST_TEST(CompareGolden("appends_result.txt", r.out) == "");
    // The one conflict: one stderr line with its line number.
    BOOST_TEST(CountChar(r.err, '\n') == 1u, r.err);
    BOOST_TEST(r.err.find("line 5:") != std::string::npos, r.err);
  }
  {
    TestStore s;
    ExpectGolden(s, {"append", "cart-1", "ItemAdded", "--data", "{ \"sku\" : \"a\",\n \"qty\": 2 }"}, "append_one.txt");
    ExpectGolden(s, {"append", "cart-1", "ItemAdded", "--data", "{\"qty\":1.50}", "--expect", "1", "--json"},
                 "append_one.jsonl");
    // Whitespace is dropped, numbers are kept exactly as written.
    RunResult r = s.Run({"show", "cart-1", "--json"});
    BOOST_TEST(r.out.find(R"("data":{"sku":"a","qty":2})") != std::string::npos, r.out);
    BOOST_TEST(r.out.find(R"("data":{"qty":1.50})") != std::string::npos, r.out);
  }
}

BOOST_AUTO_TEST_SUITE_END()
