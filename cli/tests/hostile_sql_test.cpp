// SQL that a user writes and rill runs: a projection file may not take over
// the runner's transactions or checkpoint (that would silently break
// exactly-once), `rill query` may not reach outside its read model, and a
// statement that never ends still yields to SIGINT, SIGTERM and --timeout.
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include "cli/tests/harness.h"

using namespace rill::clitest;
using namespace std::chrono_literals;

namespace {

const char* kForever = "WITH RECURSIVE forever(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM forever) "
                       "SELECT count(*) FROM forever";

std::string Counting(const std::string& extra) {
  return "-- rill projection: counting\n"
         "-- schema\n"
         "CREATE TABLE IF NOT EXISTS seen(position INTEGER PRIMARY KEY);\n"
         "-- on Noted\n"
         "INSERT INTO seen VALUES (:position);\n" +
         extra;
}

void Notes(const TestStore& s, int n) {
  std::string lines;
  for (int i = 0; i < n; ++i) lines += R"({"stream":"note-1","type":"Noted","data":{"n":1}})" "\n";
  RunResult r = s.Run({"append", "--file", "-"}, lines);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
}

// CPU time `pid` has used, from /proc/PID/stat (utime + stime).
std::chrono::milliseconds CpuTime(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return std::chrono::milliseconds(0);
  std::istringstream in(stat.substr(paren + 2));
  std::string field;
  long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stoll(field);
    if (i == 15) stime = std::stoll(field);
  }
  return std::chrono::milliseconds((utime + stime) * 1000 / ::sysconf(_SC_CLK_TCK));
}

// Waits until `pid` has burnt `cpu` of CPU (well past its start-up, which
// is slow under the sanitizers, and inside the statement that never ends),
// sends `sig`, and returns its exit code and how long it took to go.
std::pair<int, std::chrono::steady_clock::duration> SignalWhenBusy(pid_t pid, std::chrono::milliseconds cpu,
                                                                   int sig) {
  for (int i = 0; i < 2000 && CpuTime(pid) < cpu; ++i) std::this_thread::sleep_for(10ms);
  auto sent = std::chrono::steady_clock::now();
  ::kill(pid, sig);
  int code = WaitExit(pid);
  return {code, std::chrono::steady_clock::now() - sent};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(hostile_sql)

// Item: "COMMIT; BEGIN;" in a handler used to commit the runner's batch
// without its checkpoint, so a kill afterwards applied events twice.
BOOST_AUTO_TEST_CASE(projection_files_may_not_control_transactions_or_the_checkpoint) {
  TestStore s;
  Notes(s, 3);
  struct Case {
    std::string extra, message;
  };
  for (const Case& c : std::vector<Case>{
           {"COMMIT;\nBEGIN;\n", ":6: COMMIT is not allowed in a projection: rill commits each batch "
                                 "with its checkpoint"},
           {"ROLLBACK;\nBEGIN;\n", ":6: ROLLBACK is not allowed in a projection: rill commits each batch with its checkpoint"},
           {"SAVEPOINT mine;\n", ":6: SAVEPOINT is not allowed in a projection: rill commits each batch with its checkpoint"},
           {"UPDATE _rill_projection SET position = 42;\n",
            ":6: _rill_projection is rill's table: a projection may not write it"},
           {"ATTACH DATABASE 'other.db' AS other;\n", ":6: ATTACH is not allowed in a projection: a read model is its own file"},
       }) {
    BOOST_TEST_CONTEXT(c.extra) {
      const std::string file = s.dir / "hostile.sql";
      WriteFile(file, Counting(c.extra));
      RunResult r = s.Run({"project", "add", file});
      BOOST_TEST(r.exit_code == 2);
      BOOST_TEST(r.err == "rill: " + file + c.message + "\n");
      BOOST_TEST(!FileExists(s.db + "/projections/counting.sql"));
    }
  }
  // The same file in the store's projections directory (copied in by hand)
  // is refused by the runner before it applies anything.
  std::filesystem::create_directories(s.db + "/projections");
  WriteFile(s.db + "/projections/counting.sql", Counting("COMMIT;\nBEGIN;\n"));
  RunResult r = s.Run({"project", "run", "counting"});
  BOOST_TEST(r.exit_code != 0);
  BOOST_TEST(r.err.find("COMMIT is not allowed in a projection") != std::string::npos, r.err);
  WriteFile(s.db + "/projections/counting.sql", Counting(""));
  r = s.Run({"project", "replay", "counting"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  r = s.Run({"query", "counting", "SELECT count(*) AS n FROM seen", "--json"});
  BOOST_TEST(r.out == "{\"n\":3}\n");
}

// Item: ATTACH probed any file's existence (and called the model corrupt);
// fts3_tokenizer() returned a pointer.
BOOST_AUTO_TEST_CASE(query_may_not_attach_files_or_call_fts3_tokenizer) {
  TestStore s;
  Notes(s, 2);
  WriteFile(s.dir / "counting.sql", Counting(""));
  BOOST_REQUIRE(s.Run({"project", "add", s.dir / "counting.sql"}).exit_code == 0);
  BOOST_REQUIRE(s.Run({"project", "run", "counting"}).exit_code == 0);
  RunResult r = s.Run({"query", "counting", "ATTACH DATABASE '/etc/passwd' AS p"});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.err == "rill: invalid_argument: bad SQL: ATTACH is not allowed in rill query: a read model is its own "
                      "file\n");
  r = s.Run({"query", "counting", "SELECT fts3_tokenizer('simple')"});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.err == "rill: invalid_argument: bad SQL: fts3_tokenizer() is not allowed in rill query\n");
  r = s.Run({"query", "counting", "SELECT load_extension('/tmp/x.so')"});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.err == "rill: invalid_argument: bad SQL: load_extension() is not allowed in rill query\n");
  // The model is fine afterwards.
  r = s.Run({"query", "counting", "SELECT count(*) AS n FROM seen", "--json"});
  BOOST_TEST(r.out == "{\"n\":2}\n");
}

