#include "core/upcaster.h"

#include "core/json_fields.h"

#include <fmt/format.h>
#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <system_error>
#include <unordered_map>

namespace rill {

namespace {

using Path = std::vector<std::string>;

Path SplitPath(std::string_view text) {
  Path p;
  size_t start = 0;
  while (true) {
    size_t dot = text.find('.', start);
    p.emplace_back(text.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return p;
}

std::string JoinPath(const Path& p) {
  std::string s;
  for (size_t i = 0; i < p.size(); ++i) {
    if (i) s += '.';
    s += p[i];
  }
  return s;
}

struct Op;
// One part of a file "split": its type and schema as it leaves the step, and
// the ops that shape its data (from a copy of the event's data).
struct SplitPart {
  std::string type;
  uint32_t schema = 1;
  std::vector<Op> ops;
};

struct Op {
  enum Kind { kRename, kDefault, kRemove, kNest, kUnnest, kConvert, kRetype, kSplit, kMerge } kind;
  Path from, to, path;       // per kind; merge: path = "as" (empty: top level)
  std::vector<Path> fields;  // nest
  std::shared_ptr<rapidjson::Document> value;  // default
  std::string target;        // convert: number|integer|string; retype: the type; merge: "into"
  double factor = 1.0;
  std::vector<SplitPart> parts;  // split
};

struct Step {
  std::string event;
  uint32_t from = 0, to = 0;
  std::vector<Op> ops;  // declarative
  UpcastFn fn;          // or C++
  bool splits = false;
  std::string retype;
  std::string merge_into;  // a file "merge" step: the partner's type
  std::vector<std::pair<std::string, uint32_t>> produces;  // split parts' (type, schema)
  std::string source;
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// ---- JSON path helpers on a data object -------------------------------------

using Alloc = rapidjson::Document::AllocatorType;

rapidjson::Value* Find(rapidjson::Value& root, const Path& path, size_t depth) {
  rapidjson::Value* v = &root;
  for (size_t i = 0; i < depth; ++i) {
    if (!v->IsObject()) return nullptr;
    auto it = v->FindMember(rapidjson::StringRef(path[i].data(), path[i].size()));
    if (it == v->MemberEnd()) return nullptr;
    v = &it->value;
  }
  return v;
}
rapidjson::Value* Find(rapidjson::Value& root, const Path& path) { return Find(root, path, path.size()); }

// Moves the value at `path` out of the tree. False when absent.
bool Take(rapidjson::Value& root, const Path& path, rapidjson::Value* out) {
  rapidjson::Value* parent = Find(root, path, path.size() - 1);
  if (!parent || !parent->IsObject()) return false;
  auto it = parent->FindMember(rapidjson::StringRef(path.back().data(), path.back().size()));
  if (it == parent->MemberEnd()) return false;
  *out = std::move(it->value);
  parent->EraseMember(it);  // keeps member order, so diffs stay readable
  return true;
}

// The object at `path`, created (with its parents) when missing.
Status ObjectAt(rapidjson::Value& root, const Path& path, size_t depth, Alloc& a, rapidjson::Value** out) {
  rapidjson::Value* v = &root;
  for (size_t i = 0; i < depth; ++i) {
    auto it = v->FindMember(rapidjson::StringRef(path[i].data(), path[i].size()));
    if (it == v->MemberEnd()) {
      v->AddMember(rapidjson::Value(path[i].c_str(), a), rapidjson::Value(rapidjson::kObjectType), a);
      v = &(v->MemberEnd() - 1)->value;
    } else {
      v = &it->value;
    }
    if (!v->IsObject())
      return Status::Corruption(fmt::format("'{}' is not an object", JoinPath(Path(path.begin(), path.begin() + i + 1))));
  }
  *out = v;
  return Status::OK();
}

void SetMember(rapidjson::Value& obj, const std::string& name, rapidjson::Value&& value, Alloc& a) {
  auto it = obj.FindMember(rapidjson::StringRef(name.data(), name.size()));
  if (it != obj.MemberEnd()) {
    it->value = std::move(value);
  } else {
    obj.AddMember(rapidjson::Value(name.c_str(), a), std::move(value), a);
  }
}

Status Set(rapidjson::Value& root, const Path& path, rapidjson::Value&& value, Alloc& a) {
  rapidjson::Value* parent = nullptr;
  RILL_RETURN_IF_ERROR(ObjectAt(root, path, path.size() - 1, a, &parent));
  SetMember(*parent, path.back(), std::move(value), a);
  return Status::OK();
}

// Multiplies by `factor`, dividing by its reciprocal when that is a whole
// number, so 1234 cents * 0.01 gives exactly the double nearest 12.34.
double ApplyFactor(double d, double factor) {
  if (factor == 1.0) return d;
  double inv = 1.0 / factor;
  double rounded = std::round(inv);
  if (std::abs(factor) < 1.0 && rounded != 0 && std::abs(inv - rounded) < 1e-9) return d / rounded;
  return d * factor;
}

bool IsWhole(double d) { return std::isfinite(d) && d == std::trunc(d) && std::abs(d) < 9007199254740992.0; }

Status Convert(rapidjson::Value& v, const Op& op, Alloc& a) {
  const std::string& where = JoinPath(op.path);
  // Exact integers stay exact when there is no factor.
  if (op.factor == 1.0 && (v.IsInt64() || v.IsUint64())) {
    if (op.target == "string") {
      std::string s = v.IsInt64() ? std::to_string(v.GetInt64()) : std::to_string(v.GetUint64());
      v.SetString(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), a);
    }
    return Status::OK();
  }
  if (op.target == "string" && op.factor == 1.0 && v.IsString()) return Status::OK();
  double d = 0;
  if (v.IsNumber()) {
    d = v.GetDouble();
  } else if (v.IsString()) {
    std::string_view s(v.GetString(), v.GetStringLength());
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    if (!s.empty() && s.front() == '+') s.remove_prefix(1);
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(d))
      return Status::Corruption(fmt::format("convert {}: \"{}\" is not a number", where, std::string(v.GetString(), v.GetStringLength())));
  } else {
    return Status::Corruption(fmt::format("convert {}: value is neither a number nor a string", where));
  }
  d = ApplyFactor(d, op.factor);
  if (op.target == "integer") {
    if (!std::isfinite(d) || std::abs(d) >= 9.2e18) return Status::Corruption(fmt::format("convert {}: {} is out of integer range", where, d));
    v.SetInt64(std::llround(d));
  } else if (op.target == "number") {
    if (IsWhole(d)) {
      v.SetInt64(static_cast<int64_t>(d));
    } else {
      v.SetDouble(d);
    }
  } else {  // string
    std::string s = IsWhole(d) ? std::to_string(static_cast<int64_t>(d)) : fmt::format("{}", d);
    v.SetString(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), a);
  }
  return Status::OK();
}

Status ApplyOp(const Op& op, std::string& type, rapidjson::Document& doc) {
  Alloc& a = doc.GetAllocator();
  switch (op.kind) {
    case Op::kRename: {
      // Keep the member's position when the rename stays in one object, or
      // nests the value under its own name (owner -> owner.name): readable
      // diffs, and an upcast event looks like one written new.
      rapidjson::Value* parent = Find(doc, op.from, op.from.size() - 1);
      if (!parent || !parent->IsObject()) return Status::OK();
      auto it = parent->FindMember(rapidjson::StringRef(op.from.back().data(), op.from.back().size()));
      if (it == parent->MemberEnd()) return Status::OK();
      bool same_parent = op.to.size() == op.from.size() && std::equal(op.from.begin(), op.from.end() - 1, op.to.begin());
      if (same_parent) {
        auto existing = parent->FindMember(rapidjson::StringRef(op.to.back().data(), op.to.back().size()));
        if (existing != parent->MemberEnd()) {
          parent->EraseMember(existing);
          it = parent->FindMember(rapidjson::StringRef(op.from.back().data(), op.from.back().size()));
        }
        it->name.SetString(op.to.back().c_str(), static_cast<rapidjson::SizeType>(op.to.back().size()), a);
        return Status::OK();
      }
      bool under_itself = op.to.size() > op.from.size() && std::equal(op.from.begin(), op.from.end(), op.to.begin());
      if (under_itself) {
        rapidjson::Value v(std::move(it->value));
        it->value.SetObject();
        Path rest(op.to.begin() + static_cast<std::ptrdiff_t>(op.from.size()), op.to.end());
        return Set(it->value, rest, std::move(v), a);
      }
      rapidjson::Value v;
      Take(doc, op.from, &v);
      return Set(doc, op.to, std::move(v), a);
    }
    case Op::kDefault: {
      if (Find(doc, op.path)) return Status::OK();
      rapidjson::Value copy(*op.value, a);
      return Set(doc, op.path, std::move(copy), a);
    }
    case Op::kRemove: {
      rapidjson::Value v;
      Take(doc, op.path, &v);
      return Status::OK();
    }
    case Op::kNest: {
      std::vector<std::pair<const std::string*, rapidjson::Value>> moved;
      for (const Path& f : op.fields) {
        rapidjson::Value v;
        if (Take(doc, f, &v)) moved.emplace_back(&f.back(), std::move(v));
      }
      if (moved.empty()) return Status::OK();
      rapidjson::Value* into = nullptr;
      RILL_RETURN_IF_ERROR(ObjectAt(doc, op.to, op.to.size(), a, &into));
      for (auto& [name, v] : moved) SetMember(*into, *name, std::move(v), a);
      return Status::OK();
    }
    case Op::kUnnest: {
      rapidjson::Value* found = Find(doc, op.from);
      if (!found) return Status::OK();
      if (!found->IsObject()) return Status::Corruption(fmt::format("unnest {}: not an object", JoinPath(op.from)));
      rapidjson::Value inner;
      Take(doc, op.from, &inner);
      rapidjson::Value* parent = Find(doc, op.from, op.from.size() - 1);
      for (auto& m : inner.GetObject()) {
        std::string name(m.name.GetString(), m.name.GetStringLength());
        SetMember(*parent, name, std::move(m.value), a);
      }
      return Status::OK();
    }
    case Op::kConvert: {
      rapidjson::Value* v = Find(doc, op.path);
      if (!v) return Status::OK();
      return Convert(*v, op, a);
    }
    case Op::kRetype:
      type = op.target;
      return Status::OK();
    case Op::kSplit:  // run by RunStep
    case Op::kMerge:  // run by Upcaster::Expand
      return Status::OK();
  }
  return Status::OK();
}

std::string Serialize(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

// ---- Loading with line numbers -------------------------------------------------

// Records where each value starts ("/ops/2/from" -> byte offset), so that a
// semantic error can name the line of the value it is about.
struct OffsetRecorder : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, OffsetRecorder> {
  explicit OffsetRecorder(const rapidjson::StringStream& s, std::map<std::string, size_t>& o) : is(s), offsets(o) {}
  struct Frame {
    bool object;
    std::string key;
    size_t index = 0;
  };
  const rapidjson::StringStream& is;
  std::map<std::string, size_t>& offsets;
  std::vector<Frame> stack;

  std::string CurrentPath() const {
    std::string p;
    for (const auto& f : stack) p += "/" + (f.object ? f.key : std::to_string(f.index));
    return p;
  }
  void Record() { offsets.emplace(CurrentPath(), is.Tell()); }
  void Advance() {
    if (!stack.empty() && !stack.back().object) ++stack.back().index;
  }
  bool Default() {
    Record();
    Advance();
    return true;
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    stack.back().key.assign(s, n);
    Record();  // a key's own line, for "unknown key" errors
    return true;
  }
  bool StartObject() {
    Record();
    stack.push_back({true, "", 0});
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    stack.pop_back();
    Advance();
    return true;
  }
  bool StartArray() {
    Record();
    stack.push_back({false, "", 0});
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    stack.pop_back();
    Advance();
    return true;
  }
};

size_t LineOf(std::string_view text, size_t offset) {
  offset = std::min(offset, text.size());
  return 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n'));
}

class FileParser {
 public:
  FileParser(std::string_view text, const std::string& source) : text_(text), source_(source) {}

  Status Parse(Step* step) {
    std::string copy(text_);  // NUL-terminated for StringStream
    if (!rill::json::CheckDepth(copy, "").ok())
      return Error(0, fmt::format("JSON nests deeper than {} levels", rill::json::kMaxJsonDepth));
    doc_.Parse<rapidjson::kParseValidateEncodingFlag>(copy.c_str(), copy.size());
    if (doc_.HasParseError())
      return Error(doc_.GetErrorOffset(), fmt::format("invalid JSON: {}", rapidjson::GetParseError_En(doc_.GetParseError())));
    {
      rapidjson::StringStream ss(copy.c_str());
      OffsetRecorder rec(ss, offsets_);
      rapidjson::Reader reader;
      reader.Parse(ss, rec);
    }
    if (!doc_.IsObject()) return ErrorAt("", "a migration must be a JSON object");
    for (auto& m : doc_.GetObject()) {
      std::string k = m.name.GetString();
      if (k != "event" && k != "from" && k != "to" && k != "ops" && k != "description")
        return ErrorAt("/" + k, fmt::format("unknown key \"{}\" (expected event, from, to, ops, description)", k));
    }
    RILL_RETURN_IF_ERROR(RequireString(doc_, "", "event", &step->event));
    if (Status s = ValidateTypeName(step->event); !s.ok()) return ErrorAt("/event", "bad event type: " + s.message());
    uint64_t from = 0, to = 0;
    RILL_RETURN_IF_ERROR(RequireSchema(doc_, "", "from", &from));
    RILL_RETURN_IF_ERROR(RequireSchema(doc_, "", "to", &to));
    if (to != from + 1) return ErrorAt("/to", fmt::format("\"to\" must be \"from\" + 1 ({}), not {}", from + 1, to));
    step->from = static_cast<uint32_t>(from);
    step->to = static_cast<uint32_t>(to);
    auto ops = doc_.FindMember("ops");
    if (ops == doc_.MemberEnd()) return ErrorAt("", "missing key \"ops\"");
    if (!ops->value.IsArray() || ops->value.Empty()) return ErrorAt("/ops", "\"ops\" must be a non-empty array");
    bool has_retype = false;
    for (rapidjson::SizeType i = 0; i < ops->value.Size(); ++i) {
      Op op{};
      std::string at = fmt::format("/ops/{}", i);
      RILL_RETURN_IF_ERROR(ParseOp(ops->value[i], at, &op, /*in_part=*/false));
      if (op.kind == Op::kRetype) {
        if (!step->retype.empty()) return ErrorAt(at, "more than one retype in one migration");
        step->retype = op.target;
        has_retype = true;
      }
      if (op.kind == Op::kSplit || op.kind == Op::kMerge) {
        const char* name = op.kind == Op::kSplit ? "split" : "merge";
        if (i + 1 != ops->value.Size())
          return ErrorAt(at, fmt::format("\"{}\" must be the last op of its migration", name));
        if (has_retype)
          return ErrorAt(at, fmt::format("\"{}\" and \"retype\" cannot be in one migration ({})", name,
                                         op.kind == Op::kSplit ? "each part names its type" : "a merged event takes its partner's type"));
      }
      if (op.kind == Op::kSplit) {
        step->splits = true;
        for (size_t p = 0; p < op.parts.size(); ++p) {
          SplitPart& part = op.parts[p];
          if (part.type.empty()) part.type = step->event;
          if (part.schema == 0) part.schema = part.type == step->event ? static_cast<uint32_t>(to) : 1;
          // A part that this step (or an earlier one of its type) would take
          // again would loop forever on read.
          if (part.type == step->event && part.schema <= from)
            return ErrorAt(fmt::format("{}/parts/{}", at, p),
                           fmt::format("split: part {} is {} at schema {}, which this migration would upcast again "
                                       "(give it schema {} or more)", p, part.type, part.schema, to));
          step->produces.emplace_back(part.type, part.schema);
        }
      }
      if (op.kind == Op::kMerge) step->merge_into = op.target;
      step->ops.push_back(std::move(op));
    }
    step->source = source_;
    return Status::OK();
  }

 private:
  Status Error(size_t offset, const std::string& reason) const {
    return Status::InvalidArgument(fmt::format("{}:{}: {}", source_, LineOf(text_, offset), reason));
  }
  Status ErrorAt(const std::string& pointer, const std::string& reason) const {
    std::string p = pointer;
    while (true) {
      auto it = offsets_.find(p);
      if (it != offsets_.end()) return Error(it->second, reason);
      if (p.empty()) return Error(0, reason);
      p = p.substr(0, p.rfind('/'));
    }
  }

  Status RequireString(const rapidjson::Value& obj, const std::string& at, const char* key, std::string* out) {
    auto it = obj.FindMember(key);
    if (it == obj.MemberEnd()) return ErrorAt(at, fmt::format("missing key \"{}\"", key));
    if (!it->value.IsString() || it->value.GetStringLength() == 0)
      return ErrorAt(at + "/" + key, fmt::format("\"{}\" must be a non-empty string", key));
    out->assign(it->value.GetString(), it->value.GetStringLength());
    return Status::OK();
  }
  Status RequireSchema(const rapidjson::Value& obj, const std::string& at, const char* key, uint64_t* out) {
    auto it = obj.FindMember(key);
    if (it == obj.MemberEnd()) return ErrorAt(at, fmt::format("missing key \"{}\"", key));
    if (!it->value.IsUint64() || it->value.GetUint64() < 1 || it->value.GetUint64() >= UINT32_MAX)
      return ErrorAt(at + "/" + key, fmt::format("\"{}\" must be a schema number (an integer >= 1)", key));
    *out = it->value.GetUint64();
    return Status::OK();
  }
  Status RequirePath(const rapidjson::Value& obj, const std::string& at, const char* key, Path* out) {
    std::string s;
    RILL_RETURN_IF_ERROR(RequireString(obj, at, key, &s));
    *out = SplitPath(s);
    // Each segment may become a level of nesting (default, nest).
    if (out->size() > 64)
      return ErrorAt(at + "/" + key, fmt::format("\"{}\" has {} segments; at most 64", key, out->size()));
    for (const auto& seg : *out)
      if (seg.empty()) return ErrorAt(at + "/" + key, fmt::format("\"{}\" is not a valid dotted path: \"{}\"", key, s));
    return Status::OK();
  }

  Status ParseOp(const rapidjson::Value& v, const std::string& at, Op* op, bool in_part) {
    if (!v.IsObject()) return ErrorAt(at, "each op must be a JSON object");
    std::string name;
    RILL_RETURN_IF_ERROR(RequireString(v, at, "op", &name));
    if (in_part && (name == "split" || name == "merge" || name == "retype"))
      return ErrorAt(at + "/op", fmt::format("split part: \"{}\" is not allowed inside a part ({})", name,
                                             name == "retype" ? "give the part a \"type\"" : "parts do not split or merge again"));
    std::vector<std::string> allowed;
    if (name == "rename") {
      op->kind = Op::kRename;
      allowed = {"from", "to"};
      RILL_RETURN_IF_ERROR(RequirePath(v, at, "from", &op->from));
      RILL_RETURN_IF_ERROR(RequirePath(v, at, "to", &op->to));
      if (op->from == op->to) return ErrorAt(at, "rename: \"from\" and \"to\" are the same path");
    } else if (name == "default") {
      op->kind = Op::kDefault;
      allowed = {"path", "value"};
      RILL_RETURN_IF_ERROR(RequirePath(v, at, "path", &op->path));
      auto it = v.FindMember("value");
      if (it == v.MemberEnd()) return ErrorAt(at, "default: missing key \"value\"");
      op->value = std::make_shared<rapidjson::Document>();
      op->value->CopyFrom(it->value, op->value->GetAllocator());
    } else if (name == "remove") {
      op->kind = Op::kRemove;
      allowed = {"path"};
      RILL_RETURN_IF_ERROR(RequirePath(v, at, "path", &op->path));
    } else if (name == "nest") {
      op->kind = Op::kNest;
      allowed = {"fields", "into"};
      auto it = v.FindMember("fields");
      if (it == v.MemberEnd()) return ErrorAt(at, "nest: missing key \"fields\"");
      if (!it->value.IsArray() || it->value.Empty())
        return ErrorAt(at + "/fields", "nest: \"fields\" must be a non-empty array of paths");
      for (rapidjson::SizeType i = 0; i < it->value.Size(); ++i) {
        const auto& f = it->value[i];
        std::string fat = fmt::format("{}/fields/{}", at, i);
        if (!f.IsString() || f.GetStringLength() == 0) return ErrorAt(fat, "nest: each field must be a non-empty string");
        Path p = SplitPath(f.GetString());
        for (const auto& seg : p)
          if (seg.empty()) return ErrorAt(fat, fmt::format("nest: \"{}\" is not a valid dotted path", f.GetString()));
        op->fields.push_back(std::move(p));
      }
      RILL_RETURN_IF_ERROR(RequirePath(v, at, "into", &op->to));
    } else if (name == "unnest") {
      op->kind = Op::kUnnest;
      allowed = {"from"};
      RILL_RETURN_IF_ERROR(RequirePath(v, at, "from", &op->from));
    } else if (name == "convert") {
      op->kind = Op::kConvert;
      allowed = {"path", "to", "factor"};
      RILL_RETURN_IF_ERROR(RequirePath(v, at, "path", &op->path));
      RILL_RETURN_IF_ERROR(RequireString(v, at, "to", &op->target));
      if (op->target != "number" && op->target != "integer" && op->target != "string")
        return ErrorAt(at + "/to", fmt::format("convert: \"to\" must be \"number\", \"integer\" or \"string\", not \"{}\"", op->target));
      if (auto it = v.FindMember("factor"); it != v.MemberEnd()) {
        if (!it->value.IsNumber() || it->value.GetDouble() == 0 || !std::isfinite(it->value.GetDouble()))
          return ErrorAt(at + "/factor", "convert: \"factor\" must be a non-zero number");
        op->factor = it->value.GetDouble();
      }
    } else if (name == "retype") {
      op->kind = Op::kRetype;
      allowed = {"to"};
      RILL_RETURN_IF_ERROR(RequireString(v, at, "to", &op->target));
      if (Status s = ValidateTypeName(op->target); !s.ok()) return ErrorAt(at + "/to", "retype: bad type: " + s.message());
    } else if (name == "split") {
      op->kind = Op::kSplit;
      allowed = {"parts"};
      auto it = v.FindMember("parts");
      if (it == v.MemberEnd()) return ErrorAt(at, "split: missing key \"parts\"");
      if (!it->value.IsArray() || it->value.Size() < 2)
        return ErrorAt(at + "/parts", "split: \"parts\" must be an array of at least two parts");
      for (rapidjson::SizeType i = 0; i < it->value.Size(); ++i) {
        const auto& pv = it->value[i];
        std::string pat = fmt::format("{}/parts/{}", at, i);
        if (!pv.IsObject()) return ErrorAt(pat, "split: each part must be a JSON object");
        for (auto& m : pv.GetObject()) {
          std::string k = m.name.GetString();
          if (k != "type" && k != "schema" && k != "ops")
            return ErrorAt(pat + "/" + k, fmt::format("split part: unknown key \"{}\" (expected type, schema, ops)", k));
        }
        SplitPart part;
        part.schema = 0;  // default filled in by Parse (needs the step)
        if (pv.HasMember("type")) {
          RILL_RETURN_IF_ERROR(RequireString(pv, pat, "type", &part.type));
          if (Status s = ValidateTypeName(part.type); !s.ok()) return ErrorAt(pat + "/type", "split part: bad type: " + s.message());
        }
        if (pv.HasMember("schema")) {
          uint64_t schema = 0;
          RILL_RETURN_IF_ERROR(RequireSchema(pv, pat, "schema", &schema));
          part.schema = static_cast<uint32_t>(schema);
        }
        if (auto ops = pv.FindMember("ops"); ops != pv.MemberEnd()) {
          if (!ops->value.IsArray()) return ErrorAt(pat + "/ops", "split part: \"ops\" must be an array");
          for (rapidjson::SizeType j = 0; j < ops->value.Size(); ++j) {
            Op inner{};
            RILL_RETURN_IF_ERROR(ParseOp(ops->value[j], fmt::format("{}/ops/{}", pat, j), &inner, /*in_part=*/true));
            part.ops.push_back(std::move(inner));
          }
        }
        op->parts.push_back(std::move(part));
      }
    } else if (name == "merge") {
      op->kind = Op::kMerge;
      allowed = {"into", "as"};
      RILL_RETURN_IF_ERROR(RequireString(v, at, "into", &op->target));
      if (Status s = ValidateTypeName(op->target); !s.ok()) return ErrorAt(at + "/into", "merge: bad type: " + s.message());
      if (v.HasMember("as")) RILL_RETURN_IF_ERROR(RequirePath(v, at, "as", &op->path));
    } else {
      return ErrorAt(at + "/op", fmt::format("unknown op \"{}\" (expected rename, default, remove, nest, unnest, convert, "
                                             "retype, split, merge)", name));
    }
    for (auto& m : v.GetObject()) {
      std::string k = m.name.GetString();
      if (k != "op" && std::find(allowed.begin(), allowed.end(), k) == allowed.end())
        return ErrorAt(at + "/" + k, fmt::format("{}: unknown key \"{}\"", name, k));
    }
    return Status::OK();
  }

  std::string_view text_;
  const std::string& source_;
  rapidjson::Document doc_;
  std::map<std::string, size_t> offsets_;
};

// Ids of split parts: derived from the original id and the part number, so a
// reread gives the same ids (FNV-1a; marked as version 8, "custom").
Uuid DerivePartId(const Uuid& id, size_t part) {
  if (part == 0) return id;
  Uuid out;
  for (int half = 0; half < 2; ++half) {
    uint64_t h = 1469598103934665603ull ^ static_cast<uint64_t>(half);
    auto mix = [&](uint8_t b) {
      h ^= b;
      h *= 1099511628211ull;
    };
    for (uint8_t b : id.bytes) mix(b);
    for (int i = 0; i < 8; ++i) mix(static_cast<uint8_t>(part >> (8 * i)));
    for (int i = 0; i < 8; ++i) out.bytes[static_cast<size_t>(half * 8 + i)] = static_cast<uint8_t>(h >> (8 * i));
  }
  out.bytes[6] = static_cast<uint8_t>((out.bytes[6] & 0x0F) | 0x80);
  out.bytes[8] = static_cast<uint8_t>((out.bytes[8] & 0x3F) | 0x80);
  return out;
}

struct CodeUpcaster {
  std::string event;
  uint32_t from, to;
  UpcastFn fn;
  std::string name;
  bool splits;
};
std::vector<CodeUpcaster>& CodeUpcasters() {
  static std::vector<CodeUpcaster> v;
  return v;
}

}  // namespace

// ---- Upcaster ------------------------------------------------------------------

struct Upcaster::Impl {
  std::vector<Step> steps;  // sorted by (event, from)
  std::unordered_map<std::string, std::map<uint32_t, size_t>, StringHash, std::equal_to<>> by_type;
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> current;
  std::set<std::string, std::less<>> partners;  // types some "merge" step folds into

