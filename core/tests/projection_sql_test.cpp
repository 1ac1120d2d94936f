// SQL projection files: parsing (errors name file and line), parameter
// binding for every parameter kind, filters, failing statements, and the
// sample domains' projections.
#include <boost/test/unit_test.hpp>

#include "core/tests/projection_test_util.h"
#include "domains/sample_projections.h"

using namespace rill;
using namespace rill::projection_testing;

namespace {

Status ParseError(const std::string& text) {
  auto p = ParseSqlProjection(text, "p.sql");
  if (!p.ok()) return p.status();
  return ValidateSqlProjection(**p);
}

bool Contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(projection_sql)

BOOST_AUTO_TEST_CASE(parses_design_example) {
  auto p = ParseOrDie(R"(-- rill projection: cart_totals
-- category: cart            (optional filter; several allowed)
-- schema
CREATE TABLE IF NOT EXISTS totals(cart TEXT PRIMARY KEY, qty INTEGER NOT NULL);
-- on ItemAdded
INSERT INTO totals(cart, qty) VALUES (:stream_id, :data.qty)
  ON CONFLICT(cart) DO UPDATE SET qty = qty + excluded.qty;
-- on ItemRemoved
UPDATE totals SET qty = qty - :data.qty WHERE cart = :stream_id;
)");
  BOOST_TEST(p->name() == "cart_totals");
  BOOST_TEST(p->filter().categories == std::vector<std::string>{"cart"});
  BOOST_TEST((p->filter().types == std::vector<std::string>{"ItemAdded", "ItemRemoved"}));
  BOOST_TEST(p->handlers().size() == 2u);
  BOOST_TEST(p->handlers()[0].first_line == 6);
  BOOST_TEST(ValidateSqlProjection(*p).ok());
}

BOOST_AUTO_TEST_CASE(parse_errors_name_file_and_line) {
  struct Case {
    const char* text;
    const char* message;
  };
  // The whole message.
  for (const Case& c : std::vector<Case>{
           {"-- schema\nCREATE TABLE t(a);\n-- on A\nINSERT INTO t VALUES (1);\n",
            "p.sql:1: missing the '-- rill projection: NAME' header"},
           {"-- rill projection: x\n-- on A\nSELECT '\xff\xfe';\n", "p.sql:3: not valid UTF-8"},
           {"-- rill projection: x\n-- partition: category\n-- on A\nSELECT 1;\n",
            "p.sql:2: '-- partition: category': the only partition is 'stream'"},
           {"-- rill projection: x\n-- partition: stream\n-- partition: stream\n-- on A\nSELECT 1;\n",
            "p.sql:3: second '-- partition:' line (first on line 2)"},
       })
    BOOST_TEST(ParseError(c.text).message() == c.message);

  // Where and what, in a message that may say more.
  for (const Case& c : std::vector<Case>{
           {"-- rill projection: x\nSELECT 1;\n-- on A\nSELECT 1;\n", "p.sql:2: SQL before any section"},
           {"-- rill projection: x\n-- schema\nCREATE TABLE t(a);\n-- on A\n\nINSERT INTO t VALUES (\n  :data.a, :bogus);\n",
            "p.sql:7: unknown parameter :bogus"},
           {"-- rill projection: x\n-- schema\nCREATE TABLE t(a DEFAULT :stream);\n-- on A\nSELECT 1;\n",
            "p.sql:3: parameter :stream in the schema section"},
           {"-- rill projection: x\n-- schema\nCREATE TABLE t(a);\n-- on A\nINSERT INTO t VALUES (1);\nINSERT INTO nope VALUES (:position);\n",
            "p.sql:6: no such table: nope"},
           {"-- rill projection: x\n-- schema\nCREATE TABLE t(a);\nCREATE TABLE t(a);\n-- on A\nSELECT 1;\n",
            "p.sql:4: schema"},
           {"-- rill projection: x\n-- on A\n-- only a comment\n-- on B\nSELECT 1;\n",
            "p.sql:2: '-- on A' has no statement"},
           {"-- rill projection: bad/name\n-- on A\nSELECT 1;\n", "p.sql:1: projection name"},
           {"-- rill projection: x\n-- on A\nSELECT ?;\n", "p.sql:3: unsupported parameter '?'"},
           {"-- rill projection: x\n-- schema\nCREATE TABLE t(a);\n", "no '-- on EventType' section"},
           {"-- rill projection: x\n-- schema\nBEGIN;\n-- on A\nSELECT 1;\n",
            "p.sql:3: schema: BEGIN is not allowed in a projection"},
       }) {
    std::string message = ParseError(c.text).message();
    BOOST_TEST(Contains(message, c.message), "'" << c.message << "' not in '" << message << "'");
  }

  // A read model writes its own file only: no ATTACH, no DETACH.
  for (const char* text : {"-- rill projection: x\n-- schema\nATTACH DATABASE '/tmp/other.db' AS o;\n-- on A\nSELECT 1;\n",
                           "-- rill projection: x\n-- on A\nSELECT 1;\nDETACH DATABASE main;\n"}) {
    auto p = ParseSqlProjection(text, "p.sql");
    BOOST_REQUIRE(p.ok());
    Status v = ValidateSqlProjection(**p);
    BOOST_TEST(Contains(v.message(), "is not allowed in a projection: a read model is its own file"), v.message());
    BOOST_TEST((Contains(v.message(), "p.sql:3") || Contains(v.message(), "p.sql:4")), v.message());
  }
  BOOST_TEST(!std::filesystem::exists("/tmp/other.db"));

  // The runner owns the transactions (a handler that commits breaks
  // exactly-once), and rill's checkpoint table is not the file's to write.
  // Each text follows a header and a schema creating t.
  for (const Case& c : std::vector<Case>{
           {"-- on A\nINSERT INTO t VALUES (1);\nCOMMIT;\nBEGIN;\n",
            "p.sql:6: COMMIT is not allowed in a projection: rill commits each batch with its checkpoint"},
           {"-- on A\nROLLBACK;\n", "p.sql:5: ROLLBACK is not allowed in a projection"},
           {"-- on A\nEND TRANSACTION;\n", "p.sql:5: COMMIT is not allowed in a projection"},
           {"-- on A\nSAVEPOINT s1;\n", "p.sql:5: SAVEPOINT is not allowed in a projection"},
           {"-- on A\nRELEASE s1;\n", "p.sql:5: RELEASE is not allowed in a projection"},
           {"-- on A\nROLLBACK TO s1;\n", "p.sql:5: ROLLBACK TO is not allowed in a projection"},
           {"-- on A\nUPDATE _rill_projection SET position = 42;\n",
            "p.sql:5: _rill_projection is rill's table: a projection may not write it"},
           {"-- on A\nDELETE FROM _RILL_projection;\n", "p.sql:5: _rill_projection is rill's table"},
           {"-- on A\nSELECT fts3_tokenizer('simple');\n", "p.sql:5: fts3_tokenizer() is not allowed"},
       }) {
    auto p = ParseSqlProjection(std::string("-- rill projection: x\n-- schema\nCREATE TABLE IF NOT EXISTS t(a);\n") + c.text,
                                "p.sql");
    BOOST_REQUIRE(p.ok());
    Status v = ValidateSqlProjection(**p);
    BOOST_TEST(Contains(v.message(), c.message), v.message());
  }
}

BOOST_AUTO_TEST_CASE(partition_directive) {
  const char* text = "-- rill projection: x\n%s-- on A\nSELECT :stream;\n";
  char buf[200];
  std::snprintf(buf, sizeof buf, text, "");
  BOOST_TEST(!ParseOrDie(buf)->partitioned_by_stream());
  std::snprintf(buf, sizeof buf, text, "-- partition: stream   (rows keyed by :stream)\n");
  BOOST_TEST(ParseOrDie(buf)->partitioned_by_stream());
  std::snprintf(buf, sizeof buf, text, "--   Partition:   stream\n");
  BOOST_TEST(ParseOrDie(buf)->partitioned_by_stream());
  // The sample projections make the promise (their rows are keyed by stream).
  ProjectionRegistry reg;
  BOOST_REQUIRE(RegisterSampleProjections(&reg).ok());
  BOOST_TEST(reg.Find("balances")->projection->partitioned_by_stream());
  BOOST_TEST(reg.Find("stock")->projection->partitioned_by_stream());
}

// Grouped by stream, a chunk may apply a later event of one stream before an
// earlier, failing event of another: the run must still stop right before
// the first failing event by position, with the rows of exactly the events
// before it.
BOOST_AUTO_TEST_CASE(partitioned_failure_stops_before_first_failing_position) {
  TempDir dir;
  auto store = OpenStore(dir.store());
  std::vector<Appended> evs;
  // "z-1" (odd positions) sorts after "a-1" (even): its bad event at
  // position 5 comes after a-1's bad event at position 10 when grouped.
  for (int i = 1; i <= 12; ++i) {
    std::string stream = i % 2 ? "z-1" : "a-1";
    bool bad = i == 5 || i == 10;
    evs.push_back({stream, "Put", bad ? "{}" : "{\"v\":" + std::to_string(i) + "}"});
  }
  AppendAll(*store, evs);
  auto p = ParseOrDie(R"(-- rill projection: strict
-- partition: stream
-- schema
CREATE TABLE IF NOT EXISTS t(p INTEGER PRIMARY KEY, s TEXT NOT NULL, v INTEGER NOT NULL);
-- on Put
INSERT INTO t VALUES (:position, :stream, :data.v);
)",
                      "strict.sql");
  std::vector<uint64_t> applied_order;
  ProjectionRunOptions o;
  o.test_hook = [&](ProjectionPoint point, uint64_t pos) {
    if (point == ProjectionPoint::kApplied) applied_order.push_back(pos);
  };
  Status s = RunProjection(*store, *p, o);
  BOOST_REQUIRE(!s.ok());
  // Grouped: a-1's events came first, so position 10 failed first in the
  // chunk, yet the model stops right before position 5.
  BOOST_TEST((applied_order == std::vector<uint64_t>{2, 4, 6, 8}));
  BOOST_TEST(Contains(s.message(), "event position 5 (Put in z-1)"), s.message());
  BOOST_TEST(Contains(s.message(), "kept at position 4"), s.message());
  std::string path = ReadModelPath(store->dir(), "strict");
  BOOST_TEST(ReadReadModelState(path)->position == 4u);
  BOOST_TEST((Dump(path, "t") == std::vector<std::string>{"1|z-1|1", "2|a-1|2", "3|z-1|3", "4|a-1|4"}));
}

