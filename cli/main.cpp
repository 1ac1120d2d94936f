// rill: the command-line toolkit. main() only sets up global options, lets
// each command file register itself, and turns the outcome into an exit code.

#include <new>
#include <system_error>

#include "cli/cli.h"

namespace rill::cli {
void InstallSignalHandlers();
}

int main(int argc, char** argv) {
  rill::EnsureStdDescriptors();
  rill::cli::InstallSignalHandlers();
  rill::cli::GlobalOptions g;
  CLI::App app{"rill: an embedded event-sourcing database and its operator toolkit", "rill"};
  app.set_version_flag("--version", "rill 0.1.0");
  app.option_defaults()->always_capture_default();
  app.add_option("--db", g.db, "Store directory (default: $RILL_DB, then ./rill.db)");
  app.add_flag("--json", g.json, "One JSON object per line on stdout, for scripts");
  app.add_flag("-q,--quiet", g.quiet, "Print only errors");
  app.add_flag("--no-progress", g.no_progress, "Never draw progress on stderr");
  app.add_option("--plugin", g.plugins, "Load a domain plugin (shared library; repeatable; see rill-config(1))")
      ->type_name("FILE")->expected(1)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_flag("--no-builtin-domains", g.no_builtin_domains, "Run without the sample domains compiled into rill");
  app.add_option("--set", g.settings, "Override a store config key for this run (repeatable; see rill-config(1))")
      ->type_name("KEY=VALUE")->expected(1)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  // Config and plugins load before the command runs (flag > config > default).
  app.parse_complete_callback([&app, &g] {
    // `--db ""` (an unset variable in a script) must not mean ./rill.db.
    if (app.get_option("--db")->count() > 0 && g.db.empty())
      throw CLI::RuntimeError(rill::cli::Fail(g, rill::cli::kExitUsage, "usage: --db needs a store directory, not \"\""));
    const CLI::App* command = nullptr;
    for (const CLI::App* sub : app.get_subcommands()) command = sub;
    rill::Status s = rill::cli::PrepareCommand(g, command);
    if (!s.ok()) throw CLI::RuntimeError(rill::cli::Fail(g, s));
  });
  app.require_subcommand(1);
  app.fallthrough();
  if (rill::Status s = rill::cli::SetupAllCommands(app, g); !s.ok()) return rill::cli::Fail(g, s);
  // CLI11 would call an unknown command "an extra argument" or say that a
  // subcommand is required; name the real problem instead.
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    // A global option's value ("--db DIR", "--color never") is not a command.
    if (const CLI::Option* opt = app.get_option_no_throw(arg); opt && opt->get_items_expected_min() > 0) {
      ++i;
      continue;
    }
    if (arg.empty() || arg[0] == '-') continue;
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) known = known || sub->check_name(arg);
    if (!known) {
      std::fprintf(stderr, "rill: usage: unknown command '%s' (see 'rill --help')\n", arg.c_str());
      return rill::cli::kExitUsage;
    }
    break;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // the config or a plugin failed to load; already reported
  } catch (const CLI::ParseError& e) {
    // One line, usage exit code.
    std::fprintf(stderr, "rill: usage: %s (see 'rill --help')\n", e.what());
    return rill::cli::kExitUsage;
  } catch (const std::bad_alloc&) {
    // Resources run out (ulimit -v, a cgroup): one line, exit 1. Whatever
    // was acknowledged before is durable; nothing after was.
    std::fputs("rill: io_error: out of memory\n", stderr);
    return rill::cli::kExitError;
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "rill: io_error: %s\n", e.what());
    return rill::cli::kExitError;
  }
  // A failed write of the output is an error (one line, exit 1), never a
  // silently short result.
  return rill::cli::FinishStdout(g.exit_code);
}