  Status Add(Step step) {
    auto key = [](const Step& s) { return std::tie(s.event, s.from); };
    auto pos = std::lower_bound(steps.begin(), steps.end(), step, [&](const Step& a, const Step& b) { return key(a) < key(b); });
    if (pos != steps.end() && pos->event == step.event && pos->from == step.from)
      return Status::InvalidArgument(fmt::format("{}: duplicate upcaster for {} schema {} (already defined by {})",
                                                 step.source, step.event, step.from, pos->source));
    steps.insert(pos, std::move(step));
    by_type.clear();
    current.clear();
    partners.clear();
    for (size_t i = 0; i < steps.size(); ++i) {
      const Step& s = steps[i];
      by_type[s.event][s.from] = i;
      uint32_t& c = current[s.event];
      c = std::max({c, s.to, 1u});
      if (!s.retype.empty()) {
        uint32_t& r = current[s.retype];
        r = std::max({r, s.to, 1u});
      }
      for (const auto& [type, schema] : s.produces) {
        uint32_t& p = current[type];
        p = std::max({p, schema, 1u});
      }
      if (!s.merge_into.empty()) partners.insert(s.merge_into);
    }
    return Status::OK();
  }

  const Step* FindStep(std::string_view type, uint32_t schema, size_t* index = nullptr) const {
    auto t = by_type.find(type);
    if (t == by_type.end()) return nullptr;
    auto s = t->second.find(schema);
    if (s == t->second.end()) return nullptr;
    if (index) *index = s->second;
    return &steps[s->second];
  }

