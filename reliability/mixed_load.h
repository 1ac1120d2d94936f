// Mixed load on one store from several `rill` processes at once, shared by
// rel_concurrent and rel_soak: raw appenders and a command submitter run
// chunk after chunk (each chunk one `append/submit --json --file` process
// whose per-line results are recorded), while long-lived followers
// (`project run balances --follow`, `run --follow`, `log --follow`) run
// beside them. At the end the followers are stopped with SIGINT and
// everything is checked: every acknowledgement is in the log once, no gaps,
// `rill check` clean, the log follower saw exactly a gapless prefix of the
// log, and the balances model equals both the log and a clean rebuild.
#pragma once

#include "reliability/reliability.h"

namespace rill::reliability {

struct MixedLoadOptions {
  double seconds = 20;
  int appenders = 2;
  uint64_t append_chunk = 2000;   // lines per append process
  uint64_t submit_chunk = 500;    // commands per submit process
  int64_t pause_ms = 0;           // between one loader's chunks (throttles a long soak)
  bool run_follower = false;      // also `rill run --follow` (every projection and process manager)
  bool reads = false;             // also short readers: state, query, streams
  int64_t sample_ms = 1000;       // RSS sampling period of the followers
};

struct Sample {
  double t;
  std::vector<uint64_t> anon_kib;  // per follower
};

struct MixedLoadReport {
  uint64_t acked = 0, events = 0, chunks = 0, reads = 0, follower_lines = 0;
  Verdict verdict;
  std::vector<std::string> follower_names;
  std::vector<Sample> samples;
};

// Runs the load on `db` (created here); failures go to `run`.
inline MixedLoadReport RunMixedLoad(Run& run, const std::string& db, const MixedLoadOptions& o) {
  MixedLoadReport rep;
  const int accounts = 50;
  Ledger ledger;
  if (!run.Expect(run.RillDb(db, {"init"}).code == 0, "init failed")) return rep;
  {
    std::string text;
    for (int a = 0; a < accounts; ++a)
      text += R"({"command":"OpenAccount","to":"account-)" + std::to_string(a) + R"(","data":{"owner":"o)" +
              std::to_string(a) + R"("}})" + "\n";
    WriteFile(run.Path("opens.jsonl"), text);
    if (!run.Expect(run.RillDb(db, {"submit", "--no-wait", "--file", run.Path("opens.jsonl")}).code == 0,
                    "opening accounts failed"))
      return rep;
  }

  struct Follower {
    std::string name;
    pid_t pid;
    std::string out, err;
  };
  std::vector<Follower> followers;
  auto follow = [&](const std::string& name, std::vector<std::string> args) {
    args.insert(args.begin(), {"--db", db});
    Follower f{name, -1, run.Path(name + ".out"), run.Path(name + ".err")};
    f.pid = SpawnRill(args, f.out, f.err);
    followers.push_back(f);
    rep.follower_names.push_back(name);
  };
  follow("project_follow", {"project", "run", "balances", "--follow"});
  follow("log_follow", {"--json", "log", "--follow"});
  if (o.run_follower) follow("run_follow", {"run", "--follow"});

  struct Loader {
    bool submit;
    pid_t pid = -1;
    std::vector<std::string> keys;
    std::string file, out, err;
    uint64_t next = 0;
    std::chrono::steady_clock::time_point resume_at;
  };
  std::vector<Loader> loaders;
  for (int i = 0; i <= o.appenders; ++i) {
    Loader l;
    l.submit = i == o.appenders;
    std::string n = "loader" + std::to_string(i);
    l.file = run.Path(n + ".jsonl");
    l.out = run.Path(n + ".out");
    l.err = run.Path(n + ".err");
    loaders.push_back(l);
  }
  auto start_chunk = [&](size_t i) {
    Loader& l = loaders[i];
    l.keys.clear();
    std::string text;
    uint64_t n = l.submit ? o.submit_chunk : o.append_chunk;
    for (uint64_t k = 0; k < n; ++k, ++l.next) {
      std::string key = (l.submit ? "dep-" : "a" + std::to_string(i) + "-") + std::to_string(l.next);
      text += (l.submit ? DepositLine(&ledger, "account-" + std::to_string(l.next % accounts), key,
                                      static_cast<int64_t>(1 + l.next % 9))
                        : LoadedLine(&ledger, "load-" + std::to_string((l.next * 5 + i) % 16), key, l.next % 64)) +
              "\n";
      l.keys.push_back(key);
    }
    WriteFile(l.file, text);
    std::vector<std::string> args = {"--db", db, "--json", l.submit ? "submit" : "append", "--file", l.file};
    if (l.submit) args.push_back("--no-wait");
    l.pid = SpawnRill(args, l.out, l.err);
  };
  for (size_t i = 0; i < loaders.size(); ++i) start_chunk(i);

  auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  double next_sample = 0;
  pid_t reader = -1;
  int reader_kind = 0;
  while (run.ok()) {
    bool stopping = elapsed() >= o.seconds;
    bool busy = false;
    for (size_t i = 0; i < loaders.size(); ++i) {
      Loader& l = loaders[i];
      int code = 0;
      if (l.pid > 0 && Exited(l.pid, &code)) {
        l.pid = -1;
        std::string error;
        int64_t n = ReadAcks(l.out, l.keys, &ledger, &error);
        if (!run.Expect(code == 0 && n == static_cast<int64_t>(l.keys.size()),
                        "loader chunk exit " + std::to_string(code) + ": " + error + " " +
                            ReadFile(l.err).substr(0, 200)))
          break;
        ++rep.chunks;
        l.resume_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(o.pause_ms);
      }
      if (l.pid < 0 && !stopping && std::chrono::steady_clock::now() >= l.resume_at) start_chunk(i);
      busy |= l.pid > 0;
    }
    if (o.reads) {
      int code = 0;
      if (reader > 0 && Exited(reader, &code)) {
        run.Expect(code == 0, "a reader failed: " + ReadFile(run.Path("reader.err")).substr(0, 200));
        reader = -1;
        ++rep.reads;
      }
      if (reader < 0 && !stopping) {
        std::vector<std::string> args = {"--db", db};
        switch (reader_kind++ % 3) {
          case 0: args.insert(args.end(), {"state", "account-" + std::to_string(reader_kind % accounts)}); break;
          case 1: args.insert(args.end(), {"query", "balances", "SELECT count(*), sum(balance) FROM balances"}); break;
          default: args.insert(args.end(), {"streams", "--category", "account"}); break;
        }
        reader = SpawnRill(args, run.Path("reader.out"), run.Path("reader.err"));
      }
      busy |= reader > 0;
    }
    for (const Follower& f : followers) {
      int code = 0;
      if (Exited(f.pid, &code)) {
        run.Fail(f.name + " ended by itself, exit " + std::to_string(code) + ": " + ReadFile(f.err).substr(0, 300));
        break;
      }
    }
    if (elapsed() >= next_sample) {
      Sample s{elapsed(), {}};
      for (const Follower& f : followers) s.anon_kib.push_back(RssAnonKiB(f.pid));
      rep.samples.push_back(s);
      next_sample += o.sample_ms / 1000.0;
    }
    if (stopping && !busy) break;
    SleepMs(10);
  }
  for (Loader& l : loaders)
    if (l.pid > 0) KillAndWait(l.pid);
  if (reader > 0) KillAndWait(reader);

  // Let the followers catch up a little, then stop them as an operator would.
  SleepMs(1500);
  for (const Follower& f : followers) {
    int code = KillAndWait(f.pid, SIGINT);
    run.Expect(code == 0 || code == 130, f.name + " did not stop cleanly on SIGINT: exit " + std::to_string(code) +
                                             ": " + ReadFile(f.err).substr(0, 300));
  }

  run.CheckClean(db, "after the mixed load");
  Output raw = run.RillDb(db, {"export", "--raw"});
  std::vector<Event> events;
  std::string error;
  if (!run.Expect(raw.code == 0 && ParseExport(raw.out, &events, &error), "export failed: " + error)) return rep;
  rep.events = events.size();
  rep.acked = ledger.acked.size();
  rep.verdict = Verify(events, ledger);
  if (!rep.verdict.ok()) run.Fail("log against acknowledgements: " + rep.verdict.first);
  run.Expect(rep.verdict.unacked_stored == 0, "events stored that were never acknowledged (no loader was killed)");

  // The log follower printed a gapless prefix of the log, event for event.
  {
    std::vector<Event> seen;
    std::string ferr;
    if (run.Expect(ParseExport(ReadFile(run.Path("log_follow.out")), &seen, &ferr), "log --follow output: " + ferr)) {
      rep.follower_lines = seen.size();
      for (size_t i = 0; i < seen.size(); ++i) {
        if (i >= events.size() || seen[i].position != i + 1 || seen[i].id != events[i].id) {
          run.Fail("log --follow line " + std::to_string(i + 1) + " is not the log's event " + std::to_string(i + 1));
          break;
        }
      }
      run.Expect(seen.size() * 10 >= events.size() * 9 || seen.size() + 20000 >= events.size(),
                 "log --follow fell far behind: " + std::to_string(seen.size()) + " of " +
                     std::to_string(events.size()));
    }
  }

  // The model: caught up, equal to the log and to a clean rebuild.
  run.Expect(run.RillDb(db, {"project", "run", "balances"}).code == 0, "catch-up failed");
  Output q = run.RillDb(db, {"--json", "query", "balances", kBalancesQuery});
  std::vector<std::string> model = QueryRows(q.out);
  Output upcast = run.RillDb(db, {"export"});
  std::vector<Event> read;
  ParseExport(upcast.out, &read, &error);
  std::string diff = FirstDifference(model, BalancesFromLog(read));
  run.Expect(q.code == 0 && diff.empty(), "the followed model differs from the log: " + diff);
  run.Expect(run.RillDb(db, {"project", "replay", "balances"}).code == 0, "rebuild failed");
  diff = FirstDifference(model, QueryRows(run.RillDb(db, {"--json", "query", "balances", kBalancesQuery}).out));
  run.Expect(diff.empty(), "the followed model differs from a clean rebuild: " + diff);

  // Self-test: an acknowledgement the log does not hold is reported lost.
  Ledger forged = ledger;
  forged.data_of["never-sent"] = "{}";
  forged.acked["never-sent"] = Ack{"load-0", 1, 1};
  run.Expect(Verify(events, forged).lost == 1, "self-test: the checker missed a lost acknowledgement");
  return rep;
}

}  // namespace rill::reliability
