// rill append: raw event appends, one from the command line or many from a
// JSONL file. File input is validated completely before anything is written
// (bad input writes nothing), then pipelined through EventStore::AppendAsync
// so the group-commit writer batches it, and each line's outcome is printed
// in input order as soon as it and every line before it are acknowledged.
#include <fmt/format.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "cli/cli.h"
#include "cli/json_input.h"
#include "core/append_guard.h"
#include "core/request_ids.h"
#include "store/start_thread.h"

namespace rill::cli {
namespace {

struct AppendArgs {
  std::string stream, type, data = "{}", meta = "{}", expect = "any", schema, id, file;
  bool force = false;
};

AppendGuard::Options GuardOptions(const AppendArgs& a) {
  return {.force = a.force, .forced_by = "rill append --force", .force_hint = "--force"};
}

// Fields of one append --file line (docs/design.md, "CLI contract").
const std::vector<std::string_view> kLineFields = {"stream", "type", "data", "expect", "id", "schema", "meta"};
const std::vector<std::string_view> kLineObjects = {"data", "meta"};

// Everything the CLI checks before the store sees the request, so that bad
// input gets one clear line and writes nothing. data and meta are compact
// JSON object texts already (CompactJsonObject or ParseJsonLine). `id` ("" for
// none) was checked where it was read: --id by RequestIdCheck, a line's "id"
// by RequestFromLine, each of which also refuses a given but empty id.
Result<AppendRequest> BuildRequest(const std::string& stream, const std::string& type, std::string data,
                                   std::string meta, ExpectedVersion expected, uint32_t schema,
                                   const std::string& id) {
  RILL_RETURN_IF_ERROR(WithName(ValidateStreamName(stream), "stream", stream));
  RILL_RETURN_IF_ERROR(WithName(ValidateTypeName(type), "type", type));
  NewEvent e;
  e.type = type;
  e.schema = schema;
  e.data = std::move(data);
  e.meta = std::move(meta);
  RILL_RETURN_IF_ERROR(CheckEventSize(e));
  AppendRequest r;
  r.stream = stream;
  r.expected = expected;
  r.request_id = id;
  r.events.push_back(std::move(e));
  UseRequestIdAsEventId(&r);
  return r;
}

Result<AppendRequest> RequestFromLine(std::string_view line) {
  JsonLine j;
  RILL_RETURN_IF_ERROR(ParseJsonLine(line, kLineFields, kLineObjects, &j));
  auto stream = j.String("stream");
  if (!stream.ok()) return stream.status();
  auto type = j.String("type");
  if (!type.ok()) return type.status();
  ExpectedVersion expected = ExpectedVersion::Any();
  if (auto it = j.scalars.find("expect"); it != j.scalars.end()) {
    Result<ExpectedVersion> e = Status::InvalidArgument(
        "\"expect\" must be \"any\", \"no-stream\", \"exists\" or a version number");
    if (it->second.kind == JsonScalar::kString) e = ParseExpected(it->second.text, "\"expect\"");
    if (it->second.kind == JsonScalar::kNumber) {
      auto v = ParseUint(it->second.text, "\"expect\"");
      e = v.ok() ? Result<ExpectedVersion>(ExpectedVersion::Exact(*v)) : Result<ExpectedVersion>(v.status());
    }
    if (!e.ok()) return e.status();
    expected = *e;
  }
  uint64_t schema = 1;
  if (j.Has("schema")) {
    auto s = j.Uint("schema", 1, UINT32_MAX);
    if (!s.ok()) return s.status();
    schema = *s;
  }
  std::string id;
  if (j.Has("id")) {
    auto i = j.String("id");
    if (!i.ok()) return i.status();
    // Given, it must be a usable id: "" is not "no id".
    RILL_RETURN_IF_ERROR(ValidateRequestId(*i, "id"));
    id = std::move(*i);
  }
  auto data = j.objects.find("data");
  if (data == j.objects.end()) return Status::InvalidArgument("missing field \"data\"");
  auto meta = j.objects.find("meta");
  return BuildRequest(*stream, *type, std::move(data->second), meta == j.objects.end() ? "{}" : std::move(meta->second),
                      expected, static_cast<uint32_t>(schema), id);
}

// One acknowledgement: --json {"stream",...,"line"} (line only from a file),
// text "line N: STREAM version V position P", nothing with --quiet.
std::string SuccessText(const GlobalOptions& g, const AppendResult& r, size_t line) {
  if (g.json) return AckJson(r, line);
  if (g.quiet) return "";
  std::string where = line ? fmt::format("line {}: ", line) : "";
  return fmt::format("{}{} version {} position {}{}\n", where, r.stream, r.last_version, r.last_position,
                     r.duplicate ? " (duplicate id: nothing written)" : "");
}

void PrintSuccess(const GlobalOptions& g, const AppendResult& r, size_t line) {
  WriteStdout(SuccessText(g, r, line));
}

int PrintLineFailure(const GlobalOptions& g, const Status& s, size_t line, bool to_stderr = true) {
  WriteStdout(LineFailureText(g, s, line, to_stderr));
  return ExitCodeFor(s);
}

int RunSingle(GlobalOptions& g, const AppendArgs& a) {
  if (a.stream.empty() && a.type.empty())
    return Fail(g, kExitUsage, "usage: append needs STREAM TYPE [--data JSON] or --file F.jsonl");
  if (a.type.empty()) return Fail(g, kExitUsage, "usage: append needs an event TYPE after the stream");
  auto expected = ParseExpected(a.expect, "--expect");
  if (!expected.ok()) return Fail(g, expected.status());
  // No --schema: the type's current schema (known once the store is open).
  auto schema = a.schema.empty() ? Result<uint64_t>(uint64_t{1}) : ParseUint(a.schema, "--schema", 1, UINT32_MAX);
  if (!schema.ok()) return Fail(g, schema.status());
  auto data = CompactJsonObject(a.data, "data");
  if (!data.ok()) return Fail(g, data.status());
  auto meta = CompactJsonObject(a.meta, "meta");
  if (!meta.ok()) return Fail(g, meta.status());
  auto req = BuildRequest(a.stream, a.type, std::move(*data), std::move(*meta), *expected,
                          static_cast<uint32_t>(*schema), a.id);
  if (!req.ok()) return Fail(g, req.status());
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(g, store.status());
  if (a.schema.empty()) req->events[0].schema = CurrentSchema(a.type);
  AppendGuard guard(**store, Domains(), GuardOptions(a));
  if (Status s = guard.Admit(&*req); !s.ok()) return Fail(g, s);
  auto r = (*store)->Append(std::move(*req));
  if (!r.ok()) return Fail(g, r.status());
  PrintSuccess(g, *r, 0);
  return kExitOk;
}

// The in-order printer of pipelined appends: the writer thread fills slots,
// this thread prints the acknowledged prefix and flushes, so what has been
// printed is exactly what is durable.
class OrderedPrinter {
 public:
  OrderedPrinter(const GlobalOptions& g, uint64_t total) : g_(g), progress_(g, "append", total) {
    thread_ = MakeThread("printer", [this] { Loop(); });
  }
  ~OrderedPrinter() { Finish(); }

