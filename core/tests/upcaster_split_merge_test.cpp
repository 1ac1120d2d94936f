// "split" and "merge" in migration files: the ops alone and chained, and a
// real store read through every path (ReadStream both ways, ReadAll paging,
// subscriptions, actor activation, replay, a projection, the CLI), a
// projection killed between the parts of a split event, and `upcast --apply`
// keeping positions and versions while the parts still come out on read.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/actor_runtime.h"
#include "core/process_manager.h"
#include "core/projection.h"
#include "core/projection_runner.h"
#include "core/sql_projection.h"
#include "core/upcast_apply.h"
#include "core/upcaster.h"
#include "core/tests/projection_test_util.h"
#include "core/tests/test_util.h"
#include "domains/sample_projections.h"
#include "readmodel/read_model_store.h"

using namespace rill;

namespace {

const std::string kMigrations = std::string(RILL_SOURCE_DIR) + "/testdata/upcast/split-merge";

std::string Step(const std::string& ops, const std::string& event = "T", int from = 1) {
  return "{\"event\":\"" + event + "\",\"from\":" + std::to_string(from) + ",\"to\":" + std::to_string(from + 1) +
         ",\"ops\":[" + ops + "]}";
}

void Load(Upcaster& u, const std::vector<std::string>& texts) {
  for (size_t i = 0; i < texts.size(); ++i) {
    Status s = u.LoadJson(texts[i], fmt::format("m{}.json", i));
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  }
}

// "position/version#part type schema data" ("#part" only for split events).
std::string Line(const Event& e) {
  std::string part = e.parts > 1 ? fmt::format("#{}", e.part) : "";
  return fmt::format("{}/{}{} {} {} {}", e.position, e.version, part, e.type, e.schema, e.data);
}
std::vector<std::string> Lines(const std::vector<Event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(Line(e));
  return out;
}

Event Stored(const std::string& stream, uint64_t version, const std::string& type, const std::string& data,
             uint64_t position = 0) {
  Event e;
  e.stream = stream;
  e.version = version;
  e.position = position ? position : version;
  e.type = type;
  e.data = data;
  e.id = Uuid::Generate();
  return e;
}

// Expand() over an in-memory stream (versions 1..n), as the store does it.
std::vector<std::string> ExpandStream(const Upcaster& u, const std::vector<Event>& stream) {
  StoreOptions::StoredEventReader read = [&](const std::string& name, uint64_t version, Event* out) -> Status {
    for (const auto& e : stream)
      if (e.stream == name && e.version == version) {
        *out = e;
        return Status::OK();
      }
    return Status::NotFound("none");
  };
  std::vector<Event> out;
  for (Event e : stream) {
    Status s = u.Expand(std::move(e), read, &out);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  }
  return Lines(out);
}

// The store the read-path tests share: account-1 has a split event,
// account-2 a merged pair, misc-* unpaired OwnerNamed events. Positions:
//   1 account-1@1 AccountOpened v1   2 account-1@2 DepositedWithFee (split)
//   3 account-1@3 Deposited          4 account-2@1 AccountOpened v1 (absorbed)
//   5 account-2@2 OwnerNamed (merged into 4)   6 account-2@3 Deposited
//   7 misc-1@1 OwnerNamed (first version)      8 misc-2@1 Other
//   9 misc-2@2 OwnerNamed (partner of another type)
void BuildStore(const std::string& db) {
  auto store = coretest::OpenStore(db);
  auto append = [&](const std::string& stream, const std::string& type, const std::string& data) {
    auto res = store->Append(coretest::MakeAppend(stream, type, data));
    BOOST_REQUIRE_MESSAGE(res.ok(), res.status().ToString());
  };
  append("account-1", "AccountOpened", R"({"owner":"Ann"})");
  append("account-1", "DepositedWithFee", R"({"amt":100,"fee":2})");
  append("account-1", "Deposited", R"({"amount":10})");
  append("account-2", "AccountOpened", R"({"owner":"?"})");
  append("account-2", "OwnerNamed", R"({"name":"Bob"})");
  append("account-2", "Deposited", R"({"amount":5})");
  append("misc-1", "OwnerNamed", R"({"name":"Eve"})");
  append("misc-2", "Other", R"({})");
  append("misc-2", "OwnerNamed", R"({"name":"Zed"})");
  std::filesystem::create_directories(MigrationsDir(db));
  for (const auto& f : std::filesystem::directory_iterator(kMigrations))
    std::filesystem::copy_file(f.path(), MigrationsDir(db) + "/" + f.path().filename().string());
}

const std::vector<std::string> kAll = {
    R"(1/1 AccountOpened 3 {"holder":{"name":"Ann"},"currency":"EUR"})",
    R"(2/2#0 Deposited 1 {"amount":100})",
    R"(2/2#1 Withdrawn 1 {"amount":2})",
    R"(3/3 Deposited 1 {"amount":10})",
    R"(5/2 AccountOpened 3 {"holder":{"name":"Bob"},"currency":"EUR"})",
    R"(6/3 Deposited 1 {"amount":5})",
    R"(7/1 OwnerNamed 2 {"holder":{"name":"Eve"}})",
    R"(8/1 Other 1 {})",
    R"(9/2 OwnerNamed 2 {"holder":{"name":"Zed"}})",
};

std::unique_ptr<EventStore> OpenUpcasting(const std::string& db) {
  StoreOptions o;
  Status s = InstallUpcasters(&o, db);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  BOOST_REQUIRE(o.read_expand);  // splits and merges need the one-to-many hook
  return coretest::OpenStore(db, o);
}

std::string Capture(const std::string& cmd) {
  int rc = -1;
  std::string out = coretest::Capture(cmd, &rc);
  BOOST_TEST(rc == 0, cmd);
  return out;
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Records what it handles of account-1 and deposits each Deposited/Withdrawn
// part's amount into account-9; fails once on part 1 of position 2.
class PartSaga final : public ProcessManager {
 public:
  std::string name() const override { return "parts"; }
  std::vector<std::string> categories() const override { return {"account"}; }
  Status Handle(const Event& e, ProcessContext& context) override {
    if (e.stream != "account-1") return Status::OK();
    handled.push_back(Line(e));
    if (e.position == 2 && e.part == 1 && !failed) {
      failed = true;
      return Status::IOError("injected failure");
    }
    if (e.type == "Deposited" || e.type == "Withdrawn") {
      std::string amount = e.data.substr(e.data.find(':') + 1);
      amount.pop_back();
      auto r = context.Send(0, coretest::Cmd("Deposit", "account-9", "{\"amount\":" + amount + "}"));
      if (!r.ok()) return r.status();
    }
    return Status::OK();
  }
  std::vector<std::string> handled;
  bool failed = false;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(upcaster_split_merge)

BOOST_AUTO_TEST_CASE(split_alone_gives_each_part_its_type_and_mapping) {
  Upcaster u;
  Load(u, {Step(R"({"op":"split","parts":[
                    {"ops":[{"op":"remove","path":"fee"}]},
                    {"type":"FeeCharged","ops":[{"op":"remove","path":"amount"},{"op":"rename","from":"fee","to":"amount"}]},
                    {"type":"Audit","schema":4}]})",
                "TransferMade")});
  BOOST_TEST(u.ExpandsOnRead());
  BOOST_TEST(u.CurrentSchema("TransferMade") == 2u);  // a part of the event's own type: schema `to`
  BOOST_TEST(u.CurrentSchema("FeeCharged") == 1u);    // another type: schema 1
  BOOST_TEST(u.CurrentSchema("Audit") == 4u);         // or as given
  Event e = Stored("transfer-1", 4, "TransferMade", R"({"amount":5,"fee":2})", 10);
  std::vector<Event> parts;
  BOOST_REQUIRE(u.Upcast(e, &parts).ok());
  BOOST_TEST(Lines(parts) == (std::vector<std::string>{R"(10/4#0 TransferMade 2 {"amount":5})",
                                                       R"(10/4#1 FeeCharged 1 {"amount":2})",
                                                       R"(10/4#2 Audit 4 {"amount":5,"fee":2})"}),
             boost::test_tools::per_element());
  BOOST_TEST((parts[0].id == e.id));
  BOOST_TEST(!(parts[1].id == e.id));
  BOOST_TEST(!(parts[2].id == parts[1].id));
  for (const auto& p : parts) BOOST_TEST(p.parts == 3u);
  // In place (what --apply writes): never split.
  Event in_place = e;
  BOOST_REQUIRE(u.UpcastInPlace(in_place).ok());
  BOOST_TEST(in_place.schema == 1u);
  BOOST_TEST(in_place.data == e.data);
}

