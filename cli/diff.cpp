// rill diff STREAM V1 V2: what changed in an aggregate's state between two
// versions, and the events that changed it.
#include <fmt/format.h>
#include <rapidjson/document.h>

#include "cli/cli.h"

namespace rill::cli {
namespace {

struct DiffOptions {
  std::string stream;
  uint64_t from = 0, to = 0;
};

struct Change {
  std::string field;
  const rapidjson::Value* before;  // null: absent
  const rapidjson::Value* after;
};

std::string Show(const rapidjson::Value* v) {
  if (!v) return "(absent)";
  if (v->IsString()) return std::string(v->GetString(), v->GetStringLength());
  return json::Canonical(*v);
}

int RunDiff(const GlobalOptions& g, const DiffOptions& o) {
  if (o.from > o.to) return Fail(g, kExitUsage, fmt::format("usage: V1 ({}) must not be after V2 ({})", o.from, o.to));
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(g, store.status());
  auto info = (*store)->GetStream(o.stream);
  if (!info.ok()) return Fail(g, info.status());
  if (o.to > info->head_version)
    return Fail(g, Status::NotFound(fmt::format("stream {} has no version {} (it is at {})", o.stream, o.to,
                                                info->head_version)));
  StateView before;
  if (o.from == 0) {
    // Version 0: the aggregate's initial state.
    const AggregateType* t = Domains().ForStream(o.stream);
    if (!t) return Fail(g, Status::NotFound(fmt::format("no aggregate type owns stream {}", o.stream)));
    before.stream = o.stream;
    before.state = t->StateToJson(*t->NewState());
  } else {
    auto b = ReplayState(**store, Domains(), o.stream, {.until_version = o.from});
    if (!b.ok()) return Fail(g, b.status());
    before = *b;
  }
  auto after = ReplayState(**store, Domains(), o.stream, {.until_version = o.to});
  if (!after.ok()) return Fail(g, after.status());
  std::vector<Event> events;
  if (o.to > o.from) {
    Status s = (*store)->ReadStream(o.stream, Direction::kForward, o.from + 1, o.to - o.from, &events);
    if (!s.ok()) return Fail(g, s);
  }

  rapidjson::Document b, a;
  b.Parse(before.state.c_str());
  a.Parse(after->state.c_str());
  std::vector<Change> changes;
  for (auto it = a.MemberBegin(); it != a.MemberEnd(); ++it) {
    auto bi = b.FindMember(it->name);
    if (bi == b.MemberEnd() || bi->value != it->value)
      changes.push_back({it->name.GetString(), bi == b.MemberEnd() ? nullptr : &bi->value, &it->value});
  }
  for (auto it = b.MemberBegin(); it != b.MemberEnd(); ++it)
    if (!a.HasMember(it->name)) changes.push_back({it->name.GetString(), &it->value, nullptr});

  if (g.json) {
    PrintJsonLine([&](JsonWriter& w) {
      w.StartObject();
      w.Key("stream");
      w.String(o.stream);
      w.Key("from");
      w.Uint64(o.from);
      w.Key("to");
      w.Uint64(o.to);
      w.Key("changes");
      w.StartArray();
      for (const auto& c : changes) {
        w.StartObject();
        w.Key("field");
        w.String(c.field);
        w.Key("before");
        if (c.before) c.before->Accept(w); else w.Null();
        w.Key("after");
        if (c.after) c.after->Accept(w); else w.Null();
        w.EndObject();
      }
      w.EndArray();
      w.Key("events");
      w.StartArray();
      for (const auto& e : events) WriteEventJson(w, e);
      w.EndArray();
      w.EndObject();
    });
    return kExitOk;
  }
  if (g.quiet) return kExitOk;
  fmt::print("{} version {} -> {} ({} event{})\n", o.stream, o.from, o.to, events.size(), events.size() == 1 ? "" : "s");
  Table t({"field", "before", "after"});
  for (const auto& c : changes) t.Add({c.field, Show(c.before), Show(c.after)});
  if (t.size() == 0) fmt::print("no change\n");
  else t.Print();
  if (!events.empty()) {
    fmt::print("\n");
    Table et({"version", "time", "type", "data"}, {true, false, false, false});
    for (const auto& e : events) et.Add({std::to_string(e.version), DisplayTime(e.time_us), e.type, e.data});
    et.Print();
  }
  return kExitOk;
}

void SetupDiff(CLI::App& root, GlobalOptions& g) {
  auto o = std::make_shared<DiffOptions>();
  auto* cmd = root.add_subcommand("diff", "Show what changed in an aggregate's state between two versions");
  cmd->add_option("stream", o->stream, "Stream, e.g. account-42")->required();
  cmd->add_option("v1", o->from, "Earlier version (0: the initial state)")->required();
  cmd->add_option("v2", o->to, "Later version")->required();
  cmd->callback([o, &g] { g.exit_code = RunDiff(g, *o); });
}

}  // namespace

RILL_COMMANDS("diff", SetupDiff);

}  // namespace rill::cli