  // Reserves the next slot; blocks while too many are unprinted.
  size_t Reserve(size_t line) {
    std::unique_lock lock(mu_);
    space_.wait(lock, [&] { return slots_.size() < kWindow; });
    slots_.push_back({line, std::nullopt});
    return base_ + slots_.size() - 1;
  }
  void Complete(size_t seq, Result<AppendResult> r) {
    std::lock_guard lock(mu_);
    slots_[seq - base_].result = std::move(r);
    if (seq == base_) ready_.notify_one();
  }
  // Waits until every reserved slot is printed; returns the worst exit code.
  int Finish() {
    {
      std::lock_guard lock(mu_);
      closing_ = true;
      ready_.notify_one();
    }
    if (thread_.joinable()) thread_.join();
    progress_.Finish();
    if (repeats_ > 0)
      std::fprintf(stderr, "rill: %zu more line%s failed the same way\n", repeats_, repeats_ == 1 ? "" : "s");
    repeats_ = 0;
    if (out_.failed() && !failure_reported_) {
      failure_reported_ = true;
      Status s = out_.FailureStatus("appended or refused (each refusal has its line on stderr)");
      std::fprintf(stderr, "rill: %s: %s\n", s.CodeName(), s.message().c_str());
      exit_code_ = WorseExit(exit_code_, kExitError);
    }
    return exit_code_;
  }
  // Set once the acknowledgements cannot be written: appending more lines
  // would store what nobody is told about.
  bool OutputFailed() const { return output_failed_.load(); }

