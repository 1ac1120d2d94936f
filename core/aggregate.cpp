#include "core/aggregate.h"

#include <fmt/format.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <string_view>
#include <vector>

#include "core/domain_registry.h"
#include "core/json_fields.h"
#include "core/process_manager.h"

namespace rill {

namespace json {

const char* FieldKindName(FieldKind kind) {
  switch (kind) {
    case FieldKind::kInteger: return "integer";
    case FieldKind::kNumber: return "number";
    case FieldKind::kBool: return "bool";
    case FieldKind::kString: return "string";
    case FieldKind::kObject: return "object";
  }
  return "?";
}

Status FieldReader::CheckNoUnknownFields(const std::vector<FieldInfo>& known) {
  for (auto it = object_.MemberBegin(); it != object_.MemberEnd(); ++it) {
    std::string_view name(it->name.GetString(), it->name.GetStringLength());
    bool found = false;
    for (const auto& f : known) found = found || f.name == name;
    if (!found) {
      std::string list;
      for (const auto& f : known) list += (list.empty() ? "" : ", ") + f.name;
      return Status::InvalidArgument(std::string(what_) + ": unknown field \"" + std::string(name) +
                                     "\" (fields: " + (list.empty() ? "none" : list) + ")");
    }
  }
  return Status::OK();
}

namespace {

// What the parser lets through but readers cannot agree on: a "\udc00"
// escape decodes to bytes that are not UTF-8, and of a key given twice in
// one object one reader takes the first, another the last.
Status CheckDecoded(const rapidjson::Value& v, const char* what) {
  auto unicode = [&](const char* s, rapidjson::SizeType n) {
    return IsValidUtf8(std::string_view(s, n))
               ? Status::OK()
               : Status::InvalidArgument(fmt::format(
                     "{} contains an unpaired UTF-16 surrogate escape, which is not Unicode", what));
  };
  if (v.IsString()) return unicode(v.GetString(), v.GetStringLength());
  if (v.IsArray()) {
    for (const auto& e : v.GetArray()) RILL_RETURN_IF_ERROR(CheckDecoded(e, what));
    return Status::OK();
  }
  if (!v.IsObject()) return Status::OK();
  std::vector<std::string_view> names;
  names.reserve(v.MemberCount());
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
    RILL_RETURN_IF_ERROR(unicode(it->name.GetString(), it->name.GetStringLength()));
    names.emplace_back(it->name.GetString(), it->name.GetStringLength());
    RILL_RETURN_IF_ERROR(CheckDecoded(it->value, what));
  }
  std::sort(names.begin(), names.end());
  auto twice = std::adjacent_find(names.begin(), names.end());
  if (twice != names.end())
    return Status::InvalidArgument(fmt::format("{} has the key \"{}\" twice in one object", what, *twice));
  return Status::OK();
}

}  // namespace

Status Parse(std::string_view text, rapidjson::Document* doc, const char* what) {
  RILL_RETURN_IF_ERROR(CheckDepth(text, what));
  doc->Parse<rapidjson::kParseValidateEncodingFlag>(text.data(), text.size());
  if (doc->HasParseError())
    return Status::InvalidArgument(std::string(what) + " is not valid JSON: " +
                                   rapidjson::GetParseError_En(doc->GetParseError()) + " at offset " +
                                   std::to_string(doc->GetErrorOffset()));
  if (!doc->IsObject()) return Status::InvalidArgument(std::string(what) + " must be a JSON object");
  return CheckDecoded(*doc, what);
}

Status SmallDocument::Parse(std::string_view text, const char* what) {
  RILL_RETURN_IF_ERROR(CheckDepth(text, what));
  doc_.Parse(text.data(), text.size());
  if (doc_.HasParseError())
    return Status::InvalidArgument(std::string(what) + " is not valid JSON: " +
                                   rapidjson::GetParseError_En(doc_.GetParseError()) + " at offset " +
                                   std::to_string(doc_.GetErrorOffset()));
  if (!doc_.IsObject()) return Status::InvalidArgument(std::string(what) + " must be a JSON object");
  return Status::OK();
}

std::string Canonical(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace json

Status AggregateType::Decide(const AnyState& state, uint64_t version, std::string_view command_type,
                             const rapidjson::Value& data, Decision* out) const {
  auto it = commands_.find(command_type);
  if (it == commands_.end()) {
    std::string list;
    for (const auto& [name, _] : commands_) list += (list.empty() ? "" : ", ") + name;
    return Status::InvalidArgument("aggregate " + name_ + " has no command " + std::string(command_type) +
                                   " (commands: " + list + ")");
  }
  return it->second.decide(state, version, data, out);
}

void AggregateType::Apply(AnyState& state, const DecidedEvent& event) const {
  auto it = events_.find(event.type);
  if (it != events_.end()) it->second.apply_typed(state, event.value());
}

Status AggregateType::Apply(AnyState& state, std::string_view type, std::string_view data) const {
  auto it = events_.find(type);
  if (it == events_.end()) return Status::OK();
  json::SmallDocument doc;
  RILL_RETURN_IF_ERROR(doc.Parse(data, it->first.c_str()));
  return it->second.apply_json(state, doc.root());
}

std::vector<MessageInfo> AggregateType::commands() const {
  std::vector<MessageInfo> out;
  for (const auto& [name, e] : commands_) out.push_back({name, 1, e.fields});
  return out;
}

std::vector<MessageInfo> AggregateType::events() const {
  std::vector<MessageInfo> out;
  for (const auto& [name, e] : events_) out.push_back({name, e.schema, e.fields});
  return out;
}

const std::vector<json::FieldInfo>* AggregateType::CommandFields(std::string_view type) const {
  auto it = commands_.find(type);
  return it == commands_.end() ? nullptr : &it->second.fields;
}

// ---- DomainRegistry ---------------------------------------------------------

void DomainRegistry::Add(std::shared_ptr<const AggregateType> type) {
  std::string name = type->name();
  types_[name] = std::move(type);
}

void DomainRegistry::AddProcessManager(std::shared_ptr<ProcessManager> manager) {
  managers_.push_back(std::move(manager));
}

const AggregateType* DomainRegistry::Find(std::string_view aggregate) const {
  auto it = types_.find(aggregate);
  return it == types_.end() ? nullptr : it->second.get();
}

const AggregateType* DomainRegistry::ForStream(std::string_view stream) const {
  size_t dash = stream.find('-');
  if (dash == std::string_view::npos) return nullptr;  // an aggregate stream is category-id
  return Find(stream.substr(0, dash));
}

std::vector<const AggregateType*> DomainRegistry::ForCommand(std::string_view type) const {
  std::vector<const AggregateType*> out;
  for (const auto& [_, t] : types_)
    if (t->HasCommand(type)) out.push_back(t.get());
  return out;
}

std::vector<const AggregateType*> DomainRegistry::aggregates() const {
  std::vector<const AggregateType*> out;
  for (const auto& [_, t] : types_) out.push_back(t.get());
  return out;
}

std::map<std::string, uint32_t> DomainRegistry::EventSchemas() const {
  std::map<std::string, uint32_t> out;
  for (const auto& [_, t] : types_)
    for (const auto& e : t->events()) out[e.type] = std::max(out[e.type], e.schema);
  return out;
}

}  // namespace rill
