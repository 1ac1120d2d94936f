// The stream-index run format: how index/'s `stream_index` database maps a
// stream's versions to log positions. One codec, read by the stream reads,
// written by the StreamIndexer and verified by the checker, so the three
// cannot drift apart (the record codec beside it is record.h).
//
//   key   (16 bytes): stream number u64 BE | first version u64 BE
//   value (8 * n):    the log positions (u64 BE) of versions first .. first+n-1
//
// Big-endian keys sort by stream, then version, so a stream's runs are
// adjacent and in order. The indexer extends a stream's last run until it
// holds kMaxEvents, so a batch costs one B-tree write per stream it touches,
// not one per event, and an event costs 8 bytes of index instead of ~34 (key,
// node header, pointer). 64 positions keep a full run's node (~540 bytes) at
// a seventh of a page: runs of busy streams pack densely, and extending one
// moves little.
#pragma once

#include <cstddef>
#include <cstdint>

#include "store/internal/lmdb_env.h"  // PutBigEndian64, GetBigEndian64

namespace rill {

// The layout of index/, stored under kIndexFormatKey in `indexed`. The index
// is derived, so an index of another format is not an error: the store throws
// it away and rebuilds it from the log at open. 1 (no mark): one position per
// stream_index key. 2: runs; a format-1 index is a format-2 one with runs of
// one, so it is marked and kept.
inline constexpr char kIndexFormat[] = "2";

struct StreamIndexRun {
  static constexpr size_t kKeyBytes = 16;
  static constexpr size_t kNumberOffset = 0;
  static constexpr size_t kFirstVersionOffset = 8;
  static constexpr size_t kPositionBytes = 8;
  static constexpr uint32_t kMaxEvents = 64;
  static constexpr size_t kMaxValueBytes = kMaxEvents * kPositionBytes;

  static void EncodeKey(char out[kKeyBytes], uint64_t number, uint64_t first_version) {
    PutBigEndian64(out + kNumberOffset, number);
    PutBigEndian64(out + kFirstVersionOffset, first_version);
  }
  static void SetFirstVersion(char key[kKeyBytes], uint64_t first_version) {
    PutBigEndian64(key + kFirstVersionOffset, first_version);
  }
  static bool IsKey(size_t bytes) { return bytes == kKeyBytes; }
  static uint64_t Number(const void* key) { return GetBigEndian64(static_cast<const char*>(key) + kNumberOffset); }
  static uint64_t FirstVersion(const void* key) {
    return GetBigEndian64(static_cast<const char*>(key) + kFirstVersionOffset);
  }

  // A value as the checker accepts it: one to kMaxEvents whole positions.
  static bool IsValue(size_t bytes) { return bytes > 0 && bytes % kPositionBytes == 0 && bytes <= kMaxValueBytes; }
  static uint32_t Count(size_t value_bytes) { return static_cast<uint32_t>(value_bytes / kPositionBytes); }
  static uint64_t Position(const void* value, size_t i) {
    return GetBigEndian64(static_cast<const char*>(value) + i * kPositionBytes);
  }
  static void PutPosition(char* value, size_t i, uint64_t position) {
    PutBigEndian64(value + i * kPositionBytes, position);
  }
};

}  // namespace rill
