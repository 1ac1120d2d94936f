// The log as the group-commit writer sees it: a narrow seam, so that a
// replicated log (the cluster's NATS JetStream partition) can stand where
// LMDB's log/ stands today (LmdbLog, lmdb_log.h) without the writer, the
// tail or the indexer changing.
//
// The log is a sequence of encoded records (record.h) at positions 1, 2, 3,
// ... without gaps. One Append call is one atomic batch: every record it
// reserves becomes visible and durable together (as the backend's durability
// says), or none does. Other processes may append between two batches, which
// is why a batch first reads what it has not seen.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "store/status.h"

namespace rill {

// Reads of one consistent view of the log (a read transaction, or the
// write transaction of a batch: then it sees the log as the batch finds it).
class LogReader {
 public:
  virtual ~LogReader() = default;
  // The last position (0: an empty log). Errors: the backend's read errors;
  // Corruption for a key that is no position.
  virtual Result<uint64_t> LastPosition() = 0;
  // The record at `position`; NotFound if there is none.
  virtual Result<std::string_view> Get(uint64_t position) = 0;
  // Calls fn for each record from `from` through `through`, in order, and
  // stops at the first error fn returns. The views are valid during the call.
  virtual Status Scan(uint64_t from, uint64_t through,
                      const std::function<Status(uint64_t position, std::string_view record)>& fn) = 0;
};

// The write side of one batch.
class LogAppender : public LogReader {
 public:
  // `bytes` of room for the record at `position`, which must be the one after
  // the last (LastPosition() + 1, then each next): the caller encodes the
  // record there before the next call. Errors: the backend's (a full map is
  // grown and the batch retried by Append itself).
  virtual Result<char*> Reserve(uint64_t position, size_t bytes) = 0;
};

class LogBackend {
 public:
  virtual ~LogBackend() = default;
  // Runs fill on a fresh batch and commits what it reserved if it returns
  // OK, else discards it and returns its error. fill may run more than once
  // (a backend may retry a batch, as LMDB does after growing its map), so
  // it must start from scratch each time. Errors: fill's; the commit's
  // (IOError; see last_commit_failed_hard).
  virtual Status Append(const std::function<Status(LogAppender&)>& fill) = 0;
  // The last commit failed in a way that retrying cannot be trusted to heal
  // (a failed fsync may have dropped pages): the writer must stop.
  virtual bool last_commit_failed_hard() const = 0;
};

}  // namespace rill