// Item: a recursive CTE ran forever and ignored SIGINT and SIGTERM.
BOOST_AUTO_TEST_CASE(a_runaway_query_stops_at_its_timeout_and_on_signals, *boost::unit_test::label("many_processes")) {
  TestStore s;
  Notes(s, 1);
  WriteFile(s.dir / "counting.sql", Counting(""));
  BOOST_REQUIRE(s.Run({"project", "add", s.dir / "counting.sql"}).exit_code == 0);
  BOOST_REQUIRE(s.Run({"project", "run", "counting"}).exit_code == 0);

  auto started = std::chrono::steady_clock::now();
  RunResult r = s.Run({"query", "counting", kForever, "--timeout", "0.3"});
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.err == "rill: deadline_exceeded: query stopped at its --timeout of 0.3 s\n");
  BOOST_TEST((std::chrono::steady_clock::now() - started < 10s));
  r = s.Run({"query", "counting", kForever, "--timeout", "0.2", "--json"});
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.out == "{\"error\":\"deadline_exceeded\",\"reason\":\"query stopped at its --timeout of 0.2 s\"}\n");
  BOOST_TEST(s.Run({"query", "counting", "SELECT 1", "--timeout", "-1"}).exit_code == 2);

  for (int sig : {SIGINT, SIGTERM}) {
    BOOST_TEST_CONTEXT("signal " << sig) {
      pid_t pid = Spawn({"--db", s.db, "query", "counting", kForever}, s.dir / "out", s.dir / "err");
      auto [code, took] = SignalWhenBusy(pid, 700ms, sig);
      BOOST_TEST(code == 130);
      BOOST_TEST((took < 5s));
      BOOST_TEST(ReadFile(s.dir / "err") == "rill: interrupted: query stopped by a signal\n");
    }
  }
}

// A runaway handler (or schema) stops on SIGTERM too; the model keeps what
// the last commit left, no event applied twice, and it runs on once fixed.
BOOST_AUTO_TEST_CASE(a_runaway_projection_stops_on_signals, *boost::unit_test::label("many_processes")) {
  TestStore s;
  Notes(s, 5);
  const std::string runaway = Counting(std::string("-- on Stuck\n") + kForever + ";\n");
  WriteFile(s.dir / "counting.sql", runaway);
  BOOST_REQUIRE(s.Run({"project", "add", s.dir / "counting.sql"}).exit_code == 0);
  BOOST_REQUIRE(s.Run({"project", "run", "counting"}).exit_code == 0);
  BOOST_REQUIRE(s.Run({"append", "note-1", "Stuck", "--data", "{}"}).exit_code == 0);
  Notes(s, 2);
  for (const std::vector<std::string>& command :
       std::vector<std::vector<std::string>>{{"project", "run", "counting"}, {"run", "--follow"},
                                             {"project", "replay", "counting"}}) {
    BOOST_TEST_CONTEXT(command[0] << " " << command[1]) {
      std::vector<std::string> args = {"--db", s.db};
      args.insert(args.end(), command.begin(), command.end());
      pid_t pid = Spawn(args, s.dir / "out", s.dir / "err");
      auto [code, took] = SignalWhenBusy(pid, 700ms, SIGTERM);
      BOOST_TEST((code == 130 || code == 0), code << ": " << ReadFile(s.dir / "err"));
      BOOST_TEST((took < 5s));
      RunResult r = s.Run({"query", "counting", "SELECT count(*) AS n FROM seen", "--json"});
      BOOST_TEST(r.out == "{\"n\":5}\n", r.err);
    }
  }
  RunResult list = s.Run({"project", "list", "--json"});
  BOOST_TEST(list.out.find("interrupt") == std::string::npos, list.out);

  // A schema that never ends: `project add` stops on SIGINT too.
  WriteFile(s.dir / "slow.sql", std::string("-- rill projection: slow\n-- schema\n") + kForever +
                                    ";\n-- on Noted\nSELECT 1;\n");
  pid_t pid = Spawn({"--db", s.db, "project", "add", s.dir / "slow.sql"}, s.dir / "out", s.dir / "err");
  auto [code, took] = SignalWhenBusy(pid, 700ms, SIGINT);
  BOOST_TEST(code == 130, ReadFile(s.dir / "err"));
  BOOST_TEST((took < 5s));
  BOOST_TEST(!FileExists(s.db + "/projections/slow.sql"));
}

BOOST_AUTO_TEST_SUITE_END()
