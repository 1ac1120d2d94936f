// The Env seam (store/env.h): the fsyncs and renames of the files rill
// writes itself, the clock, the write path's fault points. Each case makes
// one step fail through an EnvWrapper and checks nothing half-written is
// left behind.
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "store/durable_file.h"
#include "store/tests/test_util.h"

using namespace rill;
using namespace rill::testing;
namespace fs = std::filesystem;

namespace {

// Fails every fsync or rename whose path contains `needle`; records each
// path synced.
class FailingFilesEnv : public EnvWrapper {
 public:
  FailingFilesEnv() : EnvWrapper(Env::Default()) {}
  std::string fail_sync, fail_rename;
  Status Sync(int fd, const std::string& path) override {
    {
      std::lock_guard lock(mu_);
      synced_.insert(path);
    }
    if (!fail_sync.empty() && path.find(fail_sync) != std::string::npos)
      return Status::IOError("fsync " + path + " failed: Input/output error");
    return EnvWrapper::Sync(fd, path);
  }
  Status Rename(const std::string& from, const std::string& to) override {
    if (!fail_rename.empty() && to.find(fail_rename) != std::string::npos)
      return Status::IOError("cannot rename " + from + " to " + to + ": No space left on device");
    return EnvWrapper::Rename(from, to);
  }
  std::set<std::string> synced() {
    std::lock_guard lock(mu_);
    return synced_;
  }

 private:
  std::mutex mu_;
  std::set<std::string> synced_;
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t FilesIn(const std::string& dir) {
  size_t n = 0;
  for (auto& e : fs::directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

void Write(AtomicFileWriter& w, const std::string& text) { std::fputs(text.c_str(), w.file()); }

}  // namespace

BOOST_AUTO_TEST_SUITE(env)

BOOST_AUTO_TEST_CASE(a_failed_fsync_leaves_the_target_as_it_was) {
  TempDir tmp;
  std::string target = tmp.sub("out.txt");
  {
    std::ofstream(target) << "old";
  }
  FailingFilesEnv env;
  env.fail_sync = "out.txt";
  auto w = AtomicFileWriter::Create(target, 0666, &env);
  BOOST_REQUIRE(w.ok());
  Write(*w, "new");
  Status s = w->Commit();
  BOOST_TEST(s.code() == Code::kIOError);
  BOOST_TEST(s.message().find("cannot write " + target) == 0, s.message());
  BOOST_TEST(Slurp(target) == "old");
  BOOST_TEST(FilesIn(tmp.path()) == 1u);  // the temporary is gone
}

BOOST_AUTO_TEST_CASE(a_failed_rename_leaves_the_target_as_it_was) {
  TempDir tmp;
  std::string target = tmp.sub("out.txt");
  {
    std::ofstream(target) << "old";
  }
  FailingFilesEnv env;
  env.fail_rename = "out.txt";
  auto w = AtomicFileWriter::Create(target, 0666, &env);
  BOOST_REQUIRE(w.ok());
  Write(*w, "new");
  BOOST_TEST(w->Commit().code() == Code::kIOError);
  BOOST_TEST(Slurp(target) == "old");
  BOOST_TEST(FilesIn(tmp.path()) == 1u);
}

BOOST_AUTO_TEST_CASE(a_commit_syncs_the_file_and_its_directory) {
  TempDir tmp;
  FailingFilesEnv env;
  auto w = AtomicFileWriter::Create(tmp.sub("out.txt"), 0666, &env);
  BOOST_REQUIRE(w.ok());
  Write(*w, "new");
  BOOST_REQUIRE(w->Commit().ok());
  auto synced = env.synced();
  BOOST_TEST(synced.size() == 2u);                 // the temporary, then the directory
  BOOST_TEST(synced.count(tmp.path()) + synced.count(tmp.path() + "/") == 1u);
  BOOST_TEST(Slurp(tmp.sub("out.txt")) == "new");
}

// A backup is durable before it returns: its fsyncs go through the store's
// Env, and one failing fails the backup and removes the copy.
BOOST_AUTO_TEST_CASE(a_backup_whose_fsync_fails_is_removed) {
  TempDir tmp;
  FailingFilesEnv env;
  env.fail_sync = "/copy/index";
  StoreOptions o;
  o.env = &env;
  auto s = OpenOrDie(tmp.sub("db"), o);
  for (int i = 0; i < 20; ++i) BOOST_REQUIRE(s->Append(MakeAppend("b-1", "E")).ok());
  Status b = s->Backup(tmp.sub("copy"));
  BOOST_TEST(b.code() == Code::kIOError, b.message());
  BOOST_TEST(!fs::exists(tmp.sub("copy")));
  env.fail_sync.clear();
  BOOST_REQUIRE(s->Backup(tmp.sub("copy")).ok());
  auto copy = OpenOrDie(tmp.sub("copy"));
  BOOST_TEST(copy->LastPosition() == 20u);
}

// Event times come from the store's Env, so a test can date them.
BOOST_AUTO_TEST_CASE(event_times_come_from_the_env_clock) {
  TempDir tmp;
  FaultEnv env;
  env.Advance(std::chrono::hours(24 * 365));
  StoreOptions o;
  o.env = &env;
  auto s = OpenOrDie(tmp.sub("db"), o);
  int64_t before = NowMicros();
  BOOST_REQUIRE(s->Append(MakeAppend("t-1", "E")).ok());
  std::vector<Event> ev;
  BOOST_REQUIRE(s->ReadAll(1, 10, &ev).ok());
  BOOST_REQUIRE_EQUAL(ev.size(), 1u);
  BOOST_TEST(ev[0].time_us >= before + int64_t{364} * 24 * 3600 * 1000000);
}

BOOST_AUTO_TEST_CASE(fault_points_are_reached_in_write_order) {
  TempDir tmp;
  FaultEnv env;
  std::mutex mu;
  std::vector<FaultPoint> seen;
  env.on_fault = [&](FaultPoint p) {
    std::lock_guard lock(mu);
    seen.push_back(p);
    return Status::OK();
  };
  StoreOptions o;
  o.env = &env;
  o.complete_inline_below = 0;  // through the completer: all three points
  auto s = OpenOrDie(tmp.sub("db"), o);
  BOOST_REQUIRE(s->Append(MakeAppend("f-1", "E")).ok());
  std::lock_guard lock(mu);
  // Opening the store commits too (its format mark): look at the last three.
  BOOST_REQUIRE(seen.size() >= 3u);
  std::vector<FaultPoint> last(seen.end() - 3, seen.end());
  BOOST_TEST((last == std::vector<FaultPoint>{FaultPoint::kBeforeLogCommit, FaultPoint::kAfterLogCommit,
                                              FaultPoint::kBeforeComplete}));
  BOOST_TEST(std::string(FaultPointName(FaultPoint::kBeforeLogCommit)) == "before-log-commit");
}

BOOST_AUTO_TEST_SUITE_END()
