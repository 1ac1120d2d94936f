#include "store/internal/record.h"

#include <fmt/format.h>

#include <cstring>

#include "store/internal/crc32c.h"

namespace rill {
namespace {

template <class T>
void Put(char* p, T v) {
  std::memcpy(p, &v, sizeof v);  // x86-64 and aarch64 are little-endian
}
template <class T>
T Get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

void EncodeTo(char* p, uint64_t position, uint64_t version, std::string_view stream, std::string_view type,
              uint32_t schema, const Uuid& id, int64_t time_us, std::string_view request_id, uint64_t request_hash,
              std::string_view meta, std::string_view data) {
  size_t total = kRecordHeaderBytes + stream.size() + type.size() + request_id.size() + meta.size() + data.size();
  p[4] = 1;
  p[5] = 0;
  Put<uint16_t>(p + 6, static_cast<uint16_t>(type.size()));
  Put<uint64_t>(p + 8, position);
  Put<uint64_t>(p + 16, version);
  Put<int64_t>(p + 24, time_us);
  Put<uint64_t>(p + 32, request_hash);
  Put<uint32_t>(p + 40, schema);
  Put<uint16_t>(p + 44, static_cast<uint16_t>(stream.size()));
  Put<uint16_t>(p + 46, static_cast<uint16_t>(request_id.size()));
  std::memcpy(p + 48, id.bytes.data(), 16);
  Put<uint32_t>(p + 64, static_cast<uint32_t>(meta.size()));
  Put<uint32_t>(p + 68, static_cast<uint32_t>(data.size()));
  char* q = p + kRecordHeaderBytes;
  for (std::string_view part : {stream, type, request_id, meta, data}) {
    std::memcpy(q, part.data(), part.size());
    q += part.size();
  }
  Put<uint32_t>(p, Crc32c(p + 4, total - 4));
}

void Encode(uint64_t position, uint64_t version, std::string_view stream, std::string_view type, uint32_t schema,
            const Uuid& id, int64_t time_us, std::string_view request_id, uint64_t request_hash,
            std::string_view meta, std::string_view data, std::string* out) {
  size_t start = out->size();
  out->resize(start + kRecordHeaderBytes + stream.size() + type.size() + request_id.size() + meta.size() + data.size());
  EncodeTo(out->data() + start, position, version, stream, type, schema, id, time_us, request_id, request_hash, meta,
           data);
}

}  // namespace

void EncodeRecordTo(char* dst, uint64_t position, uint64_t version, const std::string& stream, const NewEvent& e,
                    const Uuid& id, int64_t time_us, const std::string& request_id, uint64_t request_hash) {
  EncodeTo(dst, position, version, stream, e.type, e.schema, id, time_us, request_id, request_hash, e.meta, e.data);
}

void EncodeRecord(uint64_t position, uint64_t version, const std::string& stream, const NewEvent& e,
                  const Uuid& id, int64_t time_us, const std::string& request_id, uint64_t request_hash,
                  std::string* out) {
  Encode(position, version, stream, e.type, e.schema, id, time_us, request_id, request_hash, e.meta, e.data, out);
}

void EncodeEvent(const Event& e, uint64_t request_hash, std::string* out) {
  Encode(e.position, e.version, e.stream, e.type, e.schema, e.id, e.time_us, e.request_id, request_hash, e.meta,
         e.data, out);
}

Status DecodeRecord(std::string_view b, RecordView* v, bool verify_crc) {
  if (b.size() < kRecordHeaderBytes)
    return Status::Corruption(fmt::format("record of {} bytes is shorter than its header", b.size()));
  const char* p = b.data();
  if (p[4] != 1) return Status::Corruption(fmt::format("record format {} is unknown", int(p[4])));
  size_t type_len = Get<uint16_t>(p + 6), stream_len = Get<uint16_t>(p + 44), req_len = Get<uint16_t>(p + 46);
  size_t meta_len = Get<uint32_t>(p + 64), data_len = Get<uint32_t>(p + 68);
  size_t total = kRecordHeaderBytes + type_len + stream_len + req_len + meta_len + data_len;
  v->position = Get<uint64_t>(p + 8);
  if (total != b.size())
    return Status::Corruption(fmt::format("record at position {} has length fields for {} bytes but holds {}",
                                          v->position, total, b.size()));
  if (verify_crc) {
    uint32_t want = Get<uint32_t>(p), got = Crc32c(p + 4, b.size() - 4);
    if (want != got)
      return Status::Corruption(
          fmt::format("record at position {} fails its CRC32C (stored {:08x}, computed {:08x})", v->position, want, got));
  }
  v->version = Get<uint64_t>(p + 16);
  v->time_us = Get<int64_t>(p + 24);
  v->request_hash = Get<uint64_t>(p + 32);
  v->schema = Get<uint32_t>(p + 40);
  std::memcpy(v->id.bytes.data(), p + 48, 16);
  const char* q = p + kRecordHeaderBytes;
  v->stream = {q, stream_len};
  q += stream_len;
  v->type = {q, type_len};
  q += type_len;
  v->request_id = {q, req_len};
  q += req_len;
  v->meta = {q, meta_len};
  q += meta_len;
  v->data = {q, data_len};
  return Status::OK();
}

Event ToEvent(const RecordView& v) {
  Event e;
  e.position = v.position;
  e.stream = v.stream;
  e.version = v.version;
  e.type = v.type;
  e.schema = v.schema;
  e.id = v.id;
  e.time_us = v.time_us;
  e.request_id = v.request_id;
  e.request_hash = v.request_hash;
  e.data = v.data;
  e.meta = v.meta;
  return e;
}

}  // namespace rill
