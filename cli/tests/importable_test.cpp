// What goes in can come out and go back in: input that is not Unicode or
// that readers would read two ways (a key twice in one object) is refused,
// and an export that import would refuse fails instead of being written.
#include <boost/test/unit_test.hpp>

#include <filesystem>

#include "cli/tests/harness.h"
#include "store/event_store.h"

using namespace rill::clitest;

BOOST_AUTO_TEST_SUITE(importable)

// Item: "\udc00x" was accepted (while "\ud800" was refused) and stored bytes
// that are not UTF-8.
BOOST_AUTO_TEST_CASE(unpaired_surrogate_escapes_are_refused_everywhere) {
  TestStore s;
  for (const std::string& data : {std::string(R"({"note":"\udc00x"})"), std::string(R"({"\udfff":1})"),
                                  std::string(R"({"a":{"b":["\ud800"]}})")}) {
    BOOST_TEST_CONTEXT(data) {
      RunResult r = s.Run({"append", "note-1", "Noted", "--data", data});
      BOOST_TEST(r.exit_code == 2);
      BOOST_TEST((r.err.find("surrogate") != std::string::npos || r.err.find("encoding") != std::string::npos),
                 r.err);
      r = s.Run({"append", "--file", "-"}, R"({"stream":"note-1","type":"Noted","data":)" + data + "}\n");
      BOOST_TEST(r.exit_code == 2);
      BOOST_TEST((r.err.find("line 1") != std::string::npos), r.err);
    }
  }
  RunResult r = s.Run({"append", "note-1", "Noted", "--data", R"({"note":"\udc00x"})"});
  BOOST_TEST(r.err == "rill: invalid_argument: data contains an unpaired UTF-16 surrogate escape, which is not "
                      "Unicode\n");
  r = s.Run({"submit", "OpenAccount", "account-1", "--data", R"({"owner":"\udc00"})"});
  BOOST_TEST(r.exit_code == 2, r.err);
  // A proper pair is a character, and it round-trips.
  r = s.Run({"append", "note-1", "Noted", "--data", R"({"note":"\ud83d\ude00"})"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  BOOST_TEST(s.Export().find("\xF0\x9F\x98\x80") != std::string::npos);
  BOOST_TEST(s.Run({"show", "note-1", "--json"}).out.find("surrogate") == std::string::npos);
}

// Smaller item: a key twice in one object was accepted, and submit used the
// first while other readers use the last.
BOOST_AUTO_TEST_CASE(a_key_twice_in_one_object_is_refused) {
  TestStore s;
  RunResult r = s.Run({"append", "note-1", "Noted", "--data", R"({"n":1,"n":2})"});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.err == "rill: invalid_argument: data has the key \"n\" twice in one object\n");
  r = s.Run({"append", "--file", "-"}, R"({"stream":"note-1","type":"Noted","data":{"a":{"x":1,"y":2,"x":3}}})" "\n");
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.err.find("\"data\" has the key \"x\" twice in one object") != std::string::npos, r.err);
  r = s.Run({"submit", "Deposit", "account-1", "--data", R"({"amount":1,"amount":1000000})"});
  BOOST_TEST(r.exit_code == 2, r.err);
  // The same key in sibling objects, and many distinct keys, are fine.
  r = s.Run({"append", "note-1", "Noted", "--data", R"({"a":{"x":1},"b":{"x":2},"c":[{"x":3},{"x":4}]})"});
  BOOST_TEST(r.exit_code == 0, r.err);
  std::string many = "{";
  for (int i = 0; i < 5000; ++i) many += (i ? "," : "") + ("\"k" + std::to_string(i) + "\":" + std::to_string(i));
  r = s.Run({"append", "note-1", "Noted", "--data", many + "}"});
  BOOST_TEST(r.exit_code == 0, r.err);
  r = s.Run({"append", "note-1", "Noted", "--data", many + ",\"k4321\":0}"});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.err == "rill: invalid_argument: data has the key \"k4321\" twice in one object\n");
  BOOST_TEST(Lines(s.Export()).size() == 2u);
}

// Item: an upcast that grows an event past the size limit made the default
// export unimportable; text stored by an older rill that is not UTF-8 too.
BOOST_AUTO_TEST_CASE(an_export_that_import_would_refuse_fails) {
  TestStore s;
  // 16 MiB less a little: under the limit as stored, over it once upcast.
  const size_t limit = rill::StoreOptions{}.max_event_bytes;
  std::string big(limit - 64, 'x');
  RunResult r = s.Run({"append", "--file", "-"},
                      R"({"stream":"blob-1","type":"Blob","data":{"s":")" + big + "\"}}\n");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  std::filesystem::create_directories(s.db + "/migrations");
  WriteFile(s.db + "/migrations/0001-blob-pad.json",
            R"({"event":"Blob","from":1,"to":2,"ops":[{"op":"default","path":"pad","value":")" +
                std::string(200, 'p') + "\"}]}\n");
  r = s.Run({"export", "-o", s.dir / "out.jsonl"});
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.err.find("rill: failed_precondition: event 1 (blob-1 v1) is ") == 0, r.err);
  BOOST_TEST(r.err.find("bytes after upcasting; import accepts at most 16777216 (export --raw exports events as "
                        "stored)") != std::string::npos,
             r.err);
  BOOST_TEST(!FileExists(s.dir / "out.jsonl"));
  r = s.Run({"export"});
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.out.empty());
  // As stored, it imports.
  r = s.Run({"export", "--raw", "-o", s.dir / "raw.jsonl"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  TestStore copy;
  r = copy.Run({"import", s.dir / "raw.jsonl"});
  BOOST_TEST(r.exit_code == 0, r.err);

  // Bytes that are not UTF-8, put in through the library (as an older rill
  // let "\udc00" through): export refuses to write what import refuses.
  TestStore old;
  {
    auto store = rill::EventStore::Open(old.db, rill::StoreOptions{});
    BOOST_REQUIRE(store.ok());
    rill::AppendRequest req;
    req.stream = "note-1";
    rill::NewEvent e;
    e.type = "Noted";
    e.data = "{\"note\":\"\xED\xB0\x80x\"}";
    e.meta = "{}";
    req.events.push_back(e);
    auto done = (*store)->AppendAsync(std::move(req)).get();
    BOOST_REQUIRE(done.ok());
  }
  for (const char* raw : {"--raw", "--no-raw"}) {
    std::vector<std::string> args = {"export", "-o", old.dir / "out.jsonl"};
    if (std::string(raw) == "--raw") args.push_back(raw);
    r = old.Run(args);
    BOOST_TEST(r.exit_code == 1);
    BOOST_TEST(r.err == "rill: corruption: event 1 (note-1 v1) holds text that is not UTF-8 (an unpaired surrogate "
                        "escape accepted by an older rill), which import refuses\n");
    BOOST_TEST(!FileExists(old.dir / "out.jsonl"));
  }
}

BOOST_AUTO_TEST_SUITE_END()