  static Status RunStep(const Step& step, UpcastEvent& ev, std::vector<UpcastEvent>* extra) {
    if (step.fn) {
      Status s = step.fn(ev, extra);
      if (!s.ok()) return s.WithContext(step.source);
      if (!ev.data.IsObject()) return Status::Corruption(step.source + ": upcaster left data that is not an object");
    } else {
      for (const Op& op : step.ops) {
        if (op.kind == Op::kSplit) return RunSplit(step, op, ev, extra);
        if (op.kind == Op::kMerge) break;  // the pairing is Upcaster::Expand's
        Status s = ApplyOp(op, ev.type, ev.data);
        if (!s.ok()) return s.WithContext(step.source);
      }
    }
    ev.schema = step.to;
    return Status::OK();
  }

  // A file "split" (the last op of its step): each part starts from a copy of
  // the data as the earlier ops left it; part 0 replaces `ev`.
  static Status RunSplit(const Step& step, const Op& split, UpcastEvent& ev, std::vector<UpcastEvent>* extra) {
    if (!extra) return Status::Corruption(step.source + ": a split cannot be applied in place");
    std::vector<UpcastEvent> parts;
    for (const SplitPart& sp : split.parts) {
      UpcastEvent part;
      part.type = sp.type;
      part.schema = sp.schema;
      part.data.CopyFrom(ev.data, part.data.GetAllocator());
      for (const Op& op : sp.ops) {
        Status s = ApplyOp(op, part.type, part.data);
        if (!s.ok()) return s.WithContext(fmt::format("{}: part {}", step.source, parts.size()));
      }
      parts.push_back(std::move(part));
    }
    ev.type = std::move(parts[0].type);
    ev.schema = parts[0].schema;
    ev.data.CopyFrom(parts[0].data, ev.data.GetAllocator());
    for (size_t i = 1; i < parts.size(); ++i) extra->push_back(std::move(parts[i]));
    return Status::OK();
  }

