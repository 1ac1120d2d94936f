#include "core/internal/migration_file.h"

#include <fmt/format.h>
#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#include <algorithm>

#include "core/internal/upcast_ops.h"
#include "core/json_fields.h"
#include "store/event.h"

namespace rill::upcast {

namespace {

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

}  // namespace

Status MigrationReader::Parse() {
  std::string copy(text_);  // NUL-terminated for StringStream
  if (!rill::json::CheckDepth(copy, "").ok())
    return Error(0, fmt::format("JSON nests deeper than {} levels", rill::json::kMaxJsonDepth));
  doc_.Parse<rapidjson::kParseValidateEncodingFlag>(copy.c_str(), copy.size());
  if (doc_.HasParseError())
    return Error(doc_.GetErrorOffset(), fmt::format("invalid JSON: {}", rapidjson::GetParseError_En(doc_.GetParseError())));
  rapidjson::StringStream ss(copy.c_str());
  OffsetRecorder rec(ss, offsets_);
  rapidjson::Reader reader;
  reader.Parse(ss, rec);
  return Status::OK();
}

Status MigrationReader::Error(size_t offset, const std::string& reason) const {
  return Status::InvalidArgument(fmt::format("{}:{}: {}", source_, LineOf(text_, offset), reason));
}

Status MigrationReader::ErrorAt(const std::string& pointer, const std::string& reason) const {
  std::string p = pointer;
  while (true) {
    auto it = offsets_.find(p);
    if (it != offsets_.end()) return Error(it->second, reason);
    if (p.empty()) return Error(0, reason);
    p = p.substr(0, p.rfind('/'));
  }
}

Status MigrationReader::RequireString(const rapidjson::Value& obj, const std::string& at, const char* key,
                                      std::string* out) const {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) return ErrorAt(at, fmt::format("missing key \"{}\"", key));
  if (!it->value.IsString() || it->value.GetStringLength() == 0)
    return ErrorAt(at + "/" + key, fmt::format("\"{}\" must be a non-empty string", key));
  out->assign(it->value.GetString(), it->value.GetStringLength());
  return Status::OK();
}

Status MigrationReader::RequireSchema(const rapidjson::Value& obj, const std::string& at, const char* key,
                                      uint64_t* out) const {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) return ErrorAt(at, fmt::format("missing key \"{}\"", key));
  if (!it->value.IsUint64() || it->value.GetUint64() < 1 || it->value.GetUint64() >= UINT32_MAX)
    return ErrorAt(at + "/" + key, fmt::format("\"{}\" must be a schema number (an integer >= 1)", key));
  *out = it->value.GetUint64();
  return Status::OK();
}

Status MigrationReader::RequirePath(const rapidjson::Value& obj, const std::string& at, const char* key,
                                    Path* out) const {
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

namespace {

// Where an op of each shape may stand in its step, and what it tells the step.
Status AddToStep(const MigrationReader& file, Op op, const std::string& at, bool last, Step* step) {
  const std::string_view name = op.spec->name;
  switch (op.spec->shape) {
    case OpShape::kData:
      break;
    case OpShape::kRetype:
      if (!step->retype.empty()) return file.ErrorAt(at, "more than one retype in one migration");
      step->retype = op.target;
      break;
    case OpShape::kSplit:
    case OpShape::kMerge: {
      const bool split = op.spec->shape == OpShape::kSplit;
      if (!last) return file.ErrorAt(at, fmt::format("\"{}\" must be the last op of its migration", name));
      if (!step->retype.empty())
        return file.ErrorAt(at, fmt::format("\"{}\" and \"retype\" cannot be in one migration ({})", name,
                                            split ? "each part names its type" : "a merged event takes its partner's type"));
      if (!split) {
        step->merge_into = op.target;
        break;
      }
      step->splits = true;
      for (size_t p = 0; p < op.parts.size(); ++p) {
        SplitPart& part = op.parts[p];
        if (part.type.empty()) part.type = step->event;
        if (part.schema == 0) part.schema = part.type == step->event ? step->to : 1;
        // A part that this step (or an earlier one of its type) would take
        // again would loop forever on read.
        if (part.type == step->event && part.schema <= step->from)
          return file.ErrorAt(fmt::format("{}/parts/{}", at, p),
                              fmt::format("split: part {} is {} at schema {}, which this migration would upcast again "
                                          "(give it schema {} or more)", p, part.type, part.schema, step->to));
        step->produces.emplace_back(part.type, part.schema);
      }
      break;
    }
  }
  step->ops.push_back(std::move(op));
  return Status::OK();
}

}  // namespace

Status ParseMigrationFile(std::string_view text, const std::string& source, Step* step) {
  MigrationReader file(text, source);
  RILL_RETURN_IF_ERROR(file.Parse());
  const rapidjson::Document& doc = file.root();
  if (!doc.IsObject()) return file.ErrorAt("", "a migration must be a JSON object");
  for (auto& m : doc.GetObject()) {
    std::string k = m.name.GetString();
    if (k != "event" && k != "from" && k != "to" && k != "ops" && k != "description")
      return file.ErrorAt("/" + k, fmt::format("unknown key \"{}\" (expected event, from, to, ops, description)", k));
  }
  RILL_RETURN_IF_ERROR(file.RequireString(doc, "", "event", &step->event));
  if (Status s = ValidateTypeName(step->event); !s.ok()) return file.ErrorAt("/event", "bad event type: " + s.message());
  uint64_t from = 0, to = 0;
  RILL_RETURN_IF_ERROR(file.RequireSchema(doc, "", "from", &from));
  RILL_RETURN_IF_ERROR(file.RequireSchema(doc, "", "to", &to));
  if (to != from + 1) return file.ErrorAt("/to", fmt::format("\"to\" must be \"from\" + 1 ({}), not {}", from + 1, to));
  step->from = static_cast<uint32_t>(from);
  step->to = static_cast<uint32_t>(to);
  auto ops = doc.FindMember("ops");
  if (ops == doc.MemberEnd()) return file.ErrorAt("", "missing key \"ops\"");
  if (!ops->value.IsArray() || ops->value.Empty()) return file.ErrorAt("/ops", "\"ops\" must be a non-empty array");
  for (rapidjson::SizeType i = 0; i < ops->value.Size(); ++i) {
    Op op{};
    std::string at = fmt::format("/ops/{}", i);
    RILL_RETURN_IF_ERROR(ParseOp(file, ops->value[i], at, /*in_part=*/false, &op));
    RILL_RETURN_IF_ERROR(AddToStep(file, std::move(op), at, /*last=*/i + 1 == ops->value.Size(), step));
  }
  step->source = source;
  return Status::OK();
}

}  // namespace rill::upcast
