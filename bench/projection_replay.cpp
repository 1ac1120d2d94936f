// Replay throughput of the SQL `balances` projection (the target on
// the 2-core machine: >= 500,000 events/s over 10,000,000 events and
// 1,000,000 accounts).
//
//   bench_projection_replay [--events N] [--accounts N] [--dir DIR] [--keep]
//
// Builds the input store in DIR (default /tmp/rill-bench-projection) with raw
// EventStore appends (many requests in flight, async durability), unless
// DIR already holds a store with exactly N events (then it is reused), and
// then times `ReplayProjection(balances)` from position 1: reading $all,
// binding, SQLite writes, checkpoints and the final swap. Reports CPU time
// (user+sys) of the process and of the applying thread, which on a shared
// machine say more than the wall clock.
#include <fmt/format.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>

#include "core/projection_runner.h"
#include "domains/sample_projections.h"
#include "readmodel/read_model_store.h"
#include "store/event_store.h"

using namespace rill;
using Clock = std::chrono::steady_clock;

namespace {

double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// CPU seconds (user + system) of this process so far: on a shared machine
// the wall clock also measures the neighbours.
double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// CPU seconds of the calling thread: the one that applies events (SQLite),
// the replay's critical path; the reader thread runs beside it.
double ThreadCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int Die(const Status& s) {
  std::fprintf(stderr, "bench_projection_replay: %s\n", s.ToString().c_str());
  return 1;
}

Status BuildInput(EventStore& store, uint64_t events, uint64_t accounts) {
  std::atomic<uint64_t> done{0}, failed{0};
  std::mt19937_64 rng(12345);
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < events; ++i) {
    AppendRequest req;
    NewEvent e;
    if (i < accounts) {
      req.stream = fmt::format("account-{}", i);
      e.type = "AccountOpened";
      e.data = fmt::format("{{\"owner\":\"owner{}\"}}", i);
    } else {
      req.stream = fmt::format("account-{}", rng() % accounts);
      bool deposit = rng() % 10 < 7;
      e.type = deposit ? "Deposited" : "Withdrawn";
      e.data = fmt::format("{{\"amount\":{}}}", 1 + rng() % 500);
    }
    req.events.push_back(std::move(e));
    store.AppendAsync(std::move(req), [&](Result<AppendResult> r) {
      if (!r.ok()) failed.fetch_add(1);
      done.fetch_add(1, std::memory_order_release);
    });
    if (i % 1000000 == 999999)
      std::fprintf(stderr, "  appended %llu events (%.0f/s)\n", static_cast<unsigned long long>(i + 1),
                   (i + 1) / Since(t0));
  }
  while (done.load(std::memory_order_acquire) < events) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  RILL_RETURN_IF_ERROR(store.Flush());
  if (failed.load()) return Status::IOError(fmt::format("{} appends failed", failed.load()));
  std::fprintf(stderr, "input: %llu events over %llu accounts in %.1fs (%.0f events/s)\n",
               static_cast<unsigned long long>(events), static_cast<unsigned long long>(accounts), Since(t0),
               events / Since(t0));
  return Status::OK();
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t events = 10000000, accounts = 1000000;
  std::string dir = "/tmp/rill-bench-projection";
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--events") {
      events = std::stoull(next());
    } else if (a == "--accounts") {
      accounts = std::stoull(next());
    } else if (a == "--dir") {
      dir = next();
    } else if (a == "--keep") {
      keep = true;
    } else {
      std::fprintf(stderr, "usage: %s [--events N] [--accounts N] [--dir DIR] [--keep]\n", argv[0]);
      return 2;
    }
  }
  if (accounts == 0 || accounts > events) {
    std::fprintf(stderr, "need 0 < accounts <= events\n");
    return 2;
  }

  StoreOptions o;
  o.create_if_missing = true;
  o.durability = Durability::kAsync;
  bool reuse = false;
  if (EventStore::Exists(dir)) {
    auto existing = EventStore::Open(dir, o);
    reuse = existing.ok() && (*existing)->LastPosition() == events;
  }
  if (!reuse) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  auto store = EventStore::Open(dir, o);
  if (!store.ok()) return Die(store.status());
  if (reuse) {
    std::fprintf(stderr, "input: reusing %s (%llu events)\n", dir.c_str(), static_cast<unsigned long long>(events));
  } else {
    Status s = BuildInput(**store, events, accounts);
    if (!s.ok()) return Die(s);
  }

  ProjectionRegistry reg;
  Status s = RegisterSampleProjections(&reg);
  if (!s.ok()) return Die(s);
  const Projection& balances = *reg.Find("balances")->projection;
  s = DropReadModel(dir, "balances");
  if (!s.ok()) return Die(s);

  ProjectionRunOptions ro;  // as `rill project replay` does
  ro.max_batch_events = std::getenv("BATCH") ? std::stoull(std::getenv("BATCH")) : 1000000;
  ro.max_batch_time = std::chrono::seconds(5);
  uint64_t last_report = 0;
  auto t0 = Clock::now();
  double cpu0 = CpuSeconds(), apply_cpu0 = ThreadCpuSeconds();
  ro.on_commit = [&](const ProjectionProgress& p) {
    if (p.position - last_report >= 2000000) {
      last_report = p.position;
      std::fprintf(stderr, "  replayed %llu (%.0f events/s)\n", static_cast<unsigned long long>(p.position),
                   p.position / Since(t0));
    }
  };
  ProjectionProgress pr;
  s = ReplayProjection(**store, balances, ro, &pr);
  double secs = Since(t0);
  double cpu = CpuSeconds() - cpu0, apply_cpu = ThreadCpuSeconds() - apply_cpu0;
  if (!s.ok()) return Die(s);

  auto db = SqliteDb::Open(ReadModelPath(dir, "balances"), SqliteMode::kReadOnly);
  if (!db.ok()) return Die(db.status());
  auto st = (*db)->Prepare("SELECT count(*), sum(balance) FROM balances");
  if (!st.ok() || !*st->Step()) return Die(Status::Corruption("cannot read balances"));
  std::printf("projection_replay: balances (SQL) %llu events, %lld accounts: %.2fs, %.0f events/s "
              "(%llu transactions, target >= 500000); CPU %.2fs (%.2f us/event), of which the applying "
              "thread %.2fs (%.2f us/event)\n",
              static_cast<unsigned long long>(pr.position), static_cast<long long>(st->ColumnInt(0)), secs,
              pr.position / secs, static_cast<unsigned long long>(pr.transactions), cpu, cpu * 1e6 / pr.position,
              apply_cpu, apply_cpu * 1e6 / pr.position);
  if (!keep) {
    st = Status::OK();
    db->reset();
    store->reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return 0;
}
