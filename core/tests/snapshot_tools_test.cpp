// core/snapshot_tools.h: snapshots checked against, and rebuilt from, the
// events of their streams, on a real store with the sample domains.
#include <boost/test/unit_test.hpp>
#include <fmt/format.h>

#include "core/snapshot_tools.h"
#include "core/tests/test_util.h"

using namespace rill;
using namespace rill::coretest;

namespace {

// account-1 (3 events), account-2 (1 event, then deleted), account-3 (1
// event) and note-1, which no aggregate owns; no snapshots.
struct Fixture {
  TempDir dir;
  std::unique_ptr<EventStore> store = OpenStore(dir.path());
  DomainRegistry registry = SampleDomains();
  std::string state1;  // account-1 at version 3

  Fixture() {
    auto rt = coretest::StartRuntime(store.get(), &registry, {.shards = 1, .snapshot_every = 0});
    MustExecute(*rt, Cmd("OpenAccount", "account-1", R"({"owner":"ann"})"));
    MustExecute(*rt, Cmd("Deposit", "account-1", R"({"amount":5})"));
    MustExecute(*rt, Cmd("Deposit", "account-1", R"({"amount":7})"));
    MustExecute(*rt, Cmd("OpenAccount", "account-2", R"({"owner":"bo"})"));
    MustExecute(*rt, Cmd("OpenAccount", "account-3", R"({"owner":"cy"})"));
    state1 = rt->GetState("account-1")->state;
    if (!store->Append(MakeAppend("note-1", "Noted")).ok()) throw std::runtime_error("append");
    if (!store->DeleteStream("account-2", ExpectedVersion::Any()).ok()) throw std::runtime_error("delete");
  }
  uint32_t schema() const { return registry.ForStream("account-1")->state_schema(); }
  void Put(const std::string& stream, Snapshot s) {
    if (!store->PutSnapshot(stream, s).ok()) throw std::runtime_error("put");
  }
  std::string Problem(const std::string& stream) {
    auto s = store->GetSnapshot(stream);
    if (!s.ok()) throw std::runtime_error("get");
    return SnapshotProblem(*store, registry, stream, *s);
  }
};

// The same JSON object with its members in reverse order.
std::string Reversed(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  std::vector<std::string> members;
  for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it)
    members.push_back("\"" + std::string(it->name.GetString()) + "\":" + json::Canonical(it->value));
  std::string out = "{";
  for (auto it = members.rbegin(); it != members.rend(); ++it) out += (out.size() > 1 ? "," : "") + *it;
  return out + "}";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(snapshot_tools)

BOOST_AUTO_TEST_CASE(selections) {
  BOOST_TEST(SnapshotSelection{.all = true}.Contains("anything-1"));
  BOOST_TEST(SnapshotSelection{.stream = "account-1"}.Contains("account-1"));
  BOOST_TEST(!SnapshotSelection{.stream = "account-1"}.Contains("account-10"));
  BOOST_TEST(SnapshotSelection{.category = "account"}.Contains("account-10"));
  BOOST_TEST(!SnapshotSelection{.category = "account"}.Contains("accounts-1"));
}

BOOST_AUTO_TEST_CASE(selected_snapshots_are_in_stream_order) {
  Fixture f;
  auto none = SelectedSnapshots(*f.store, {.stream = "account-1"});
  BOOST_TEST(none.status().code() == Code::kNotFound);
  BOOST_TEST(none.status().message() == "no snapshot for stream account-1");
  BOOST_TEST(SelectedSnapshots(*f.store, {.all = true})->empty());
  f.Put("account-3", {1, f.schema(), "{}"});
  f.Put("account-1", {3, f.schema(), f.state1});
  f.Put("note-1", {1, 1, "{}"});
  auto account = SelectedSnapshots(*f.store, {.category = "account"});
  BOOST_REQUIRE(account.ok());
  BOOST_REQUIRE_EQUAL(account->size(), 2u);
  BOOST_TEST((*account)[0].first == "account-1");
  BOOST_TEST((*account)[1].first == "account-3");
  BOOST_TEST(SelectedSnapshots(*f.store, {.all = true})->size() == 3u);
  BOOST_TEST(SelectedSnapshots(*f.store, {.stream = "account-3"})->size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_snapshot_equal_to_the_replay_has_no_problem) {
  Fixture f;
  f.Put("account-1", {3, f.schema(), f.state1});
  BOOST_TEST(f.Problem("account-1") == "");
  // Compared as JSON values: member order is not a difference.
  BOOST_REQUIRE(Reversed(f.state1) != f.state1);
  f.Put("account-1", {3, f.schema(), Reversed(f.state1)});
  BOOST_TEST(f.Problem("account-1") == "");
  // An earlier version is checked against the replay up to it.
  auto at2 = ReplayState(*f.store, f.registry, "account-1", {.until_version = 2});
  f.Put("account-1", {2, f.schema(), at2->state});
  BOOST_TEST(f.Problem("account-1") == "");
}

BOOST_AUTO_TEST_CASE(each_problem_is_named) {
  Fixture f;
  f.Put("account-1", {3, f.schema(), R"({"owner":"ann","balance":1000000,"status":"open"})"});
  BOOST_TEST(f.Problem("account-1") == "state differs: snapshot {\"owner\":\"ann\",\"balance\":1000000,"
                                       "\"status\":\"open\"} replay " + f.state1);
  f.Put("account-1", {3, 99, f.state1});
  BOOST_TEST(f.Problem("account-1") ==
             fmt::format("state schema 99 but account declares {} (the snapshot is ignored)", f.schema()));
  f.Put("account-1", {10, f.schema(), f.state1});
  BOOST_TEST(f.Problem("account-1") == "snapshot is at version 10 but the stream has only 3");
  f.Put("note-1", {1, 1, "{}"});
  BOOST_TEST(f.Problem("note-1") == "no aggregate type owns this stream");
}

BOOST_AUTO_TEST_CASE(a_rebuild_writes_owned_live_streams_with_events) {
  Fixture f;
  auto all = StreamsToSnapshot(*f.store, f.registry, {.all = true});
  BOOST_REQUIRE(all.ok());
  BOOST_TEST(*all == (std::vector<std::string>{"account-1", "account-3"}));
  BOOST_TEST(*StreamsToSnapshot(*f.store, f.registry, {.category = "note"}) == std::vector<std::string>{});
  // One stream named is taken as given (RebuildSnapshot then says why not).
  BOOST_TEST(*StreamsToSnapshot(*f.store, f.registry, {.stream = "note-1"}) == std::vector<std::string>{"note-1"});
}

BOOST_AUTO_TEST_CASE(rebuild_replaces_a_wrong_snapshot_and_says_it_was_wrong) {
  Fixture f;
  std::string wrong = R"({"owner":"ann","balance":1000000,"status":"open"})";
  f.Put("account-1", {3, f.schema(), wrong});
  {
    // The live state starts from the wrong snapshot.
    auto rt = coretest::StartRuntime(f.store.get(), &f.registry, {.shards = 1, .snapshot_every = 0});
    auto r = RebuildSnapshot(*f.store, *rt, f.registry, "account-1");
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    BOOST_TEST(r->previous_differed);
    BOOST_TEST(r->live.state == wrong);
    BOOST_TEST(r->replayed.state == f.state1);
    BOOST_TEST(r->replayed.version == 3u);
    BOOST_TEST(r->state_schema == f.schema());
  }
  auto stored = f.store->GetSnapshot("account-1");
  BOOST_REQUIRE(stored.ok());
  BOOST_TEST(stored->version == 3u);
  BOOST_TEST(stored->state == f.state1);
  BOOST_TEST(stored->state_schema == f.schema());
  BOOST_TEST(f.Problem("account-1") == "");
  {
    auto rt = coretest::StartRuntime(f.store.get(), &f.registry, {.shards = 1, .snapshot_every = 0});
    auto again = RebuildSnapshot(*f.store, *rt, f.registry, "account-1");
    BOOST_REQUIRE(again.ok());
    BOOST_TEST(!again->previous_differed);
    auto unowned = RebuildSnapshot(*f.store, *rt, f.registry, "note-1");
    BOOST_TEST(unowned.status().code() == Code::kNotFound);
    BOOST_TEST(unowned.status().message() == "no aggregate type owns stream note-1");
  }
}

BOOST_AUTO_TEST_SUITE_END()
