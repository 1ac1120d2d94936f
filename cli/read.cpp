// rill streams / show / log: reading the store. Text output is an aligned
// table with each event's data as compact JSON (cut at kDataChars); --json
// prints every event in full, one object per line.
#include <fmt/format.h>

#include <optional>

#include "cli/cli.h"
#include "cli/json_input.h"

namespace rill::cli {
namespace {

constexpr size_t kReadChunk = 1000;
constexpr size_t kDataChars = 200;

std::string MetadataText(const StreamMetadata& m) {
  std::vector<std::string> parts;
  if (m.max_count) parts.push_back(fmt::format("max-count={}", m.max_count));
  if (m.max_age_us) parts.push_back(fmt::format("max-age={}s", m.max_age_us / 1000000));
  if (m.truncate_before) parts.push_back(fmt::format("truncate-before={}", m.truncate_before));
  return fmt::format("{}", fmt::join(parts, " "));
}

// ---- streams ---------------------------------------------------------------

struct StreamsArgs {
  std::string category;
};

int RunStreams(GlobalOptions& g, const StreamsArgs& a) {
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(g, store.status());
  std::vector<StreamInfo> streams;
  Status s = (*store)->ListStreams(a.category, &streams);
  if (!s.ok()) return Fail(g, s);
  if (g.json) {
    for (const auto& info : streams) {
      PrintJsonLine([&](JsonWriter& w) {
        w.StartObject();
        w.Key("stream");
        w.String(info.name);
        w.Key("version");
        w.Uint64(info.head_version);
        w.Key("position");
        w.Uint64(info.head_position);
        if (info.deleted) {
          w.Key("deleted");
          w.Bool(true);
        }
        if (info.metadata != StreamMetadata{}) {
          w.Key("metadata");
          w.StartObject();
          w.Key("max_count");
          w.Uint64(info.metadata.max_count);
          w.Key("max_age");
          w.Int64(info.metadata.max_age_us / 1000000);
          w.Key("truncate_before");
          w.Uint64(info.metadata.truncate_before);
          w.EndObject();
        }
        w.EndObject();
      });
    }
    return kExitOk;
  }
  if (streams.empty()) {
    if (!g.quiet) std::fprintf(stderr, "no streams%s\n", a.category.empty() ? "" : " in that category");
    return kExitOk;
  }
  bool notes = false;
  for (const auto& info : streams) notes = notes || info.deleted || info.metadata != StreamMetadata{};
  std::vector<std::string> headers = {"STREAM", "VERSION", "POSITION"};
  if (notes) headers.push_back("NOTES");
  Table t(headers, {false, true, true, false});
  for (const auto& info : streams) {
    std::string note = info.deleted ? "deleted" : "";
    std::string meta = MetadataText(info.metadata);
    if (!meta.empty()) note += (note.empty() ? "" : " ") + meta;
    t.Add({info.name, std::to_string(info.head_version), std::to_string(info.head_position), note});
  }
  t.Print();
  return kExitOk;
}

// ---- show / log shared -------------------------------------------------------

// Prints events: --json one object per line; text as a table streamed in
// chunks (bounded memory for `rill log` over millions of events).
class EventPrinter {
 public:
  EventPrinter(const GlobalOptions& g, bool with_stream) : g_(g), with_stream_(with_stream) {}

