#include "core/sql_projection.h"

#include "core/json_fields.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <unordered_map>

namespace rill {

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  return true;
}

bool IsIdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

enum class ParamKind { kStream, kStreamId, kCategory, kVersion, kPosition, kTime, kType, kId, kSchema, kData, kMeta, kPart };

struct ParamSpec {
  ParamKind kind;
  std::vector<std::string> path;  // for kData/kMeta; empty = the whole object
};

// ":data.a.b" (without the colon) -> spec; nullopt for an unknown name.
std::optional<ParamSpec> ParseParamName(std::string_view name) {
  static const std::pair<const char*, ParamKind> kSimple[] = {
      {"stream", ParamKind::kStream},     {"stream_id", ParamKind::kStreamId}, {"category", ParamKind::kCategory},
      {"version", ParamKind::kVersion},   {"position", ParamKind::kPosition},  {"time", ParamKind::kTime},
      {"type", ParamKind::kType},         {"id", ParamKind::kId},              {"schema", ParamKind::kSchema},
      {"data", ParamKind::kData},         {"meta", ParamKind::kMeta},          {"part", ParamKind::kPart}};
  size_t dot = name.find('.');
  std::string_view head = name.substr(0, dot);
  for (const auto& [n, k] : kSimple) {
    if (head != n) continue;
    ParamSpec spec{k, {}};
    if (dot == std::string_view::npos) return spec;
    if (k != ParamKind::kData && k != ParamKind::kMeta) return std::nullopt;
    std::string_view rest = name.substr(dot + 1);
    while (true) {
      size_t d = rest.find('.');
      spec.path.emplace_back(rest.substr(0, d));
      if (d == std::string_view::npos) break;
      rest = rest.substr(d + 1);
    }
    return spec;
  }
  return std::nullopt;
}

// SQLite's parameter names cannot hold '.', but may hold '$'. Rewriting
// ":data.a.b" to ":data$a$b" keeps every byte offset (and so every line
// number) of the text unchanged. Quoted text and comments are left alone.
// Returns the first bad parameter's offset and name through *bad.
Status RewriteParams(std::string* sql, bool allow_params, size_t* bad_offset) {
  std::string& s = *sql;
  size_t i = 0, n = s.size();
  auto fail = [&](size_t at, std::string msg) {
    *bad_offset = at;
    return Status::InvalidArgument(std::move(msg));
  };
  while (i < n) {
    char c = s[i];
    if (c == '\'' || c == '"' || c == '`') {
      size_t j = i + 1;
      while (j < n) {
        if (s[j] == c) {
          if (j + 1 < n && s[j + 1] == c) {  // doubled quote escapes itself
            j += 2;
            continue;
          }
          break;
        }
        ++j;
      }
      i = j + 1;
    } else if (c == '[') {
      size_t j = s.find(']', i);
      i = j == std::string::npos ? n : j + 1;
    } else if (c == '-' && i + 1 < n && s[i + 1] == '-') {
      size_t j = s.find('\n', i);
      i = j == std::string::npos ? n : j + 1;
    } else if (c == '/' && i + 1 < n && s[i + 1] == '*') {
      size_t j = s.find("*/", i + 2);
      i = j == std::string::npos ? n : j + 2;
    } else if (c == ':' && i + 1 < n && IsIdentStart(s[i + 1])) {
      size_t j = i + 1;
      while (j < n && (IsIdentChar(s[j]) || (s[j] == '.' && j + 1 < n && IsIdentChar(s[j + 1])))) ++j;
      std::string name = s.substr(i + 1, j - i - 1);
      if (!allow_params) return fail(i, fmt::format("parameter :{} in the schema section", name));
      if (!ParseParamName(name))
        return fail(i, fmt::format("unknown parameter :{} (known: :stream :stream_id :category :version :position "
                                   ":time :type :id :schema :part :data.PATH :meta.PATH)",
                                   name));
      for (size_t k = i + 1; k < j; ++k)
        if (s[k] == '.') s[k] = '$';
      i = j;
    } else if ((c == '?' || c == '@' || c == '$') && allow_params) {
      // '$' inside identifiers (a$b) is legal SQLite; only a leading one is a parameter.
      bool param = c == '?' || (i + 1 < n && IsIdentStart(s[i + 1]) && (i == 0 || !IsIdentChar(s[i - 1])));
      if (param) return fail(i, fmt::format("unsupported parameter '{}': use :name parameters", c));
      ++i;
    } else {
      ++i;
    }
  }
  return Status::OK();
}

