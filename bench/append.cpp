// bench_append: raw durable append throughput of the EventStore.
//
//   bench_append [--appenders 1,8,64] [--events N] [--window W] [--per-request K] [--async] [--dir D] [--dry]
//
// Each appender is a thread that acts as an honest client: for every request
// it builds a fresh AppendRequest with K (default 1) ~120-byte JSON events
// whose payload carries its own sequence number (written with std::to_chars,
// no printf parsing), to its own rotating set of 1000 streams, and keeps at
// most W requests in flight (W=1: it waits for each acknowledgement). When
// the window is full it sleeps on a futex until half of it has drained (or
// all, at the end); acknowledgements wake it only then and only if it sleeps,
// so the benchmark measures the store rather than one wake-up per event.
//
// Prints one line per appender count: events/s, batches (= fsyncs in sync
// mode), events per batch, CPU time (user+sys of the whole process,
// getrusage) per event including the indexing of the run's events, and bytes
// of log used per event; then the CPU by thread, and per event the CPU of the
// appender threads (CLOCK_THREAD_CPUTIME_ID: building requests, AppendAsync,
// waiting) next to the client's own share, measured beforehand by a dry pass
// that builds and drops the same requests without a store. On a shared
// machine the CPU figures are the ones that compare between runs.
// --dry: only that dry pass (request building alone), no store.
#include <linux/futex.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/thread_cpu.h"
#include "store/event_store.h"

using namespace rill;

namespace {

// One appender's requests in flight. The appender sleeps on a futex when its
// window is full; acknowledgements (on the writer thread) wake it only once
// half of the window has drained, or all of it, and only if it sleeps: the
// writer pays one atomic decrement per acknowledgement, not a wake-up.
class alignas(64) Window {
 public:
  void Init(int size) {
    size_ = size;
    half_ = size / 2;
  }
  // Takes a slot, sleeping while all `size` are in flight.
  void Acquire() {
    for (int f = in_flight_.load(); f >= size_; f = in_flight_.load()) Sleep(f);
    in_flight_.fetch_add(1);
  }
  void Release() {
    int left = in_flight_.fetch_sub(1) - 1;
    // seq_cst pairs with Sleep: either this sees sleeping_, or the sleeper's
    // futex sees the decremented count and does not sleep.
    if ((left == half_ || left == 0) && sleeping_.load()) Futex(FUTEX_WAKE_PRIVATE, 1);
  }
  // Waits until every request has been acknowledged.
  void Drain() {
    for (int f = in_flight_.load(); f != 0; f = in_flight_.load()) Sleep(f);
  }

 private:
  void Sleep(int seen) {
    sleeping_.store(true);
    Futex(FUTEX_WAIT_PRIVATE, seen);  // returns at once unless in_flight_ is still `seen`
    sleeping_.store(false);
  }
  void Futex(int op, int val) {
    syscall(SYS_futex, reinterpret_cast<int*>(&in_flight_), op, val, nullptr, nullptr, 0);
  }
  static_assert(sizeof(std::atomic<int>) == sizeof(int));
  std::atomic<int> in_flight_{0};
  std::atomic<bool> sleeping_{false};
  int size_ = 1, half_ = 0;
};

// What one appender sends: request i of appender t, a fresh AppendRequest
// whose ~120-byte payload carries i.
class RequestMaker {
 public:
  RequestMaker(int t, int per_request) : per_request_(per_request) {
    names_.resize(1000);
    for (int j = 0; j < 1000; ++j) names_[j] = "bench-" + std::to_string(t) + "x" + std::to_string(j);
    head_ = "{\"owner\":\"appender-" + std::to_string(t) + "\",\"amount\":";
  }
  AppendRequest Make(long i) {
    static constexpr std::string_view kMiddle = ",\"currency\":\"EUR\",\"note\":\"benchmark payload of about 120 bytes\",\"seq\":";
    char amount[24], seq[24];
    size_t amount_len = std::to_chars(amount, amount + sizeof amount, i % 977).ptr - amount;
    size_t seq_len = std::to_chars(seq, seq + sizeof seq, i).ptr - seq;
    AppendRequest r;
    r.stream = names_[i % 1000];
    r.events.resize(per_request_);
    for (auto& e : r.events) {
      e.type = "Deposited";
      e.data.reserve(head_.size() + amount_len + kMiddle.size() + seq_len + 1);
      e.data.assign(head_).append(amount, amount_len).append(kMiddle).append(seq, seq_len).push_back('}');
    }
    return r;
  }

 private:
  int per_request_;
  std::vector<std::string> names_;
  std::string head_;
};

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// CPU seconds the client alone spends on `per` requests in each of n
// threads: building them and dropping them (in a real run the writer thread
// frees them instead).
double DryRun(int n, long per, int per_request) {
  std::vector<double> cpu(n);
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t)
    threads.emplace_back([&, t] {
      double c0 = ThreadCpuSeconds();
      RequestMaker maker(t, per_request);
      size_t sink = 0;
      for (long i = 0; i < per; ++i) {
        AppendRequest r = maker.Make(i);
        sink += r.events[0].data.size();
      }
      if (sink == 1) std::printf(" ");  // keeps the loop from being optimized away
      cpu[t] = ThreadCpuSeconds() - c0;
    });
  for (auto& th : threads) th.join();
  double sum = 0;
  for (double c : cpu) sum += c;
  return sum;
}

