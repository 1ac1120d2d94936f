#include "store/limits.h"

#include <fmt/format.h>

namespace rill {

Status CheckEventSize(const NewEvent& e, size_t max_event_bytes) {
  size_t bytes = EventSizeBytes(e);
  if (bytes <= max_event_bytes) return Status::OK();
  return Status::InvalidArgument(fmt::format("event too large: {} bytes of data, meta and type (the limit is {} bytes)",
                                             bytes, max_event_bytes));
}

RequestIdFault FindRequestIdFault(std::string_view id) {
  if (id.empty()) return RequestIdFault::kEmpty;
  if (id.size() > kMaxRequestIdBytes) return RequestIdFault::kTooLong;
  if (!IsValidUtf8(id)) return RequestIdFault::kNotUtf8;
  for (unsigned char c : id)
    if (c < 0x20 || c == 0x7f) return RequestIdFault::kControlCharacter;
  return RequestIdFault::kNone;
}

Status ValidateRequestId(std::string_view id, std::string_view what) {
  switch (FindRequestIdFault(id)) {
    case RequestIdFault::kNone: return Status::OK();
    case RequestIdFault::kEmpty: return Status::InvalidArgument(fmt::format("{} must not be empty", what));
    case RequestIdFault::kTooLong:
      return Status::InvalidArgument(
          fmt::format("{} is too long: {} bytes (at most {})", what, id.size(), kMaxRequestIdBytes));
    case RequestIdFault::kNotUtf8: return Status::InvalidArgument(fmt::format("{} is not valid UTF-8", what));
    case RequestIdFault::kControlCharacter:
      return Status::InvalidArgument(fmt::format("{} contains a control character", what));
  }
  return Status::OK();
}

}  // namespace rill
