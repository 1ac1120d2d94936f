// The transfer saga conserves money when the process dies between any two
// of its steps and a new process picks up from the checkpoint.
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdlib>

#include "core/process_manager.h"
#include "core/tests/test_util.h"

using namespace rill;
using namespace rill::coretest;

namespace {

// Dies (like kill -9: no cleanup) right after the crash_at-th command the
// saga sends has been made durable, before the saga records its checkpoint.
class CrashingContext final : public ProcessContext {
 public:
  CrashingContext(ProcessContext& inner, int* sent, int crash_at) : inner_(inner), sent_(sent), crash_at_(crash_at) {}
  Result<CommandResult> Send(int step, Command command) override {
    auto r = inner_.Send(step, std::move(command));
    if (++*sent_ == crash_at_) _exit(42);
    return r;
  }
  Result<StateView> State(const std::string& stream) override { return inner_.State(stream); }

 private:
  ProcessContext& inner_;
  int* sent_;
  int crash_at_;
};

class CrashingSaga final : public ProcessManager {
 public:
  explicit CrashingSaga(int crash_at) : inner_(domains::MakeTransferProcessManager()), crash_at_(crash_at) {}
  std::string name() const override { return inner_->name(); }
  std::vector<std::string> categories() const override { return inner_->categories(); }
  Status Handle(const Event& e, ProcessContext& context) override {
    CrashingContext c(context, &sent_, crash_at_);
    return inner_->Handle(e, c);
  }
  int sent() const { return sent_; }

