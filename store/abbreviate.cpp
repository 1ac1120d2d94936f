#include "store/abbreviate.h"

#include <fmt/format.h>

#include <algorithm>

#include "store/event.h"

namespace rill {

std::string Abbreviate(std::string_view text, size_t max_chars) {
  bool valid = IsValidUtf8(text);
  bool plain = valid && std::none_of(text.begin(), text.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
  if (!plain) {
    std::string escaped;
    for (char ch : text) {
      auto c = static_cast<unsigned char>(ch);
      if (c < 0x20 || c == 0x7f || (!valid && c >= 0x80))
        escaped += fmt::format("\\x{:02x}", c);
      else
        escaped += ch;
    }
    return Abbreviate(escaped, max_chars);
  }
  size_t chars = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) continue;
    if (chars == max_chars) return std::string(text.substr(0, i)) + "…";
    ++chars;
  }
  return std::string(text);
}

}  // namespace rill
