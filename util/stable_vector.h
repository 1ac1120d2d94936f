// StableVector: a growing array whose elements never move.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace rill {

// Elements live in fixed chunks of kChunk, allocated (and value-initialized)
// a chunk at a time, so adding one never moves the others: a pointer to an
// element stays valid until clear(). Indexing is one extra load (the chunk)
// over a std::vector.
template <class T, size_t kChunk>
class StableVector {
  static_assert(kChunk > 0 && (kChunk & (kChunk - 1)) == 0, "kChunk is a power of two");

 public:
  size_t size() const { return size_; }
  T& operator[](size_t i) const { return chunks_[i / kChunk][i % kChunk]; }
  // The next element, as its chunk value-initialized it (chunks are never
  // reused: clear() frees them).
  T& Append() {
    if (size_ == chunks_.size() * kChunk) chunks_.push_back(std::make_unique<T[]>(kChunk));
    return (*this)[size_++];
  }
  void clear() {
    chunks_.clear();
    size_ = 0;
  }

 private:
  std::vector<std::unique_ptr<T[]>> chunks_;
  size_t size_ = 0;
};

}  // namespace rill
