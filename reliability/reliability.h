// The reliability battery's shared helpers (issue 6): every rel_<name>
// program drives the real `rill` binary in child processes, kills them, and
// checks what survived. The protocol all of them follow (and
// scripts/reliability.sh relies on):
//
//   - RILL_RELIABILITY=short|long picks the budget (default short: CI);
//   - an optional first argument names the work directory (default: a fresh
//     one under /tmp, removed after a PASS, kept after a FAIL);
//   - human log lines on stdout start with "# ";
//   - the last line is `RESULT <name> PASS|FAIL key=value ...`;
//   - exit 0 on PASS, 1 on FAIL.
//
// RILL_SEED=N repeats a run's random choices (the seed is logged).
// Header-only so a test is one .cpp file.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

extern char** environ;

namespace rill::reliability {

// ---- logging -------------------------------------------------------------

// A "# " line on stdout, flushed at once (the runner streams it).
inline void Log(const char* format, ...) __attribute__((format(printf, 1, 2)));
inline void Log(const char* format, ...) {
  char buf[4096];
  va_list ap;
  va_start(ap, format);
  std::vsnprintf(buf, sizeof buf, format, ap);
  va_end(ap);
  std::printf("# %s\n", buf);
  std::fflush(stdout);
}

// ---- files ---------------------------------------------------------------

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  return static_cast<bool>(out);
}

// The complete lines of `text`: a last line without its '\n' (a child killed
// mid-write) is left out, because nothing half-printed counts as said.
inline std::vector<std::string> WholeLines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.emplace_back(text, start, nl - start);
  return lines;
}

// ---- JSON ------------------------------------------------------------------

// Parses one JSON object line; false if it is not one.
inline bool ParseObject(const std::string& line, rapidjson::Document* doc) {
  doc->Parse(line.c_str(), line.size());
  return !doc->HasParseError() && doc->IsObject();
}

inline std::string JsonString(const rapidjson::Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  return it != obj.MemberEnd() && it->value.IsString() ? std::string(it->value.GetString(), it->value.GetStringLength())
                                                        : std::string();
}

inline int64_t JsonInt(const rapidjson::Value& obj, const char* key, int64_t fallback = -1) {
  auto it = obj.FindMember(key);
  return it != obj.MemberEnd() && it->value.IsInt64() ? it->value.GetInt64() : fallback;
}

inline std::string CompactJson(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

// ---- processes -------------------------------------------------------------

inline std::string Binary() {
  if (const char* b = std::getenv("RILL_BINARY_OVERRIDE"); b && *b) return b;
  return RILL_BINARY;
}
inline std::string SourceDir() { return RILL_SOURCE_DIR; }

// Exit code of a waited-for status: 128 + signal when killed.
inline int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Starts `program args...` with stdin from `in_path` (empty: /dev/null) and
// stdout/stderr to files (truncated, or appended with `append`). posix_spawn,
// so it is safe from a program that runs threads of its own.
inline pid_t SpawnProgram(const std::string& program, const std::vector<std::string>& args,
                          const std::string& out_path, const std::string& err_path, const std::string& in_path = "",
                          bool append = false) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  int out_flags = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC);
  posix_spawn_file_actions_addopen(&fa, 0, in_path.empty() ? "/dev/null" : in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), out_flags, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), out_flags, 0644);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, program.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    Log("cannot start %s: %s", program.c_str(), std::strerror(rc));
    return -1;
  }
  return pid;
}

// `rill ARGS...` in the background.
inline pid_t SpawnRill(const std::vector<std::string>& args, const std::string& out_path, const std::string& err_path,
                       const std::string& in_path = "", bool append = false) {
  return SpawnProgram(Binary(), args, out_path, err_path, in_path, append);
}

// Waits for a child; its exit code (128 + signal when killed).
inline int Wait(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return DecodeStatus(status);
}

// Non-blocking: true and *code when the child has ended.
inline bool Exited(pid_t pid, int* code) {
  int status = 0;
  pid_t r = waitpid(pid, &status, WNOHANG);
  if (r != pid) return false;
  *code = DecodeStatus(status);
  return true;
}

// Sends `sig` and reaps the child; its exit code (a child that ended first
// keeps its own code).
inline int KillAndWait(pid_t pid, int sig = SIGKILL) {
  kill(pid, sig);
  return Wait(pid);
}

inline void SleepMs(int64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// Resident set of a live process in KiB (VmRSS), 0 if it is gone.
inline uint64_t RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  return 0;
}

