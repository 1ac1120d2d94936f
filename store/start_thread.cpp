#include "store/start_thread.h"

#include <unistd.h>

#include <cstdio>

namespace rill {

void DieOutOfMemory(const char* what) {
  // No allocation from here on: a stack buffer and write(2).
  char line[160];
  int n = std::snprintf(line, sizeof line, "rill: io_error: out of memory (in the %s thread)\n", what);
  if (n > 0) {
    ssize_t ignored = ::write(2, line, static_cast<size_t>(n) < sizeof line ? static_cast<size_t>(n) : sizeof line - 1);
    (void)ignored;
  }
  ::_exit(1);
}

}  // namespace rill
