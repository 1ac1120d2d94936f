// Domain plugins (core/plugin.h) through the real `rill` binary: the bank
// sample domain built as librill_bank.so and loaded into a rill started
// without its built-in domains must behave exactly as the built-in one; and
// every way a plugin can be wrong gives one line on stderr and exit 2.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/tests/harness.h"

namespace rill::clitest {
namespace {

const std::vector<std::string> kBankOnly = {"--no-builtin-domains", "--plugin", RILL_BANK_PLUGIN};

std::vector<std::string> With(std::vector<std::string> prefix, const std::vector<std::string>& args) {
  prefix.insert(prefix.end(), args.begin(), args.end());
  return prefix;
}

// The bank scenario; returns what a user would look at afterwards.
std::string BankScenario(const TestStore& s, const std::vector<std::string>& flags) {
  std::string seen;
  auto run = [&](const std::vector<std::string>& args, int want) {
    RunResult r = s.Run(With(flags, args));
    BOOST_TEST(r.exit_code == want, "rill " << args[0] << " " << args[1] << ": " << r.err);
    // The built-in rill also has inventory's projection; compare the bank's.
    for (const auto& line : Lines(r.out))
      if (line.find("\"name\":\"stock\"") == std::string::npos) seen += line + "\n";
  };
  run({"--json", "submit", "OpenAccount", "--to", "account-1", "owner=ann"}, 0);
  run({"--json", "submit", "Deposit", "--to", "account-1", "amount=100"}, 0);
  run({"--json", "submit", "OpenAccount", "--to", "account-2", "owner=bob"}, 0);
  run({"--json", "submit", "StartTransfer", "--to", "transfer-1", "from=account-1", "to=account-2", "amount=30"}, 0);
  run({"--json", "submit", "Withdraw", "--to", "account-2", "amount=500"}, 4);
  // submit waited for the transfer saga (a plugin process manager).
  run({"--json", "state", "transfer-1"}, 0);
  run({"--json", "state", "account-1"}, 0);
  run({"--json", "state", "account-2"}, 0);
  // The plugin's projections (balances: SQL, transfers: C++).
  run({"--json", "run"}, 0);
  run({"--json", "query", "balances", "SELECT account, owner, balance, status FROM balances ORDER BY account"}, 0);
  run({"--json", "query", "transfers", "SELECT id, from_account, to_account, amount, state FROM transfers"}, 0);
  return seen;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(plugin)

// Starts rill many times: left out of the sanitizer run (CMakeLists.txt).
BOOST_AUTO_TEST_CASE(bank_as_a_plugin_behaves_like_the_built_in_bank, *boost::unit_test::label("many_processes")) {
  TestStore builtin, plugin;
  std::string want = BankScenario(builtin, {});
  std::string got = BankScenario(plugin, kBankOnly);
  BOOST_TEST(got == want);
  BOOST_TEST(got.find("\"state\":{\"owner\":\"ann\",\"balance\":70,\"status\":\"open\"}") != std::string::npos);
  BOOST_TEST(got.find("\"status\":\"completed\"") != std::string::npos);
  // Same events, in the same order (ids and times aside).
  RunResult a = builtin.Run({"--json", "log"}), b = plugin.Run({"--json", "log"});
  BOOST_TEST(Lines(a.out).size() == Lines(b.out).size());
  for (size_t i = 0; i < std::min(Lines(a.out).size(), Lines(b.out).size()); ++i) {
    BOOST_TEST(JsonField(Lines(a.out)[i], "type") == JsonField(Lines(b.out)[i], "type"));
    BOOST_TEST(JsonField(Lines(a.out)[i], "stream") == JsonField(Lines(b.out)[i], "stream"));
  }
}

BOOST_AUTO_TEST_CASE(without_builtins_only_plugin_types_exist) {
  TestStore s;
  RunResult r = s.Run({"--no-builtin-domains", "submit", "OpenAccount", "--to", "account-1", "owner=ann"});
  BOOST_TEST(r.exit_code != 0);  // nothing knows accounts
  r = s.Run(With(kBankOnly, {"--json", "domains"}));
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(r.out.find("{\"aggregate\":\"account\",") == 0);
  BOOST_TEST(r.out.find("\"plugin\":\"bank\"}") != std::string::npos);
  BOOST_TEST(r.out.find("{\"process_manager\":\"transfer\",\"categories\":[\"transfer\"],\"plugin\":\"bank\"}") !=
             std::string::npos);
  BOOST_TEST(r.out.find("\"sku\"") == std::string::npos);
  r = s.Run(With(kBankOnly, {"domains"}));
  BOOST_TEST(r.out.find("account  (streams account-<id>; snapshot every 1000 events; state schema 1; plugin bank)\n") !=
             std::string::npos);
  // Both sample plugins together: every sample type, from its plugin.
  r = s.Run({"--no-builtin-domains", "--plugin", RILL_BANK_PLUGIN, "--plugin", RILL_INVENTORY_PLUGIN, "--json", "domains"});
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(Lines(r.out).size() == 4u);  // account, sku, transfer, the transfer manager
  BOOST_TEST(r.out.find("\"plugin\":\"inventory\"}") != std::string::npos);
  r = s.Run({"--no-builtin-domains", "--plugin", RILL_INVENTORY_PLUGIN, "--json", "project", "list"});
  BOOST_TEST(r.out.find("\"stock\"") != std::string::npos);
  BOOST_TEST(r.out.find("\"balances\"") == std::string::npos);
  // Listed as the plugin's, not as built in; its name cannot be taken by add.
  BOOST_TEST(r.out.find("\"source\":\"plugin\"") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("\"source\":\"built-in\"") == std::string::npos, r.out);
  WriteFile(s.dir / "stock.sql", "-- rill projection: stock\n-- on Purchased\nSELECT 1;\n");
  r = s.Run({"--no-builtin-domains", "--plugin", RILL_INVENTORY_PLUGIN, "project", "add", s.dir / "stock.sql"});
  BOOST_TEST(r.exit_code == 3, r.err);
  BOOST_TEST(r.err.find("stock is a plugin projection") != std::string::npos, r.err);
  // The same file twice is loaded once.
  r = s.Run(With(kBankOnly, {"--plugin", RILL_BANK_PLUGIN, "domains"}));
  BOOST_TEST(r.exit_code == 0, r.err);
}

BOOST_AUTO_TEST_CASE(bad_plugins_fail_with_one_line_and_exit_2) {
  TestStore s;
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::string bank = RILL_BANK_PLUGIN;
  const std::vector<Case> cases = {
      // Into a rill that has the bank built in: every name clashes.
      {{"--plugin", bank, "domains"},
       "rill: invalid_argument: plugin " + bank + ": duplicate aggregate type 'account' (already defined, built in)\n"},
      {{"--plugin", s.dir / "missing.so", "domains"},
       "rill: invalid_argument: plugin " + (s.dir / "missing.so") + ": no such file\n"},
      {{"--plugin", RILL_NOT_A_PLUGIN, "domains"},
       std::string("rill: invalid_argument: plugin ") + RILL_NOT_A_PLUGIN +
           ": not a rill plugin (no rill_plugin() entry point; see core/plugin.h)\n"},
      {{"--plugin", RILL_BAD_ABI_PLUGIN, "domains"},
       std::string("rill: invalid_argument: plugin ") + RILL_BAD_ABI_PLUGIN +
           ": plugin ABI version 44, this rill needs 3 (rebuild the plugin against rill 0.1.0)\n"},
  };
  for (const auto& c : cases) {
    RunResult r = s.Run(c.args);
    BOOST_TEST(r.exit_code == 2);
    BOOST_TEST(r.err == c.message);
    BOOST_TEST(r.out.empty());
  }
  // A file that is no shared library at all.
  WriteFile(s.dir / "junk.so", "not an ELF file\n");
  RunResult r = s.Run({"--plugin", s.dir / "junk.so", "domains"});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.err.find("rill: invalid_argument: plugin " + (s.dir / "junk.so") + ": cannot load: ") == 0u);
  BOOST_TEST(CountChar(r.err, '\n') == 1u);
  // Two plugins defining the same aggregate: the second names the first.
  r = s.Run({"--no-builtin-domains", "--plugin", bank, "--plugin", s.dir / "copy.so", "domains"});
  BOOST_TEST(r.exit_code == 2);  // copy.so does not exist yet
  BOOST_REQUIRE(std::system(("cp " + bank + " " + (s.dir / "copy.so")).c_str()) == 0);
  r = s.Run({"--no-builtin-domains", "--plugin", bank, "--plugin", s.dir / "copy.so", "domains"});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.err == "rill: invalid_argument: plugin " + (s.dir / "copy.so") +
                          ": duplicate aggregate type 'account' (already defined, from plugin bank)\n");
  // --json also reports it in-band.
  r = s.Run({"--json", "--plugin", bank, "domains"});
  BOOST_TEST(r.out.find("{\"error\":\"invalid_argument\",") == 0);
}

// A register function that throws is a one-line error naming the plugin
// (it used to abort rill); one that crashes cannot be caught, but the
// commands that read only what is stored never load the config's plugins.
BOOST_AUTO_TEST_CASE(throwing_and_crashing_plugins) {
  TestStore s;
  BOOST_REQUIRE(s.Run({"append", "note-1", "Noted", "--data", R"({"n":1})"}).exit_code == 0);
  const std::string throwing = RILL_THROWING_PLUGIN;
  RunResult r = s.Run({"--plugin", throwing, "domains"});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.err == "rill: invalid_argument: plugin " + throwing +
                          ": its register function threw: cannot reach the licence server\n");
  ::setenv("RILL_TEST_THROW_IN", "projections", 1);
  r = s.Run({"--plugin", throwing, "project", "list"});
  ::unsetenv("RILL_TEST_THROW_IN");
  BOOST_TEST(r.exit_code == 2, r.err);
  BOOST_TEST(r.err == "rill: invalid_argument: plugin " + throwing +
                          ": projections: its register function threw (not a std::exception)\n");

