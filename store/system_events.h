// The system events: what DeleteStream and SetStreamMetadata write to the
// "$$<stream>" stream of their target (the tombstone and the metadata of
// "account-1" live in "$$account-1"). They are events of the log like any
// other, so that they survive an index rebuild and travel in an export; a
// tool that replays an export (rill import) recognises them by these names
// and reads their data with the store's own parser.
#pragma once

#include <string>
#include <string_view>

#include "store/event.h"
#include "store/status.h"

namespace rill {

inline constexpr const char* kDeleteType = "$delete";
inline constexpr const char* kMetadataType = "$metadata";
bool IsMetaStream(std::string_view s);            // "$$x"
std::string_view MetaTarget(std::string_view s);  // "$$x" -> "x"

// The data of a $metadata event: {"max-count":N,"max-age":SECONDS,
// "truncate-before":V}, each optional.
std::string MetadataToJson(const StreamMetadata& m);

enum class MetadataParsing {
  // How the store applies metadata it has stored: only a text that is not a
  // JSON object fails; a field that is unknown or of the wrong type is
  // ignored, and of a field given twice the first counts.
  kLenient,
  // What a store accepts from outside (import): every field known and in
  // range, or InvalidArgument naming the first that is not.
  kStrict,
};
// InvalidArgument "$metadata data must be a JSON object" (then *out is
// unchanged) or, strict, "$metadata field \"F\" is unknown or out of range".
Status ParseStreamMetadata(std::string_view json, StreamMetadata* out,
                           MetadataParsing parsing = MetadataParsing::kLenient);

}  // namespace rill
