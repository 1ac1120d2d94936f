// The projections an operator gets are the same whether old events are
// upcast on read or rewritten in place by `rill upcast --apply`.
#include <sqlite3.h>

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/projection.h"
#include "core/projection_runner.h"
#include "core/upcaster.h"
#include "domains/sample_projections.h"
#include "store/event_store.h"
#include "store/tests/test_util.h"

using namespace rill;

namespace {

std::unique_ptr<EventStore> OpenStore(const std::string& db, bool upcast) {
  StoreOptions o;
  if (upcast) BOOST_REQUIRE(InstallUpcasters(&o, db).ok());
  else o.read_transform = nullptr;
  auto r = EventStore::Open(db, o);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return std::move(r).value();
}

// Every row of the balances model, one line each, in key order.
std::string BalancesRows(const std::string& db) {
  sqlite3* conn = nullptr;
  std::string path = ReadModelDir(db) + "/balances.sqlite";
  BOOST_REQUIRE(sqlite3_open_v2(path.c_str(), &conn, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  BOOST_REQUIRE(sqlite3_prepare_v2(conn, "SELECT account, owner, balance, status FROM balances ORDER BY account", -1,
                                   &st, nullptr) == SQLITE_OK);
  std::string out;
  while (sqlite3_step(st) == SQLITE_ROW) {
    for (int c = 0; c < 4; ++c) {
      const unsigned char* t = sqlite3_column_text(st, c);
      out += t ? reinterpret_cast<const char*>(t) : "NULL";
      out += c == 3 ? "\n" : "|";
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(conn);
  return out;
}

const Projection& Balances(ProjectionRegistry& reg) {
  BOOST_REQUIRE(RegisterSampleProjections(&reg).ok());
  const auto* e = reg.Find("balances");
  BOOST_REQUIRE(e != nullptr);
  return *e->projection;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(upcast_projection)

BOOST_AUTO_TEST_CASE(projection_after_apply_equals_projection_from_upcast_on_read) {
  testing::TempDir tmp;
  std::string db = tmp.sub("db");
  std::string rill = RILL_BINARY;
  std::string fixture = std::string(RILL_SOURCE_DIR) + "/testdata/upcast/bank-v1.jsonl";
  BOOST_REQUIRE(std::system((rill + " --quiet --db " + db + " init").c_str()) == 0);
  BOOST_REQUIRE(std::system((rill + " --quiet --db " + db + " import " + fixture + " >/dev/null").c_str()) == 0);
  ProjectionRegistry reg;
  const Projection& balances = Balances(reg);

  // 1. v1 events stored, upcast on read.
  std::string before;
  {
    auto store = OpenStore(db, /*upcast=*/true);
    BOOST_REQUIRE(RunProjection(*store, balances, {}).ok());
    before = BalancesRows(db);
  }
  BOOST_TEST(before.find("account-1|Ann|") != std::string::npos, before);

  // 2. Rewritten in place, then replayed with the upcasters installed.
  BOOST_REQUIRE(std::system((rill + " --quiet --db " + db + " upcast --apply --no-backup >/dev/null").c_str()) == 0);
  {
    auto store = OpenStore(db, /*upcast=*/true);
    BOOST_REQUIRE(ReplayProjection(*store, balances, {}).ok());
  }
  BOOST_TEST(BalancesRows(db) == before);

  // 3. And with no upcaster at all: the stored events are current now.
  {
    auto store = OpenStore(db, /*upcast=*/false);
    std::vector<Event> raw;
    BOOST_REQUIRE(store->ReadAll(1, 1000, &raw, /*raw=*/true).ok());
    int opened = 0;
    for (const auto& e : raw) {
      if (e.type != "AccountOpened") continue;
      ++opened;
      BOOST_TEST(e.schema == 3u);
      BOOST_TEST(e.data.find("\"holder\"") != std::string::npos, e.data);
    }
    BOOST_TEST(opened == 3);
    BOOST_REQUIRE(ReplayProjection(*store, balances, {}).ok());
  }
  BOOST_TEST(BalancesRows(db) == before);
}

BOOST_AUTO_TEST_SUITE_END()
