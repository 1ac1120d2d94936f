// rel_kill_projection — kill -9 during projection replay and follow.
//
// PROMISE: a projection killed at any moment resumes after its last commit
// and never applies an event twice or skips one: after resuming, the
// `balances` read model equals a clean rebuild row for row, and both equal
// the balances computed from the log itself (an oracle outside SQLite).
// While a replay is killed, readers keep seeing the complete old model
// (the new one is built aside and swapped in whole).
//
// How: (1) `rill project replay balances` is SIGKILLed at random moments
// within its measured duration; after each kill the model still reads the
// full old rows, then a rerun finishes and equals the reference. (2) `rill
// project run balances --follow` is SIGKILLed and restarted again and again
// while `rill append --file` processes keep adding deposits and withdrawals;
// at the end a catch-up run, a clean replay and the oracle must all agree.
//
// It can fail: the oracle is compared with a model one event off (self-test).
#include "reliability/reliability.h"

namespace rel = rill::reliability;

namespace {

// Deposits and withdrawals over `accounts` accounts, `count` lines.
std::string MoneyLines(rel::Run& run, int accounts, uint64_t count) {
  std::string text;
  for (uint64_t i = 0; i < count; ++i) {
    bool deposit = run.Random(0, 3) != 0;
    text += R"({"stream":"account-)" + std::to_string(run.Random(0, accounts - 1)) + R"(","type":")" +
            (deposit ? "Deposited" : "Withdrawn") + R"(","data":{"amount":)" + std::to_string(run.Random(1, 500)) +
            "}}\n";
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  rel::Run run("kill_projection", argc, argv);
  // The long budget kills 500 times at the short budget's sizes: more kills,
  // not a bigger log, is what finds a torn model.
  const int replay_kills = run.Budget(5, 250), follow_kills = run.Budget(6, 250);
  const int accounts = 2000;
  const uint64_t initial = 60000;
  const uint64_t chunk = 3000;
  const std::string db = run.Path("db");
  auto query = [&] {
    rel::Output q = run.RillDb(db, {"--json", "query", "balances", rel::kBalancesQuery});
    if (q.code != 0) run.Fail("query failed: " + q.FirstErrLine());
    return rel::QueryRows(q.out);
  };
  auto oracle = [&] { return rel::BalancesOracle(run, db); };

  if (!run.Expect(run.RillDb(db, {"init"}).code == 0, "init failed")) return run.Finish();
  {
    std::string text;
    text += rel::AccountOpenings(accounts);
    text += MoneyLines(run, accounts, initial);
    rel::WriteFile(run.Path("initial.jsonl"), text);
    rel::Output o = run.RillDb(db, {"append", "--quiet", "--file", run.Path("initial.jsonl")});
    if (!run.Expect(o.code == 0, "initial append failed: " + o.FirstErrLine())) return run.Finish();
  }

  // (1) Replay. A clean replay first: the reference and its duration.
  auto t0 = std::chrono::steady_clock::now();
  rel::Output r = run.RillDb(db, {"project", "replay", "balances"});
  double replay_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!run.Expect(r.code == 0, "clean replay failed: " + r.FirstErrLine())) return run.Finish();
  std::vector<std::string> reference = query();
  std::string diff = rel::FirstDifference(reference, oracle());
  run.Expect(diff.empty(), "clean replay differs from the log: " + diff);
  rel::Log("clean replay of %llu events: %.0f ms, %zu rows", static_cast<unsigned long long>(initial + accounts),
           replay_ms, reference.size());

  int kills = 0;
  uint64_t comparisons = 0;
  // A replay that finished before its moment was not killed: try again,
  // so the budget counts kills, not attempts.
  for (int k = 0; kills < replay_kills && k < 3 * replay_kills && run.ok(); ++k) {
    pid_t pid = rel::SpawnRill({"--db", db, "project", "replay", "balances"}, run.Path("replay.out"),
                               run.Path("replay.err"));
    rel::SleepMs(run.Random(static_cast<int64_t>(replay_ms * 0.05), static_cast<int64_t>(replay_ms * 0.95)));
    int code = rel::KillAndWait(pid);
    if (code == 128 + SIGKILL) ++kills;
    std::string during = rel::FirstDifference(query(), reference);
    run.Expect(during.empty(), "after a killed replay readers saw another model: " + during);
    rel::Output again = run.RillDb(db, {"project", "replay", "balances"});
    run.Expect(again.code == 0, "replay after the kill failed: " + again.FirstErrLine());
    std::string after = rel::FirstDifference(query(), reference);
    run.Expect(after.empty(), "resumed replay differs from the clean one: " + after);
    comparisons += 2;
  }
  rel::Log("replay: %d kills, model intact after each", kills);

