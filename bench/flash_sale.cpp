// The flash sale: purchase commands over many SKU
// aggregates through the actor runtime, durable (sync) store.
//
//   bench_flash_sale [--small] [--scenario uniform|hot|single|all]
//                    [--purchases N] [--skus N] [--stock N] [--single N]
//                    [--producers N] [--shards N] [--ids] [--dir DIR] [--async]
//                    [--index-batch N]  (StoreOptions::index_batch_events)
//
// uniform: N purchases over S SKUs, each SKU equally likely.
// hot:     the same, but 100 SKUs take half of the traffic.
// single:  every purchase goes to one SKU (one hot actor).
// Prints commands/s, p50/p99 latency (submit -> durable reply), peak RSS, and
// checks that no SKU sold more than its stock.
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/thread_cpu.h"
#include "core/actor_runtime.h"
#include "domains/domains.h"
#include "store/event_store.h"

using namespace rill;
using Clock = std::chrono::steady_clock;

namespace {

// Log-scale latency histogram: 16 buckets per doubling, lock-free.
class Histogram {
 public:
  void Add(uint64_t ns) {
    if (ns == 0) ns = 1;
    int b = static_cast<int>(std::log2(static_cast<double>(ns)) * 16);
    if (b >= kBuckets) b = kBuckets - 1;
    buckets_[b].fetch_add(1, std::memory_order_relaxed);
  }
  double PercentileMicros(double p) const {
    uint64_t total = 0;
    for (const auto& b : buckets_) total += b.load();
    uint64_t want = static_cast<uint64_t>(std::ceil(total * p)), seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += buckets_[i].load();
      if (seen >= want && want > 0) return std::exp2((i + 1) / 16.0) / 1000.0;
    }
    return 0;
  }
  void Reset() {
    for (auto& b : buckets_) b = 0;
  }

 private:
  static constexpr int kBuckets = 16 * 40;
  std::atomic<uint64_t> buckets_[kBuckets]{};
};

double PeakRssMiB() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;
}

struct Config {
  std::string scenario = "all";
  uint64_t purchases = 10'000'000;
  uint64_t skus = 2'000'000;
  int64_t stock = 100;
  uint64_t single = 2'000'000;
  int producers = 2;
  size_t shards = 0;
  bool ids = false;
  bool async = false;
  size_t index_batch = 0;  // 0: the store's default
  std::string dir;
};

struct Outcome {
  std::atomic<uint64_t> accepted{0}, rejected{0}, failed{0}, done{0};
  Histogram latency;
  Clock::time_point start;
  // Accepted purchases, as SKU numbers appended to a log per replying
  // thread: a per-SKU counter bumped in the reply would be a cache miss per
  // purchase on the shard thread at a million SKUs, charged to the runtime.
  // Counted per SKU after the run.
  bool log_sold = false;
  uint64_t generation = 0;  // tells this Outcome's logs from an earlier one's
  std::mutex logs_mu;
  std::vector<std::unique_ptr<std::vector<uint32_t>>> sold_logs;
  std::vector<uint32_t>& SoldLog() {
    thread_local uint64_t log_generation = 0;
    thread_local std::vector<uint32_t>* log = nullptr;
    if (log_generation != generation) {
      std::lock_guard lk(logs_mu);
      sold_logs.push_back(std::make_unique<std::vector<uint32_t>>());
      log = sold_logs.back().get();
      log->reserve(1 << 20);
      log_generation = generation;
    }
    return *log;
  }
  double cpu_secs = 0;  // user + sys of the whole process during the phase
  std::string threads;  // CPU per thread name during the phase (bench/thread_cpu.h)
};

std::atomic<uint64_t> next_generation{1};