 private:
  static constexpr size_t kWindow = 1 << 16;
  struct Slot {
    size_t line;
    std::optional<Result<AppendResult>> result;
  };

  void Loop() {
    std::vector<Slot> batch;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        ready_.wait(lock, [&] { return (!slots_.empty() && slots_.front().result) || (closing_ && slots_.empty()); });
        if (slots_.empty()) return;
        while (!slots_.empty() && slots_.front().result) {
          batch.push_back(std::move(slots_.front()));
          slots_.pop_front();
          ++base_;
        }
        space_.notify_one();
      }
      for (auto& s : batch) {
        if (s.result->ok())
          out_.Add(SuccessText(g_, **s.result, s.line), s.line);
        else {
          // After a failed commit (a full disk, an I/O error) every later
          // line fails alike: one stderr line for the lot, not thousands.
          // The first I/O error stops the writer, and the lines after it
          // fail with "the log writer stopped": the same cause, counted.
          const Status& st = s.result->status();
          std::string key = std::string(st.CodeName()) + ": " + st.message();
          bool repeat = key == last_error_ || (io_failed_ && st.code() == Code::kIOError);
          io_failed_ = io_failed_ || st.code() == Code::kIOError;
          if (repeat) ++repeats_;
          last_error_ = std::move(key);
          out_.Add(LineFailureText(g_, st, s.line, !repeat), s.line);
          exit_code_ = WorseExit(exit_code_, ExitCodeFor(st));
        }
      }
      done_ += batch.size();
      batch.clear();
      if (!out_.Flush()) output_failed_ = true;
      progress_.Update(done_);
    }
  }

  const GlobalOptions& g_;
  Progress progress_;
  std::mutex mu_;
  std::condition_variable ready_, space_;
  std::deque<Slot> slots_;
  size_t base_ = 0;  // sequence number of slots_.front()
  bool closing_ = false;
  uint64_t done_ = 0;
  int exit_code_ = kExitOk;
  std::string last_error_;
  size_t repeats_ = 0;
  bool io_failed_ = false;
  ResultWriter out_;
  std::atomic<bool> output_failed_{false};
  bool failure_reported_ = false;
  std::thread thread_;
};

