// The CRC32C of log records: the fast path (three interleaved CRC chains on
// SSE4.2) must equal the plain table-driven function for every length and
// alignment, or `check` would call good records damaged.
#include <boost/test/unit_test.hpp>

#include <random>
#include <string>
#include <vector>

#include "store/internal/crc32c.h"

using namespace rill;

BOOST_AUTO_TEST_SUITE(crc32c)

BOOST_AUTO_TEST_CASE(known_value) {
  const std::string s = "123456789";
  BOOST_TEST(Crc32c(s.data(), s.size()) == 0xE3069283u);  // the standard check value
  BOOST_TEST(Crc32cPortable(s.data(), s.size()) == 0xE3069283u);
  BOOST_TEST(Crc32c(s.data(), 0) == 0u);
}

BOOST_AUTO_TEST_CASE(fast_path_equals_table_path_for_every_length_and_alignment) {
  std::mt19937 rng(7);
  std::vector<uint8_t> buf(1100 + 8);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  size_t mismatches = 0;
  for (size_t offset = 0; offset < 8; ++offset)
    for (size_t n = 0; n <= 1100; ++n)
      if (Crc32c(buf.data() + offset, n) != Crc32cPortable(buf.data() + offset, n)) ++mismatches;
  BOOST_TEST(mismatches == 0u);
  // Continuing a CRC over a second piece equals one CRC over both.
  for (size_t split : {0, 1, 100, 191, 192, 193, 500}) {
    uint32_t whole = Crc32c(buf.data(), 1000);
    BOOST_TEST(Crc32c(buf.data() + split, 1000 - split, Crc32c(buf.data(), split)) == whole);
  }
}

BOOST_AUTO_TEST_SUITE_END()