// Anonymous resident memory of a live process in KiB (RssAnon: heap and
// stacks, not the mapped store files whose touched pages grow with the log).
inline uint64_t RssAnonKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("RssAnon:", 0) == 0) return std::strtoull(line.c_str() + 8, nullptr, 10);
  return 0;
}

// ---- one test run ----------------------------------------------------------

struct Output {
  int code = -1;
  std::string out, err;
  std::string FirstErrLine() const { return err.substr(0, err.find('\n')); }
};

// The state of one rel_<name> program: mode, work directory, random source,
// figures and the verdict.
class Run {
 public:
  Run(std::string name, int argc, char** argv) : name_(std::move(name)), start_(std::chrono::steady_clock::now()) {
    const char* mode = std::getenv("RILL_RELIABILITY");
    long_ = mode && std::string(mode) == "long";
    if (argc > 1) {
      dir_ = argv[1];
      std::filesystem::create_directories(dir_);
    } else {
      std::string tmpl = "/tmp/rill-rel-" + name_ + "-XXXXXX";
      if (!mkdtemp(tmpl.data())) {
        std::perror("mkdtemp");
        std::exit(1);
      }
      dir_ = tmpl;
      owns_dir_ = true;
    }
    if (const char* s = std::getenv("RILL_SEED"); s && *s)
      seed_ = std::strtoull(s, nullptr, 10);
    else
      seed_ = std::random_device{}();
    rng_.seed(seed_);
    signal(SIGPIPE, SIG_IGN);
    Log("%s: %s mode, work dir %s, seed %llu (RILL_SEED=%llu repeats it)", name_.c_str(), long_ ? "long" : "short",
        dir_.c_str(), static_cast<unsigned long long>(seed_), static_cast<unsigned long long>(seed_));
  }
  ~Run() {
    if (owns_dir_ && ok_) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  bool long_mode() const { return long_; }
  // `short_value` in CI, `long_value` with RILL_RELIABILITY=long.
  template <class T> T Budget(T short_value, T long_value) const { return long_ ? long_value : short_value; }
  const std::string& dir() const { return dir_; }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  std::mt19937_64& rng() { return rng_; }
  // Uniform in [lo, hi].
  int64_t Random(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng_); }
  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  bool ok() const { return ok_; }

  // Records a broken promise (the run goes on, so every failure is listed).
  void Fail(const std::string& why) {
    if (failures_++ < 50) Log("FAIL: %s", why.c_str());
    ok_ = false;
  }
  // Fails with `why` unless `cond`; returns cond.
  bool Expect(bool cond, const std::string& why) {
    if (!cond) Fail(why);
    return cond;
  }

  // A figure for the RESULT line (in order; setting a key again replaces it).
  void Figure(const std::string& key, const std::string& value) {
    for (auto& [k, v] : figures_)
      if (k == key) {
        v = value;
        return;
      }
    figures_.emplace_back(key, value);
  }
  void Figure(const std::string& key, uint64_t value) { Figure(key, std::to_string(value)); }
  void Figure(const std::string& key, int64_t value) { Figure(key, std::to_string(value)); }
  void Figure(const std::string& key, int value) { Figure(key, std::to_string(value)); }
  void FigureSeconds(const std::string& key, double seconds) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", seconds);
    Figure(key, std::string(buf));
  }

  // Prints the RESULT line; the process's exit code.
  int Finish() {
    FigureSeconds("seconds", Seconds());
    if (!ok_ && owns_dir_) Log("work dir kept for inspection: %s", dir_.c_str());
    std::string line = "RESULT " + name_ + (ok_ ? " PASS" : " FAIL");
    for (const auto& [k, v] : figures_) line += " " + k + "=" + v;
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
    return ok_ ? 0 : 1;
  }

  // Runs `rill ARGS...` to completion and captures its output (through files
  // in the work dir, so a large export costs no pipe juggling).
  Output Rill(const std::vector<std::string>& args, const std::string& stdin_path = "") {
    std::string out = Path(".rill.out"), err = Path(".rill.err");
    Output o;
    pid_t pid = SpawnRill(args, out, err, stdin_path);
    if (pid < 0) return o;
    o.code = Wait(pid);
    o.out = ReadFile(out);
    o.err = ReadFile(err);
    return o;
  }
  // `rill --db DB ARGS...`.
  Output RillDb(const std::string& db, std::vector<std::string> args, const std::string& stdin_path = "") {
    args.insert(args.begin(), {"--db", db});
    return Rill(args, stdin_path);
  }
  // `rill check` must be clean (exit 0); false (and a failure) if not.
  bool CheckClean(const std::string& db, const std::string& when) {
    Output c = RillDb(db, {"check"});
    if (c.code == 0) return true;
    Fail("rill check " + when + ": exit " + std::to_string(c.code) + ": " + c.FirstErrLine() + " " +
         c.out.substr(0, 300));
    return false;
  }

 private:
  std::string name_;
  std::chrono::steady_clock::time_point start_;
  bool long_ = false;
  std::string dir_;
  bool owns_dir_ = false;
  uint64_t seed_ = 0;
  std::mt19937_64 rng_;
  bool ok_ = true;
  int failures_ = 0;
  std::vector<std::pair<std::string, std::string>> figures_;
};

