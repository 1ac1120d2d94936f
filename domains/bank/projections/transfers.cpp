// The `transfers` read model, as a C++ projection: one row per transfer
// stream with its parties, amount and the state the saga reached.
//
// Every event of a "transfer-…" stream whose type starts with "Transfer" is
// a state change: the state is the rest of the type in snake case
// (TransferStarted -> "started", TransferCompleted -> "completed",
// TransferFailed -> "failed", TransferDebited -> "debited", ...), so steps the
// saga adds later need no change here. Fields present in the event (from,
// to, amount, reason) update the row; absent ones keep their value.
#include <rapidjson/document.h>

#include <cctype>

#include "domains/sample_projections.h"

namespace rill {

namespace {

std::string SnakeCase(std::string_view camel) {
  std::string out;
  for (char c : camel) {
    if (std::isupper(static_cast<unsigned char>(c))) {
      if (!out.empty()) out.push_back('_');
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Status BindStringField(SqliteStatement* st, int index, const rapidjson::Document& d, const char* field) {
  auto m = d.FindMember(field);
  if (m == d.MemberEnd() || !m->value.IsString()) return st->BindNull(index);
  return st->BindText(index, std::string_view(m->value.GetString(), m->value.GetStringLength()), true);
}

Status ApplyTransferEvent(const Event& e, SqliteDb& db) {
  constexpr std::string_view kPrefix = "Transfer";
  std::string_view type = e.type;
  if (type.size() <= kPrefix.size() || type.substr(0, kPrefix.size()) != kPrefix) return Status::OK();
  rapidjson::Document d;
  d.Parse(e.data.data(), e.data.size());
  if (d.HasParseError() || !d.IsObject()) return Status::Corruption("event data is not a JSON object");

  Result<SqliteStatement*> st = db.Cached(
      "INSERT INTO transfers(id, from_account, to_account, amount, state, reason, updated) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(id) DO UPDATE SET "
      "from_account = COALESCE(excluded.from_account, from_account), "
      "to_account = COALESCE(excluded.to_account, to_account), "
      "amount = COALESCE(excluded.amount, amount), state = excluded.state, "
      "reason = COALESCE(excluded.reason, reason), updated = excluded.updated");
  if (!st.ok()) return st.status();
  SqliteStatement* s = *st;
  std::string state = SnakeCase(type.substr(kPrefix.size()));
  std::string time = FormatTime(e.time_us);
  RILL_RETURN_IF_ERROR(s->BindText(1, e.stream, true));
  RILL_RETURN_IF_ERROR(BindStringField(s, 2, d, "from"));
  RILL_RETURN_IF_ERROR(BindStringField(s, 3, d, "to"));
  auto amount = d.FindMember("amount");
  if (amount != d.MemberEnd() && amount->value.IsInt64()) {
    RILL_RETURN_IF_ERROR(s->BindInt(4, amount->value.GetInt64()));
  } else {
    RILL_RETURN_IF_ERROR(s->BindNull(4));
  }
  RILL_RETURN_IF_ERROR(s->BindText(5, state, true));
  RILL_RETURN_IF_ERROR(BindStringField(s, 6, d, "reason"));
  RILL_RETURN_IF_ERROR(s->BindText(7, time, true));
  return s->Run();
}

}  // namespace

std::shared_ptr<const Projection> TransfersProjection() {
  CppProjectionSpec spec;
  spec.name = "transfers";
  spec.filter.categories = {"transfer"};
  spec.schema =
      "CREATE TABLE IF NOT EXISTS transfers("
      "id TEXT PRIMARY KEY, from_account TEXT, to_account TEXT, amount INTEGER, "
      "state TEXT NOT NULL, reason TEXT, updated TEXT NOT NULL) WITHOUT ROWID";
  spec.version = 1;
  spec.apply = ApplyTransferEvent;
  return MakeCppProjection(std::move(spec));
}

}  // namespace rill