  // (2) Follow, killed and restarted, while appenders keep writing.
  int follow_killed = 0;
  uint64_t appended = 0;
  pid_t appender = -1;
  int chunk_no = 0;
  auto start_appender = [&] {
    std::string file = run.Path("chunk" + std::to_string(chunk_no++ % 2) + ".jsonl");
    rel::WriteFile(file, MoneyLines(run, accounts, chunk));
    appender = rel::SpawnRill({"--db", db, "append", "--quiet", "--file", file}, run.Path("app.out"),
                              run.Path("app.err"));
  };
  start_appender();
  for (int k = 0; k < follow_kills && run.ok(); ++k) {
    pid_t follower = rel::SpawnRill({"--db", db, "project", "run", "balances", "--follow"}, run.Path("follow.out"),
                                    run.Path("follow.err"), "", true);
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(run.Random(100, 1500));
    while (std::chrono::steady_clock::now() < until) {
      int code = 0;
      if (rel::Exited(appender, &code)) {
        if (!run.Expect(code == 0, "appender failed: " + rel::ReadFile(run.Path("app.err")).substr(0, 300))) break;
        appended += chunk;
        start_appender();
      }
      rel::SleepMs(5);
    }
    int code = 0;
    if (rel::Exited(follower, &code)) {
      run.Fail("the follower ended by itself with exit " + std::to_string(code) + ": " +
               rel::ReadFile(run.Path("follow.err")).substr(0, 300));
      break;
    }
    if (rel::KillAndWait(follower) == 128 + SIGKILL) ++follow_killed;
  }
  int code = rel::Wait(appender);
  run.Expect(code == 0, "last appender failed");
  appended += chunk;
  run.CheckClean(db, "after the follow kills");

  // Catch up (uninterrupted), then compare: resumed model = oracle = rebuild.
  rel::Output catchup = run.RillDb(db, {"project", "run", "balances"});
  run.Expect(catchup.code == 0, "catch-up run failed: " + catchup.FirstErrLine());
  std::vector<std::string> resumed = query(), truth = oracle();
  diff = rel::FirstDifference(resumed, truth);
  run.Expect(diff.empty(), "resumed follower's model differs from the log: " + diff);
  rel::Output rebuild = run.RillDb(db, {"project", "replay", "balances"});
  run.Expect(rebuild.code == 0, "rebuild failed: " + rebuild.FirstErrLine());
  std::vector<std::string> rebuilt = query();
  diff = rel::FirstDifference(resumed, rebuilt);
  run.Expect(diff.empty(), "resumed follower's model differs from a clean rebuild: " + diff);
  comparisons += 2;
  rel::Log("follow: %d kills while %llu events were appended; %zu rows equal a rebuild and the log", follow_killed,
           static_cast<unsigned long long>(appended), resumed.size());

  // Self-test: one event applied twice must show.
  if (!truth.empty()) {
    std::vector<std::string> off = truth;
    off[off.size() / 2] += "0";
    run.Expect(!rel::FirstDifference(off, rebuilt).empty(), "self-test: the comparison missed a changed row");
  }

  run.Figure("kills", static_cast<uint64_t>(kills + follow_killed));
  run.Figure("replay_kills", kills);
  run.Figure("follow_kills", follow_killed);
  run.Figure("events", static_cast<uint64_t>(initial + accounts + appended));
  run.Figure("rows", static_cast<uint64_t>(resumed.size()));
  run.Figure("compared", comparisons);
  run.Figure("mismatches", static_cast<uint64_t>(run.ok() ? 0 : 1));
  return run.Finish();
}
