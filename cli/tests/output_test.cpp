// Human output: width fitting, colour, relative times and the stats
// sparkline; the pure functions (cli/output.h) directly, then the real binary
// on a pseudo-terminal (forkpty) and through a pipe.
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "cli/output.h"
#include "cli/tests/harness.h"
#include "store/event.h"

extern char** environ;

using namespace rill::clitest;
namespace out = rill::cli;

namespace {

int64_t T(const char* iso) { return *rill::ParseTime(iso); }

// Runs `rill ARGS...` with its stdin, stdout and stderr on a pseudo-terminal
// `cols` wide, with `env` ("K=V") added to (and NO_COLOR, TERM, COLUMNS,
// RILL_NOW dropped from) the test's environment. Returns what the terminal
// showed, "\r\n" turned back into "\n".
RunResult RillOnTerminal(const std::vector<std::string>& args, unsigned short cols,
                         const std::vector<std::string>& env) {
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    bool dropped = false;
    for (const char* name : {"NO_COLOR=", "TERM=", "COLUMNS=", "RILL_NOW="}) dropped = dropped || kv.rfind(name, 0) == 0;
    if (!dropped) envs.push_back(kv);
  }
  envs.push_back("TERM=xterm");
  envs.insert(envs.end(), env.begin(), env.end());
  std::vector<std::string> argv_s = {RILL_BINARY};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv, envp;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);

  struct winsize ws {};
  ws.ws_col = cols;
  ws.ws_row = 40;
  int master = -1;
  pid_t pid = forkpty(&master, nullptr, nullptr, &ws);
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  RunResult r;
  char buf[4096];
  for (;;) {
    ssize_t n = read(master, buf, sizeof buf);
    if (n > 0) r.out.append(buf, static_cast<size_t>(n));
    else if (n < 0 && errno == EINTR) continue;
    else break;  // EIO: the child closed the terminal
  }
  close(master);
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::string text;
  for (size_t i = 0; i < r.out.size(); ++i)
    if (!(r.out[i] == '\r' && i + 1 < r.out.size() && r.out[i + 1] == '\n')) text += r.out[i];
  r.out = text;
  return r;
}