double ProcessCpuSecs() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Submits `count` commands from `producers` threads; command i is made by
// make(i, &command). Waits for every reply.
template <class Make>
double Drive(ActorRuntime& rt, uint64_t count, int producers, Outcome& out, Make make,
             std::vector<uint32_t>* sold_per_sku) {
  auto start = Clock::now();
  double cpu0 = ProcessCpuSecs();
  auto threads0 = bench::ThreadCpu();
  out.start = start;
  out.log_sold = sold_per_sku != nullptr;
  out.generation = next_generation.fetch_add(1);
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p)
    threads.emplace_back([&, p] {
      for (uint64_t i = p; i < count; i += producers) {
        Command c;
        uint64_t sku = make(i, &c);
        // The callback captures 16 bytes (std::function keeps it inline): the
        // submit time in microseconds since the start, and the SKU.
        uint64_t t0_us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
        uint64_t packed = (t0_us << 32) | (sku & 0xffffffffu);
        Outcome* o = &out;
        rt.SubmitAsync(std::move(c), [o, packed](Result<CommandResult> r) {
          Outcome& out = *o;
          auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - out.start).count();
          out.latency.Add((now_us - static_cast<int64_t>(packed >> 32)) * 1000);
          if (r.ok()) {
            out.accepted.fetch_add(1, std::memory_order_relaxed);
            if (out.log_sold) out.SoldLog().push_back(static_cast<uint32_t>(packed & 0xffffffffu));
          } else if (r.status().code() == Code::kRejected) {
            out.rejected.fetch_add(1, std::memory_order_relaxed);
          } else {
            if (out.failed.fetch_add(1) < 5) fmt::print(stderr, "failed: {}\n", r.status().ToString());
          }
          out.done.fetch_add(1, std::memory_order_release);
        });
      }
    });
  for (auto& t : threads) t.join();
  while (out.done.load(std::memory_order_acquire) < count) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  out.cpu_secs = ProcessCpuSecs() - cpu0;
  out.threads = bench::ThreadCpuSummary(threads0, bench::ThreadCpu());
  if (sold_per_sku)
    for (const auto& log : out.sold_logs)
      for (uint32_t sku : *log) ++(*sold_per_sku)[sku];
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void Report(const char* what, uint64_t count, double secs, const Outcome& o) {
  fmt::print("{:<28} {:>10} cmds {:>7.2f} s {:>10.0f} cmds/s  p50 {:>8.1f} us  p99 {:>9.1f} us  accepted {} rejected {} failed {}  peak RSS {:.0f} MiB  CPU {:.1f} s = {:.2f} us/cmd\n",
             what, count, secs, count / secs, o.latency.PercentileMicros(0.50), o.latency.PercentileMicros(0.99),
             o.accepted.load(), o.rejected.load(), o.failed.load(), PeakRssMiB(), o.cpu_secs, o.cpu_secs * 1e6 / count);
  // The producers have ended by now: their CPU is the rest of the total.
  fmt::print("{:<28} CPU by thread: {}\n", "", o.threads);
  std::fflush(stdout);
}

std::string SkuStream(const char* prefix, uint64_t n) {
  char buf[48];
  int len = std::snprintf(buf, sizeof buf, "%s%llu", prefix, static_cast<unsigned long long>(n));
  return std::string(buf, len);
}

int RunSkus(const Config& cfg, bool hot) {
  std::string dir = cfg.dir + (hot ? "/hot" : "/uniform");
  StoreOptions so;
  so.create_if_missing = true;
  so.durability = cfg.async ? Durability::kAsync : Durability::kSync;
  if (cfg.index_batch) so.index_batch_events = cfg.index_batch;
  auto store = EventStore::Open(dir, so);
  if (!store.ok()) {
    fmt::print(stderr, "open: {}\n", store.status().ToString());
    return 1;
  }
  DomainRegistry registry;
  domains::RegisterAll(registry);
  RuntimeOptions ro;
  ro.shards = cfg.shards;
  ro.max_live_actors = cfg.skus + 1024;
  auto rt = ActorRuntime::Start(store->get(), &registry, ro).value().release();
  std::unique_ptr<ActorRuntime> runtime(rt);

  const char* prefix = hot ? "sku-h" : "sku-u";
  {
    Outcome o;
    double secs = Drive(*runtime, cfg.skus, cfg.producers, o, [&](uint64_t i, Command* c) {
      c->type = "CreateSku";
      c->stream = SkuStream(prefix, i);
      c->data = fmt::format("{{\"stock\":{}}}", cfg.stock);
      return i;
    }, nullptr);
    Report(hot ? "hot: create SKUs" : "uniform: create SKUs", cfg.skus, secs, o);
  }
  std::vector<uint32_t> sold(cfg.skus);
  Outcome o;
  double secs = Drive(*runtime, cfg.purchases, cfg.producers, o, [&](uint64_t i, Command* c) {
    // A cheap deterministic mix (splitmix64) per command index.
    uint64_t z = (i + 0x9e3779b97f4a7c15ull) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    uint64_t sku = (hot && (z & 1)) ? (z >> 1) % std::min<uint64_t>(100, cfg.skus) : (z >> 1) % cfg.skus;
    c->type = "Purchase";
    c->stream = SkuStream(prefix, sku);
    c->data = fmt::format("{{\"quantity\":1,\"user\":\"u{}\"}}", i % 1000003);
    if (cfg.ids) c->id = fmt::format("p-{}", i);
    return sku;
  }, &sold);
  Report(hot ? "hot: purchases" : "uniform: purchases", cfg.purchases, secs, o);
  // No oversell: no SKU accepted more purchases than its stock, and the
  // actors agree (checked on the hot set and a sample).
  uint64_t oversold = 0;
  for (uint64_t s = 0; s < cfg.skus; ++s)
    if (sold[s] > static_cast<uint64_t>(cfg.stock)) ++oversold;
  for (uint64_t s = 0; s < std::min<uint64_t>(cfg.skus, 200); ++s) {
    auto st = runtime->GetState(SkuStream(prefix, s * (cfg.skus / std::min<uint64_t>(cfg.skus, 200))));
    if (!st.ok() || st->state.find("\"stock\":-") != std::string::npos) ++oversold;
  }
  fmt::print("{:<28} oversold SKUs: {}\n", hot ? "hot: check" : "uniform: check", oversold);
  auto stats = runtime->Stats();
  fmt::print("{:<28} activations {} passivations {} snapshots {} live actors {}\n", "runtime", stats.activations,
             stats.passivations, stats.snapshots, stats.live_actors);
  auto ss = (*store)->Stats();
  fmt::print("{:<28} batches {} requests/batch {:.0f} events {} indexed {} foreign {}\n", "store", ss.batches,
             ss.batches ? double(ss.batched_requests) / ss.batches : 0.0, ss.events, ss.indexed_position,
             ss.foreign_events);
  // The index is derived and kept behind the log on purpose (reads merge
  // the in-memory tail); what it still owes is reported, not hidden.
  auto index_from = std::chrono::steady_clock::now();
  uint64_t last = (*store)->LastPosition();
  Status caught_up = (*store)->WaitIndexed(last);
  fmt::print("{:<28} {} events behind the log; caught up {:.2f} s later{}\n", "index", last - ss.indexed_position,
             std::chrono::duration<double>(std::chrono::steady_clock::now() - index_from).count(),
             caught_up.ok() ? "" : ": " + caught_up.ToString());
  return oversold == 0 && o.failed == 0 ? 0 : 1;
}

