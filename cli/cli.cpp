#include "cli/cli.h"

#include <fmt/format.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/command_order.h"
#include "cli/output.h"

namespace rill::cli {

int ExitCodeFor(const Status& s) {
  switch (s.code()) {
    case Code::kOk: return kExitOk;
    case Code::kNotFound: return kExitNotFound;
    case Code::kConflict: return kExitConflict;
    case Code::kRejected: return kExitRejected;
    case Code::kInvalidArgument: return kExitUsage;
    case Code::kInterrupted: return kExitInterrupted;
    case Code::kCorruption:
    case Code::kIOError:
    case Code::kBusy:
    case Code::kFailedPrecondition: return kExitError;
    case Code::kDeadlineExceeded: return kExitError;
  }
  return kExitError;
}

std::string GlobalOptions::ResolvedDb() const {
  if (!db.empty()) return db;
  if (const char* env = std::getenv("RILL_DB"); env && *env) return env;
  return "./rill.db";
}

namespace {
struct Registered {
  std::string_view group;
  SetupFn fn;
};
std::vector<Registered>& Registry() {
  static std::vector<Registered> r;
  return r;
}
}  // namespace

CommandRegistrar::CommandRegistrar(std::string_view group, SetupFn fn) { Registry().push_back({group, fn}); }

Status SetupAllCommands(CLI::App& root, GlobalOptions& global) {
  const auto& registry = Registry();
  std::vector<std::string_view> names;
  for (const auto& entry : registry) names.push_back(entry.group);
  RILL_RETURN_IF_ERROR(CheckCommandGroups(names));
  auto all = [](CLI::App*) { return true; };
  for (const CommandGroup& group : CommandGroupsInHelpOrder()) {
    auto entry =
        std::find_if(registry.begin(), registry.end(), [&](const Registered& r) { return r.group == group.name; });
    size_t before = root.get_subcommands(all).size();
    entry->fn(root, global);
    std::vector<CLI::App*> subs = root.get_subcommands(all);
    std::vector<std::string_view> added;
    for (size_t i = before; i < subs.size(); ++i) added.push_back(subs[i]->get_name());
    if (added != group.commands)
      return Status::FailedPrecondition(fmt::format("command group '{}' adds {} but the help order lists {}",
                                                    group.name, fmt::join(added, " "), fmt::join(group.commands, " ")));
  }
  return Status::OK();
}

static const char* ErrorNameForExit(int code) {
  switch (code) {
    case kExitUsage: return "invalid_argument";
    case kExitConflict: return "conflict";
    case kExitRejected: return "rejected";
    case kExitNotFound: return "not_found";
    case kExitInterrupted: return "interrupted";
    default: return "error";
  }
}

int Fail(const GlobalOptions& g, const Status& s) {
  // Errors always reach stderr as one line; --json also gets a JSON object on
  // stdout so a script reading stdout sees the failure in-band.
  std::string msg = s.message();
  std::replace(msg.begin(), msg.end(), '\n', ' ');
  // Conflicts and rejections are the caller's to resolve (yellow); anything
  // else is an error (red). Colour only when stderr is a terminal.
  Style style = s.IsConflict() || s.code() == Code::kRejected ? Style::kYellow : Style::kRed;
  std::string what = Paint(fmt::format("rill: {}:", s.CodeName()), style, ColorOn(STDERR_FILENO));
  std::fprintf(stderr, "%s %s\n", what.c_str(), msg.c_str());
  if (g.json) {
    PrintJsonLine([&](JsonWriter& w) {
      w.StartObject();
      w.Key("error");
      w.String(s.CodeName());
      w.Key("reason");
      w.String(msg);
      w.EndObject();
    });
  }
  return ExitCodeFor(s);
}

int Fail(const GlobalOptions& g, int exit_code, const std::string& message) {
  Style style = exit_code == kExitConflict || exit_code == kExitRejected ? Style::kYellow : Style::kRed;
  std::fprintf(stderr, "%s %s\n", Paint("rill:", style, ColorOn(STDERR_FILENO)).c_str(), message.c_str());
  if (g.json) {
    PrintJsonLine([&](JsonWriter& w) {
      w.StartObject();
      w.Key("error");
      w.String(ErrorNameForExit(exit_code));
      w.Key("reason");
      w.String(message);
      w.EndObject();
    });
  }
  return exit_code;
}

Result<std::unique_ptr<EventStore>> OpenStore(const GlobalOptions& g, StoreOptions options) {
  std::string dir = g.ResolvedDb();
  if (Status probe = EventStore::Probe(dir); probe.code() == Code::kIOError) return probe;
  if (!EventStore::Exists(dir)) {
    return Status::NotFound(fmt::format("no rill store at {} (create one with 'rill --db {} init')", dir, dir));
  }
  // The library's open (core/open_store.h): every read sees events at their
  // current schema, migrations checked against the domains, rill.conf and
  // --set applied. A caller's own read hook wins (raw reads).
  ApplySettings(&options);  // the same settings the open applies; RILL_DEBUG shows them
  return OpenPreparedStore(dir, std::move(options));
}

static std::atomic<bool> g_interrupted{false};
bool InterruptRequested() { return g_interrupted.load(std::memory_order_relaxed); }
extern "C" void RillOnSignal(int) { g_interrupted.store(true); }
void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = RillOnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

void WriteEventJson(JsonWriter& w, const Event& e, bool request) {
  w.StartObject();
  w.Key("position");
  w.Uint64(e.position);
  w.Key("stream");
  w.String(e.stream);
  w.Key("version");
  w.Uint64(e.version);
  w.Key("type");
  w.String(e.type);
  w.Key("schema");
  w.Uint(e.schema);
  w.Key("id");
  w.String(e.id.ToString());
  w.Key("time");
  w.String(FormatTime(e.time_us));
  w.Key("data");
  w.RawValue(e.data.data(), e.data.size(), rapidjson::kObjectType);
  w.Key("meta");
  w.RawValue(e.meta.data(), e.meta.size(), rapidjson::kObjectType);
  if (request && !e.request_id.empty()) {
    w.Key("request_id");
    w.String(e.request_id);
    w.Key("request_hash");
    w.String(fmt::format("{:016x}", e.request_hash));
  }
  if (e.parts > 1) {  // one part of a stored event split on read (core/upcaster.h)
    w.Key("part");
    w.Uint(e.part);
    w.Key("parts");
    w.Uint(e.parts);
  }
  w.EndObject();
}

std::string EventToJsonLine(const Event& e, bool request) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  WriteEventJson(w, e, request);
  return std::string(buf.GetString(), buf.GetSize());
}

