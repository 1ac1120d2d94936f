// The stream-index run codec (store/internal/stream_index_run.h): the byte
// layout is the on-disk format of index/, so it is pinned here byte by byte.
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <string>

#include "store/internal/stream_index_run.h"

using namespace rill;
using Run = StreamIndexRun;

BOOST_AUTO_TEST_SUITE(stream_index_run)

BOOST_AUTO_TEST_CASE(key_is_number_then_first_version_big_endian) {
  char k[Run::kKeyBytes];
  Run::EncodeKey(k, 0x0102030405060708ull, 0x1112131415161718ull);
  const unsigned char want[16] = {1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18};
  BOOST_TEST(std::memcmp(k, want, 16) == 0);
  BOOST_TEST(Run::Number(k) == 0x0102030405060708ull);
  BOOST_TEST(Run::FirstVersion(k) == 0x1112131415161718ull);
  Run::SetFirstVersion(k, 65);
  BOOST_TEST(Run::Number(k) == 0x0102030405060708ull);
  BOOST_TEST(Run::FirstVersion(k) == 65u);
}

// LMDB compares keys as bytes: a stream's runs must sort together, by version.
BOOST_AUTO_TEST_CASE(keys_sort_by_stream_then_version) {
  char a[16], b[16], c[16];
  Run::EncodeKey(a, 1, 0xFFFFFFFFull);
  Run::EncodeKey(b, 2, 1);
  Run::EncodeKey(c, 2, 256);
  BOOST_TEST(std::memcmp(a, b, 16) < 0);
  BOOST_TEST(std::memcmp(b, c, 16) < 0);
}

BOOST_AUTO_TEST_CASE(positions_round_trip) {
  char v[Run::kMaxValueBytes];
  for (uint32_t i = 0; i < Run::kMaxEvents; ++i) Run::PutPosition(v, i, 1000003ull * i + 7);
  BOOST_TEST(Run::Count(sizeof v) == Run::kMaxEvents);
  for (uint32_t i = 0; i < Run::kMaxEvents; ++i) BOOST_TEST(Run::Position(v, i) == 1000003ull * i + 7);
  const unsigned char first[8] = {0, 0, 0, 0, 0, 0, 0, 7};
  BOOST_TEST(std::memcmp(v, first, 8) == 0);
}

BOOST_AUTO_TEST_CASE(checker_bounds) {
  BOOST_TEST(Run::IsKey(16));
  BOOST_TEST(!Run::IsKey(8));
  BOOST_TEST(!Run::IsValue(0));
  BOOST_TEST(Run::IsValue(8));
  BOOST_TEST(!Run::IsValue(12));
  BOOST_TEST(Run::IsValue(64 * 8));
  BOOST_TEST(!Run::IsValue(65 * 8));
  BOOST_TEST(std::string(kIndexFormat) == "2");  // a change here means a new format: bump and document it
}

BOOST_AUTO_TEST_SUITE_END()
