// rel_kill_upcast_import — kill -9 during `rill upcast --apply` and `rill import`.
//
// PROMISE: `upcast --apply` killed at any moment leaves every event at its
// old or its new schema (reads upcast either way, `check` is clean), and a
// rerun finishes the job with a store byte-for-byte equal (as `export --raw`)
// to an uninterrupted apply. `import` killed at any moment leaves a clean,
// gapless prefix of the file (whole requests, nothing torn); importing the
// rest with `import --append` gives exactly the store an uninterrupted import
// gives.
//
// How: testdata/upcast/bank-v1.jsonl (a v1-era export) is scaled up into
// many copies with their own streams, ids and positions. A reference store
// gets an uninterrupted import and apply; the test store gets both killed at
// random moments within their measured durations, several times each.
//
// It can fail: every comparison is of full exports; the self-test changes
// one byte of one line and expects the comparison to see it.
#include <cinttypes>
#include <functional>

#include "reliability/reliability.h"

namespace rel = rill::reliability;

namespace {

// bank-v1.jsonl, `copies` times: streams account-<n>-c<copy>, ids with the
// copy number in their first group, positions consecutive.
std::string Scale(const std::string& v1, uint64_t copies) {
  std::vector<std::string> lines = rel::WholeLines(v1);
  std::string out;
  out.reserve(v1.size() * copies * 11 / 10);
  uint64_t position = 0;
  for (uint64_t c = 0; c < copies; ++c) {
    char prefix[24];
    std::snprintf(prefix, sizeof prefix, "%08" PRIx64, c);
    for (const std::string& line : lines) {
      rapidjson::Document d;
      if (!rel::ParseObject(line, &d)) continue;
      d["position"].SetUint64(++position);
      std::string stream = rel::JsonString(d, "stream") + "-c" + std::to_string(c);
      d["stream"].SetString(stream.c_str(), static_cast<rapidjson::SizeType>(stream.size()), d.GetAllocator());
      std::string id = rel::JsonString(d, "id");
      id.replace(0, 8, prefix);
      d["id"].SetString(id.c_str(), static_cast<rapidjson::SizeType>(id.size()), d.GetAllocator());
      out += rel::CompactJson(d) + "\n";
    }
  }
  return out;
}

double TimedMs(const std::function<void()>& f) {
  auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  rel::Run run("kill_upcast_import", argc, argv);
  // The long budget kills 500 times at the short budget's size.
  const uint64_t copies = 8000;
  const int import_kills = run.Budget(4, 250), upcast_kills = run.Budget(5, 250);
  std::string input = run.Path("bank-v1-scaled.jsonl");
  rel::WriteFile(input, Scale(rel::ReadFile(rel::SourceDir() + "/testdata/upcast/bank-v1.jsonl"), copies));
  const uint64_t events = copies * 9;

  // The reference: uninterrupted import, then uninterrupted apply.
  const std::string ref = run.Path("ref");
  rel::Output o;
  run.Expect(run.RillDb(ref, {"init"}).code == 0, "init failed");
  double import_ms = TimedMs([&] { o = run.RillDb(ref, {"import", input}); });
  if (!run.Expect(o.code == 0, "reference import failed: " + o.FirstErrLine())) return run.Finish();
  std::string ref_imported = run.RillDb(ref, {"export", "--raw"}).out;
  double upcast_ms = TimedMs([&] { o = run.RillDb(ref, {"upcast", "--apply", "--no-backup", "--batch", "2000"}); });
  if (!run.Expect(o.code == 0, "reference upcast failed: " + o.FirstErrLine())) return run.Finish();
  std::string ref_applied = run.RillDb(ref, {"export", "--raw"}).out;
  std::string ref_read = run.RillDb(ref, {"export"}).out;
  run.Expect(ref_applied != ref_imported, "the reference apply changed nothing");
  rel::Log("%llu events: reference import %.0f ms, apply %.0f ms", static_cast<unsigned long long>(events), import_ms,
           upcast_ms);

  // Import, killed, then the rest appended.
  uint64_t kills = 0, compared = 0, partial = 0;
  const std::string db = run.Path("db");
  std::vector<std::string> lines = rel::WholeLines(rel::ReadFile(input));
  // An attempt whose process finished first is not a kill: the budgets
  // count kills.
  uint64_t import_killed = 0, upcast_killed = 0;
  for (int k = 0; import_killed < static_cast<uint64_t>(import_kills) && k < 3 * import_kills && run.ok(); ++k) {
    std::filesystem::remove_all(db);
    run.RillDb(db, {"init"});
    std::string data_file = db + "/log/data.mdb";
    auto initial_size = std::filesystem::file_size(data_file);
    pid_t pid = rel::SpawnRill({"--db", db, "import", input}, run.Path("import.out"), run.Path("import.err"));
    // Import checks every line before it writes; kill once writing shows
    // (the log file grows), at a random moment within the writing.
    int code = 0;
    bool exited = false;
    for (int waited = 0; waited < 60000 && std::filesystem::file_size(data_file) == initial_size; waited += 2) {
      if ((exited = rel::Exited(pid, &code))) break;
      rel::SleepMs(2);
    }
    rel::SleepMs(run.Random(0, static_cast<int64_t>(import_ms * 0.4)));
    if (!exited && rel::KillAndWait(pid) == 128 + SIGKILL) ++import_killed;
    run.CheckClean(db, "after a killed import");
    std::string part = run.RillDb(db, {"export", "--raw"}).out;
    size_t stored = rel::WholeLines(part).size();
    run.Expect(ref_imported.compare(0, part.size(), part) == 0,
               "a killed import left something other than a prefix of the file (" + std::to_string(stored) +
                   " events)");
    std::string rest;
    for (size_t i = stored; i < lines.size(); ++i) rest += lines[i] + "\n";
    rel::WriteFile(run.Path("rest.jsonl"), rest);
    o = run.RillDb(db, {"import", "--append", run.Path("rest.jsonl")});
    run.Expect(o.code == 0, "import --append of the rest failed: " + o.FirstErrLine());
    run.Expect(run.RillDb(db, {"export", "--raw"}).out == ref_imported,
               "killed import + the rest differs from an uninterrupted import");
    ++compared;
    rel::Log("import killed after %zu of %zu events; the rest completed it", stored, lines.size());
  }

  // Apply, killed several times, then rerun to the end.
  for (int k = 0; upcast_killed < static_cast<uint64_t>(upcast_kills) && k < 3 * upcast_kills && run.ok(); ++k) {
    if (k > 0 && k % 10 == 0) {
      // Ten kills finish an apply; start again from the imported store so
      // each kill lands in a real rewrite.
      std::filesystem::remove_all(db);
      run.RillDb(db, {"init"});
      o = run.RillDb(db, {"import", input});
      if (!run.Expect(o.code == 0, "re-import failed: " + o.FirstErrLine())) break;
    }
    pid_t pid = rel::SpawnRill({"--db", db, "upcast", "--apply", "--no-backup", "--batch", "2000"},
                               run.Path("upcast.out"), run.Path("upcast.err"));
    rel::SleepMs(run.Random(static_cast<int64_t>(upcast_ms * 0.05), static_cast<int64_t>(upcast_ms * 0.6)));
    if (rel::KillAndWait(pid) == 128 + SIGKILL) ++upcast_killed;
    run.CheckClean(db, "after a killed upcast --apply");
    {
      std::string raw = run.RillDb(db, {"export", "--raw"}).out;
      size_t applied = 0, pos = 0;
      for (const std::string needle = R"("type":"AccountOpened","schema":3)";
           (pos = raw.find(needle, pos)) != std::string::npos; pos += needle.size())
        ++applied;
      partial += applied > 0 && applied < copies * 3;
      rel::Log("upcast killed with %zu of %llu AccountOpened events rewritten", applied,
               static_cast<unsigned long long>(copies * 3));
    }
    run.Expect(run.RillDb(db, {"export"}).out == ref_read,
               "after a killed apply, reads differ from the reference's (upcast on read must hide the mix)");
    ++compared;
  }
  o = run.RillDb(db, {"upcast", "--apply", "--no-backup", "--batch", "2000"});
  run.Expect(o.code == 0, "upcast rerun failed: " + o.FirstErrLine());
  std::string applied = run.RillDb(db, {"export", "--raw"}).out;
  run.Expect(applied == ref_applied, "killed + rerun apply differs from an uninterrupted apply");
  ++compared;
  run.CheckClean(db, "after the rerun apply");
  // A second rerun has nothing to do.
  o = run.RillDb(db, {"upcast", "--apply", "--no-backup"});
  run.Expect(o.code == 0 && run.RillDb(db, {"export", "--raw"}).out == ref_applied, "a further rerun changed the store");

  // Self-test: one changed byte is seen.
  std::string tampered = applied;
  if (!tampered.empty()) tampered[tampered.size() / 2] ^= 1;
  run.Expect(tampered != ref_applied, "self-test: the comparison missed a changed byte");

  kills = import_killed + upcast_killed;
  run.Figure("kills", kills);
  run.Figure("partial_applies", partial);
  run.Figure("events", events);
  run.Figure("compared", compared);
  run.Figure("mismatches", static_cast<uint64_t>(run.ok() ? 0 : 1));
  return run.Finish();
}
