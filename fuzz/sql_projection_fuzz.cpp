// libFuzzer target: the SQL-projection parser (core/sql_projection.*): the
// header, sections and parameter names of a .sql projection file. Promise:
// any text parses or is refused with "<file>:<line>: what", never a crash.
// (Compiling the statements is SQLite's business: ValidateSqlProjection is
// left out so the fuzzer spends its time in rill's parser.)
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/sql_projection.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto p = rill::ParseSqlProjection(text, "fuzz.sql");
  if (p.ok()) {
    (void)(*p)->handlers().size();
    (void)(*p)->fingerprint();
  }
  return 0;
}