int RunSingle(const Config& cfg) {
  std::string dir = cfg.dir + "/single";
  StoreOptions so;
  so.create_if_missing = true;
  so.durability = cfg.async ? Durability::kAsync : Durability::kSync;
  if (cfg.index_batch) so.index_batch_events = cfg.index_batch;
  auto store = EventStore::Open(dir, so);
  if (!store.ok()) return 1;
  DomainRegistry registry;
  domains::RegisterAll(registry);
  RuntimeOptions ro;
  ro.shards = cfg.shards;
  auto runtime = std::move(ActorRuntime::Start(store->get(), &registry, ro).value());
  Command create;
  create.type = "CreateSku";
  create.stream = "sku-hot";
  create.data = fmt::format("{{\"stock\":{}}}", cfg.single);
  if (!runtime->Execute(create).ok()) return 1;
  Outcome o;
  double secs = Drive(*runtime, cfg.single, cfg.producers, o, [&](uint64_t i, Command* c) {
    c->type = "Purchase";
    c->stream = "sku-hot";
    c->data = fmt::format("{{\"quantity\":1,\"user\":\"u{}\"}}", i % 1000003);
    if (cfg.ids) c->id = fmt::format("p-{}", i);
    return uint64_t{0};
  }, nullptr);
  Report("single hot aggregate", cfg.single, secs, o);
  auto st = runtime->GetState("sku-hot");
  fmt::print("{:<28} final state {}\n", "single: check", st.ok() ? st->state : st.status().ToString());
  return o.failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        fmt::print(stderr, "{} needs a value\n", a);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--small") {
      cfg.purchases = 1'000'000;
      cfg.skus = 200'000;
      cfg.single = 300'000;
    } else if (a == "--scenario") cfg.scenario = next();
    else if (a == "--purchases") cfg.purchases = std::stoull(next());
    else if (a == "--skus") cfg.skus = std::stoull(next());
    else if (a == "--stock") cfg.stock = std::stoll(next());
    else if (a == "--single") cfg.single = std::stoull(next());
    else if (a == "--producers") cfg.producers = std::stoi(next());
    else if (a == "--shards") cfg.shards = std::stoull(next());
    else if (a == "--ids") cfg.ids = true;
    else if (a == "--async") cfg.async = true;
    else if (a == "--index-batch") cfg.index_batch = std::stoull(next());
    else if (a == "--dir") cfg.dir = next();
    else {
      fmt::print(stderr, "usage: bench_flash_sale [--small] [--scenario uniform|hot|single|all] [--purchases N] "
                         "[--skus N] [--stock N] [--single N] [--producers N] [--shards N] [--ids] [--async] [--index-batch N] "
                         "[--dir DIR]\n");
      return 2;
    }
  }
  bool own_dir = cfg.dir.empty();
  if (own_dir) {
    char tmpl[] = "/tmp/rill-flash-XXXXXX";
    cfg.dir = mkdtemp(tmpl);
  }
  fmt::print("flash sale: {} purchases over {} SKUs (stock {} each), single hot: {}, producers {}, durability {}\n",
             cfg.purchases, cfg.skus, cfg.stock, cfg.single, cfg.producers, cfg.async ? "async" : "sync");
  int rc = 0;
  if (cfg.scenario == "uniform" || cfg.scenario == "all") rc |= RunSkus(cfg, false);
  if (cfg.scenario == "hot" || cfg.scenario == "all") rc |= RunSkus(cfg, true);
  if (cfg.scenario == "single" || cfg.scenario == "all") rc |= RunSingle(cfg);
  if (own_dir) std::filesystem::remove_all(cfg.dir);
  return rc;
}
