// Prefetch: the one way rill asks the CPU to start loading a cache line.
#pragma once

namespace rill {

// Starts loading the cache line at `p` without waiting for it. The empty
// volatile asm is there because __builtin_prefetch alone is no side effect
// to GCC: it finds a function that only prefetches pure and deletes its
// calls at -O2. The asm keeps them.
inline void Prefetch(const void* p) {
  __builtin_prefetch(p);
  asm volatile("");
}

}  // namespace rill
