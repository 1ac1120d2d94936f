// rel_bad_input (issue 6, item 9) promises: every bad input in
// testdata/bad/cases.tsv — malformed and deeply nested JSON, invalid UTF-8,
// NUL bytes, 100 MB payloads, odd and over-long stream names, negative and
// overflowing versions, unknown types, broken migration and SQL projection
// files, bad CLI arguments — is refused with its documented non-zero exit
// code and a short error on stderr that names where the problem is (line N,
// the option, the file), rill never crashes or hangs on it, and the store is
// byte-identical before and after.
//
// Large inputs (gen:NAME in the manifest) are made at run time, never
// committed. Each one-line case of the JSONL readers is also run at the
// first and last line, without its newline, with CRLF, 1,000 lines deep and
// from stdin (Variants): over 1,000 cases. Short and long mode run the same
// cases (a few minutes).
#include "reliability/reliability.h"

#include <map>

using namespace rill::reliability;
namespace fs = std::filesystem;

namespace {

struct Case {
  std::string id, kind, words, input;
  int exit_code = 0;
  std::vector<std::string> args;
  int manifest_line = 0;
  std::string raw;  // the input itself, for the derived cases (input "raw")
};

// \\ \t \n \r \xHH
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    char c = s[++i];
    if (c == 't') out += '\t';
    else if (c == 'n') out += '\n';
    else if (c == 'r') out += '\r';
    else if (c == 'x' && i + 2 < s.size() + 1) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else out += c;
  }
  return out;
}

std::vector<std::string> SplitTabs(const std::string& line) {
  std::vector<std::string> cols;
  size_t start = 0;
  for (size_t t; (t = line.find('\t', start)) != std::string::npos; start = t + 1) cols.push_back(line.substr(start, t - start));
  cols.push_back(line.substr(start));
  return cols;
}

bool LoadManifest(const std::string& path, std::vector<Case>* cases, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot read " + path;
    return false;
  }
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cols = SplitTabs(line);
    if (cols.size() < 5) {
      *error = path + ":" + std::to_string(n) + ": fewer than 5 columns";
      return false;
    }
    Case c;
    c.id = cols[0];
    c.kind = cols[1];
    c.exit_code = std::atoi(cols[2].c_str());
    c.words = Unescape(cols[3]);
    c.input = cols[4];
    for (size_t i = 5; i < cols.size(); ++i) c.args.push_back(Unescape(cols[i]));
    c.manifest_line = n;
    cases->push_back(std::move(c));
  }
  return true;
}

