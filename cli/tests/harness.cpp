#include "cli/tests/harness.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace rill::clitest {

TempDir::TempDir() {
  char tmpl[] = "/tmp/rill-cli-test-XXXXXX";
  char* p = mkdtemp(tmpl);
  if (!p) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  path_ = p;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

const std::string& RillBinary() {
  // The environment's RILL_BINARY first: a compiler cache shared between
  // worktrees may hand out an object built with another tree's path.
  static std::string binary = std::getenv("RILL_BINARY") ? std::getenv("RILL_BINARY") : RILL_BINARY;
  return binary;
}

namespace {

std::vector<char*> Argv(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(RillBinary().c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  return argv;
}

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

RunResult Rill(const std::vector<std::string>& args, const std::string& stdin_text) {
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
    throw std::runtime_error("pipe failed");
  std::vector<char*> argv = Argv(args);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  RunResult r;
  size_t written = 0;
  if (stdin_text.empty()) {
    close(in[1]);
    in[1] = -1;
  } else {
    fcntl(in[1], F_SETFL, O_NONBLOCK);
  }
  bool out_open = true, err_open = true;
  char buf[65536];
  while (out_open || err_open || in[1] >= 0) {
    pollfd fds[3];
    int n = 0;
    int out_i = -1, err_i = -1, in_i = -1;
    if (out_open) fds[out_i = n++] = {out[0], POLLIN, 0};
    if (err_open) fds[err_i = n++] = {err[0], POLLIN, 0};
    if (in[1] >= 0) fds[in_i = n++] = {in[1], POLLOUT, 0};
    if (poll(fds, n, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    auto drain = [&](int idx, int fd, std::string& to, bool& open) {
      if (idx < 0 || !(fds[idx].revents & (POLLIN | POLLHUP | POLLERR))) return;
      ssize_t k = read(fd, buf, sizeof buf);
      if (k > 0)
        to.append(buf, static_cast<size_t>(k));
      else if (k == 0 || errno != EINTR)
        open = false;
    };
    drain(out_i, out[0], r.out, out_open);
    drain(err_i, err[0], r.err, err_open);
    if (in_i >= 0 && (fds[in_i].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t k = write(in[1], stdin_text.data() + written, stdin_text.size() - written);
      if (k > 0) written += static_cast<size_t>(k);
      if (k < 0 && errno != EAGAIN && errno != EINTR) written = stdin_text.size();
      if (written == stdin_text.size()) {
        close(in[1]);
        in[1] = -1;
      }
    }
  }
  close(out[0]);
  close(err[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = DecodeStatus(status);
  return r;
}

RunResult RillDb(const std::string& db, const std::vector<std::string>& args, const std::string& stdin_text) {
  std::vector<std::string> all = {"--db", db};
  all.insert(all.end(), args.begin(), args.end());
  return Rill(all, stdin_text);
}

pid_t Spawn(const std::vector<std::string>& args, const std::string& out_path, const std::string& err_path) {
  std::vector<char*> argv = Argv(args);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int o = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int n = open("/dev/null", O_RDONLY);
    if (o < 0 || e < 0 || n < 0) _exit(126);
    dup2(n, 0);
    dup2(o, 1);
    dup2(e, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

int WaitExit(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return DecodeStatus(status);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

bool FileExists(const std::string& path) { return std::filesystem::exists(path); }

uint64_t HashFile(const std::string& path) {
  std::string bytes = ReadFile(path);
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h ^ bytes.size();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

size_t CountChar(const std::string& text, char c) {
  size_t n = 0;
  for (char x : text) n += x == c;
  return n;
}

std::string TestData(const std::string& name) { return std::string(RILL_SOURCE_DIR) + "/testdata/cli/" + name; }

std::string CompareGolden(const std::string& name, const std::string& actual) {
  std::string path = TestData(name);
  if (const char* u = std::getenv("RILL_UPDATE_GOLDEN"); u && *u == '1') {
    WriteFile(path, actual);
    return "";
  }
  if (!FileExists(path)) return "golden file " + path + " is missing (run with RILL_UPDATE_GOLDEN=1)";
  std::string expected = ReadFile(path);
  if (expected == actual) return "";
  auto e = Lines(expected), a = Lines(actual);
  for (size_t i = 0; i < std::max(e.size(), a.size()); ++i) {
    std::string el = i < e.size() ? e[i] : "<end>", al = i < a.size() ? a[i] : "<end>";
    if (el != al)
      return name + " differs at line " + std::to_string(i + 1) + "\n  expected: " + el + "\n  actual:   " + al;
  }
  return name + " differs (line endings or trailing newline)";
}

TestStore::TestStore() : db(dir / "store") {
  RunResult r = RillDb(db, {"init"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, "rill init failed: " + r.err);
}

std::string TestStore::Export() const {
  // Raw: what is stored, so comparisons do not depend on the upcasters.
  RunResult r = Run({"export", "--raw"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, "rill export failed: " + r.err);
  return r.out;
}

std::string JsonField(const std::string& line, const std::string& key) {
  std::string k = "\"" + key + "\":";
  size_t p = line.find(k);
  if (p == std::string::npos) return "";
  p += k.size();
  if (line[p] == '"') {
    size_t e = line.find('"', p + 1);
    return line.substr(p + 1, e - p - 1);
  }
  size_t e = line.find_first_of(",}", p);
  return line.substr(p, e - p);
}

}  // namespace rill::clitest