namespace {
std::atomic<int> g_stdout_errno{0};
std::atomic<bool> g_stdout_reported{false};
}  // namespace

bool StdoutFailed() { return g_stdout_errno.load(std::memory_order_relaxed) != 0; }
int StdoutErrno() { return g_stdout_errno.load(); }
std::string StdoutError() { return std::strerror(StdoutErrno()); }
void NoteStdoutFailure(int error) {
  int none = 0;
  g_stdout_errno.compare_exchange_strong(none, error != 0 ? error : EIO);
}
void StdoutFailureReported() { g_stdout_reported = true; }

size_t WriteStdout(std::string_view text) {
  if (StdoutFailed()) return 0;
  if (std::fflush(stdout) != 0) {
    NoteStdoutFailure(errno);
    return 0;
  }
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(STDOUT_FILENO, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      NoteStdoutFailure(n < 0 ? errno : EIO);
      break;
    }
    done += static_cast<size_t>(n);
  }
  return done;
}

int FinishStdout(int exit_code) {
  if (std::fflush(stdout) != 0) NoteStdoutFailure(errno);
  if (std::ferror(stdout)) NoteStdoutFailure(EIO);
  if (!StdoutFailed()) return exit_code;
  if (g_stdout_reported || StdoutErrno() == EPIPE) return exit_code == kExitOk ? kExitError : exit_code;
  std::fprintf(stderr, "rill: io_error: cannot write the output: %s; what was printed before it stands, and "
               "nothing after it was printed\n", StdoutError().c_str());
  return exit_code == kExitOk ? kExitError : exit_code;
}

