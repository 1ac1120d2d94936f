// The order of `rill --help`, written down in one list. Each command file
// registers its setup function under a group name (RILL_COMMANDS in
// cli/cli.h); static initialisation registers them in whatever order the
// linker chose, so SetupAllCommands sets the groups up in this list's order
// instead, and refuses to start when the registered groups and the list
// disagree (cli/tests/command_order_test.cpp keeps a build from shipping so).
#pragma once

#include <string_view>
#include <vector>

#include "store/status.h"

namespace rill::cli {

struct CommandGroup {
  std::string_view name;                   // as registered: RILL_COMMANDS("read", ...)
  std::vector<std::string_view> commands;  // what its setup adds, in order
};

// Every group, in help order (the order of man/rill.1, COMMANDS).
const std::vector<CommandGroup>& CommandGroupsInHelpOrder();

// FailedPrecondition naming the first disagreement between the `registered`
// group names and `list`: a group or command named twice in the list, a
// group registered twice, one registered but not listed, one listed but
// never registered.
Status CheckCommandGroups(const std::vector<std::string_view>& registered,
                          const std::vector<CommandGroup>& list = CommandGroupsInHelpOrder());

}  // namespace rill::cli
