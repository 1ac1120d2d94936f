// Parsing the JSON the CLI reads: --data/--meta arguments and JSONL input
// lines (append --file, import). Payloads are stored compact and with their
// numbers exactly as written (no double round trip), so that export ->
// import -> export is byte-equal and `show` prints what was appended.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/abbreviate.h"
#include "store/event.h"
#include "store/limits.h"
#include "store/status.h"

namespace rill::cli {

// Validates `text` as one JSON object (UTF-8 checked, nothing after it) and
// returns it without insignificant whitespace. `what` names the input in the
// error ("--data", "data").
Result<std::string> CompactJsonObject(std::string_view text, std::string_view what);

// A top-level scalar field of a JSONL line.
struct JsonScalar {
  enum Kind { kNull, kBool, kNumber, kString } kind = kNull;
  std::string text;  // string value, number as written, "true"/"false"
};

// One JSONL input line, flattened: top-level scalars by key, and the
// top-level object fields ("data", "meta") already compacted.
struct JsonLine {
  std::map<std::string, JsonScalar, std::less<>> scalars;
  std::map<std::string, std::string, std::less<>> objects;
  std::vector<std::string> keys;  // every top-level key, in order

  bool Has(std::string_view key) const;
  // Typed accessors; the Status names the field and what was wrong.
  Result<std::string> String(std::string_view key) const;  // required string
  Result<uint64_t> Uint(std::string_view key, uint64_t min, uint64_t max) const;
};

// Parses one line. `object_fields` are the keys whose value must be a JSON
// object; every other key must hold a scalar; keys outside `allowed` are an
// error. Messages are one line, without the line number (callers add it).
Status ParseJsonLine(std::string_view line, const std::vector<std::string_view>& allowed,
                     const std::vector<std::string_view>& object_fields, JsonLine* out);

// A line of a JSONL input: where it is in the text and its 1-based number.
struct LineRef {
  size_t offset, length, number;
};
// The non-blank lines of `text` (a trailing '\r' is dropped); blank lines
// are skipped but still counted, so numbers match an editor's.
std::vector<LineRef> SplitLines(std::string_view text);

// A non-negative decimal integer in [min, max]; rejects signs, spaces,
// fractions and overflow with a message naming `what`.
Result<uint64_t> ParseUint(std::string_view text, std::string_view what, uint64_t min = 0,
                           uint64_t max = UINT64_MAX);

// "any" | "no-stream" | "exists" | N, with a message naming `what`.
Result<ExpectedVersion> ParseExpected(std::string_view text, std::string_view what);

// ValidateRequestId (store/limits.h) as a CLI11 check for an --id option:
// given, an id must be usable ("--id ''" is an error, not "no id").
CLI::Validator RequestIdCheck();

// The exit code of a batch is the worst of its parts: interrupted > error >
// usage > rejected > conflict > not found > ok.
int WorseExit(int a, int b);

// `s` with "WHAT \"NAME\": " in front unless its message already names it.
Status WithName(const Status& s, std::string_view what, std::string_view name);

}  // namespace rill::cli