int LineAt(const SqlProjection::Section& section, size_t offset) {
  offset = std::min(offset, section.sql.size());
  return section.first_line + static_cast<int>(std::count(section.sql.begin(), section.sql.begin() + offset, '\n'));
}

// Offset of the first byte that is neither whitespace nor a comment.
size_t SkipSpaceAndComments(std::string_view s, size_t i) {
  while (i < s.size()) {
    if (std::isspace(static_cast<unsigned char>(s[i]))) {
      ++i;
    } else if (s.substr(i, 2) == "--") {
      size_t j = s.find('\n', i);
      i = j == std::string_view::npos ? s.size() : j + 1;
    } else if (s.substr(i, 2) == "/*") {
      size_t j = s.find("*/", i + 2);
      i = j == std::string_view::npos ? s.size() : j + 2;
    } else {
      break;
    }
  }
  return i;
}

struct PreparedStatement {
  SqliteStatement stmt;
  std::vector<std::pair<int, ParamSpec>> params;  // SQLite index -> what to bind
  int line = 0;
  std::string text;  // as written in the file, for error messages
};

// Prepares every statement of a section, naming file and line on failure.
Status PrepareSection(SqliteDb& db, const SqlProjection::Section& section, const std::string& origin,
                      std::vector<PreparedStatement>* out) {
  std::string_view sql = section.sql;
  size_t off = 0;
  while (true) {
    off = SkipSpaceAndComments(sql, off);
    if (off >= sql.size()) break;
    size_t consumed = 0;
    Result<SqliteStatement> st = db.Prepare(sql.substr(off), &consumed);
    if (!st.ok()) {
      int eo = db.LastErrorOffset();
      int line = LineAt(section, off + (eo > 0 ? static_cast<size_t>(eo) : 0));
      return Status::InvalidArgument(fmt::format("{}:{}: {}", origin, line, st.status().message()));
    }
    if (!st->valid()) break;
    PreparedStatement ps;
    ps.line = LineAt(section, off);
    ps.text = std::string(Trim(sql.substr(off, consumed)));
    std::replace(ps.text.begin(), ps.text.end(), '$', '.');  // show params as written
    for (int i = 1; i <= st->ParameterCount(); ++i) {
      const char* pname = st->ParameterName(i);
      std::optional<ParamSpec> spec;
      if (pname && pname[0] == ':') {
        std::string name(pname + 1);
        std::replace(name.begin(), name.end(), '$', '.');
        spec = ParseParamName(name);
      }
      if (!spec)
        return Status::InvalidArgument(
            fmt::format("{}:{}: unsupported parameter '{}'", origin, ps.line, pname ? pname : "?"));
      ps.params.emplace_back(i, std::move(*spec));
    }
    ps.stmt = std::move(st).value();
    out->push_back(std::move(ps));
    off += consumed;
  }
  return Status::OK();
}

// One event's data (or meta) JSON, parsed into memory reused event after
// event. A long-lived rapidjson::Document never frees what it parsed (its
// pool only grows), which over millions of events is a leak; a fresh
// Document per event would malloc for each. Pools over fixed buffers,
// cleared per event, do neither.
class ParsedJson {
 public:
  using Pool = rapidjson::MemoryPoolAllocator<>;
  using Doc = rapidjson::GenericDocument<rapidjson::UTF8<>, Pool, Pool>;

  Status Parse(const std::string& text, const char* what) {
    doc_.reset();
    values_.Clear();
    stack_.Clear();
    doc_.emplace(&values_, 1024, &stack_);
    if (!rill::json::CheckDepth(text, "").ok())
      return Status::Corruption(fmt::format("event {} nests deeper than {} levels", what, rill::json::kMaxJsonDepth));
    doc_->Parse(text.data(), text.size());
    if (doc_->HasParseError() || !doc_->IsObject())
      return Status::Corruption(fmt::format("event {} is not a JSON object", what));
    return Status::OK();
  }
  const rapidjson::Value& root() const { return *doc_; }

 private:
  char value_buffer_[16384];
  char stack_buffer_[4096];
  Pool values_{value_buffer_, sizeof value_buffer_};
  Pool stack_{stack_buffer_, sizeof stack_buffer_};
  std::optional<Doc> doc_;
};

