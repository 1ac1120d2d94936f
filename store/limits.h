// The sizes and forms the store accepts in an append, in one place: the store
// enforces them (EventStore::Append), and callers that check input before
// the store sees it (the CLI's bulk commands refuse a bad file before
// writing any of it) ask here instead of keeping their own copy.
#pragma once

#include <cstddef>
#include <string_view>

#include "store/event.h"
#include "store/status.h"

namespace rill {

// StoreOptions::max_event_bytes of a store opened with default options: the
// most one event may hold.
inline constexpr size_t kDefaultMaxEventBytes = 16u << 20;

// What the event limit counts: data + meta + type.
inline size_t EventSizeBytes(const NewEvent& e) { return e.data.size() + e.meta.size() + e.type.size(); }
inline size_t EventSizeBytes(const Event& e) { return e.data.size() + e.meta.size() + e.type.size(); }

// InvalidArgument "event too large: ..." when `e` is over `max_event_bytes`.
Status CheckEventSize(const NewEvent& e, size_t max_event_bytes = kDefaultMaxEventBytes);

// Request ids (append and command ids) are keys of the commands index in
// LMDB: 1..kMaxRequestIdBytes bytes of UTF-8 without control characters.
inline constexpr size_t kMaxRequestIdBytes = 200;

// Why `id` is not a request id (kNone: it is one).
enum class RequestIdFault { kNone, kEmpty, kTooLong, kNotUtf8, kControlCharacter };
RequestIdFault FindRequestIdFault(std::string_view id);

// InvalidArgument naming `what` ("--id", "\"id\"") unless `id` is a request
// id. "" is not one: the store reads an empty request id as "none", so a
// caller that was given an id must refuse an empty one rather than drop it.
Status ValidateRequestId(std::string_view id, std::string_view what);

}  // namespace rill
