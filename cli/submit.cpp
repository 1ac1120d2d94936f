// rill submit: send commands through the actor core, one from the command
// line or many from a JSONL file, then (unless --no-wait) run the process
// managers until they have handled what the commands caused.
#include <fmt/format.h>
#include <rapidjson/document.h>

#include <charconv>
#include <deque>
#include <unordered_set>

#include "cli/cli.h"
#include "cli/json_input.h"
#include "core/process_manager.h"

namespace rill::cli {
namespace {

struct SubmitOptions {
  std::string type;
  std::vector<std::string> fields;  // k=v
  std::string to;
  std::string data;
  std::string id;
  std::string expect;
  std::string file;
  bool no_wait = false;
};

// "any" -> none; "no-stream" -> 0; N -> N.
Status ParseExpect(const std::string& text, std::optional<uint64_t>* out) {
  if (text.empty()) return Status::OK();
  auto e = ExpectedVersion::Parse(text);
  if (!e.ok()) return e.status();
  switch (e->kind) {
    case ExpectedVersion::kAny: out->reset(); return Status::OK();
    case ExpectedVersion::kNoStream: *out = 0; return Status::OK();
    case ExpectedVersion::kExact: *out = e->version; return Status::OK();
    case ExpectedVersion::kExists: break;
  }
  return Status::InvalidArgument("--expect for a command is a version number, no-stream or any");
}

// Builds the command's data from --data and key=value arguments; values are
// typed by the command's declared fields (amount=5 is a number, user=42 a
// string when the field is a string).
Status BuildData(const SubmitOptions& o, std::string* out) {
  rapidjson::Document doc;
  if (!o.data.empty()) {
    RILL_RETURN_IF_ERROR(json::Parse(o.data, &doc, "--data"));
  } else {
    doc.SetObject();
  }
  auto& alloc = doc.GetAllocator();
  const std::vector<json::FieldInfo>* declared = nullptr;
  if (const AggregateType* t = Domains().ForStream(o.to)) declared = t->CommandFields(o.type);
  for (const std::string& kv : o.fields) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      return Status::InvalidArgument(fmt::format("'{}' is not key=value", kv));
    std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
    json::FieldKind kind = json::FieldKind::kString;
    if (declared)
      for (const auto& f : *declared)
        if (f.name == key) kind = f.kind;
    rapidjson::Value v;
    switch (kind) {
      case json::FieldKind::kInteger: {
        int64_t n = 0;
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (ec != std::errc() || p != value.data() + value.size())
          return Status::InvalidArgument(fmt::format("{}: '{}' is not an integer", key, value));
        v.SetInt64(n);
        break;
      }
      case json::FieldKind::kNumber: {
        char* end = nullptr;
        double d = std::strtod(value.c_str(), &end);
        if (value.empty() || *end) return Status::InvalidArgument(fmt::format("{}: '{}' is not a number", key, value));
        v.SetDouble(d);
        break;
      }
      case json::FieldKind::kBool:
        if (value != "true" && value != "false")
          return Status::InvalidArgument(fmt::format("{}: '{}' is not true or false", key, value));
        v.SetBool(value == "true");
        break;
      case json::FieldKind::kString: v.SetString(value.c_str(), static_cast<rapidjson::SizeType>(value.size()), alloc); break;
      case json::FieldKind::kObject:
        return Status::InvalidArgument(fmt::format("{} is an object: pass it with --data", key));
    }
    if (doc.HasMember(key.c_str())) doc.RemoveMember(key.c_str());
    doc.AddMember(rapidjson::Value(key.c_str(), static_cast<rapidjson::SizeType>(key.size()), alloc), v, alloc);
  }
  *out = json::Canonical(doc);
  // key=value text goes in unchecked above: validate the UTF-8 of the result.
  rapidjson::Document check;
  return json::Parse(*out, &check, "the command data");
}

// One accepted command: --json {"stream",...} (with "line" from a file),
// text "[line N: ]accepted: ...", nothing with --quiet.
std::string AcceptedText(const GlobalOptions& g, const CommandResult& r, uint64_t line) {
  if (g.json) return AckJson(r, line);
  if (g.quiet) return "";
  std::string where = line ? fmt::format("line {}: ", line) : "";
  if (r.events == 0) return fmt::format("{}accepted: {} unchanged at version {}\n", where, r.stream, r.last_version);
  return fmt::format("{}accepted: {} version {} position {} ({} event{}){}\n", where, r.stream, r.last_version,
                     r.last_position, r.events, r.events == 1 ? "" : "s",
                     r.duplicate ? " (duplicate: first outcome)" : "");
}

void PrintAccepted(const GlobalOptions& g, const CommandResult& r, uint64_t line) {
  WriteStdout(AcceptedText(g, r, line));
}

Status WaitForProcessManagers(EventStore& store, ActorRuntime& rt) {
  ProcessRunOptions o;
  o.stop = [] { return InterruptRequested(); };
  Status s = RunProcessManagers(store, rt, Domains(), o);
  if (!s.ok()) return s.WithContext("commands accepted, but the process managers failed");
  if (InterruptRequested()) return Status::Interrupted("interrupted while process managers ran");
  return Status::OK();
}

void WriteSaga(JsonWriter& w, const ProcessManager::Outcome& o) {
  w.StartObject();
  w.Key("saga");
  w.String(o.stream);
  w.Key("status");
  w.String(o.status);
  w.Key("reason");
  w.String(o.reason);
  w.EndObject();
}

// The text report of failed sagas: one line each, on stdout beside the
// command's own result (the command was accepted: exit 0 all the same).
void PrintFailedSagas(const GlobalOptions& g, const std::vector<ProcessManager::Outcome>& failed) {
  if (g.quiet) return;
  for (const auto& o : failed)
    fmt::print("saga {} {}: {}\n", o.stream, o.status, o.reason.empty() ? "(no reason given)" : o.reason);
}

// Parses one JSONL line: {"command","to","data","id","expect"}.
Status ParseLine(std::string_view text, Command* c) {
  rapidjson::Document d;
  RILL_RETURN_IF_ERROR(json::Parse(text, &d, "line"));
  auto str = [&](const char* k, std::string* out, bool required) -> Status {
    auto it = d.FindMember(k);
    if (it == d.MemberEnd() || it->value.IsNull()) {
      if (required) return Status::InvalidArgument(fmt::format("missing \"{}\"", k));
      return Status::OK();
    }
    if (!it->value.IsString()) return Status::InvalidArgument(fmt::format("\"{}\" must be a string", k));
    out->assign(it->value.GetString(), it->value.GetStringLength());
    return Status::OK();
  };
  RILL_RETURN_IF_ERROR(str("command", &c->type, true));
  RILL_RETURN_IF_ERROR(str("to", &c->stream, true));
  RILL_RETURN_IF_ERROR(str("id", &c->id, false));
  if (auto it = d.FindMember("id"); it != d.MemberEnd() && !it->value.IsNull())
    RILL_RETURN_IF_ERROR(ValidateRequestId(c->id, "\"id\""));  // given: "" is not "no id"
  for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it) {
    std::string_view k(it->name.GetString(), it->name.GetStringLength());
    if (k != "command" && k != "to" && k != "data" && k != "id" && k != "expect")
      return Status::InvalidArgument(fmt::format("unknown key \"{}\"", k));
    // FindMember sees the first of two equal keys; which one was meant is a guess.
    for (auto earlier = d.MemberBegin(); earlier != it; ++earlier)
      if (k == std::string_view(earlier->name.GetString(), earlier->name.GetStringLength()))
        return Status::InvalidArgument(fmt::format("key \"{}\" appears twice", k));
  }
  if (auto it = d.FindMember("data"); it != d.MemberEnd()) {
    if (!it->value.IsObject()) return Status::InvalidArgument("\"data\" must be a JSON object");
    c->data = json::Canonical(it->value);
  }
  if (auto it = d.FindMember("expect"); it != d.MemberEnd() && !it->value.IsNull()) {
    if (it->value.IsUint64()) c->expected_version = it->value.GetUint64();
    else if (it->value.IsString()) RILL_RETURN_IF_ERROR(ParseExpect(it->value.GetString(), &c->expected_version));
    else return Status::InvalidArgument("\"expect\" must be a version number");
  }
  return Status::OK();
}

