// The CLI's shared layer: global options, command registration, exit codes,
// output (aligned text for people, one JSON object per line for scripts) and
// progress. Command files only parse, call store/ and core/, and print.
#pragma once

#include <CLI/CLI.hpp>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/output.h"
#include "core/actor_runtime.h"
#include "core/domain_registry.h"
#include "core/projection.h"
#include "store/event.h"
#include "store/event_store.h"
#include "store/status.h"

namespace rill::cli {

// Exit codes (docs/design.md, "CLI contract").
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitConflict = 3;
inline constexpr int kExitRejected = 4;
inline constexpr int kExitNotFound = 5;
inline constexpr int kExitInterrupted = 130;

int ExitCodeFor(const Status& s);

struct GlobalOptions {
  std::string db;  // --db, else $RILL_DB, else ./rill.db
  bool json = false;
  bool quiet = false;
  bool no_progress = false;
  std::vector<std::string> plugins;   // --plugin FILE (repeatable): domain plugins to load
  bool no_builtin_domains = false;    // --no-builtin-domains (or RILL_NO_BUILTIN_DOMAINS=1)
  std::vector<std::string> settings;  // --set KEY=VALUE: store config overrides for this run
  int exit_code = kExitOk;  // set by the command that ran
  std::string ResolvedDb() const;
};

// Each command-group file registers a setup function at static-init time,
// under the name its group has in the help order (cli/command_order.h):
//   RILL_COMMANDS("read", SetupRead);
using SetupFn = void (*)(CLI::App& root, GlobalOptions& global);
struct CommandRegistrar {
  CommandRegistrar(std::string_view group, SetupFn fn);
};
#define RILL_CONCAT_(a, b) a##b
#define RILL_CONCAT(a, b) RILL_CONCAT_(a, b)
#define RILL_COMMANDS(group, fn) \
  static ::rill::cli::CommandRegistrar RILL_CONCAT(rill_registrar_, __LINE__)(group, fn)
// Sets up every registered group in the help order. FailedPrecondition when
// the registered groups, or the commands a group adds, disagree with it.
Status SetupAllCommands(CLI::App& root, GlobalOptions& global);

// Prints `s` as one line on stderr ("rill: conflict: ...", or with --json a
// JSON object {"error":..,"reason":..} on stdout) and returns its exit code.
int Fail(const GlobalOptions& g, const Status& s);
int Fail(const GlobalOptions& g, int exit_code, const std::string& message);

// Opens the store at g.ResolvedDb(); a missing store is NotFound with a hint.
Result<std::unique_ptr<EventStore>> OpenStore(const GlobalOptions& g, StoreOptions options = {});

// The domains compiled into rill (aggregates and process managers).
const DomainRegistry& Domains();
// An actor runtime over `store` with the compiled-in domains.
Result<std::unique_ptr<ActorRuntime>> StartRuntime(EventStore& store, RuntimeOptions options = {});

// ---- Store config and plugins (cli/config.cpp) ----------------------------
// Runs before the command `command`: reads <db>/rill.conf (not for `config`
// and `init`), applies --set, and builds Domains() from the built-in domains
// (unless disabled) and the plugins (config's, then --plugin's).
// InvalidArgument (exit 2) for a bad config or a plugin that does not load.
// `command` is the parsed subcommand (null: none): its name and flags say
// whether it reads only what is stored (check, backup, stats, streams, any
// --raw read), which then opens without plugins or migrations
// (OpenOverrides::as_stored).
Status PrepareCommand(const GlobalOptions& g, const CLI::App* command);
// Opens `dir` with the prepared config, domains and overrides (core/open_store.h).
Result<std::unique_ptr<EventStore>> OpenPreparedStore(const std::string& dir, StoreOptions options);
// The current schema of event `type` in the store OpenStore opened last (1
// before any open, or when it was opened with a raw read hook).
uint32_t CurrentSchema(std::string_view type);
// The effective settings (flag > config > default) applied to what the
// command opens; RILL_DEBUG=1 prints them on stderr.
void ApplySettings(StoreOptions* options);
void ApplySettings(RuntimeOptions* options);
// Built-in (unless disabled) and plugin projections.
Status RegisterDomainProjections(ProjectionRegistry* registry);
// The plugin that registered aggregate or process manager `name`; "" = built in.
std::string DomainOrigin(const std::string& name);
// The config's `projections` (names `rill run` runs); empty: all.
std::vector<std::string> ProjectionsToRun();

// Set by SIGINT/SIGTERM (installed by main); long-running commands poll it
// and stop cleanly after their current unit of work.
bool InterruptRequested();

// ---- JSON output -----------------------------------------------------------
using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;
// Writes the event in the contract's field order:
// {"position","stream","version","type","schema","id","time","data","meta"}
// With `request` (export), an event written under a request id also gets
// "request_id" and "request_hash" (16 hex digits) after "meta": what import
// needs to rebuild the dedupe index.
void WriteEventJson(JsonWriter& w, const Event& e, bool request = false);
std::string EventToJsonLine(const Event& e, bool request = false);
// Prints one JSON line built by `fill` (which writes one object) to stdout.
// Prints nothing once stdout has failed (see StdoutFailed).
void PrintJsonLine(const std::function<void(JsonWriter&)>& fill);
// The text PrintJsonLine would print, '\n' included.
std::string JsonText(const std::function<void(JsonWriter&)>& fill);

// ---- Standard output that knows its first failure ------------------------------
// A full disk or EIO under stdout must not drop results silently: the first
// failed write is remembered, nothing is written after it (what a reader got
// is a prefix of what rill meant to print), and main() reports it (exit 1)
// unless the command did. A reader that went away (EPIPE) is not reported.
// Writes `text` now: stdio's buffer first, then write(2). Returns the bytes
// of `text` written: all of them unless stdout failed.
size_t WriteStdout(std::string_view text);
bool StdoutFailed();
// Remembers a failure noticed elsewhere (a printf whose flush failed).
void NoteStdoutFailure(int error);
// strerror of the first failure; its errno.
std::string StdoutError();
int StdoutErrno();
// The command reported the failure itself: main() stays quiet.
void StdoutFailureReported();
// At exit: flushes stdout and reports an unreported failure; returns the
// exit code to use.
int FinishStdout(int exit_code);

// Results printed in input order, each tagged with its input line, batched
// into one write: after a failed write rill knows exactly which results a
// reader got, and says so (append --file, submit --file).
class ResultWriter {
 public:
  // `text` ends in '\n' ("" when nothing is printed for the line, --quiet).
  void Add(std::string_view text, size_t line);
  // Writes what was added. False once stdout has failed.
  bool Flush();
  size_t buffered() const { return buffer_.size(); }
  bool failed() const { return failed_; }
  // Input line of the last result fully written (0: none), and of the last
  // result added.
  size_t written_through() const { return written_through_; }
  size_t added_through() const { return added_through_; }
  // "cannot write the results (No space left on device): written through
  // line K; lines through N were <done>, none after" — one line, exit 1.
  Status FailureStatus(const char* done) const;

