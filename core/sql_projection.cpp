#include "core/sql_projection.h"

#include "core/json_depth.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <unordered_map>

namespace rill {

std::string FingerprintOf(std::string_view text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return fmt::format("{:016x}", h);
}

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

enum class ParamKind { kStream, kStreamId, kCategory, kVersion, kPosition, kTime, kType, kId, kSchema, kData, kMeta };

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
      {"data", ParamKind::kData},         {"meta", ParamKind::kMeta}};
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
                                   ":time :type :id :schema :data.PATH :meta.PATH)",
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

class SqlHandler : public ProjectionHandler {
 public:
  SqlHandler(const SqlProjection& p) : projection_(p) {}

  struct TypeHandler {
    std::vector<PreparedStatement> statements;
    bool needs_data = false, needs_meta = false;
  };
  std::unordered_map<std::string, TypeHandler> by_type;

  Status Apply(const Event& e) override {
    auto it = by_type.find(e.type);
    if (it == by_type.end()) return Status::OK();  // not ours: skipped
    TypeHandler& h = it->second;
    if (h.needs_data) RILL_RETURN_IF_ERROR(data_.Parse(e.data, "data"));
    if (h.needs_meta) RILL_RETURN_IF_ERROR(meta_.Parse(e.meta, "meta"));
    time_text_.clear();
    id_text_.clear();
    for (PreparedStatement& ps : h.statements) {
      Status s = BindAll(ps, e);
      if (s.ok()) s = ps.stmt.Run();
      if (!s.ok())
        return Status(s).WithContext(fmt::format("{}:{}: {}", projection_.origin(), ps.line, ps.text));
    }
    return Status::OK();
  }

 private:
  Status BindJson(SqliteStatement& st, int index, const rapidjson::Value* v) {
    if (v == nullptr || v->IsNull()) return st.BindNull(index);
    if (v->IsBool()) return st.BindInt(index, v->GetBool() ? 1 : 0);
    if (v->IsInt64()) return st.BindInt(index, v->GetInt64());
    if (v->IsNumber()) return st.BindDouble(index, v->GetDouble());
    if (v->IsString()) return st.BindText(index, std::string_view(v->GetString(), v->GetStringLength()), true);
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    v->Accept(w);
    return st.BindText(index, std::string_view(buf.GetString(), buf.GetSize()));
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

  Status BindAll(PreparedStatement& ps, const Event& e) {
    SqliteStatement& st = ps.stmt;
    for (const auto& [index, spec] : ps.params) {
      Status s;
      switch (spec.kind) {
        case ParamKind::kStream: s = st.BindText(index, e.stream, true); break;
        case ParamKind::kStreamId: s = st.BindText(index, StreamIdOf(e.stream), true); break;
        case ParamKind::kCategory: s = st.BindText(index, CategoryOf(e.stream), true); break;
        case ParamKind::kVersion: s = st.BindInt(index, static_cast<int64_t>(e.version)); break;
        case ParamKind::kPosition: s = st.BindInt(index, static_cast<int64_t>(e.position)); break;
        case ParamKind::kSchema: s = st.BindInt(index, e.schema); break;
        case ParamKind::kType: s = st.BindText(index, e.type, true); break;
        case ParamKind::kTime:
          if (time_text_.empty()) time_text_ = FormatTime(e.time_us);
          s = st.BindText(index, time_text_, true);
          break;
        case ParamKind::kId:
          if (id_text_.empty()) id_text_ = e.id.ToString();
          s = st.BindText(index, id_text_, true);
          break;
        case ParamKind::kData:
          s = spec.path.empty() ? st.BindText(index, e.data, true) : BindJson(st, index, Lookup(data_.root(), spec.path));
          break;
        case ParamKind::kMeta:
          s = spec.path.empty() ? st.BindText(index, e.meta, true) : BindJson(st, index, Lookup(meta_.root(), spec.path));
          break;
      }
      RILL_RETURN_IF_ERROR(s);
    }
    return Status::OK();
  }

  const SqlProjection& projection_;
  ParsedJson data_, meta_;
  std::string time_text_, id_text_;
};

}  // namespace

Result<std::unique_ptr<ProjectionHandler>> SqlProjection::Attach(SqliteDb& db) const {
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
    SqlHandler::TypeHandler& th = handler->by_type[sec.type];
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
  int name_line = 0;
  int lineno = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    ++lineno;
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

Status ValidateSqlProjection(const SqlProjection& projection) {
  Result<std::unique_ptr<SqliteDb>> db = SqliteDb::Open(":memory:", SqliteMode::kMemory);
  if (!db.ok()) return db.status();
  Result<std::unique_ptr<ProjectionHandler>> h = projection.Attach(**db);
  return h.status();
}

}  // namespace rill
