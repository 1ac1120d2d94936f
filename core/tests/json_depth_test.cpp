// The JSON nesting guard: exactly kMaxJsonDepth levels pass, one more is
// refused with its offset, whether or not the short-text shortcut applies.
#include <boost/test/unit_test.hpp>

#include <string>

#include "core/json_fields.h"

using namespace rill;

BOOST_AUTO_TEST_SUITE(json_depth)

BOOST_AUTO_TEST_CASE(limit_is_exact) {
  const int n = json::kMaxJsonDepth;
  BOOST_TEST(json::CheckDepth(std::string(n, '['), "data").ok());  // short: skipped, and truly fine
  BOOST_TEST(json::CheckDepth(std::string(n, '[') + std::string(n, ']'), "data").ok());
  Status deep = json::CheckDepth(std::string(n + 1, '['), "data");
  BOOST_TEST(!deep.ok());
  BOOST_TEST(deep.message() == "data nests deeper than 128 levels (at offset 128)");
  // Brackets inside strings do not count.
  std::string quoted = "{\"a\":\"" + std::string(300, '[') + "\"}";
  BOOST_TEST(json::CheckDepth(quoted, "data").ok());
  std::string escaped = "{\"a\":\"\\\"" + std::string(300, '{') + "\"}";
  BOOST_TEST(json::CheckDepth(escaped, "data").ok());
  BOOST_TEST(!json::CheckDepth("{\"a\":" + std::string(200, '[') + "}", "data").ok());
}

BOOST_AUTO_TEST_SUITE_END()