BOOST_AUTO_TEST_CASE(quoted_colons_and_comments_are_not_parameters) {
  auto p = ParseOrDie(
      "-- rill projection: q\n-- schema\nCREATE TABLE IF NOT EXISTS t(a TEXT, b TEXT);\n"
      "-- on A\n-- a remark :not_a_param\nINSERT INTO t VALUES ('12:30 :nope', :type); /* :also_not */\n");
  BOOST_TEST(ValidateSqlProjection(*p).ok());
}

// Every parameter kind, nested paths, JSON types and missing fields.
BOOST_AUTO_TEST_CASE(binds_every_parameter_kind) {
  TempDir dir;
  auto store = OpenStore(dir.store());
  AppendAll(*store, {{"other-1", "Seen", "{}"},
                     {"thing-x-1", "Seen",
                      R"({"n":5,"neg":-7,"real":1.5,"s":"str","t":true,"f":false,"nul":null,)"
                      R"("obj":{"k":1},"arr":[1,"two"],"a":{"b":{"c":"deep"}},"big":18446744073709551615})",
                      R"({"x":"mx","n":{"y":7}})"}});
  auto p = ParseOrDie(R"(-- rill projection: params
-- category: thing
-- schema
CREATE TABLE IF NOT EXISTS seen(
  stream, stream_id, category, version, position, time, type, id, schema,
  n, neg, real, s, t, f, nul, obj, arr, deep, missing, missing_nested, through_scalar,
  meta_x, meta_y, meta_missing, data_all, meta_all, big);
-- on Seen
INSERT INTO seen VALUES (:stream, :stream_id, :category, :version, :position, :time, :type, :id, :schema,
  :data.n, :data.neg, :data.real, :data.s, :data.t, :data.f, :data.nul, :data.obj, :data.arr,
  :data.a.b.c, :data.nothing, :data.a.nothing.deeper, :data.s.inner,
  :meta.x, :meta.n.y, :meta.zz, :data, :meta, :data.big);
)");
  BOOST_REQUIRE(RunProjection(*store, *p, {}).ok());
  std::string path = ReadModelPath(store->dir(), "params");
  BOOST_TEST(QueryInt(path, "SELECT count(*) FROM seen") == 1);  // category filter

  std::vector<Event> evs;
  BOOST_REQUIRE(store->ReadAll(2, 1, &evs).ok());
  const Event& e = evs.at(0);
  auto db = SqliteDb::Open(path, SqliteMode::kReadOnly);
  BOOST_REQUIRE(db.ok());
  auto st = (*db)->Prepare("SELECT typeof(n), typeof(real), typeof(t), typeof(nul), typeof(missing), "
                           "typeof(missing_nested), typeof(through_scalar), typeof(meta_missing), typeof(version), "
                           "stream, stream_id, category, version, position, time, type, id, schema, n, neg, real, s, "
                           "t, f, obj, arr, deep, meta_x, meta_y, data_all, meta_all, typeof(big) FROM seen");
  BOOST_REQUIRE(st.ok());
  BOOST_REQUIRE(*st->Step());
  auto text = [&](int c) { return std::string(st->ColumnText(c)); };
  BOOST_TEST(text(0) == "integer");
  BOOST_TEST(text(1) == "real");
  BOOST_TEST(text(2) == "integer");
  BOOST_TEST(text(3) == "null");
  BOOST_TEST(text(4) == "null");  // missing field -> NULL
  BOOST_TEST(text(5) == "null");  // missing nested -> NULL
  BOOST_TEST(text(6) == "null");  // path through a string -> NULL
  BOOST_TEST(text(7) == "null");
  BOOST_TEST(text(8) == "integer");
  BOOST_TEST(text(9) == "thing-x-1");
  BOOST_TEST(text(10) == "x-1");
  BOOST_TEST(text(11) == "thing");
  BOOST_TEST(st->ColumnInt(12) == 1);
  BOOST_TEST(st->ColumnInt(13) == 2);
  BOOST_TEST(text(14) == FormatTime(e.time_us));
  BOOST_TEST(text(15) == "Seen");
  BOOST_TEST(text(16) == e.id.ToString());
  BOOST_TEST(st->ColumnInt(17) == 1);
  BOOST_TEST(st->ColumnInt(18) == 5);
  BOOST_TEST(st->ColumnInt(19) == -7);
  BOOST_TEST(st->ColumnDouble(20) == 1.5);
  BOOST_TEST(text(21) == "str");
  BOOST_TEST(st->ColumnInt(22) == 1);
  BOOST_TEST(st->ColumnInt(23) == 0);
  BOOST_TEST(text(24) == R"({"k":1})");
  BOOST_TEST(text(25) == R"([1,"two"])");
  BOOST_TEST(text(26) == "deep");
  BOOST_TEST(text(27) == "mx");
  BOOST_TEST(st->ColumnInt(28) == 7);
  BOOST_TEST(text(29) == e.data);
  BOOST_TEST(text(30) == e.meta);
  BOOST_TEST(text(31) == "real");  // beyond int64: REAL
}

