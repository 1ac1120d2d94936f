// bench_append: raw durable append throughput of the EventStore.
//
//   bench_append [--appenders 1,8,64] [--events N] [--window W] [--per-request K] [--async] [--dir D]
//
// Each appender is a thread that appends K (default 1) ~120-byte JSON events
// per request to its own rotating set of streams, keeping at most W requests
// in flight (W=1: it waits for each acknowledgement). Prints one line per appender
// count: events/s, batches (= fsyncs in sync mode), events per batch, CPU time
// (user+sys of the whole process, getrusage) per event including the indexing
// of the run's events, and bytes of log used per event. On a shared machine
// the CPU figure is the one that compares between runs.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/thread_cpu.h"
#include "store/event_store.h"

using namespace rill;

int main(int argc, char** argv) {
  std::vector<int> appenders = {1, 8, 64};
  long total_events = 1000000;
  int window = 256;
  int per_request = 1;
  bool async = false;
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
    else {
      std::fprintf(stderr,
                   "usage: bench_append [--appenders 1,8,64] [--events N] [--window W] [--per-request K] [--async] "
                   "[--dir D]\n");
      return 2;
    }
  }
  std::printf("# bench_append: %ld events per run, window %d, %d events per request, durability %s, payload ~120 bytes\n",
              total_events, window, per_request, async ? "async" : "sync");
  for (int n : appenders) {
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
    long per = total_events / n / per_request;  // requests per appender
    std::atomic<long> failed{0};
    // Per appender: requests in flight. The appender sleeps when the window
    // is full and is woken once half of it has drained (and at zero), not on
    // every acknowledgement: the benchmark should measure the store, not a
    // futex wake per event.
    struct Appender {
      std::atomic<int> in_flight{0};
      std::atomic<long>* failed;
      int half;
    };
    std::vector<Appender> state(n);
    struct rusage ru0;
    getrusage(RUSAGE_SELF, &ru0);
    auto threads0 = bench::ThreadCpu();
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < n; ++t) {
      threads.emplace_back([&, t] {
        Appender* a = &state[t];
        a->failed = &failed;
        a->half = window / 2;
        std::vector<std::string> names(1000);
        for (int j = 0; j < 1000; ++j) names[j] = "bench-" + std::to_string(t) + "x" + std::to_string(j);
        char data[160];
        for (long i = 0; i < per; ++i) {
          for (int f = a->in_flight.load(); f >= window; f = a->in_flight.load()) a->in_flight.wait(f);
          a->in_flight.fetch_add(1);
          AppendRequest r;
          r.stream = names[i % 1000];
          std::snprintf(data, sizeof data,
                        "{\"owner\":\"appender-%d\",\"amount\":%ld,\"currency\":\"EUR\",\"note\":\"benchmark payload "
                        "of about 120 bytes\",\"seq\":%ld}",
                        t, i % 977, i);
          r.events.resize(per_request);
          for (auto& e : r.events) {
            e.type = "Deposited";
            e.data = data;
          }
          // Captures one pointer: fits std::function's inline buffer.
          store->AppendAsync(std::move(r), [a](Result<AppendResult> res) {
            if (!res.ok()) a->failed->fetch_add(1);
            int left = a->in_flight.fetch_sub(1) - 1;
            if (left == a->half || left == 0) a->in_flight.notify_one();
          });
        }
        for (int f = a->in_flight.load(); f != 0; f = a->in_flight.load()) a->in_flight.wait(f);
      });
    }
    for (auto& th : threads) th.join();
    // Close the store inside the timed/CPU window: its writer and indexer
    // finish their work (the index catches up) before the figures are taken.
    auto st = store->Stats();
    long events = per * n * per_request;
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    (void)store->WaitIndexed(st.events);
    struct rusage ru1;
    getrusage(RUSAGE_SELF, &ru1);
    auto us = [](const timeval& a, const timeval& b) { return (b.tv_sec - a.tv_sec) * 1e6 + (b.tv_usec - a.tv_usec); };
    double user_us = us(ru0.ru_utime, ru1.ru_utime), sys_us = us(ru0.ru_stime, ru1.ru_stime);
    auto usage = store->Stats();
    std::printf("appenders=%-3d events=%ld seconds=%.3f events/s=%.0f batches=%lu requests/batch=%.1f failed=%ld "
                "cpu_us/event=%.2f (user %.2f sys %.2f, incl. indexing) log_bytes/event=%.0f\n",
                n, events, secs, events / secs, (unsigned long)st.batches, double(st.batched_requests) / st.batches,
                failed.load(), (user_us + sys_us) / events, user_us / events, sys_us / events,
                double(usage.log_used_bytes) / events);
    std::fflush(stdout);
    // Appender threads have ended: their CPU is the rest of the total.
    std::printf("  CPU by thread: %s\n", bench::ThreadCpuSummary(threads0, bench::ThreadCpu()).c_str());
    std::fflush(stdout);
    store.reset();
    std::filesystem::remove_all(dir);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  std::printf("peak RSS: %.1f MiB\n", ru.ru_maxrss / 1024.0);
  return 0;
}