int RunFile(const GlobalOptions& g, const SubmitOptions& o, EventStore& store, ActorRuntime& rt) {
  auto text = ReadFileOrStdin(o.file);
  if (!text.ok()) return Fail(g, text.status());
  std::vector<std::string_view> lines;
  std::string_view all = *text;
  while (!all.empty()) {
    size_t nl = all.find('\n');
    lines.push_back(all.substr(0, nl));
    all = nl == std::string_view::npos ? std::string_view() : all.substr(nl + 1);
  }
  uint64_t commands = 0;
  for (auto l : lines)
    if (l.find_first_not_of(" \t\r") != std::string_view::npos) ++commands;

  // Commands are pipelined (a bounded window in flight) and their results
  // printed in input order as they arrive.
  struct Pending {
    uint64_t line;
    Status parse_error;
    std::future<Result<CommandResult>> result;
  };
  std::deque<Pending> window;
  int first_failure = kExitOk;
  uint64_t done = 0, accepted = 0;
  std::vector<std::string> written;  // streams of accepted commands, first seen first
  std::unordered_set<std::string> seen;
  Progress progress(g, "submitting", commands);
  // Results are written in batches (a write per 64 KiB, and before waiting
  // for a result), so that a failed write says which results got out.
  ResultWriter out;
  std::string last_error;
  size_t repeats = 0;
  auto finish_one = [&] {
    Pending p = std::move(window.front());
    window.pop_front();
    Status s = p.parse_error;
    if (s.ok()) {
      if (p.result.wait_for(std::chrono::seconds(0)) != std::future_status::ready) out.Flush();
      auto r = p.result.get();
      if (r.ok()) {
        ++accepted;
        if (seen.insert(r->stream).second) written.push_back(r->stream);
        out.Add(AcceptedText(g, *r, p.line), p.line);
      } else {
        s = r.status();
      }
    }
    if (!s.ok()) {
      // After the writer fails (a full disk) every later command fails
      // alike: one stderr line for the lot, then a count (--json keeps one
      // object per line). Only I/O errors collapse: a bad line is named.
      std::string key = std::string(s.CodeName()) + ": " + s.message();
      bool repeat = key == last_error && s.code() == Code::kIOError;
      if (repeat) ++repeats;
      last_error = std::move(key);
      out.Add(LineFailureText(g, s, p.line, !repeat), p.line);
      if (first_failure == kExitOk) first_failure = ExitCodeFor(s);
    }
    if (out.buffered() >= (64 << 10)) out.Flush();
    progress.Update(++done);
  };
  bool interrupted = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view l = lines[i];
    if (l.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    if (out.failed()) break;  // nobody would be told what the rest did
    if (InterruptRequested()) {
      interrupted = true;
      break;
    }
    Pending p;
    p.line = i + 1;
    Command c;
    p.parse_error = ParseLine(l, &c);
    if (p.parse_error.ok()) p.result = rt.Submit(std::move(c));
    window.push_back(std::move(p));
    while (window.size() > 20000 || (!window.empty() && window.front().result.valid() &&
                                      window.front().result.wait_for(std::chrono::seconds(0)) ==
                                          std::future_status::ready))
      finish_one();
    while (!window.empty() && !window.front().result.valid()) finish_one();
  }
  while (!window.empty()) finish_one();
  out.Flush();
  progress.Finish();
  if (repeats > 0)
    std::fprintf(stderr, "rill: %zu more line%s failed the same way\n", repeats, repeats == 1 ? "" : "s");
  if (out.failed()) {
    Status failure = out.FailureStatus("accepted or rejected (each rejection has its line on stderr)");
    std::fprintf(stderr, "rill: %s: %s\n", failure.CodeName(), failure.message().c_str());
    return WorseExit(first_failure, kExitError);
  }
  if (interrupted) return Fail(g, Status::Interrupted(fmt::format("stopped after {} of {} commands", done, commands)));
  if (!o.no_wait && accepted > 0) {
    Status s = WaitForProcessManagers(store, rt);
    if (!s.ok()) return Fail(g, s);
    // After the results, in --json one {"saga",...} object per failed saga.
    std::vector<ProcessManager::Outcome> failed = FailedSagas(rt, Domains(), written);
    if (g.json) {
      for (const auto& f : failed) PrintJsonLine([&](JsonWriter& w) { WriteSaga(w, f); });
    } else {
      PrintFailedSagas(g, failed);
    }
  }
  if (!g.quiet && !g.json && commands > 1)
    std::fprintf(stderr, "rill: %llu of %llu commands accepted\n", static_cast<unsigned long long>(accepted),
                 static_cast<unsigned long long>(commands));
  return first_failure;
}

