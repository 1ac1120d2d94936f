// The store config (<db>/rill.conf, `rill config`), through the real binary:
// set/get/list round trip, validation, precedence (flag > config > default),
// and that the settings reach what rill opens (store durability, runtime
// shards and snapshots, plugins, the projections `rill run` runs).
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include "cli/tests/harness.h"

namespace rill::clitest {
namespace {

// Runs with RILL_DEBUG=1, which makes rill print the effective store and
// runtime settings on stderr.
RunResult Debug(const TestStore& s, const std::vector<std::string>& args) {
  ::setenv("RILL_DEBUG", "1", 1);
  RunResult r = s.Run(args);
  ::unsetenv("RILL_DEBUG");
  return r;
}

// Table text with each run of spaces made one (column widths aside).
std::string Squeeze(const std::string& text) {
  std::string out;
  for (char c : text)
    if (c != ' ' || out.empty() || out.back() != ' ') out += c;
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(config)

BOOST_AUTO_TEST_CASE(set_get_list_unset_round_trip) {
  TestStore s;
  RunResult r = s.Run({"--json", "config", "list"});
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(r.out ==
             "{\"key\":\"durability\",\"value\":\"sync\",\"source\":\"default\"}\n"
             "{\"key\":\"shards\",\"value\":\"auto\",\"source\":\"default\"}\n"
             "{\"key\":\"snapshot-interval\",\"value\":\"auto\",\"source\":\"default\"}\n"
             "{\"key\":\"actor-bound\",\"value\":\"1048576\",\"source\":\"default\"}\n"
             "{\"key\":\"plugins\",\"value\":\"\",\"source\":\"default\"}\n"
             "{\"key\":\"projections\",\"value\":\"\",\"source\":\"default\"}\n");
  BOOST_TEST(!FileExists(s.db + "/rill.conf"));

  r = s.Run({"config", "set", "shards", "3"});
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(r.out == "shards = 3\n");
  r = s.Run({"--json", "config", "set", "durability", " async "});
  BOOST_TEST(r.out == "{\"key\":\"durability\",\"value\":\"async\",\"source\":\"config\"}\n");
  r = s.Run({"config", "set", "projections", "balances,stock"});
  BOOST_TEST(r.exit_code == 0, r.err);
  r = s.Run({"config", "get", "shards"});
  BOOST_TEST(r.out == "3\n");
  r = s.Run({"--json", "config", "get", "projections"});
  BOOST_TEST(r.out == "{\"key\":\"projections\",\"value\":\"balances, stock\",\"source\":\"config\"}\n");
  r = s.Run({"config", "list"});
  BOOST_TEST(Squeeze(r.out).find("\nshards 3 config\n") != std::string::npos, r.out);
  BOOST_TEST(Squeeze(r.out).find("\nactor-bound 1048576 default\n") != std::string::npos, r.out);

  // The file is plain `key = value` lines; a hand-written comment survives a set.
  std::string text = ReadFile(s.db + "/rill.conf");
  BOOST_TEST(text.find("\nshards = 3\ndurability = async\nprojections = balances, stock\n") != std::string::npos, text);
  WriteFile(s.db + "/rill.conf", "# tuned for the flash sale\n" + text);
  BOOST_TEST(s.Run({"config", "set", "shards", "2"}).exit_code == 0);
  text = ReadFile(s.db + "/rill.conf");
  BOOST_TEST(text.find("# tuned for the flash sale\n") == 0u);
  BOOST_TEST(text.find("shards = 2\n") != std::string::npos);
  BOOST_TEST(text.find("shards = 3") == std::string::npos);

  r = s.Run({"config", "unset", "shards"});
  BOOST_TEST(r.out == "shards = auto  (default)\n");
  r = s.Run({"--json", "config", "get", "shards"});
  BOOST_TEST(r.out == "{\"key\":\"shards\",\"value\":\"auto\",\"source\":\"default\"}\n");
}

BOOST_AUTO_TEST_CASE(bad_keys_and_values_are_usage_errors) {
  TestStore s;
  BOOST_REQUIRE(s.Run({"config", "set", "shards", "4"}).exit_code == 0);
  uint64_t before = HashFile(s.db + "/rill.conf");
  struct Case {
    std::vector<std::string> args;
    std::string err;
  };
  const std::vector<Case> cases = {
      {{"config", "set", "shard", "4"},
       "rill: invalid_argument: unknown config key 'shard' (keys: durability, shards, snapshot-interval, "
       "actor-bound, plugins, projections)\n"},
      {{"config", "get", "nope"},
       "rill: invalid_argument: unknown config key 'nope' (keys: durability, shards, snapshot-interval, "
       "actor-bound, plugins, projections)\n"},
      {{"config", "set", "shards", "many"},
       "rill: invalid_argument: bad value 'many' for shards: want a number from 1 to 1024, or auto\n"},
      {{"config", "set", "durability", "fast"}, "rill: invalid_argument: bad value 'fast' for durability: want sync or async\n"},
      {{"config", "set", "actor-bound", "0"}, "rill: invalid_argument: bad value '0' for actor-bound: want a positive number\n"},
      {{"config", "set", "plugins", s.dir / "none.so"},
       "rill: invalid_argument: bad value for plugins: " + (s.dir / "none.so") + ": no such file\n"},
      {{"--set", "shards=0", "config", "list"},
       "rill: invalid_argument: --set: bad value '0' for shards: want a number from 1 to 1024, or auto\n"},
      {{"--set", "shards", "stats"}, "rill: invalid_argument: --set shards: expected KEY=VALUE\n"},
  };
  for (const auto& c : cases) {
    RunResult r = s.Run(c.args);
    BOOST_TEST(r.exit_code == 2);
    BOOST_TEST(r.err == c.err);
  }
  BOOST_TEST(HashFile(s.db + "/rill.conf") == before);
  RunResult r = Rill({"--db", s.dir / "nostore", "config", "list"});
  BOOST_TEST(r.exit_code == 5);

  // A bad line in the file stops every command that reads it, naming the
  // line; `config` itself still works so it can be repaired.
  WriteFile(s.db + "/rill.conf", "shards = 4\nshrads = 2\n");
  r = s.Run({"stats"});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.err == "rill: invalid_argument: " + s.db + "/rill.conf:2: unknown config key 'shrads' (keys: "
                      "durability, shards, snapshot-interval, actor-bound, plugins, projections)\n");
  WriteFile(s.db + "/rill.conf", "shards 4\n");
  r = s.Run({"stats"});
  BOOST_TEST(r.err == "rill: invalid_argument: " + s.db + "/rill.conf:1: expected 'key = value', got 'shards 4'\n");
  BOOST_TEST(s.Run({"config", "set", "shards", "4"}).exit_code == 0);
}

BOOST_AUTO_TEST_CASE(flags_override_config_and_settings_take_effect) {
  TestStore s;
  // Defaults: durability sync; submit runs one shard.
  RunResult r = Debug(s, {"submit", "OpenAccount", "--to", "account-1", "owner=ann"});
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(r.err.find("rill: debug: store durability=sync\n") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("rill: debug: runtime shards=1 actor-bound=1048576 snapshot-interval=auto\n") !=
             std::string::npos, r.err);

  BOOST_REQUIRE(s.Run({"config", "set", "durability", "async"}).exit_code == 0);
  BOOST_REQUIRE(s.Run({"config", "set", "shards", "3"}).exit_code == 0);
  BOOST_REQUIRE(s.Run({"config", "set", "actor-bound", "100"}).exit_code == 0);
  BOOST_REQUIRE(s.Run({"config", "set", "snapshot-interval", "2"}).exit_code == 0);
  r = Debug(s, {"submit", "Deposit", "--to", "account-1", "amount=5"});
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(r.err.find("rill: debug: store durability=async\n") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("rill: debug: runtime shards=3 actor-bound=100 snapshot-interval=2\n") != std::string::npos,
             r.err);
  // snapshot-interval 2 (the account's own is 1000): version 2 was snapshotted.
  r = s.Run({"--json", "snapshot", "show", "account-1"});
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(JsonField(r.out, "version") == "2");

  // Flags win over the config, for this run only.
  r = Debug(s, {"--set", "durability=sync", "--set", "shards=2", "--set", "snapshot-interval=0", "submit", "Deposit",
                "--to", "account-1", "amount=5"});
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(r.err.find("rill: debug: store durability=sync\n") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("rill: debug: runtime shards=2 actor-bound=100 snapshot-interval=0\n") != std::string::npos,
             r.err);
  r = s.Run({"--json", "--set", "shards=2", "config", "get", "shards"});
  BOOST_TEST(r.out == "{\"key\":\"shards\",\"value\":\"2\",\"source\":\"flag\"}\n");
  r = s.Run({"--json", "config", "get", "shards"});
  BOOST_TEST(r.out == "{\"key\":\"shards\",\"value\":\"3\",\"source\":\"config\"}\n");
  // Interval 0 from the flag: version 3 was not snapshotted.
  r = s.Run({"--json", "snapshot", "show", "account-1"});
  BOOST_TEST(JsonField(r.out, "version") == "2");
}

BOOST_AUTO_TEST_CASE(plugins_and_projections_from_the_config) {
  TestStore s;
  BOOST_REQUIRE(s.Run({"config", "set", "plugins", RILL_BANK_PLUGIN}).exit_code == 0);
  RunResult r = s.Run({"--no-builtin-domains", "submit", "OpenAccount", "--to", "account-1", "owner=ann"});
  BOOST_TEST(r.exit_code == 0, r.err);
  r = s.Run({"--no-builtin-domains", "--json", "domains"});
  BOOST_TEST(r.out.find("\"plugin\":\"bank\"}") != std::string::npos);
  // With the built-ins too, the config's plugin clashes: the error says where it was listed.
  r = s.Run({"domains"});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.err == std::string("rill: invalid_argument: plugin ") + RILL_BANK_PLUGIN +
                          ": duplicate aggregate type 'account' (already defined, built in) (listed in " + s.db +
                          "/rill.conf)\n");
  // `config` itself never loads plugins, so a bad list can be repaired.
  BOOST_TEST(s.Run({"config", "unset", "plugins"}).exit_code == 0);
  BOOST_TEST(s.Run({"domains"}).exit_code == 0);
  // A relative path in the file is relative to the store directory.
  WriteFile(s.db + "/rill.conf", "plugins = ../missing.so\n");
  r = s.Run({"--no-builtin-domains", "domains"});
  BOOST_TEST(r.err == "rill: invalid_argument: plugin " + s.db + "/../missing.so: no such file (listed in " + s.db +
                          "/rill.conf)\n");
  BOOST_TEST(s.Run({"config", "unset", "plugins"}).exit_code == 0);

  // projections: the ones `rill run` runs.
  BOOST_REQUIRE(s.Run({"config", "set", "projections", "balances"}).exit_code == 0);
  r = s.Run({"--json", "run"});
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(Lines(r.out).size() == 1u);
  BOOST_TEST(JsonField(r.out, "name") == "balances");
  BOOST_REQUIRE(s.Run({"config", "set", "projections", "balances,nope"}).exit_code == 0);
  r = s.Run({"run"});
  BOOST_TEST(r.exit_code == 5);
  BOOST_TEST(r.err == "rill: not_found: no projection named 'nope' (config key projections)\n");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace rill::clitest
