// Request ids survive export -> import: a retry answered as a duplicate on
// the original is answered as one on the copy (submit --id and append --id),
// with or without --append, and an import into an empty store keeps
// positions or refuses.
#include <boost/test/unit_test.hpp>

#include "cli/tests/harness.h"

using namespace rill::clitest;

namespace {

// account-1 opened, then d-1 deposits 5 (position 2), then a raw append a-1.
void Seed(const TestStore& s) {
  BOOST_REQUIRE(s.Run({"submit", "OpenAccount", "--to", "account-1", "owner=Ada"}).exit_code == 0);
  BOOST_REQUIRE(s.Run({"submit", "Deposit", "--to", "account-1", "amount=5", "--id", "d-1"}).exit_code == 0);
  BOOST_REQUIRE(s.Run({"append", "raw-1", "Noted", "--data", R"({"x":1})", "--id", "a-1"}).exit_code == 0);
}

std::string Balance(const TestStore& s) {
  RunResult r = s.Run({"state", "account-1", "--json"});
  BOOST_REQUIRE(r.exit_code == 0);
  return JsonField(r.out, "balance");
}

void ExpectRetriesAreDuplicates(const TestStore& copy, const std::string& balance) {
  RunResult sub = copy.Run({"submit", "Deposit", "--to", "account-1", "amount=5", "--id", "d-1", "--json"});
  BOOST_TEST(sub.exit_code == 0, sub.err);
  BOOST_TEST(JsonField(sub.out, "duplicate") == "true", sub.out);
  BOOST_TEST(Balance(copy) == balance);
  RunResult app = copy.Run({"append", "raw-1", "Noted", "--data", R"({"x":1})", "--id", "a-1", "--json"});
  BOOST_TEST(app.exit_code == 0, app.err);
  BOOST_TEST(JsonField(app.out, "duplicate") == "true", app.out);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(export_ids)

BOOST_AUTO_TEST_CASE(import_into_an_empty_store_keeps_ids_and_positions) {
  TestStore a, b;
  Seed(a);
  std::string dump = a.Export();
  BOOST_TEST(dump.find(R"("request_id":"d-1")") != std::string::npos, dump);
  RunResult imp = b.Run({"import", "-"}, dump);
  BOOST_REQUIRE_MESSAGE(imp.exit_code == 0, imp.err);
  BOOST_TEST(b.Export() == dump);  // positions, ids, request ids and hashes alike
  std::string balance = Balance(a);
  ExpectRetriesAreDuplicates(b, balance);
  BOOST_TEST(b.Export() == dump);  // nothing written (the log also holds checkpoints: compare events)
  // The default (upcast) export carries them too.
  RunResult plain = a.Run({"export"});
  BOOST_TEST(plain.out.find(R"("request_id":"a-1")") != std::string::npos, plain.out);
}

BOOST_AUTO_TEST_CASE(import_append_keeps_ids_in_a_store_with_other_data) {
  TestStore a, b;
  Seed(a);
  BOOST_REQUIRE(b.Run({"append", "other-1", "Something"}).exit_code == 0);
  BOOST_REQUIRE(b.Run({"append", "other-1", "Else", "--id", "o-1"}).exit_code == 0);
  RunResult imp = b.Run({"import", "--append", "-"}, a.Export());
  BOOST_REQUIRE_MESSAGE(imp.exit_code == 0, imp.err);
  std::string balance = Balance(a);
  ExpectRetriesAreDuplicates(b, balance);
  // A file whose ids are taken in the store: nothing is imported.
  std::string before = b.Export();
  RunResult again = b.Run({"import", "--append", "-"},
                          Lines(a.Export())[2] + "\n");  // raw-1 v1 with id a-1 (raw-1 exists: version refused too)
  BOOST_TEST(again.exit_code != 0);
  BOOST_TEST(again.err.find("request id a-1 is already used") != std::string::npos, again.err);
  BOOST_TEST(b.Export() == before);
}

BOOST_AUTO_TEST_CASE(import_into_an_empty_store_refuses_positions_it_cannot_keep) {
  TestStore a, b;
  Seed(a);
  auto lines = Lines(a.Export());
  BOOST_REQUIRE(lines.size() == 3u);
  // Position 2 left out: position 3 would land at 2.
  RunResult r = b.Run({"import", "-"}, lines[0] + "\n" + lines[2] + "\n");
  BOOST_TEST(r.exit_code == 2, r.out);
  BOOST_TEST(r.err.find("position 3 would be position 2") != std::string::npos, r.err);
  BOOST_TEST(b.Run({"log"}).out.find("raw-1") == std::string::npos);
  // --append renumbers.
  RunResult ok = b.Run({"import", "--append", "-"}, lines[0] + "\n" + lines[2] + "\n");
  BOOST_TEST(ok.exit_code == 0, ok.err);
}

BOOST_AUTO_TEST_SUITE_END()
