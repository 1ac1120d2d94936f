// bench_upcast: upcast-on-read overhead on a $all scan, and --apply throughput.
//
//   bench_upcast [--events N] [--dir DIR] [--batch B]
//
// Builds a store of N events (default 10,000,000): accounts, each an
// AccountOpened at schema 1 followed by a Deposited, so half of the events go
// through the shipped 2-step chain (AccountOpened 1 -> 2 -> 3). Then:
//   1. scans $all with no read hook (the baseline),
//   2. scans $all with the upcasters installed (half the events upcast),
//   3. applies the migration in place (ApplyUpcast, as `rill upcast --apply
//      --no-backup`), reporting rewritten events/s,
//   4. scans again with the upcasters installed but nothing left to do
//      (the cost of the hook's lookup alone).
// Prints one line per phase, then a JSON summary line.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <string>
#include <vector>

#include "core/upcast_apply.h"
#include "core/upcaster.h"
#include "store/event_store.h"

using namespace rill;
using Clock = std::chrono::steady_clock;

namespace {

[[noreturn]] void Die(const Status& s) {
  std::fprintf(stderr, "bench_upcast: %s\n", s.ToString().c_str());
  std::exit(1);
}

std::unique_ptr<EventStore> OpenStore(const std::string& dir, StoreOptions o = {}) {
  o.create_if_missing = true;
  o.durability = Durability::kAsync;
  auto r = EventStore::Open(dir, o);
  if (!r.ok()) Die(r.status());
  return std::move(r).value();
}

void Build(const std::string& dir, uint64_t events) {
  auto store = OpenStore(dir);
  std::vector<std::future<Result<AppendResult>>> pending;
  auto drain = [&] {
    for (auto& f : pending)
      if (auto res = f.get(); !res.ok()) Die(res.status());
    pending.clear();
  };
  for (uint64_t i = 0; i < events / 2; ++i) {
    AppendRequest r;
    r.stream = fmt::format("account-{}", i);
    NewEvent opened;
    opened.type = "AccountOpened";
    opened.data = fmt::format(R"({{"owner":"owner number {}"}})", i);
    NewEvent deposited;
    deposited.type = "Deposited";
    deposited.data = R"({"amount":100})";
    r.events.push_back(std::move(opened));
    r.events.push_back(std::move(deposited));
    pending.push_back(store->AppendAsync(std::move(r)));
    if (pending.size() >= 16384) drain();
  }
  drain();
  if (Status s = store->Flush(); !s.ok()) Die(s);
  if (Status s = store->WaitIndexed(store->LastPosition()); !s.ok()) Die(s);
}

// Scans $all in batches of `batch`; returns events/s.
double Scan(EventStore& store, size_t batch, uint64_t* count, uint64_t* v3) {
  auto start = Clock::now();
  std::vector<Event> events;
  uint64_t next = 1;
  *count = 0;
  *v3 = 0;
  for (;;) {
    events.clear();
    if (Status s = store.ReadAll(next, batch, &events); !s.ok()) Die(s);
    if (events.empty()) break;
    for (const auto& e : events) *v3 += e.schema == 3;
    *count += events.size();
    next = events.back().position + 1;
  }
  return *count / std::chrono::duration<double>(Clock::now() - start).count();
}

enum class ReadHook { kNone, kUpcasters };

// Opens the store at `db` (with its upcasters installed for kUpcasters) and
// scans $all twice: the first pass warms the page cache, so the timed one
// reads from memory. Returns the timed pass's events/s.
double WarmScan(const std::string& db, ReadHook hook, size_t batch, uint64_t* count, uint64_t* v3) {
  StoreOptions o;
  if (hook == ReadHook::kUpcasters)
    if (Status s = InstallUpcasters(&o, db); !s.ok()) Die(s);
  auto store = OpenStore(db, o);
  Scan(*store, batch, count, v3);
  return Scan(*store, batch, count, v3);
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t events = 10'000'000;
  std::string dir;
  size_t batch = 10000;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--events" && i + 1 < argc) {
      events = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--batch" && i + 1 < argc) {
      batch = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: bench_upcast [--events N] [--dir DIR] [--batch B]\n");
      return 2;
    }
  }
  bool temp = dir.empty();
  if (temp) {
    char tmpl[] = "/tmp/rill-bench-upcast-XXXXXX";
    dir = mkdtemp(tmpl);
  }
  std::string db = dir + "/db";
  auto t0 = Clock::now();
  Build(db, events);
  double build_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("built %llu events in %.1f s\n", static_cast<unsigned long long>(events), build_s);

  uint64_t n = 0, v3 = 0;
  const double plain = WarmScan(db, ReadHook::kNone, batch, &n, &v3);
  std::printf("scan, no upcasters:              %10.0f events/s (%llu events)\n", plain, static_cast<unsigned long long>(n));
  const double chained = WarmScan(db, ReadHook::kUpcasters, batch, &n, &v3);
  std::printf("scan, 2-step chain on 50%%:       %10.0f events/s (%llu upcast to v3), overhead %.0f%%\n", chained,
              static_cast<unsigned long long>(v3), 100.0 * (plain / chained - 1));
  double apply_rate;
  {
    auto store = OpenStore(db);
    auto upcaster = LoadUpcasters(db);
    if (!upcaster.ok()) Die(upcaster.status());
    UpcastRunOptions run;
    run.batch_events = batch;
    UpcastApplyReport report;
    auto start = Clock::now();
    if (Status s = ApplyUpcast(*store, **upcaster, run, &report); !s.ok()) Die(s);
    if (Status s = store->Flush(); !s.ok()) Die(s);
    double secs = std::chrono::duration<double>(Clock::now() - start).count();
    apply_rate = report.rewritten / secs;
    std::printf("--apply: rewrote %llu of %llu in %.1f s: %10.0f rewritten events/s (%.0f scanned/s)\n",
                static_cast<unsigned long long>(report.rewritten), static_cast<unsigned long long>(report.scanned), secs,
                apply_rate, report.scanned / secs);
  }
  const double plain_after = WarmScan(db, ReadHook::kNone, batch, &n, &v3);
  std::printf("scan after --apply, no upcasters:%10.0f events/s\n", plain_after);
  const double after = WarmScan(db, ReadHook::kUpcasters, batch, &n, &v3);
  std::printf("scan after --apply, hook active: %10.0f events/s (%llu at v3), overhead %.0f%%\n", after,
              static_cast<unsigned long long>(v3), 100.0 * (plain_after / after - 1));
  std::printf("{\"events\":%llu,\"scan_plain\":%.0f,\"scan_chain\":%.0f,\"apply_rewritten_per_s\":%.0f,\"scan_after_apply_plain\":%.0f,\"scan_after_apply_hook\":%.0f}\n",
              static_cast<unsigned long long>(events), plain, chained, apply_rate, plain_after, after);
  if (temp) std::filesystem::remove_all(dir);
  return 0;
}
