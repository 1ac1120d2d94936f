// The nesting limit for JSON that rill accepts (kept apart from
// json_fields.h so the parsers of files and stored events can use it
// without the field-reflection machinery).
#pragma once

#include <string>
#include <string_view>

#include "store/status.h"

namespace rill::json {

// How deeply JSON may nest ('[' and '{' levels). rapidjson's DOM parse,
// Accept() and the writers recurse once per level, so a payload of 100,000
// '[' that a streaming reader accepts would crash whoever later parses it
// (a projection, an upcaster, an actor) with a stack overflow. Real payloads
// nest a handful of levels; inputs deeper than this are refused up front.
inline constexpr int kMaxJsonDepth = 128;

// InvalidArgument naming `what` when `text` nests deeper than kMaxJsonDepth.
// A byte scan that skips strings; it does not validate (the parser does).
inline Status CheckDepth(std::string_view text, std::string_view what) {
  // Each level takes a byte: a text this short cannot nest too deep, and
  // most commands and events are (the scan was ~2% of a flash sale's CPU).
  if (text.size() <= static_cast<size_t>(kMaxJsonDepth)) return Status::OK();
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        return Status::InvalidArgument(std::string(what) + " nests deeper than " + std::to_string(kMaxJsonDepth) +
                                       " levels (at offset " + std::to_string(i) + ")");
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return Status::OK();
}

}  // namespace rill::json