  // Runs the chain of `ev` (and of any parts it splits into), appending the
  // resulting parts to *out in order. In place (!allow_split) it stops before
  // the first step that splits or merges. On read, a "merge" step ends the
  // chain with its earlier ops applied and its schema `to` (the unpaired
  // form); when `merge` is given (the event itself, not a part of a split),
  // it is set to that step so Expand can pair the event with its partner.
  // `budget` bounds the steps run, so parts that split back into their own
  // source never loop.
  Status RunChain(UpcastEvent ev, bool allow_split, std::vector<UpcastEvent>* out, const Step** merge,
                  int* budget) const {
    const Step* step = FindStep(ev.type, ev.schema);
    while (step && (allow_split || (!step->splits && step->merge_into.empty()))) {
      if (--*budget < 0)
        return Status::Corruption(fmt::format("{}: the chain of {} schema {} does not end (a split part loops back)",
                                              step->source, ev.type, ev.schema));
      std::vector<UpcastEvent> extra;
      RILL_RETURN_IF_ERROR(RunStep(*step, ev, allow_split ? &extra : nullptr));
      if (!step->merge_into.empty()) {
        if (merge) *merge = step;
        break;
      }
      if (!extra.empty() || step->splits) {
        RILL_RETURN_IF_ERROR(RunChain(std::move(ev), allow_split, out, nullptr, budget));
        for (auto& part : extra) RILL_RETURN_IF_ERROR(RunChain(std::move(part), allow_split, out, nullptr, budget));
        return Status::OK();
      }
      step = FindStep(ev.type, ev.schema);
    }
    out->push_back(std::move(ev));
    return Status::OK();
  }
  static constexpr int kStepBudget = 10000;

