// Store-wide commands through the real binary: export/import round trip,
// check on good and damaged stores, backup, stats, delete/metadata, two
// writer processes at once, a writer killed mid-file, log --follow + SIGINT.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "cli/tests/harness.h"

using namespace rill::clitest;

namespace {


// Positions 1..n without gaps, and per stream versions 1..k without gaps.
void ExpectGapless(const std::string& exported, size_t expected_events) {
  auto lines = Lines(exported);
  BOOST_TEST(lines.size() == expected_events);
  std::map<std::string, uint64_t> heads;
  for (size_t i = 0; i < lines.size(); ++i) {
    BOOST_TEST(JsonField(lines[i], "position") == std::to_string(i + 1));
    uint64_t& head = heads[JsonField(lines[i], "stream")];
    BOOST_TEST(JsonField(lines[i], "version") == std::to_string(++head));
  }
}

std::string Waited(const std::string& path, const std::string& needle, std::chrono::seconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  std::string text;
  while (std::chrono::steady_clock::now() < until) {
    text = ReadFile(path);
    if (text.find(needle) != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return text;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ops)

BOOST_AUTO_TEST_CASE(export_import_export_is_byte_equal) {
  TestStore a;
  std::string input;
  for (int i = 1; i <= 3000; ++i)
    input += R"({"stream":"acct-)" + std::to_string(i % 37) + R"(","type":"T)" + std::to_string(i % 3) +
             R"(","data":{"i":)" + std::to_string(i) + R"(,"s":"é\n\"x\"","f":0.10},"meta":{"m":)" +
             std::to_string(i) + R"(},"schema":)" + std::to_string(1 + i % 2) + "}\n";
  BOOST_REQUIRE(a.Run({"append", "--file", "-"}, input).exit_code == 0);
  std::string first = a.Export();
  ExpectGapless(first, 3000);

  TestStore b;
  TempDir tmp;
  RunResult exp = a.Run({"export", "--output", tmp / "dump.jsonl"});
  BOOST_REQUIRE(exp.exit_code == 0);
  BOOST_TEST(ReadFile(tmp / "dump.jsonl") == first);
  BOOST_TEST(!FileExists(tmp / "dump.jsonl.tmp"));
  RunResult imp = b.Run({"import", tmp / "dump.jsonl", "--json"});
  BOOST_REQUIRE_MESSAGE(imp.exit_code == 0, imp.err);
  BOOST_TEST(JsonField(imp.out, "imported") == "3000");
  BOOST_TEST(b.Export() == first);

  // Import refuses a non-empty store (exit 3), writing nothing.
  uint64_t hash = b.LogHash();
  RunResult again = b.Run({"import", tmp / "dump.jsonl"});
  BOOST_TEST(again.exit_code == 3);
  BOOST_TEST(CountChar(again.err, '\n') == 1u);
  BOOST_TEST(again.err.find("--append") != std::string::npos);
  BOOST_TEST(b.LogHash() == hash);
  // --append of the same events conflicts at validation (versions do not
  // follow the heads): still nothing written.
  RunResult dup = b.Run({"import", "--append", tmp / "dump.jsonl"});
  BOOST_TEST(dup.exit_code == 2);
  BOOST_TEST(b.LogHash() == hash);
  BOOST_TEST(b.Export() == first);
}

BOOST_AUTO_TEST_CASE(round_trip_replays_deletes_and_metadata) {
  TestStore a;
  BOOST_REQUIRE(a.Run({"import", TestData("fixture.jsonl")}).exit_code == 0);
  BOOST_REQUIRE(a.Run({"delete", "account-2"}).exit_code == 0);
  BOOST_REQUIRE(a.Run({"metadata", "account-1", "--max-count", "2", "--max-age", "86400"}).exit_code == 0);
  BOOST_REQUIRE(a.Run({"append", "account-1", "Late", "--force", "--data", "{\"x\":1}"}).exit_code == 0);
  std::string first = a.Export();
  TestStore b;
  RunResult imp = b.Run({"import", "-"}, first);
  BOOST_REQUIRE_MESSAGE(imp.exit_code == 0, imp.err);
  // System events are replayed through delete/metadata: same positions,
  // streams, versions, types and data; their ids and times are new.
  auto mask = [](const std::string& text) {
    std::string out;
    for (const auto& l : Lines(text)) {
      if (JsonField(l, "stream").rfind("$$", 0) == 0)
        out += JsonField(l, "position") + " " + JsonField(l, "stream") + " " + JsonField(l, "version") + " " +
               JsonField(l, "type") + " " + l.substr(l.find("\"data\":")) + "\n";
      else
        out += l + "\n";
    }
    return out;
  };
  BOOST_TEST(mask(b.Export()) == mask(first));
  BOOST_TEST(b.Run({"show", "account-2"}).exit_code == 5);
  BOOST_TEST(b.Run({"streams", "--json"}).out == a.Run({"streams", "--json"}).out);
  // max-age of a day hides the fixture's January events: only "Late" shows.
  auto shown = Lines(b.Run({"show", "account-1", "--json"}).out);
  BOOST_TEST(shown.size() == 1u);
  BOOST_TEST(JsonField(shown.at(0), "type") == "Late");
}

BOOST_AUTO_TEST_CASE(long_text_listings_stream_with_one_header) {
  TestStore s;
  std::string input;
  for (int i = 1; i <= 2500; ++i)
    input += R"({"stream":"one-1","type":"T","data":{"i":)" + std::to_string(i) + "}}\n";
  BOOST_REQUIRE(s.Run({"append", "--file", "-", "--quiet"}, input).exit_code == 0);
  for (const std::vector<std::string>& args : {std::vector<std::string>{"log"}, {"show", "one-1"}}) {
    RunResult r = s.Run(args);
    BOOST_TEST(r.exit_code == 0);
    auto lines = Lines(r.out);
    BOOST_TEST(lines.size() == 2501u);
    size_t headers = 0;
    for (const auto& l : lines) headers += l.find("POSITION") != std::string::npos;
    BOOST_TEST(headers == 1u);
    // Later chunks keep the columns of the first: "2500" ends where "1" does.
    BOOST_TEST(lines.back().find("{\"i\":2500}") == lines[1].find("{\"i\":1}"));
  }
}

// Starts rill many times: left out of the sanitizer run (CMakeLists.txt).
BOOST_AUTO_TEST_CASE(import_validates_every_line_before_writing, *boost::unit_test::label("many_processes")) {
  std::string fixture = ReadFile(TestData("fixture.jsonl"));
  auto lines = Lines(fixture);
  struct Case {
    size_t line;  // 1-based line to replace
    std::string text;
    std::string word;
  };
  const std::vector<Case> cases = {
      {5, R"({"position":5,"stream":"account-1","version":4,"type":"W","schema":1,"id":"00000000-0000-4000-8000-000000000005","time":"2026-01-02T03:07:00.999999Z","data":{},"meta":{}})", "version"},
      {5, R"({"position":5,"stream":"account-1","version":3,"type":"W","schema":1,"id":"not-a-uuid","time":"2026-01-02T03:07:00.999999Z","data":{},"meta":{}})", "UUID"},
      {5, R"({"position":5,"stream":"account-1","version":3,"type":"W","schema":1,"id":"00000000-0000-4000-8000-000000000005","time":"yesterday","data":{},"meta":{}})", "time"},
      {5, R"({"position":5,"stream":"account-1","version":3,"type":"W","schema":0,"id":"00000000-0000-4000-8000-000000000005","time":"2026-01-02T03:07:00.999999Z","data":{},"meta":{}})", "schema"},
      {5, R"({"position":5,"stream":"account-1","version":3,"type":"W","schema":1,"id":"00000000-0000-4000-8000-000000000005","time":"2026-01-02T03:07:00.999999Z","data":[],"meta":{}})", "object"},
      {5, R"({"position":2,"stream":"account-1","version":3,"type":"W","schema":1,"id":"00000000-0000-4000-8000-000000000005","time":"2026-01-02T03:07:00.999999Z","data":{},"meta":{}})", "position"},
      {5, R"({"position":5,"stream":"account-1","version":-3,"type":"W","schema":1,"id":"00000000-0000-4000-8000-000000000005","time":"2026-01-02T03:07:00.999999Z","data":{},"meta":{}})", "negative"},
      {5, "{\"position\":5,\"stream\":\"account-1\xff\",\"version\":3", "JSON"},
  };
  for (const Case& c : cases) {
    TestStore s;
    uint64_t hash = s.LogHash();
    std::string text;
    for (size_t i = 0; i < lines.size(); ++i) text += (i + 1 == c.line ? c.text : lines[i]) + "\n";
    RunResult r = s.Run({"import", "-"}, text);
    BOOST_TEST_CONTEXT(c.text.substr(0, 60) << "\n  stderr: " << r.err) {
      BOOST_TEST(r.exit_code == 2);
      BOOST_TEST(r.err.find("rill: line 5: ") == 0u);
      BOOST_TEST(r.err.find(c.word) != std::string::npos);
      BOOST_TEST(r.err.find("nothing imported") != std::string::npos);
      BOOST_TEST(s.LogHash() == hash);
      BOOST_TEST(s.Export() == "");
    }
  }
}

BOOST_AUTO_TEST_CASE(check_is_clean_on_a_good_store_and_fails_on_a_damaged_record) {
  TestStore s;
  BOOST_REQUIRE(s.Run({"import", TestData("fixture.jsonl")}).exit_code == 0);
  const std::string marker = "PAYLOAD-MARKER-0123456789";
  BOOST_REQUIRE(s.Run({"append", "victim-1", "Marked", "--data", "{\"m\":\"" + marker + "\"}"}).exit_code == 0);
  BOOST_REQUIRE(s.Run({"append", "victim-1", "After", "--data", "{\"n\":2}"}).exit_code == 0);

  RunResult clean = s.Run({"check"});
  BOOST_TEST(clean.exit_code == 0, clean.err);
  BOOST_TEST(clean.out.find("clean") == 0u, clean.out);
  RunResult clean_json = s.Run({"check", "--json"});
  BOOST_TEST(JsonField(clean_json.out, "clean") == "true");
  BOOST_TEST(JsonField(clean_json.out, "events_checked") == "10");

  // Flip one byte inside every copy of the payload in the log file.
  std::string path = s.db + "/log/data.mdb";
  std::string bytes = ReadFile(path);
  size_t copies = 0;
  for (size_t p = bytes.find(marker); p != std::string::npos; p = bytes.find(marker, p + 1)) {
    bytes[p + 10] ^= 0x01;
    ++copies;
  }
  BOOST_REQUIRE(copies > 0u);
  WriteFile(path, bytes);

  RunResult damaged = s.Run({"check"});
  BOOST_TEST(damaged.exit_code == 1, damaged.out << damaged.err);
  BOOST_TEST(CountChar(damaged.err, '\n') == 1u, damaged.err);
  BOOST_TEST(damaged.out.find("problem") != std::string::npos, damaged.out);
  RunResult damaged_json = s.Run({"check", "--json"});
  BOOST_TEST(damaged_json.exit_code == 1);
  BOOST_TEST(JsonField(damaged_json.out, "clean") == "false", damaged_json.out);

  // --repair rebuilds the index, which cannot mend the log: it says so
  // (nothing "repaired:"), and the exit status stays 1.
  RunResult repair = s.Run({"check", "--repair"});
  BOOST_TEST(repair.exit_code == 1, repair.out << repair.err);
  BOOST_TEST(repair.out.find("not repaired: ") != std::string::npos, repair.out);
  for (const auto& line : Lines(repair.out)) BOOST_TEST(line.rfind("repaired:", 0) != 0u, line);
  BOOST_TEST(repair.err.find("restore the log from a backup") != std::string::npos, repair.err);
  BOOST_TEST(CountChar(repair.err, '\n') == 1u, repair.err);
  RunResult repair_json = s.Run({"check", "--repair", "--json"});
  BOOST_TEST(repair_json.exit_code == 1);
  BOOST_TEST(repair_json.out.find(R"("repaired":[])") != std::string::npos, repair_json.out);
  BOOST_TEST(repair_json.out.find(R"("not_repaired":[")") != std::string::npos, repair_json.out);
}

BOOST_AUTO_TEST_CASE(backup_copies_a_store_that_opens_and_checks_clean) {
  TestStore s;
  BOOST_REQUIRE(s.Run({"import", TestData("fixture.jsonl")}).exit_code == 0);
  std::string dest = s.dir / "copy";
  RunResult r = s.Run({"backup", dest, "--json"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  BOOST_TEST(JsonField(r.out, "backup") == dest);
  BOOST_TEST(RillDb(dest, {"check"}).exit_code == 0);
  BOOST_TEST(RillDb(dest, {"export", "--raw"}).out == s.Export());
  // A non-empty destination is refused.
  RunResult again = s.Run({"backup", dest});
  BOOST_TEST(again.exit_code != 0);
  BOOST_TEST(CountChar(again.err, '\n') == 1u);
}

BOOST_AUTO_TEST_CASE(stats_reports_counts_and_positions) {
  TestStore s;
  BOOST_REQUIRE(s.Run({"import", TestData("fixture.jsonl")}).exit_code == 0);
  RunResult r = s.Run({"stats", "--json"});
  BOOST_REQUIRE(r.exit_code == 0);
  BOOST_TEST(JsonField(r.out, "events") == "8");
  BOOST_TEST(JsonField(r.out, "streams") == "4");
  BOOST_TEST(JsonField(r.out, "last_position") == "8");
  BOOST_TEST(JsonField(r.out, "format_version") == "1");
  BOOST_TEST(!JsonField(r.out, "store_id").empty());
  BOOST_TEST(std::stoull(JsonField(r.out, "log_map_bytes")) >= std::stoull(JsonField(r.out, "log_used_bytes")));
  RunResult text = s.Run({"stats"});
  BOOST_TEST(text.exit_code == 0);
  BOOST_TEST(text.out.find("events           8\n") != std::string::npos, text.out);
}

BOOST_AUTO_TEST_CASE(delete_and_metadata) {
  TestStore s;
  for (int i = 1; i <= 5; ++i)
    BOOST_REQUIRE(s.Run({"append", "cart-1", "Added", "--data", "{\"i\":" + std::to_string(i) + "}"}).exit_code == 0);
  BOOST_REQUIRE(s.Run({"append", "cart-2", "Added"}).exit_code == 0);

  RunResult m = s.Run({"metadata", "cart-1", "--max-count", "2", "--json"});
  BOOST_REQUIRE_MESSAGE(m.exit_code == 0, m.err);
  BOOST_TEST(JsonField(m.out, "max_count") == "2");
  auto shown = Lines(s.Run({"show", "cart-1", "--json"}).out);
  BOOST_REQUIRE(shown.size() == 2u);
  BOOST_TEST(JsonField(shown[0], "version") == "4");
  // Other settings are kept when one is changed; 0 clears.
  BOOST_REQUIRE(s.Run({"metadata", "cart-1", "--truncate-before", "5"}).exit_code == 0);
  RunResult read = s.Run({"metadata", "cart-1", "--json"});
  BOOST_TEST(JsonField(read.out, "max_count") == "2");
  BOOST_TEST(JsonField(read.out, "truncate_before") == "5");
  BOOST_TEST(Lines(s.Run({"show", "cart-1"}).out).size() == 2u);  // header + v5
  BOOST_REQUIRE(s.Run({"metadata", "cart-1", "--max-count", "0", "--truncate-before", "0"}).exit_code == 0);
  BOOST_TEST(Lines(s.Run({"show", "cart-1", "--json"}).out).size() == 5u);
  BOOST_TEST(s.Run({"metadata", "cart-1", "--max-age", "-5"}).exit_code == 2);

  RunResult d = s.Run({"delete", "cart-2", "--json"});
  BOOST_REQUIRE_MESSAGE(d.exit_code == 0, d.err);
  BOOST_TEST(s.Run({"show", "cart-2"}).exit_code == 5);
  BOOST_TEST(s.Run({"append", "cart-2", "Added"}).exit_code == 3);
  // The global log still has the deleted stream's event.
  BOOST_TEST(s.Run({"log", "--category", "cart", "--json"}).out.find("\"stream\":\"cart-2\"") != std::string::npos);
  BOOST_TEST(s.Run({"delete", "$$cart-1"}).exit_code == 2);
  BOOST_TEST(s.Run({"delete", "cart-1", "--expect", "2"}).exit_code == 3);
}

BOOST_AUTO_TEST_CASE(two_append_file_processes_at_once) {
  TestStore s;
  const int kLines = 3000;
  std::string file[2];
  for (int p = 0; p < 2; ++p) {
    std::string text;
    for (int i = 0; i < kLines; ++i)
      text += R"({"stream":"shared-)" + std::to_string(i % 13) + R"(","type":"P)" + std::to_string(p) +
              R"(","data":{"i":)" + std::to_string(i) + "}}\n";
    file[p] = s.dir / ("in" + std::to_string(p) + ".jsonl");
    WriteFile(file[p], text);
  }
  pid_t pid[2];
  for (int p = 0; p < 2; ++p)
    pid[p] = Spawn({"--db", s.db, "append", "--json", "--file", file[p]}, s.dir / ("out" + std::to_string(p)),
                   s.dir / ("err" + std::to_string(p)));
  std::set<uint64_t> positions;
  for (int p = 0; p < 2; ++p) {
    BOOST_TEST(WaitExit(pid[p]) == 0, ReadFile(s.dir / ("err" + std::to_string(p))));
    auto acks = Lines(ReadFile(s.dir / ("out" + std::to_string(p))));
    BOOST_TEST(acks.size() == static_cast<size_t>(kLines));
    for (const auto& a : acks) positions.insert(std::stoull(JsonField(a, "position")));
  }
  BOOST_TEST(positions.size() == 2u * kLines);
  BOOST_TEST(*positions.rbegin() == 2u * kLines);
  ExpectGapless(s.Export(), 2 * kLines);
  BOOST_TEST(s.Run({"check"}).exit_code == 0);
}

// Starts rill many times: left out of the sanitizer run (CMakeLists.txt).
BOOST_AUTO_TEST_CASE(writer_killed_mid_file_loses_no_acknowledged_line, *boost::unit_test::label("many_processes")) {
  TestStore s;
  const int kLines = 400000;
  std::string text;
  text.reserve(kLines * 70);
  for (int i = 0; i < kLines; ++i)
    text += R"({"stream":"k-)" + std::to_string(i % 101) + R"(","type":"K","data":{"line":)" + std::to_string(i) +
            "}}\n";
  WriteFile(s.dir / "in.jsonl", text);
  pid_t pid = Spawn({"--db", s.db, "append", "--json", "--file", s.dir / "in.jsonl"}, s.dir / "out", s.dir / "err");
  Waited(s.dir / "out", "\n", std::chrono::seconds(60));
  kill(pid, SIGKILL);
  BOOST_TEST(WaitExit(pid) == 128 + SIGKILL);

  RunResult check = s.Run({"check"});
  BOOST_TEST(check.exit_code == 0, check.out << check.err);
  auto exported = Lines(s.Export());
  std::string out = ReadFile(s.dir / "out");
  auto acks = Lines(out.substr(0, out.rfind('\n') + 1));  // whole lines only
  BOOST_TEST_MESSAGE("acknowledged " << acks.size() << " of " << kLines << " lines before the kill; "
                                     << exported.size() << " events stored");
  BOOST_TEST(acks.size() > 0u);
  BOOST_TEST(exported.size() >= acks.size());
  for (size_t i = 0; i < acks.size(); ++i) {
    uint64_t position = std::stoull(JsonField(acks[i], "position"));
    BOOST_REQUIRE(position >= 1u);
    BOOST_REQUIRE(position <= exported.size());
    const std::string& e = exported[position - 1];
    BOOST_TEST(JsonField(e, "stream") == JsonField(acks[i], "stream"));
    BOOST_TEST(JsonField(e, "version") == JsonField(acks[i], "version"));
    BOOST_TEST(e.find("\"data\":{\"line\":" + std::to_string(i) + "}") != std::string::npos, e);
  }
  ExpectGapless(s.Export(), exported.size());
}

// Starts rill many times: left out of the sanitizer run (CMakeLists.txt).
BOOST_AUTO_TEST_CASE(sigint_stops_append_file_cleanly_with_exit_130, *boost::unit_test::label("many_processes")) {
  TestStore s;
  const int kLines = 300000;
  std::string text;
  for (int i = 0; i < kLines; ++i)
    text += R"({"stream":"i-)" + std::to_string(i % 11) + R"(","type":"I","data":{"line":)" + std::to_string(i) + "}}\n";
  WriteFile(s.dir / "in.jsonl", text);
  pid_t pid = Spawn({"--db", s.db, "append", "--json", "--file", s.dir / "in.jsonl"}, s.dir / "out", s.dir / "err");
  Waited(s.dir / "out", "\n", std::chrono::seconds(60));
  kill(pid, SIGINT);
  int code = WaitExit(pid);
  auto acks = Lines(ReadFile(s.dir / "out"));
  auto exported = Lines(s.Export());
  if (code == 0) {
    BOOST_TEST_MESSAGE("the file was done before SIGINT arrived");
    BOOST_TEST(acks.size() == static_cast<size_t>(kLines));
  } else {
    BOOST_TEST(code == 130);
    std::string err = ReadFile(s.dir / "err");
    BOOST_TEST(CountChar(err, '\n') == 1u, err);
    BOOST_TEST(err.find("interrupted") != std::string::npos, err);
  }
  // Everything submitted was completed and printed: acks == what is stored.
  BOOST_TEST(acks.size() == exported.size());
  BOOST_TEST(s.Run({"check"}).exit_code == 0);
}

BOOST_AUTO_TEST_CASE(check_repair_on_a_clean_store_is_clean) {
  TestStore s;
  BOOST_REQUIRE(s.Run({"import", TestData("fixture.jsonl")}).exit_code == 0);
  RunResult r = s.Run({"check", "--repair", "--json"});
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(JsonField(r.out, "clean") == "true");
}

BOOST_AUTO_TEST_CASE(log_follow_prints_new_events_and_stops_on_sigint) {
  TestStore s;
  BOOST_REQUIRE(s.Run({"append", "f-1", "Before"}).exit_code == 0);
  pid_t pid = Spawn({"--db", s.db, "log", "--follow", "--json"}, s.dir / "out", s.dir / "err");
  BOOST_TEST(Waited(s.dir / "out", "Before", std::chrono::seconds(20)).find("Before") != std::string::npos);
  BOOST_REQUIRE(s.Run({"append", "f-2", "During"}).exit_code == 0);
  BOOST_TEST(Waited(s.dir / "out", "During", std::chrono::seconds(20)).find("During") != std::string::npos);
  kill(pid, SIGINT);
  BOOST_TEST(WaitExit(pid) == 0, ReadFile(s.dir / "err"));
  auto lines = Lines(ReadFile(s.dir / "out"));
  BOOST_TEST(lines.size() == 2u);
}

// export -o writes a private temporary beside the target (O_EXCL, a unique
// name): a symlink planted at the old predictable F.tmp is never written
// through, and nothing is left beside the file. The file follows the umask.
BOOST_AUTO_TEST_CASE(export_output_never_writes_through_a_planted_temporary) {
  TestStore s;
  BOOST_REQUIRE(s.Run({"import", TestData("fixture.jsonl")}).exit_code == 0);
  std::string victim = s.dir / "victim", out = s.dir / "events.jsonl";
  WriteFile(victim, "precious\n");
  BOOST_REQUIRE(::symlink(victim.c_str(), (out + ".tmp").c_str()) == 0);
  mode_t old_mask = ::umask(077);
  RunResult r = s.Run({"export", "-o", out});
  ::umask(old_mask);
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(ReadFile(victim) == "precious\n");
  BOOST_TEST(ReadFile(out) == s.Run({"export"}).out);
  struct stat st {};
  BOOST_REQUIRE(::stat(out.c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0600u);
  size_t beside = 0;
  for (const auto& e : std::filesystem::directory_iterator(s.dir.path()))
    if (e.path().filename().string().rfind("events.jsonl.tmp.", 0) == 0) ++beside;
  BOOST_TEST(beside == 0u);
}

// Item 14: a store made under umask 077 is private, and so are its backup
// and its export, whatever the umask they are made under.
BOOST_AUTO_TEST_CASE(copies_of_a_private_store_are_private) {
  TempDir dir;
  const std::string db = dir / "private";
  mode_t old_mask = ::umask(077);
  RunResult r = RillDb(db, {"init"});
  ::umask(old_mask);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  BOOST_REQUIRE(RillDb(db, {"append", "note-1", "Noted", "--data", "{}"}).exit_code == 0);
  auto mode = [](const std::string& path) {
    struct stat st {};
    ::stat(path.c_str(), &st);
    return st.st_mode & 07777;
  };
  BOOST_TEST(mode(db) == 0700u);
  BOOST_TEST(mode(db + "/log/data.mdb") == 0600u);
  old_mask = ::umask(022);
  r = RillDb(db, {"backup", dir / "copy"});
  BOOST_TEST(r.exit_code == 0, r.err);
  r = RillDb(db, {"export", "-o", dir / "events.jsonl"});
  BOOST_TEST(r.exit_code == 0, r.err);
  ::umask(old_mask);
  for (const char* sub : {"", "/log", "/index"}) BOOST_TEST(mode(dir / "copy" + sub) == 0700u, sub);
  for (const char* sub : {"/log/data.mdb", "/index/data.mdb"}) BOOST_TEST(mode(dir / "copy" + sub) == 0600u, sub);
  BOOST_TEST(mode(dir / "events.jsonl") == 0600u);
}

// Smaller item: `init` made a store in any directory, / included.
BOOST_AUTO_TEST_CASE(init_refuses_a_directory_holding_other_files) {
  TempDir dir;
  WriteFile(dir / "notes.txt", "mine\n");
  RunResult r = RillDb(dir.path(), {"init"});
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.err == "rill: failed_precondition: cannot create a store at " + dir.path() + ": " + dir.path() +
                          " is not empty and is not a rill store (it holds notes.txt): make a store in a new or "
                          "empty directory\n");
  BOOST_TEST(!FileExists(dir / "log"));
  BOOST_TEST(RillDb("/", {"init"}).exit_code == 1);
  // What an operator prepares for a store is fine.
  const std::string prepared = dir / "prepared";
  std::filesystem::create_directories(prepared + "/projections");
  WriteFile(prepared + "/rill.conf", "durability = sync\n");
  r = RillDb(prepared, {"init"});
  BOOST_TEST(r.exit_code == 0, r.err);
}

// Item 11: output that cannot be written (a full disk under stdout) was
// dropped silently. Now it is one line on stderr and exit 1; the bulk
// commands stop at the first failed write and say exactly what was stored.
BOOST_AUTO_TEST_CASE(a_failed_write_of_the_output_is_an_error, *boost::unit_test::label("many_processes")) {
  TestStore s;
  std::string lines;
  for (int i = 0; i < 3000; ++i) lines += R"({"stream":"note-)" + std::to_string(i % 7) + R"(","type":"Noted","data":{}})" "\n";
  WriteFile(s.dir / "in.jsonl", lines);
  pid_t pid = Spawn({"--db", s.db, "--json", "append", "--file", s.dir / "in.jsonl"}, "/dev/full", s.dir / "err");
  BOOST_TEST(WaitExit(pid) == 1);
  std::string err = ReadFile(s.dir / "err");
  BOOST_TEST(CountChar(err, '\n') == 1u, err);
  const std::string head = "rill: io_error: cannot write the results to stdout (No space left on device): none was "
                           "written; lines through ";
  BOOST_REQUIRE_MESSAGE(err.rfind(head, 0) == 0, err);
  size_t through = std::stoul(err.substr(head.size()));
  BOOST_TEST(err.find(" were appended or refused (each refusal has its line on stderr), none after\n") !=
                 std::string::npos,
             err);
  // Exactly the lines it names are stored (appends are pipelined: a small
  // file may be stored whole before the first write fails), none after.
  BOOST_TEST(through <= 3000u);
  BOOST_TEST(Lines(s.Export()).size() == through);

  WriteFile(s.dir / "commands.jsonl", R"({"command":"OpenAccount","to":"account-1","data":{"owner":"ann"}})" "\n"
                                      R"({"command":"Deposit","to":"account-1","data":{"amount":5}})" "\n");
  pid = Spawn({"--db", s.db, "--json", "submit", "--file", s.dir / "commands.jsonl"}, "/dev/full", s.dir / "err");
  BOOST_TEST(WaitExit(pid) == 1);
  err = ReadFile(s.dir / "err");
  BOOST_TEST(err.find("rill: io_error: cannot write the results to stdout (No space left on device): none was "
                      "written; lines through ") == 0,
             err);

  for (const std::vector<std::string>& command :
       std::vector<std::vector<std::string>>{{"--json", "log"}, {"stats"}, {"show", "note-1"}}) {
    std::vector<std::string> args = {"--db", s.db};
    args.insert(args.end(), command.begin(), command.end());
    pid = Spawn(args, "/dev/full", s.dir / "err");
    BOOST_TEST(WaitExit(pid) == 1, command.back());
    BOOST_TEST(ReadFile(s.dir / "err") == "rill: io_error: cannot write the output: No space left on device; what was "
                                          "printed before it stands, and nothing after it was printed\n",
               command.back());
  }
}

// Item 12: on a read-only mount every read command failed "Read-only file
// system". Now reads work (the same answers as on the writable store), and
// every write is one clear line, exit 1, with nothing changed.
BOOST_AUTO_TEST_CASE(a_store_on_a_read_only_mount_reads) {
  if (::geteuid() != 0) {
    BOOST_TEST_MESSAGE("skipped: a read-only bind mount needs root (CI runs as root)");
    return;
  }
  TestStore s;
  BOOST_REQUIRE(s.Run({"import", TestData("fixture.jsonl")}).exit_code == 0);
  BOOST_REQUIRE(s.Run({"submit", "OpenAccount", "--to", "account-9", "owner=ann"}).exit_code == 0);
  const std::vector<std::vector<std::string>> reads = {
      {"export", "--raw"}, {"export"}, {"show", "account-9"}, {"streams"}, {"log"}, {"state", "account-9"},
      {"--json", "check"}};
  std::vector<std::string> expected;
  for (const auto& args : reads) expected.push_back(s.Run(args).out);
  const std::string mnt = s.dir / "ro";
  std::filesystem::create_directories(mnt);
  if (std::system(("mount --bind '" + s.db + "' '" + mnt + "' 2>/dev/null").c_str()) != 0) {
    BOOST_TEST_MESSAGE("skipped: no bind mounts here (a container without CAP_SYS_ADMIN)");
    return;
  }
  struct Unmount {
    std::string at;
    ~Unmount() { (void)std::system(("umount '" + at + "'").c_str()); }
  } unmount{mnt};
  BOOST_REQUIRE(std::system(("mount -o remount,ro,bind '" + mnt + "'").c_str()) == 0);
  const uint64_t log_hash = HashFile(mnt + "/log/data.mdb");
  for (size_t i = 0; i < reads.size(); ++i) {
    RunResult r = RillDb(mnt, reads[i]);
    BOOST_TEST_CONTEXT(reads[i].back()) {
      BOOST_TEST(r.exit_code == 0, r.err);
      BOOST_TEST(r.out == expected[i]);
    }
  }
  RunResult r = RillDb(mnt, {"backup", s.dir / "copy"});
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(RillDb(s.dir / "copy", {"export", "--raw"}).out == expected[0]);
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"append", "note-1", "Noted", "--data", "{}"}, {"submit", "Deposit", "--to", "account-9", "amount=5"},
           {"snapshot", "rebuild", "--all"}, {"check", "--repair"}}) {
    r = RillDb(mnt, args);
    BOOST_TEST_CONTEXT(args[0]) {
      BOOST_TEST(r.exit_code == 1);
      BOOST_TEST(CountChar(r.err, '\n') == 1u, r.err);
      BOOST_TEST(r.err.find("read-only file system") != std::string::npos, r.err);
    }
  }
  BOOST_TEST(HashFile(mnt + "/log/data.mdb") == log_hash);
}