BOOST_AUTO_TEST_CASE(several_statements_per_type_and_type_filter) {
  TempDir dir;
  auto store = OpenStore(dir.store());
  AppendAll(*store, {{"c-1", "A", R"({"v":1})"}, {"c-1", "B", "{}"}, {"c-2", "A", R"({"v":2})"}, {"c-2", "Z", "{}"}});
  auto p = ParseOrDie(R"(-- rill projection: multi
-- schema
CREATE TABLE IF NOT EXISTS one(v);
CREATE TABLE IF NOT EXISTS two(v);
-- on A
INSERT INTO one VALUES (:data.v);
INSERT INTO two VALUES (:data.v * 10);
-- on B
INSERT INTO one VALUES ('b');
)");
  BOOST_TEST((p->filter().types == std::vector<std::string>{"A", "B"}));
  ProjectionProgress pr;
  BOOST_REQUIRE(RunProjection(*store, *p, {}, &pr).ok());
  std::string path = ReadModelPath(store->dir(), "multi");
  BOOST_TEST((Dump(path, "one") == std::vector<std::string>{"1", "2", "b"}));
  BOOST_TEST((Dump(path, "two") == std::vector<std::string>{"10", "20"}));
  BOOST_TEST(pr.events_applied == 3u);
  // Skipped events still move the checkpoint: lag 0.
  BOOST_TEST(ReadReadModelState(path)->position == 4u);
}

