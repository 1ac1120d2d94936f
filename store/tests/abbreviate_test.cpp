// store/abbreviate.h: quoted input stays one printable UTF-8 line.
#include <boost/test/unit_test.hpp>

#include "store/abbreviate.h"

using rill::Abbreviate;

BOOST_AUTO_TEST_SUITE(abbreviate)

BOOST_AUTO_TEST_CASE(short_text_is_kept) {
  BOOST_TEST(Abbreviate("account-1", 40) == "account-1");
  BOOST_TEST(Abbreviate("", 40) == "");
  BOOST_TEST(Abbreviate(std::string(40, 'a'), 40) == std::string(40, 'a'));
}

BOOST_AUTO_TEST_CASE(long_text_is_cut_at_code_points) {
  BOOST_TEST(Abbreviate(std::string(41, 'a'), 40) == std::string(40, 'a') + "…");
  // "ä" is two bytes: three of them fit in 3 code points, never half of one.
  BOOST_TEST(Abbreviate("\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4", 3) == "\xc3\xa4\xc3\xa4\xc3\xa4…");
}

BOOST_AUTO_TEST_CASE(control_characters_and_bad_bytes_are_escaped) {
  BOOST_TEST(Abbreviate("a\nb", 40) == "a\\x0ab");
  BOOST_TEST(Abbreviate("a\x7f", 40) == "a\\x7f");
  BOOST_TEST(Abbreviate("bad\xff", 40) == "bad\\xff");
  // Escapes count as the characters they print.
  BOOST_TEST(Abbreviate("\n\n", 5) == "\\x0a\\…");
}

BOOST_AUTO_TEST_SUITE_END()
