// `rill append` through the real binary: the expected-version matrix, the
// idempotency key, and every class of bad input (one clear stderr line, the
// documented exit code, the store byte-identical afterwards).
#include <boost/test/unit_test.hpp>

#include "cli/tests/harness.h"

using namespace rill::clitest;

namespace {

// Every failing invocation must leave the store as it was: same export,
// same log file bytes.
struct Unchanged {
  const TestStore& s;
  std::string exported;
  uint64_t log_hash;
  explicit Unchanged(const TestStore& store) : s(store), exported(store.Export()), log_hash(store.LogHash()) {}
  void Check(const std::string& what) const {
    BOOST_TEST(s.Export() == exported, what << ": export changed");
    BOOST_TEST(s.LogHash() == log_hash, what << ": log/data.mdb changed");
  }
};

void ExpectOneLineError(const RunResult& r, int exit_code, const std::vector<std::string>& words,
                        const std::string& what) {
  BOOST_TEST_CONTEXT(what << "\n  stderr: " << r.err << "  stdout: " << r.out) {
    BOOST_TEST(r.exit_code == exit_code);
    BOOST_TEST(CountChar(r.err, '\n') == 1u);
    BOOST_TEST(r.err.rfind("rill: ", 0) == 0u);
    for (const auto& w : words) BOOST_TEST(r.err.find(w) != std::string::npos, "missing \"" << w << "\"");
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(append)

// Starts rill many times: left out of the sanitizer run (CMakeLists.txt).
BOOST_AUTO_TEST_CASE(expected_version_matrix, *boost::unit_test::label("many_processes")) {
  TestStore s;
  struct Case {
    const char* state;  // "absent", "at2", "deleted"
    const char* expect;
    bool ok;
  };
  const Case cases[] = {
      {"absent", "any", true},   {"absent", "no-stream", true}, {"absent", "exists", false},
      {"absent", "0", true},     {"absent", "1", false},        {"absent", "2", false},
      {"at2", "any", true},      {"at2", "no-stream", false},   {"at2", "exists", true},
      {"at2", "0", false},       {"at2", "1", false},           {"at2", "2", true},
      {"at2", "3", false},       {"deleted", "any", false},     {"deleted", "exists", false},
      {"deleted", "2", false},
  };
  int n = 0;
  for (const Case& c : cases) {
    std::string stream = std::string("m") + std::to_string(++n) + "-" + c.state;
    if (std::string(c.state) != "absent") {
      for (int v = 1; v <= 2; ++v) BOOST_REQUIRE(s.Run({"append", stream, "Set", "--data", "{\"v\":1}"}).exit_code == 0);
    }
    if (std::string(c.state) == "deleted") BOOST_REQUIRE(s.Run({"delete", stream}).exit_code == 0);
    Unchanged before(s);
    RunResult r = s.Run({"append", stream, "Tried", "--expect", c.expect, "--json"});
    BOOST_TEST_CONTEXT(stream << " --expect " << c.expect << ": " << r.err) {
      if (c.ok) {
        BOOST_TEST(r.exit_code == 0);
        std::string want_version = std::string(c.state) == "absent" ? "1" : "3";
        BOOST_TEST(JsonField(r.out, "version") == want_version);
        BOOST_TEST(JsonField(r.out, "stream") == stream);
      } else {
        ExpectOneLineError(r, 3, {stream}, "conflict");
        BOOST_TEST(JsonField(r.out, "error") == "conflict");
        before.Check(stream);
        // The message names what was expected and what the stream is at.
        if (std::string(c.state) != "deleted") {
          BOOST_TEST(r.err.find("expect") != std::string::npos);
          std::string actual = std::string(c.state) == "absent" ? "" : "2";
          if (!actual.empty()) BOOST_TEST(r.err.find(actual) != std::string::npos);
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(id_makes_an_append_idempotent) {
  TestStore s;
  const std::string id = "5b0b3e7e-6f2a-4c53-9d6e-0123456789ab";
  RunResult first = s.Run({"append", "order-1", "Placed", "--data", "{\"n\":1}", "--id", id, "--json"});
  BOOST_REQUIRE(first.exit_code == 0);
  BOOST_TEST(s.Run({"append", "order-1", "Noted", "--json"}).exit_code == 0);
  Unchanged before(s);

  // Same id, same request: the first outcome again, nothing written.
  RunResult again = s.Run({"append", "order-1", "Placed", "--data", "{\"n\":1}", "--id", id, "--json"});
  BOOST_TEST(again.exit_code == 0, again.err);
  BOOST_TEST(JsonField(again.out, "version") == "1");
  BOOST_TEST(JsonField(again.out, "position") == JsonField(first.out, "position"));
  BOOST_TEST(JsonField(again.out, "duplicate") == "true");
  before.Check("duplicate append");

  // Same id, different request: a conflict, nothing written.
  RunResult other = s.Run({"append", "order-1", "Placed", "--data", "{\"n\":2}", "--id", id});
  ExpectOneLineError(other, 3, {}, "id reused with other data");
  before.Check("id reused");

  // A UUID key is the event's id too.
  RunResult shown = s.Run({"show", "order-1", "--count", "1", "--json"});
  BOOST_TEST(JsonField(shown.out, "id") == id);

  // Non-UUID keys work as keys only.
  BOOST_TEST(s.Run({"append", "order-2", "Placed", "--id", "retry-key-7"}).exit_code == 0);
  RunResult dup = s.Run({"append", "order-2", "Placed", "--id", "retry-key-7"});
  BOOST_TEST(dup.exit_code == 0);
  BOOST_TEST(dup.out.find("duplicate") != std::string::npos, dup.out);

  // An empty id is an error, not "no id": it would silently lose the
  // idempotency the caller asked for.
  Unchanged settled(s);
  ExpectOneLineError(s.Run({"append", "order-2", "Placed", "--id", ""}), 2, {"--id", "must not be empty"}, "empty --id");
  ExpectOneLineError(s.Run({"submit", "OpenAccount", "--to", "account-9", "owner=ann", "--id", ""}), 2,
                     {"--id", "must not be empty"}, "empty submit --id");
  settled.Check("empty ids");
}

// Starts rill many times: left out of the sanitizer run (CMakeLists.txt).
BOOST_AUTO_TEST_CASE(bad_arguments_are_refused_with_one_line_and_nothing_written, *boost::unit_test::label("many_processes")) {
  TestStore s;
  // Not an account event: forced in, as the setup only needs the stream to exist.
  BOOST_REQUIRE(s.Run({"append", "account-1", "Opened", "--force", "--data", "{\"owner\":\"x\"}"}).exit_code == 0);
  Unchanged before(s);
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::vector<std::string> words;
  };
  const std::string long_name = "a-" + std::string(399, 'x');  // 401 bytes
  const std::vector<Case> cases = {
      {{"append", "account-1", "E", "--data", "{"}, 2, {"data", "JSON"}},
      {{"append", "account-1", "E", "--data", "{\"a\":1} x"}, 2, {"data", "JSON"}},
      {{"append", "account-1", "E", "--data", "[1,2]"}, 2, {"data", "object"}},
      {{"append", "account-1", "E", "--data", "\"text\""}, 2, {"data", "object"}},
      {{"append", "account-1", "E", "--data", "42"}, 2, {"data", "object"}},
      {{"append", "account-1", "E", "--data", "null"}, 2, {"data", "object"}},
      {{"append", "account-1", "E", "--data", "{\"a\":\"\xff\xfe\"}"}, 2, {"data", "encoding"}},
      {{"append", "account-1", "E", "--meta", "[]"}, 2, {"meta", "object"}},
      {{"append", "account-1", "E", "--data", std::string(100000, '[')}, 2, {"data"}},
      {{"append", long_name, "E"}, 2, {"stream"}},
      {{"append", "", "E"}, 2, {}},
      {{"append", "acc\tount-1", "E"}, 2, {"stream"}},
      {{"append", "acc\nount-1", "E"}, 2, {"stream"}},
      {{"append", "bad-\xc3\x28", "E"}, 2, {"stream"}},
      {{"append", "$system", "E"}, 2, {"stream"}},
      {{"append", "$$account-1", "E"}, 2, {"stream"}},
      {{"append", "account-1", std::string(201, 'T')}, 2, {"type"}},
      {{"append", "account-1", ""}, 2, {}},
      {{"append", "account-1", "E", "--expect", "-1"}, 2, {"expect"}},
      {{"append", "account-1", "E", "--expect=-1"}, 2, {"expect"}},
      {{"append", "account-1", "E", "--expect", "99999999999999999999999"}, 2, {"expect", "too large"}},
      {{"append", "account-1", "E", "--expect", "sometimes"}, 2, {"expect"}},
      {{"append", "account-1", "E", "--expect", "1.5"}, 2, {"expect"}},
      {{"append", "account-1", "E", "--schema", "0"}, 2, {"schema"}},
      {{"append", "account-1", "E", "--schema", "4294967296"}, 2, {"schema"}},
      {{"append", "account-1", "E", "--id", "a\x01" "b"}, 2, {"id"}},
      {{"append", "account-1", "E", "--id", std::string(201, 'i')}, 2, {"id"}},
      {{"append", "account-1", "E", "--bogus"}, 2, {"bogus"}},
      {{"append", "account-1"}, 2, {"TYPE"}},
      {{"append"}, 2, {}},
      {{"append", "account-1", "E", "--file", "x.jsonl"}, 2, {"file"}},
      {{"append", "account-1", "E", "extra"}, 2, {"extra"}},
  };
  for (const Case& c : cases) {
    RunResult r = s.Run(c.args);
    std::string what;
    for (const auto& a : c.args) what += (a.size() > 40 ? a.substr(0, 40) + "..." : a) + " ";
    ExpectOneLineError(r, c.exit_code, c.words, what);
    before.Check(what);
  }
}

// Starts rill many times: left out of the sanitizer run (CMakeLists.txt).
BOOST_AUTO_TEST_CASE(bad_file_lines_are_refused_with_their_line_number_and_nothing_written, *boost::unit_test::label("many_processes")) {
  TestStore s;
  BOOST_REQUIRE(s.Run({"append", "account-1", "Opened", "--force"}).exit_code == 0);  // not an account event
  Unchanged before(s);
  const std::string good = R"({"stream":"account-1","type":"Deposited","data":{"amount":1}})";
  const std::string huge = R"({"stream":"account-1","type":"Big","data":{"blob":")" + std::string(17u << 20, 'x') + "\"}}";
  struct Case {
    std::string bad_line;
    std::vector<std::string> words;
  };
  const std::vector<Case> cases = {
      {R"({"stream":"account-1","type":"E","data":{)", {"JSON"}},
      {R"(["stream","account-1"])", {"object"}},
      {R"("just a string")", {"object"}},
      {R"({"stream":"account-1","type":"E","data":[1]})", {"data", "object"}},
      {R"({"stream":"account-1","type":"E","data":"x"})", {"data", "object"}},
      {R"({"stream":"account-1","type":"E"})", {"data"}},
      {R"({"type":"E","data":{}})", {"stream"}},
      {R"({"stream":7,"type":"E","data":{}})", {"stream"}},
      {"{\"stream\":\"account-1\",\"type\":\"E\",\"data\":{\"a\":\"\xc0\xaf\"}}", {"encoding"}},
      {R"({"stream":"$all","type":"E","data":{}})", {"stream"}},
      {R"({"stream":"account-1","type":"E","data":{},"expect":-1})", {"expect"}},
      {R"({"stream":"account-1","type":"E","data":{},"expect":"-1"})", {"expect"}},
      {R"({"stream":"account-1","type":"E","data":{},"expect":18446744073709551616})", {"expect"}},
      {R"({"stream":"account-1","type":"E","data":{},"expect":true})", {"expect"}},
      {R"({"stream":"account-1","type":"E","data":{},"schema":0})", {"schema"}},
      {R"({"stream":"account-1","type":"E","data":{},"colour":"red"})", {"unknown field", "colour"}},
      {R"({"stream":"account-1","type":"E","data":{},"stream":"b"})", {"twice"}},
      {R"({"stream":"account-1","type":"E","data":{}} trailing)", {"JSON"}},
      {huge, {"too large", "limit"}},
  };
  for (const Case& c : cases) {
    TempDir tmp;
    std::string file = tmp / "in.jsonl";
    WriteFile(file, good + "\n" + c.bad_line + "\n" + good + "\n");
    RunResult r = s.Run({"append", "--file", file});
    BOOST_TEST_CONTEXT(c.bad_line.substr(0, 80) << "\n  stderr: " << r.err) {
      BOOST_TEST(r.exit_code == 2);
      // One line for the bad line (with its number), one summary line.
      BOOST_TEST(CountChar(r.err, '\n') == 2u);
      BOOST_TEST(r.err.find("rill: line 2: ") == 0u);
      BOOST_TEST(r.err.find("nothing appended") != std::string::npos);
      for (const auto& w : c.words) BOOST_TEST(r.err.find(w) != std::string::npos, "missing \"" << w << "\"");
      BOOST_TEST(r.err.size() < 400u, "the message stays short even for huge input");
      BOOST_TEST(r.out == "");
    }
    before.Check(c.bad_line.substr(0, 80));
  }
  // --json puts the failure in-band too, with the line number.
  TempDir tmp;
  WriteFile(tmp / "in.jsonl", good + "\n\n" + "{\n");
  RunResult r = s.Run({"append", "--file", tmp / "in.jsonl", "--json"});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.out.find(R"("line":3)") != std::string::npos, r.out);
  BOOST_TEST(r.out.find(R"("error":"invalid_argument")") != std::string::npos, r.out);
  before.Check("json");
}

BOOST_AUTO_TEST_CASE(missing_store_and_existing_store) {
  TempDir tmp;
  RunResult r = RillDb(tmp / "nope", {"append", "a-1", "E"});
  ExpectOneLineError(r, 5, {"no rill store", "init"}, "missing store");
  TestStore s;
  ExpectOneLineError(s.Run({"init"}), 1, {"already exists"}, "init twice");
  RunResult f = s.Run({"append", "--file", tmp / "missing.jsonl"});
  ExpectOneLineError(f, 5, {"missing.jsonl"}, "missing input file");
  ExpectOneLineError(s.Run({"apend", "a-1", "E"}), 2, {"unknown command", "apend"}, "unknown command");
  ExpectOneLineError(s.Run({}), 2, {}, "no command");
}

BOOST_AUTO_TEST_CASE(file_from_stdin_prints_each_line_in_order) {
  TestStore s;
  std::string input;
  for (int i = 1; i <= 500; ++i)
    input += R"({"stream":"c-)" + std::to_string(i % 7) + R"(","type":"T","data":{"i":)" + std::to_string(i) + "}}\n";
  RunResult r = s.Run({"append", "--file", "-", "--json"}, input);
  BOOST_REQUIRE(r.exit_code == 0);
  auto lines = Lines(r.out);
  BOOST_REQUIRE(lines.size() == 500u);
  for (int i = 1; i <= 500; ++i) {
    BOOST_TEST(JsonField(lines[i - 1], "stream") == "c-" + std::to_string(i % 7));
    BOOST_TEST(JsonField(lines[i - 1], "position") == std::to_string(i));
  }
}

BOOST_AUTO_TEST_SUITE_END()

// An aggregate's state is a function of its stream's events: a raw append
// the aggregate cannot evolve is refused before anything is written, unless
// forced (and then recorded in the event's meta).
BOOST_AUTO_TEST_SUITE(aggregate_guard)

BOOST_AUTO_TEST_CASE(raw_appends_to_aggregate_streams_must_evolve, *boost::unit_test::label("many_processes")) {
  TestStore s;
  BOOST_REQUIRE(s.Run({"submit", "OpenAccount", "--to", "account-1", "owner=ann"}).exit_code == 0);
  Unchanged before(s);
  ExpectOneLineError(s.Run({"append", "account-1", "Deposited", "--data", "{\"amount\":\"lots\"}"}), 2,
                     {"account-1", "Deposited", "amount", "--force"}, "bad data");
  before.Check("bad data");
  ExpectOneLineError(s.Run({"append", "account-1", "Bogus"}), 2, {"Bogus", "not an event it evolves", "--force"},
                     "unknown type");
  before.Check("unknown type");

  TempDir tmp;
  WriteFile(tmp / "in.jsonl", R"({"stream":"account-1","type":"Deposited","data":{"amount":5}})"
                              "\n" R"({"stream":"account-1","type":"Deposited","data":{"amount":"lots"}})" "\n");
  RunResult f = s.Run({"append", "--file", tmp / "in.jsonl"});
  BOOST_TEST(f.exit_code == 2);
  BOOST_TEST(f.err.find("rill: line 2: ") == 0u, f.err);
  BOOST_TEST(f.err.find("amount") != std::string::npos, f.err);
  before.Check("file");

  // A stream no aggregate owns takes anything.
  BOOST_TEST(s.Run({"append", "audit-1", "Bogus", "--data", "{\"amount\":\"lots\"}"}).exit_code == 0);
  // A good one goes through, and the aggregate still works.
  BOOST_TEST(s.Run({"append", "account-1", "Deposited", "--data", "{\"amount\":5}"}).exit_code == 0);
  BOOST_TEST(s.Run({"submit", "Deposit", "--to", "account-1", "amount=1"}).exit_code == 0);
  BOOST_TEST(s.Run({"check", "--domains"}).exit_code == 0);

  // Surgery: forced through, logged, and found by check --domains.
  RunResult forced = s.Run({"append", "account-1", "Deposited", "--data", "{\"amount\":\"lots\"}", "--force"});
  BOOST_TEST(forced.exit_code == 0, forced.err);
  RunResult shown = s.Run({"show", "account-1", "--json"});
  BOOST_TEST(shown.out.find(R"("$forced_by":"rill append --force")") != std::string::npos, shown.out);
  RunResult check = s.Run({"check", "--domains"});
  BOOST_TEST(check.exit_code == 1, check.out << check.err);
  BOOST_TEST(check.out.find("account-1") != std::string::npos, check.out);
  RunResult json = s.Run({"check", "--domains", "--json"});
  BOOST_TEST(json.exit_code == 1);
  BOOST_TEST(json.out.find(R"("stream":"account-1","version":4)") != std::string::npos, json.out);
}

// Metadata hides events from readers, never from the aggregate: with and
// without a snapshot it still knows it was opened.
BOOST_AUTO_TEST_CASE(stream_metadata_never_hides_events_from_the_aggregate, *boost::unit_test::label("many_processes")) {
  for (bool snapshot : {false, true}) {
    BOOST_TEST_CONTEXT("snapshot " << snapshot) {
      TestStore s;
      BOOST_REQUIRE(s.Run({"submit", "OpenAccount", "--to", "account-2", "owner=ann"}).exit_code == 0);
      BOOST_REQUIRE(s.Run({"submit", "Deposit", "--to", "account-2", "amount=5"}).exit_code == 0);
      if (snapshot) BOOST_REQUIRE(s.Run({"snapshot", "rebuild", "account-2"}).exit_code == 0);
      BOOST_REQUIRE(s.Run({"metadata", "account-2", "--max-count", "1"}).exit_code == 0);
      RunResult state = s.Run({"state", "account-2"});
      BOOST_TEST(state.exit_code == 0, state.err);
      BOOST_TEST(state.out.find("open") != std::string::npos, state.out);
      BOOST_TEST(s.Run({"submit", "Deposit", "--to", "account-2", "amount=1"}).exit_code == 0);
      BOOST_TEST(s.Run({"submit", "OpenAccount", "--to", "account-2", "owner=bob"}).exit_code == 4);
      RunResult verify = s.Run({"snapshot", "verify", "--all"});
      BOOST_TEST(verify.exit_code == 0, verify.out << verify.err);
      RunResult at = s.Run({"state", "account-2", "--json"});
      BOOST_TEST(at.out.find("\"balance\":6") != std::string::npos, at.out);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
