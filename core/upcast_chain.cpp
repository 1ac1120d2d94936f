// Reading an event through its chain of steps (core/upcaster.h,
// "Upcasting"): in place, on its own with splits, and with merges, which pair
// it with its neighbour in the stream.
#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/internal/upcast_ops.h"
#include "core/internal/upcast_steps.h"
#include "core/json_fields.h"
#include "core/upcaster.h"

namespace rill {

namespace {

using upcast::Op;
using upcast::Path;
using upcast::Step;
using upcast::StepIndex;

// Bounds the steps one event runs, so parts that split back into their own
// source never loop.
constexpr int kStepBudget = 10000;

Status RunStep(const Step& step, UpcastEvent& ev, std::vector<UpcastEvent>* extra) {
  if (step.fn) {
    Status s = step.fn(ev, extra);
    if (!s.ok()) return s.WithContext(step.source);
    if (!ev.data.IsObject()) return Status::Corruption(step.source + ": upcaster left data that is not an object");
    ev.schema = step.to;
    return Status::OK();
  }
  ev.schema = step.to;  // a split then gives each part its own
  for (const Op& op : step.ops) {
    Status s = op.spec->apply(op, ev, extra);
    if (!s.ok()) return s.WithContext(step.source);
  }
  return Status::OK();
}

// Runs the chain of `ev` (and of any parts it splits into), appending the
// resulting parts to *out in order. In place (!allow_split) it stops before
// the first step that splits or merges. On read, a "merge" step ends the
// chain with its earlier ops applied and its schema `to` (the unpaired
// form); when `merge` is given (the event itself, not a part of a split),
// it is set to that step so Expand can pair the event with its partner.
Status RunChain(const StepIndex& impl, UpcastEvent ev, bool allow_split, std::vector<UpcastEvent>* out,
                const Step** merge, int* budget) {
  const Step* step = impl.FindStep(ev.type, ev.schema);
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
      RILL_RETURN_IF_ERROR(RunChain(impl, std::move(ev), allow_split, out, nullptr, budget));
      for (auto& part : extra) RILL_RETURN_IF_ERROR(RunChain(impl, std::move(part), allow_split, out, nullptr, budget));
      return Status::OK();
    }
    step = impl.FindStep(ev.type, ev.schema);
  }
  out->push_back(std::move(ev));
  return Status::OK();
}

std::string Serialize(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

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

// A stored event's data as a JSON object, or Corruption naming the event
// (too deep to parse safely, or not an object).
Status ParseStoredData(const Event& event, rapidjson::Document* data) {
  if (!rill::json::CheckDepth(event.data, "").ok())
    return Status::Corruption(fmt::format("event at position {} ({} schema {}): data nests deeper than {} levels",
                                          event.position, event.type, event.schema, rill::json::kMaxJsonDepth));
  data->Parse(event.data.data(), event.data.size());
  if (data->HasParseError() || !data->IsObject())
    return Status::Corruption(fmt::format("event at position {} ({} schema {}): data is not a JSON object",
                                          event.position, event.type, event.schema));
  return Status::OK();
}

// The event read on its own: its whole chain, splits included; a "merge"
// step leaves it unpaired and is reported in *merge.
Status Solo(const StepIndex& impl, const Event& event, std::vector<Event>* out, const Step** merge) {
  if (!impl.FindStep(event.type, event.schema)) {
    out->push_back(event);
    return Status::OK();
  }
  UpcastEvent ev;
  ev.type = event.type;
  ev.schema = event.schema;
  RILL_RETURN_IF_ERROR(ParseStoredData(event, &ev.data));
  std::vector<UpcastEvent> parts;
  int budget = kStepBudget;
  Status s = RunChain(impl, std::move(ev), /*allow_split=*/true, &parts, merge, &budget);
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

bool IsSystemEvent(const Event& e) { return !e.type.empty() && e.type[0] == '$'; }

}  // namespace

Status Upcaster::UpcastInPlace(Event& event) const {
  const Step* first = impl_->FindStep(event.type, event.schema);
  if (!first || first->splits || !first->merge_into.empty()) return Status::OK();  // the common case: nothing to do
  Scratch& scratch = t_scratch;
  scratch.allocator.Clear();
  UpcastEvent ev{event.type, event.schema, rapidjson::Document(&scratch.allocator, 1024, &scratch.stack_allocator)};
  RILL_RETURN_IF_ERROR(ParseStoredData(event, &ev.data));
  std::vector<UpcastEvent> out;
  int budget = kStepBudget;
  Status s = RunChain(*impl_, std::move(ev), /*allow_split=*/false, &out, nullptr, &budget);
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

Status Upcaster::Upcast(const Event& event, std::vector<Event>* out) const { return Solo(*impl_, event, out, nullptr); }

Status Upcaster::Expand(Event&& event, const StoreOptions::StoredEventReader& read_stored, std::vector<Event>* out) const {
  const Impl& impl = *impl_;
  if (IsSystemEvent(event) ||
      (!impl.FindStep(event.type, event.schema) && impl.partners.find(event.type) == impl.partners.end())) {
    out->push_back(std::move(event));  // the common case: nothing to do
    return Status::OK();
  }
  std::vector<Event> parts;
  const Step* merge = nullptr;
  RILL_RETURN_IF_ERROR(Solo(impl, event, &parts, &merge));
  // The partner of a merging event: the stored event right before it in its
  // stream, read on its own as exactly one event of the "into" type, and not
  // itself a merging event. Both sides of a pair test the same thing.
  auto partner_of = [&](const Event& stored, const std::string& into, Event* partner) -> Result<bool> {
    if (IsSystemEvent(stored)) return false;
    std::vector<Event> pp;
    const Step* pm = nullptr;
    RILL_RETURN_IF_ERROR(Solo(impl, stored, &pp, &pm));
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
        const Path& as = merge->ops.back().path;  // the merge op's "as"
        if (as.empty()) {
          for (auto& m : mine.GetObject())
            upcast::SetMember(doc, std::string(m.name.GetString(), m.name.GetStringLength()), rapidjson::Value(m.value, a), a);
        } else {
          rapidjson::Value copy(mine, a);
          Status s = upcast::Set(doc, as, std::move(copy), a);
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
      RILL_RETURN_IF_ERROR(Solo(impl, next, &np, &nm));
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

}  // namespace rill