// Sum of the CPU seconds spent between two samples by threads named `name`.
double CpuOf(const std::map<std::string, double>& before, const std::map<std::string, double>& after,
             const std::string& name) {
  double sum = 0;
  for (const auto& [key, secs] : after) {
    if (key.compare(0, key.rfind('/'), name) != 0) continue;
    auto b = before.find(key);
    sum += secs - (b == before.end() ? 0.0 : b->second);
  }
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> appenders = {1, 8, 64};
  long total_events = 1000000;
  int window = 256;
  int per_request = 1;
  bool async = false, dry = false;
  std::string base = "/tmp/rill-bench-append";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--appenders") {
      appenders.clear();
      std::stringstream ss(next());
      std::string x;
      while (std::getline(ss, x, ',')) appenders.push_back(std::stoi(x));
    } else if (a == "--events") total_events = std::stol(next());
    else if (a == "--window") window = std::stoi(next());
    else if (a == "--per-request") per_request = std::max(1, std::stoi(next()));
    else if (a == "--async") async = true;
    else if (a == "--dir") base = next();
    else if (a == "--dry") dry = true;
    else {
      std::fprintf(stderr,
                   "usage: bench_append [--appenders 1,8,64] [--events N] [--window W] [--per-request K] [--async] "
                   "[--dir D] [--dry]\n");
      return 2;
    }
  }
  window = std::max(1, window);
  std::printf("# bench_append: %ld events per run, window %d, %d events per request, durability %s, payload ~120 bytes\n",
              total_events, window, per_request, async ? "async" : "sync");
  for (int n : appenders) {
    long per = total_events / n / per_request;  // requests per appender
    long events = per * n * per_request;
    double dry_secs = DryRun(n, per, per_request);
    if (dry) {
      std::printf("appenders=%-3d dry: building and dropping %ld requests: client cpu_us/event=%.3f\n", n, per * n,
                  dry_secs * 1e6 / events);
      std::fflush(stdout);
      continue;
    }
    std::string dir = base + "-" + std::to_string(n);
    std::filesystem::remove_all(dir);
    StoreOptions o;
    o.create_if_missing = true;
    o.durability = async ? Durability::kAsync : Durability::kSync;
    o.initial_map_bytes = size_t(1) << 30;
    auto opened = EventStore::Open(dir, o);
    if (!opened.ok()) {
      std::fprintf(stderr, "open: %s\n", opened.status().ToString().c_str());
      return 1;
    }
    auto store = std::move(opened).value();
    std::atomic<long> failed{0};
    std::vector<Window> windows(n);
    std::vector<double> appender_cpu(n);
    struct rusage ru0;
    getrusage(RUSAGE_SELF, &ru0);
    auto threads0 = bench::ThreadCpu();
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < n; ++t) {
      threads.emplace_back([&, t] {
        double c0 = ThreadCpuSeconds();
        Window* w = &windows[t];
        w->Init(window);
        std::atomic<long>* f = &failed;
        RequestMaker maker(t, per_request);
        for (long i = 0; i < per; ++i) {
          w->Acquire();
          // Captures two pointers: fits std::function's inline buffer.
          store->AppendAsync(maker.Make(i), [w, f](Result<AppendResult> res) {
            if (!res.ok()) f->fetch_add(1);
            w->Release();
          });
        }
        w->Drain();
        appender_cpu[t] = ThreadCpuSeconds() - c0;
      });
    }
    for (auto& th : threads) th.join();
    // The timed/CPU window ends once the indexer has caught up with the
    // run's events: indexing is part of what an append costs.
    auto st = store->Stats();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    (void)store->WaitIndexed(st.events);
    struct rusage ru1;
    getrusage(RUSAGE_SELF, &ru1);
    auto threads1 = bench::ThreadCpu();
    auto us = [](const timeval& a, const timeval& b) { return (b.tv_sec - a.tv_sec) * 1e6 + (b.tv_usec - a.tv_usec); };
    double user_us = us(ru0.ru_utime, ru1.ru_utime), sys_us = us(ru0.ru_stime, ru1.ru_stime);
    auto usage = store->Stats();
    std::printf("appenders=%-3d events=%ld seconds=%.3f events/s=%.0f batches=%lu requests/batch=%.1f failed=%ld "
                "cpu_us/event=%.2f (user %.2f sys %.2f, incl. indexing) log_bytes/event=%.0f\n",
                n, events, secs, events / secs, (unsigned long)st.batches, double(st.batched_requests) / st.batches,
                failed.load(), (user_us + sys_us) / events, user_us / events, sys_us / events,
                double(usage.log_used_bytes) / events);
    // Appender threads have ended: ThreadCpu no longer lists them, so their
    // CPU comes from their own clocks.
    std::printf("  CPU by thread: %s\n", bench::ThreadCpuSummary(threads0, threads1).c_str());
    double appender_secs = 0;
    for (double c : appender_cpu) appender_secs += c;
    double writer = CpuOf(threads0, threads1, "rill-writer"), indexer = CpuOf(threads0, threads1, "rill-indexer");
    std::printf("  cpu_us/event: writer %.2f, indexer %.2f, appender threads %.2f (the client alone, dry: %.2f), "
                "rest %.2f\n",
                writer * 1e6 / events, indexer * 1e6 / events, appender_secs * 1e6 / events, dry_secs * 1e6 / events,
                (user_us + sys_us) / events - (writer + indexer + appender_secs) * 1e6 / events);
    std::fflush(stdout);
    store.reset();
    std::filesystem::remove_all(dir);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  std::printf("peak RSS: %.1f MiB\n", ru.ru_maxrss / 1024.0);
  return 0;
}
