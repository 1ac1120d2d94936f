// Test harness for the CLI: runs the real `rill` binary (RILL_BINARY) in a
// child process against a store in a temporary directory and captures its
// stdout, stderr and exit code. Nothing is mocked.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace rill::clitest {

struct RunResult {
  int exit_code = -1;  // 128 + signal when killed by a signal
  std::string out, err;
};

// A fresh directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The rill binary under test ($RILL_BINARY, else the build's).
const std::string& RillBinary();
// Runs `rill ARGS...` with `stdin_text` on its stdin.
RunResult Rill(const std::vector<std::string>& args, const std::string& stdin_text = "");
// Runs `rill --db DB ARGS...`.
RunResult RillDb(const std::string& db, const std::vector<std::string>& args, const std::string& stdin_text = "");

// Starts `rill ARGS...` in the background with stdout/stderr to files.
pid_t Spawn(const std::vector<std::string>& args, const std::string& out_path, const std::string& err_path);
// Waits for the child; returns its exit code (128 + signal if killed).
int WaitExit(pid_t pid);

std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& text);
bool FileExists(const std::string& path);
// FNV-1a of the file's bytes (enough to see "unchanged").
uint64_t HashFile(const std::string& path);
std::vector<std::string> Lines(const std::string& text);
size_t CountChar(const std::string& text, char c);

// The testdata/cli directory of the source tree.
std::string TestData(const std::string& name);
// Compares `actual` with testdata/cli/<name>; RILL_UPDATE_GOLDEN=1 rewrites
// the golden file instead. Returns "" or a description of the first
// difference.
std::string CompareGolden(const std::string& name, const std::string& actual);

// A store created with `rill init` in its own temp dir.
struct TestStore {
  TempDir dir;
  std::string db;
  TestStore();
  RunResult Run(const std::vector<std::string>& args, const std::string& stdin_text = "") const {
    return RillDb(db, args, stdin_text);
  }
  std::string Export() const;  // `rill export --raw` stdout (as stored), checked to succeed
  uint64_t LogHash() const { return HashFile(db + "/log/data.mdb"); }
};

// Field `key` of a one-line JSON object, as text (numbers) — enough for the
// flat objects rill prints.
std::string JsonField(const std::string& line, const std::string& key);

}  // namespace rill::clitest
