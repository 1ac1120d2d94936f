#include "cli/command_order.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace rill::cli {

const std::vector<CommandGroup>& CommandGroupsInHelpOrder() {
  static const std::vector<CommandGroup> groups = {
      {"output-options", {}},  // the global --color option: before any command
      {"demo", {"demo"}},
      {"init", {"init"}},
      {"append", {"append"}},
      {"read", {"streams", "show", "log"}},
      {"submit", {"submit"}},
      {"state", {"state"}},
      {"diff", {"diff"}},
      {"stream-ops", {"delete", "metadata"}},
      {"project", {"project"}},
      {"snapshot", {"snapshot"}},
      {"run", {"run"}},
      {"query", {"query"}},
      {"admin", {"stats", "check", "backup"}},
      {"upcast", {"upcast"}},
      {"migrations", {"migrations"}},
      {"domains", {"domains"}},
      {"export-import", {"export", "import"}},
      {"config", {"config"}},
  };
  return groups;
}

Status CheckCommandGroups(const std::vector<std::string_view>& registered, const std::vector<CommandGroup>& list) {
  std::set<std::string_view> listed, commands;
  for (const CommandGroup& g : list) {
    if (!listed.insert(g.name).second)
      return Status::FailedPrecondition(fmt::format("command group '{}' is listed twice in the help order", g.name));
    for (std::string_view c : g.commands)
      if (!commands.insert(c).second)
        return Status::FailedPrecondition(fmt::format("command '{}' is listed twice in the help order", c));
  }
  std::set<std::string_view> seen;
  for (std::string_view name : registered) {
    if (!seen.insert(name).second)
      return Status::FailedPrecondition(fmt::format("command group '{}' is registered twice", name));
    if (!listed.count(name))
      return Status::FailedPrecondition(
          fmt::format("command group '{}' is not in the help order (cli/command_order.cpp)", name));
  }
  for (const CommandGroup& g : list)
    if (!seen.count(g.name))
      return Status::FailedPrecondition(
          fmt::format("command group '{}' is in the help order but never registered", g.name));
  return Status::OK();
}

}  // namespace rill::cli