// The long budgets of the kill tests: `epoch(db)` on fresh stores
// run.Path("db0"), "db1", ... until `kills()` reaches `wanted` (one store at
// least, `max_stores` at most), keeping the last two for a look after a
// failure. A store that grew for hundreds of rounds would spend the run
// re-reading itself instead of being killed. Returns the stores used.
template <class Epoch, class Kills>
uint64_t RepeatStores(Run& run, uint64_t wanted, uint64_t max_stores, const Epoch& epoch, const Kills& kills) {
  uint64_t stores = 0;
  do {
    epoch(run.Path("db" + std::to_string(stores)));
    if (++stores > 2) std::filesystem::remove_all(run.Path("db" + std::to_string(stores - 3)));
  } while (run.ok() && kills() < wanted && stores < max_stores);
  return stores;
}

// ---- the log, as exported ------------------------------------------------------

// One stored event from `rill export [--raw]` (one JSON object per line).
struct Event {
  uint64_t position = 0, version = 0;
  std::string stream, type, id, data, meta;  // data and meta as compact JSON
  uint64_t schema = 0;
};

// Parses an export; false and `*error` on a line that is not an event.
inline bool ParseExport(const std::string& text, std::vector<Event>* events, std::string* error) {
  events->clear();
  size_t n = 0;
  for (const std::string& line : WholeLines(text)) {
    ++n;
    if (line.empty()) continue;
    rapidjson::Document d;
    if (!ParseObject(line, &d)) {
      *error = "export line " + std::to_string(n) + " is not a JSON object: " + line.substr(0, 200);
      return false;
    }
    Event e;
    e.position = static_cast<uint64_t>(JsonInt(d, "position", 0));
    e.version = static_cast<uint64_t>(JsonInt(d, "version", 0));
    e.schema = static_cast<uint64_t>(JsonInt(d, "schema", 0));
    e.stream = JsonString(d, "stream");
    e.type = JsonString(d, "type");
    e.id = JsonString(d, "id");
    if (auto it = d.FindMember("data"); it != d.MemberEnd()) e.data = CompactJson(it->value);
    if (auto it = d.FindMember("meta"); it != d.MemberEnd()) e.meta = CompactJson(it->value);
    events->push_back(std::move(e));
  }
  return true;
}


// Positions 1..n without a gap, each stream's versions 1..k without a gap,
// no event id twice. Returns "" or what is wrong (and counts gaps and
// duplicate ids in the optional outputs).
inline std::string CheckGapless(const std::vector<Event>& events, uint64_t* gaps = nullptr,
                                uint64_t* duplicate_ids = nullptr) {
  std::string first;
  uint64_t g = 0, d = 0;
  std::unordered_map<std::string, uint64_t> heads;
  std::unordered_set<std::string> ids;
  for (size_t i = 0; i < events.size(); ++i) {
    const Event& e = events[i];
    if (e.position != i + 1) {
      ++g;
      if (first.empty())
        first = "position " + std::to_string(e.position) + " where " + std::to_string(i + 1) + " was due";
    }
    uint64_t& head = heads[e.stream];
    if (e.version != head + 1) {
      ++g;
      if (first.empty())
        first = e.stream + " version " + std::to_string(e.version) + " after " + std::to_string(head);
    }
    head = e.version;
    if (!e.id.empty() && !ids.insert(e.id).second) {
      ++d;
      if (first.empty()) first = "event id " + e.id + " twice";
    }
  }
  if (gaps) *gaps = g;
  if (duplicate_ids) *duplicate_ids = d;
  return first;
}

