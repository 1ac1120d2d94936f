// rel_kill_saga — kill -9 of `rill run` (process managers) and of submitters
// during transfer sagas under load.
//
// PROMISE: however the saga runner and the command submitters are killed,
// after a restart and catch-up (`rill run`) money is conserved — the sum of
// all balances plus the money held by unfinished transfers equals what was
// deposited — and no transfer is stuck: every transfer stream ends
// `completed` or `failed`, visibly, on its own stream. Every acknowledged
// StartTransfer has its transfer stream. The balances read model agrees with
// the log. `rill check` is clean after every kill.
//
// How: accounts are opened and funded once; then each round starts `rill run
// --follow` and two submitters of StartTransfer commands (one waits for the
// sagas itself, one uses --no-wait), with random amounts so that some debits
// are rejected; each is SIGKILLed at its own random moment.
//
// It can fail: the self-test changes one deposit in the log copy and expects
// the conservation check to see it.
#include <optional>

#include "reliability/reliability.h"

namespace rel = rill::reliability;

namespace {

struct Books {
  int64_t balances = 0, held = 0;
  uint64_t transfers = 0, completed = 0, failed = 0, stuck = 0;
  std::string first_stuck;
  std::set<std::string> transfer_streams;
};

Books Audit(const std::vector<rel::Event>& events) {
  Books b;
  std::map<std::string, std::pair<std::string, int64_t>> transfers;  // stream -> (status, amount)
  for (const rel::Event& e : events) {
    rapidjson::Document d;
    if (!rel::ParseObject(e.data, &d)) continue;
    if (e.stream.rfind("account-", 0) == 0) {
      if (e.type == "Deposited") b.balances += rel::JsonInt(d, "amount", 0);
      if (e.type == "Withdrawn") b.balances -= rel::JsonInt(d, "amount", 0);
    } else if (e.stream.rfind("transfer-", 0) == 0) {
      auto& t = transfers[e.stream];
      if (e.type == "TransferStarted") t = {"started", rel::JsonInt(d, "amount", 0)};
      else if (e.type == "TransferDebited") t.first = "debited";
      else if (e.type == "TransferCreditFailed") t.first = "credit_failed";
      else if (e.type == "TransferCompleted") t.first = "completed";
      else if (e.type == "TransferFailed") {
        // Failed after a refund, or before any debit: nothing is held. (A
        // refund rejected — only for a closed account, never here — would
        // keep the money in the transfer.)
        t.first = d.HasMember("refunded") && d["refunded"].IsBool() && !d["refunded"].GetBool() &&
                          transfers[e.stream].first == "credit_failed"
                      ? "failed_held"
                      : "failed";
      }
    }
  }
  for (const auto& [stream, t] : transfers) {
    ++b.transfers;
    b.transfer_streams.insert(stream);
    if (t.first == "debited" || t.first == "credit_failed" || t.first == "failed_held") b.held += t.second;
    if (t.first == "completed") ++b.completed;
    else if (t.first == "failed") ++b.failed;
    else {
      ++b.stuck;
      if (b.first_stuck.empty()) b.first_stuck = stream + " is " + t.first;
    }
  }
  return b;
}

struct Totals {
  uint64_t kills = 0, run_kills = 0, transfers = 0, acked = 0, completed = 0, failed = 0, stuck = 0, catchup_runs = 0,
           stores = 0;
  int64_t imbalance = 0;
};

// One store: accounts opened and funded, `rounds` rounds of killed runners
// and submitters, each followed by catch-up and the audit.
void Epoch(rel::Run& run, const std::string& db, int rounds, Totals* t) {
  const int accounts = 60;
  const int64_t funding = 1000;
  const uint64_t per_submitter = 800;

  if (!run.Expect(run.RillDb(db, {"init"}).code == 0, "init failed")) return;
  {
    std::string text;
    for (int a = 0; a < accounts; ++a) {
      std::string acc = std::to_string(a);
      text += R"({"command":"OpenAccount","to":"account-)" + acc + R"(","data":{"owner":"o)" + acc + R"("}})" + "\n";
      text += R"({"command":"Deposit","to":"account-)" + acc + R"(","data":{"amount":)" + std::to_string(funding) +
              "}}\n";
    }
    rel::WriteFile(run.Path("setup.jsonl"), text);
    rel::Output o = run.RillDb(db, {"submit", "--no-wait", "--file", run.Path("setup.jsonl")});
    if (!run.Expect(o.code == 0, "setup failed: " + o.FirstErrLine())) return;
  }
  const int64_t deposited = accounts * funding;

  uint64_t next_transfer = 0, kills = 0, run_kills = 0, catchup_runs = 0, acked = 0;
  std::set<std::string> acked_streams;
  Books books;
  std::vector<rel::Event> events;
  for (int round = 1; round <= rounds && run.ok(); ++round) {
    struct Child {
      pid_t pid;
      int64_t kill_at;
      std::string out, err;
      std::vector<std::string> streams;
      bool runner;
    };
    std::vector<Child> children;
    children.push_back({rel::SpawnRill({"--db", db, "run", "--follow"}, run.Path("run.out"), run.Path("run.err")),
                        run.Random(100, 1500), run.Path("run.out"), run.Path("run.err"), {}, true});
    for (int s = 0; s < 2; ++s) {
      std::string text;
      Child c{-1, run.Random(0, 1200), run.Path("sub" + std::to_string(s) + ".out"),
              run.Path("sub" + std::to_string(s) + ".err"), {}, false};
      for (uint64_t i = 0; i < per_submitter; ++i, ++next_transfer) {
        int64_t from = run.Random(0, accounts - 1), to = (from + run.Random(1, accounts - 1)) % accounts;
        std::string stream = "transfer-" + std::to_string(next_transfer);
        text += R"({"command":"StartTransfer","to":")" + stream + R"(","data":{"from":"account-)" +
                std::to_string(from) + R"(","to":"account-)" + std::to_string(to) + R"(","amount":)" +
                std::to_string(run.Random(1, 150)) + R"(},"id":"start-)" + std::to_string(next_transfer) + "\"}\n";
        c.streams.push_back(stream);
      }
      std::string file = run.Path("sub" + std::to_string(s) + ".jsonl");
      rel::WriteFile(file, text);
      std::vector<std::string> args = {"--db", db, "--json", "submit", "--file", file};
      if (s == 1) args.push_back("--no-wait");
      std::filesystem::remove(c.out);
      c.pid = rel::SpawnRill(args, c.out, c.err);
      children.push_back(std::move(c));
    }
    // The kill clock starts when the first StartTransfer is acknowledged
    // (process start-up is slow on a busy machine): then sagas are running.
    auto spawned = std::chrono::steady_clock::now();
    std::optional<std::chrono::steady_clock::time_point> start;
    std::vector<bool> done(children.size(), false);
    int restarts = 0;
    for (size_t left = children.size(); left > 0;) {
      auto wall = std::chrono::steady_clock::now();
      if (!start) {
        for (const Child& c : children)
          if (!c.runner && std::filesystem::exists(c.out) && std::filesystem::file_size(c.out) > 0) start = wall;
        if (wall - spawned > std::chrono::seconds(60)) start = wall;
      }
      int64_t now = start ? std::chrono::duration_cast<std::chrono::milliseconds>(wall - *start).count() : -1;
      for (size_t i = 0; i < children.size(); ++i) {
        if (done[i]) continue;
        int code = 0;
        if (rel::Exited(children[i].pid, &code)) {
          done[i] = true;
          --left;
          // A submitter may end 4 (a rejected line) only if a rule broke; none can here.
          run.Expect(code == 0, "child exited " + std::to_string(code) + ": " +
                                    rel::ReadFile(children[i].err).substr(0, 300));
        } else if (start && now >= children[i].kill_at) {
          int code2 = rel::KillAndWait(children[i].pid);
          done[i] = true;
          --left;
          if (code2 == 128 + SIGKILL) {
            ++kills;
            run_kills += children[i].runner;
          }
          // While submitters still run, a killed runner is restarted (as a
          // supervisor would) and killed again: it dies mid-saga more often.
          bool submitting = false;
          for (size_t j = 0; j < children.size(); ++j) submitting = submitting || (!done[j] && !children[j].runner);
          if (children[i].runner && submitting && restarts++ < 4) {
            children[i].pid = rel::SpawnRill({"--db", db, "run", "--follow"}, children[i].out, children[i].err);
            children[i].kill_at = now + run.Random(100, 800);
            done[i] = false;
            ++left;
          }
        }
      }
      rel::SleepMs(5);
    }
    for (const Child& c : children) {
      if (c.runner) continue;
      auto lines = rel::WholeLines(rel::ReadFile(c.out));
      for (size_t i = 0; i < lines.size() && i < c.streams.size(); ++i) {
        if (lines[i].find("\"error\"") != std::string::npos) {
          run.Fail("StartTransfer failed: " + lines[i]);
          continue;
        }
        acked_streams.insert(c.streams[i]);
        ++acked;
      }
    }
    run.CheckClean(db, "after round " + std::to_string(round) + "'s kills");

    // Restart and catch up until nothing is left to do.
    for (int attempt = 0; attempt < 5; ++attempt) {
      rel::Output r = run.RillDb(db, {"run"});
      ++catchup_runs;
      if (!run.Expect(r.code == 0, "catch-up run failed: " + r.FirstErrLine())) break;
      rel::Output ex = run.RillDb(db, {"export"});
      std::string error;
      if (!run.Expect(ex.code == 0 && rel::ParseExport(ex.out, &events, &error), "export failed: " + error)) break;
      books = Audit(events);
      if (books.stuck == 0) break;
      rel::Log("round %d: %llu transfers not finished after catch-up run %d (%s)", round,
               static_cast<unsigned long long>(books.stuck), attempt + 1, books.first_stuck.c_str());
    }
    run.Expect(books.stuck == 0, "transfer stuck after catch-up: " + books.first_stuck);
    run.Expect(books.balances + books.held == deposited,
               "money not conserved: balances " + std::to_string(books.balances) + " + held " +
                   std::to_string(books.held) + " != deposited " + std::to_string(deposited));
    for (const std::string& s : acked_streams)
      if (!books.transfer_streams.count(s)) {
        run.Fail("acknowledged " + s + " has no transfer stream");
        break;
      }
    std::string gap = rel::CheckGapless(events);
    run.Expect(gap.empty(), "log: " + gap);
    // The read model, caught up by the same run, agrees with the log.
    rel::Output q = run.RillDb(db, {"--json", "query", "balances", rel::kBalancesQuery});
    std::string diff = rel::FirstDifference(rel::QueryRows(q.out), rel::BalancesFromLog(events));
    run.Expect(q.code == 0 && diff.empty(), "balances model differs from the log: " + diff);
    rel::Log("round %d: %llu transfers (%llu completed, %llu failed), balances %lld + held %lld = %lld", round,
             static_cast<unsigned long long>(books.transfers), static_cast<unsigned long long>(books.completed),
             static_cast<unsigned long long>(books.failed), static_cast<long long>(books.balances),
             static_cast<long long>(books.held), static_cast<long long>(deposited));
  }

  // Self-test: one deposit changed must break conservation.
  if (!events.empty()) {
    std::vector<rel::Event> forged = events;
    for (rel::Event& e : forged)
      if (e.type == "Deposited") {
        e.data = R"({"amount":1})";
        break;
      }
    Books f = Audit(forged);
    run.Expect(f.balances + f.held != deposited, "self-test: the audit missed a changed deposit");
  }

  t->kills += kills;
  t->run_kills += run_kills;
  t->transfers += books.transfers;
  t->acked += acked;
  t->completed += books.completed;
  t->failed += books.failed;
  t->stuck += books.stuck;
  t->imbalance += books.balances + books.held - deposited;
  t->catchup_runs += catchup_runs;
}

}  // namespace

int main(int argc, char** argv) {
  rel::Run run("kill_saga", argc, argv);
  // The short budget is one store of 6 rounds; the long one repeats such
  // stores until 500 processes were killed.
  const uint64_t wanted_kills = run.Budget<uint64_t>(0, 500);
  Totals t;
  t.stores = rel::RepeatStores(
      run, wanted_kills, 100, [&](const std::string& db) { Epoch(run, db, 6, &t); }, [&] { return t.kills; });
  run.Figure("kills", t.kills);
  run.Figure("runner_kills", t.run_kills);
  run.Figure("stores", t.stores);
  run.Figure("transfers", t.transfers);
  run.Figure("acked", t.acked);
  run.Figure("completed", t.completed);
  run.Figure("failed", t.failed);
  run.Figure("stuck", t.stuck);
  run.Figure("imbalance", t.imbalance);
  run.Figure("catchup_runs", t.catchup_runs);
  if (run.ok() && t.kills < wanted_kills)
    run.Fail("only " + std::to_string(t.kills) + " kills in " + std::to_string(t.stores) + " stores");
  return run.Finish();
}
