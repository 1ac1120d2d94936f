// rill domains: the aggregate, command and event types compiled into rill
// and loaded from plugins (--plugin, rill.conf).
// Also home of Domains()/StartRuntime(), the CLI's door to the actor core.
#include <fmt/format.h>

#include "cli/cli.h"
#include "domains/domains.h"

namespace rill::cli {

// Domains() is built by PrepareCommand (cli/config.cpp): built-ins + plugins.
Result<std::unique_ptr<ActorRuntime>> StartRuntime(EventStore& store, RuntimeOptions options) {
  ApplySettings(&options);  // shards, actor-bound, snapshot-interval from config/--set
  return ActorRuntime::Start(&store, &Domains(), options);
}

namespace {

std::string Signature(const MessageInfo& m, bool with_types) {
  std::string s = m.type + "(";
  for (size_t i = 0; i < m.fields.size(); ++i) {
    const auto& f = m.fields[i];
    s += (i ? ", " : "") + f.name;
    if (with_types) s += std::string(":") + json::FieldKindName(f.kind);
    if (f.optional) s += "?";
  }
  s += ")";
  if (m.schema > 1) s += fmt::format(" v{}", m.schema);
  return s;
}

void WriteFields(JsonWriter& w, const std::vector<json::FieldInfo>& fields) {
  w.StartArray();
  for (const auto& f : fields) {
    w.StartObject();
    w.Key("name");
    w.String(f.name);
    w.Key("type");
    w.String(json::FieldKindName(f.kind));
    w.Key("optional");
    w.Bool(f.optional);
    w.EndObject();
  }
  w.EndArray();
}

void WriteMessages(JsonWriter& w, const std::vector<MessageInfo>& messages, bool events) {
  w.StartArray();
  for (const auto& m : messages) {
    w.StartObject();
    w.Key("type");
    w.String(m.type);
    if (events) {
      w.Key("schema");
      w.Uint(m.schema);
    }
    w.Key("fields");
    WriteFields(w, m.fields);
    w.EndObject();
  }
  w.EndArray();
}

int RunDomains(const GlobalOptions& g) {
  const DomainRegistry& r = Domains();
  if (g.json) {
    for (const AggregateType* t : r.aggregates())
      PrintJsonLine([&](JsonWriter& w) {
        w.StartObject();
        w.Key("aggregate");
        w.String(t->name());
        w.Key("state_schema");
        w.Uint(t->state_schema());
        w.Key("snapshot_every");
        w.Uint64(t->snapshot_every());
        w.Key("state");
        WriteFields(w, t->state_fields());
        w.Key("commands");
        WriteMessages(w, t->commands(), false);
        w.Key("events");
        WriteMessages(w, t->events(), true);
        w.Key("plugin");  // null: compiled into rill
        if (std::string o = DomainOrigin(t->name()); o.empty()) w.Null();
        else w.String(o);
        w.EndObject();
      });
    for (const auto& pm : r.process_managers())
      PrintJsonLine([&](JsonWriter& w) {
        w.StartObject();
        w.Key("process_manager");
        w.String(pm->name());
        w.Key("categories");
        w.StartArray();
        for (const auto& c : pm->categories()) w.String(c);
        w.EndArray();
        w.Key("plugin");
        if (std::string o = DomainOrigin(pm->name()); o.empty()) w.Null();
        else w.String(o);
        w.EndObject();
      });
    return kExitOk;
  }
  if (g.quiet) return kExitOk;
  for (const AggregateType* t : r.aggregates()) {
    std::string snap = t->snapshot_every() ? fmt::format("snapshot every {} events", t->snapshot_every())
                                           : std::string("no snapshots");
    std::string origin = DomainOrigin(t->name());
    if (!origin.empty()) origin = "; plugin " + origin;
    fmt::print("{}  (streams {}-<id>; {}; state schema {}{})\n", t->name(), t->name(), snap, t->state_schema(),
               origin);
    std::string state;
    for (const auto& f : t->state_fields())
      state += fmt::format("{}{}:{}", state.empty() ? "" : ", ", f.name, json::FieldKindName(f.kind));
    fmt::print("  state     {}\n", state);
    bool first = true;
    for (const auto& c : t->commands()) {
      fmt::print("  {:<9} {}\n", first ? "commands" : "", Signature(c, true));
      first = false;
    }
    first = true;
    for (const auto& e : t->events()) {
      fmt::print("  {:<9} {}\n", first ? "events" : "", Signature(e, false));
      first = false;
    }
  }
  for (const auto& pm : r.process_managers()) {
    std::string cats;
    for (const auto& c : pm->categories()) cats += (cats.empty() ? "" : ", ") + c;
    std::string origin = DomainOrigin(pm->name());
    fmt::print("process manager {}  (reads {}{})\n", pm->name(), cats.empty() ? "all streams" : cats,
               origin.empty() ? "" : "; plugin " + origin);
  }
  return kExitOk;
}

void SetupDomains(CLI::App& root, GlobalOptions& g) {
  auto* cmd = root.add_subcommand("domains", "List the aggregate, command and event types compiled into rill or loaded from plugins");
  cmd->callback([&g] { g.exit_code = RunDomains(g); });
}

}  // namespace

RILL_COMMANDS("domains", SetupDomains);

}  // namespace rill::cli