  Status Solo(const Event& event, std::vector<Event>* out, const Step** merge) const;
};

Upcaster::Upcaster() : impl_(std::make_unique<Impl>()) {}
Upcaster::~Upcaster() = default;

Status Upcaster::LoadJson(std::string_view text, const std::string& source) {
  Step step;
  FileParser parser(text, source);
  RILL_RETURN_IF_ERROR(parser.Parse(&step));
  return impl_->Add(std::move(step));
}

Status Upcaster::LoadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::IOError(fmt::format("{}: cannot read", path));
  return LoadJson(ss.str(), path);
}

Status Upcaster::LoadDirectory(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return Status::OK();
  if (!fs::is_directory(dir, ec)) return Status::InvalidArgument(fmt::format("{}: not a directory", dir));
  std::vector<std::string> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".json" && it->is_regular_file(ec)) files.push_back(it->path().string());
  }
  if (ec) return Status::IOError(fmt::format("{}: cannot list: {}", dir, ec.message()));
  std::sort(files.begin(), files.end());
  for (const auto& f : files) RILL_RETURN_IF_ERROR(LoadFile(f));
  return Status::OK();
}

Status Upcaster::LoadShipped() {
  for (const auto& m : ShippedMigrations()) RILL_RETURN_IF_ERROR(LoadJson(m.text, m.path));
  return Status::OK();
}

