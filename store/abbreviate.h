// Abbreviate: input quoted in an error message, made safe to print. Quoted
// input may be the very thing that is wrong with it (a control character,
// bytes that are not UTF-8, a megabyte-long name), so the message stays one
// printable, valid UTF-8 line of bounded length.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace rill {

// `text` shortened to at most `max_chars` code points ("…" marks the cut),
// never splitting a UTF-8 sequence; control characters (and every byte of
// text that is not valid UTF-8 from 0x80 up) are written as \xNN first.
std::string Abbreviate(std::string_view text, size_t max_chars);

}  // namespace rill
