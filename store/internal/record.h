// The binary form of one event in the `log` database (private to store/).
//
//   0  u32 crc32c of bytes [4, end)
//   4  u8  record format (1)       5  u8 flags (0)     6  u16 type length
//   8  u64 position               16  u64 version
//  24  i64 time (us, UTC)         32  u64 request hash
//  40  u32 schema                 44  u16 stream length   46 u16 request-id length
//  48  16 bytes event id          64  u32 meta length     68 u32 data length
//  72  stream, type, request id, meta, data
// Little-endian. The position is repeated inside the record so `check` can
// tell a record stored under the wrong key from a good one.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "store/event.h"
#include "store/limits.h"
#include "store/status.h"

namespace rill {

inline constexpr size_t kRecordHeaderBytes = 72;

struct RecordView {
  uint64_t position, version, request_hash;
  int64_t time_us;
  uint32_t schema;
  Uuid id;
  std::string_view stream, type, request_id, meta, data;
};

inline size_t EncodedRecordSize(const std::string& stream, const NewEvent& e, const std::string& request_id) {
  return kRecordHeaderBytes + stream.size() + e.type.size() + request_id.size() + e.meta.size() + e.data.size();
}
// Appends the record to *out.
void EncodeRecord(uint64_t position, uint64_t version, const std::string& stream, const NewEvent& e,
                  const Uuid& id, int64_t time_us, const std::string& request_id, uint64_t request_hash,
                  std::string* out);
// Writes the record into dst, which has EncodedRecordSize bytes (the writer
// encodes straight into LMDB's page with MDB_RESERVE).
void EncodeRecordTo(char* dst, uint64_t position, uint64_t version, const std::string& stream, const NewEvent& e,
                    const Uuid& id, int64_t time_us, const std::string& request_id, uint64_t request_hash);
// Re-encodes a decoded event (RewriteEvents).
void EncodeEvent(const Event& e, uint64_t request_hash, std::string* out);
// Verifies length fields and CRC. Views point into `bytes`.
Status DecodeRecord(std::string_view bytes, RecordView* out, bool verify_crc = true);
Event ToEvent(const RecordView& v);

}  // namespace rill
