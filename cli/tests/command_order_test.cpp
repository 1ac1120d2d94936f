// The help order (cli/command_order.h): one list names every command group,
// each group once, and `rill --help` lists the commands in its order. A
// command file that registers a group the list lacks, or registers one twice,
// makes rill refuse to start, which fails the last case here.
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "cli/command_order.h"
#include "cli/tests/harness.h"

using namespace rill::clitest;
using rill::cli::CheckCommandGroups;
using rill::cli::CommandGroup;
using rill::cli::CommandGroupsInHelpOrder;

namespace {

std::vector<std::string_view> ListedNames() {
  std::vector<std::string_view> names;
  for (const CommandGroup& g : CommandGroupsInHelpOrder()) names.push_back(g.name);
  return names;
}

// The command names under "Subcommands:" in `rill --help`, in order.
std::vector<std::string> HelpCommands(const std::string& help) {
  std::vector<std::string> names;
  bool in_list = false;
  for (const auto& line : Lines(help)) {
    if (line.rfind("Subcommands:", 0) == 0 || line.rfind("SUBCOMMANDS:", 0) == 0) {
      in_list = true;
      continue;
    }
    if (!in_list || line.size() < 3 || line[0] != ' ' || line[2] == ' ') continue;
    std::string name = line.substr(line.find_first_not_of(' '));
    names.push_back(name.substr(0, name.find(' ')));
  }
  return names;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(command_order)

BOOST_AUTO_TEST_CASE(the_list_agrees_with_itself) {
  BOOST_TEST(CheckCommandGroups(ListedNames()).ok(), CheckCommandGroups(ListedNames()).message());
}

BOOST_AUTO_TEST_CASE(a_group_registered_twice_is_refused) {
  std::vector<std::string_view> names = ListedNames();
  names.push_back("read");
  rill::Status s = CheckCommandGroups(names);
  BOOST_TEST(!s.ok());
  BOOST_TEST(s.message() == "command group 'read' is registered twice");
}

BOOST_AUTO_TEST_CASE(a_registered_group_missing_from_the_list_is_refused) {
  std::vector<std::string_view> names = ListedNames();
  names.push_back("backup-verify");
  rill::Status s = CheckCommandGroups(names);
  BOOST_TEST(!s.ok());
  BOOST_TEST(s.message() == "command group 'backup-verify' is not in the help order (cli/command_order.cpp)");
}

BOOST_AUTO_TEST_CASE(a_listed_group_nobody_registered_is_refused) {
  std::vector<std::string_view> names = ListedNames();
  names.erase(names.begin() + 3);
  rill::Status s = CheckCommandGroups(names);
  BOOST_TEST(!s.ok());
  BOOST_TEST(s.message().find("is in the help order but never registered") != std::string::npos, s.message());
}

BOOST_AUTO_TEST_CASE(a_list_naming_a_group_or_command_twice_is_refused) {
  std::vector<CommandGroup> list = {{"a", {"x"}}, {"b", {"y"}}, {"a", {"z"}}};
  BOOST_TEST(CheckCommandGroups({"a", "b"}, list).message() == "command group 'a' is listed twice in the help order");
  list = {{"a", {"x"}}, {"b", {"y", "x"}}};
  BOOST_TEST(CheckCommandGroups({"a", "b"}, list).message() == "command 'x' is listed twice in the help order");
}

BOOST_AUTO_TEST_CASE(help_lists_every_command_in_the_list_order) {
  RunResult help = Rill({"--help"});
  BOOST_REQUIRE_MESSAGE(help.exit_code == 0, help.err);
  BOOST_TEST(help.err == "");
  std::vector<std::string> expected;
  for (const CommandGroup& g : CommandGroupsInHelpOrder())
    for (std::string_view c : g.commands) expected.emplace_back(c);
  BOOST_TEST(HelpCommands(help.out) == expected, boost::test_tools::per_element());
  BOOST_TEST(expected.size() >= 20u);
}

BOOST_AUTO_TEST_SUITE_END()
