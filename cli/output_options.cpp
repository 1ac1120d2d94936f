// The global --color option. Registered like a command group so that main.cpp
// needs no change; it only sets the mode cli/output.h reads.
#include "cli/cli.h"
#include "cli/output.h"

namespace rill::cli {
namespace {

void SetupOutputOptions(CLI::App& root, GlobalOptions&) {
  root.add_option_function<std::string>(
          "--color",
          [](const std::string& when) {
            SetColorMode(when == "always" ? ColorMode::kAlways : when == "never" ? ColorMode::kNever : ColorMode::kAuto);
          },
          "Colour: auto (on a terminal, unless NO_COLOR is set), always, never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->default_str("auto");
}

}  // namespace

RILL_COMMANDS("output-options", SetupOutputOptions);

}  // namespace rill::cli