// One parameter's value for one event, as decoded ahead of binding: a
// field of the event itself (bound from it, uncopied, when applied), a
// number, NULL, or text computed from the event (a JSON string, an object's
// JSON, the formatted time or id) kept in the batch's arena.
struct ParamValue {
  enum class Tag : uint8_t { kNull, kInt, kDouble, kArena, kField };
  Tag tag = Tag::kNull;
  // kField: kData or kMeta, the event's whole text (the names go to the arena).
  ParamKind field = ParamKind::kData;
  uint32_t size = 0;                     // kArena
  union {
    int64_t i;
    double d;
    size_t offset;  // kArena
  };
  ParamValue() : i(0) {}
};

struct TypeHandler {
  std::vector<PreparedStatement> statements;
  bool needs_data = false, needs_meta = false;
};

// What SqlHandler::Decode makes of a batch: per event, its type's handler
// and its parameter values, statement after statement, in binding order.
struct SqlDecoded : DecodedEvents {
  struct Item {
    TypeHandler* handler = nullptr;  // nullptr: not a type of this projection
    uint32_t first_value = 0;
    int32_t error = -1;  // index in errors: the event's JSON is bad
  };
  std::vector<Item> items;
  std::vector<ParamValue> values;
  std::string arena;
  std::vector<Status> errors;
};

// Decoding runs on the runner's reader thread while the applying thread
// binds and steps (the SQLite work, the replay's bottleneck). It reads only
// the parameter specs fixed by Attach, and its own scratch JSON.
class SqlDecoder {
 public:
  // Appends e's item (and values) to *out.
  void Add(const std::unordered_map<std::string, TypeHandler>& by_type, const Event& e, SqlDecoded* out) {
    SqlDecoded::Item item;
    auto it = by_type.find(e.type);
    if (it == by_type.end()) {
      out->items.push_back(item);  // not ours: skipped
      return;
    }
    const TypeHandler& h = it->second;
    Status s;
    if (h.needs_data) s = data_.Parse(e.data, "data");
    if (s.ok() && h.needs_meta) s = meta_.Parse(e.meta, "meta");
    if (!s.ok()) {
      item.error = static_cast<int32_t>(out->errors.size());
      out->errors.push_back(std::move(s));
      out->items.push_back(item);
      return;
    }
    item.handler = const_cast<TypeHandler*>(&h);  // the applying thread uses its statements
    item.first_value = static_cast<uint32_t>(out->values.size());
    size_t time_at = SIZE_MAX, id_at = SIZE_MAX;  // arena text, made once per event
    uint32_t time_size = 0, id_size = 0;
    for (const PreparedStatement& ps : h.statements) {
      for (const auto& [index, spec] : ps.params) {
        (void)index;
        ParamValue v;
        switch (spec.kind) {
          case ParamKind::kStream:
          case ParamKind::kStreamId:
          case ParamKind::kCategory:
          case ParamKind::kType: {
            // Copied into the arena here, on the reader thread: the applying
            // thread then reads its values in sequence and never touches the
            // event (which, grouped by stream, it would visit at random).
            std::string_view text = spec.kind == ParamKind::kStream     ? std::string_view(e.stream)
                                    : spec.kind == ParamKind::kStreamId ? StreamIdOf(e.stream)
                                    : spec.kind == ParamKind::kCategory ? CategoryOf(e.stream)
                                                                        : std::string_view(e.type);
            v = Arena(out->arena.size(), static_cast<uint32_t>(text.size()));
            out->arena.append(text);
            break;
          }
          case ParamKind::kVersion: v = Int(static_cast<int64_t>(e.version)); break;
          case ParamKind::kPosition: v = Int(static_cast<int64_t>(e.position)); break;
          case ParamKind::kSchema: v = Int(e.schema); break;
          case ParamKind::kPart: v = Int(e.part); break;
          case ParamKind::kTime:
            if (time_at == SIZE_MAX) {
              time_at = out->arena.size();
              out->arena += FormatTime(e.time_us);
              time_size = static_cast<uint32_t>(out->arena.size() - time_at);
            }
            v = Arena(time_at, time_size);
            break;
          case ParamKind::kId:
            if (id_at == SIZE_MAX) {
              id_at = out->arena.size();
              out->arena += e.id.ToString();
              id_size = static_cast<uint32_t>(out->arena.size() - id_at);
            }
            v = Arena(id_at, id_size);
            break;
          case ParamKind::kData:
          case ParamKind::kMeta:
            if (spec.path.empty()) {
              v.tag = ParamValue::Tag::kField;
              v.field = spec.kind;
            } else {
              const ParsedJson& doc = spec.kind == ParamKind::kData ? data_ : meta_;
              v = FromJson(Lookup(doc.root(), spec.path), &out->arena);
            }
            break;
        }
        out->values.push_back(v);
      }
    }
    out->items.push_back(item);
  }

