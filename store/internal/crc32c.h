// CRC32C (Castagnoli), the checksum of every log record: LMDB has no page
// checksums, so rill brings its own. Uses SSE4.2 when the CPU has it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rill {
uint32_t Crc32c(const void* data, size_t n, uint32_t crc = 0);
// The same function by table lookups only, whatever the CPU: what the tests
// hold the fast path to.
uint32_t Crc32cPortable(const void* data, size_t n, uint32_t crc = 0);
}