// Smaller item: check on a torn copy said only "cursor: MDB_BAD_TXN". A
// sweep zeroes one page at a time of a store's log: check never dies of a
// signal, and every LMDB error it reports names the file (and, in the
// log's walk, the position it got to).
BOOST_AUTO_TEST_CASE(check_on_a_torn_copy_names_the_file_and_position, *boost::unit_test::label("many_processes")) {
  TestStore s;
  std::string lines;
  for (int i = 0; i < 4000; ++i)
    lines += R"({"stream":"n-)" + std::to_string(i % 50) + R"(","type":"Noted","data":{"pad":")" +
             std::string(200, 'x') + "\"}}\n";
  BOOST_REQUIRE(s.Run({"append", "--file", "-"}, lines).exit_code == 0);
  int walk_errors = 0;
  for (int page = 2; page < 40; ++page) {
    const std::string copy = s.dir / ("torn-" + std::to_string(page));
    std::filesystem::copy(s.db, copy, std::filesystem::copy_options::recursive);
    {
      std::fstream f(copy + "/log/data.mdb", std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(static_cast<std::streamoff>(page) * 4096);
      const std::string zeros(4096, '\0');
      f.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
    }
    RunResult r = RillDb(copy, {"check"});
    BOOST_TEST_CONTEXT("page " << page << ": " << r.out << r.err) {
      BOOST_TEST((r.exit_code == 0 || r.exit_code == 1));
      const std::string all = r.out + r.err;
      if (all.find("MDB_") != std::string::npos)
        BOOST_TEST(all.find("/log/data.mdb") != std::string::npos);
      if (all.find("cannot be read after position") != std::string::npos) ++walk_errors;
    }
    std::filesystem::remove_all(copy);
  }
  BOOST_TEST_MESSAGE("pages whose damage stopped the log walk: " << walk_errors);
}

