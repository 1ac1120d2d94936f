// core/store_config.h: the rules `rill config` and `rill backup` apply to
// <db>/rill.conf, on real files in a temp directory.
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/store_config.h"
#include "core/tests/test_util.h"

using namespace rill;
using namespace rill::coretest;

namespace {

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteText(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// Runs in `dir` as the working directory, then returns to the previous one.
class InDirectory {
 public:
  explicit InDirectory(const std::string& dir) : previous_(std::filesystem::current_path()) {
    std::filesystem::current_path(dir);
  }
  ~InDirectory() { std::filesystem::current_path(previous_); }

 private:
  std::filesystem::path previous_;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(store_config)

BOOST_AUTO_TEST_CASE(config_keys_are_checked) {
  BOOST_TEST(CheckConfigKey("durability").ok());
  Status s = CheckConfigKey("durabilty");
  BOOST_TEST(s.code() == Code::kInvalidArgument);
  BOOST_TEST(s.message() == "unknown config key 'durabilty' (keys: " + ConfigKeyNames() + ")");
  BOOST_TEST(NormalizeConfigValue("durabilty", "sync").status().message() == s.message());
}

BOOST_AUTO_TEST_CASE(set_writes_the_normalized_value_and_unset_removes_it) {
  TempDir tmp;
  auto set = SetStoreConfigValue(tmp.path(), "durability", "  async ");
  BOOST_REQUIRE_MESSAGE(set.ok(), set.status().ToString());
  BOOST_TEST(set->value == "async");
  BOOST_TEST((set->source == ConfigSource::kConfig));
  BOOST_TEST(ReadText(StoreConfigPath(tmp.path())).find("\ndurability = async\n") != std::string::npos);
  BOOST_TEST(ReadStoreConfig(tmp.path())->Get("durability") == "async");
  auto unset = SetStoreConfigValue(tmp.path(), "durability", std::nullopt);
  BOOST_REQUIRE(unset.ok());
  BOOST_TEST(unset->value == "sync");
  BOOST_TEST((unset->source == ConfigSource::kDefault));
  BOOST_TEST(ReadText(StoreConfigPath(tmp.path())).find("durability") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_bad_value_or_key_changes_nothing) {
  TempDir tmp;
  WriteText(StoreConfigPath(tmp.path()), "# mine\nshards = 4\n");
  auto bad = SetStoreConfigValue(tmp.path(), "shards", "lots");
  BOOST_TEST(bad.status().code() == Code::kInvalidArgument);
  BOOST_TEST(bad.status().message() == "bad value 'lots' for shards: want a number from 1 to 1024, or auto");
  auto unknown = SetStoreConfigValue(tmp.path(), "shard", std::nullopt);
  BOOST_TEST(unknown.status().message() == CheckConfigKey("shard").message());
  BOOST_TEST(ReadText(StoreConfigPath(tmp.path())) == "# mine\nshards = 4\n");
}

BOOST_AUTO_TEST_CASE(plugins_given_to_set_mean_the_working_directory_and_must_exist) {
  TempDir tmp;
  std::filesystem::create_directories(tmp.sub("db"));
  WriteText(tmp.sub("bank.so"), "");
  InDirectory cwd(tmp.path());
  auto set = SetStoreConfigValue(tmp.sub("db"), "plugins", "bank.so, ./bank.so");
  BOOST_REQUIRE_MESSAGE(set.ok(), set.status().ToString());
  std::string abs = std::filesystem::absolute(tmp.sub("bank.so")).lexically_normal().string();
  BOOST_TEST(set->value == abs + ", " + abs);
  BOOST_TEST(ReadStoreConfig(tmp.sub("db"))->Get("plugins") == set->value);
  auto missing = SetStoreConfigValue(tmp.sub("db"), "plugins", "bank.so, gone.so");
  BOOST_TEST(missing.status().code() == Code::kInvalidArgument);
  BOOST_TEST(missing.status().message() == "bad value for plugins: gone.so: no such file");
  BOOST_TEST(ReadStoreConfig(tmp.sub("db"))->Get("plugins") == set->value);
}

BOOST_AUTO_TEST_CASE(a_backup_carries_the_plugins_named_inside_the_store) {
  TempDir tmp;
  WriteText(StoreConfigPath(tmp.path()), "plugins = plugins/bank.so, /opt/x.so, ../out.so, ./a/../b.so\n");
  BOOST_TEST(StoreRelativeFiles(tmp.path()) == (std::vector<std::string>{"plugins/bank.so", "b.so"}));
  // A config that does not parse names no files (the backup still copies it).
  WriteText(StoreConfigPath(tmp.path()), "plugins = plugins/bank.so\nnot a setting\n");
  BOOST_TEST(StoreRelativeFiles(tmp.path()).empty());
  TempDir none;
  BOOST_TEST(StoreRelativeFiles(none.path()).empty());
}

BOOST_AUTO_TEST_SUITE_END()