struct FixtureStore : TestStore {
  FixtureStore() {
    RunResult r = Run({"import", TestData("fixture.jsonl")});
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, "import of the fixture failed: " + r.err);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(output)

BOOST_AUTO_TEST_CASE(cells_are_cut_to_the_width_with_an_ellipsis) {
  BOOST_TEST(out::DisplayWidth("Zoë Ørsted") == 10u);
  BOOST_TEST(out::FitToWidth("abcdef", 6) == "abcdef");
  BOOST_TEST(out::FitToWidth("abcdefg", 6) == "abcde…");
  BOOST_TEST(out::FitToWidth("Zoë Ørsted", 4) == "Zoë…");  // code points, not bytes
  BOOST_TEST(out::DisplayWidth(out::FitToWidth("Zoë Ørsted", 4)) == 4u);
  BOOST_TEST(out::FitToWidth("abc", 1) == "…");
  BOOST_TEST(out::FitToWidth("abc", 0) == "");
}

BOOST_AUTO_TEST_CASE(columns_fit_the_line_by_shrinking_the_widest_text_columns) {
  // Numbers (fixed) 3 and 5; text 10, 40, 20; gap 2: natural line 86.
  std::vector<size_t> natural = {3, 10, 40, 5, 20};
  std::vector<bool> text = {false, true, true, false, true};
  using V = std::vector<size_t>;
  BOOST_TEST(out::FitColumns(natural, text, 2, 0) == natural);   // no limit (a pipe)
  BOOST_TEST(out::FitColumns(natural, text, 2, 86) == natural);  // fits exactly
  // 60: text gets 60 - 8 - 8 = 44; a common cap of 17 gives 10+17+17 = 44.
  BOOST_TEST(out::FitColumns(natural, text, 2, 60) == (V{3, 10, 17, 5, 17}));
  // 61: one column left over goes to the first cut column.
  BOOST_TEST(out::FitColumns(natural, text, 2, 61) == (V{3, 10, 18, 5, 17}));
  // 40: cap 8, but never under the minimum width (10 by default, or the
  // natural width): the line stays longer than asked.
  BOOST_TEST(out::FitColumns(natural, text, 2, 40) == (V{3, 10, 10, 5, 10}));
  BOOST_TEST(out::FitColumns(natural, text, 2, 40, 6) == (V{3, 8, 8, 5, 8}));
  // Fixed columns alone too wide: the text columns at their minimum.
  BOOST_TEST(out::FitColumns(natural, text, 2, 10, 6) == (V{3, 6, 6, 5, 6}));
}

BOOST_AUTO_TEST_CASE(relative_times_at_each_boundary) {
  const int64_t now = T("2026-11-23T12:00:00Z");
  const int64_t s = 1000000;
  BOOST_TEST(out::RelativeTime(now, now) == "just now");
  BOOST_TEST(out::RelativeTime(now + s, now) == "just now");  // a second of skew is "now"
  BOOST_TEST(out::RelativeTime(now + s + 1, now) == "in the future");
  BOOST_TEST(out::RelativeTime(now - s + 1, now) == "just now");
  BOOST_TEST(out::RelativeTime(now - s, now) == "1s ago");
  BOOST_TEST(out::RelativeTime(now - 59 * s - 999999, now) == "59s ago");
  BOOST_TEST(out::RelativeTime(now - 60 * s, now) == "1 min ago");
  BOOST_TEST(out::RelativeTime(now - 3599 * s, now) == "59 min ago");
  BOOST_TEST(out::RelativeTime(now - 3600 * s, now) == "1 h ago");
  BOOST_TEST(out::RelativeTime(now - 86399 * s, now) == "23 h ago");
  BOOST_TEST(out::RelativeTime(now - 86400 * s, now) == "1 day ago");
  BOOST_TEST(out::RelativeTime(now - 2 * 86400 * s, now) == "2 days ago");
  BOOST_TEST(out::RelativeTime(now - 7 * 86400 * s + 1, now) == "6 days ago");
  BOOST_TEST(out::RelativeTime(now - 7 * 86400 * s, now) == "2026-11-16");
  BOOST_TEST(out::RelativeTime(T("2026-01-02T03:04:05Z"), now) == "2026-01-02");
}

BOOST_AUTO_TEST_CASE(sparkline_and_bucket_counts) {
  BOOST_TEST(out::Sparkline({}) == "");
  BOOST_TEST(out::Sparkline({0, 0}) == "▁▁");
  BOOST_TEST(out::Sparkline({0, 1, 2, 3, 4, 5, 6, 7}) == "▁▂▃▄▅▆▇█");
  BOOST_TEST(out::Sparkline({1, 1000}) == "▂█");  // any activity shows
  const int64_t end = T("2026-01-02T03:10:00Z"), w = 30 * 1000000LL;
  // Window [03:08:00, 03:10:00) in 4 buckets; the end is excluded, the start included.
  std::vector<int64_t> times = {T("2026-01-02T03:07:59.999999Z"), T("2026-01-02T03:08:00Z"),
                                T("2026-01-02T03:08:29.999999Z"), T("2026-01-02T03:09:45Z"),
                                T("2026-01-02T03:09:59.999999Z"), T("2026-01-02T03:10:00Z")};
  BOOST_TEST(out::BucketCounts(times, end, 4, w) == (std::vector<uint64_t>{2, 0, 0, 2}));
}

BOOST_AUTO_TEST_CASE(colour_only_on_a_terminal_unless_asked) {
  FixtureStore s;
  auto has_escape = [](const std::string& text) { return text.find('\x1b') != std::string::npos; };
  // A pipe: never by default; always with --color always (even with NO_COLOR).
  BOOST_TEST(!has_escape(s.Run({"streams"}).out));
  BOOST_TEST(has_escape(s.Run({"--color", "always", "streams"}).out));
  RunResult err = s.Run({"--color", "always", "show", "account-404"});
  BOOST_TEST(err.exit_code == 5);
  BOOST_TEST(err.err == "\x1b[31mrill: not_found:\x1b[0m stream account-404 does not exist\n");
  BOOST_TEST(s.Run({"--color", "sometimes", "streams"}).exit_code == 2);
  // A terminal: bold headers, unless NO_COLOR or --color never.
  RunResult tty = RillOnTerminal({"--db", s.db, "streams"}, 80, {});
  BOOST_TEST(tty.exit_code == 0);
  BOOST_TEST(tty.out.find("\x1b[1mSTREAM\x1b[0m") != std::string::npos, tty.out);
  BOOST_TEST(!has_escape(RillOnTerminal({"--db", s.db, "streams"}, 80, {"NO_COLOR=1"}).out));
  BOOST_TEST(!has_escape(RillOnTerminal({"--db", s.db, "--color", "never", "streams"}, 80, {}).out));
  BOOST_TEST(has_escape(RillOnTerminal({"--db", s.db, "--color", "always", "streams"}, 80, {"NO_COLOR=1"}).out));
  // An empty NO_COLOR does not count (no-color.org).
  BOOST_TEST(has_escape(RillOnTerminal({"--db", s.db, "streams"}, 80, {"NO_COLOR="}).out));
}

BOOST_AUTO_TEST_CASE(a_terminal_gets_fitted_tables_and_relative_times_a_pipe_full_values) {
  FixtureStore s;
  RunResult tty =
      RillOnTerminal({"--db", s.db, "show", "account-1"}, 70, {"NO_COLOR=1", "RILL_NOW=2026-01-02T04:05:00Z"});
  BOOST_TEST(tty.exit_code == 0);
  BOOST_TEST(tty.out ==
                 "VERSION  POSITION  TIME        TYPE          DATA          META\n"
                 "      1         1  1 h ago     AccountOpen…  {\"holder\":{…  {\"command_…\n"
                 "      2         3  59 min ago  Deposited     {\"amount\":1…  {\"command_…\n"
                 "      3         5  57 min ago  Withdrawn     {\"amount\":3…\n",
             tty.out);
  for (const std::string& line : Lines(tty.out)) BOOST_TEST(out::DisplayWidth(line) <= 70u, line);
  // A pipe: the same command shows every value in full, with ISO times.
  RunResult piped = s.Run({"show", "account-1"});
  BOOST_TEST(piped.out == ReadFile(TestData("show.txt")));
  BOOST_TEST(piped.out.find("…") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(stats_breaks_the_store_down_by_category_with_recent_activity) {
  FixtureStore s;
  setenv("RILL_NOW", "2026-01-02T03:10:30Z", 1);
  RunResult json = s.Run({"--json", "stats"});
  RunResult text = s.Run({"stats"});
  unsetenv("RILL_NOW");
  BOOST_TEST_REQUIRE(json.exit_code == 0, json.err);
  // Bytes are data + meta as stored; last write is the newest event's time.
  BOOST_TEST(json.out.find(
                 R"("categories":[)"
                 R"({"category":"account","streams":2,"events":5,"bytes":163,"last_write":"2026-01-02T03:09:00.000000Z"},)"
                 R"({"category":"inventory","streams":1,"events":1,"bytes":4,"last_write":"2026-01-02T03:10:00.000000Z"},)"
                 R"({"category":"sku","streams":1,"events":2,"bytes":116,"last_write":"2026-01-02T03:08:00.000000Z"}],)"
                 R"("bytes_estimated":false,)") != std::string::npos,
             json.out);
  // 20 buckets of 30 s ending at RILL_NOW: [03:00:30, 03:10:30).
  BOOST_TEST(json.out.find(R"("activity":{"end":"2026-01-02T03:10:30.000000Z","bucket_seconds":30,)"
                           R"("buckets":[0,0,0,0,0,0,0,2,0,1,0,1,0,1,0,1,0,1,0,1],"capped":false})") !=
                 std::string::npos,
             json.out);
  BOOST_TEST(text.out.find("last 10 min      ▁▁▁▁▁▁▁█▁▅▁▅▁▅▁▅▁▅▁▅ 8 events, peak 0.1/s\n") != std::string::npos,
             text.out);
  BOOST_TEST(text.out.find("CATEGORY   STREAMS  EVENTS  BYTES  LAST WRITE\n"
                           "account          2       5  163 B  2026-01-02T03:09:00.000000Z\n"
                           "inventory        1       1    4 B  2026-01-02T03:10:00.000000Z\n"
                           "sku              1       2  116 B  2026-01-02T03:08:00.000000Z\n") != std::string::npos,
             text.out);
}

// An event an upcaster splits on read: its parts share the version; the text
// tables tell them apart as V.P, JSON by "part"/"parts".
BOOST_AUTO_TEST_CASE(split_parts_show_as_version_dot_part) {
  TestStore s;
  std::filesystem::create_directories(s.db + "/migrations");
  WriteFile(s.db + "/migrations/0001-split.json",
            ReadFile(std::string(RILL_SOURCE_DIR) + "/testdata/upcast/split-merge/0001-deposited-with-fee-split.json"));
  BOOST_REQUIRE(s.Run({"append", "account-1", "Opened", "--force", "--data", "{\"owner\":\"x\"}"}).exit_code == 0);
  BOOST_REQUIRE(s.Run({"append", "account-1", "DepositedWithFee", "--schema", "1", "--data", "{\"amt\":10,\"fee\":1}"}).exit_code == 0);
  for (const std::vector<std::string>& cmd : {std::vector<std::string>{"show", "account-1"},
                                              std::vector<std::string>{"log"}}) {
    RunResult r = s.Run(cmd);
    BOOST_TEST_CONTEXT(cmd[0] << ":\n" << r.out) {
      BOOST_REQUIRE(r.exit_code == 0);
      auto lines = Lines(r.out);
      BOOST_REQUIRE(lines.size() == 4u);  // header, v1, v2 part 0, v2 part 1
      BOOST_TEST(lines[2].find(" 2.0 ") != std::string::npos);
      BOOST_TEST(lines[2].find("Deposited") != std::string::npos);
      BOOST_TEST(lines[3].find(" 2.1 ") != std::string::npos);
      BOOST_TEST(lines[3].find("Withdrawn") != std::string::npos);
      BOOST_TEST(lines[1].find(" 1 ") != std::string::npos);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