 private:
  static ParamValue Int(int64_t i) {
    ParamValue v;
    v.tag = ParamValue::Tag::kInt;
    v.i = i;
    return v;
  }
  static ParamValue Arena(size_t offset, uint32_t size) {
    ParamValue v;
    v.tag = ParamValue::Tag::kArena;
    v.offset = offset;
    v.size = size;
    return v;
  }
  static ParamValue FromJson(const rapidjson::Value* j, std::string* arena) {
    ParamValue v;
    if (j == nullptr || j->IsNull()) return v;
    if (j->IsBool()) return Int(j->GetBool() ? 1 : 0);
    if (j->IsInt64()) return Int(j->GetInt64());
    if (j->IsNumber()) {
      v.tag = ParamValue::Tag::kDouble;
      v.d = j->GetDouble();
      return v;
    }
    size_t at = arena->size();
    if (j->IsString()) {
      arena->append(j->GetString(), j->GetStringLength());
    } else {
      rapidjson::StringBuffer buf;
      rapidjson::Writer<rapidjson::StringBuffer> w(buf);
      j->Accept(w);
      arena->append(buf.GetString(), buf.GetSize());
    }
    return Arena(at, static_cast<uint32_t>(arena->size() - at));
  }
  static const rapidjson::Value* Lookup(const rapidjson::Value& root, const std::vector<std::string>& path) {
    const rapidjson::Value* v = &root;
    for (const auto& key : path) {
      if (!v->IsObject()) return nullptr;
      auto m = v->FindMember(rapidjson::StringRef(key.data(), key.size()));
      if (m == v->MemberEnd()) return nullptr;
      v = &m->value;
    }
    return v;
  }

  ParsedJson data_, meta_;
};

class SqlHandler : public ProjectionHandler {
 public:
  SqlHandler(const SqlProjection& p) : projection_(p) {}

  std::unordered_map<std::string, TypeHandler> by_type;

  // Not on the runner's main path (it decodes ahead, on its reader thread):
  // used when events come one by one, e.g. redoing a failed batch.
  Status Apply(const Event& e) override {
    one_.items.clear();
    one_.values.clear();
    one_.arena.clear();
    one_.errors.clear();
    decoder_.Add(by_type, e, &one_);
    return ApplyDecoded(e, one_, 0);
  }

  // Items in applying order, so the applying thread reads them in sequence.
  std::unique_ptr<DecodedEvents> Decode(const std::vector<Event>& events,
                                        const std::vector<uint32_t>& order) const override {
    auto out = std::make_unique<SqlDecoded>();
    out->items.reserve(events.size());
    out->values.reserve(events.size() * 2);
    out->arena.reserve(events.size() * 24);
    auto decoder = std::make_unique<SqlDecoder>();  // ~40 KiB of JSON scratch: not on the stack
    if (order.empty()) {
      for (const Event& e : events) decoder->Add(by_type, e, out.get());
    } else {
      // Visiting the events out of memory order: fetch each event 8 ahead,
      // and its data text 4 ahead (by then its event is in the cache).
      const size_t n = order.size();
      for (size_t k = 0; k < n; ++k) {
        if (k + 8 < n) __builtin_prefetch(&events[order[k + 8]]);
        if (k + 4 < n) __builtin_prefetch(events[order[k + 4]].data.data());
        decoder->Add(by_type, events[order[k]], out.get());
      }
    }
    return out;
  }

  Status ApplyDecoded(const Event& e, const DecodedEvents& decoded, size_t index) override {
    const SqlDecoded& d = static_cast<const SqlDecoded&>(decoded);
    const SqlDecoded::Item& item = d.items[index];
    if (item.error >= 0) return d.errors[static_cast<size_t>(item.error)];
    if (item.handler == nullptr) return Status::OK();  // not ours: skipped
    const ParamValue* v = d.values.data() + item.first_value;
    for (PreparedStatement& ps : item.handler->statements) {
      Status s;
      for (const auto& param : ps.params) {
        s = Bind(ps.stmt, param.first, *v++, e, d.arena);
        if (!s.ok()) break;
      }
      if (s.ok()) s = ps.stmt.Run();
      if (!s.ok())
        return Status(s).WithContext(fmt::format("{}:{}: {}", projection_.origin(), ps.line, ps.text));
    }
    return Status::OK();
  }