int RunFile(GlobalOptions& g, const AppendArgs& a) {
  auto text = ReadFileOrStdin(a.file);
  if (!text.ok()) return Fail(g, text.status());
  std::vector<LineRef> lines = SplitLines(*text);

  // Pass 1: validate everything; report every bad line (up to a limit).
  size_t bad = 0, checked = 0;
  {
    Progress progress(g, "append: checking", lines.size());
    for (const LineRef& l : lines) {
      progress.Update(++checked);
      auto r = RequestFromLine(std::string_view(text->data() + l.offset, l.length));
      if (r.ok()) continue;
      if (++bad <= 20) PrintLineFailure(g, r.status(), l.number);
    }
  }
  if (bad > 0) {
    if (bad > 20) std::fprintf(stderr, "rill: ... and %zu more bad lines\n", bad - 20);
    std::fprintf(stderr, "rill: %s: %zu bad line%s, nothing appended\n", a.file.c_str(), bad, bad == 1 ? "" : "s");
    return kExitUsage;
  }

  auto store = OpenStore(g);
  if (!store.ok()) return Fail(g, store.status());

  // Pass 1b: the lines against the aggregates owning their streams, still
  // before anything is written. Lines let through by --force are remembered
  // for pass 2, which parses them again.
  std::vector<bool> forced(lines.size(), false);
  {
    AppendGuard guard(**store, Domains(), GuardOptions(a));
    for (size_t i = 0; i < lines.size(); ++i) {
      auto r = RequestFromLine(std::string_view(text->data() + lines[i].offset, lines[i].length));
      bool f = false;
      Status s = guard.Admit(&*r, &f);
      forced[i] = f;
      if (s.code() != Code::kInvalidArgument && !s.ok()) return Fail(g, s);
      if (!s.ok() && ++bad <= 20) PrintLineFailure(g, s, lines[i].number);
    }
  }
  if (bad > 0) {
    if (bad > 20) std::fprintf(stderr, "rill: ... and %zu more bad lines\n", bad - 20);
    std::fprintf(stderr, "rill: %s: %zu bad line%s, nothing appended\n", a.file.c_str(), bad, bad == 1 ? "" : "s");
    return kExitUsage;
  }

  // Pass 2: pipeline. Lines are parsed again rather than held as requests,
  // so a large file costs its text once, not twice.
  int exit_code = kExitOk;
  {
    OrderedPrinter printer(g, lines.size());
    for (size_t i = 0; i < lines.size(); ++i) {
      const LineRef& l = lines[i];
      if (printer.OutputFailed()) break;  // Finish() says what was stored
      if (InterruptRequested()) {
        exit_code = kExitInterrupted;
        std::fprintf(stderr, "rill: interrupted: stopped before line %zu; every line printed above is stored\n",
                     l.number);
        break;
      }
      auto r = RequestFromLine(std::string_view(text->data() + l.offset, l.length));
      if (forced[i])
        for (NewEvent& e : r->events) e.meta = MarkForced(e.meta, "rill append --force");
      size_t seq = printer.Reserve(l.number);
      (*store)->AppendAsync(std::move(*r), [&printer, seq](Result<AppendResult> res) {
        printer.Complete(seq, std::move(res));
      });
    }
    exit_code = WorseExit(exit_code, printer.Finish());
  }
  return exit_code;
}

int RunAppend(GlobalOptions& g, const AppendArgs& a) {
  if (!a.file.empty()) return RunFile(g, a);
  return RunSingle(g, a);
}

void SetupAppend(CLI::App& root, GlobalOptions& g) {
  auto a = std::make_shared<AppendArgs>();
  CLI::App* cmd = root.add_subcommand("append", "Append a raw event, or every line of a JSONL file");
  std::vector<CLI::Option*> single = {
      cmd->add_option("stream", a->stream, "Stream to append to, e.g. account-42"),
      cmd->add_option("type", a->type, "Event type, e.g. Deposited"),
      cmd->add_option("--data", a->data, "Event data: a JSON object")->capture_default_str(),
      cmd->add_option("--meta", a->meta, "Event metadata: a JSON object")->capture_default_str(),
      cmd->add_option("--expect", a->expect, "Expected version: any, no-stream, exists or N")->capture_default_str(),
      cmd->add_option("--schema", a->schema, "Schema version of the event's data (>= 1; default: the type's current schema, see rill-migrations(1))"),
      cmd->add_option("--id", a->id,
                      "Idempotency key: the same id again returns the first outcome and writes nothing "
                      "(a UUID also becomes the event id)")
          ->check(RequestIdCheck()),
  };
  CLI::Option* file = cmd->add_option("--file", a->file, "JSONL file of appends, one per line ('-' for stdin)");
  cmd->add_flag("--force", a->force,
                "Append to an aggregate's stream an event its aggregate cannot evolve (surgery); each such "
                "event's meta records \"$forced_by\"");
  cmd->callback([a, &g, single, file] {
    // Each line of a file says all of this itself; mixing them is a mistake.
    if (file->count() > 0)
      for (CLI::Option* o : single)
        if (o->count() > 0) {
          g.exit_code = Fail(g, kExitUsage,
                             fmt::format("usage: {} cannot be combined with --file (each line gives its own)",
                                         o->get_name()));
          return;
        }
    g.exit_code = RunAppend(g, *a);
  });
}

}  // namespace

RILL_COMMANDS("append", SetupAppend);

}  // namespace rill::cli
