#include "core/upcaster.h"

#include "core/json_depth.h"

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

struct Op {
  enum Kind { kRename, kDefault, kRemove, kNest, kUnnest, kConvert, kRetype } kind;
  Path from, to, path;       // per kind
  std::vector<Path> fields;  // nest
  std::shared_ptr<rapidjson::Document> value;  // default
  std::string target;        // convert: number|integer|string; retype: the type
  double factor = 1.0;
};

struct Step {
  std::string event;
  uint32_t from = 0, to = 0;
  std::vector<Op> ops;  // declarative
  UpcastFn fn;          // or C++
  bool splits = false;
  std::string retype;
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
    for (rapidjson::SizeType i = 0; i < ops->value.Size(); ++i) {
      Op op{};
      RILL_RETURN_IF_ERROR(ParseOp(ops->value[i], fmt::format("/ops/{}", i), &op));
      if (op.kind == Op::kRetype) {
        if (!step->retype.empty()) return ErrorAt(fmt::format("/ops/{}", i), "more than one retype in one migration");
        step->retype = op.target;
      }
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

  Status ParseOp(const rapidjson::Value& v, const std::string& at, Op* op) {
    if (!v.IsObject()) return ErrorAt(at, "each op must be a JSON object");
    std::string name;
    RILL_RETURN_IF_ERROR(RequireString(v, at, "op", &name));
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
    } else if (name == "split" || name == "merge") {
      return ErrorAt(at + "/op", fmt::format("\"{}\" cannot be said in a file: write a C++ upcaster (see core/upcaster.h)", name));
    } else {
      return ErrorAt(at + "/op", fmt::format("unknown op \"{}\" (expected rename, default, remove, nest, unnest, convert, retype)", name));
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

  Status Add(Step step) {
    auto key = [](const Step& s) { return std::tie(s.event, s.from); };
    auto pos = std::lower_bound(steps.begin(), steps.end(), step, [&](const Step& a, const Step& b) { return key(a) < key(b); });
    if (pos != steps.end() && pos->event == step.event && pos->from == step.from)
      return Status::InvalidArgument(fmt::format("{}: duplicate upcaster for {} schema {} (already defined by {})",
                                                 step.source, step.event, step.from, pos->source));
    steps.insert(pos, std::move(step));
    by_type.clear();
    current.clear();
    for (size_t i = 0; i < steps.size(); ++i) {
      const Step& s = steps[i];
      by_type[s.event][s.from] = i;
      uint32_t& c = current[s.event];
      c = std::max({c, s.to, 1u});
      if (!s.retype.empty()) {
        uint32_t& r = current[s.retype];
        r = std::max({r, s.to, 1u});
      }
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
        Status s = ApplyOp(op, ev.type, ev.data);
        if (!s.ok()) return s.WithContext(step.source);
      }
    }
    ev.schema = step.to;
    return Status::OK();
  }

  // Runs the chain of `ev` (and of any parts it splits into), appending the
  // resulting parts to *out in order.
  Status RunChain(UpcastEvent ev, bool allow_split, std::vector<UpcastEvent>* out) const {
    const Step* step = FindStep(ev.type, ev.schema);
    while (step && (allow_split || !step->splits)) {
      std::vector<UpcastEvent> extra;
      RILL_RETURN_IF_ERROR(RunStep(*step, ev, allow_split ? &extra : nullptr));
      if (!extra.empty()) {
        RILL_RETURN_IF_ERROR(RunChain(std::move(ev), allow_split, out));
        for (auto& part : extra) RILL_RETURN_IF_ERROR(RunChain(std::move(part), allow_split, out));
        return Status::OK();
      }
      step = FindStep(ev.type, ev.schema);
    }
    out->push_back(std::move(ev));
    return Status::OK();
  }
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
  for (const Step& s : impl_->steps) out.push_back({s.event, s.from, s.to, s.retype, s.source, s.splits});
  return out;
}

std::vector<size_t> Upcaster::ChainOf(std::string_view type, uint32_t schema) const {
  std::vector<size_t> chain;
  size_t index = 0;
  std::string t(type);
  const Step* step = impl_->FindStep(t, schema, &index);
  while (step) {
    chain.push_back(index);
    if (step->splits) break;  // what the parts go through depends on the data
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

Status Upcaster::UpcastInPlace(Event& event) const {
  const Step* first = impl_->FindStep(event.type, event.schema);
  if (!first || first->splits) return Status::OK();  // the common case: nothing to do
  Scratch& scratch = t_scratch;
  scratch.allocator.Clear();
  UpcastEvent ev{event.type, event.schema, rapidjson::Document(&scratch.allocator, 1024, &scratch.stack_allocator)};
  if (!rill::json::CheckDepth(event.data, "").ok())
    return Status::Corruption(fmt::format("event at position {} ({} schema {}): data nests deeper than {} levels",
                                          event.position, event.type, event.schema, rill::json::kMaxJsonDepth));
  ev.data.Parse(event.data.data(), event.data.size());
  if (ev.data.HasParseError() || !ev.data.IsObject())
    return Status::Corruption(fmt::format("event at position {} ({} schema {}): data is not a JSON object",
                                          event.position, event.type, event.schema));
  std::vector<UpcastEvent> out;
  Status s = impl_->RunChain(std::move(ev), /*allow_split=*/false, &out);
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

Status Upcaster::Upcast(const Event& event, std::vector<Event>* out) const {
  if (!impl_->FindStep(event.type, event.schema)) {
    out->push_back(event);
    return Status::OK();
  }
  UpcastEvent ev;
  ev.type = event.type;
  ev.schema = event.schema;
  if (!rill::json::CheckDepth(event.data, "").ok())
    return Status::Corruption(fmt::format("event at position {} ({} schema {}): data nests deeper than {} levels",
                                          event.position, event.type, event.schema, rill::json::kMaxJsonDepth));
  ev.data.Parse(event.data.data(), event.data.size());
  if (ev.data.HasParseError() || !ev.data.IsObject())
    return Status::Corruption(fmt::format("event at position {} ({} schema {}): data is not a JSON object",
                                          event.position, event.type, event.schema));
  std::vector<UpcastEvent> parts;
  Status s = impl_->RunChain(std::move(ev), /*allow_split=*/true, &parts);
  if (!s.ok())
    return s.WithContext(fmt::format("upcasting event at position {} ({} schema {})", event.position, event.type, event.schema));
  for (size_t i = 0; i < parts.size(); ++i) {
    Event e = event;
    e.type = std::move(parts[i].type);
    e.schema = parts[i].schema;
    e.data = Serialize(parts[i].data);
    e.id = DerivePartId(event.id, i);
    out->push_back(std::move(e));
  }
  return Status::OK();
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

Status InstallUpcasters(StoreOptions* options, const std::string& store_dir, const std::string& extra_migrations_dir) {
  auto loaded = LoadUpcasters(store_dir, extra_migrations_dir);
  if (!loaded.ok()) return loaded.status();
  std::shared_ptr<const Upcaster> upcaster = std::move(loaded).value();
  if (upcaster->empty()) return Status::OK();
  options->read_transform = [upcaster](Event& e) { return upcaster->UpcastInPlace(e); };
  return Status::OK();
}

}  // namespace rill