// ---- acknowledgements against the log --------------------------------------

// What loaders sent and what rill acknowledged, to hold an export against.
// Raw appends are `Loaded` events whose data carries a unique "k"; commands
// are Deposits whose events carry the command id in meta.command_id.
struct Ack {
  std::string stream;
  uint64_t version = 0, position = 0;
};

// What the checker compares an export against.
struct Ledger {
  std::map<std::string, std::string> data_of;  // key -> exact data JSON that was sent (appends)
  std::set<std::string> submitted;             // command ids sent
  std::map<std::string, Ack> acked;            // key -> acknowledgement
};

struct Verdict {
  uint64_t lost = 0, dup = 0, gaps = 0, foreign = 0, misplaced = 0, unacked_stored = 0;
  std::string first;
  bool ok() const { return lost + dup + gaps + foreign + misplaced == 0; }
};

inline std::string KeyOf(const Event& e) {
  if (e.type == "Loaded") {
    rapidjson::Document d;
    if (!ParseObject(e.data, &d)) return "";
    return JsonString(d, "k");
  }
  if (e.type == "Deposited") {
    rapidjson::Document m;
    if (!ParseObject(e.meta, &m)) return "";
    return JsonString(m, "command_id");
  }
  return "";
}

inline Verdict Verify(const std::vector<Event>& events, const Ledger& ledger) {
  Verdict v;
  auto note = [&](const std::string& s) {
    if (v.first.empty()) v.first = s;
  };
  std::string gap = CheckGapless(events, &v.gaps, &v.dup);
  if (!gap.empty()) note(gap);
  std::map<std::string, const Event*> seen;
  for (const Event& e : events) {
    if (e.type == "AccountOpened") continue;  // the setup's
    std::string key = KeyOf(e);
    bool known = e.type == "Loaded" ? ledger.data_of.count(key) > 0 : ledger.submitted.count(key) > 0;
    if (!known) {
      ++v.foreign;
      note("position " + std::to_string(e.position) + " holds an event nobody sent: " + e.type + " " + e.data);
      continue;
    }
    if (e.type == "Loaded" && ledger.data_of.at(key) != e.data) {
      ++v.foreign;
      note("position " + std::to_string(e.position) + " data differs from what was sent: " + e.data);
    }
    if (!seen.emplace(key, &e).second) {
      ++v.dup;
      note(key + " stored twice (positions " + std::to_string(seen[key]->position) + " and " +
           std::to_string(e.position) + ")");
    }
  }
  for (const auto& [key, ack] : ledger.acked) {
    auto it = seen.find(key);
    if (it == seen.end()) {
      ++v.lost;
      note("acknowledged " + key + " (position " + std::to_string(ack.position) + ") is missing");
      continue;
    }
    const Event& e = *it->second;
    if (e.position != ack.position || e.version != ack.version || e.stream != ack.stream) {
      ++v.misplaced;
      note(key + " acknowledged at " + ack.stream + " v" + std::to_string(ack.version) + " p" +
           std::to_string(ack.position) + " but stored at " + e.stream + " v" + std::to_string(e.version) + " p" +
           std::to_string(e.position));
    }
  }
  v.unacked_stored = seen.size() - std::min(seen.size(), ledger.acked.size());
  return v;
}


// A raw append line for `append --file`: a `Loaded` event with unique key
// `key` on `stream`, recorded in the ledger.
inline std::string LoadedLine(Ledger* ledger, const std::string& stream, const std::string& key, size_t pad = 0) {
  std::string data = R"({"k":")" + key + R"(","pad":")" + std::string(pad, 'x') + "\"}";
  ledger->data_of[key] = data;
  return R"({"stream":")" + stream + R"(","type":"Loaded","id":")" + key + R"(","data":)" + data + "}";
}

// A Deposit command line for `submit --file` with command id `key`.
inline std::string DepositLine(Ledger* ledger, const std::string& account, const std::string& key, int64_t amount) {
  ledger->submitted.insert(key);
  return R"({"command":"Deposit","to":")" + account + R"(","data":{"amount":)" + std::to_string(amount) +
         R"(},"id":")" + key + "\"}";
}

