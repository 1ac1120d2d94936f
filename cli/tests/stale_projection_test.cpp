// A projection whose definition changed after its model was built: `project
// run`, `run` and `run --follow` refuse it (exit 1, one line naming `rill
// project replay`) and leave the model as it was; `project list` marks it
// STALE; `project replay NAME` and `project replay --all` rebuild it with the
// new definition, after which it runs again.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "cli/tests/harness.h"

using namespace rill::clitest;

namespace {

std::string Totals(const std::string& factor) {
  return "-- rill projection: totals\n"
         "-- category: note\n"
         "-- schema\n"
         "CREATE TABLE IF NOT EXISTS totals(id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);\n"
         "-- on Noted\n"
         "INSERT INTO totals(id, n) VALUES (1, :data.n * " +
         factor + ") ON CONFLICT(id) DO UPDATE SET n = n + excluded.n;\n";
}

std::string Counts(const std::string& name, const std::string& what) {
  return "-- rill projection: " + name +
         "\n"
         "-- schema\n"
         "CREATE TABLE IF NOT EXISTS seen(position INTEGER PRIMARY KEY, what TEXT NOT NULL);\n"
         "-- on Noted\n"
         "INSERT INTO seen VALUES (:position, '" +
         what + "');\n";
}

void Note(const TestStore& s, int n) {
  RunResult r = s.Run({"append", "note-1", "Noted", "--data", "{\"n\":" + std::to_string(n) + "}"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
}

std::string Total(const TestStore& s) {
  RunResult r = s.Run({"query", "totals", "SELECT n FROM totals", "--json"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  return JsonField(r.out, "n");
}

// The `project list --json` line of `name`.
std::string ListLine(const TestStore& s, const std::string& name) {
  RunResult r = s.Run({"project", "list", "--json"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  for (const auto& line : Lines(r.out))
    if (JsonField(line, "name") == name) return line;
  BOOST_FAIL("no line for " + name + " in: " + r.out);
  return "";
}

void Add(const TestStore& s, const std::string& file, const std::string& text, bool replace) {
  WriteFile(file, text);
  std::vector<std::string> args{"project", "add", file};
  if (replace) args.push_back("--replace");
  RunResult r = s.Run(args);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(stale_projection)

BOOST_AUTO_TEST_CASE(changed_definition_is_refused_until_replayed) {
  TestStore s;
  Note(s, 1);
  Note(s, 2);
  std::string file = s.dir / "totals.sql";
  Add(s, file, Totals("1"), false);
  BOOST_REQUIRE(s.Run({"project", "run", "totals"}).exit_code == 0);
  BOOST_TEST(Total(s) == "3");
  BOOST_TEST(JsonField(ListLine(s, "totals"), "stale") == "false");

  // New SQL: the model still holds the old definition's rows.
  Add(s, file, Totals("10"), true);
  Note(s, 4);
  BOOST_TEST(JsonField(ListLine(s, "totals"), "stale") == "true");
  RunResult text = s.Run({"project", "list"});
  BOOST_REQUIRE(text.exit_code == 0);
  BOOST_TEST(Lines(text.out)[0].find("STALE") != std::string::npos, text.out);
  for (const auto& line : Lines(text.out))
    if (line.rfind("totals", 0) == 0) BOOST_TEST(line.find(" yes ") != std::string::npos, line);

  std::string model = s.db + "/readmodels/totals.sqlite";
  uint64_t before = HashFile(model);
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"project", "run", "totals"}, {"project", "run", "totals", "--follow"}, {"run"}, {"run", "--follow"}}) {
    RunResult r = s.Run(args);
    BOOST_TEST(r.exit_code == 1, args[0] << " " << args.back() << ": " << r.err);
    BOOST_TEST(Lines(r.err).size() == 1u, r.err);
    BOOST_TEST(r.err.find("rill project replay totals") != std::string::npos, r.err);
    BOOST_TEST(HashFile(model) == before);
  }
  BOOST_TEST(Total(s) == "3");  // nothing applied by the refused runs

  RunResult replay = s.Run({"project", "replay", "totals"});
  BOOST_REQUIRE_MESSAGE(replay.exit_code == 0, replay.err);
  BOOST_TEST(Total(s) == "70");  // every event by the new definition
  BOOST_TEST(JsonField(ListLine(s, "totals"), "stale") == "false");
  Note(s, 1);
  RunResult run = s.Run({"run"});
  BOOST_TEST(run.exit_code == 0, run.err);
  BOOST_TEST(Total(s) == "80");
}

BOOST_AUTO_TEST_CASE(replay_all_rebuilds_every_stale_model_and_only_those) {
  TestStore s;
  Note(s, 1);
  std::string a = s.dir / "a.sql", b = s.dir / "b.sql", c = s.dir / "c.sql";
  Add(s, a, Counts("ca", "v1"), false);
  Add(s, b, Counts("cb", "v1"), false);
  Add(s, c, Counts("cc", "v1"), false);
  BOOST_REQUIRE(s.Run({"run"}).exit_code == 0);
  Add(s, a, Counts("ca", "v2"), true);
  Add(s, b, Counts("cb", "v2"), true);

  // Two stale: `run` names both and the command that mends them.
  RunResult run = s.Run({"run"});
  BOOST_TEST(run.exit_code == 1);
  BOOST_TEST(Lines(run.err).size() == 1u, run.err);
  BOOST_TEST(run.err.find("ca, cb") != std::string::npos, run.err);
  BOOST_TEST(run.err.find("rill project replay --all") != std::string::npos, run.err);

  uint64_t untouched = HashFile(s.db + "/readmodels/cc.sqlite");
  RunResult all = s.Run({"project", "replay", "--all", "--json"});
  BOOST_REQUIRE_MESSAGE(all.exit_code == 0, all.err);
  std::vector<std::string> lines = Lines(all.out);
  BOOST_REQUIRE_EQUAL(lines.size(), 2u);
  BOOST_TEST(JsonField(lines[0], "name") == "ca");
  BOOST_TEST(JsonField(lines[1], "name") == "cb");
  BOOST_TEST(HashFile(s.db + "/readmodels/cc.sqlite") == untouched);
  for (const char* name : {"ca", "cb"}) {
    RunResult q = s.Run({"query", name, "SELECT what FROM seen", "--json"});
    BOOST_TEST(JsonField(q.out, "what") == "v2", q.out);
  }
  BOOST_TEST(s.Run({"run"}).exit_code == 0);

  RunResult none = s.Run({"project", "replay", "--all"});
  BOOST_TEST(none.exit_code == 0, none.err);
  BOOST_TEST(none.out == "no read model is stale\n");
  // A name and --all together, or neither, is a usage error.
  BOOST_TEST(s.Run({"project", "replay", "ca", "--all"}).exit_code == 2);
  BOOST_TEST(s.Run({"project", "replay"}).exit_code == 2);
}

// While another process replaces a model (its replay holds
// <db>/readmodels/NAME.lock), a second replay, a drop and an add --replace
// are refused with one line, exit 1, and change nothing.
BOOST_AUTO_TEST_CASE(replay_drop_and_replace_refuse_while_another_replaces_the_model) {
  TestStore s;
  Note(s, 1);
  std::string file = s.dir / "totals.sql";
  Add(s, file, Totals("1"), false);
  BOOST_REQUIRE(s.Run({"project", "run", "totals"}).exit_code == 0);
  std::string model = s.db + "/readmodels/totals.sqlite";
  uint64_t before = HashFile(model);
  std::string registered = ReadFile(s.db + "/projections/totals.sql");
  int fd = ::open((s.db + "/readmodels/totals.lock").c_str(), O_CREAT | O_RDWR, 0644);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE(::flock(fd, LOCK_EX) == 0);
  WriteFile(file, Totals("10"));
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"project", "replay", "totals"}, {"project", "drop", "totals"}, {"project", "add", file, "--replace"}}) {
    RunResult r = s.Run(args);
    BOOST_TEST(r.exit_code == 1, args[1] << ": " << r.err);
    BOOST_TEST(Lines(r.err).size() == 1u, r.err);
    BOOST_TEST(r.err.find("read model totals is being replaced") != std::string::npos, r.err);
  }
  ::close(fd);
  BOOST_TEST(HashFile(model) == before);
  BOOST_TEST(ReadFile(s.db + "/projections/totals.sql") == registered);
  BOOST_TEST(s.Run({"project", "replay", "totals"}).exit_code == 0);
}

BOOST_AUTO_TEST_SUITE_END()