 private:
  std::shared_ptr<ProcessManager> inner_;
  int crash_at_;
  int sent_ = 0;
};

void SetUpBank(const std::string& dir) {
  auto store = OpenStore(dir);
  auto registry = SampleDomains();
  auto rt = StartRuntime(store.get(), &registry);
  MustExecute(*rt, Cmd("OpenAccount", "account-a", R"({"owner":"ann"})"));
  MustExecute(*rt, Cmd("OpenAccount", "account-b", R"({"owner":"bob"})"));
  MustExecute(*rt, Cmd("OpenAccount", "account-c", R"({"owner":"cy"})"));
  MustExecute(*rt, Cmd("CloseAccount", "account-c"));
  MustExecute(*rt, Cmd("Deposit", "account-a", R"({"amount":100})"));
  MustExecute(*rt, Cmd("Deposit", "account-b", R"({"amount":50})"));
  MustExecute(*rt, Cmd("StartTransfer", "transfer-1", R"({"from":"account-a","to":"account-b","amount":30})"));
  MustExecute(*rt, Cmd("StartTransfer", "transfer-2", R"({"from":"account-a","to":"account-c","amount":20})"));
  MustExecute(*rt, Cmd("StartTransfer", "transfer-3", R"({"from":"account-a","to":"account-404","amount":10})"));
  MustExecute(*rt, Cmd("StartTransfer", "transfer-4", R"({"from":"account-b","to":"account-a","amount":500})"));
  MustExecute(*rt, Cmd("StartTransfer", "transfer-5", R"({"from":"account-b","to":"account-a","amount":20})"));
}

// Runs the saga in a child process that dies after `crash_at` commands.
// Returns the child's exit status (42: it crashed; 0: it finished first).
int RunSagaInChild(const std::string& dir, int crash_at) {
  pid_t pid = fork();
  if (pid == 0) {
    int code = 0;
    {
      auto store = OpenStore(dir);
      DomainRegistry registry;
      domains::RegisterAll(registry);
      DomainRegistry crashing;
      for (const auto* t : registry.aggregates()) crashing.Add(std::shared_ptr<const AggregateType>(registry.Find(t->name()), [](const AggregateType*) {}));
      crashing.AddProcessManager(std::make_shared<CrashingSaga>(crash_at));
      auto rt = StartRuntime(store.get(), &crashing);
      code = RunProcessManagers(*store, *rt, crashing).ok() ? 0 : 1;
    }
    _exit(code);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(saga)

BOOST_AUTO_TEST_CASE(transfer_saga_conserves_money_across_crashes) {
  // The full run sends 22 commands; crash after each one in turn.
  for (int crash_at = 1; crash_at <= 23; ++crash_at) {
    BOOST_TEST_CONTEXT("crash after command " << crash_at) {
      TempDir dir;
      SetUpBank(dir.path());
      int child = RunSagaInChild(dir.path(), crash_at);
      BOOST_TEST((child == 42 || (crash_at == 23 && child == 0)));

      auto store = OpenStore(dir.path());
      auto registry = SampleDomains();
      auto rt = StartRuntime(store.get(), &registry);
      BOOST_REQUIRE(RunProcessManagers(*store, *rt, registry).ok());
      auto balance = [&](const char* s) { return IntField(rt->GetState(s)->state, "balance"); };
      auto status = [&](const char* s) { return Field(rt->GetState(s)->state, "status"); };
      BOOST_TEST(balance("account-a") == 90);
      BOOST_TEST(balance("account-b") == 60);
      BOOST_TEST(balance("account-c") == 0);
      BOOST_TEST(balance("account-a") + balance("account-b") + balance("account-c") == 150);
      BOOST_TEST(status("transfer-1") == "\"completed\"");
      BOOST_TEST(status("transfer-2") == "\"failed\"");
      BOOST_TEST(Field(rt->GetState("transfer-2")->state, "refunded") == "true");
      BOOST_TEST(status("transfer-3") == "\"failed\"");
      BOOST_TEST(status("transfer-4") == "\"failed\"");
      BOOST_TEST(Field(rt->GetState("transfer-4")->state, "refunded") == "false");
      BOOST_TEST(status("transfer-5") == "\"completed\"");
      auto account404 = rt->GetState("account-404");
      BOOST_TEST(account404->version == 0u);
    }
  }
}

// Found by reliability/kill_saga.cpp: a runner that takes over from a dead one
// may hold a live transfer actor from before the dead runner's steps. Deciding
// on it, the saga redid a debit that had been rejected (and recorded as a
// failed transfer) after the account was funded meanwhile: money left the
// account with the transfer already failed. The saga must see the store.
BOOST_FIXTURE_TEST_CASE(saga_decides_on_the_store_not_on_a_stale_actor, SampleStore) {
  auto rt = StartRuntime(store.get(), &registry);
  auto rill = [&](const std::string& args) {
    std::string cmd = std::string("'") + RILL_BINARY + "' --db '" + dir.path() + "' --quiet " + args + " >/dev/null";
    return std::system(cmd.c_str());
  };
  // Another process opens and funds the accounts; this one starts a transfer
  // it cannot pay yet (its transfer actor stays live here).
  BOOST_REQUIRE(rill("submit OpenAccount --to account-a owner=ann --no-wait") == 0);
  BOOST_REQUIRE(rill("submit Deposit --to account-a amount=10 --no-wait") == 0);
  BOOST_REQUIRE(rill("submit OpenAccount --to account-b owner=bob --no-wait") == 0);
  MustExecute(*rt, Cmd("StartTransfer", "transfer-9", R"({"from":"account-a","to":"account-b","amount":50})"));
  // The other process runs the saga: the debit is rejected, the transfer fails.
  BOOST_REQUIRE(rill("run") == 0);
  BOOST_REQUIRE(rill("submit Deposit --to account-a amount=100 --no-wait") == 0);
  // As if that runner died before saving its checkpoint: this one redelivers.
  BOOST_REQUIRE(store->SetCheckpoint(ProcessManagerCheckpoint("transfer"), 0).ok());
  BOOST_REQUIRE(RunProcessManagers(*store, *rt, registry).ok());

  auto fresh = [&](const char* s) { return ReplayState(*store, registry, s)->state; };
  BOOST_TEST(Field(fresh("transfer-9"), "status") == "\"failed\"");
  BOOST_TEST(IntField(fresh("account-a"), "balance") == 110);
  BOOST_TEST(IntField(fresh("account-b"), "balance") == 0);
}

// A refund refused by an account closed after the debit: the money stays
// held in the failed transfer (refunded false), and the reason says why.
BOOST_FIXTURE_TEST_CASE(a_refund_to_an_account_closed_meanwhile_stays_held, SampleStore) {
  auto rt = StartRuntime(store.get(), &registry);
  MustExecute(*rt, Cmd("OpenAccount", "account-a", R"({"owner":"ann"})"));
  MustExecute(*rt, Cmd("Deposit", "account-a", R"({"amount":100})"));
  // The saga's steps up to the refund, taken by hand so that the account
  // can close before it.
  MustExecute(*rt, Cmd("StartTransfer", "transfer-1", R"({"from":"account-a","to":"account-b","amount":30})"));
  MustExecute(*rt, Cmd("Withdraw", "account-a", R"({"amount":30})"));
  MustExecute(*rt, Cmd("RecordDebit", "transfer-1"));
  MustExecute(*rt, Cmd("RecordCreditFailure", "transfer-1", R"({"reason":"credit rejected: account does not exist"})"));
  MustExecute(*rt, Cmd("CloseAccount", "account-a"));
  BOOST_REQUIRE(RunProcessManagers(*store, *rt, registry).ok());

  auto fresh = [&](const char* s) { return ReplayState(*store, registry, s)->state; };
  BOOST_TEST(Field(fresh("transfer-1"), "status") == "\"failed\"");
  BOOST_TEST(Field(fresh("transfer-1"), "refunded") == "false");
  BOOST_TEST(Field(fresh("transfer-1"), "reason") ==
             "\"credit rejected: account does not exist; refund rejected: account is closed\"");
  BOOST_TEST(IntField(fresh("account-a"), "balance") == 70);
}

// FailedSagas reports exactly the sagas that ended in failure, each with its
// reason, in the order asked; completed sagas and non-saga streams are not
// reported.
BOOST_AUTO_TEST_CASE(failed_sagas_are_reported_with_their_reasons) {
  TempDir dir;
  SetUpBank(dir.path());
  auto store = OpenStore(dir.path());
  auto registry = SampleDomains();
  auto rt = StartRuntime(store.get(), &registry);
  BOOST_REQUIRE(RunProcessManagers(*store, *rt, registry).ok());
  std::vector<ProcessManager::Outcome> failed = FailedSagas(
      *rt, registry, {"transfer-5", "transfer-4", "account-a", "transfer-1", "transfer-2", "transfer-3", "transfer-77"});
  BOOST_REQUIRE_EQUAL(failed.size(), 3u);
  BOOST_TEST(failed[0].stream == "transfer-4");
  BOOST_TEST(failed[0].status == "failed");
  BOOST_TEST(failed[0].reason.rfind("debit rejected: ", 0) == 0u, failed[0].reason);
  BOOST_TEST(failed[1].stream == "transfer-2");  // credit to a closed account: refunded
  BOOST_TEST(failed[1].reason.find("credit rejected: ") == 0u, failed[1].reason);
  BOOST_TEST(failed[1].reason.find("; refunded to account-a") != std::string::npos, failed[1].reason);
  BOOST_TEST(failed[2].stream == "transfer-3");
  BOOST_TEST(failed[2].reason.find("refunded to account-a") != std::string::npos, failed[2].reason);

  // The default reading of a state, for managers that do not override it.
  struct Plain final : ProcessManager {
    std::string name() const override { return "plain"; }
    std::vector<std::string> categories() const override { return {"order"}; }
    Status Handle(const Event&, ProcessContext&) override { return Status::OK(); }
  } plain;
  auto ended = [&](const char* state) { return plain.Ended(StateView{"order-1", "order", 3, state}); };
  BOOST_TEST(!ended(R"({"status":"completed"})").has_value());
  BOOST_TEST(!ended(R"({"balance":3})").has_value());
  BOOST_TEST(!ended("not json").has_value());
  BOOST_TEST(ended(R"({"status":"failed","reason":"no stock"})")->reason == "no stock");
  BOOST_TEST(ended(R"({"status":"failed"})")->reason.empty());
}

BOOST_AUTO_TEST_SUITE_END()
