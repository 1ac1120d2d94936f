// rill state STREAM [--at VERSION|TIME]: an aggregate's state, now (from the
// actor core: snapshot + tail) or as it was (replayed from events).
#include <fmt/format.h>
#include <rapidjson/document.h>

#include "cli/cli.h"

namespace rill::cli {
namespace {

// Prints a state: text as aligned "field value" rows, JSON as one object.
void PrintState(const GlobalOptions& g, const StateView& v, const std::string& at) {
  if (g.json) {
    PrintJsonLine([&](JsonWriter& w) {
      w.StartObject();
      w.Key("stream");
      w.String(v.stream);
      w.Key("aggregate");
      w.String(v.aggregate);
      w.Key("version");
      w.Uint64(v.version);
      w.Key("state");
      w.RawValue(v.state.data(), v.state.size(), rapidjson::kObjectType);
      w.EndObject();
    });
    return;
  }
  if (g.quiet) return;
  Table t({"field", "value"});
  t.Add({"stream", v.stream});
  bool at_time = !at.empty() && at.find_first_not_of("0123456789") != std::string::npos;
  t.Add({"version", std::to_string(v.version) + (at_time ? " (at " + at + ")" : "")});
  rapidjson::Document d;
  d.Parse(v.state.data(), v.state.size());
  if (d.IsObject())
    for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it) {
      std::string value = it->value.IsString() ? std::string(it->value.GetString(), it->value.GetStringLength())
                                               : json::Canonical(it->value);
      t.Add({it->name.GetString(), value});
    }
  t.Print();
}

struct StateOptions {
  std::string stream;
  std::string at;
};

// --at: a version number, or a time (2026-11-23T10:14:00Z).
Status ParseAt(const std::string& at, ReplayOptions* o) {
  if (!at.empty() && at.find_first_not_of("0123456789") == std::string::npos) {
    o->until_version = std::stoull(at);
    if (o->until_version == 0) return Status::InvalidArgument("--at: versions start at 1");
    return Status::OK();
  }
  auto t = ParseTime(at);
  if (!t) return Status::InvalidArgument(fmt::format("--at: '{}' is neither a version nor a time like 2026-11-23T10:14:00Z", at));
  o->until_time_us = *t;
  return Status::OK();
}

int RunState(const GlobalOptions& g, const StateOptions& o) {
  if (!Domains().ForStream(o.stream))
    return Fail(g, Status::NotFound(fmt::format("no aggregate type owns stream {} (see 'rill domains')", o.stream)));
  ReplayOptions ro;
  if (!o.at.empty())
    if (Status s = ParseAt(o.at, &ro); !s.ok()) return Fail(g, s);
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(g, store.status());
  if (o.at.empty()) {
    auto rt = StartRuntime(**store, {.shards = 1});
    if (!rt.ok()) return Fail(g, rt.status());
    auto v = (*rt)->GetState(o.stream);
    if (!v.ok()) return Fail(g, v.status());
    if (v->version == 0) return Fail(g, Status::NotFound(fmt::format("stream {} not found", o.stream)));
    PrintState(g, *v, "");
    return kExitOk;
  }
  auto v = ReplayState(**store, Domains(), o.stream, ro);
  if (!v.ok()) return Fail(g, v.status());
  if (ro.until_version && v->version < ro.until_version)
    return Fail(g, Status::NotFound(fmt::format("stream {} has no version {} (it is at {})", o.stream,
                                                ro.until_version, v->version)));
  if (v->version == 0) return Fail(g, Status::NotFound(fmt::format("stream {} had no events at {}", o.stream, o.at)));
  PrintState(g, *v, o.at);
  return kExitOk;
}

void SetupState(CLI::App& root, GlobalOptions& g) {
  auto o = std::make_shared<StateOptions>();
  auto* cmd = root.add_subcommand("state", "Show an aggregate's current state, or its state at a version or time");
  cmd->add_option("stream", o->stream, "Stream, e.g. account-42")->required();
  cmd->add_option("--at", o->at, "Version number or time (2026-11-23T10:14:00Z): the state as it was then");
  cmd->callback([o, &g] { g.exit_code = RunState(g, *o); });
}

}  // namespace

RILL_COMMANDS("state", SetupState);

}  // namespace rill::cli
