// libFuzzer target: the CLI's JSON readers (cli/json_input.*) — --data and
// --meta texts, JSONL lines of `append --file` and `import`, line splitting
// and the number/expected-version parsers. Promise: any bytes give a value
// or an error, never a crash, a hang or a sanitizer report.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cli/json_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  using namespace rill::cli;
  (void)CompactJsonObject(text, "data");
  static const std::vector<std::string_view> kAllowed = {"stream", "type", "data", "expect", "id",
                                                         "schema", "meta", "position", "version", "time"};
  static const std::vector<std::string_view> kObjects = {"data", "meta"};
  for (const LineRef& l : SplitLines(text)) {
    JsonLine line;
    if (!ParseJsonLine(text.substr(l.offset, l.length), kAllowed, kObjects, &line).ok()) continue;
    for (const auto& key : line.keys) {
      (void)line.String(key);
      (void)line.Uint(key, 1, UINT32_MAX);
    }
    if (line.Has("id")) {
      auto id = line.String("id");
      if (id.ok()) (void)rill::ValidateRequestId(*id, "id");
    }
    if (line.Has("expect")) {
      auto it = line.scalars.find("expect");
      if (it != line.scalars.end()) (void)ParseExpected(it->second.text, "expect");
    }
  }
  (void)ParseUint(text, "n");
  (void)ParseExpected(text, "--expect");
  (void)rill::Abbreviate(text, 20);
  return 0;
}