// Where line-oriented readers slip: the first and the last line, a last
// line without its newline, CRLF endings, a bad line deep in a file, and
// stdin instead of a path. Each committed case of one of these shapes is
// also run in those places, the error's line number moved to match:
//   events   "G\nB\nG\n" naming line 2, append --file @IN
//   import   "B\n" naming line 1, import --append @IN
//   commands "B\n" naming line 1, submit --file @IN
// (no good line goes before a bad command: submit runs each line on its own,
// so the good one would change the store, as documented.)
std::vector<Case> Variants(const Case& c) {
  std::vector<Case> out;
  if (c.input.rfind("text:", 0) != 0) return out;
  const std::string text = Unescape(c.input.substr(5));
  auto add = [&](const std::string& tag, std::string raw, std::string words, std::vector<std::string> args) {
    Case v = c;
    v.id = c.id + "/" + tag;
    v.input = "raw";
    v.raw = std::move(raw);
    v.words = std::move(words);
    v.args = std::move(args);
    out.push_back(std::move(v));
  };
  // Every shape below ends in a newline, so whole lines are all of it.
  const std::vector<std::string> lines = WholeLines(text);
  const bool one_line = lines.size() == 1 && text.back() == '\n' && lines[0].find('\r') == std::string::npos;
  if (c.kind == "events" && c.words == "line 2" && c.args == std::vector<std::string>{"append", "--file", "@IN"} &&
      lines.size() == 3 && lines[0] == lines[2] && text.back() == '\n' && text.find('\r') == std::string::npos) {
    const std::string& g = lines[0];
    const std::string& b = lines[1];
    add("first", b + "\n" + g + "\n", "line 1", c.args);
    add("last", g + "\n" + g + "\n" + b, "line 3", c.args);
    add("crlf", g + "\r\n" + b + "\r\n" + g + "\r\n", "line 2", c.args);
    std::string deep;
    for (int i = 0; i < 1000; ++i) deep += g + "\n";
    add("deep", deep + b + "\n" + g + "\n", "line 1001", c.args);
    add("stdin", text, "line 2", {"append", "--file", "-"});
  } else if (c.kind == "import" && c.words == "line 1" && one_line &&
             c.args == std::vector<std::string>{"import", "--append", "@IN"}) {
    const std::string& b = lines[0];
    const std::string g =
        R"({"position":9,"stream":"imp-0","version":1,"type":"E","schema":1,"id":"7d0c3b59-3f0e-4a52-9a55-0f8f3e2c1a11","time":"2026-01-01T00:00:00Z","data":{},"meta":{}})";
    add("nonl", b, "line 1", c.args);
    add("crlf", b + "\r\n", "line 1", c.args);
    add("after", g + "\n" + b + "\n", "line 2", c.args);
    add("stdin", text, "line 1", {"import", "--append", "-"});
  } else if (c.kind == "commands" && c.words == "line 1" && one_line &&
             c.args == std::vector<std::string>{"submit", "--file", "@IN"}) {
    const std::string& b = lines[0];
    add("nonl", b, "line 1", c.args);
    add("crlf", b + "\r\n", "line 1", c.args);
    add("stdin", text, "line 1", {"submit", "--file", "-"});
  }
  return out;
}

void Replace(std::string* s, const std::string& from, const std::string& to) {
  for (size_t at = 0; (at = s->find(from, at)) != std::string::npos; at += to.size()) s->replace(at, from.size(), to);
}

// The inputs too big to commit.
bool Generate(const std::string& name, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const std::string good = R"({"stream":"account-1","type":"Deposited","data":{"amount":1}})";
  const std::string mb100(100u << 20, 'x');
  if (name == "event_100mb") {
    out << good << "\n" << R"({"stream":"account-1","type":"Big","data":{"blob":")" << mb100 << "\"}}\n";
  } else if (name == "event_deep_1m") {
    out << good << "\n" << R"({"stream":"account-1","type":"Deep","data":{"a":)" << std::string(1u << 20, '[')
        << std::string(1u << 20, ']') << "}}\n";
  } else if (name == "events_100k_then_bad") {
    for (int i = 0; i < 100000; ++i) out << good << "\n";
    out << R"({"stream":"account-1","type":"Deposited","data":{"amount":1})" << "\n";
  } else if (name == "random_bytes") {
    std::mt19937_64 rng(42);
    std::string bytes(1u << 20, '\0');
    for (auto& b : bytes) b = static_cast<char>(rng());
    out << bytes;
  } else if (name == "line_20mb_no_newline") {
    out << "{\"stream\":\"" << std::string(20u << 20, 'a');
  } else if (name == "import_100mb") {
    out << R"({"position":9,"stream":"imp-1","version":1,"type":"E","schema":1,"id":"2e4e9ad5-4c6c-4e2f-adcd-5b54c38c6799","time":"2026-01-01T00:00:00Z","meta":{},"data":{"blob":")"
        << mb100 << "\"}}\n";
  } else if (name == "command_100mb") {
    out << R"({"command":"Deposit","to":"account-2","data":{"amount":1,"note":")" << mb100 << "\"}}\n";
  } else if (name == "migration_100mb") {
    out << R"({"event":"E","from":1,"to":2,"ops":[{"op":"default","path":"x","value":")" << mb100 << "\"}]}\n";
  } else if (name == "sql_100mb") {
    out << "-- rill projection: big\n-- schema\nCREATE TABLE t(a);\n-- on E\nINSERT INTO t VALUES('" << mb100
        << "');\n";
  } else {
    return false;
  }
  return static_cast<bool>(out);
}

