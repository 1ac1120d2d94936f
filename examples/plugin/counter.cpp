// A domain of one's own, run by an unmodified `rill`: a counter that only goes
// up, built as a plugin against the INSTALLED rill package.
//
//   cmake -S examples/plugin -B build-plugin -DCMAKE_PREFIX_PATH=<rill prefix>
//   cmake --build build-plugin
//   rill --plugin build-plugin/libcounter.so submit Add --to counter-1 n=5
//   rill --plugin build-plugin/libcounter.so state counter-1
//
// (scripts/check-install.sh does this in CI.)
#include <cstdint>

#include "core/aggregate.h"
#include "core/plugin.h"

namespace {

struct Counter {
  int64_t value = 0;
  template <class F> void fields(F& f) { f("value", value); }
};
struct Add {
  static constexpr const char* kType = "Add";
  int64_t n = 0;
  template <class F> void fields(F& f) { f("n", n); }
};
struct Added {
  static constexpr const char* kType = "Added";
  int64_t n = 0;
  template <class F> void fields(F& f) { f("n", n); }
};

void RegisterCounter(rill::DomainRegistry& registry) {
  registry.Add(rill::Aggregate<Counter>("counter")
                   .Decide<Add>([](const Counter&, const Add& c) -> rill::Decision {
                     if (c.n <= 0) return rill::Reject("n must be positive");
                     return rill::Accept(Added{c.n});
                   })
                   .Evolve<Added>([](Counter& s, const Added& e) { s.value += e.n; }));
}

}  // namespace

RILL_PLUGIN("counter", RegisterCounter)