BOOST_AUTO_TEST_CASE(split_chains_with_steps_before_and_each_parts_own_chain_after) {
  Upcaster u;
  Load(u, {Step(R"({"op":"rename","from":"amt","to":"amount"})", "T", 1),
           Step(R"({"op":"default","path":"currency","value":"EUR"},
                   {"op":"split","parts":[{"ops":[{"op":"remove","path":"fee"}]},
                                          {"type":"Fee","ops":[{"op":"nest","fields":["fee","currency"],"into":"charge"},
                                                               {"op":"remove","path":"amount"}]}]})",
                "T", 2),
           Step(R"({"op":"convert","path":"charge.fee","to":"string","factor":0.01})", "Fee", 1),
           Step(R"({"op":"retype","to":"T2"})", "T", 3)});
  Event e = Stored("s-1", 1, "T", R"({"amt":7,"fee":250})");
  // In place: 1 -> 2, then stops before the split.
  Event in_place = e;
  BOOST_REQUIRE(u.UpcastInPlace(in_place).ok());
  BOOST_TEST(in_place.schema == 2u);
  BOOST_TEST(in_place.data == R"({"amount":7,"fee":250})");
  BOOST_TEST(u.ChainOf("T", 1).size() == 2u);  // 1->2, then the split (what follows depends on the data)
  // On read: the whole chain; the T part goes on 3 -> 4 (retyped), the Fee part 1 -> 2.
  for (const Event& from : {e, in_place}) {
    std::vector<Event> parts;
    BOOST_REQUIRE(u.Upcast(from, &parts).ok());
    BOOST_TEST(Lines(parts) == (std::vector<std::string>{R"(1/1#0 T2 4 {"amount":7,"currency":"EUR"})",
                                                         R"(1/1#1 Fee 2 {"charge":{"fee":"2.5","currency":"EUR"}})"}),
               boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(merge_folds_an_event_into_the_one_before_it_in_its_stream) {
  Upcaster u;
  Load(u, {Step(R"({"op":"rename","from":"fee","to":"amount"},{"op":"merge","into":"TransferMade","as":"fee"})",
                "FeeCharged"),
           Step(R"({"op":"merge","into":"Renamed"})", "Note"),  // no "as": members copied over the partner's
           Step(R"({"op":"rename","from":"amt","to":"amount"})", "TransferMade")});
  BOOST_TEST(u.CurrentSchema("FeeCharged") == 2u);
  auto m = u.Migrations();
  BOOST_TEST(m[0].merge_into == "TransferMade");
  std::vector<Event> stream = {
      Stored("t-1", 1, "TransferMade", R"({"amt":5,"to":"b"})"),  // partner (upcast first): absorbed
      Stored("t-1", 2, "FeeCharged", R"({"fee":2})"),               // merged, at its own position
      Stored("t-1", 3, "FeeCharged", R"({"fee":3})"),               // before it a merging event: unpaired
      Stored("t-1", 4, "TransferMade", R"({"amt":6})"),             // next is not merging: stays
      Stored("t-1", 5, "Other", R"({})"),
      Stored("t-1", 6, "FeeCharged", R"({"fee":4})"),               // partner of another type: unpaired
      Stored("t-2", 1, "FeeCharged", R"({"fee":9})", 7),            // first version: unpaired
      Stored("n-1", 1, "Renamed", R"({"name":"a","keep":1})", 8),
      Stored("n-1", 2, "Note", R"({"name":"b","extra":true})", 9),
      Stored("n-1", 3, "TransferMade", R"({"amt":1})", 10),
      Stored("n-1", 4, "FeeCharged", R"({"fee":1})", 11),           // merged: partner v3 (absorbed)
  };
  BOOST_TEST(ExpandStream(u, stream) ==
                 (std::vector<std::string>{
                     R"(2/2 TransferMade 2 {"amount":5,"to":"b","fee":{"amount":2}})",
                     R"(3/3 FeeCharged 2 {"amount":3})",
                     R"(4/4 TransferMade 2 {"amount":6})",
                     R"(5/5 Other 1 {})",
                     R"(6/6 FeeCharged 2 {"amount":4})",
                     R"(7/1 FeeCharged 2 {"amount":9})",
                     R"(9/2 Renamed 1 {"name":"b","keep":1,"extra":true})",
                     R"(11/4 TransferMade 2 {"amount":1,"fee":{"amount":1}})",
                 }),
             boost::test_tools::per_element());
  // The merged event is the later stored one: its id, not the partner's.
  std::vector<Event> out;
  StoreOptions::StoredEventReader read = [&](const std::string&, uint64_t v, Event* o) -> Status {
    *o = stream[v - 1];
    return Status::OK();
  };
  BOOST_REQUIRE(u.Expand(Event(stream[1]), read, &out).ok());
  BOOST_REQUIRE(out.size() == 1u);
  BOOST_TEST((out[0].id == stream[1].id));
  // --apply leaves a merging event at the schema before the merge.
  Event b = stream[1];
  BOOST_REQUIRE(u.UpcastInPlace(b).ok());
  BOOST_TEST(b.schema == 1u);
}

BOOST_AUTO_TEST_CASE(every_store_read_path_sees_split_parts_and_merged_events) {
  coretest::TempDir tmp;
  std::string db = tmp.path() + "/db";
  BuildStore(db);
  auto store = OpenUpcasting(db);

  std::vector<Event> all;
  BOOST_REQUIRE(store->ReadAll(1, 1000, &all).ok());
  BOOST_TEST(Lines(all) == kAll, boost::test_tools::per_element());
  // Paging one stored event at a time: the parts of one event come together,
  // an absorbed event does not end a page.
  std::vector<Event> paged;
  for (uint64_t next = 1;;) {
    std::vector<Event> page;
    BOOST_REQUIRE(store->ReadAll(next, 1, &page).ok());
    if (page.empty()) break;
    for (const auto& e : page) BOOST_TEST(e.position == page[0].position);
    next = page.back().position + 1;
    paged.insert(paged.end(), page.begin(), page.end());
  }
  BOOST_TEST(Lines(paged) == kAll, boost::test_tools::per_element());
  // Subscriptions.
  auto sub = store->Subscribe(0);
  std::vector<Event> subscribed;
  for (int i = 0; i < 20; ++i) BOOST_REQUIRE(sub->Next(&subscribed, 2, std::chrono::milliseconds(0)).ok());
  BOOST_TEST(Lines(subscribed) == kAll, boost::test_tools::per_element());
  BOOST_TEST(sub->position() == 9u);
  // Streams, forward and backward (parts reversed too).
  std::vector<Event> fwd, bwd, acc2;
  BOOST_REQUIRE(store->ReadStream("account-1", Direction::kForward, 1, 100, &fwd).ok());
  BOOST_TEST(Lines(fwd) == std::vector<std::string>(kAll.begin(), kAll.begin() + 4), boost::test_tools::per_element());
  BOOST_REQUIRE(store->ReadStream("account-1", Direction::kBackward, 0, 100, &bwd).ok());
  BOOST_TEST(Lines(bwd) == std::vector<std::string>(kAll.rbegin() + 5, kAll.rend()), boost::test_tools::per_element());
  BOOST_REQUIRE(store->ReadStream("account-2", Direction::kForward, 1, 1, &acc2).ok());
  BOOST_TEST(Lines(acc2) == std::vector<std::string>{kAll[4]}, boost::test_tools::per_element());
  // Raw reads: exactly what is stored.
  std::vector<Event> raw;
  BOOST_REQUIRE(store->ReadAll(1, 1000, &raw, /*raw=*/true).ok());
  BOOST_REQUIRE(raw.size() == 9u);
  BOOST_TEST(Line(raw[1]) == R"(2/2 DepositedWithFee 1 {"amt":100,"fee":2})");

  // Aggregate activation and replay consume the parts and the merged event.
  auto registry = coretest::SampleDomains();
  {
    auto rt = coretest::StartRuntime(store.get(), &registry, {.shards = 1});
    auto s1 = rt->GetState("account-1");
    BOOST_REQUIRE_MESSAGE(s1.ok(), s1.status().ToString());
    BOOST_TEST(s1->version == 3u);
    BOOST_TEST(s1->state.find("\"balance\":108") != std::string::npos, s1->state);
    auto s2 = rt->GetState("account-2");
    BOOST_REQUIRE_MESSAGE(s2.ok(), s2.status().ToString());
    BOOST_TEST(s2->version == 3u);
    BOOST_TEST(s2->state.find("Bob") != std::string::npos, s2->state);
    BOOST_TEST(s2->state.find("\"balance\":5") != std::string::npos, s2->state);
    // Versions are the stored ones: the next command appends at version 4.
    auto r = rt->Execute(coretest::Cmd("Deposit", "account-1", R"({"amount":1})"));
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    BOOST_TEST(r->first_version == 4u);
  }
  auto replayed = ReplayState(*store, registry, "account-1");
  BOOST_REQUIRE(replayed.ok());
  BOOST_TEST(replayed->state.find("\"balance\":109") != std::string::npos, replayed->state);

  // A projection (the sample balances model).
  ProjectionRegistry reg;
  BOOST_REQUIRE(RegisterSampleProjections(&reg).ok());
  const auto* balances = reg.Find("balances");
  BOOST_REQUIRE(balances != nullptr);
  BOOST_REQUIRE(RunProjection(*store, *balances->projection, {}).ok());
  std::string model = ReadModelDir(db) + "/balances.sqlite";
  BOOST_TEST(projection_testing::QueryInt(model, "SELECT balance FROM balances WHERE account = 'account-1'") == 109);
  BOOST_TEST(projection_testing::QueryInt(model, "SELECT balance FROM balances WHERE account = 'account-2'") == 5);
  BOOST_TEST(projection_testing::Dump(model, "balances").size() == 2u);
}

BOOST_AUTO_TEST_CASE(projection_killed_between_the_parts_of_a_split_event_applies_each_part_once) {
  projection_testing::TempDir tmp;
  std::string db = tmp.store();
  BuildStore(db);
  const std::string sql = R"sql(-- rill projection: parts
-- category: account
-- schema
CREATE TABLE IF NOT EXISTS ledger(position INTEGER NOT NULL, part INTEGER NOT NULL, type TEXT NOT NULL, amount INTEGER,
                                  PRIMARY KEY (position, part)) WITHOUT ROWID;
-- on AccountOpened
INSERT INTO ledger VALUES (:position, :part, :type, NULL);
-- on Deposited
INSERT INTO ledger VALUES (:position, :part, :type, :data.amount);
-- on Withdrawn
INSERT INTO ledger VALUES (:position, :part, :type, -:data.amount);
)sql";
  auto projection = projection_testing::ParseOrDie(sql);
  std::string model = ReadModelDir(db) + "/parts.sqlite";
  auto checkpoint = [&]() -> uint64_t {
    if (!std::filesystem::exists(model)) return 0;
    return ReadReadModelState(model)->position;
  };
  // A child applies part 0 of position 2 and is killed before part 1; a
  // second child gets through part 1 and is killed before position 3.
  for (int kill_after : {1, 2}) {
    std::fflush(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
      StoreOptions o;
      if (!InstallUpcasters(&o, db).ok()) _exit(2);
      auto opened = EventStore::Open(db, o);
      if (!opened.ok()) _exit(2);
      ProjectionRunOptions ro;
      int seen = 0;
      ro.test_hook = [&](ProjectionPoint point, uint64_t position) {
        if (point == ProjectionPoint::kApplied && position == 2 && ++seen == kill_after) ::kill(::getpid(), SIGKILL);
      };
      Status s = RunProjection(**opened, *projection, ro);
      _exit(s.ok() ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    BOOST_TEST((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
    BOOST_TEST(checkpoint() < 2u);  // never inside the split event
    if (std::filesystem::exists(model))
      BOOST_TEST(projection_testing::QueryInt(model, "SELECT count(*) FROM ledger WHERE position >= 2") == 0);
  }
  // 3. Resumed: every part exactly once (a second apply would hit the key).
  {
    auto store = OpenUpcasting(db);
    Status s = RunProjection(*store, *projection, {});
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  }
  BOOST_TEST(projection_testing::Dump(model, "ledger") ==
                 (std::vector<std::string>{"1|0|AccountOpened|NULL", "2|0|Deposited|100", "2|1|Withdrawn|-2",
                                           "3|0|Deposited|10", "5|0|AccountOpened|NULL", "6|0|Deposited|5"}),
             boost::test_tools::per_element());
  BOOST_TEST(checkpoint() == 9u);
}

BOOST_AUTO_TEST_CASE(cli_reads_parts_and_apply_keeps_positions_and_versions) {
  coretest::TempDir tmp;
  std::string db = tmp.path() + "/db";
  BuildStore(db);
  std::string rill = std::string(RILL_BINARY) + " --db " + db + " ";
  std::string show = Capture(rill + "--json show account-1");
  BOOST_TEST(Count(show, "\n") == 4u, show);
  BOOST_TEST(show.find(R"("type":"Deposited","schema":1)") != std::string::npos, show);
  BOOST_TEST(show.find(R"("data":{"amount":2},"meta":{},"part":1,"parts":2})") != std::string::npos, show);
  std::string log = Capture(rill + "--json log");
  BOOST_TEST(Count(log, "\n") == kAll.size(), log);
  BOOST_TEST(Count(log, "\"part\":") == 2u, log);
  std::string exported = Capture(rill + "--json export");
  BOOST_TEST(exported == log);
  std::string raw_before = Capture(rill + "--json log --raw");
  BOOST_TEST(Count(raw_before, "\n") == 9u);
  std::string state = Capture(rill + "--json state account-2");
  BOOST_TEST(state.find("Bob") != std::string::npos, state);
  std::string list = Capture(rill + "--json migrations list");
  BOOST_TEST(list.find(R"("event":"DepositedWithFee","from":1,"to":2,"retype":"","source":)") != std::string::npos, list);
  BOOST_TEST(list.find(R"("splits":true,"merge_into":"","pending":1)") != std::string::npos, list);
  BOOST_TEST(list.find(R"("splits":false,"merge_into":"AccountOpened","pending":3)") != std::string::npos, list);
  std::string dry = Capture(rill + "upcast --dry-run");
  BOOST_TEST(dry.find("(split/merge on read only)") != std::string::npos, dry);

  Capture(rill + "--quiet upcast --apply --no-backup");
  std::string raw_after = Capture(rill + "--json log --raw");
  // Only the two AccountOpened v1 events were rewritten; positions, versions
  // and ids all stay, and the split/merging events are stored as they were.
  std::vector<std::string> before_lines, after_lines;
  auto split_lines = [](const std::string& text) {
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) out.push_back(text.substr(start, nl - start));
    return out;
  };
  before_lines = split_lines(raw_before);
  after_lines = split_lines(raw_after);
  BOOST_REQUIRE(before_lines.size() == after_lines.size());
  for (size_t i = 0; i < before_lines.size(); ++i) {
    auto head = [](const std::string& l) { return l.substr(0, l.find(",\"type\"")); };  // position, stream, version
    BOOST_TEST(head(before_lines[i]) == head(after_lines[i]));
    auto id = [](const std::string& l) { return l.substr(l.find("\"id\""), 44); };
    BOOST_TEST(id(before_lines[i]) == id(after_lines[i]));
    bool opened = before_lines[i].find("\"AccountOpened\"") != std::string::npos;
    BOOST_TEST((before_lines[i] == after_lines[i]) == !opened, after_lines[i]);
  }
  BOOST_TEST(Capture(rill + "--json log") == log);
  BOOST_TEST(Capture(rill + "--json migrations list").find(R"("splits":true,"merge_into":"","pending":1)") !=
             std::string::npos);
  // Rerun: nothing left to rewrite.
  std::string again = Capture(rill + "--json upcast --dry-run");
  BOOST_TEST(again.find("\"to_change\":0") != std::string::npos, again);
}

BOOST_AUTO_TEST_CASE(saga_checkpoints_whole_stored_events_and_a_redelivered_part_dedupes) {
  coretest::TempDir tmp;
  std::string db = tmp.path() + "/db";
  BuildStore(db);
  auto store = OpenUpcasting(db);
  DomainRegistry all;
  domains::RegisterAll(all);
  DomainRegistry registry;  // the bank aggregates and only this saga
  for (const auto* t : all.aggregates())
    registry.Add(std::shared_ptr<const AggregateType>(all.Find(t->name()), [](const AggregateType*) {}));
  auto saga = std::make_shared<PartSaga>();
  registry.AddProcessManager(saga);
  auto rt = coretest::StartRuntime(store.get(), &registry, {.shards = 1});
  auto opened = rt->Execute(coretest::Cmd("OpenAccount", "account-9", R"({"owner":"nine"})"));
  BOOST_REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());

  Status first = RunProcessManagers(*store, *rt, registry);
  BOOST_TEST(!first.ok());
  // Part 0 of position 2 was handled, part 1 failed: the checkpoint stays
  // before the split event.
  auto cp = store->GetCheckpoint(ProcessManagerCheckpoint("parts"));
  BOOST_REQUIRE(cp.ok());
  BOOST_TEST(*cp == 1u);
  Status second = RunProcessManagers(*store, *rt, registry);
  BOOST_REQUIRE_MESSAGE(second.ok(), second.ToString());
  BOOST_TEST(saga->handled == (std::vector<std::string>{kAll[0], kAll[1], kAll[2], kAll[1], kAll[2], kAll[3]}),
             boost::test_tools::per_element());
  // Part 0's deposit was sent twice with the same command id (derived from
  // the part's id): made once. 100 + 2 + 10.
  auto nine = rt->GetState("account-9");
  BOOST_REQUIRE(nine.ok());
  BOOST_TEST(nine->state.find("\"balance\":112") != std::string::npos, nine->state);
}

BOOST_AUTO_TEST_SUITE_END()
