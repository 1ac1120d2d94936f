// libFuzzer target: the migration-file parser (core/upcaster.*). The input is
// one migration file; when it loads, a few events of its type are upcast
// through it. Promise: bad files are refused with an error naming the file,
// good ones never crash the upcast.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/upcaster.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  rill::Upcaster upcaster;
  if (!upcaster.LoadJson(text, "fuzz/0001-input.json").ok()) return 0;
  for (const auto& m : upcaster.Migrations()) {
    for (const char* payload : {R"({})", R"({"a":1,"b":{"c":"x"},"price":"12.5","qty":3})",
                                R"({"street":"s","city":"c","address":{"zip":1},"legacy":[1,2]})"}) {
      rill::Event e;
      e.position = 1;
      e.version = 1;
      e.stream = "fuzz-1";
      e.type = m.event;
      e.schema = m.from;
      e.data = payload;
      e.meta = "{}";
      rill::Event copy = e;
      (void)upcaster.UpcastInPlace(copy);
      std::vector<rill::Event> out;
      (void)upcaster.Upcast(e, &out);
    }
  }
  return 0;
}