 private:
  std::string buffer_;
  std::vector<std::pair<size_t, size_t>> ends_;  // (end offset in buffer_, line)
  size_t written_through_ = 0, added_through_ = 0;
  bool failed_ = false;
};
// {"stream","version","position","events"[,"duplicate"]}; `more` writes
// further keys before the object closes.
void WriteAppendResult(JsonWriter& w, const AppendResult& r, const std::function<void()>& more = {});
// The --json acknowledgement of one input line: WriteAppendResult's object
// with "line" (left out when `line` is 0: not from a file), '\n' included.
std::string AckJson(const AppendResult& r, size_t line);
// A failed input line of a bulk command: "rill: line N: CODE: REASON" on
// stderr (unless `to_stderr` is false: a repeat of the error before it), and
// the --json line for stdout returned, {"error","reason","line"} ("" without
// --json).
std::string LineFailureText(const GlobalOptions& g, const Status& s, size_t line, bool to_stderr = true);

// ---- Text output -----------------------------------------------------------
// Aligned columns; numbers right-aligned when the column is marked numeric.
class Table {
 public:
  explicit Table(std::vector<std::string> headers, std::vector<bool> numeric = {});
  void Add(std::vector<std::string> row);
  void Print(std::FILE* out = stdout) const;
  // For long listings: prints the rows added so far (the header only the
  // first time) and forgets them. Columns never get narrower from one chunk
  // to the next, so output streams with bounded memory and stays aligned
  // unless a later value is wider than any before it.
  void Flush(std::FILE* out = stdout);
  size_t size() const { return rows_.size(); }

 private:
  void PrintRows(std::FILE* out, bool header, std::vector<size_t>& width) const;
  std::vector<std::string> headers_;
  std::vector<bool> numeric_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<size_t> flushed_width_;  // widths used by earlier Flush calls
  bool header_printed_ = false;
};

// Progress on stderr, only when stderr is a terminal and neither --quiet nor
// --no-progress; redrawn at most every 100 ms.
class Progress {
 public:
  Progress(const GlobalOptions& g, std::string what, uint64_t total = 0);
  ~Progress();
  void Update(uint64_t done);
  void Finish();

 private:
  bool enabled_;
  std::string what_;
  uint64_t total_;
  std::chrono::steady_clock::time_point start_, last_;
  bool drawn_ = false;
};

// Reads a whole file ("-" is stdin) for --file options.
Result<std::string> ReadFileOrStdin(const std::string& path);

}  // namespace rill::cli