Status Upcaster::Register(const std::string& event, uint32_t from, uint32_t to, UpcastFn fn, const std::string& name,
                          bool splits) {
  std::string source = "c++:" + name;
  if (Status s = ValidateTypeName(event); !s.ok()) return s.WithContext(source);
  if (from < 1 || to != from + 1)
    return Status::InvalidArgument(fmt::format("{}: \"to\" must be \"from\" + 1 with from >= 1", source));
  if (!fn) return Status::InvalidArgument(source + ": no function");
  Step step;
  step.event = event;
  step.from = from;
  step.to = to;
  step.fn = std::move(fn);
  step.splits = splits;
  step.source = std::move(source);
  return impl_->Add(std::move(step));
}

bool Upcaster::empty() const { return impl_->steps.empty(); }

uint32_t Upcaster::CurrentSchema(std::string_view type) const {
  auto it = impl_->current.find(type);
  return it == impl_->current.end() ? 1 : it->second;
}

bool Upcaster::NeedsUpcast(std::string_view type, uint32_t schema) const {
  return impl_->FindStep(type, schema) != nullptr;
}

std::vector<MigrationInfo> Upcaster::Migrations() const {
  std::vector<MigrationInfo> out;
  for (const Step& s : impl_->steps) out.push_back({s.event, s.from, s.to, s.retype, s.source, s.splits, s.merge_into});
  return out;
}

