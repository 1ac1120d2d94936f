// rill query MODEL SQL: one read-only statement on a read model. The file is
// opened with SQLITE_OPEN_READONLY and the statement must also be read-only
// by SQLite's own judgement (sqlite3_stmt_readonly), so neither a write nor
// a pragma that changes state can slip through. Nor may it ATTACH another
// file or call fts3_tokenizer()/load_extension() (UserSql::kQuery). SIGINT,
// SIGTERM and --timeout stop a statement that runs long (exit 130 or 1).
#include <fmt/format.h>
#include <sqlite3.h>

#include <cctype>
#include <chrono>
#include <filesystem>

#include "cli/cli.h"
#include "core/projection.h"
#include "readmodel/read_model_store.h"

namespace rill::cli {
namespace {

std::string Hex(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) out += fmt::format("{:02x}", c);
  return out;
}

std::string Blob(SqliteStatement& st, int c) {
  const void* p = sqlite3_column_blob(st.handle(), c);
  int n = sqlite3_column_bytes(st.handle(), c);
  return p ? Hex(std::string_view(static_cast<const char*>(p), static_cast<size_t>(n))) : "";
}

int RunQuery(GlobalOptions& g, const std::string& model, const std::string& sql, double timeout_seconds) {
  Status s = ValidateProjectionName(model);
  if (!s.ok()) return Fail(g, s);
  std::string path = ReadModelPath(g.ResolvedDb(), model);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return Fail(g, Status::NotFound(fmt::format("no read model {} at {} (build it with 'rill project run {}')", model,
                                                path, model)));
  auto db = SqliteDb::Open(path, SqliteMode::kReadOnly);
  if (!db.ok()) return Fail(g, db.status());
  // A damaged file fails every statement; say so instead of "bad SQL".
  size_t schema_consumed = 0;
  if (auto probe = (*db)->Prepare("SELECT 1 FROM sqlite_master LIMIT 1", &schema_consumed); !probe.ok())
    return Fail(g, Status::Corruption(fmt::format("read model {} is damaged: {}: {}", model, path,
                                                  probe.status().message())));
  (*db)->RestrictUserSql(UserSql::kQuery);
  using Clock = std::chrono::steady_clock;
  const bool timed = timeout_seconds > 0;
  const Clock::time_point deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_seconds));
  bool timed_out = false;
  (*db)->SetStopCheck([&] {
    if (timed && Clock::now() >= deadline) timed_out = true;
    return timed_out || InterruptRequested();
  });
  auto stopped = [&](const Status& s) {
    if (s.code() != Code::kInterrupted) return Fail(g, s);
    if (timed_out)
      return Fail(g, Status::DeadlineExceeded(fmt::format("query stopped at its --timeout of {} s", timeout_seconds)));
    return Fail(g, Status::Interrupted("query stopped by a signal"));
  };
  size_t consumed = 0;
  auto st = (*db)->Prepare(sql, &consumed);
  if (!st.ok()) return Fail(g, Status::InvalidArgument(fmt::format("bad SQL: {}", st.status().message())));
  if (!st->valid()) return Fail(g, Status::InvalidArgument("no SQL statement given"));
  for (size_t i = consumed; i < sql.size(); ++i) {
    if (!std::isspace(static_cast<unsigned char>(sql[i])) && sql[i] != ';')
      return Fail(g, Status::InvalidArgument("give exactly one statement"));
  }
  if (!st->ReadOnly())
    return Fail(g, Status::InvalidArgument("read models are read-only here: only SELECT-like statements run"));

  int cols = st->ColumnCount();
  std::vector<std::string> headers;
  std::vector<bool> numeric(cols, true);
  for (int c = 0; c < cols; ++c) headers.emplace_back(st->ColumnName(c) ? st->ColumnName(c) : "");
  std::vector<std::vector<std::string>> rows;
  while (true) {
    auto more = st->Step();
    if (!more.ok()) return stopped(more.status());
    if (InterruptRequested()) return stopped(Status::Interrupted("interrupted"));
    if (!*more) break;
    if (g.json) {
      PrintJsonLine([&](JsonWriter& w) {
        w.StartObject();
        for (int c = 0; c < cols; ++c) {
          w.Key(headers[c].data(), static_cast<rapidjson::SizeType>(headers[c].size()));
          switch (st->ColumnType(c)) {
            case SQLITE_INTEGER: w.Int64(st->ColumnInt(c)); break;
            case SQLITE_FLOAT: w.Double(st->ColumnDouble(c)); break;
            case SQLITE_NULL: w.Null(); break;
            case SQLITE_BLOB: w.String(Blob(*st, c)); break;
            default: {
              std::string_view t = st->ColumnText(c);
              w.String(t.data(), static_cast<rapidjson::SizeType>(t.size()));
            }
          }
        }
        w.EndObject();
      });
      continue;
    }
    std::vector<std::string> row;
    for (int c = 0; c < cols; ++c) {
      switch (st->ColumnType(c)) {
        case SQLITE_INTEGER: row.push_back(std::to_string(st->ColumnInt(c))); break;
        case SQLITE_FLOAT: row.push_back(fmt::format("{}", st->ColumnDouble(c))); break;
        case SQLITE_NULL: row.push_back("NULL"); break;
        case SQLITE_BLOB:
          row.push_back("x'" + Blob(*st, c) + "'");
          numeric[c] = false;
          break;
        default:
          row.emplace_back(st->ColumnText(c));
          numeric[c] = false;
      }
    }
    rows.push_back(std::move(row));
  }
  if (!g.json) {
    Table t(headers, numeric);
    for (auto& r : rows) t.Add(std::move(r));
    t.Print();
  }
  return kExitOk;
}

void SetupQuery(CLI::App& root, GlobalOptions& g) {
  auto model = std::make_shared<std::string>();
  auto sql = std::make_shared<std::string>();
  auto timeout = std::make_shared<double>(0);
  CLI::App* q = root.add_subcommand("query", "Run one read-only SQL statement on a read model");
  q->add_option("model", *model, "Read model (projection) name")->required();
  q->add_option("sql", *sql, "The statement, e.g. \"SELECT * FROM balances\"")->required();
  q->add_option("--timeout", *timeout, "Stop the statement after SECONDS (decimals allowed; 0, the default: no limit)")
      ->check(CLI::NonNegativeNumber);
  q->callback([model, sql, timeout, &g] { g.exit_code = RunQuery(g, *model, *sql, *timeout); });
}

}  // namespace

RILL_COMMANDS("query", SetupQuery);

}  // namespace rill::cli
