// rel_kill_append — kill -9 during group commit.
//
// PROMISE: a `rill append --file` or `rill submit --file` process SIGKILLed at
// any moment loses nothing it acknowledged and leaves nothing half-written:
// after every kill `rill check` is clean (exit 0), every acknowledged event is
// stored exactly once at the position and version its acknowledgement gave,
// positions and per-stream versions are gapless, and every stored event is
// byte-for-byte one that was sent (no torn or foreign record). A retried
// request (same id) after the kill is answered from the store, never written
// twice.
//
// How: each round starts several producers at once on one store — raw
// appenders (`append --json --file`, pipelined: thousands of requests in one
// group commit) sharing a set of streams across processes, and one command
// submitter (`submit --json --no-wait --file`, Deposits through the actor
// core) — and SIGKILLs each at its own random moment. A producer's stdout
// goes to a file, so every acknowledgement it printed survives it. The next
// round first resends each producer's unacknowledged lines with the same ids
// (what a client retrying after a crash does), then new ones.
//
// It can fail: the checker is run at the end on the real export with one
// acknowledged event removed and must report it lost (self-test).
#include <map>
#include <set>

#include "reliability/reliability.h"

namespace rel = rill::reliability;
using rel::Ack;
using rel::Ledger;
using rel::Verdict;
using rel::Verify;

