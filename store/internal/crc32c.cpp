#include "store/internal/crc32c.h"

#include <array>
#include <cstring>

namespace rill {
namespace {

constexpr uint32_t kPoly = 0x82F63B78;  // reflected Castagnoli polynomial

constexpr std::array<uint32_t, 256> MakeTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kTable = MakeTable();

uint32_t Software(const uint8_t* p, size_t n, uint32_t crc) {
  while (n--) crc = kTable[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
// The CRC instruction takes 3 cycles and one can start every cycle, so one
// chain of them runs at a third of the speed the CPU has. Hardware() runs
// three chains over three adjacent blocks of kBlock bytes and joins them: a
// CRC is linear, so crc(A B) = crc(A) shifted over |B| zero bytes, xor crc(B),
// and the shift over kBlock bytes is a GF(2) matrix applied through four table
// lookups (Mark Adler's crc32c.c). Log records are ~200 bytes: the writer
// computes one per event and the indexer checks it again.
constexpr size_t kBlock = 64;

// Over GF(2): mat (32 columns) times vec.
constexpr uint32_t MatrixTimes(const std::array<uint32_t, 32>& mat, uint32_t vec) {
  uint32_t sum = 0;
  for (int i = 0; vec; vec >>= 1, ++i)
    if (vec & 1) sum ^= mat[i];
  return sum;
}
constexpr std::array<uint32_t, 32> MatrixSquare(const std::array<uint32_t, 32>& mat) {
  std::array<uint32_t, 32> sq{};
  for (int i = 0; i < 32; ++i) sq[i] = MatrixTimes(mat, mat[i]);
  return sq;
}
// kShift[k][b]: byte k of a CRC register equal to b, advanced over kBlock
// zero bytes.
using ShiftTable = std::array<std::array<uint32_t, 256>, 4>;
constexpr ShiftTable MakeShift() {
  std::array<uint32_t, 32> op{};  // one zero bit
  op[0] = kPoly;
  for (int i = 1; i < 32; ++i) op[i] = uint32_t{1} << (i - 1);
  for (size_t bits = 1; bits < kBlock * 8; bits *= 2) op = MatrixSquare(op);  // kBlock*8 is a power of two
  ShiftTable t{};
  for (uint32_t b = 0; b < 256; ++b)
    for (int k = 0; k < 4; ++k) t[k][b] = MatrixTimes(op, b << (8 * k));
  return t;
}
constexpr ShiftTable kShift = MakeShift();
static_assert((kBlock & (kBlock - 1)) == 0 && kBlock % 8 == 0);

uint32_t Shift(uint32_t crc) {
  return kShift[0][crc & 0xFF] ^ kShift[1][(crc >> 8) & 0xFF] ^ kShift[2][(crc >> 16) & 0xFF] ^ kShift[3][crc >> 24];
}

inline uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

__attribute__((target("sse4.2"))) uint32_t Hardware(const uint8_t* p, size_t n, uint32_t crc) {
  uint64_t c0 = crc;
  while (n >= 3 * kBlock) {
    uint64_t c1 = 0, c2 = 0;
    for (const uint8_t* end = p + kBlock; p < end; p += 8) {
      c0 = __builtin_ia32_crc32di(c0, Load64(p));
      c1 = __builtin_ia32_crc32di(c1, Load64(p + kBlock));
      c2 = __builtin_ia32_crc32di(c2, Load64(p + 2 * kBlock));
    }
    c0 = Shift(static_cast<uint32_t>(c0)) ^ static_cast<uint32_t>(c1);
    c0 = Shift(static_cast<uint32_t>(c0)) ^ static_cast<uint32_t>(c2);
    p += 2 * kBlock;
    n -= 3 * kBlock;
  }
  while (n >= 8) {
    c0 = __builtin_ia32_crc32di(c0, Load64(p));
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c0);
  while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return c32;
}
const bool kHaveSse42 = __builtin_cpu_supports("sse4.2");
#endif

}  // namespace

uint32_t Crc32c(const void* data, size_t n, uint32_t crc) {
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
#if defined(__x86_64__)
  if (kHaveSse42) return ~Hardware(p, n, crc);
#endif
  return ~Software(p, n, crc);
}

uint32_t Crc32cPortable(const void* data, size_t n, uint32_t crc) {
  return ~Software(static_cast<const uint8_t*>(data), n, ~crc);
}

}  // namespace rill