std::vector<size_t> Upcaster::ChainOf(std::string_view type, uint32_t schema) const {
  std::vector<size_t> chain;
  size_t index = 0;
  std::string t(type);
  const Step* step = impl_->FindStep(t, schema, &index);
  while (step) {
    chain.push_back(index);
    if (step->splits || !step->merge_into.empty()) break;  // what follows depends on the data / the partner
    if (!step->retype.empty()) t = step->retype;
    step = impl_->FindStep(t, step->to, &index);
  }
  return chain;
}

namespace {
// Per-thread scratch for the read hook: a JSON DOM's default allocator takes a
// 64 KB chunk from the heap per document; reusing one buffer per thread keeps
// the per-event cost to parsing and writing.
struct Scratch {
  char value_buffer[32 << 10];
  rapidjson::MemoryPoolAllocator<> allocator{value_buffer, sizeof value_buffer};
  rapidjson::CrtAllocator stack_allocator;
  rapidjson::StringBuffer out;
};
thread_local Scratch t_scratch;
}  // namespace

// A stored event's data as a JSON object, or Corruption naming the event
// (too deep to parse safely, or not an object).
static Status ParseStoredData(const Event& event, rapidjson::Document* data) {
  if (!rill::json::CheckDepth(event.data, "").ok())
    return Status::Corruption(fmt::format("event at position {} ({} schema {}): data nests deeper than {} levels",
                                          event.position, event.type, event.schema, rill::json::kMaxJsonDepth));
  data->Parse(event.data.data(), event.data.size());
  if (data->HasParseError() || !data->IsObject())
    return Status::Corruption(fmt::format("event at position {} ({} schema {}): data is not a JSON object",
                                          event.position, event.type, event.schema));
  return Status::OK();
}

Status Upcaster::UpcastInPlace(Event& event) const {
  const Step* first = impl_->FindStep(event.type, event.schema);
  if (!first || first->splits || !first->merge_into.empty()) return Status::OK();  // the common case: nothing to do
  Scratch& scratch = t_scratch;
  scratch.allocator.Clear();
  UpcastEvent ev{event.type, event.schema, rapidjson::Document(&scratch.allocator, 1024, &scratch.stack_allocator)};
  RILL_RETURN_IF_ERROR(ParseStoredData(event, &ev.data));
  std::vector<UpcastEvent> out;
  int budget = Impl::kStepBudget;
  Status s = impl_->RunChain(std::move(ev), /*allow_split=*/false, &out, nullptr, &budget);
  if (!s.ok())
    return s.WithContext(fmt::format("upcasting event at position {} ({} schema {})", event.position, event.type, event.schema));
  event.type = std::move(out[0].type);
  event.schema = out[0].schema;
  scratch.out.Clear();
  rapidjson::Writer<rapidjson::StringBuffer> w(scratch.out);
  out[0].data.Accept(w);
  event.data.assign(scratch.out.GetString(), scratch.out.GetSize());
  return Status::OK();
}

// The event read on its own: its whole chain, splits included; a "merge"
// step leaves it unpaired and is reported in *merge.
Status Upcaster::Impl::Solo(const Event& event, std::vector<Event>* out, const Step** merge) const {
  if (!FindStep(event.type, event.schema)) {
    out->push_back(event);
    return Status::OK();
  }
  UpcastEvent ev;
  ev.type = event.type;
  ev.schema = event.schema;
  RILL_RETURN_IF_ERROR(ParseStoredData(event, &ev.data));
  std::vector<UpcastEvent> parts;
  int budget = kStepBudget;
  Status s = RunChain(std::move(ev), /*allow_split=*/true, &parts, merge, &budget);
  if (!s.ok())
    return s.WithContext(fmt::format("upcasting event at position {} ({} schema {})", event.position, event.type, event.schema));
  for (size_t i = 0; i < parts.size(); ++i) {
    Event e = event;
    e.type = std::move(parts[i].type);
    e.schema = parts[i].schema;
    e.data = Serialize(parts[i].data);
    e.id = DerivePartId(event.id, i);
    e.part = static_cast<uint32_t>(i);
    e.parts = static_cast<uint32_t>(parts.size());
    out->push_back(std::move(e));
  }
  return Status::OK();
}

Status Upcaster::Upcast(const Event& event, std::vector<Event>* out) const {
  return impl_->Solo(event, out, nullptr);
}

namespace {
bool IsSystemEvent(const Event& e) { return !e.type.empty() && e.type[0] == '$'; }
}  // namespace