// Smaller items: a failed stat read as "no rill store" (exit 5, inviting an
// init over it); event types with spaces could not be named by projections.
BOOST_AUTO_TEST_CASE(an_unreadable_store_is_not_a_missing_one_and_types_have_no_spaces) {
  TempDir dir;
  const std::string db = dir / "loop";
  std::filesystem::create_directories(db + "/log");
  BOOST_REQUIRE(::symlink("data.mdb", (db + "/log/data.mdb").c_str()) == 0);  // ELOOP on stat
  RunResult r = RillDb(db, {"stats"});
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.err == "rill: io_error: cannot look for a store at " + db + ": " + db +
                          "/log/data.mdb: Too many levels of symbolic links\n");

  TestStore s;
  r = s.Run({"append", "note-1", "Note Taken", "--data", "{}"});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.err.find("event type 'Note Taken' contains a space: projections could not name it ('-- on TYPE'); "
                        "use e.g. 'Note_Taken'") != std::string::npos,
             r.err);
  BOOST_TEST(s.Run({"append", "note-1", "Note_Taken", "--data", "{}"}).exit_code == 0);
}

BOOST_AUTO_TEST_CASE(an_empty_db_argument_is_a_usage_error) {
  RunResult r = Rill({"--db", "", "stats"});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.err == "rill: usage: --db needs a store directory, not \"\"\n");
}

BOOST_AUTO_TEST_SUITE_END()
