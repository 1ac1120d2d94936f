#include "core/internal/upcast_ops.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <system_error>

#include "core/internal/migration_file.h"
#include "store/event.h"

namespace rill::upcast {

namespace {

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

// convert's value change: `v` becomes op.target ("number", "integer" or "string").
Status ConvertValue(rapidjson::Value& v, const Op& op, Alloc& a) {
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

// A type name an op gives, at `at`/`key`.
Status RequireType(const MigrationReader& file, const rapidjson::Value& v, const std::string& at, const char* key,
                   std::string_view what, std::string* out) {
  RILL_RETURN_IF_ERROR(file.RequireString(v, at, key, out));
  if (Status s = ValidateTypeName(*out); !s.ok())
    return file.ErrorAt(at + "/" + key, fmt::format("{}: bad type: {}", what, s.message()));
  return Status::OK();
}

}  // namespace

// ---- The op table -----------------------------------------------------------
//
// Adding an op is one entry here:
//   {name, the keys it takes besides "op", its OpShape (kData for anything
//    that only reshapes the data; the others are read by the file parser and
//    the chain), parse (arguments into Op's members, errors through `file` so
//    they carry file:line), apply (what it does to an event; Corruption, never
//    a guess, for a value it cannot handle)},
// plus:
//   - its cases in core/tests/upcaster_ops_test.cpp, and its sample in
//     core/tests/upcast_op_table_test.cpp (which fails until it has one and
//     until the docs below name the op);
//   - its line in docs/upcasting.md (the example's ops) and its entry in
//     man/rill-migrations.1 (FILE FORMAT).
// Nothing else dispatches on op names: parsing, the unknown-key and
// unknown-op errors and applying all go through this table. Order matters
// only for the "expected ..." list of the unknown-op error.
const std::vector<OpSpec>& OpTable() {
  static const std::vector<OpSpec> table = {
      // rename {from, to}: moves a value; a missing source is nothing to do;
      // intermediate objects of `to` are created; a value at `to` is replaced.
      {"rename", {"from", "to"}, OpShape::kData,
       [](const MigrationReader& file, const rapidjson::Value& v, const std::string& at, Op* op) {
         RILL_RETURN_IF_ERROR(file.RequirePath(v, at, "from", &op->from));
         RILL_RETURN_IF_ERROR(file.RequirePath(v, at, "to", &op->to));
         if (op->from == op->to) return file.ErrorAt(at, "rename: \"from\" and \"to\" are the same path");
         return Status::OK();
       },
       [](const Op& op, UpcastEvent& ev, std::vector<UpcastEvent>*) {
         rapidjson::Document& doc = ev.data;
         Alloc& a = doc.GetAllocator();
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
       }},

      // default {path, value}: sets `value` (any JSON) when `path` is missing.
      {"default", {"path", "value"}, OpShape::kData,
       [](const MigrationReader& file, const rapidjson::Value& v, const std::string& at, Op* op) {
         RILL_RETURN_IF_ERROR(file.RequirePath(v, at, "path", &op->path));
         auto it = v.FindMember("value");
         if (it == v.MemberEnd()) return file.ErrorAt(at, "default: missing key \"value\"");
         op->value = std::make_shared<rapidjson::Document>();
         op->value->CopyFrom(it->value, op->value->GetAllocator());
         return Status::OK();
       },
       [](const Op& op, UpcastEvent& ev, std::vector<UpcastEvent>*) {
         if (Find(ev.data, op.path)) return Status::OK();
         Alloc& a = ev.data.GetAllocator();
         rapidjson::Value copy(*op.value, a);
         return Set(ev.data, op.path, std::move(copy), a);
       }},

      // remove {path}: deletes `path` if present.
      {"remove", {"path"}, OpShape::kData,
       [](const MigrationReader& file, const rapidjson::Value& v, const std::string& at, Op* op) {
         return file.RequirePath(v, at, "path", &op->path);
       },
       [](const Op& op, UpcastEvent& ev, std::vector<UpcastEvent>*) {
         rapidjson::Value v;
         Take(ev.data, op.path, &v);
         return Status::OK();
       }},

      // nest {fields, into}: moves each present field (a path) into the object
      // `into` under its last segment name; `into` may be one of the fields
      // ({"owner":"Ann"} nest [owner] into owner -> {"owner":{"owner":"Ann"}}).
      {"nest", {"fields", "into"}, OpShape::kData,
       [](const MigrationReader& file, const rapidjson::Value& v, const std::string& at, Op* op) {
         auto it = v.FindMember("fields");
         if (it == v.MemberEnd()) return file.ErrorAt(at, "nest: missing key \"fields\"");
         if (!it->value.IsArray() || it->value.Empty())
           return file.ErrorAt(at + "/fields", "nest: \"fields\" must be a non-empty array of paths");
         for (rapidjson::SizeType i = 0; i < it->value.Size(); ++i) {
           const auto& f = it->value[i];
           std::string fat = fmt::format("{}/fields/{}", at, i);
           if (!f.IsString() || f.GetStringLength() == 0)
             return file.ErrorAt(fat, "nest: each field must be a non-empty string");
           Path p = SplitPath(f.GetString());
           for (const auto& seg : p)
             if (seg.empty()) return file.ErrorAt(fat, fmt::format("nest: \"{}\" is not a valid dotted path", f.GetString()));
           op->fields.push_back(std::move(p));
         }
         return file.RequirePath(v, at, "into", &op->to);
       },
       [](const Op& op, UpcastEvent& ev, std::vector<UpcastEvent>*) {
         rapidjson::Document& doc = ev.data;
         Alloc& a = doc.GetAllocator();
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
       }},

      // unnest {from}: moves every member of the object `from` up one level
      // (replacing same-named siblings) and deletes `from`.
      {"unnest", {"from"}, OpShape::kData,
       [](const MigrationReader& file, const rapidjson::Value& v, const std::string& at, Op* op) {
         return file.RequirePath(v, at, "from", &op->from);
       },
       [](const Op& op, UpcastEvent& ev, std::vector<UpcastEvent>*) {
         rapidjson::Document& doc = ev.data;
         Alloc& a = doc.GetAllocator();
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
       }},

      // convert {path, to, factor?}: to is "number", "integer" or "string"; a
      // number is multiplied by `factor` (default 1; 0.01 for cents ->
      // decimal, 100 for back); "integer" rounds to nearest; a string is parsed
      // as a number first. A value that cannot be converted is an error on read
      // (never a silent misread).
      {"convert", {"path", "to", "factor"}, OpShape::kData,
       [](const MigrationReader& file, const rapidjson::Value& v, const std::string& at, Op* op) {
         RILL_RETURN_IF_ERROR(file.RequirePath(v, at, "path", &op->path));
         RILL_RETURN_IF_ERROR(file.RequireString(v, at, "to", &op->target));
         if (op->target != "number" && op->target != "integer" && op->target != "string")
           return file.ErrorAt(at + "/to", fmt::format("convert: \"to\" must be \"number\", \"integer\" or \"string\", not \"{}\"",
                                                       op->target));
         if (auto it = v.FindMember("factor"); it != v.MemberEnd()) {
           if (!it->value.IsNumber() || it->value.GetDouble() == 0 || !std::isfinite(it->value.GetDouble()))
             return file.ErrorAt(at + "/factor", "convert: \"factor\" must be a non-zero number");
           op->factor = it->value.GetDouble();
         }
         return Status::OK();
       },
       [](const Op& op, UpcastEvent& ev, std::vector<UpcastEvent>*) {
         rapidjson::Value* v = Find(ev.data, op.path);
         if (!v) return Status::OK();
         return ConvertValue(*v, op, ev.data.GetAllocator());
       }},

      // retype {to}: the event's type becomes `to`; the chain continues with
      // the steps of the new type.
      {"retype", {"to"}, OpShape::kRetype,
       [](const MigrationReader& file, const rapidjson::Value& v, const std::string& at, Op* op) {
         return RequireType(file, v, at, "to", "retype", &op->target);
       },
       [](const Op& op, UpcastEvent& ev, std::vector<UpcastEvent>*) {
         ev.type = op.target;
         return Status::OK();
       }},

      // split {parts: [{type?, schema?, ops?}, ...]}: the event reads as
      // several (core/upcaster.h). Each part starts from a copy of the data as
      // the ops before left it and runs its own data ops; part 0 replaces the
      // event, the others go to *extra_parts.
      {"split", {"parts"}, OpShape::kSplit,
       [](const MigrationReader& file, const rapidjson::Value& v, const std::string& at, Op* op) {
         auto it = v.FindMember("parts");
         if (it == v.MemberEnd()) return file.ErrorAt(at, "split: missing key \"parts\"");
         if (!it->value.IsArray() || it->value.Size() < 2)
           return file.ErrorAt(at + "/parts", "split: \"parts\" must be an array of at least two parts");
         for (rapidjson::SizeType i = 0; i < it->value.Size(); ++i) {
           const auto& pv = it->value[i];
           std::string pat = fmt::format("{}/parts/{}", at, i);
           if (!pv.IsObject()) return file.ErrorAt(pat, "split: each part must be a JSON object");
           for (auto& m : pv.GetObject()) {
             std::string k = m.name.GetString();
             if (k != "type" && k != "schema" && k != "ops")
               return file.ErrorAt(pat + "/" + k, fmt::format("split part: unknown key \"{}\" (expected type, schema, ops)", k));
           }
           SplitPart part;
           part.schema = 0;  // the default depends on the step (ParseMigrationFile)
           if (pv.HasMember("type")) RILL_RETURN_IF_ERROR(RequireType(file, pv, pat, "type", "split part", &part.type));
           if (pv.HasMember("schema")) {
             uint64_t schema = 0;
             RILL_RETURN_IF_ERROR(file.RequireSchema(pv, pat, "schema", &schema));
             part.schema = static_cast<uint32_t>(schema);
           }
           if (auto ops = pv.FindMember("ops"); ops != pv.MemberEnd()) {
             if (!ops->value.IsArray()) return file.ErrorAt(pat + "/ops", "split part: \"ops\" must be an array");
             for (rapidjson::SizeType j = 0; j < ops->value.Size(); ++j) {
               Op inner{};
               RILL_RETURN_IF_ERROR(ParseOp(file, ops->value[j], fmt::format("{}/ops/{}", pat, j), /*in_part=*/true, &inner));
               part.ops.push_back(std::move(inner));
             }
           }
           op->parts.push_back(std::move(part));
         }
         return Status::OK();
       },
       [](const Op& op, UpcastEvent& ev, std::vector<UpcastEvent>* extra) {
         if (!extra) return Status::Corruption("a split cannot be applied in place");
         std::vector<UpcastEvent> parts;
         for (const SplitPart& sp : op.parts) {
           UpcastEvent part;
           part.type = sp.type;
           part.schema = sp.schema;
           part.data.CopyFrom(ev.data, part.data.GetAllocator());
           for (const Op& inner : sp.ops) {
             Status s = inner.spec->apply(inner, part, nullptr);
             if (!s.ok()) return s.WithContext(fmt::format("part {}", parts.size()));
           }
           parts.push_back(std::move(part));
         }
         ev.type = std::move(parts[0].type);
         ev.schema = parts[0].schema;
         ev.data.CopyFrom(parts[0].data, ev.data.GetAllocator());
         for (size_t i = 1; i < parts.size(); ++i) extra->push_back(std::move(parts[i]));
         return Status::OK();
       }},

      // merge {into, as?}: folds the event into the one before it in its
      // stream (core/upcaster.h). `as` goes to Op::path (empty: top level).
      // Read on its own the event is unpaired, so applying it changes
      // nothing; the pairing needs the neighbour and is Upcaster::Expand's.
      {"merge", {"into", "as"}, OpShape::kMerge,
       [](const MigrationReader& file, const rapidjson::Value& v, const std::string& at, Op* op) {
         RILL_RETURN_IF_ERROR(RequireType(file, v, at, "into", "merge", &op->target));
         if (v.HasMember("as")) RILL_RETURN_IF_ERROR(file.RequirePath(v, at, "as", &op->path));
         return Status::OK();
       },
       [](const Op&, UpcastEvent&, std::vector<UpcastEvent>*) { return Status::OK(); }},
  };
  return table;
}

const OpSpec* FindOp(std::string_view name) {
  for (const OpSpec& spec : OpTable())
    if (spec.name == name) return &spec;
  return nullptr;
}

Status ParseOp(const MigrationReader& file, const rapidjson::Value& v, const std::string& at, bool in_part, Op* op) {
  if (!v.IsObject()) return file.ErrorAt(at, "each op must be a JSON object");
  std::string name;
  RILL_RETURN_IF_ERROR(file.RequireString(v, at, "op", &name));
  const OpSpec* spec = FindOp(name);
  if (!spec) {
    std::string expected;
    for (const OpSpec& s : OpTable()) expected += (expected.empty() ? "" : ", ") + std::string(s.name);
    return file.ErrorAt(at + "/op", fmt::format("unknown op \"{}\" (expected {})", name, expected));
  }
  if (in_part && spec->shape != OpShape::kData)
    return file.ErrorAt(at + "/op", fmt::format("split part: \"{}\" is not allowed inside a part ({})", name,
                                                spec->shape == OpShape::kRetype ? "give the part a \"type\""
                                                                                : "parts do not split or merge again"));
  op->spec = spec;
  RILL_RETURN_IF_ERROR(spec->parse(file, v, at, op));
  for (auto& m : v.GetObject()) {
    std::string k = m.name.GetString();
    if (k != "op" && std::find(spec->keys.begin(), spec->keys.end(), k) == spec->keys.end())
      return file.ErrorAt(at + "/" + k, fmt::format("{}: unknown key \"{}\"", name, k));
  }
  return Status::OK();
}

}  // namespace rill::upcast