void ResultWriter::Add(std::string_view text, size_t line) {
  buffer_.append(text);
  ends_.emplace_back(buffer_.size(), line);
  added_through_ = line;
}

bool ResultWriter::Flush() {
  if (failed_) return false;
  size_t written = buffer_.empty() ? 0 : WriteStdout(buffer_);
  for (const auto& [end, line] : ends_) {
    if (end > written) break;
    written_through_ = line;
  }
  bool ok = written == buffer_.size() && !StdoutFailed();
  buffer_.clear();
  ends_.clear();
  if (!ok) {
    failed_ = true;
    StdoutFailureReported();
  }
  return ok;
}

Status ResultWriter::FailureStatus(const char* done) const {
  std::string written = written_through_ == 0 ? "none was written"
                                              : fmt::format("they were written through line {}", written_through_);
  return Status::IOError(fmt::format("cannot write the results to stdout ({}): {}; lines through {} were {}, none "
                                     "after",
                                     StdoutError(), written, added_through_, done));
}

std::string AckJson(const AppendResult& r, size_t line) {
  return JsonText([&](JsonWriter& w) {
    WriteAppendResult(w, r, [&] {
      if (line == 0) return;
      w.Key("line");
      w.Uint64(line);
    });
  });
}

std::string LineFailureText(const GlobalOptions& g, const Status& s, size_t line, bool to_stderr) {
  std::string msg = s.message();
  std::replace(msg.begin(), msg.end(), '\n', ' ');
  if (to_stderr) std::fprintf(stderr, "rill: line %zu: %s: %s\n", line, s.CodeName(), msg.c_str());
  if (!g.json) return "";
  return JsonText([&](JsonWriter& w) {
    w.StartObject();
    w.Key("error");
    w.String(s.CodeName());
    w.Key("reason");
    w.String(msg);
    w.Key("line");
    w.Uint64(line);
    w.EndObject();
  });
}

std::string JsonText(const std::function<void(JsonWriter&)>& fill) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  fill(w);
  std::string line(buf.GetString(), buf.GetSize());
  line += '\n';
  return line;
}

void PrintJsonLine(const std::function<void(JsonWriter&)>& fill) {
  if (StdoutFailed()) return;
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  fill(w);
  if (std::fwrite(buf.GetString(), 1, buf.GetSize(), stdout) != buf.GetSize() || std::fputc('\n', stdout) == EOF)
    NoteStdoutFailure(errno);
}

void WriteAppendResult(JsonWriter& w, const AppendResult& r, const std::function<void()>& more) {
  w.StartObject();
  w.Key("stream");
  w.String(r.stream);
  w.Key("version");
  w.Uint64(r.last_version);
  w.Key("position");
  w.Uint64(r.last_position);
  w.Key("events");
  w.Uint64(r.events);
  if (r.duplicate) {
    w.Key("duplicate");
    w.Bool(true);
  }
  if (more) more();
  w.EndObject();
}

Table::Table(std::vector<std::string> headers, std::vector<bool> numeric)
    : headers_(std::move(headers)), numeric_(std::move(numeric)) {
  numeric_.resize(headers_.size(), false);
}

void Table::Add(std::vector<std::string> row) {
  row.resize(headers_.size());
  rows_.push_back(std::move(row));
}

void Table::Print(std::FILE* out) const {
  std::vector<size_t> width(headers_.size());
  PrintRows(out, true, width);
}

