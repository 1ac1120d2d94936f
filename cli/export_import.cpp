// rill export / import: the whole log as JSONL in the event format of
// docs/design.md, and back. Import keeps ids, versions, times, schemas, meta and
// request ids with their fingerprints (so a retry answered as a duplicate on
// the original is one on the copy too), validates every line before writing
// anything, and pipelines the appends so group commit batches them. Into an
// empty store it keeps positions or refuses; --append renumbers.
#include <fmt/format.h>
#include <unistd.h>

#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>

#include "cli/cli.h"
#include "cli/json_input.h"
#include "core/append_guard.h"
#include "store/durable_file.h"
#include "store/system_events.h"

namespace rill::cli {
namespace {

// ---- export ----------------------------------------------------------------

struct ExportArgs {
  std::string output;
  bool raw = false;
};

// An export is for importing: an event that `rill import` would refuse
// fails the export instead of being written. Two ways one gets there: an
// upcast that grows an event past the size limit, and text stored before
// input refused unpaired surrogate escapes (their bytes are not UTF-8; such
// a string always holds a byte 0xED, so the full check runs only then).
Status CheckImportable(const Event& e, bool raw) {
  size_t bytes = EventSizeBytes(e);
  size_t limit = kDefaultMaxEventBytes;
  if (bytes > limit)
    return Status::FailedPrecondition(fmt::format(
        "event {} ({} v{}) is {} bytes{}; import accepts at most {}{}", e.position, e.stream,
        e.version, bytes, raw ? "" : " after upcasting", limit,
        raw ? "" : " (export --raw exports events as stored)"));
  for (const std::string* text : {&e.data, &e.meta}) {
    if (std::memchr(text->data(), 0xED, text->size()) != nullptr && !IsValidUtf8(*text))
      return Status::Corruption(fmt::format(
          "event {} ({} v{}) holds text that is not UTF-8 (an unpaired surrogate escape accepted by an older rill), "
          "which import refuses",
          e.position, e.stream, e.version));
  }
  return Status::OK();
}

int RunExport(GlobalOptions& g, const ExportArgs& a) {
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(g, store.status());
  // A file is written under a private temporary name and renamed when
  // complete and durable (store/durable_file.h), so an interrupted export
  // never looks like a whole one and a reported one survives a power loss.
  std::FILE* out = stdout;
  std::optional<AtomicFileWriter> file;
  if (!a.output.empty() && a.output != "-") {
    Result<AtomicFileWriter> created = AtomicFileWriter::Create(a.output, StoreFileMode((*store)->dir()));
    if (!created.ok()) return Fail(g, created.status());
    file.emplace(std::move(created).value());
    out = file->file();
  }
  auto abandon = [&](const Status& s) {
    file.reset();  // removes the temporary
    return Fail(g, s);
  };
  uint64_t total = (*store)->LastPosition();
  Progress progress(g, "export", total);
  uint64_t next = 1, written = 0;
  std::string chunk;
  for (;;) {
    if (InterruptRequested()) return abandon(Status::Interrupted("export stopped by a signal"));
    std::vector<Event> batch;
    Status s = (*store)->ReadAll(next, 4096, &batch, a.raw);
    if (!s.ok()) return abandon(s);
    if (batch.empty()) break;
    chunk.clear();
    for (const auto& e : batch) {
      if (Status importable = CheckImportable(e, a.raw); !importable.ok()) return abandon(importable);
      chunk += EventToJsonLine(e, /*request=*/true);
      chunk += '\n';
    }
    if (std::fwrite(chunk.data(), 1, chunk.size(), out) != chunk.size()) {
      if (errno == EPIPE && out == stdout) return kExitError;  // the reader went away: nothing to say
      return abandon(Status::IOError(fmt::format("cannot write the export: {}", std::strerror(errno))));
    }
    written += batch.size();
    next = batch.back().position + 1;
    progress.Update(written);
  }
  progress.Finish();
  if (file) {
    if (Status s = file->Commit(); !s.ok()) return Fail(g, s);
    if (g.json) {
      PrintJsonLine([&](JsonWriter& w) {
        w.StartObject();
        w.Key("exported");
        w.Uint64(written);
        w.Key("output");
        w.String(a.output);
        w.EndObject();
      });
    } else if (!g.quiet) {
      std::printf("exported %llu events to %s\n", static_cast<unsigned long long>(written), a.output.c_str());
    }
  }
  return kExitOk;
}

// ---- import ----------------------------------------------------------------

const std::vector<std::string_view> kEventFields = {"position", "stream", "version", "type", "schema",
                                                    "id",       "time",   "data",    "meta",
                                                    "request_id", "request_hash"};
const std::vector<std::string_view> kEventObjects = {"data", "meta"};

// One event of an export. A system event (store/system_events.h: what the
// store writes for `delete` and `metadata`) is replayed through DeleteStream
// or SetStreamMetadata, the store's only ways to append to a "$$" stream (it
// gets a new id and time).
struct ImportEvent {
  std::string stream;
  uint64_t version = 0;
  uint64_t position = 0;  // 0: the line had none
  NewEvent event;
  std::string request_id;     // "" if none
  uint64_t request_hash = 0;  // 0: none given (the store computes one)
  bool system = false;        // a $delete or $metadata event of "$$stream"
  StreamMetadata metadata;    // for $metadata
};

Result<ImportEvent> ParseEventLine(std::string_view line) {
  JsonLine j;
  Status parsed = ParseJsonLine(line, kEventFields, kEventObjects, &j);
  if (!parsed.ok() && parsed.message().find("unknown field \"part") != std::string::npos)
    return Status::InvalidArgument(parsed.message() +
                                   " (a part of an event split on read: import an 'export --raw', which holds what is stored)");
  RILL_RETURN_IF_ERROR(parsed);
  ImportEvent ie;
  auto stream = j.String("stream");
  if (!stream.ok()) return stream.status();
  ie.stream = std::move(*stream);
  // "$$X" holds X's tombstone and metadata; other '$' names are not ours to
  // write.
  ie.system = ie.stream.rfind("$$", 0) == 0;
  RILL_RETURN_IF_ERROR(WithName(ValidateStreamName(ie.system ? ie.stream.substr(2) : ie.stream, /*allow_system=*/false), "stream", ie.stream));
  auto version = j.Uint("version", 1, UINT64_MAX);
  if (!version.ok()) return version.status();
  ie.version = *version;
  if (j.Has("position")) {
    auto p = j.Uint("position", 1, UINT64_MAX);
    if (!p.ok()) return p.status();
    ie.position = *p;
  }
  auto type = j.String("type");
  if (!type.ok()) return type.status();
  RILL_RETURN_IF_ERROR(WithName(ValidateTypeName(*type), "type", *type));
  ie.event.type = std::move(*type);
  if (ie.system != (ie.event.type == kDeleteType || ie.event.type == kMetadataType))
    return Status::InvalidArgument(fmt::format("type \"{}\" of stream {}: system events are {} and {} in $$ streams only",
                                               Abbreviate(ie.event.type, 60), Abbreviate(ie.stream, 60), kDeleteType,
                                               kMetadataType));
  if (j.Has("schema")) {
    auto s = j.Uint("schema", 1, UINT32_MAX);
    if (!s.ok()) return s.status();
    ie.event.schema = static_cast<uint32_t>(*s);
  }
  auto id = j.String("id");
  if (!id.ok()) return id.status();
  ie.event.id = Uuid::Parse(*id);
  if (!ie.event.id)
    return Status::InvalidArgument(fmt::format("\"id\" must be a UUID, not \"{}\"", Abbreviate(*id, 60)));
  auto time = j.String("time");
  if (!time.ok()) return time.status();
  ie.event.time_us = ParseTime(*time);
  if (!ie.event.time_us)
    return Status::InvalidArgument(
        fmt::format("\"time\" must be a UTC time like 2026-11-23T10:14:00.123456Z, not \"{}\"", Abbreviate(*time, 60)));
  auto data = j.objects.find("data");
  if (data == j.objects.end()) return Status::InvalidArgument("missing field \"data\"");
  ie.event.data = data->second;
  auto meta = j.objects.find("meta");
  ie.event.meta = meta == j.objects.end() ? "{}" : meta->second;
  if (ie.event.type == kMetadataType)
    RILL_RETURN_IF_ERROR(ParseStreamMetadata(ie.event.data, &ie.metadata, MetadataParsing::kStrict));
  if (j.Has("request_id")) {
    auto rid = j.String("request_id");
    if (!rid.ok()) return rid.status();
    RILL_RETURN_IF_ERROR(ValidateRequestId(*rid, "\"request_id\""));
    if (ie.system) return Status::InvalidArgument("system events ($$ streams) carry no \"request_id\"");
    ie.request_id = std::move(*rid);
  }
  if (j.Has("request_hash")) {
    if (ie.request_id.empty()) return Status::InvalidArgument("\"request_hash\" without \"request_id\"");
    auto h = j.String("request_hash");
    if (!h.ok()) return h.status();
    auto [end, ec] = std::from_chars(h->data(), h->data() + h->size(), ie.request_hash, 16);
    if (h->size() != 16 || ec != std::errc() || end != h->data() + h->size())
      return Status::InvalidArgument(
          fmt::format("\"request_hash\" must be 16 hex digits, not \"{}\"", Abbreviate(*h, 60)));
  }
  RILL_RETURN_IF_ERROR(CheckEventSize(ie.event));
  return ie;
}

struct ImportArgs {
  std::string file;
  bool append = false;
  bool force = false;
};

// Completion state of the pipelined import requests.
struct Inflight {
  std::mutex mu;
  std::condition_variable cv;
  size_t pending = 0;
  size_t pending_bytes = 0;
  uint64_t imported = 0;
  uint64_t last_position = 0;
  Status first_error;
  size_t first_error_line = 0;
};

int RunImport(GlobalOptions& g, const ImportArgs& a) {
  auto text = ReadFileOrStdin(a.file);
  if (!text.ok()) return Fail(g, text.status());
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(g, store.status());
  uint64_t existing = (*store)->LastPosition();
  if (existing > 0 && !a.append)
    return Fail(g, Status::Conflict(fmt::format(
                       "the store at {} is not empty ({} events); 'rill import --append' adds to it",
                       (*store)->dir(), existing)));
  std::vector<LineRef> lines = SplitLines(*text);

  // Pass 1: every line valid, versions continue each stream without gaps
  // (from its current head with --append), positions increase — and into an
  // empty store are the ones the events will get (every line is one event),
  // so positions are kept or nothing is imported. The events of one request
  // id are consecutive lines of one stream (one append wrote them), and with
  // --append the id is new to the store: a copy must answer a retry of it
  // exactly as the original does.
  std::map<std::string, uint64_t, std::less<>> next_version;
  std::map<std::string, size_t, std::less<>> request_lines;  // request id -> its first line
  uint64_t last_position = 0;
  size_t bad = 0;
  // Into a store that has events, an aggregate's stream takes only events
  // its aggregate can evolve (core/append_guard.h).
  AppendGuard guard(**store, Domains(),
                    {.force = a.force, .forced_by = "rill import --append --force", .force_hint = "--force"});
  std::vector<bool> forced(lines.size(), false);
  {
    Progress progress(g, "import: checking", lines.size());
    size_t checked = 0;
    const ImportEvent* previous = nullptr;
    Result<ImportEvent> prev_line = Status::InvalidArgument("");
    for (const LineRef& l : lines) {
      auto ie = ParseEventLine(std::string_view(text->data() + l.offset, l.length));
      Status s = ie.status();
      uint64_t lands_at = checked + 1;
      if (s.ok() && !a.append && ie->position != 0 && ie->position != lands_at)
        s = Status::InvalidArgument(fmt::format(
            "position {} would be position {} in this store: positions are kept only for an export without "
            "gaps from position 1 ('rill export --raw' writes one); 'rill import --append' renumbers",
            ie->position, lands_at));
      if (s.ok() && !ie->request_id.empty()) {
        bool continues = previous && previous->request_id == ie->request_id;
        if (continues && (previous->stream != ie->stream || previous->request_hash != ie->request_hash)) {
          s = Status::InvalidArgument(fmt::format("request id {} continues from the line before on another "
                                                  "stream or with another request_hash",
                                                  ie->request_id));
        } else if (!continues) {
          auto [seen, fresh] = request_lines.try_emplace(ie->request_id, l.number);
          if (!fresh) {
            s = Status::InvalidArgument(fmt::format(
                "request id {} appears again apart from its events at line {} (one append writes them together)",
                ie->request_id, seen->second));
          } else if (a.append) {
            auto earlier = (*store)->LookupRequest(ie->request_id);
            if (earlier.ok())
              s = Status::Conflict(fmt::format("request id {} is already used in this store (stream {}, version {})",
                                               ie->request_id, earlier->stream, earlier->last_version));
            else if (!earlier.status().IsNotFound())
              return Fail(g, earlier.status());
          }
        }
      }
      if (s.ok() && ie->system) {
        // Versions of $$ streams are the store's to assign.
      } else if (s.ok()) {
        auto it = next_version.find(ie->stream);
        if (it == next_version.end()) {
          uint64_t head = 0;
          if (a.append) {
            auto info = (*store)->GetStream(ie->stream);
            if (info.ok()) {
              if (info->deleted) s = Status::Conflict(fmt::format("stream {} is deleted in this store", ie->stream));
              head = info->head_version;
            } else if (!info.status().IsNotFound()) {
              return Fail(g, info.status());
            }
          }
          it = next_version.emplace(ie->stream, head + 1).first;
        }
        if (s.ok() && ie->version != it->second)
          s = Status::InvalidArgument(fmt::format("stream {} version {} does not follow version {}", ie->stream,
                                                  ie->version, it->second - 1));
        if (s.ok() && ie->position != 0) {
          if (ie->position <= last_position)
            s = Status::InvalidArgument(
                fmt::format("position {} does not follow position {}", ie->position, last_position));
          last_position = ie->position;
        }
        if (s.ok()) ++it->second;
        if (s.ok() && a.append) {
          AppendRequest one;
          one.stream = ie->stream;
          one.events.push_back(ie->event);
          bool f = false;
          s = guard.Admit(&one, &f);
          forced[&l - lines.data()] = f;
        }
      }
      if (!s.ok() && ++bad <= 20) WriteStdout(LineFailureText(g, s, l.number));
      progress.Update(++checked);
      prev_line = std::move(ie);
      previous = prev_line.ok() ? &*prev_line : nullptr;
    }
  }
  if (bad > 0) {
    if (bad > 20) std::fprintf(stderr, "rill: ... and %zu more bad lines\n", bad - 20);
    std::fprintf(stderr, "rill: %s: %zu bad line%s, nothing imported\n", a.file.c_str(), bad, bad == 1 ? "" : "s");
    return kExitUsage;
  }

  // Pass 2: consecutive events of one stream go as one request; requests are
  // queued in file order, so positions follow the file.
  Inflight state;
  // In flight at most: this many requests and bytes (memory stays bounded
  // however large the file's streams are).
  constexpr size_t kMaxInflight = 4096, kMaxInflightBytes = 64u << 20;
  constexpr size_t kMaxGroupEvents = 1000, kMaxGroupBytes = 4u << 20;
  Progress progress(g, "import", lines.size());
  int exit_code = kExitOk;
  size_t i = 0;
  while (i < lines.size()) {
    if (InterruptRequested()) {
      exit_code = kExitInterrupted;
      break;
    }
    {
      std::unique_lock lock(state.mu);
      state.cv.wait(lock, [&] {
        return state.pending == 0 || (state.pending < kMaxInflight && state.pending_bytes < kMaxInflightBytes);
      });
      if (!state.first_error.ok()) break;
      progress.Update(state.imported);
    }
    AppendRequest req;
    size_t group_line = lines[i].number, bytes = 0;
    // Every line is one event: where this group's first lands without
    // --append (checked against the file's positions in pass 1); 0: anywhere.
    uint64_t lands_at = a.append ? 0 : i + 1;
    auto first = ParseEventLine(std::string_view(text->data() + lines[i].offset, lines[i].length));
    if (first->system) {
      // Everything before it must be stored first (a delete needs its stream).
      std::unique_lock lock(state.mu);
      state.cv.wait(lock, [&] { return state.pending == 0; });
      if (!state.first_error.ok()) break;
      lock.unlock();
      std::string target = first->stream.substr(2);
      Status s = first->event.type == kDeleteType ? (*store)->DeleteStream(target, ExpectedVersion::Any())
                                                  : (*store)->SetStreamMetadata(target, first->metadata);
      lock.lock();
      if (!s.ok()) {
        state.first_error = s;
        state.first_error_line = group_line;
        break;
      }
      ++state.imported;
      ++i;
      continue;
    }
    // The events of one request id go as one request with that id and its
    // fingerprint, whatever their size (one append wrote them, so one fits):
    // the copy's dedupe index then gives a retry the original's answer.
    while (i < lines.size() &&
           (!req.request_id.empty() || (req.events.size() < kMaxGroupEvents && bytes < kMaxGroupBytes))) {
      auto ie = ParseEventLine(std::string_view(text->data() + lines[i].offset, lines[i].length));
      if (ie->system) break;
      if (req.events.empty()) {
        req.stream = ie->stream;
        req.expected = ExpectedVersion::Exact(ie->version - 1);
        req.request_id = ie->request_id;
        req.request_hash = ie->request_hash;
      } else if (ie->stream != req.stream || ie->request_id != req.request_id) {
        break;
      }
      if (forced[i]) ie->event.meta = MarkForced(ie->event.meta, "rill import --append --force");
      bytes += ie->event.data.size() + ie->event.meta.size();
      req.events.push_back(std::move(ie->event));
      ++i;
    }
    {
      std::lock_guard lock(state.mu);
      ++state.pending;
      state.pending_bytes += bytes;
    }
    std::string request_id = req.request_id;
    (*store)->AppendAsync(std::move(req), [&state, group_line, bytes, lands_at, request_id](Result<AppendResult> r) {
      std::lock_guard lock(state.mu);
      --state.pending;
      state.pending_bytes -= bytes;
      // Checked in pass 1; another process may have written since.
      if (r.ok() && r->duplicate)
        r = Status::Conflict(fmt::format("request id {} is already used in this store (stream {})", request_id,
                                         r->stream));
      else if (r.ok() && lands_at != 0 && r->first_position != lands_at)
        r = Status::Conflict(fmt::format("the events went to position {}, not {}: another process wrote to the store",
                                         r->first_position, lands_at));
      if (r.ok()) {
        state.imported += r->events;
        state.last_position = std::max(state.last_position, r->last_position);
      } else if (state.first_error.ok() || group_line < state.first_error_line) {
        state.first_error = r.status();
        state.first_error_line = group_line;
      }
      state.cv.notify_all();
    });
  }
  {
    std::unique_lock lock(state.mu);
    state.cv.wait(lock, [&] { return state.pending == 0; });
  }
  progress.Finish();
  if (!state.first_error.ok()) {
    std::string msg = fmt::format("line {}: {}: {} ({} events imported before it)", state.first_error_line,
                                  state.first_error.CodeName(), state.first_error.message(), state.imported);
    return Fail(g, ExitCodeFor(state.first_error), msg);
  }
  if (exit_code == kExitInterrupted)
    return Fail(g, kExitInterrupted, fmt::format("interrupted: {} events imported", state.imported));
  if (g.json) {
    PrintJsonLine([&](JsonWriter& w) {
      w.StartObject();
      w.Key("imported");
      w.Uint64(state.imported);
      w.Key("streams");
      w.Uint64(next_version.size());
      w.Key("position");
      w.Uint64(state.last_position);
      w.EndObject();
    });
  } else if (!g.quiet) {
    std::printf("imported %llu events in %zu streams from %s\n", static_cast<unsigned long long>(state.imported),
                next_version.size(), a.file.c_str());
  }
  return kExitOk;
}

void SetupExportImport(CLI::App& root, GlobalOptions& g) {
  auto ea = std::make_shared<ExportArgs>();
  CLI::App* exp = root.add_subcommand("export", "Write every event as JSONL (the event format) to stdout or a file");
  exp->add_option("--output,-o", ea->output, "Write to this file instead of stdout (replaced when complete)");
  exp->add_flag("--raw", ea->raw, "Events exactly as stored, not upcast (no gaps in positions: what import needs to keep them)");
  exp->callback([ea, &g] { g.exit_code = RunExport(g, *ea); });

  auto ia = std::make_shared<ImportArgs>();
  CLI::App* imp = root.add_subcommand("import", "Load a JSONL export, keeping ids, versions, times, meta, request ids and (into an empty store) positions");
  imp->add_option("file", ia->file, "JSONL file in the event format ('-' for stdin)")->required();
  imp->add_flag("--append", ia->append, "Allow importing into a non-empty store (events are renumbered after its last)");
  imp->add_flag("--force", ia->force,
                "With --append: let through events an aggregate cannot evolve; their meta records \"$forced_by\"");
  imp->callback([ia, &g] { g.exit_code = RunImport(g, *ia); });
}

}  // namespace

RILL_COMMANDS("export-import", SetupExportImport);

}  // namespace rill::cli
