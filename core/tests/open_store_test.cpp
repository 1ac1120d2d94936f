// rill::OpenStore (core/open_store.h), the way an application opens a store:
// it reads migrated events at the schema `rill show` shows, applies
// <db>/rill.conf, and refuses a migration that changes what a domain reads.
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>

#include "core/open_store.h"
#include "core/tests/test_util.h"

using namespace rill;

namespace {
OpenOverrides WithBank() {
  OpenOverrides o;
  o.domains = [](DomainRegistry& r) { domains::RegisterAll(r); };
  o.store.create_if_missing = true;
  return o;
}
void Write(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(open_store)

BOOST_AUTO_TEST_CASE(reads_migrated_events_at_the_current_schema) {
  coretest::TempDir dir;
  {
    auto raw = coretest::OpenStore(dir.path());
    BOOST_REQUIRE(raw->Append(coretest::MakeAppend("account-1", "AccountOpened", R"({"owner":"Ann"})")).ok());
  }
  auto opened = OpenStore(dir.path(), WithBank());
  BOOST_REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  BOOST_TEST(opened->domains->Find("account") != nullptr);
  std::vector<Event> events;
  BOOST_REQUIRE(opened->store->ReadStream("account-1", Direction::kForward, 1, 10, &events).ok());
  BOOST_REQUIRE(events.size() == 1u);
  // What `rill show account-1` prints: the shipped bank chain 1 -> 3.
  BOOST_TEST(events[0].schema == 3u);
  BOOST_TEST(events[0].data == R"({"holder":{"name":"Ann"},"currency":"EUR"})");
  BOOST_TEST(opened->upcaster->CurrentSchema("AccountOpened") == 3u);
}

BOOST_AUTO_TEST_CASE(applies_the_store_config) {
  coretest::TempDir dir;
  Write(dir.path() + "/rill.conf", "# test\nshards = 3\ndurability = async\n");
  auto opened = OpenStore(dir.path(), WithBank());
  BOOST_REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  BOOST_TEST(opened->runtime.shards == 3u);
  BOOST_TEST(opened->config.Get("durability") == "async");
  Write(dir.path() + "/rill.conf", "shardz = 3\n");
  auto bad = OpenStore(dir.path(), WithBank());
  BOOST_TEST(!bad.ok());
  BOOST_TEST(bad.status().message().find("rill.conf:1") != std::string::npos, bad.status().message());
}

BOOST_AUTO_TEST_CASE(refuses_a_migration_that_changes_what_a_domain_reads) {
  coretest::TempDir dir;
  Write(dir.path() + "/migrations/0001-cents.json",
        R"({"event":"Deposited","from":1,"to":2,"ops":[{"op":"convert","path":"amount","to":"number","factor":100}]})");
  auto opened = OpenStore(dir.path(), WithBank());
  BOOST_REQUIRE(!opened.ok());
  const std::string& m = opened.status().message();
  BOOST_TEST((opened.status().code() == Code::kInvalidArgument));
  BOOST_TEST(m.find("0001-cents.json") != std::string::npos, m);
  BOOST_TEST(m.find("Deposited to schema 2") != std::string::npos, m);
  BOOST_TEST(m.find("domain account declares Deposited at schema 1") != std::string::npos, m);
  // Without the domain, or with the check off, the same files open.
  OpenOverrides no_check = WithBank();
  no_check.check_migrations = false;
  BOOST_TEST(OpenStore(dir.path(), no_check).ok());
  OpenOverrides no_domains;
  no_domains.store.create_if_missing = true;
  BOOST_TEST(OpenStore(dir.path(), no_domains).ok());
}

BOOST_AUTO_TEST_CASE(refuses_a_retype_of_a_domain_event) {
  coretest::TempDir dir;
  Write(dir.path() + "/migrations/0001-retype.json",
        R"({"event":"Withdrawn","from":1,"to":2,"ops":[{"op":"retype","to":"Debited"}]})");
  auto opened = OpenStore(dir.path(), WithBank());
  BOOST_REQUIRE(!opened.ok());
  BOOST_TEST(opened.status().message().find("retypes Withdrawn (schema 1) to Debited, which domain account") !=
                 std::string::npos,
             opened.status().message());
}

BOOST_AUTO_TEST_SUITE_END()
