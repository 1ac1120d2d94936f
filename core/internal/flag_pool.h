// FlagPool: the pipeline flags of a shard's actors with commands in flight.
#pragma once

#include <atomic>
#include <deque>
#include <vector>

namespace rill::actors {

// Addresses are stable (a deque grows without moving its elements); a flag
// is cleared when it comes back, after the last append that carried it has
// completed, so the writer no longer looks at it.
class FlagPool {
 public:
  std::atomic<bool>* Take() {
    if (free_.empty()) return &flags_.emplace_back(false);
    std::atomic<bool>* f = free_.back();
    free_.pop_back();
    return f;
  }
  void Return(std::atomic<bool>* f) {
    f->store(false, std::memory_order_relaxed);  // the next append's handoff to the writer publishes it
    free_.push_back(f);
  }

 private:
  std::deque<std::atomic<bool>> flags_;
  std::vector<std::atomic<bool>*> free_;
};

}  // namespace rill::actors
