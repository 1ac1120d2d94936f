// Shared internals of store/: the stream record in `streams`, the in-memory
// unindexed tail, and helpers used by the writer, the indexer and the reads.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <cstdlib>
#include <deque>
#include <memory>
#include <type_traits>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/event.h"
#include "store/event_store.h"
#include "store/internal/lmdb_env.h"
#include "store/internal/record.h"
#include "store/internal/stream_index_run.h"
#include "store/system_events.h"

namespace rill {

// Value of `streams` (key: stream name). Fixed layout, little-endian.
struct StreamRecord {
  uint64_t number = 0;  // key prefix in stream_index
  uint64_t head_version = 0;
  uint64_t head_position = 0;
  bool deleted = false;
  StreamMetadata metadata;

  static constexpr size_t kBytes = 8 * 3 + 1 + 8 * 3;
  std::string Encode() const;
  void EncodeTo(char out[kBytes]) const;  // no allocation: the indexer's hot path
  static bool Decode(std::string_view b, StreamRecord* out);
};

// Value of `commands` (key: request id).
struct RequestRecord {
  uint64_t hash = 0;
  AppendResult outcome;
  std::string Encode() const;
  void EncodeTo(std::string* out) const;  // replaces *out, keeping its buffer
  static bool Decode(std::string_view key, std::string_view b, RequestRecord* out);
};

// Keys of the index environment's `indexed` database, read by the open path
// and written by the indexer: one definition so they cannot drift apart.
inline constexpr char kIndexedKey[] = "position";       // u64 BE: complete through
inline constexpr char kNextStreamKey[] = "next_stream";  // u64 BE: next stream number
inline constexpr char kIndexFormatKey[] = "format";      // decimal text: kIndexFormat (stream_index_run.h)

uint64_t Fnv1a64(std::string_view s, uint64_t h = 1469598103934665603ull);
uint64_t HashRequest(const AppendRequest& r);

// Memory for a buffer that may grow to many megabytes (std::bad_alloc when
// there is none), released with std::free (LargeBufferFree). From 2 MB up it
// is aligned to and advised onto transparent huge pages where the kernel has
// them: touching a fresh 4 KB page cost the log writer ~5 us on the test VM,
// so a ring growing to 16 MB paid thousands of faults instead of eight.
void* AllocateLargeBuffer(size_t bytes);
struct LargeBufferFree {
  void operator()(void* p) const { std::free(p); }
};

struct WriterHead;
// One stream's part of the UnindexedTail (below).
struct UnindexedTailStream {
    // (version, position), ascending. A vector consumed from the front: most
    // tail streams hold a few entries, and a deque's 512-byte chunk per
    // stream cost more than the events.
    struct Entries {
      std::vector<std::pair<uint64_t, uint64_t>> v;
      size_t head = 0;
      bool empty() const { return head == v.size(); }
      const std::pair<uint64_t, uint64_t>& front() const { return v[head]; }
      const std::pair<uint64_t, uint64_t>& back() const { return v.back(); }
      void emplace_back(uint64_t version, uint64_t position) {
        // Full with consumed entries in front: move the live ones down rather
        // than grow. Growing kept up to 64 dead entries per stream and
        // re-allocated (and page-faulted) every list as a stream's events
        // came and went: a quarter of the log writer's page faults.
        if (head > 0 && v.size() == v.capacity()) {
          v.erase(v.begin(), v.begin() + head);
          head = 0;
        }
        v.emplace_back(version, position);
      }
      void pop_front() {
        if (++head == v.size()) {
          v.clear();
          head = 0;
        } else if (head >= 64 && head * 2 >= v.size()) {
          v.erase(v.begin(), v.begin() + head);
          head = 0;
        }
      }
      auto begin() const { return v.begin() + head; }
      auto end() const { return v.end(); }
    } entries;
    std::optional<bool> deleted;
    std::optional<StreamMetadata> metadata;
    WriterHead* writer = nullptr;  // the writer's cache entry pointing here
    // Nothing the index does not hold: kept only while the writer links it.
    bool Empty() const { return entries.empty() && !deleted && !metadata; }
    // The indexer's own: this stream's place in the batch it is building
    // (valid while index_batch is that batch's number), so grouping a batch
    // from the tail hashes each stream's name once, not each event's. Only
    // the indexer thread reads or writes these, without the lock.
    uint64_t index_batch = 0;
    uint32_t index_slot = 0;
};

// The writer's own knowledge of a stream head, kept across batches so the hot
// path does not consult the tail and the index for every request (measured:
// that lookup was a quarter of the writer's time). `version`/`position`/
// `deleted` are committed values; the work_* copy belongs to the transaction
// being written (valid while work_attempt is the current attempt), so a
// rolled-back or retried transaction never leaves a trace.
// (The flags sit together at the end: 64 bytes, one cache line.)
struct WriterHead {
  uint64_t version = 0, position = 0;
  uint64_t load_attempt = 0;  // listed for loading by this attempt
  uint64_t work_attempt = 0;
  uint64_t work_version = 0, work_position = 0;
  // This stream's entry in the tail, so recording a commit needs no hash
  // lookup. Read and written only under the tail's mu; the tail clears it
  // before erasing the entry (UnindexedTail::Stream::writer points back).
  std::pair<const std::string, struct UnindexedTailStream>* tail = nullptr;
  bool deleted = false;
  bool loaded = false;  // false: not yet read from the tail and the index
  bool work_deleted = false;
};

// Events after the index's high-water mark, so reads and version checks never
// miss an acknowledged event. Guarded by mu; see StreamHeads() for the order
// of locking against index read transactions.
struct UnindexedTail {
  using Stream = UnindexedTailStream;
  using StreamMap = std::unordered_map<std::string, Stream>;
  struct Ref {
    uint64_t position;
    // The stream's entry in `streams`: it outlives the Ref, because a stream
    // is erased only once its entries are empty, i.e. all its Refs trimmed.
    // (A pointer, not the name: trimming then needs no hash lookup per event.)
    StreamMap::value_type* stream;
  };

