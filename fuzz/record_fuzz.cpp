// libFuzzer target: the event record decoder (store/record.*), the code that
// reads every stored event. Promise: damaged bytes are refused with a Status,
// never read out of bounds; with the CRC check off (so the fuzzer reaches
// the length checks) a record that decodes re-encodes to a record that
// decodes to the same event.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "store/internal/record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);  // exact size: ASan sees overreads
  rill::RecordView v;
  (void)rill::DecodeRecord(bytes, &v, /*verify_crc=*/true);
  if (!rill::DecodeRecord(bytes, &v, /*verify_crc=*/false).ok()) return 0;
  rill::Event e = rill::ToEvent(v);
  std::string again;
  rill::EncodeEvent(e, v.request_hash, &again);
  rill::RecordView w;
  if (!rill::DecodeRecord(again, &w, /*verify_crc=*/true).ok()) std::abort();
  if (w.stream != v.stream || w.type != v.type || w.data != v.data || w.meta != v.meta || w.version != v.version ||
      w.position != v.position || w.schema != v.schema)
    std::abort();
  return 0;
}