namespace {

struct Sent {
  std::string line;  // the JSONL request
  std::string key;   // unique: data.k for appends, the command id for submits
};

struct Producer {
  bool submit = false;
  std::vector<Sent> pending;  // unacknowledged, resent next round
  uint64_t next = 0;
  pid_t pid = -1;
  std::string file, out, err;
  int64_t kill_at_ms = -1;
  bool killed = false;
};

std::vector<std::string> ProducerArgs(const std::string& db, const Producer& pr) {
  if (pr.submit) return {"--db", db, "--json", "submit", "--no-wait", "--file", pr.file};
  return {"--db", db, "--json", "append", "--file", pr.file};
}

struct Totals {
  uint64_t kills = 0, rounds = 0, checks = 0, acked = 0, events = 0, lost = 0, dup = 0, gaps = 0, torn = 0,
           retried_dups = 0, stores = 0;
};

// One store, `rounds` rounds of killed producers, then the final resend and
// the checker's self-test.
void Epoch(rel::Run& run, const std::string& db, int rounds, Totals* t) {
  const int appenders = 4;
  const uint64_t lines_per_round = 20000;
  const uint64_t commands_per_round = 4000;
  const int accounts = 40;

  if (!run.Expect(run.RillDb(db, {"init"}).code == 0, "rill init failed")) return;
  {
    std::string opens;
    for (int a = 0; a < accounts; ++a)
      opens += R"({"command":"OpenAccount","to":"account-)" + std::to_string(a) + R"(","data":{"owner":"o)" +
               std::to_string(a) + R"("},"id":"open-)" + std::to_string(a) + "\"}\n";
    rel::WriteFile(run.Path("opens.jsonl"), opens);
    rel::Output o = run.RillDb(db, {"submit", "--no-wait", "--file", run.Path("opens.jsonl")});
    if (!run.Expect(o.code == 0, "opening accounts failed: " + o.FirstErrLine())) return;
  }

  std::vector<Producer> producers(appenders + 1);
  producers.back().submit = true;
  Ledger ledger;
  std::string pad(96, 'x');
  uint64_t kills = 0, acked_lines = 0, duplicates_answered = 0, checks = 0;
  (void)acked_lines;
  Verdict last;
  std::vector<rel::Event> events;

  for (int round = 1; round <= rounds && run.ok(); ++round) {
    for (size_t p = 0; p < producers.size(); ++p) {
      Producer& pr = producers[p];
      // Top up to a round's worth: what is still unacknowledged goes first.
      uint64_t target = pr.submit ? commands_per_round : lines_per_round;
      uint64_t fresh = pr.pending.size() < target ? target - pr.pending.size() : 0;
      for (uint64_t i = 0; i < fresh; ++i, ++pr.next) {
        Sent s;
        if (pr.submit) {
          s.key = "dep-" + std::to_string(pr.next);
          s.line = R"({"command":"Deposit","to":"account-)" + std::to_string(pr.next % accounts) +
                   R"(","data":{"amount":)" + std::to_string(1 + pr.next % 7) + R"(},"id":")" + s.key + "\"}";
          ledger.submitted.insert(s.key);
        } else {
          s.key = "a" + std::to_string(p) + "-" + std::to_string(pr.next);
          std::string data = R"({"k":")" + s.key + R"(","pad":")" + pad.substr(0, pr.next % 97) + "\"}";
          s.line = R"({"stream":"load-)" + std::to_string((pr.next * 7 + p) % 24) + R"(","type":"Loaded","id":")" +
                   s.key + R"(","data":)" + data + "}";
          ledger.data_of[s.key] = data;
        }
        pr.pending.push_back(std::move(s));
      }
      std::string text;
      for (const Sent& s : pr.pending) text += s.line + "\n";
      pr.file = run.Path("p" + std::to_string(p) + ".jsonl");
      pr.out = run.Path("p" + std::to_string(p) + ".out");
      pr.err = run.Path("p" + std::to_string(p) + ".err");
      rel::WriteFile(pr.file, text);
      pr.kill_at_ms = -1;  // set once it acknowledges
      pr.killed = false;
    }
    for (Producer& pr : producers) std::filesystem::remove(pr.out);
    auto start = std::chrono::steady_clock::now();
    for (Producer& pr : producers)
      pr.pid = rel::SpawnRill(ProducerArgs(db, pr), pr.out, pr.err);
    // Kill each at its moment (or let it finish first).
    size_t running = producers.size();
    std::vector<bool> done(producers.size(), false);
    while (running > 0) {
      int64_t now_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
      for (size_t p = 0; p < producers.size(); ++p) {
        if (done[p]) continue;
        Producer& pr = producers[p];
        int code = 0;
        if (rel::Exited(pr.pid, &code)) {
          done[p] = true;
          --running;
          if (code != 0) run.Fail("producer " + std::to_string(p) + " exited " + std::to_string(code) + ": " +
                                  rel::ReadFile(pr.err).substr(0, 300));
        } else if (pr.kill_at_ms < 0 && std::filesystem::exists(pr.out) && std::filesystem::file_size(pr.out) > 0) {
          // Acknowledging: the writer is committing batches now. Kill within
          // the next moments (a process start is slow on a busy machine, so
          // a clock from the spawn would mostly hit processes still opening).
          pr.kill_at_ms = now_ms + run.Random(0, 250);
        } else if ((pr.kill_at_ms >= 0 && now_ms >= pr.kill_at_ms) || now_ms > 60000) {
          int code2 = rel::KillAndWait(pr.pid);
          done[p] = true;
          --running;
          pr.killed = code2 == 128 + SIGKILL;
          kills += pr.killed;
        }
      }
      rel::SleepMs(2);
    }
    // Read acknowledgements: line i of the output answers line i of the file.
    uint64_t round_acks = 0;
    for (size_t p = 0; p < producers.size(); ++p) {
      Producer& pr = producers[p];
      auto acks = rel::WholeLines(rel::ReadFile(pr.out));
      if (acks.size() > pr.pending.size()) run.Fail("more acknowledgements than lines from producer " + std::to_string(p));
      size_t n = std::min(acks.size(), pr.pending.size());
      for (size_t i = 0; i < n; ++i) {
        rapidjson::Document d;
        if (!rel::ParseObject(acks[i], &d) || d.HasMember("error")) {
          run.Fail("producer " + std::to_string(p) + " result line " + std::to_string(i + 1) + ": " + acks[i]);
          continue;
        }
        Ack a{rel::JsonString(d, "stream"), static_cast<uint64_t>(rel::JsonInt(d, "version", 0)),
              static_cast<uint64_t>(rel::JsonInt(d, "position", 0))};
        const std::string& key = pr.pending[i].key;
        bool dup = d.HasMember("duplicate") && d["duplicate"].IsBool() && d["duplicate"].GetBool();
        duplicates_answered += dup;
        auto [it, inserted] = ledger.acked.emplace(key, a);
        if (!inserted && (it->second.position != a.position || it->second.version != a.version))
          run.Fail(key + " acknowledged twice with different outcomes");
        if (inserted && dup) {
          // First acknowledged now, as a duplicate: it was stored by a killed
          // run before it could say so. The store's answer is the truth.
        }
        ++round_acks;
      }
      pr.pending.erase(pr.pending.begin(), pr.pending.begin() + static_cast<std::ptrdiff_t>(n));
    }
    acked_lines += round_acks;

    ++checks;
    run.CheckClean(db, "after round " + std::to_string(round));
    rel::Output ex = run.RillDb(db, {"export", "--raw"});
    std::string error;
    if (!run.Expect(ex.code == 0, "export failed: " + ex.FirstErrLine()) ||
        !run.Expect(rel::ParseExport(ex.out, &events, &error), error))
      break;
    last = Verify(events, ledger);
    if (!last.ok()) run.Fail("round " + std::to_string(round) + ": " + last.first);
    rel::Log("round %d: %llu acknowledged this round, %zu events stored, %llu stored but unacknowledged, "
             "%llu killed so far",
             round, static_cast<unsigned long long>(round_acks), events.size(),
             static_cast<unsigned long long>(last.unacked_stored), static_cast<unsigned long long>(kills));
  }

  // Finally every producer resends what is still unacknowledged, uninterrupted:
  // retries after the last kill must be answered once, not written twice.
  for (size_t p = 0; p < producers.size() && run.ok(); ++p) {
    Producer& pr = producers[p];
    if (pr.pending.empty()) continue;
    std::string text;
    for (const Sent& s : pr.pending) text += s.line + "\n";
    rel::WriteFile(pr.file, text);
    rel::Output o = run.Rill(ProducerArgs(db, pr));
    auto acks = rel::WholeLines(o.out);
    if (!run.Expect(o.code == 0 && acks.size() == pr.pending.size(), "final resend failed: " + o.FirstErrLine()))
      break;
    for (size_t i = 0; i < acks.size(); ++i) {
      rapidjson::Document d;
      rel::ParseObject(acks[i], &d);
      ledger.acked.emplace(pr.pending[i].key,
                           Ack{rel::JsonString(d, "stream"), static_cast<uint64_t>(rel::JsonInt(d, "version", 0)),
                               static_cast<uint64_t>(rel::JsonInt(d, "position", 0))});
    }
    pr.pending.clear();
  }
  if (run.ok()) {
    run.CheckClean(db, "after the final resend");
    rel::Output ex = run.RillDb(db, {"export", "--raw"});
    std::string error;
    if (run.Expect(ex.code == 0 && rel::ParseExport(ex.out, &events, &error), "final export: " + error)) {
      last = Verify(events, ledger);
      if (!last.ok()) run.Fail("after the final resend: " + last.first);
      // Everything sent is now acknowledged, so everything stored is too.
      run.Expect(last.unacked_stored == 0, "events stored that were never acknowledged after the final resend");
      run.Expect(ledger.acked.size() == ledger.data_of.size() + ledger.submitted.size(),
                 "not every request was acknowledged after the final resend");
    }
  }

  // Self-test: drop one acknowledged event from the export; the checker
  // must see it lost and the hole in positions.
  if (run.ok() && events.size() > 100) {
    std::vector<rel::Event> damaged = events;
    damaged.erase(damaged.begin() + static_cast<std::ptrdiff_t>(run.Random(50, static_cast<int64_t>(damaged.size()) - 2)));
    Verdict v = Verify(damaged, ledger);
    run.Expect(v.lost == 1 && v.gaps > 0, "self-test: the checker missed a dropped event");
    rel::Log("self-test: a dropped event is reported (%s)", v.first.c_str());
  }

  t->kills += kills;
  t->rounds += static_cast<uint64_t>(rounds);
  t->checks += checks;
  t->acked += ledger.acked.size();
  t->events += events.size();
  t->lost += last.lost + last.misplaced;
  t->dup += last.dup;
  t->gaps += last.gaps;
  t->torn += last.foreign;
  t->retried_dups += duplicates_answered;
}

}  // namespace