Status Upcaster::Expand(Event&& event, const StoreOptions::StoredEventReader& read_stored, std::vector<Event>* out) const {
  const Impl& impl = *impl_;
  if (IsSystemEvent(event) ||
      (!impl.FindStep(event.type, event.schema) && impl.partners.find(event.type) == impl.partners.end())) {
    out->push_back(std::move(event));  // the common case: nothing to do
    return Status::OK();
  }
  std::vector<Event> parts;
  const Step* merge = nullptr;
  RILL_RETURN_IF_ERROR(impl.Solo(event, &parts, &merge));
  // The partner of a merging event: the stored event right before it in its
  // stream, read on its own as exactly one event of the "into" type, and not
  // itself a merging event. Both sides of a pair test the same thing.
  auto partner_of = [&](const Event& stored, const std::string& into, Event* partner) -> Result<bool> {
    if (IsSystemEvent(stored)) return false;
    std::vector<Event> pp;
    const Step* pm = nullptr;
    RILL_RETURN_IF_ERROR(impl.Solo(stored, &pp, &pm));
    if (pm || pp.size() != 1 || pp[0].type != into) return false;
    if (partner) *partner = std::move(pp[0]);
    return true;
  };
  if (merge) {
    Event& self = parts[0];  // a merging event never splits (RunChain)
    Event prev;
    Status ps = event.version > 1 ? read_stored(event.stream, event.version - 1, &prev) : Status::NotFound("first");
    if (!ps.ok() && !ps.IsNotFound()) return ps;
    Event partner;
    if (ps.ok()) {
      auto paired = partner_of(prev, merge->merge_into, &partner);
      if (!paired.ok()) return paired.status();
      if (*paired) {
        rapidjson::Document doc, mine;
        doc.Parse(partner.data.data(), partner.data.size());
        mine.Parse(self.data.data(), self.data.size());
        if (doc.HasParseError() || !doc.IsObject() || mine.HasParseError() || !mine.IsObject())
          return Status::Corruption(fmt::format("{}: merge: data is not a JSON object", merge->source));
        auto& a = doc.GetAllocator();
        const Path& as = merge->ops.back().path;
        if (as.empty()) {
          for (auto& m : mine.GetObject())
            SetMember(doc, std::string(m.name.GetString(), m.name.GetStringLength()), rapidjson::Value(m.value, a), a);
        } else {
          rapidjson::Value copy(mine, a);
          Status s = Set(doc, as, std::move(copy), a);
          if (!s.ok()) return s.WithContext(merge->source + ": merge");
        }
        self.type = std::move(partner.type);
        self.schema = partner.schema;
        self.data = Serialize(doc);
      }
    }
    out->push_back(std::move(self));
    return Status::OK();
  }
  if (parts.size() == 1 && impl.partners.find(parts[0].type) != impl.partners.end()) {
    // Folded into the next event when that one merges into this one.
    Event next;
    Status ns = read_stored(event.stream, event.version + 1, &next);
    if (!ns.ok() && !ns.IsNotFound()) return ns;
    if (ns.ok() && !IsSystemEvent(next) && impl.FindStep(next.type, next.schema)) {
      std::vector<Event> np;
      const Step* nm = nullptr;
      RILL_RETURN_IF_ERROR(impl.Solo(next, &np, &nm));
      if (nm && nm->merge_into == parts[0].type) {
        auto paired = partner_of(event, nm->merge_into, nullptr);
        if (!paired.ok()) return paired.status();
        if (*paired) return Status::OK();  // read as part of `next`
      }
    }
  }
  for (Event& e : parts) out->push_back(std::move(e));
  return Status::OK();
}

bool Upcaster::ExpandsOnRead() const {
  for (const Step& s : impl_->steps)
    if (s.splits || !s.merge_into.empty()) return true;
  return false;
}

// ---- Installation ------------------------------------------------------------------

void AddCodeUpcaster(const std::string& event, uint32_t from, uint32_t to, UpcastFn fn, const std::string& name,
                     bool splits) {
  CodeUpcasters().push_back({event, from, to, std::move(fn), name, splits});
}

Result<std::shared_ptr<const Upcaster>> LoadUpcasters(const std::string& store_dir, const std::string& extra_migrations_dir) {
  auto upcaster = std::make_shared<Upcaster>();
  RILL_RETURN_IF_ERROR(upcaster->LoadShipped());
  for (const auto& c : CodeUpcasters())
    RILL_RETURN_IF_ERROR(upcaster->Register(c.event, c.from, c.to, c.fn, c.name, c.splits));
  if (!store_dir.empty()) RILL_RETURN_IF_ERROR(upcaster->LoadDirectory(MigrationsDir(store_dir)));
  if (!extra_migrations_dir.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(extra_migrations_dir, ec))
      return Status::NotFound(fmt::format("{}: no such migrations directory", extra_migrations_dir));
    RILL_RETURN_IF_ERROR(upcaster->LoadDirectory(extra_migrations_dir));
  }
  return std::shared_ptr<const Upcaster>(std::move(upcaster));
}

Status CheckDeclaredSchemas(const Upcaster& upcaster, const std::vector<std::pair<std::string, uint32_t>>& declared) {
  std::string problems;
  for (const auto& [type, schema] : declared) {
    uint32_t current = upcaster.CurrentSchema(type);
    if (current == schema) continue;
    if (!problems.empty()) problems += "; ";
    problems += current > schema
                    ? fmt::format("{}: migrations upcast it to schema {} but the domain declares {}", type, current, schema)
                    : fmt::format("{}: the domain declares schema {} but migrations stop at {} (add a step {} -> {})",
                                  type, schema, current, current, current + 1);
  }
  if (problems.empty()) return Status::OK();
  return Status::InvalidArgument("event schemas disagree with migrations: " + problems);
}

void InstallUpcaster(StoreOptions* options, std::shared_ptr<const Upcaster> upcaster) {
  if (!upcaster || upcaster->empty()) return;
  if (upcaster->ExpandsOnRead()) {
    // Splits and merges change how many events one stored event reads as.
    options->read_expand = [upcaster](Event&& e, const StoreOptions::StoredEventReader& read_stored,
                                      std::vector<Event>* out) { return upcaster->Expand(std::move(e), read_stored, out); };
    return;
  }
  options->read_transform = [upcaster](Event& e) { return upcaster->UpcastInPlace(e); };
}

Status InstallUpcasters(StoreOptions* options, const std::string& store_dir, const std::string& extra_migrations_dir) {
  auto loaded = LoadUpcasters(store_dir, extra_migrations_dir);
  if (!loaded.ok()) return loaded.status();
  InstallUpcaster(options, std::move(loaded).value());
  return Status::OK();
}

}  // namespace rill
