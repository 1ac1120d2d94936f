// rel_replay_race — replays, drops and a follower of one read model at once.
//
// PROMISE: two `rill project replay balances` started together never swap an
// unfinished or empty model in: one replays, the other is refused with one
// line (exit 1, "being replaced") or, started after the first finished,
// replays too; readers querying all the while always get the complete model
// (exit 0, every row equal to the log's balances); a `project run --follow`
// beside them never dies; a `project drop` during a replay is refused.
//
// How: pairs of replays spawned back to back, a reader process looping
// queries, a follower, and a drop now and then, on a store of money events;
// after each pair the model equals the oracle computed from the log.
//
// It can fail: a model with one row changed must differ from the oracle
// (self-test).
#include <algorithm>

#include "reliability/reliability.h"

namespace rel = rill::reliability;

int main(int argc, char** argv) {
  rel::Run run("replay_race", argc, argv);
  const int pairs = run.Budget(12, 60);
  const int accounts = run.Budget(1000, 5000);
  const uint64_t events = run.Budget<uint64_t>(40000, 200000);
  const std::string db = run.Path("db");
  auto oracle = [&] { return rel::BalancesOracle(run, db); };

  if (!run.Expect(run.RillDb(db, {"init"}).code == 0, "init failed")) return run.Finish();
  {
    std::string text;
    text += rel::AccountOpenings(accounts);
    for (uint64_t i = 0; i < events; ++i)
      text += R"({"stream":"account-)" + std::to_string(run.Random(0, accounts - 1)) +
              R"(","type":"Deposited","data":{"amount":)" + std::to_string(run.Random(1, 500)) + "}}\n";
    rel::WriteFile(run.Path("initial.jsonl"), text);
    rel::Output o = run.RillDb(db, {"append", "--quiet", "--file", run.Path("initial.jsonl")});
    if (!run.Expect(o.code == 0, "initial append failed: " + o.FirstErrLine())) return run.Finish();
  }
  rel::Output first = run.RillDb(db, {"project", "replay", "balances"});
  if (!run.Expect(first.code == 0, "first replay failed: " + first.FirstErrLine())) return run.Finish();
  const std::vector<std::string> truth = oracle();

  // A reader: queries in a loop until told to stop (a file appears); each
  // answer's row count and exit code go to its output, one line per query.
  const std::string stop = run.Path("stop-reader");
  const std::string reader_script =
      "while [ ! -e '" + stop + "' ]; do n=$('" + rel::Binary() + "' --db '" + db +
      "' query balances 'SELECT count(*) AS n FROM balances' --json 2>&1); echo \"$? $n\"; done";
  pid_t reader = rel::SpawnProgram("/bin/sh", {"-c", reader_script}, run.Path("reader.out"), run.Path("reader.err"));
  pid_t follower = rel::SpawnRill({"--db", db, "project", "run", "balances", "--follow"}, run.Path("follow.out"),
                                  run.Path("follow.err"));

  int refused = 0, both = 0, drops_refused = 0;
  for (int p = 0; p < pairs && run.ok(); ++p) {
    pid_t a = rel::SpawnRill({"--db", db, "project", "replay", "balances"}, run.Path("a.out"), run.Path("a.err"));
    pid_t b = rel::SpawnRill({"--db", db, "project", "replay", "balances"}, run.Path("b.out"), run.Path("b.err"));
    if (p % 3 == 0) {
      rel::SleepMs(run.Random(5, 60));
      rel::Output d = run.RillDb(db, {"project", "drop", "balances"});
      // Refused while a replay runs; if both had already finished, the drop
      // deletes the model and the next pair rebuilds it.
      if (d.code == 1 && d.err.find("being replaced") != std::string::npos) ++drops_refused;
      else run.Expect(d.code == 0, "drop: exit " + std::to_string(d.code) + ": " + d.FirstErrLine());
    }
    int ca = rel::Wait(a), cb = rel::Wait(b);
    for (auto [code, err] : {std::pair{ca, run.Path("a.err")}, std::pair{cb, run.Path("b.err")}}) {
      std::string e = rel::ReadFile(err);
      run.Expect(code == 0 || (code == 1 && e.find("being replaced") != std::string::npos &&
                               std::count(e.begin(), e.end(), '\n') == 1),
                 "replay: exit " + std::to_string(code) + ": " + e.substr(0, 300));
    }
    if (ca == 0 && cb == 0) ++both;
    else ++refused;
    // The model now: complete, equal to the log (a drop may have left none:
    // then rebuild it, which must also succeed).
    rel::Output q = run.RillDb(db, {"--json", "query", "balances", rel::kBalancesQuery});
    if (q.code != 0) {
      rel::Output again = run.RillDb(db, {"project", "replay", "balances"});
      run.Expect(again.code == 0, "replay after a drop failed: " + again.FirstErrLine());
      q = run.RillDb(db, {"--json", "query", "balances", rel::kBalancesQuery});
    }
    std::string diff = rel::FirstDifference(rel::QueryRows(q.out), truth);
    run.Expect(diff.empty(), "after pair " + std::to_string(p) + " the model differs from the log: " + diff);
  }

  rel::WriteFile(stop, "");
  rel::Wait(reader);
  int code = 0;
  run.Expect(!rel::Exited(follower, &code),
             "the follower died: exit " + std::to_string(code) + ": " + rel::ReadFile(run.Path("follow.err")).substr(0, 300));
  rel::KillAndWait(follower, SIGTERM);

  // Every reader answer: exit 0 and every account (a drop may have removed
  // the model for a moment: "no read model" answers are counted apart).
  uint64_t answers = 0, complete = 0, missing = 0, wrong = 0;
  std::string first_wrong;
  for (const std::string& line : rel::WholeLines(rel::ReadFile(run.Path("reader.out")))) {
    ++answers;
    if (line == "0 {\"n\":" + std::to_string(accounts) + "}") ++complete;
    else if (line.find("no read model") != std::string::npos || line.find("not built") != std::string::npos) ++missing;
    else if (first_wrong.empty()) first_wrong = line, ++wrong;
    else ++wrong;
  }
  run.Expect(wrong == 0, std::to_string(wrong) + " reader answers were incomplete or failed, first: " + first_wrong);
  run.Expect(answers > 0, "the reader answered nothing");
  run.CheckClean(db, "after the races");

  // Self-test.
  if (!truth.empty()) {
    std::vector<std::string> off = truth;
    off[off.size() / 2] += "0";
    run.Expect(!rel::FirstDifference(off, truth).empty(), "self-test: the comparison missed a changed row");
  }
  rel::Log("%d pairs (%d with one refused, %d both replayed), %d drops refused; reader: %llu answers, %llu complete, "
           "%llu while dropped",
           pairs, refused, both, drops_refused, static_cast<unsigned long long>(answers),
           static_cast<unsigned long long>(complete), static_cast<unsigned long long>(missing));
  run.Figure("pairs", static_cast<uint64_t>(pairs));
  run.Figure("refused", static_cast<uint64_t>(refused));
  run.Figure("drops_refused", static_cast<uint64_t>(drops_refused));
  run.Figure("answers", answers);
  run.Figure("bad_answers", wrong);
  return run.Finish();
}