// A failing statement stops the projection, names the position and the
// statement, and leaves the model committed through the previous event.
BOOST_AUTO_TEST_CASE(failing_statement_stops_at_last_good_checkpoint) {
  TempDir dir;
  auto store = OpenStore(dir.store());
  std::vector<Appended> evs;
  for (int i = 1; i <= 30; ++i)
    evs.push_back({"item-" + std::to_string(i), "Put", i == 17 ? "{}" : "{\"v\":" + std::to_string(i) + "}"});
  AppendAll(*store, evs);
  auto p = ParseOrDie(R"(-- rill projection: strict
-- schema
CREATE TABLE IF NOT EXISTS t(p INTEGER PRIMARY KEY, v INTEGER NOT NULL);
-- on Put
INSERT INTO t VALUES (:position, :data.v);
)",
                      "strict.sql");
  ProjectionRunOptions o;
  o.max_batch_events = 1000;  // the failure is in the middle of one batch
  Status s = RunProjection(*store, *p, o);
  BOOST_REQUIRE(!s.ok());
  BOOST_TEST(Contains(s.message(), "event position 17"), s.message());
  BOOST_TEST(Contains(s.message(), "strict.sql:5: INSERT INTO t VALUES (:position, :data.v);"), s.message());
  BOOST_TEST(Contains(s.message(), "NOT NULL constraint failed"), s.message());
  BOOST_TEST(Contains(s.message(), "kept at position 16"), s.message());
  std::string path = ReadModelPath(store->dir(), "strict");
  auto st = ReadReadModelState(path);
  BOOST_TEST(st->position == 16u);
  BOOST_TEST(st->last_error == s.message());
  BOOST_TEST(QueryInt(path, "SELECT count(*) FROM t") == 16);
  BOOST_TEST(QueryInt(path, "SELECT max(p) FROM t") == 16);
  // Running again fails the same way: the bad event is never skipped.
  Status again = RunProjection(*store, *p, o);
  BOOST_TEST(!again.ok());
  BOOST_TEST(ReadReadModelState(path)->position == 16u);
}

