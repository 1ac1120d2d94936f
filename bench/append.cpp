// bench_append: raw durable append throughput of the EventStore.
//
//   bench_append [--appenders 1,8,64] [--events N] [--window W] [--per-request K] [--async] [--dir D]
//
// Each appender is a thread that appends K (default 1) ~120-byte JSON events
// per request to its own rotating set of streams, keeping at most W requests
// in flight (W=1: it waits for each acknowledgement). Prints one line per appender
// count: events/s, batches (= fsyncs in sync mode), events per batch.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

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
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < n; ++t) {
      threads.emplace_back([&, t] {
        std::mutex mu;
        std::condition_variable cv;
        int in_flight = 0;
        char data[160];
        for (long i = 0; i < per; ++i) {
          {
            std::unique_lock lock(mu);
            cv.wait(lock, [&] { return in_flight < window; });
            ++in_flight;
          }
          AppendRequest r;
          r.stream = "bench-" + std::to_string(t) + "x" + std::to_string(i % 1000);
          std::snprintf(data, sizeof data,
                        "{\"owner\":\"appender-%d\",\"amount\":%ld,\"currency\":\"EUR\",\"note\":\"benchmark payload "
                        "of about 120 bytes\",\"seq\":%ld}",
                        t, i % 977, i);
          for (int k = 0; k < per_request; ++k) {
            NewEvent e;
            e.type = "Deposited";
            e.data = data;
            r.events.push_back(std::move(e));
          }
          store->AppendAsync(std::move(r), [&](Result<AppendResult> res) {
            if (!res.ok()) failed++;
            std::lock_guard lock(mu);
            --in_flight;
            cv.notify_one();
          });
        }
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return in_flight == 0; });
      });
    }
    for (auto& th : threads) th.join();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto st = store->Stats();
    long events = per * n * per_request;
    std::printf("appenders=%-3d events=%ld seconds=%.3f events/s=%.0f batches=%lu requests/batch=%.1f failed=%ld\n",
                n, events, secs, events / secs, (unsigned long)st.batches, double(st.batched_requests) / st.batches,
                failed.load());
    std::fflush(stdout);
    store.reset();
    std::filesystem::remove_all(dir);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  std::printf("peak RSS: %.1f MiB\n", ru.ru_maxrss / 1024.0);
  return 0;
}