// Reads the per-line results a `--json append/submit --file` printed to
// `out_path` (line i answers request keys[i]); records acknowledgements.
// Returns how many lines were answered, or -1 (and *error) on an error line
// or an acknowledgement that contradicts an earlier one.
inline int64_t ReadAcks(const std::string& out_path, const std::vector<std::string>& keys, Ledger* ledger,
                        std::string* error) {
  auto lines = WholeLines(ReadFile(out_path));
  if (lines.size() > keys.size()) {
    *error = out_path + ": more results than requests";
    return -1;
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    rapidjson::Document d;
    if (!ParseObject(lines[i], &d) || d.HasMember("error")) {
      *error = out_path + " line " + std::to_string(i + 1) + ": " + lines[i].substr(0, 300);
      return -1;
    }
    Ack a{JsonString(d, "stream"), static_cast<uint64_t>(JsonInt(d, "version", 0)),
          static_cast<uint64_t>(JsonInt(d, "position", 0))};
    auto [it, inserted] = ledger->acked.emplace(keys[i], a);
    if (!inserted && (it->second.position != a.position || it->second.version != a.version)) {
      *error = keys[i] + " acknowledged twice with different outcomes";
      return -1;
    }
  }
  return static_cast<int64_t>(lines.size());
}


// ---- the bank read model ----------------------------------------------------

// The `balances` model as rows "account|owner|balance|status", sorted.
inline const char* kBalancesQuery =
    "SELECT account || '|' || COALESCE(owner, '') || '|' || balance || '|' || status AS row FROM balances "
    "ORDER BY account";

// The same rows computed from an (upcast) export, independently of SQLite:
// the oracle a projection is held against.
inline std::vector<std::string> BalancesFromLog(const std::vector<Event>& events) {
  struct Row {
    std::string owner, status = "open";
    int64_t balance = 0;
  };
  std::map<std::string, Row> rows;
  for (const Event& e : events) {
    if (e.stream.rfind("account-", 0) != 0) continue;
    rapidjson::Document d;
    if (!ParseObject(e.data, &d)) continue;
    if (e.type == "AccountOpened") {
      Row& r = rows[e.stream];
      r.status = "open";
      if (auto h = d.FindMember("holder"); h != d.MemberEnd() && h->value.IsObject()) r.owner = JsonString(h->value, "name");
    } else if (e.type == "Deposited") {
      if (auto it = rows.find(e.stream); it != rows.end()) it->second.balance += JsonInt(d, "amount", 0);
    } else if (e.type == "Withdrawn") {
      if (auto it = rows.find(e.stream); it != rows.end()) it->second.balance -= JsonInt(d, "amount", 0);
    } else if (e.type == "AccountClosed") {
      if (auto it = rows.find(e.stream); it != rows.end()) it->second.status = "closed";
    }
  }
  std::vector<std::string> out;
  for (const auto& [account, r] : rows)
    out.push_back(account + "|" + r.owner + "|" + std::to_string(r.balance) + "|" + r.status);
  return out;
}

// The rows of `--json query` output's "row" column.
inline std::vector<std::string> QueryRows(const std::string& json_lines) {
  std::vector<std::string> rows;
  for (const std::string& line : WholeLines(json_lines)) {
    rapidjson::Document d;
    if (ParseObject(line, &d)) rows.push_back(JsonString(d, "row"));
  }
  return rows;
}

// "" or where two row lists first differ.
inline std::string FirstDifference(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    std::string x = i < a.size() ? a[i] : "<none>", y = i < b.size() ? b[i] : "<none>";
    if (x != y) return "row " + std::to_string(i + 1) + ": " + x + " vs " + y + " (" + std::to_string(a.size()) +
                       " vs " + std::to_string(b.size()) + " rows)";
  }
  return "";
}

// The `balances` rows the log itself says (an export through `rill`, then
// BalancesFromLog); a failed export fails the run and answers no rows.
inline std::vector<std::string> BalancesOracle(Run& run, const std::string& db) {
  Output ex = run.RillDb(db, {"export"});
  std::vector<Event> events;
  std::string error;
  if (!run.Expect(ex.code == 0 && ParseExport(ex.out, &events, &error), "export failed: " + error)) return {};
  return BalancesFromLog(events);
}

// append --file lines opening account-0 .. account-(n-1) (AccountOpened v3).
inline std::string AccountOpenings(int accounts) {
  std::string text;
  for (int a = 0; a < accounts; ++a)
    text += R"({"stream":"account-)" + std::to_string(a) +
            R"(","type":"AccountOpened","schema":3,"data":{"holder":{"name":"owner )" + std::to_string(a) +
            R"("},"currency":"EUR"}})" + "\n";
  return text;
}

}  // namespace rill::reliability
