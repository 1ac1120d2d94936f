// The man pages: every page renders without a groff warning (a bad escape
// such as `\(u2026` prints garbage, and only groff's warnings say so), and
// every command `rill --help` lists has its page.
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <filesystem>
#include <string>

#include "cli/tests/harness.h"

namespace fs = std::filesystem;
using namespace rill::clitest;

namespace {

// Runs `command` through the shell and returns what it printed (stdout and
// stderr together) and its exit status.
std::pair<std::string, int> Shell(const std::string& command) {
  std::string out;
  std::FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  BOOST_REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  return {out, ::pclose(p)};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(man_pages)

BOOST_AUTO_TEST_CASE(every_page_renders_without_groff_warnings) {
  size_t pages = 0;
  for (const auto& entry : fs::directory_iterator(std::string(RILL_SOURCE_DIR) + "/man")) {
    if (entry.path().extension() != ".1") continue;
    ++pages;
    // -ww: every warning; -Wbreak: not "cannot adjust line", which is about
    // justification of a long word, not about what the page says.
    auto [out, status] = Shell("groff -ww -Wbreak -z -man -Tutf8 '" + entry.path().string() + "'");
    BOOST_TEST(status == 0, entry.path().filename() << " exit " << status);
    BOOST_TEST(out.empty(), entry.path().filename() << ": " << out);
  }
  BOOST_TEST(pages >= 20u);
}

BOOST_AUTO_TEST_CASE(every_command_has_a_page) {
  RunResult help = Rill({"--help"});
  BOOST_REQUIRE_EQUAL(help.exit_code, 0);
  size_t commands = 0;
  bool in_list = false;
  for (const auto& line : Lines(help.out)) {
    if (line.rfind("SUBCOMMANDS:", 0) == 0 || line.rfind("Subcommands:", 0) == 0) {
      in_list = true;
      continue;
    }
    if (!in_list || line.size() < 3 || line[0] != ' ') continue;
    std::string name = line.substr(line.find_first_not_of(' '));
    name = name.substr(0, name.find(' '));
    if (name.empty()) continue;
    ++commands;
    BOOST_TEST(FileExists(std::string(RILL_SOURCE_DIR) + "/man/rill-" + name + ".1"), "no man page for " << name);
  }
  BOOST_TEST(commands >= 20u);
}

BOOST_AUTO_TEST_SUITE_END()