 private:
  static Status Bind(SqliteStatement& st, int index, const ParamValue& v, const Event& e, const std::string& arena) {
    switch (v.tag) {
      case ParamValue::Tag::kNull: return st.BindNull(index);
      case ParamValue::Tag::kInt: return st.BindInt(index, v.i);
      case ParamValue::Tag::kDouble: return st.BindDouble(index, v.d);
      case ParamValue::Tag::kArena: return st.BindText(index, std::string_view(arena.data() + v.offset, v.size), true);
      case ParamValue::Tag::kField:
        switch (v.field) {
          case ParamKind::kData: return st.BindText(index, e.data, true);
          case ParamKind::kMeta: return st.BindText(index, e.meta, true);
          default: break;
        }
        break;
    }
    return Status::InvalidArgument("unexpected parameter value");
  }

  const SqlProjection& projection_;
  SqlDecoder decoder_;
  SqlDecoded one_;
};

}  // namespace

namespace {
// The file's SQL runs under the projection rules (readmodel/read_model_store.h,
// UserSql::kProjection) while it is prepared; the runner's own statements
// after it are trusted again.
class UserSqlScope {
 public:
  explicit UserSqlScope(SqliteDb& db) : db_(db) { db_.RestrictUserSql(UserSql::kProjection); }
  ~UserSqlScope() { db_.RestrictUserSql(UserSql::kTrusted); }
  UserSqlScope(const UserSqlScope&) = delete;
  UserSqlScope& operator=(const UserSqlScope&) = delete;

 private:
  SqliteDb& db_;
};
}  // namespace

Result<std::unique_ptr<ProjectionHandler>> SqlProjection::Attach(SqliteDb& db) const {
  UserSqlScope rules(db);
  // Schema: prepared and run one statement at a time (a later statement may
  // use a table an earlier one creates), so an error names its line.
  {
    std::string_view sql = schema_.sql;
    size_t off = 0;
    while (true) {
      off = SkipSpaceAndComments(sql, off);
      if (off >= sql.size()) break;
      size_t consumed = 0;
      Result<SqliteStatement> st = db.Prepare(sql.substr(off), &consumed);
      Status s = st.status();
      if (s.ok() && !st->valid()) break;
      if (s.ok()) s = st->Run();
      if (!s.ok()) return Status(s).WithContext(fmt::format("{}:{}: schema", origin_, LineAt(schema_, off)));
      off += consumed;
    }
  }
  auto handler = std::make_unique<SqlHandler>(*this);
  for (const Section& sec : handlers_) {
    TypeHandler& th = handler->by_type[sec.type];
    size_t before = th.statements.size();
    RILL_RETURN_IF_ERROR(PrepareSection(db, sec, origin_, &th.statements));
    for (size_t i = before; i < th.statements.size(); ++i) {
      for (const auto& [idx, spec] : th.statements[i].params) {
        (void)idx;
        if (spec.kind == ParamKind::kData && !spec.path.empty()) th.needs_data = true;
        if (spec.kind == ParamKind::kMeta && !spec.path.empty()) th.needs_meta = true;
      }
    }
  }
  return std::unique_ptr<ProjectionHandler>(std::move(handler));
}

