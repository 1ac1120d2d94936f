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

// `rill ARGS` under `ulimit -n FDS`, output to files in `dir`.
RunResult UnderFdLimit(const TempDir& dir, const std::string& db, int fds, const std::string& args) {
  std::string out = dir / "limit.out", err = dir / "limit.err";
  std::string cmd = "exec >'" + out + "' 2>'" + err + "' </dev/null; ulimit -n " + std::to_string(fds) + "; exec '" +
                    RillBinary() + "' --db '" + db + "' " + args;
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

  TempDir scratch;
  int failed = 0;
  for (int fds = 3; fds <= 40; ++fds) {
    RunResult r = UnderFdLimit(scratch, s.db, fds, "stats");
    BOOST_TEST_CONTEXT("ulimit -n " << fds) {
      BOOST_TEST(r.exit_code < 128, r.err);  // never a signal
      if (r.exit_code != 0) {
        ++failed;
        BOOST_TEST(CountChar(r.err, '\n') == 1u, r.err);
      }
      // Whatever happened, the snapshots are still there.
      RunResult after = s.Run({"snapshot", "show", "--all", "--json"});
      BOOST_TEST(after.out == before.out);
    }
  }
  BOOST_TEST(failed > 0);  // the sweep did reach failures
  BOOST_TEST(s.Run({"check"}).exit_code == 0);
}

BOOST_AUTO_TEST_SUITE_END()