  void Add(const Event& e) {
    if (g_.json) {
      std::string line = EventToJsonLine(e);
      line += '\n';
      std::fwrite(line.data(), 1, line.size(), stdout);
      return;
    }
    events_.push_back(e);
    events_.back().data = Abbreviate(e.data, kDataChars);
    events_.back().meta = Abbreviate(e.meta, kDataChars);
    if (events_.size() >= kReadChunk) Flush();
  }
  // The VERSION cell: "V", or "V.P" for part P (from 0) of an event an
  // upcaster's split reads as several (the parts share the version).
  static std::string VersionCell(const Event& e) {
    return e.parts > 1 ? fmt::format("{}.{}", e.version, e.part) : std::to_string(e.version);
  }
  // One unaligned line per event, for --follow where a table cannot wait.
  void PrintLine(const Event& e) {
    if (g_.json) return Add(e);
    std::string line = fmt::format("{}  {}  {}  {}  {}  {}", e.position, DisplayTime(e.time_us), e.stream,
                                   VersionCell(e), e.type, Abbreviate(e.data, kDataChars));
    if (e.meta != "{}") line += "  " + Abbreviate(e.meta, kDataChars);
    std::puts(line.c_str());
  }
  void Flush() {
    if (!g_.json && !events_.empty()) {
      bool meta = false;
      for (const auto& e : events_) meta = meta || e.meta != "{}";
      // A META column appears when first needed (with a new header).
      if (!table_ || (meta && !table_has_meta_)) NewTable(meta);
      for (const auto& e : events_) {
        std::vector<std::string> row;
        if (with_stream_)
          row = {std::to_string(e.position), DisplayTime(e.time_us), e.stream, VersionCell(e), e.type, e.data};
        else
          row = {VersionCell(e), std::to_string(e.position), DisplayTime(e.time_us), e.type, e.data};
        if (table_has_meta_) row.push_back(e.meta == "{}" ? "" : e.meta);
        table_->Add(std::move(row));
      }
      table_->Flush();
      events_.clear();
    }
  }
  // The reader of stdout went away (a closed pipe): stop reading.
  bool Broken() const { return std::ferror(stdout) != 0; }

 private:
  void NewTable(bool meta) {
    std::vector<std::string> headers;
    std::vector<bool> numeric;
    if (with_stream_) {
      headers = {"POSITION", "TIME", "STREAM", "VERSION", "TYPE", "DATA"};
      numeric = {true, false, false, true, false, false};
    } else {
      headers = {"VERSION", "POSITION", "TIME", "TYPE", "DATA"};
      numeric = {true, true, false, false, false};
    }
    if (meta) headers.push_back("META");
    table_.emplace(headers, numeric);
    table_has_meta_ = meta;
  }

