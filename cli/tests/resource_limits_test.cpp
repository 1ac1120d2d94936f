// Resource failures are errors, never damage: a command that runs out of
// file descriptors (EMFILE) at any point of opening a store fails with one
// line, and the index, snapshots included, is kept (a transient error used
// to throw the index away as if it were damaged).
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>

#include <cstdlib>

#include "cli/tests/harness.h"

using namespace rill::clitest;

namespace {

// `rill ARGS` under `ulimit -LIMIT VALUE` (-n descriptors, -v KiB of
// address space), output to files in `dir`.
RunResult UnderLimit(const TempDir& dir, const std::string& db, const char* limit, long value, const std::string& args) {
  std::string out = dir / "limit.out", err = dir / "limit.err";
  std::string cmd = "exec >'" + out + "' 2>'" + err + "' </dev/null; ulimit " + limit + " " + std::to_string(value) +
                    "; exec '" + RillBinary() + "' --db '" + db + "' " + args;
  int status = std::system(cmd.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = ReadFile(out);
  r.err = ReadFile(err);
  return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(resource_limits)

BOOST_AUTO_TEST_CASE(running_out_of_descriptors_never_drops_the_index) {
  TestStore s;
  BOOST_REQUIRE(s.Run({"submit", "OpenAccount", "--to", "account-1", "owner=ann"}).exit_code == 0);
  BOOST_REQUIRE(s.Run({"submit", "Deposit", "--to", "account-1", "amount=5"}).exit_code == 0);
  BOOST_REQUIRE(s.Run({"snapshot", "rebuild", "--all"}).exit_code == 0);
  RunResult before = s.Run({"snapshot", "show", "--all", "--json"});
  BOOST_REQUIRE(before.exit_code == 0);
  BOOST_REQUIRE(before.out.find("account-1") != std::string::npos);

  // Out of descriptors, the sanitizers' own runtime fails (UBSan's type
  // checks report false errors and halt): under them only what matters most
  // is checked, that the index and its snapshots survive.
#if defined(__SANITIZE_ADDRESS__)
  const bool sanitized = true;
#else
  const bool sanitized = false;
#endif
  TempDir scratch;
  int failed = 0;
  for (int fds = 3; fds <= 40; ++fds) {
    RunResult r = UnderLimit(scratch, s.db, "-n", fds, "stats");
    BOOST_TEST_CONTEXT("ulimit -n " << fds) {
      if (r.exit_code != 0) ++failed;
      if (!sanitized) {
        BOOST_TEST(r.exit_code < 128, r.err);  // never a signal
        if (r.exit_code != 0) BOOST_TEST(CountChar(r.err, '\n') == 1u, r.err);
      }
      // Whatever happened, the snapshots are still there.
      RunResult after = s.Run({"snapshot", "show", "--all", "--json"});
      BOOST_TEST(after.out == before.out);
    }
  }
  BOOST_TEST(failed > 0);  // the sweep did reach failures
  BOOST_TEST(s.Run({"check"}).exit_code == 0);
}

// Address space running out anywhere (LMDB's maps, a thread's stack, the
// allocator's arenas, a vector in a worker thread) is one line and exit 1,
// never a signal (SIGSEGV in jemalloc, SIGABRT from an uncaught
// std::system_error or std::bad_alloc), and leaves the store clean.
BOOST_AUTO_TEST_CASE(running_out_of_address_space_is_one_line_and_exit_1) {
#if defined(__SANITIZE_ADDRESS__)
  BOOST_TEST_MESSAGE("skipped: AddressSanitizer reserves more address space than any limit leaves");
  return;
#endif
  TestStore s;
  std::string lines;
  for (int i = 0; i < 300; ++i) lines += R"({"stream":"note-)" + std::to_string(i % 7) + R"(","type":"Noted","data":{}})" "\n";
  WriteFile(s.dir / "notes.jsonl", lines);
  BOOST_REQUIRE(s.Run({"submit", "OpenAccount", "--to", "account-1", "owner=ann"}).exit_code == 0);
  TempDir scratch;
  int failed = 0, passed = 0;
  const std::vector<std::string> commands = {"submit Deposit --to account-1 amount=1",
                                             "append --file '" + (s.dir / "notes.jsonl") + "'", "run",
                                             "project replay balances"};
  for (const std::string& cmd : commands) {
    for (long kib = 150000; kib <= 900000; kib += 25000) {
      RunResult r = UnderLimit(scratch, s.db, "-v", kib, cmd);
      BOOST_TEST_CONTEXT(cmd << " under ulimit -v " << kib) {
        BOOST_TEST(r.exit_code < 128, r.err);
        if (r.exit_code == 0) {
          ++passed;
          continue;
        }
        ++failed;
        BOOST_TEST(r.exit_code == 1, r.err);
        BOOST_TEST(r.err.rfind("rill: ", 0) == 0u, r.err);
        // `run` reports each projection that could not run on its own line.
        if (cmd != "run") BOOST_TEST(CountChar(r.err, '\n') == 1u, r.err);
      }
    }
  }
  BOOST_TEST(failed > 0);
  BOOST_TEST(passed > 0);
  RunResult check = s.Run({"check"});
  BOOST_TEST(check.exit_code == 0, check.out << check.err);
}

BOOST_AUTO_TEST_SUITE_END()
