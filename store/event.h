// The value types of the event store: events as read, events to append, the
// expected-version rule, stream heads and their metadata. Plain structs; the
// binary record format lives in store/internal/record.h and is private to store/.
//
// Thread safety: the functions here are pure or use per-thread state
// (Uuid::Generate); any may be called from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/status.h"

namespace rill {

// A 128-bit UUID. Generated ids are random (version 4).
struct Uuid {
  std::array<uint8_t, 16> bytes{};
  // Unique, not unpredictable: a per-thread statistical generator seeded
  // from std::random_device. Never use one as a secret.
  static Uuid Generate();
  // Accepts the canonical 8-4-4-4-12 hex form, either case; nullopt for
  // anything else (no braces, no urn: prefix).
  static std::optional<Uuid> Parse(std::string_view text);
  std::string ToString() const;  // lower-case canonical form
  bool IsNil() const;
  bool operator==(const Uuid&) const = default;
};

// Microseconds since the Unix epoch, UTC, from Env::Default(), never a
// test's Env: code that a test clock must reach calls its Env instead.
int64_t NowMicros();
// UTC, always six fraction digits: "YYYY-MM-DDTHH:MM:SS.ffffffZ".
std::string FormatTime(int64_t micros);
// Parses the form FormatTime writes, also with ' ' for 'T', without the
// fraction or with fewer (or more: cut to six) digits. nullopt when the
// shape or a field's range is wrong; a day past its month's end (02-30) is
// not refused but rolls over into the next month (timegm).
std::optional<int64_t> ParseTime(std::string_view text);

// Stream names: UTF-8, no control characters, 1..kMaxStreamNameBytes bytes.
// LMDB keys are limited to 511 bytes; 400 leaves room for key prefixes.
inline constexpr size_t kMaxStreamNameBytes = 400;
// Event type names: same rules, shorter, and no spaces (a projection names
// a type as "-- on TYPE").
inline constexpr size_t kMaxTypeNameBytes = 200;
// Names starting with '$' belong to the system ("$$account-1" holds the
// metadata and tombstone of "account-1"). Users may not append to them.
// InvalidArgument (the only error) naming what is wrong: empty, too long,
// not UTF-8, a control character, a leading '$' unless allow_system.
Status ValidateStreamName(std::string_view name, bool allow_system = false);
// The same rules with kMaxTypeNameBytes, and InvalidArgument for a space.
// A leading '$' passes here: the store refuses it in an append.
Status ValidateTypeName(std::string_view name);
// Strict UTF-8: no overlong forms, surrogates or code points past U+10FFFF.
bool IsValidUtf8(std::string_view s);
// "account-42" -> "account"; a name without '-' is its own category.
std::string_view CategoryOf(std::string_view stream);
// "account-42" -> "42"; "" when there is no '-'.
std::string_view StreamIdOf(std::string_view stream);

// One stored event, as read. data and meta are JSON object texts.
struct Event {
  uint64_t position = 0;  // global, 1..n, no gaps
  std::string stream;
  uint64_t version = 0;   // per stream, 1..n, no gaps
  std::string type;
  uint32_t schema = 1;
  Uuid id;
  int64_t time_us = 0;
  std::string request_id;  // the append/command id that wrote it, "" if none
  // The fingerprint its append's dedupe compares (AppendRequest::request_hash;
  // 0 without a request id). Export carries it so an imported copy answers a
  // retry of the same request as a duplicate, not as a reused id.
  uint64_t request_hash = 0;
  std::string data = "{}";
  std::string meta = "{}";
  // Set only by reads through StoreOptions::read_expand, when one stored
  // event is read as several (an upcaster's split): every part keeps the
  // stored event's position, version, time and request id, and carries its
  // index 0..parts-1. A stored event read as itself is part 0 of 1.
  uint32_t part = 0;
  uint32_t parts = 1;
};

// An event to append. The store treats data and meta as opaque bytes that
// callers promise are JSON object texts (the CLI and core validate them).
struct NewEvent {
  std::string type;
  std::string data = "{}";
  std::string meta = "{}";
  uint32_t schema = 1;
  std::optional<Uuid> id;         // generated when absent
  std::optional<int64_t> time_us; // now when absent (import keeps originals)
};

// EventStoreDB's expected-version rules.
struct ExpectedVersion {
  enum Kind { kAny, kNoStream, kExists, kExact };
  Kind kind = kAny;
  uint64_t version = 0;  // for kExact; 0 means "the stream is empty"

  static ExpectedVersion Any() { return {kAny, 0}; }
  static ExpectedVersion NoStream() { return {kNoStream, 0}; }
  static ExpectedVersion Exists() { return {kExists, 0}; }
  static ExpectedVersion Exact(uint64_t v) { return {kExact, v}; }
  // "any" | "no-stream" | "exists" | a non-negative integer (decimal, no
  // sign). InvalidArgument for anything else.
  static Result<ExpectedVersion> Parse(std::string_view text);
  std::string ToString() const;
  bool operator==(const ExpectedVersion&) const = default;
};

struct AppendRequest {
  std::string stream;
  ExpectedVersion expected;
  std::vector<NewEvent> events;  // at least one
  // Idempotency key ("command id"). Empty: no dedupe. The same id again
  // returns the first outcome and writes nothing; the same id with a
  // different request (by request_hash) is a conflict. Held forever.
  std::string request_id;
  // Fingerprint of the request for the dedupe comparison. 0: the store
  // computes one from stream, expected version and each event's type,
  // schema, data and meta. The actor core passes a hash of the command.
  uint64_t request_hash = 0;
  // Pipelining (optional). Requests that carry the same flag were each
  // decided on the outcome of the ones queued before them (the actor core
  // hands over a command's events before the previous command's are durable).
  // The writer sets the flag when one of them is not written as sent (it
  // failed, or an earlier request with its id answered it), and fails every
  // later one that carries the flag (Conflict), even if its expected version
  // happens to match what another process wrote meanwhile. The caller keeps
  // the flag alive until `done` has run for every request that carries it.
  std::atomic<bool>* pipeline_failed = nullptr;
};

struct AppendResult {
  std::string stream;
  uint64_t first_version = 0;
  uint64_t last_version = 0;
  uint64_t first_position = 0;
  uint64_t last_position = 0;
  uint64_t events = 0;
  bool duplicate = false;  // true: an earlier append with this id answered
};

// Metadata honoured by reads (EventStoreDB's names). 0 means "not set".
struct StreamMetadata {
  uint64_t max_count = 0;        // only the newest N events are visible
  int64_t max_age_us = 0;        // events older than this are invisible
  uint64_t truncate_before = 0;  // versions below this are invisible
  bool operator==(const StreamMetadata&) const = default;
};

struct StreamInfo {
  std::string name;
  uint64_t head_version = 0;   // 0: no events
  uint64_t head_position = 0;
  bool deleted = false;        // tombstoned: reads say not found, appends conflict
  StreamMetadata metadata;
};

enum class Direction { kForward, kBackward };

}  // namespace rill