  const GlobalOptions& g_;
  bool with_stream_;
  std::vector<Event> events_;
  std::optional<Table> table_;
  bool table_has_meta_ = false;
};

// ---- show ------------------------------------------------------------------

struct ShowArgs {
  std::string stream, from, count;
  bool backward = false, raw = false;
};

int RunShow(GlobalOptions& g, const ShowArgs& a) {
  uint64_t from = a.backward ? 0 : 1;
  if (!a.from.empty()) {
    auto f = ParseUint(a.from, "--from");
    if (!f.ok()) return Fail(g, f.status());
    from = *f;
  }
  uint64_t count = UINT64_MAX;
  if (!a.count.empty()) {
    auto c = ParseUint(a.count, "--count");
    if (!c.ok()) return Fail(g, c.status());
    count = *c;
  }
  Status valid = ValidateStreamName(a.stream, /*allow_system=*/true);
  if (!valid.ok()) return Fail(g, WithName(valid, "stream", a.stream));
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(g, store.status());
  EventPrinter out(g, /*with_stream=*/false);
  Direction dir = a.backward ? Direction::kBackward : Direction::kForward;
  uint64_t shown = 0;
  bool first = true;
  while (shown < count) {
    std::vector<Event> batch;
    size_t want = static_cast<size_t>(std::min<uint64_t>(count - shown, kReadChunk));
    Status s = (*store)->ReadStream(a.stream, dir, from, want, &batch, a.raw);
    if (!s.ok()) {
      if (s.IsNotFound() && first) return Fail(g, s);
      if (!s.IsNotFound()) return Fail(g, s);
      break;
    }
    first = false;
    if (batch.empty()) break;
    for (const auto& e : batch) out.Add(e);
    if (out.Broken()) return kExitError;
    shown += batch.size();
    uint64_t last = batch.back().version;
    if (a.backward) {
      if (last <= 1) break;
      from = last - 1;
    } else {
      from = last + 1;
    }
    if (batch.size() < want) break;
  }
  out.Flush();
  return kExitOk;
}

// ---- log -------------------------------------------------------------------

struct LogArgs {
  std::string from, count, type, category;
  bool follow = false, raw = false;
};

int RunLog(GlobalOptions& g, const LogArgs& a) {
  uint64_t from = 1;
  if (!a.from.empty()) {
    auto f = ParseUint(a.from, "--from");
    if (!f.ok()) return Fail(g, f.status());
    from = std::max<uint64_t>(*f, 1);
  }
  uint64_t count = UINT64_MAX;
  if (!a.count.empty()) {
    auto c = ParseUint(a.count, "--count");
    if (!c.ok()) return Fail(g, c.status());
    count = *c;
  }
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(g, store.status());
  auto matches = [&](const Event& e) {
    return (a.type.empty() || e.type == a.type) && (a.category.empty() || CategoryOf(e.stream) == a.category);
  };
  EventPrinter out(g, /*with_stream=*/true);
  uint64_t shown = 0;
  uint64_t next = from;  // first position not yet read
  while (shown < count && !InterruptRequested() && !StdoutFailed()) {
    std::vector<Event> batch;
    Status s = (*store)->ReadAll(next, kReadChunk, &batch, a.raw);
    if (!s.ok()) return Fail(g, s);
    if (batch.empty()) break;
    for (const auto& e : batch) {
      if (shown < count && matches(e)) {
        out.Add(e);
        ++shown;
      }
    }
    next = batch.back().position + 1;
    if (out.Broken()) return kExitError;
  }
  out.Flush();
  std::fflush(stdout);
  if (!a.follow || shown >= count) return kExitOk;

  // Follow: live commits (of any process) until SIGINT/SIGTERM or --count.
  auto sub = (*store)->Subscribe(next - 1, a.raw);
  while (shown < count && !InterruptRequested() && !StdoutFailed()) {
    std::vector<Event> batch;
    Status s = sub->Next(&batch, kReadChunk, std::chrono::milliseconds(200));
    if (!s.ok()) return Fail(g, s);
    for (const auto& e : batch) {
      if (shown < count && matches(e)) {
        out.PrintLine(e);
        ++shown;
      }
    }
    if (!batch.empty() && std::fflush(stdout) != 0) return kExitError;  // reader went away
  }
  return kExitOk;
}

void SetupRead(CLI::App& root, GlobalOptions& g) {
  auto sa = std::make_shared<StreamsArgs>();
  CLI::App* streams = root.add_subcommand("streams", "List streams with their head version");
  streams->add_option("--category", sa->category, "Only streams of this category (the part before the first '-')");
  streams->callback([sa, &g] { g.exit_code = RunStreams(g, *sa); });

  auto sh = std::make_shared<ShowArgs>();
  CLI::App* show = root.add_subcommand("show", "Show a stream's events");
  show->add_option("stream", sh->stream, "Stream name")->required();
  show->add_option("--from", sh->from, "First version (forward: >= N; backward: <= N, default the head)");
  show->add_option("--count", sh->count, "At most N events");
  show->add_flag("--backward", sh->backward, "Newest first");
  show->add_flag("--raw", sh->raw, "Events exactly as stored: no upcasting, no metadata filtering");
  show->callback([sh, &g] { g.exit_code = RunShow(g, *sh); });

  auto la = std::make_shared<LogArgs>();
  CLI::App* log = root.add_subcommand("log", "Show the global log ($all) in position order");
  log->add_option("--from", la->from, "First position (default 1)");
  log->add_option("--count", la->count, "At most N events (after filtering)");
  log->add_flag("--follow,-f", la->follow, "Keep printing new events until interrupted");
  log->add_option("--type", la->type, "Only events of this type");
  log->add_option("--category", la->category, "Only events of streams in this category");
  log->add_flag("--raw", la->raw, "Events exactly as stored, not upcast");
  log->callback([la, &g] { g.exit_code = RunLog(g, *la); });
}

}  // namespace

RILL_COMMANDS("read", SetupRead);

}  // namespace rill::cli
