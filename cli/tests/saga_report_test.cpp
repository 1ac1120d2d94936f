// `submit` that waited for the process managers says which sagas it started
// then failed: a text line each with the reason, a "sagas" field in --json
// (saga objects after the results with --file), exit 0 all the same since the
// command itself was accepted.
#include <boost/test/unit_test.hpp>

#include "cli/tests/harness.h"

using namespace rill::clitest;

namespace {

void Bank(const TestStore& s) {
  BOOST_REQUIRE(s.Run({"submit", "OpenAccount", "--to", "account-1", "owner=ann"}).exit_code == 0);
  BOOST_REQUIRE(s.Run({"submit", "OpenAccount", "--to", "account-2", "owner=bob"}).exit_code == 0);
  BOOST_REQUIRE(s.Run({"submit", "Deposit", "--to", "account-1", "amount=100"}).exit_code == 0);
}

RunResult Transfer(const TestStore& s, const std::string& id, const std::string& from, const std::string& to,
                   const std::string& amount, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"submit", "StartTransfer", "--to", id, "from=" + from, "to=" + to, "amount=" + amount};
  args.insert(args.end(), extra.begin(), extra.end());
  return s.Run(args);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(saga_report)

BOOST_AUTO_TEST_CASE(text_names_each_failed_saga_with_its_reason) {
  TestStore s;
  Bank(s);
  RunResult missing = Transfer(s, "transfer-1", "account-9", "account-2", "30");
  BOOST_TEST(missing.exit_code == 0, missing.err);
  std::vector<std::string> lines = Lines(missing.out);
  BOOST_REQUIRE_EQUAL(lines.size(), 2u);
  BOOST_TEST(lines[0].rfind("accepted: transfer-1 ", 0) == 0u, lines[0]);
  BOOST_TEST(lines[1] == "saga transfer-1 failed: debit rejected: account does not exist");

  // The credit fails: the money goes back, and the line says where.
  RunResult credit = Transfer(s, "transfer-2", "account-1", "account-404", "10");
  BOOST_TEST(credit.exit_code == 0, credit.err);
  BOOST_TEST(credit.out.find("saga transfer-2 failed: credit rejected: account does not exist; refunded to account-1\n") !=
                 std::string::npos,
             credit.out);

  // A transfer that completes prints no saga line.
  RunResult ok = Transfer(s, "transfer-3", "account-1", "account-2", "30");
  BOOST_TEST(ok.exit_code == 0, ok.err);
  BOOST_TEST(Lines(ok.out).size() == 1u, ok.out);
  BOOST_TEST(ok.out.find("saga") == std::string::npos, ok.out);
}

BOOST_AUTO_TEST_CASE(json_has_a_sagas_field) {
  TestStore s;
  Bank(s);
  RunResult failed = Transfer(s, "transfer-1", "account-1", "account-2", "500", {"--json"});
  BOOST_TEST(failed.exit_code == 0, failed.err);
  BOOST_REQUIRE_EQUAL(Lines(failed.out).size(), 1u);
  BOOST_TEST(failed.out.find(R"(,"sagas":[{"saga":"transfer-1","status":"failed","reason":"debit rejected: )") !=
                 std::string::npos,
             failed.out);
  RunResult ok = Transfer(s, "transfer-2", "account-1", "account-2", "5", {"--json"});
  BOOST_TEST(ok.out.find(R"("sagas":[])") != std::string::npos, ok.out);
  // Not waited for: nothing known, no field.
  RunResult nowait = Transfer(s, "transfer-3", "account-9", "account-2", "5", {"--json", "--no-wait"});
  BOOST_TEST(nowait.exit_code == 0, nowait.err);
  BOOST_TEST(nowait.out.find("sagas") == std::string::npos, nowait.out);
  // A retry of an accepted command (a duplicate) reports the saga's end too.
  RunResult retry = s.Run({"submit", "StartTransfer", "--to", "transfer-4", "from=account-9", "to=account-2",
                           "amount=5", "--id", "t-4", "--json"});
  RunResult again = s.Run({"submit", "StartTransfer", "--to", "transfer-4", "from=account-9", "to=account-2",
                           "amount=5", "--id", "t-4", "--json"});
  BOOST_TEST(JsonField(again.out, "duplicate") == "true", again.out);
  BOOST_TEST(again.out.find(R"("saga":"transfer-4","status":"failed")") != std::string::npos, again.out);
  BOOST_TEST(retry.out.find(R"("saga":"transfer-4","status":"failed")") != std::string::npos, retry.out);
}

BOOST_AUTO_TEST_CASE(file_reports_failed_sagas_after_the_results) {
  TestStore s;
  Bank(s);
  std::string file = s.dir / "cmds.jsonl";
  WriteFile(file,
            R"({"command":"StartTransfer","to":"transfer-1","data":{"from":"account-1","to":"account-2","amount":10}})"
            "\n"
            R"({"command":"StartTransfer","to":"transfer-2","data":{"from":"account-2","to":"account-1","amount":999}})"
            "\n"
            R"({"command":"Deposit","to":"account-2","data":{"amount":1}})"
            "\n");
  RunResult r = s.Run({"submit", "--file", file, "--json"});
  BOOST_TEST(r.exit_code == 0, r.err);
  std::vector<std::string> lines = Lines(r.out);
  BOOST_REQUIRE_EQUAL(lines.size(), 4u);
  BOOST_TEST(JsonField(lines[0], "stream") == "transfer-1");
  BOOST_TEST(JsonField(lines[2], "stream") == "account-2");
  BOOST_TEST(JsonField(lines[3], "saga") == "transfer-2", lines[3]);
  BOOST_TEST(JsonField(lines[3], "reason").rfind("debit rejected: insufficient funds", 0) == 0u, lines[3]);

  WriteFile(file,
            R"({"command":"StartTransfer","to":"transfer-3","data":{"from":"account-2","to":"account-1","amount":999}})"
            "\n");
  RunResult text = s.Run({"submit", "--file", file});
  BOOST_TEST(text.exit_code == 0, text.err);
  BOOST_TEST(text.out.find("saga transfer-3 failed: debit rejected: insufficient funds") != std::string::npos,
             text.out);
}

BOOST_AUTO_TEST_SUITE_END()