  std::mutex mu;
  uint64_t indexed = 0;    // the index is complete through this position
  uint64_t known_end = 0;  // last log position this process has seen
  // Counts log entries that reached this process other than through its own
  // writer's AddLocked (other processes' appends, a reset, an indexer that ran
  // ahead): the writer drops its head cache when this moves.
  uint64_t foreign_events = 0;
  StreamMap streams;
  std::unordered_map<std::string, RequestRecord> requests;
  // The events that carry a request id, in log order, so trimming finds the
  // ids to forget; kept apart from `order` so a Ref stays two words.
  std::deque<std::pair<uint64_t, std::string>> request_order;
  // A ring that keeps its buffer: a std::deque freed and re-allocated its
  // chunks with every index batch (one malloc per ~10 events, and page faults
  // as the heap top shrank and grew again). Holds at most the tail's peak.
  // Refs are trivial: growing copies bytes, and a new buffer is not written
  // (so not faulted in) until it is used.
  class RefRing {
   public:
    bool empty() const { return count_ == 0; }
    size_t size() const { return count_; }
    Ref& front() { return buf_[head_]; }
    const Ref& at(size_t i) const { return buf_[(head_ + i) & (capacity_ - 1)]; }  // i < size()
    void push_back(Ref r) {
      if (count_ == capacity_) Grow();
      buf_[(head_ + count_) & (capacity_ - 1)] = r;
      ++count_;
    }
    void pop_front() {
      head_ = (head_ + 1) & (capacity_ - 1);
      --count_;
    }
    void clear() {
      buf_.reset();
      capacity_ = head_ = count_ = 0;
    }

   private:
    void Grow() {
      size_t bigger = capacity_ ? capacity_ * 2 : 1024;  // a power of two
      std::unique_ptr<Ref[], LargeBufferFree> b(static_cast<Ref*>(AllocateLargeBuffer(bigger * sizeof(Ref))));
      for (size_t i = 0; i < count_; ++i) b[i] = buf_[(head_ + i) & (capacity_ - 1)];
      buf_ = std::move(b);
      capacity_ = bigger;
      head_ = 0;
    }
    static_assert(std::is_trivially_copyable_v<Ref> && std::is_trivially_default_constructible_v<Ref>);
    std::unique_ptr<Ref[], LargeBufferFree> buf_;
    size_t capacity_ = 0, head_ = 0, count_ = 0;
  };
  RefRing order;

  // Records one committed event (caller holds mu). Consecutive events with
  // one request id extend that request's outcome.
  void AddLocked(const RecordView& v, bool own_writer = false, WriterHead* head = nullptr);
  // AddLocked(v, true, head) for an event of this process's writer whose
  // stream is linked to its head (head->tail == stream), is no "$$" stream and
  // carries no request id: all it needs is the positions.
  void AddLinkedLocked(StreamMap::value_type* stream, uint64_t version, uint64_t position) {
    if (position <= known_end) return;  // already seen (catch-up races)
    known_end = position;
    stream->second.entries.emplace_back(version, position);
    order.push_back(Ref{position, stream});
  }
  // Forgets every WriterHead <-> entry link (caller holds mu).
  void UnlinkWriterLocked();
  // Drops at most max_events entries at or below `position` (caller holds
  // mu); true if more remain to drop.
  bool TrimLocked(uint64_t position, size_t max_events = SIZE_MAX);
  size_t size() const { return order.size(); }
};

}  // namespace rill