int main(int argc, char** argv) {
  rel::Run run("kill_append", argc, argv);
  // The short budget is one store of 10 rounds; the long one repeats such
  // stores until 500 producers were killed.
  const int rounds = 10;
  const uint64_t wanted_kills = run.Budget<uint64_t>(0, 500);
  Totals t;
  t.stores = rel::RepeatStores(
      run, wanted_kills, 60, [&](const std::string& db) { Epoch(run, db, rounds, &t); }, [&] { return t.kills; });
  run.Figure("kills", t.kills);
  run.Figure("stores", t.stores);
  run.Figure("rounds", t.rounds);
  run.Figure("checks", t.checks);
  run.Figure("acked", t.acked);
  run.Figure("events", t.events);
  run.Figure("lost", t.lost);
  run.Figure("dup", t.dup);
  run.Figure("gaps", t.gaps);
  run.Figure("torn", t.torn);
  run.Figure("retried_dups", t.retried_dups);
  if (run.ok() && t.kills < t.rounds)
    run.Fail("only " + std::to_string(t.kills) + " producers were killed mid-run in " + std::to_string(t.rounds) +
             " rounds (the load finished too fast)");
  if (run.ok() && t.kills < wanted_kills)
    run.Fail("only " + std::to_string(t.kills) + " kills in " + std::to_string(t.stores) + " stores");
  return run.Finish();
}