Result<std::shared_ptr<SqlProjection>> ParseSqlProjection(std::string_view text, const std::string& origin) {
  auto p = std::make_shared<SqlProjection>();
  p->origin_ = origin;
  p->text_ = std::string(text);
  p->fingerprint_ = FingerprintOf(text);
  auto err = [&](int line, const std::string& what) {
    return Status::InvalidArgument(fmt::format("{}:{}: {}", origin, line, what));
  };

  SqlProjection::Section* current = nullptr;
  bool have_schema = false;
  int name_line = 0, partition_line = 0;
  int lineno = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    ++lineno;
    if (!IsValidUtf8(line)) return err(lineno, "not valid UTF-8");
    std::string_view t = Trim(line);
    bool directive = false;
    if (t.substr(0, 2) == "--") {
      std::string_view body = Trim(t.substr(2));
      if (StartsWithNoCase(body, "rill projection:")) {
        directive = true;
        if (name_line) return err(lineno, fmt::format("second projection name (first on line {})", name_line));
        std::string name(Trim(body.substr(16)));
        Status s = ValidateProjectionName(name);
        if (!s.ok()) return err(lineno, s.message());
        p->name_ = name;
        name_line = lineno;
      } else if (StartsWithNoCase(body, "category:")) {
        directive = true;
        std::string_view rest = body.substr(9);
        rest = rest.substr(0, rest.find('('));  // "(a remark)" after the names
        std::string list(rest);
        std::replace(list.begin(), list.end(), ',', ' ');
        std::istringstream words(list);
        std::string cat;
        int count = 0;
        while (words >> cat) {
          if (cat.find('-') != std::string::npos) return err(lineno, fmt::format("category '{}' contains '-'", cat));
          p->filter_.categories.push_back(cat);
          ++count;
        }
        if (count == 0) return err(lineno, "'-- category:' names no category");
      } else if (StartsWithNoCase(body, "partition:")) {
        directive = true;
        if (partition_line)
          return err(lineno, fmt::format("second '-- partition:' line (first on line {})", partition_line));
        std::string_view by = Trim(body.substr(10));
        by = Trim(by.substr(0, by.find('(')));  // "(a remark)" after the word
        if (by != "stream")
          return err(lineno, fmt::format("'-- partition: {}': the only partition is 'stream'", by));
        p->partitioned_ = true;
        partition_line = lineno;
      } else if (StartsWithNoCase(body, "schema") && Trim(body.substr(6)).empty()) {
        directive = true;
        if (have_schema) return err(lineno, "second '-- schema' section");
        have_schema = true;
        p->schema_.first_line = lineno + 1;
        current = &p->schema_;
      } else if (StartsWithNoCase(body, "on ") || StartsWithNoCase(body, "on\t")) {
        // "-- on TYPE" with exactly one word; longer remarks are comments.
        std::string_view type = Trim(body.substr(3));
        if (!type.empty() && type.find_first_of(" \t") == std::string_view::npos) {
          directive = true;
          Status s = ValidateTypeName(type);
          if (!s.ok()) return err(lineno, s.message());
          p->handlers_.push_back({std::string(type), "", lineno + 1});
          current = &p->handlers_.back();
        }
      }
    }
    if (directive) continue;
    if (current == nullptr) {
      if (!t.empty() && t.substr(0, 2) != "--")
        return err(lineno, "SQL before any section (start one with '-- schema' or '-- on EventType')");
      continue;
    }
    current->sql.append(line);
    current->sql.push_back('\n');
  }
  if (!name_line) return err(1, "missing the '-- rill projection: NAME' header");
  if (p->handlers_.empty()) return err(lineno, "no '-- on EventType' section");

  // Rewrite parameters and check each handler has a statement.
  auto rewrite = [&](SqlProjection::Section& sec, bool allow) -> Status {
    size_t bad = 0;
    Status s = RewriteParams(&sec.sql, allow, &bad);
    if (!s.ok()) return err(LineAt(sec, bad), s.message());
    return Status::OK();
  };
  RILL_RETURN_IF_ERROR(rewrite(p->schema_, false));
  for (auto& sec : p->handlers_) {
    RILL_RETURN_IF_ERROR(rewrite(sec, true));
    if (SkipSpaceAndComments(sec.sql, 0) >= sec.sql.size())
      return err(sec.first_line - 1, fmt::format("'-- on {}' has no statement", sec.type));
    if (std::find(p->filter_.types.begin(), p->filter_.types.end(), sec.type) == p->filter_.types.end())
      p->filter_.types.push_back(sec.type);
  }
  return p;
}

Result<std::shared_ptr<SqlProjection>> LoadSqlProjectionFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(fmt::format("cannot open {}", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::IOError(fmt::format("cannot read {}", path));
  return ParseSqlProjection(ss.str(), path);
}

Status ValidateSqlProjection(const SqlProjection& projection, std::function<bool()> should_stop) {
  Result<std::unique_ptr<SqliteDb>> db = SqliteDb::Open(":memory:", SqliteMode::kMemory);
  if (!db.ok()) return db.status();
  (*db)->SetStopCheck(std::move(should_stop));
  // As in a real model file, so a statement that names rill's table is
  // judged by the rules rather than failing as "no such table".
  RILL_RETURN_IF_ERROR((*db)->Exec(kCheckpointTableSchema));
  Result<std::unique_ptr<ProjectionHandler>> h = projection.Attach(**db);
  return h.status();
}

}  // namespace rill