// Every store file by path, but LMDB's lock files (readers register there)
// and the derived index: opening a store commits a transaction there (its
// meta page's transaction id changes even when nothing else does), so the
// index is compared by what it says — the raw export and the stream list.
std::map<std::string, std::string> Snapshot(Run& run, const std::string& db) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(db)) {
    std::string rel = fs::relative(e.path(), db).string();
    if (!e.is_regular_file() || e.path().filename() == "lock.mdb" || rel.rfind("index/", 0) == 0) continue;
    files[rel] = ReadFile(e.path().string());
  }
  files["<export --raw>"] = run.RillDb(db, {"--json", "export", "--raw"}).out;
  files["<streams>"] = run.RillDb(db, {"--json", "streams"}).out;
  return files;
}

std::string Printable(const std::string& s, size_t max) {
  std::string out;
  for (unsigned char c : s.substr(0, max)) {
    if (c == '\n') out += "\\n";
    else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else out += static_cast<char>(c);
  }
  return s.size() > max ? out + "..." : out;
}

}  // namespace

int main(int argc, char** argv) {
  Run run("bad_input", argc, argv);
  const std::string manifest = SourceDir() + "/testdata/bad/cases.tsv";
  std::vector<Case> cases;
  std::string error;
  if (!LoadManifest(manifest, &cases, &error)) {
    run.Fail(error);
    return run.Finish();
  }
  const size_t committed = cases.size();
  for (size_t i = 0; i < committed; ++i)
    for (Case& v : Variants(cases[i])) cases.push_back(std::move(v));

  // A small store with events and an aggregate to aim commands at.
  const std::string db = run.Path("db");
  fs::remove_all(db);
  bool ready = run.RillDb(db, {"init"}).code == 0 &&
               run.RillDb(db, {"append", "account-1", "Opened", "--force", "--data", R"({"owner":"x"})"}).code == 0 &&
               run.RillDb(db, {"submit", "OpenAccount", "--to", "account-2", "owner=bob"}).code == 0 &&
               run.RillDb(db, {"submit", "Deposit", "--to", "account-2", "amount=5"}).code == 0 &&
               run.CheckClean(db, "before the cases");
  if (!ready) {
    run.Fail("cannot set up the store in " + db);
    return run.Finish();
  }
  setenv("RILL_DB", db.c_str(), 1);
  const std::map<std::string, std::string> before = Snapshot(run, db);

  uint64_t rejected = 0, unchanged = 0, positioned = 0, failed = 0;
  std::map<std::string, uint64_t> per_kind;
  const std::string bad_dir = SourceDir() + "/testdata/bad/";
  for (const Case& c : cases) {
    const std::string scratch = run.Path("case");
    fs::remove_all(scratch);
    fs::create_directories(scratch);
    // The input as a path.
    std::string in_path = scratch + "/input";
    const std::string& input = c.input;
    auto colon = input.find(':');
    std::string how = input.substr(0, colon), what = colon == std::string::npos ? "" : input.substr(colon + 1);
    bool made = true;
    if (input == "-") {
      WriteFile(in_path, "");
    } else if (how == "text") {
      made = WriteFile(in_path, Unescape(what));
    } else if (input == "raw") {
      made = WriteFile(in_path, c.raw);
    } else if (how == "sql") {
      in_path = scratch + "/bad.sql";
      made = WriteFile(in_path, Unescape(what));
    } else if (how == "mig") {
      in_path = scratch + "/migrations";
      fs::create_directories(in_path);
      made = WriteFile(in_path + "/0001-bad.json", Unescape(what));
    } else if (how == "migfile") {
      in_path = scratch + "/migrations";
      fs::create_directories(in_path);
      fs::copy_file(bad_dir + what, in_path + "/" + fs::path(what).filename().string());
    } else if (how == "migdir") {
      in_path = bad_dir + what;
    } else if (how == "gen") {
      if (what.rfind("migration", 0) == 0) {
        fs::create_directories(scratch + "/migrations");
        in_path = scratch + "/migrations";
        made = Generate(what, in_path + "/0001-bad.json");
      } else if (what.rfind("sql", 0) == 0) {
        in_path = scratch + "/bad.sql";
        made = Generate(what, in_path);
      } else {
        made = Generate(what, in_path);
      }
    } else {
      made = false;
    }
    if (!made) {
      run.Fail(c.id + ": cannot make input " + Printable(input, 60));
      ++failed;
      continue;
    }
    bool uses_in = false;
    std::vector<std::string> args = c.args;
    std::string words = c.words;
    for (std::string* s : [&] {
           std::vector<std::string*> v{&words};
           for (auto& a : args) v.push_back(&a);
           return v;
         }()) {
      if (s != &words && s->find("@IN") != std::string::npos) uses_in = true;
      Replace(s, "@IN", in_path);
      Replace(s, "@DIR", scratch);
      Replace(s, "@DB", db);
    }
    const std::string stdin_path = uses_in || input == "-" ? "" : in_path;

    const std::string out = scratch + "/.out", err = scratch + "/.err";
    pid_t pid = SpawnRill(args, out, err, stdin_path);
    int code = -1;
    bool hung = false;
    for (auto start = std::chrono::steady_clock::now(); !Exited(pid, &code);) {
      if (std::chrono::steady_clock::now() - start > std::chrono::seconds(180)) {
        code = KillAndWait(pid);
        hung = true;
        break;
      }
      SleepMs(2);
    }
    std::string stderr_text = ReadFile(err);
    std::string problem;
    if (hung) problem = "still running after 180 s";
    else if (code > 128) problem = "killed by signal " + std::to_string(code - 128);
    else if (code == 0) problem = "accepted (exit 0)";
    else if (code != c.exit_code)
      problem = "exit " + std::to_string(code) + ", documented " + std::to_string(c.exit_code);
    else ++rejected;
    // The error: short lines on stderr, each starting "rill: ": one per bad
    // line of a file (rill lists at most 20, then "... and N more") plus a
    // summary; one for anything else.
    auto lines = WholeLines(stderr_text);
    if (problem.empty()) {
      bool all_rill = !lines.empty();
      for (const auto& l : lines) all_rill = all_rill && l.rfind("rill: ", 0) == 0;
      if (!all_rill || lines.size() > 22) problem = "stderr is not short \"rill: \" error lines";
      for (const auto& l : lines)
        if (l.size() > 1000) problem = "an error line of " + std::to_string(l.size()) + " bytes";
    }
    bool named = true;
    size_t start = 0;
    while (problem.empty() && start <= words.size()) {
      size_t bar = words.find('|', start);
      std::string w = words.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
      if (!w.empty() && stderr_text.find(w) == std::string::npos) {
        problem = "error does not name \"" + Printable(w, 60) + "\"";
        named = false;
      }
      if (bar == std::string::npos) break;
      start = bar + 1;
    }
    if (problem.empty() && named) ++positioned;
    if (Snapshot(run, db) == before) ++unchanged;
    else {
      problem += problem.empty() ? "" : "; ";
      problem += "the store changed";
    }
    ++per_kind[c.kind];
    if (!problem.empty()) {
      ++failed;
      std::string shown;
      for (const auto& a : c.args) shown += Printable(a, 40) + " ";
      run.Fail(c.id + " (" + c.kind + ", cases.tsv:" + std::to_string(c.manifest_line) + ", rill " + shown +
               "): " + problem + "; stderr: " + Printable(stderr_text, 300));
    }
    fs::remove_all(scratch);
  }
  run.CheckClean(db, "after the cases");
  std::string kinds;
  for (const auto& [k, n] : per_kind) kinds += (kinds.empty() ? "" : ",") + k + ":" + std::to_string(n);
  Log("cases per kind: %s", kinds.c_str());
  run.Figure("cases", static_cast<uint64_t>(cases.size()));
  run.Figure("derived", static_cast<uint64_t>(cases.size() - committed));
  run.Figure("rejected", rejected);
  run.Figure("positioned", positioned);
  run.Figure("unchanged", unchanged);
  run.Figure("failed", failed);
  if (cases.size() < 1000) run.Fail("fewer than 1,000 cases from " + manifest);
  return run.Finish();
}