  // Configured in rill.conf, either plugin keeps the domain commands from
  // running, but never the ones that inspect, verify and copy the store.
  int copies = 0;
  for (const std::string& plugin : {throwing, std::string(RILL_CRASHING_PLUGIN)}) {
    WriteFile(s.db + "/rill.conf", "plugins = " + plugin + "\n");
    BOOST_TEST_CONTEXT(plugin) {
      RunResult state = s.Run({"state", "account-1"});
      BOOST_TEST(state.exit_code != 0);
      for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
               {"check"}, {"stats"}, {"streams"}, {"export", "--raw"}, {"show", "note-1", "--raw"},
               {"log", "--raw"}, {"backup", s.dir / ("copy-" + std::to_string(++copies))}}) {
        RunResult ok = s.Run(args);
        BOOST_TEST(ok.exit_code == 0, args[0] << ": " << ok.err);
      }
    }
  }
}

// Item: a backup did not carry the plugin files rill.conf names by
// store-relative paths, so the copy could not open its domains.
BOOST_AUTO_TEST_CASE(backup_carries_the_plugins_rill_conf_names_inside_the_store) {
  TestStore s;
  std::filesystem::create_directories(s.db + "/plugins");
  std::filesystem::copy_file(RILL_INVENTORY_PLUGIN, s.db + "/plugins/inventory.so");
  WriteFile(s.db + "/rill.conf", "plugins = plugins/inventory.so\n");
  RunResult domains = s.Run({"--no-builtin-domains", "domains"});
  BOOST_REQUIRE_MESSAGE(domains.exit_code == 0, domains.err);
  BOOST_REQUIRE(domains.out.find("inventory") != std::string::npos);
  const std::string copy = s.dir / "copy";
  RunResult r = s.Run({"backup", copy});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  BOOST_TEST(FileExists(copy + "/plugins/inventory.so"));
  r = RillDb(copy, {"--no-builtin-domains", "domains"});
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(r.out == domains.out);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace rill::clitest
