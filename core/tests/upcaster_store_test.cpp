// Upcasting against real stores: the v1 bank fixture imports and reads as v3
// on every read path; --apply (library and the real binary) rewrites in place
// keeping positions, versions, ids and times; an apply killed with SIGKILL or
// stopped with SIGINT, then rerun, equals a clean apply.
#include <boost/test/unit_test.hpp>
#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/upcast_apply.h"
#include "core/upcaster.h"
#include "core/tests/test_util.h"
#include "store/event_store.h"

extern char** environ;

namespace rill {
namespace {

using coretest::TempDir;

std::unique_ptr<EventStore> Open(const std::string& dir, StoreOptions o = {}) {
  o.create_if_missing = true;
  auto r = EventStore::Open(dir, o);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return std::move(r).value();
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  BOOST_REQUIRE_MESSAGE(in, "cannot open " << path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

std::string Json(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return buf.GetString();
}

// The JSONL event line, field order as the CLI writes it (cli/cli.h WriteEventJson).
std::string EventLine(const Event& e) {
  return fmt::format(R"({{"position":{},"stream":"{}","version":{},"type":"{}","schema":{},"id":"{}","time":"{}","data":{},"meta":{}}})",
                     e.position, e.stream, e.version, e.type, e.schema, e.id.ToString(), FormatTime(e.time_us), e.data,
                     e.meta);
}

// Imports an export file as `rill import` does: same ids, times, schemas, and
// positions/versions checked.
void Import(EventStore& store, const std::string& path) {
  for (const std::string& line : ReadLines(path)) {
    rapidjson::Document d;
    d.Parse(line.c_str());
    BOOST_REQUIRE(!d.HasParseError());
    AppendRequest r;
    r.stream = d["stream"].GetString();
    r.expected = ExpectedVersion::Exact(d["version"].GetUint64() - 1);
    NewEvent e;
    e.type = d["type"].GetString();
    e.schema = d["schema"].GetUint();
    e.id = Uuid::Parse(d["id"].GetString());
    e.time_us = ParseTime(d["time"].GetString());
    e.data = Json(d["data"]);
    e.meta = Json(d["meta"]);
    r.events.push_back(std::move(e));
    auto res = store.Append(std::move(r));
    BOOST_REQUIRE_MESSAGE(res.ok(), res.status().ToString());
    BOOST_REQUIRE_EQUAL(res->last_position, d["position"].GetUint64());
  }
}

std::vector<std::string> AllLines(EventStore& store, bool raw) {
  std::vector<Event> events;
  Status s = store.ReadAll(1, 1u << 30, &events, raw);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  std::vector<std::string> lines;
  for (const auto& e : events) lines.push_back(EventLine(e));
  return lines;
}

const std::string kFixture = std::string(RILL_SOURCE_DIR) + "/testdata/upcast/bank-v1.jsonl";
const std::string kGolden = std::string(RILL_SOURCE_DIR) + "/testdata/upcast/bank-v3.jsonl";

// Runs the real binary; returns its exit status (or -signal).
int Spawn(const std::vector<std::string>& args, pid_t* pid_out = nullptr) {
  std::vector<char*> argv;
  std::string bin = RILL_BINARY;
  argv.push_back(bin.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int rc = posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  BOOST_REQUIRE_EQUAL(rc, 0);
  if (pid_out) {
    *pid_out = pid;
    return 0;
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

int Wait(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

using coretest::Capture;

// A store of `accounts` v1 accounts: AccountOpened v1 + Deposited each, with
// deterministic ids and times, so two builds are byte-for-byte comparable.
void BuildAccounts(const std::string& dir, size_t accounts) {
  StoreOptions o;
  o.durability = Durability::kAsync;
  auto store = Open(dir, o);
  std::vector<std::future<Result<AppendResult>>> pending;
  for (size_t i = 0; i < accounts; ++i) {
    AppendRequest r;
    r.stream = fmt::format("account-{}", i);
    r.expected = ExpectedVersion::NoStream();
    for (int k = 0; k < 2; ++k) {
      NewEvent e;
      e.type = k == 0 ? "AccountOpened" : "Deposited";
      e.data = k == 0 ? fmt::format(R"({{"owner":"owner {}"}})", i) : R"({"amount":10})";
      Uuid id;
      for (int b = 0; b < 8; ++b) id.bytes[b] = static_cast<uint8_t>(i >> (8 * b));
      id.bytes[15] = static_cast<uint8_t>(k + 1);
      e.id = id;
      e.time_us = 1551690000000000 + static_cast<int64_t>(i * 2 + k);
      r.events.push_back(std::move(e));
    }
    pending.push_back(store->AppendAsync(std::move(r)));
    if (pending.size() >= 4096) {
      for (auto& f : pending) BOOST_REQUIRE(f.get().ok());
      pending.clear();
    }
  }
  for (auto& f : pending) BOOST_REQUIRE(f.get().ok());
  BOOST_REQUIRE(store->Flush().ok());
}

uint32_t SchemaAt(const std::string& dir, uint64_t position) {
  auto store = Open(dir);
  std::vector<Event> e;
  BOOST_REQUIRE(store->ReadAll(position, 1, &e, /*raw=*/true).ok());
  BOOST_REQUIRE(!e.empty());
  return e[0].schema;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(upcaster_store)

BOOST_AUTO_TEST_CASE(v1_fixture_imports_and_reads_as_v3_on_every_path) {
  TempDir tmp;
  std::string db = tmp.sub("db");
  {
    auto store = Open(db);
    Import(*store, kFixture);
  }
  StoreOptions o;
  BOOST_REQUIRE(InstallUpcasters(&o, db).ok());
  auto store = Open(db, o);
  // Raw: exactly what was imported (round trip of the export).
  BOOST_TEST(AllLines(*store, /*raw=*/true) == ReadLines(kFixture), boost::test_tools::per_element());
  // Upcast: the golden v3 form.
  BOOST_TEST(AllLines(*store, /*raw=*/false) == ReadLines(kGolden), boost::test_tools::per_element());
  // Stream reads (forward and backward) and subscriptions too.
  std::vector<Event> events;
  BOOST_REQUIRE(store->ReadStream("account-3", Direction::kBackward, 0, 10, &events).ok());
  BOOST_REQUIRE_EQUAL(events.size(), 4u);
  BOOST_TEST(events.back().schema == 3u);
  BOOST_TEST(events.back().data == R"({"holder":{"name":"Åsa Ødegård"},"currency":"EUR"})");
  events.clear();
  BOOST_REQUIRE(store->ReadStream("account-3", Direction::kForward, 1, 1, &events, /*raw=*/true).ok());
  BOOST_TEST(events[0].data == R"({"owner":"Åsa Ødegård"})");
  auto sub = store->Subscribe(0);
  events.clear();
  BOOST_REQUIRE(sub->Next(&events, 100, std::chrono::milliseconds(0)).ok());
  BOOST_REQUIRE_EQUAL(events.size(), 9u);
  BOOST_TEST(events[2].data == R"({"holder":{"name":"Bob"},"currency":"EUR"})");
}

BOOST_AUTO_TEST_CASE(operator_migrations_in_the_store_directory_are_read) {
  TempDir tmp;
  std::string db = tmp.sub("db");
  {
    auto store = Open(db);
    Import(*store, kFixture);
  }
  std::filesystem::create_directories(MigrationsDir(db));
  std::ofstream(MigrationsDir(db) + "/0001-deposit-cents.json")
      << R"({"event":"Deposited","from":1,"to":2,"ops":[{"op":"convert","path":"amount","to":"number","factor":0.01}]})";
  StoreOptions o;
  BOOST_REQUIRE(InstallUpcasters(&o, db).ok());
  auto store = Open(db, o);
  std::vector<Event> events;
  BOOST_REQUIRE(store->ReadAll(2, 1, &events).ok());
  BOOST_TEST(events[0].schema == 2u);
  BOOST_TEST(events[0].data == R"({"amount":1})");
  // A broken operator file stops the open with file and line.
  std::ofstream(MigrationsDir(db) + "/0002-broken.json") << "{\n\"event\": \"X\",\n\"from\": 1, \"to\": 2, \"ops\": [{\"op\": \"explode\"}]}";
  StoreOptions bad;
  Status s = InstallUpcasters(&bad, db);
  BOOST_TEST(s.message().find("0002-broken.json:3: unknown op \"explode\"") != std::string::npos, s.message());
}

BOOST_AUTO_TEST_CASE(code_upcasters_registered_by_a_domain_are_installed) {
  AddCodeUpcaster("UpcastTestOnly", 1, 2,
                  [](UpcastEvent& ev, std::vector<UpcastEvent>*) {
                    ev.data.AddMember("seen", true, ev.data.GetAllocator());
                    return Status::OK();
                  },
                  "test-only");
  TempDir tmp;
  std::string db = tmp.sub("db");
  {
    auto store = Open(db);
    BOOST_REQUIRE(store->Append(coretest::MakeAppend("thing-1", "UpcastTestOnly", R"({"a":1})")).ok());
  }
  StoreOptions o;
  BOOST_REQUIRE(InstallUpcasters(&o, db).ok());
  auto store = Open(db, o);
  std::vector<Event> events;
  BOOST_REQUIRE(store->ReadStream("thing-1", Direction::kForward, 1, 1, &events).ok());
  BOOST_TEST(events[0].schema == 2u);
  BOOST_TEST(events[0].data == R"({"a":1,"seen":true})");
  auto loaded = LoadUpcasters(db);
  BOOST_REQUIRE(loaded.ok());
  bool listed = false;
  for (const auto& m : (*loaded)->Migrations()) listed |= m.source == "c++:test-only";
  BOOST_TEST(listed);
}

BOOST_AUTO_TEST_CASE(apply_rewrites_in_place_and_is_idempotent) {
  TempDir tmp;
  std::string db = tmp.sub("db");
  auto store = Open(db);
  Import(*store, kFixture);
  auto upcaster = LoadUpcasters(db);
  BOOST_REQUIRE(upcaster.ok());
  UpcastScan scan;
  BOOST_REQUIRE(ScanUpcast(*store, **upcaster, {}, &scan).ok());
  BOOST_TEST(scan.scanned == 9u);
  BOOST_TEST(scan.to_change == 3u);
  BOOST_REQUIRE_EQUAL(scan.groups.size(), 1u);
  BOOST_TEST(scan.groups[0].to_schema == 3u);
  BOOST_TEST(scan.groups[0].sample_after.data == R"({"holder":{"name":"Ann"},"currency":"EUR"})");
  // Pending per migration (other tests may have registered C++ steps too).
  auto migrations = (*upcaster)->Migrations();
  BOOST_REQUIRE_EQUAL(scan.pending.size(), migrations.size());
  auto pending_of = [&](const std::string& file) {
    for (size_t i = 0; i < migrations.size(); ++i)
      if (migrations[i].source == "migrations/bank/" + file) return scan.pending[i];
    BOOST_FAIL("no migration " << file);
    return uint64_t{0};
  };
  BOOST_TEST(pending_of("0001-account-opened-owner-object.json") == 3u);
  BOOST_TEST(pending_of("0002-account-opened-holder.json") == 3u);

  // What every consumer (projection, saga, aggregate) reads before --apply...
  StoreOptions hooked;
  BOOST_REQUIRE(InstallUpcasters(&hooked, db).ok());
  std::vector<std::string> read_before;
  {
    auto reader = Open(db, hooked);
    read_before = AllLines(*reader, /*raw=*/false);
  }

  int backups = 0;
  UpcastRunOptions run;
  run.batch_events = 2;  // several transactions
  run.before_first_rewrite = [&] {
    ++backups;
    return Status::OK();
  };
  UpcastApplyReport report;
  BOOST_REQUIRE(ApplyUpcast(*store, **upcaster, run, &report).ok());
  BOOST_TEST(report.rewritten == 3u);
  BOOST_TEST(backups == 1);
  BOOST_TEST(AllLines(*store, /*raw=*/true) == ReadLines(kGolden), boost::test_tools::per_element());
  {
    // ...is exactly what it reads after, so read models built either way agree.
    auto reader = Open(db, hooked);
    BOOST_TEST(AllLines(*reader, /*raw=*/false) == read_before, boost::test_tools::per_element());
    auto sub = reader->Subscribe(0);
    std::vector<Event> events;
    BOOST_REQUIRE(sub->Next(&events, 100, std::chrono::milliseconds(0)).ok());
    std::vector<std::string> lines;
    for (const auto& e : events) lines.push_back(EventLine(e));
    BOOST_TEST(lines == read_before, boost::test_tools::per_element());
  }
  // Nothing left: the rerun rewrites nothing and makes no backup.
  BOOST_REQUIRE(ApplyUpcast(*store, **upcaster, run, &report).ok());
  BOOST_TEST(report.rewritten == 0u);
  BOOST_TEST(backups == 1);
  BOOST_REQUIRE(ScanUpcast(*store, **upcaster, {}, &scan).ok());
  BOOST_TEST(scan.to_change == 0u);
  BOOST_TEST(pending_of("0001-account-opened-owner-object.json") == 0u);
  BOOST_TEST(pending_of("0002-account-opened-holder.json") == 0u);
  CheckReport check;
  BOOST_REQUIRE(store->Check(&check).ok());
  BOOST_TEST(check.problems.empty());
  // Stream reads agree with the rewritten log.
  std::vector<Event> events;
  BOOST_REQUIRE(store->ReadStream("account-2", Direction::kForward, 1, 10, &events, true).ok());
  BOOST_TEST(events[0].schema == 3u);
}

BOOST_AUTO_TEST_CASE(cli_dry_run_apply_and_migrations_list) {
  TempDir tmp;
  std::string db = tmp.sub("db");
  {
    auto store = Open(db);
    Import(*store, kFixture);
  }
  std::string rill = fmt::format("{} --db {} --json ", RILL_BINARY, db);
  std::string list = Capture(rill + "migrations list");
  BOOST_TEST(list.find(R"({"event":"AccountOpened","from":1,"to":2,"retype":"","source":"migrations/bank/0001-account-opened-owner-object.json","splits":false,"merge_into":"","pending":3,"domain_schema":3,"current_schema":3})") != std::string::npos, list);
  std::string dry = Capture(rill + "upcast --dry-run");
  BOOST_TEST(dry.find(R"({"type":"AccountOpened","schema":1,"to_type":"AccountOpened","to_schema":3,"events":3,"split_on_read":false,"sample":{"position":1,"stream":"account-1","version":1,"before":{"owner":"Ann"},"after":{"holder":{"name":"Ann"},"currency":"EUR"}}})") != std::string::npos, dry);
  BOOST_TEST(dry.find(R"({"dry_run":true,"scanned":9,"to_change":3})") != std::string::npos, dry);
  {  // the dry run wrote nothing
    auto store = Open(db);
    BOOST_TEST(AllLines(*store, true) == ReadLines(kFixture), boost::test_tools::per_element());
  }
  std::string backup = tmp.sub("backup");
  std::string applied = Capture(rill + "upcast --apply --backup " + backup);
  BOOST_TEST(applied.find(R"("applied":true,"scanned":9,"rewritten":3)") != std::string::npos, applied);
  {
    auto store = Open(db);
    BOOST_TEST(AllLines(*store, true) == ReadLines(kGolden), boost::test_tools::per_element());
    auto before = Open(backup);  // the backup holds the store as it was
    BOOST_TEST(AllLines(*before, true) == ReadLines(kFixture), boost::test_tools::per_element());
  }
  std::string again = Capture(rill + "upcast --apply");
  BOOST_TEST(again.find(R"("rewritten":0)") != std::string::npos, again);
  BOOST_TEST(again.find("backup") == std::string::npos, again);
  list = Capture(rill + "migrations list");
  BOOST_TEST(list.find(R"("pending":3)") == std::string::npos, list);
  BOOST_TEST(Spawn({"--db", db, "upcast", "--dry-run", "--apply"}) == 2);
  BOOST_TEST(Spawn({"--db", db, "upcast", "--migrations", tmp.sub("nope")}) == 5);
  BOOST_TEST(Spawn({"--db", db, "upcast", "--migrations", std::string(RILL_SOURCE_DIR) + "/testdata/bad/migrations/duplicate"}) == 2);
}

BOOST_AUTO_TEST_CASE(apply_killed_then_rerun_equals_clean_apply) {
  TempDir tmp;
  const size_t kAccounts = 60000;  // 120k events, 600 rewrite transactions of 100
  std::string killed = tmp.sub("killed"), clean = tmp.sub("clean");
  BuildAccounts(killed, kAccounts);
  BuildAccounts(clean, kAccounts);
  BOOST_TEST(Spawn({"--db", clean, "upcast", "--apply", "--no-backup"}) == 0);

  // Kill -9 once the first batch is durable; the last event must still be v1
  // (otherwise the run was not interrupted and the test proves nothing).
  pid_t pid;
  Spawn({"--db", killed, "upcast", "--apply", "--no-backup", "--batch", "200"}, &pid);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (SchemaAt(killed, 1) != 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  kill(pid, SIGKILL);
  BOOST_TEST(Wait(pid) == -SIGKILL);
  BOOST_TEST(SchemaAt(killed, 1) == 3u);
  BOOST_TEST(SchemaAt(killed, 2 * kAccounts - 1) == 1u);

  // A SIGINT stops it cleanly with exit 130, batches whole. Sent once the
  // run has made progress (so its handler is surely installed).
  uint64_t first_v1 = 0;
  {
    auto store = Open(killed);
    std::vector<Event> all;
    BOOST_REQUIRE(store->ReadAll(1, 1u << 30, &all, true).ok());
    for (const auto& e : all)
      if (e.type == "AccountOpened" && e.schema == 1) {
        first_v1 = e.position;
        break;
      }
  }
  BOOST_REQUIRE(first_v1 > 1);
  Spawn({"--db", killed, "upcast", "--apply", "--no-backup", "--batch", "200"}, &pid);
  while (SchemaAt(killed, first_v1) != 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  kill(pid, SIGINT);
  int rc = Wait(pid);
  BOOST_TEST((rc == 130 || rc == 0), "exit " << rc);

  BOOST_TEST(Spawn({"--db", killed, "upcast", "--apply", "--no-backup"}) == 0);
  auto a = Open(killed);
  auto b = Open(clean);
  std::vector<std::string> la = AllLines(*a, true), lb = AllLines(*b, true);
  BOOST_REQUIRE_EQUAL(la.size(), 2 * kAccounts);
  BOOST_TEST((la == lb));
  BOOST_TEST(la[0].find(R"("schema":3,)") != std::string::npos);
  CheckReport check;
  BOOST_REQUIRE(a->Check(&check).ok());
  BOOST_TEST(check.problems.empty());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace rill
