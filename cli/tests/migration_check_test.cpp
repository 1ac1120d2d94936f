// Migrations against domains through the real binary: a <db>/migrations file
// that changes what a domain reads is refused at open (exit 2, one line naming
// the file, the event and the domain; the store byte-identical after), while
// the raw tools keep working; `migrations list` shows the schema the domain
// writes and the current one; `append` defaults to the current schema.
#include <boost/test/unit_test.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/tests/harness.h"

using namespace rill::clitest;

namespace {
const char* kCents =
    R"({"event":"Deposited","from":1,"to":2,"ops":[{"op":"convert","path":"amount","to":"number","factor":100}]})";
}

BOOST_AUTO_TEST_SUITE(migration_check)

BOOST_AUTO_TEST_CASE(a_migration_of_a_domain_event_is_refused_at_open) {
  TestStore s;
  BOOST_REQUIRE(s.Run({"append", "account-1", "Deposited", "--data", R"({"amount":5})"}).exit_code == 0);
  std::string exported = s.Export();
  uint64_t hash = s.LogHash();
  rill::clitest::RunResult before = s.Run({"--json", "show", "account-1"});
  BOOST_REQUIRE(before.exit_code == 0);
  ::mkdir((s.db + "/migrations").c_str(), 0755);
  WriteFile(s.db + "/migrations/0001-cents.json", kCents);
  for (const std::vector<std::string>& cmd :
       std::vector<std::vector<std::string>>{{"show", "account-1"}, {"log"}, {"state", "account-1"}, {"upcast", "--apply"}}) {
    auto r = s.Run(cmd);
    BOOST_TEST_CONTEXT(cmd[0] << ": " << r.err) {
      BOOST_TEST(r.exit_code == 2);
      BOOST_TEST(CountChar(r.err, '\n') == 1u);
      BOOST_TEST(r.err.find("0001-cents.json") != std::string::npos);
      BOOST_TEST(r.err.find("Deposited") != std::string::npos);
      BOOST_TEST(r.err.find("domain account") != std::string::npos);
    }
  }
  // The tools that never read through a domain still work.
  BOOST_TEST(s.Run({"check"}).exit_code == 0);
  BOOST_TEST(s.Run({"stats"}).exit_code == 0);
  BOOST_TEST(s.Run({"streams"}).exit_code == 0);
  // Raw reads show what is stored, not what the migration would make of it.
  BOOST_TEST(s.Export() == exported);
  BOOST_TEST(s.Run({"show", "account-1", "--raw"}).exit_code == 0);
  BOOST_TEST(s.Run({"log", "--raw"}).exit_code == 0);
  BOOST_TEST(s.Run({"export"}).exit_code == 2);  // upcast: refused
  BOOST_TEST(s.LogHash() == hash);
  ::unlink((s.db + "/migrations/0001-cents.json").c_str());
  BOOST_TEST(s.Export() == exported);
  BOOST_TEST(s.Run({"--json", "show", "account-1"}).out == before.out);
}

BOOST_AUTO_TEST_CASE(migrations_list_shows_the_written_and_current_schema) {
  TestStore s;
  ::mkdir((s.db + "/migrations").c_str(), 0755);
  WriteFile(s.db + "/migrations/0001-cents.json", kCents);
  auto r = s.Run({"migrations", "list"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  auto lines = Lines(r.out);
  BOOST_TEST(lines[0].find("WRITES  CURRENT") != std::string::npos, lines[0]);
  bool saw = false;
  for (const auto& l : lines)
    if (l.rfind("Deposited", 0) == 0) {
      saw = true;
      BOOST_TEST(l.find("1        2") != std::string::npos, l);
    }
  BOOST_TEST(saw);
  auto j = s.Run({"--json", "migrations", "list"});
  BOOST_REQUIRE(j.exit_code == 0);
  for (const auto& l : Lines(j.out)) {
    if (JsonField(l, "event") != "Deposited" && JsonField(l, "event") != "\"Deposited\"") continue;
    BOOST_TEST(JsonField(l, "domain_schema") == "1", l);
    BOOST_TEST(JsonField(l, "current_schema") == "2", l);
  }
  BOOST_TEST(j.out.find(R"("event":"AccountOpened")") != std::string::npos);
  BOOST_TEST(j.out.find(R"("domain_schema":3,"current_schema":3)") != std::string::npos, j.out);
}

BOOST_AUTO_TEST_CASE(append_stores_the_current_schema_by_default) {
  TestStore s;
  BOOST_REQUIRE(s.Run({"append", "account-1", "AccountOpened", "--data", R"({"holder":{"name":"Ann"},"currency":"EUR"})"}).exit_code == 0);
  BOOST_REQUIRE(s.Run({"append", "account-1", "Deposited", "--data", R"({"amount":5})"}).exit_code == 0);
  BOOST_REQUIRE(s.Run({"append", "account-2", "AccountOpened", "--schema", "1", "--data", R"({"owner":"Bo"})"}).exit_code == 0);
  std::string raw = s.Export();
  auto lines = Lines(raw);
  BOOST_REQUIRE(lines.size() >= 3u);
  BOOST_TEST(JsonField(lines[0], "schema") == "3", lines[0]);  // AccountOpened's chain reaches 3
  BOOST_TEST(JsonField(lines[1], "schema") == "1", lines[1]);
  BOOST_TEST(JsonField(lines[2], "schema") == "1", lines[2]);
}

BOOST_AUTO_TEST_SUITE_END()
