// The read-model store on its own: real SQLite files in temp directories and
// private in-memory databases, no event store and no projection runner.
#include <boost/test/unit_test.hpp>
#include <sqlite3.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <stdexcept>
#include <string>

#include "readmodel/read_model_store.h"
#include "store/event_store.h"

namespace rill {
inline std::ostream& operator<<(std::ostream& o, Code c) { return o << static_cast<int>(c); }
}  // namespace rill

namespace {

using namespace rill;
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/rill-readmodel-test-XXXXXX";
    const char* p = mkdtemp(tmpl);
    if (p == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::unique_ptr<SqliteDb> OpenOrDie(const std::string& path, SqliteMode mode) {
  auto db = SqliteDb::Open(path, mode);
  if (!db.ok()) throw std::runtime_error(db.status().ToString());
  return std::move(db).value();
}

// The single value `sql` selects, as text ("" for none).
std::string ValueOf(SqliteDb& db, const std::string& sql) {
  auto st = db.Prepare(sql);
  if (!st.ok()) throw std::runtime_error(st.status().ToString());
  auto row = st->Step();
  if (!row.ok()) throw std::runtime_error(row.status().ToString());
  return *row ? std::string(st->ColumnText(0)) : std::string();
}

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(read_model_store)

BOOST_AUTO_TEST_CASE(sqlite_codes_map_to_the_status_callers_act_on) {
  BOOST_TEST(SqliteStatus(SQLITE_OK, "x").ok());
  BOOST_TEST(SqliteStatus(SQLITE_ROW, "x").ok());
  BOOST_TEST(SqliteStatus(SQLITE_DONE, "x").ok());
  BOOST_TEST(SqliteStatus(SQLITE_BUSY, "x").code() == Code::kBusy);
  BOOST_TEST(SqliteStatus(SQLITE_LOCKED, "x").code() == Code::kBusy);
  BOOST_TEST(SqliteStatus(SQLITE_CORRUPT, "x").code() == Code::kCorruption);
  BOOST_TEST(SqliteStatus(SQLITE_NOTADB, "x").code() == Code::kCorruption);
  for (int rc : {SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_READONLY, SQLITE_NOMEM})
    BOOST_TEST(SqliteStatus(rc, "x").code() == Code::kIOError);
  BOOST_TEST(SqliteStatus(SQLITE_INTERRUPT, "x").code() == Code::kInterrupted);
  // Extended codes (connections run with extended result codes) keep their class.
  BOOST_TEST(SqliteStatus(SQLITE_IOERR_FSYNC, "x").code() == Code::kIOError);
  BOOST_TEST(SqliteStatus(SQLITE_BUSY_SNAPSHOT, "x").code() == Code::kBusy);
  // SQL errors, constraints, type mismatches: the caller's input was wrong.
  BOOST_TEST(SqliteStatus(SQLITE_ERROR, "x").code() == Code::kInvalidArgument);
  BOOST_TEST(SqliteStatus(SQLITE_CONSTRAINT_UNIQUE, "x").code() == Code::kInvalidArgument);
  BOOST_TEST(SqliteStatus(SQLITE_BUSY, "who is busy").message() == "who is busy");
}

BOOST_AUTO_TEST_CASE(read_write_open_creates_the_directory_and_uses_wal) {
  TempDir tmp;
  std::string path = tmp.sub("a/b/model.sqlite");
  auto db = OpenOrDie(path, SqliteMode::kReadWrite);
  BOOST_TEST(fs::exists(path));
  BOOST_TEST(db->path() == path);
  BOOST_TEST(ValueOf(*db, "PRAGMA journal_mode") == "wal");
  BOOST_TEST(ValueOf(*db, "PRAGMA synchronous") == "1");  // NORMAL
}

BOOST_AUTO_TEST_CASE(read_only_connection_cannot_write_nor_create) {
  TempDir tmp;
  std::string path = tmp.sub("model.sqlite");
  {
    auto rw = OpenOrDie(path, SqliteMode::kReadWrite);
    BOOST_REQUIRE(rw->Exec("CREATE TABLE t(x); INSERT INTO t VALUES (1)").ok());
  }
  auto ro = OpenOrDie(path, SqliteMode::kReadOnly);
  BOOST_TEST(ValueOf(*ro, "SELECT count(*) FROM t") == "1");
  Status s = ro->Exec("INSERT INTO t VALUES (2)");
  BOOST_TEST(s.code() == Code::kIOError);
  BOOST_TEST(Contains(s.message(), path));
  BOOST_TEST(ValueOf(*ro, "SELECT count(*) FROM t") == "1");

  std::string missing = tmp.sub("missing.sqlite");
  auto none = SqliteDb::Open(missing, SqliteMode::kReadOnly);
  BOOST_TEST(none.status().code() == Code::kIOError);
  BOOST_TEST(Contains(none.status().message(), "cannot open " + missing));
  BOOST_TEST(!fs::exists(missing));
}

BOOST_AUTO_TEST_CASE(statements_bind_run_and_read_columns) {
  auto db = OpenOrDie("", SqliteMode::kMemory);
  BOOST_REQUIRE(db->Exec("CREATE TABLE t(i INTEGER, r REAL, s TEXT, n)").ok());
  auto ins = db->Prepare("INSERT INTO t VALUES (:i, ?2, ?3, ?4)");
  BOOST_REQUIRE(ins.ok());
  BOOST_TEST(ins->ParameterCount() == 4);
  BOOST_TEST(std::string(ins->ParameterName(1)) == ":i");
  BOOST_TEST(std::string(ins->ParameterName(2)) == "?2");
  BOOST_TEST(!ins->ReadOnly());
  BOOST_REQUIRE(ins->BindInt(1, -7).ok());
  BOOST_REQUIRE(ins->BindDouble(2, 2.5).ok());
  BOOST_REQUIRE(ins->BindText(3, std::string_view("héllo, world").substr(0, 6)).ok());
  BOOST_REQUIRE(ins->BindNull(4).ok());
  BOOST_REQUIRE(ins->Run().ok());
  BOOST_TEST(db->Changes() == 1);
  BOOST_REQUIRE(ins->Run().ok());  // Run keeps the bindings
  ins->Reset();                     // Reset clears them: every column NULL
  BOOST_REQUIRE(ins->Run().ok());
  BOOST_TEST(ins->BindInt(9, 1).code() == Code::kInvalidArgument);  // SQLITE_RANGE

  auto sel = db->Prepare("SELECT i, r, s, n FROM t ORDER BY rowid");
  BOOST_REQUIRE(sel.ok());
  BOOST_TEST(sel->ReadOnly());
  BOOST_TEST(std::string(sel->sql()) == "SELECT i, r, s, n FROM t ORDER BY rowid");
  BOOST_TEST(sel->ColumnCount() == 4);
  BOOST_TEST(std::string(sel->ColumnName(2)) == "s");
  for (int row = 0; row < 2; ++row) {
    BOOST_REQUIRE(*sel->Step());
    BOOST_TEST(sel->ColumnType(0) == SQLITE_INTEGER);
    BOOST_TEST(sel->ColumnInt(0) == -7);
    BOOST_TEST(sel->ColumnType(1) == SQLITE_FLOAT);
    BOOST_TEST(sel->ColumnDouble(1) == 2.5);
    BOOST_TEST(sel->ColumnType(2) == SQLITE_TEXT);
    BOOST_TEST(sel->ColumnText(2) == "h\xc3\xa9llo");
    BOOST_TEST(sel->ColumnType(3) == SQLITE_NULL);
  }
  BOOST_REQUIRE(*sel->Step());
  for (int c = 0; c < 4; ++c) BOOST_TEST(sel->ColumnType(c) == SQLITE_NULL);
  BOOST_TEST(sel->ColumnText(2).empty());
  BOOST_TEST(!*sel->Step());
}

BOOST_AUTO_TEST_CASE(a_failing_step_names_the_error_and_the_statement_runs_again) {
  auto db = OpenOrDie("", SqliteMode::kMemory);
  BOOST_REQUIRE(db->Exec("CREATE TABLE t(k TEXT PRIMARY KEY)").ok());
  auto ins = db->Prepare("INSERT INTO t VALUES (?1)");
  BOOST_REQUIRE(ins.ok());
  BOOST_REQUIRE(ins->BindText(1, "a").ok());
  BOOST_REQUIRE(ins->Run().ok());
  BOOST_REQUIRE(ins->BindText(1, "a").ok());
  Status dup = ins->Run();
  BOOST_TEST(dup.code() == Code::kInvalidArgument);
  BOOST_TEST(Contains(dup.message(), "UNIQUE"));
  BOOST_REQUIRE(ins->BindText(1, "b").ok());
  BOOST_TEST(ins->Run().ok());
  BOOST_TEST(ValueOf(*db, "SELECT group_concat(k) FROM t") == "a,b");
}

BOOST_AUTO_TEST_CASE(statements_move_and_the_moved_from_one_is_empty) {
  auto db = OpenOrDie("", SqliteMode::kMemory);
  auto a = db->Prepare("SELECT 1");
  auto b = db->Prepare("SELECT 2");
  BOOST_REQUIRE(a.ok() && b.ok());
  SqliteStatement first = std::move(a).value();
  SqliteStatement second = std::move(b).value();
  second = std::move(first);  // finalizes "SELECT 2"
  BOOST_TEST(!first.valid());  // moved from: empty, and its destructor finalizes nothing
  BOOST_REQUIRE(second.valid());
  BOOST_REQUIRE(*second.Step());
  BOOST_TEST(second.ColumnInt(0) == 1);
}

BOOST_AUTO_TEST_CASE(prepare_walks_a_text_of_several_statements) {
  auto db = OpenOrDie("", SqliteMode::kMemory);
  std::string text = "SELECT 1; SELECT 'two';\n  -- only a comment\n";
  size_t at = 0;
  std::vector<std::string> values;
  for (;;) {
    size_t consumed = 0;
    auto st = db->Prepare(std::string_view(text).substr(at), &consumed);
    BOOST_REQUIRE(st.ok());
    at += consumed;
    if (!st->valid()) break;
    BOOST_REQUIRE(*st->Step());
    values.emplace_back(st->ColumnText(0));
  }
  BOOST_TEST(values == (std::vector<std::string>{"1", "two"}), boost::test_tools::per_element());
  BOOST_TEST(at == text.size());
}

BOOST_AUTO_TEST_CASE(a_statement_that_does_not_prepare_gives_its_error_offset) {
  auto db = OpenOrDie("", SqliteMode::kMemory);
  BOOST_REQUIRE(db->Exec("CREATE TABLE t(x)").ok());
  std::string sql = "SELECT x,\n  nosuchcolumn FROM t";
  auto st = db->Prepare(sql);
  BOOST_TEST(st.status().code() == Code::kInvalidArgument);
  BOOST_TEST(Contains(st.status().message(), "nosuchcolumn"));
  BOOST_TEST(db->LastErrorOffset() == static_cast<int>(sql.find("nosuchcolumn")));
}

BOOST_AUTO_TEST_CASE(cached_statements_are_prepared_once_per_connection) {
  auto db = OpenOrDie("", SqliteMode::kMemory);
  auto a = db->Cached("SELECT 40 + 2");
  auto b = db->Cached("SELECT 40 + 2");
  BOOST_REQUIRE(a.ok() && b.ok());
  BOOST_TEST(*a == *b);
  auto c = db->Cached("SELECT 43");
  BOOST_REQUIRE(c.ok());
  BOOST_TEST(*a != *c);
  BOOST_REQUIRE(*(*a)->Step());
  BOOST_TEST((*a)->ColumnInt(0) == 42);

  BOOST_TEST(db->Cached("  -- nothing\n").status().message() == "empty statement");
  auto bad = db->Cached("SELEC 1");
  BOOST_TEST(bad.status().code() == Code::kInvalidArgument);
  BOOST_TEST(bad.status().message().rfind("SELEC 1: ", 0) == 0);  // names the statement
}

BOOST_AUTO_TEST_CASE(transactions_commit_roll_back_and_roll_back_is_harmless_outside_one) {
  TempDir tmp;
  std::string path = tmp.sub("model.sqlite");
  auto db = OpenOrDie(path, SqliteMode::kReadWrite);
  BOOST_REQUIRE(db->Exec("CREATE TABLE t(x)").ok());
  BOOST_TEST(!db->InTransaction());
  BOOST_TEST(db->Rollback().ok());

  BOOST_REQUIRE(db->Begin().ok());
  BOOST_TEST(db->InTransaction());
  BOOST_REQUIRE(db->Exec("INSERT INTO t VALUES (1)").ok());
  BOOST_REQUIRE(db->Rollback().ok());
  BOOST_TEST(!db->InTransaction());
  BOOST_TEST(ValueOf(*db, "SELECT count(*) FROM t") == "0");

  auto other = SqliteDb::Open(path, SqliteMode::kReadWrite, /*busy_timeout_ms=*/0);
  BOOST_REQUIRE(other.ok());
  BOOST_REQUIRE(db->BeginImmediate().ok());
  // The write lock is taken at BEGIN IMMEDIATE: another writer is busy now.
  BOOST_TEST((*other)->BeginImmediate().code() == Code::kBusy);
  BOOST_REQUIRE(db->Exec("INSERT INTO t VALUES (2)").ok());
  BOOST_TEST(ValueOf(**other, "SELECT count(*) FROM t") == "0");  // WAL: not yet visible
  BOOST_REQUIRE(db->Commit().ok());
  BOOST_TEST(ValueOf(**other, "SELECT count(*) FROM t") == "1");
}

BOOST_AUTO_TEST_CASE(replace_content_swaps_the_whole_database_under_a_reader) {
  TempDir tmp;
  std::string path = tmp.sub("model.sqlite");
  auto target = OpenOrDie(path, SqliteMode::kReadWrite);
  BOOST_REQUIRE(target->Exec("CREATE TABLE old(x); INSERT INTO old VALUES (1), (2)").ok());
  auto reader = OpenOrDie(path, SqliteMode::kReadOnly);
  BOOST_REQUIRE(reader->Begin().ok());
  BOOST_TEST(ValueOf(*reader, "SELECT count(*) FROM old") == "2");  // holds its snapshot

  auto fresh = OpenOrDie("", SqliteMode::kMemory);
  BOOST_REQUIRE(fresh->Exec("CREATE TABLE new(y); INSERT INTO new VALUES ('a')").ok());
  BOOST_REQUIRE(target->ReplaceContentWith(*fresh).ok());

  BOOST_TEST(ValueOf(*target, "SELECT count(*) FROM sqlite_schema WHERE name = 'old'") == "0");
  BOOST_TEST(ValueOf(*target, "SELECT y FROM new") == "a");
  BOOST_TEST(ValueOf(*reader, "SELECT count(*) FROM old") == "2");  // still the old content
  BOOST_REQUIRE(reader->Commit().ok());
  BOOST_TEST(ValueOf(*reader, "SELECT y FROM new") == "a");
}

BOOST_AUTO_TEST_CASE(query_rules_refuse_attach_and_pointer_or_extension_functions) {
  auto db = OpenOrDie("", SqliteMode::kMemory);
  db->RestrictUserSql(UserSql::kQuery);
  auto attach = db->Prepare("ATTACH DATABASE '/tmp/x.sqlite' AS x");
  BOOST_TEST(attach.status().code() == Code::kInvalidArgument);
  BOOST_TEST(attach.status().message() == "ATTACH is not allowed in rill query: a read model is its own file");
  BOOST_TEST(db->Prepare("DETACH DATABASE x").status().message() ==
             "DETACH is not allowed in rill query: a read model is its own file");
  BOOST_TEST(db->Prepare("SELECT load_extension('x')").status().message() ==
             "load_extension() is not allowed in rill query");
  BOOST_TEST(db->Prepare("SELECT FTS3_TOKENIZER('x')").status().message() ==
             "fts3_tokenizer() is not allowed in rill query");
  BOOST_TEST(db->Prepare("SELECT abs(-1)").ok());
  BOOST_TEST(db->Prepare("BEGIN").ok());  // only projections may not
  Status exec = db->Exec("ATTACH DATABASE ':memory:' AS x");
  BOOST_TEST(exec.code() == Code::kInvalidArgument);
  BOOST_TEST(Contains(exec.message(), "ATTACH is not allowed in rill query"));
}

BOOST_AUTO_TEST_CASE(projection_rules_refuse_transactions_and_rill_tables) {
  auto db = OpenOrDie("", SqliteMode::kMemory);
  BOOST_REQUIRE(db->Exec("CREATE TABLE _rill_projection(x); CREATE TABLE mine(x)").ok());
  db->RestrictUserSql(UserSql::kProjection);
  const std::string why = " is not allowed in a projection: rill commits each batch with its checkpoint";
  BOOST_TEST(db->Prepare("BEGIN").status().message() == "BEGIN" + why);
  BOOST_TEST(db->Prepare("COMMIT").status().message() == "COMMIT" + why);
  BOOST_TEST(db->Prepare("ROLLBACK").status().message() == "ROLLBACK" + why);
  BOOST_TEST(db->Prepare("SAVEPOINT s").status().message() == "SAVEPOINT" + why);
  BOOST_TEST(db->Prepare("RELEASE s").status().message() == "RELEASE" + why);
  BOOST_TEST(db->Prepare("ROLLBACK TO s").status().message() == "ROLLBACK TO" + why);
  BOOST_TEST(db->Prepare("INSERT INTO _rill_projection VALUES (1)").status().message() ==
             "_rill_projection is rill's table: a projection may not write it");
  BOOST_TEST(db->Prepare("DELETE FROM _RILL_PROJECTION").status().code() == Code::kInvalidArgument);
  BOOST_TEST(db->Prepare("CREATE TABLE _rill_mine(x)").status().code() == Code::kInvalidArgument);
  BOOST_TEST(db->Prepare("CREATE INDEX i ON _rill_projection(x)").status().message() ==
             "_rill_projection is rill's table: a projection may not change it");
  BOOST_TEST(db->Prepare("ATTACH DATABASE ':memory:' AS x").status().message() ==
             "ATTACH is not allowed in a projection: a read model is its own file");
  BOOST_TEST(db->Exec("INSERT INTO mine VALUES (1); CREATE INDEX j ON mine(x)").ok());
  BOOST_TEST(db->Prepare("SELECT x FROM _rill_projection").ok());  // reading is fine

  db->RestrictUserSql(UserSql::kTrusted);  // rill's own statements again
  BOOST_TEST(db->Exec("BEGIN; INSERT INTO _rill_projection VALUES (1); COMMIT").ok());
}

BOOST_AUTO_TEST_CASE(a_stop_check_interrupts_a_runaway_statement) {
  auto db = OpenOrDie("", SqliteMode::kMemory);
  std::atomic<int> polls{0};
  db->SetStopCheck([&] { return ++polls > 100; });
  auto st = db->Prepare("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c");
  BOOST_REQUIRE(st.ok());
  auto r = st->Step();
  BOOST_TEST(r.status().code() == Code::kInterrupted);
  int polled = polls.load();
  BOOST_TEST(polled > 100);

  db->SetStopCheck({});  // never stops again
  BOOST_TEST(ValueOf(*db, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000) "
                          "SELECT count(*) FROM c") == "100000");
  BOOST_TEST(polls.load() == polled);
}

BOOST_AUTO_TEST_CASE(read_model_path_lives_in_the_store_readmodels_directory) {
  BOOST_TEST(ReadModelPath("/srv/db", "balances") == "/srv/db/readmodels/balances.sqlite");
  BOOST_TEST(ReadModelPath("/srv/db", "balances") == ReadModelDir("/srv/db") + "/balances.sqlite");
}

BOOST_AUTO_TEST_CASE(remove_sqlite_files_removes_companions_and_tolerates_missing_ones) {
  TempDir tmp;
  std::string path = tmp.sub("model.sqlite");
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) std::ofstream(path + suffix) << "x";
  std::ofstream(tmp.sub("model.sqlite-other")) << "kept";
  BOOST_REQUIRE(RemoveSqliteFiles(path).ok());
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) BOOST_TEST(!fs::exists(path + suffix));
  BOOST_TEST(fs::exists(tmp.sub("model.sqlite-other")));
  BOOST_TEST(RemoveSqliteFiles(path).ok());  // nothing left: still fine

  // A companion that cannot be removed (here a non-empty directory) is an
  // I/O error naming it.
  fs::create_directories(path + "-wal/inside");
  Status s = RemoveSqliteFiles(path);
  BOOST_TEST(s.code() == Code::kIOError);
  BOOST_TEST(Contains(s.message(), "cannot remove " + path + "-wal"));
}

BOOST_AUTO_TEST_SUITE_END()
