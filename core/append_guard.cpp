#include "core/append_guard.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <vector>

#include "core/activation.h"

namespace rill {

AppendGuard::AppendGuard(EventStore& store, const DomainRegistry& registry, Options options)
    : store_(store), registry_(registry), options_(std::move(options)) {}

Result<AppendGuard::Stream*> AppendGuard::Load(const std::string& stream, const AggregateType* type) {
  auto it = streams_.find(stream);
  if (it != streams_.end()) return &it->second;
  Stream s;
  s.type = type;
  ActivatedState loaded;
  Status st = ActivateState(store_, *type, stream, &loaded);
  if (st.code() == Code::kInvalidArgument) {
    s.broken = st;  // an event already stored that evolve cannot read
  } else if (!st.ok()) {
    return st;
  }
  s.state = loaded.state ? std::move(loaded.state) : type->NewState();
  s.version = loaded.version;
  return &streams_.emplace(stream, std::move(s)).first->second;
}

Status AppendGuard::Evolve(Stream& s, const std::string& stream, const NewEvent& e) {
  const AggregateType& type = *s.type;
  const uint64_t version = s.version + 1;
  auto refuse = [&](const std::string& why) {
    return Status::InvalidArgument(fmt::format("{} belongs to aggregate {}: {} at version {} {} ({} appends it anyway)",
                                               stream, type.name(), e.type, version, why, options_.force_hint));
  };
  if (!s.broken.ok()) return refuse("cannot be checked: " + s.broken.message());
  for (const auto& m : type.events())
    if (m.type == e.type && e.schema > m.schema)
      return refuse(fmt::format("has schema {}, newer than the aggregate's {}", e.schema, m.schema));
  // Evolve reads events as the store hands them out, upcast.
  Event as_stored;
  as_stored.stream = stream;
  as_stored.version = version;
  as_stored.type = e.type;
  as_stored.schema = e.schema;
  as_stored.data = e.data;
  as_stored.meta = e.meta;
  std::vector<Event> read;
  Status st = store_.ReadAsStored(std::move(as_stored), &read);
  if (!st.ok()) return refuse("cannot be upcast: " + st.message());
  // Evolve onto a copy: a refused event must leave the state as it was.
  auto next = type.NewState();
  RILL_RETURN_IF_ERROR(type.StateFromJson(type.StateToJson(*s.state), *next));
  for (const Event& r : read) {
    // The type as the domain reads it: an upcaster may rename or split it.
    if (!type.Evolves(r.type)) {
      std::string list;
      for (const auto& m : type.events()) list += (list.empty() ? "" : ", ") + m.type;
      std::string as = r.type == e.type ? "" : fmt::format(" (read as {})", r.type);
      return refuse(fmt::format("is not an event it evolves{} (events: {})", as, list));
    }
    st = type.Apply(*next, r.type, r.data);
    if (!st.ok()) return refuse("does not evolve: " + st.message());
  }
  s.state = std::move(next);
  s.version = version;
  return Status::OK();
}

Status AppendGuard::Admit(AppendRequest* request, bool* forced) {
  if (forced) *forced = false;
  const AggregateType* type = registry_.ForStream(request->stream);
  if (!type) return Status::OK();
  auto s = Load(request->stream, type);
  if (!s.ok()) return s.status();
  // A request whose expected version does not hold is a conflict, which the
  // store reports (exit 3) and which writes nothing: what it would have
  // appended is moot.
  const uint64_t head = (**s).version;
  const ExpectedVersion& want = request->expected;
  if ((want.kind == ExpectedVersion::kExact && want.version != head) ||
      (want.kind == ExpectedVersion::kNoStream && head != 0) || (want.kind == ExpectedVersion::kExists && head == 0))
    return Status::OK();
  for (NewEvent& e : request->events) {
    Status st = Evolve(**s, request->stream, e);
    if (st.ok()) continue;
    if (!options_.force) return st;
    // Forced past: the aggregate will not see it as it is, so later events
    // are checked against the state without it, and the stream's version
    // still moves on.
    e.meta = MarkForced(e.meta, options_.forced_by);
    Stream& fs = **s;
    ++fs.version;
    if (fs.broken.ok() && type->Evolves(e.type))
      fs.broken = Status::InvalidArgument(fmt::format("version {} was forced in and does not evolve", fs.version));
    ++forced_;
    if (forced) *forced = true;
  }
  return Status::OK();
}

std::string MarkForced(std::string_view meta, std::string_view by) {
  rapidjson::Document doc;
  doc.Parse(meta.data(), meta.size());
  if (doc.HasParseError() || !doc.IsObject()) doc.SetObject();
  auto& alloc = doc.GetAllocator();
  doc.RemoveMember(kForcedByMetaKey);
  doc.AddMember(rapidjson::Value(kForcedByMetaKey, alloc), rapidjson::Value(by.data(), by.size(), alloc), alloc);
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  doc.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace rill
