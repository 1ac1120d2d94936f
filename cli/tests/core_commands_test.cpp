// submit, state, diff, snapshot and domains through the real `rill` binary
// against real stores.
#include <sys/wait.h>

#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "store/event_store.h"

namespace {

struct Run {
  int code = -1;
  std::string out, err;
};

class Store {
 public:
  Store() {
    char tmpl[] = "/tmp/rill-cli-core-XXXXXX";
    dir_ = mkdtemp(tmpl);
    db_ = dir_ + "/db";
    BOOST_REQUIRE(rill::EventStore::Init(db_).ok());
  }
  ~Store() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  // Runs `rill --db DB ARGS`; args are passed through sh, so quote them.
  Run rill(const std::string& args) const {
    std::string err = dir_ + "/stderr";
    std::string cmd = std::string(RILL_BINARY) + " --db " + db_ + " " + args + " 2>" + err;
    Run r;
    FILE* p = popen(cmd.c_str(), "r");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    int status = pclose(p);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream in(err);
    std::stringstream ss;
    ss << in.rdbuf();
    r.err = ss.str();
    return r;
  }

 private:
  std::string dir_, db_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(core_commands)

BOOST_AUTO_TEST_CASE(submit_single_commands_and_exit_codes) {
  Store s;
  auto r = s.rill("submit OpenAccount --to account-1 owner=ann");
  BOOST_TEST(r.code == 0);
  BOOST_TEST(r.out == "accepted: account-1 version 1 position 1 (1 event)\n");
  r = s.rill("--json submit Deposit --to account-1 amount=100 --id d-1");
  BOOST_TEST(r.out == "{\"stream\":\"account-1\",\"version\":2,\"position\":2,\"events\":1}\n");
  r = s.rill("--json submit Deposit --to account-1 --data '{\"amount\":100}' --id d-1");
  BOOST_TEST(r.code == 0);
  BOOST_TEST(r.out == "{\"stream\":\"account-1\",\"version\":2,\"position\":2,\"events\":1,\"duplicate\":true}\n");
  r = s.rill("submit Deposit --to account-1 amount=101 --id d-1");
  BOOST_TEST(r.code == 3);
  r = s.rill("submit Withdraw --to account-1 amount=500");
  BOOST_TEST(r.code == 4);
  BOOST_TEST(r.err == "rill: rejected: insufficient funds: balance 100, withdrawal 500\n");
  r = s.rill("submit Deposit --to account-1 amount=ten");
  BOOST_TEST(r.code == 2);
  r = s.rill("submit Deposit --to account-1 amount=1 ammount=10");
  BOOST_TEST(r.code == 2);
  BOOST_TEST(r.err.find("unknown field \"ammount\"") != std::string::npos);
  r = s.rill("submit Deposit --to account-1 amount=1 --expect 7");
  BOOST_TEST(r.code == 3);
  r = s.rill("submit Deposit --to wallet-1 amount=1");
  BOOST_TEST(r.code == 5);
  r = s.rill("submit Deposit --to account-2 amount=1");
  BOOST_TEST(r.code == 4);
  BOOST_TEST(r.err == "rill: rejected: account does not exist\n");
  r = s.rill("submit Deposit");
  BOOST_TEST(r.code == 2);
}

BOOST_AUTO_TEST_CASE(submit_file_prints_one_result_per_command_in_order) {
  Store s;
  auto r = s.rill(std::string("--json submit --file ") + RILL_SOURCE_DIR + "/testdata/commands/bank.jsonl");
  BOOST_TEST(r.code == 4);  // the first failure is a rejection
  BOOST_TEST(r.out == ReadFile(std::string(RILL_SOURCE_DIR) + "/testdata/commands/bank.expected.jsonl"));
  // submit waited for the transfer saga.
  r = s.rill("--json state transfer-1");
  BOOST_TEST(r.out.find("\"status\":\"completed\"") != std::string::npos);
  r = s.rill("--json state transfer-2");
  BOOST_TEST(r.out.find("\"status\":\"failed\"") != std::string::npos);
  BOOST_TEST(r.out.find("\"refunded\":true") != std::string::npos);
  r = s.rill("--json state account-a");
  BOOST_TEST(r.out == "{\"stream\":\"account-a\",\"aggregate\":\"account\",\"version\":5,"
                      "\"state\":{\"owner\":\"ann\",\"balance\":70,\"status\":\"open\"}}\n");
  r = s.rill("--json state sku-1");
  BOOST_TEST(r.out.find("{\"stock\":0,\"sold\":2}") != std::string::npos);
  // The same file again: ids dedupe, the rest is decided afresh.
  r = s.rill("submit --no-wait --file - < /dev/null");
  BOOST_TEST(r.code == 0);
}

BOOST_AUTO_TEST_CASE(time_travel_and_snapshots) {
  Store s;
  BOOST_REQUIRE(s.rill("submit OpenAccount --to account-1 owner=ann").code == 0);
  BOOST_REQUIRE(s.rill("submit Deposit --to account-1 amount=100").code == 0);
  BOOST_REQUIRE(s.rill("submit Withdraw --to account-1 amount=30").code == 0);
  auto r = s.rill("--json state account-1 --at 2");
  BOOST_TEST(r.out == "{\"stream\":\"account-1\",\"aggregate\":\"account\",\"version\":2,"
                      "\"state\":{\"owner\":\"ann\",\"balance\":100,\"status\":\"open\"}}\n");
  r = s.rill("state account-1 --at 9");
  BOOST_TEST(r.code == 5);
  r = s.rill("state account-1 --at 1999-01-01T00:00:00Z");
  BOOST_TEST(r.code == 5);
  r = s.rill("--json state account-1 --at 2999-01-01T00:00:00Z");
  BOOST_TEST(r.out.find("\"version\":3") != std::string::npos);
  r = s.rill("--json diff account-1 1 3");
  BOOST_TEST(r.code == 0);
  BOOST_TEST(r.out.find("\"changes\":[{\"field\":\"balance\",\"before\":0,\"after\":70}]") != std::string::npos);
  r = s.rill("diff account-1 3 1");
  BOOST_TEST(r.code == 2);

  r = s.rill("snapshot show account-1");
  BOOST_TEST(r.code == 5);
  r = s.rill("--json snapshot rebuild --all");
  BOOST_TEST(r.out == "{\"stream\":\"account-1\",\"version\":3,\"state_schema\":1,\"previous_differed\":false}\n");
  r = s.rill("--json snapshot show --category account");
  BOOST_TEST(r.out == "{\"stream\":\"account-1\",\"version\":3,\"state_schema\":1,"
                      "\"state\":{\"owner\":\"ann\",\"balance\":70,\"status\":\"open\"}}\n");
  r = s.rill("snapshot verify --all");
  BOOST_TEST(r.code == 0);
  BOOST_TEST(r.out == "verified 1 snapshot: 0 mismatches\n");
  // A state read after the rebuild starts from the snapshot and agrees.
  r = s.rill("--json state account-1");
  BOOST_TEST(r.out.find("\"balance\":70") != std::string::npos);
  r = s.rill("snapshot drop --all");
  BOOST_TEST(r.out == "dropped 1 snapshot\n");
  r = s.rill("snapshot verify");
  BOOST_TEST(r.code == 2);
}

BOOST_AUTO_TEST_CASE(domains_lists_the_sample_domains) {
  Store s;
  auto r = s.rill("--json domains");
  BOOST_TEST(r.code == 0);
  BOOST_TEST(r.out.find("{\"aggregate\":\"account\",") == 0);
  BOOST_TEST(r.out.find("\"type\":\"Purchase\",\"fields\":[{\"name\":\"quantity\",\"type\":\"integer\",\"optional\":false},"
                        "{\"name\":\"user\",\"type\":\"string\",\"optional\":false}]") != std::string::npos);
  BOOST_TEST(r.out.find("{\"process_manager\":\"transfer\",\"categories\":[\"transfer\"],\"plugin\":null}") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