void Table::Flush(std::FILE* out) {
  flushed_width_.resize(headers_.size());
  PrintRows(out, !header_printed_, flushed_width_);
  header_printed_ = true;
  rows_.clear();
}

void Table::PrintRows(std::FILE* out, bool header, std::vector<size_t>& width) const {
  // Display widths are code points (cli/output.h), so names with accents
  // still line up.
  for (size_t i = 0; i < headers_.size(); ++i) width[i] = std::max(width[i], DisplayWidth(headers_[i]));
  for (const auto& r : rows_)
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], DisplayWidth(r[i]));
  // On a terminal the text columns shrink (widest first) to fit its width and
  // their cut cells end in "…"; in a pipe or file nothing is ever cut.
  int fd = fileno(out);
  std::vector<bool> text_column(numeric_.size());
  for (size_t i = 0; i < numeric_.size(); ++i) text_column[i] = !numeric_[i];
  const std::vector<size_t> shown = FitColumns(width, text_column, 2, TerminalWidth(fd));
  const bool color = ColorOn(fd);
  auto line = [&](const std::vector<std::string>& r, bool is_header) {
    std::string s;
    for (size_t i = 0; i < r.size(); ++i) {
      std::string cell = shown[i] < width[i] ? FitToWidth(r[i], shown[i]) : r[i];
      size_t pad = shown[i] - std::min(shown[i], DisplayWidth(cell));
      bool last = i + 1 == r.size();
      if (is_header) cell = Paint(cell, Style::kBold, color);
      if (numeric_[i]) {
        s.append(pad, ' ');
        s += cell;
      } else {
        s += cell;
        if (!last) s.append(pad, ' ');
      }
      if (!last) s += "  ";
    }
    // An empty last cell must not leave trailing blanks.
    s.erase(s.find_last_not_of(' ') + 1);
    s += '\n';
    std::fputs(s.c_str(), out);
  };
  if (header) line(headers_, true);
  for (const auto& r : rows_) line(r, false);
}

Progress::Progress(const GlobalOptions& g, std::string what, uint64_t total)
    : enabled_(!g.quiet && !g.no_progress && isatty(STDERR_FILENO)),
      what_(std::move(what)),
      total_(total),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

Progress::~Progress() { Finish(); }

void Progress::Update(uint64_t done) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  drawn_ = true;
  double secs = std::chrono::duration<double>(now - start_).count();
  double rate = secs > 0 ? done / secs : 0;
  std::string line;
  if (total_ > 0) {
    double eta = rate > 0 && total_ > done ? (total_ - done) / rate : 0;
    line = fmt::format("\r{}: {}/{} ({:.0f}%) {:.0f}/s ETA {:.0f}s\x1b[K", what_, done, total_,
                       100.0 * done / total_, rate, eta);
  } else {
    line = fmt::format("\r{}: {} {:.0f}/s\x1b[K", what_, done, rate);
  }
  std::fputs(line.c_str(), stderr);
}

void Progress::Finish() {
  if (enabled_ && drawn_) std::fputs("\r\x1b[K", stderr);
  drawn_ = false;
}

Result<std::string> ReadFileOrStdin(const std::string& path) {
  // Read straight into one string (files for `append --file` and `import`
  // can be large: no stream buffer copies).
  int fd = path == "-" ? STDIN_FILENO : open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string m = fmt::format("cannot open {}: {}", path, std::strerror(err));
    return err == ENOENT ? Status::NotFound(m) : Status::IOError(m);
  }
  std::string text;
  struct stat st {};
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) text.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      text.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      int err = errno;
      if (fd != STDIN_FILENO) close(fd);
      return Status::IOError(fmt::format("cannot read {}: {}", path, std::strerror(err)));
    }
  }
  if (fd != STDIN_FILENO) close(fd);
  return text;
}

}  // namespace rill::cli