BOOST_AUTO_TEST_CASE(sample_projections) {
  TempDir dir;
  auto store = OpenStore(dir.store());
  AppendAll(*store, {
                        {"account-1", "AccountOpened", R"({"owner":"ann"})"},
                        {"account-2", "AccountOpened", R"({"holder":{"name":"bob"},"currency":"EUR"})"},
                        {"account-1", "Deposited", R"({"amount":100})"},
                        {"account-1", "Withdrawn", R"({"amount":30})"},
                        {"transfer-t1", "TransferStarted", R"({"from":"account-1","to":"account-2","amount":50})"},
                        {"transfer-t1", "TransferDebited", R"({"amount":50})"},
                        {"transfer-t1", "TransferCompleted", "{}"},
                        {"transfer-t2", "TransferStarted", R"({"from":"account-2","to":"account-1","amount":9})"},
                        {"transfer-t2", "TransferFailed", R"({"reason":"insufficient funds"})"},
                        {"account-2", "AccountClosed", "{}"},
                        {"sku-1", "SkuCreated", R"({"stock":10})"},
                        {"sku-1", "Purchased", R"({"quantity":3,"user":"u1"})"},
                        {"sku-1", "Purchased", R"({"quantity":2,"user":"u2"})"},
                        {"sku-1", "Restocked", R"({"quantity":5})"},
                        {"sku-2", "SkuCreated", R"({"stock":1})"},
                    });
  ProjectionRegistry reg;
  BOOST_REQUIRE(RegisterSampleProjections(&reg).ok());
  BOOST_TEST(reg.entries().size() == 3u);
  BOOST_TEST(std::string(reg.Find("transfers")->projection->kind()) == "c++");
  BOOST_TEST(std::string(reg.Find("balances")->projection->kind()) == "sql");
  for (const auto& e : reg.entries()) BOOST_REQUIRE(RunProjection(*store, *e.projection, {}).ok());
  BOOST_TEST((Dump(ReadModelPath(store->dir(), "balances"), "balances") ==
              std::vector<std::string>{"account-1|ann|70|open", "account-2|bob|0|closed"}));
  BOOST_TEST((Dump(ReadModelPath(store->dir(), "stock"), "stock") ==
              std::vector<std::string>{"sku-1|10|5", "sku-2|1|0"}));
  auto transfers = Dump(ReadModelPath(store->dir(), "transfers"), "transfers");
  BOOST_REQUIRE(transfers.size() == 2u);
  BOOST_TEST(transfers[0].rfind("transfer-t1|account-1|account-2|50|completed|NULL|", 0) == 0u, transfers[0]);
  BOOST_TEST(transfers[1].rfind("transfer-t2|account-2|account-1|9|failed|insufficient funds|", 0) == 0u,
             transfers[1]);
}

BOOST_AUTO_TEST_SUITE_END()
