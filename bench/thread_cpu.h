// CPU time per thread name, for the benchmarks' "what bounds it" lines:
// rill names its threads (rill-writer, rill-indexer, rill-shard, rill-pump),
// so the CPU a run spent in each part shows without a profiler.
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <string>

namespace rill::bench {

// CPU seconds (user + sys) of each live thread of this process, keyed by
// "name/tid" so that a thread's two samples can be subtracted.
inline std::map<std::string, double> ThreadCpu() {
  std::map<std::string, double> out;
  DIR* d = opendir("/proc/self/task");
  if (!d) return out;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string base = std::string("/proc/self/task/") + e->d_name;
    char name[64] = {};
    if (std::FILE* f = std::fopen((base + "/comm").c_str(), "r")) {
      if (std::fgets(name, sizeof name, f) == nullptr) name[0] = 0;
      std::fclose(f);
    }
    std::string n(name);
    while (!n.empty() && n.back() == '\n') n.pop_back();
    unsigned long utime = 0, stime = 0;
    if (std::FILE* f = std::fopen((base + "/stat").c_str(), "r")) {
      char buf[1024];
      size_t len = std::fread(buf, 1, sizeof buf - 1, f);
      std::fclose(f);
      buf[len] = 0;
      // Fields after the ")" that closes the name: state is field 3, utime 14, stime 15.
      const char* p = std::strrchr(buf, ')');
      if (p) std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime);
    }
    out[n + "/" + e->d_name] = (utime + stime) / tick;
  }
  closedir(d);
  return out;
}

// What each thread name spent between two ThreadCpu() samples (threads
// alive at `after`; a thread that ended in between is not counted), as
// "name 1.2 s, other 0.8 s", largest first.
inline std::string ThreadCpuSummary(const std::map<std::string, double>& before,
                                    const std::map<std::string, double>& after) {
  std::map<std::string, double> by_name;
  for (const auto& [key, secs] : after) {
    auto b = before.find(key);
    double d = secs - (b == before.end() ? 0.0 : b->second);
    by_name[key.substr(0, key.rfind('/'))] += d;
  }
  std::multimap<double, std::string, std::greater<double>> sorted;
  for (const auto& [n, s] : by_name)
    if (s >= 0.05) sorted.emplace(s, n);
  std::string out;
  for (const auto& [s, n] : sorted) {
    char b[96];
    std::snprintf(b, sizeof b, "%s%s %.1f s", out.empty() ? "" : ", ", n.c_str(), s);
    out += b;
  }
  return out.empty() ? "-" : out;
}

}  // namespace rill::bench