int RunSubmit(const GlobalOptions& g, const SubmitOptions& o) {
  if (o.file.empty()) {
    if (o.type.empty()) return Fail(g, kExitUsage, "usage: submit needs a command type (or --file F.jsonl)");
    if (o.to.empty()) return Fail(g, kExitUsage, "usage: submit needs --to STREAM");
  } else if (!o.type.empty() || !o.to.empty() || !o.fields.empty() || !o.data.empty() || !o.id.empty()) {
    return Fail(g, kExitUsage, "usage: --file takes the commands from the file; give no TYPE, --to, fields, --data or --id");
  }
  Command c;
  if (o.file.empty()) {
    c.type = o.type;
    c.stream = o.to;
    c.id = o.id;
    if (Status s = ParseExpect(o.expect, &c.expected_version); !s.ok()) return Fail(g, s);
    if (Status s = BuildData(o, &c.data); !s.ok()) return Fail(g, s);
  }
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(g, store.status());
  // One shard: a file's commands then reach the log in input order, so the
  // same file on the same store always gives the same versions and positions.
  auto rt = StartRuntime(**store, {.shards = 1});
  if (!rt.ok()) return Fail(g, rt.status());
  if (!o.file.empty()) return RunFile(g, o, **store, **rt);

  auto r = (*rt)->Execute(std::move(c));
  if (!r.ok()) return Fail(g, r.status());
  if (!g.json) PrintAccepted(g, *r, 0);  // before the wait: the command's own outcome is known
  std::vector<ProcessManager::Outcome> failed;
  if (!o.no_wait) {
    Status s = WaitForProcessManagers(**store, **rt);
    if (!s.ok()) return Fail(g, s);
    failed = FailedSagas(**rt, Domains(), {r->stream});
  }
  if (g.json) {
    PrintJsonLine([&](JsonWriter& w) {
      WriteAppendResult(w, *r, [&] {
        // Not waited for: nothing known; not a saga's stream: nothing to say.
        if (o.no_wait || !IsSagaStream(Domains(), r->stream)) return;
        w.Key("sagas");
        w.StartArray();
        for (const auto& f : failed) WriteSaga(w, f);
        w.EndArray();
      });
    });
  } else {
    PrintFailedSagas(g, failed);
  }
  return kExitOk;
}

void SetupSubmit(CLI::App& root, GlobalOptions& g) {
  auto o = std::make_shared<SubmitOptions>();
  auto* cmd = root.add_subcommand("submit", "Send a command (or a JSONL file of commands) through the actor core");
  cmd->add_option("type", o->type, "Command type, e.g. Deposit (see 'rill domains')");
  cmd->add_option("fields", o->fields, "Data fields as key=value, typed by the command's declaration");
  cmd->add_option("--to", o->to, "Target stream, e.g. account-42");
  cmd->add_option("--data", o->data, "Command data as a JSON object (key=value arguments override its fields)");
  cmd->add_option("--id", o->id, "Command id: the same id again returns the first outcome and runs nothing")
      ->check(RequestIdCheck());
  cmd->add_option("--expect", o->expect, "Expected stream version (N, no-stream or any)");
  cmd->add_option("--file", o->file, "JSONL file of commands ('-' for stdin): one result line per command, in order");
  cmd->add_flag("--no-wait", o->no_wait, "Do not wait for the process managers to handle what the commands caused");
  cmd->callback([o, &g] { g.exit_code = RunSubmit(g, *o); });
}

}  // namespace

RILL_COMMANDS("submit", SetupSubmit);

}  // namespace rill::cli
