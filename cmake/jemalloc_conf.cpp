/* jemalloc's compiled-in options for rill's own programs (the `rill` binary
 * and the benchmarks), read at its first allocation; MALLOC_CONF in the
 * environment still overrides them.
 *
 * thp:always — jemalloc asks for transparent huge pages (madvise) on the
 * memory it maps. With millions of live aggregates, the actor index, the
 * tail and the indexer's batch are walked in random order: on 4 KB pages
 * nearly every step was a TLB miss, and growing the heap cost a page fault
 * per 4 KB (a VM's first touch of a page is dear). Figures:
 * docs/performance.md, "Allocator". Where the kernel's THP mode is
 * "never" this asks for nothing. metadata_thp:always does the same for
 * jemalloc's own bookkeeping. */
extern "C" {
const char* malloc_conf = "thp:always,metadata_thp:always";
}

/* Every arena is created now, before main and before any thread. jemalloc
 * otherwise creates an arena the first time a thread is assigned it, and
 * when that fails for want of address space (ulimit -v, a cgroup limit)
 * jemalloc 5.3 carries on with a null arena: the thread dies of SIGSEGV in
 * its first allocation. Created up front, a failure is one line and exit 1
 * (what rill answers for every resource failure); afterwards a failed
 * allocation is a null return (std::bad_alloc), which rill reports. */
#include <jemalloc/jemalloc.h>
#include <unistd.h>

namespace {

struct ArenasUpFront {
  ArenasUpFront() {
    unsigned narenas = 0, first = 0;
    size_t size = sizeof(narenas);
    if (mallctl("opt.narenas", &narenas, &size, nullptr, 0) != 0) return;
    size = sizeof(first);
    if (mallctl("thread.arena", &first, &size, nullptr, 0) != 0) return;
    for (unsigned i = 0; i < narenas; ++i) {
      if (mallctl("thread.arena", nullptr, nullptr, &i, sizeof(i)) != 0) {
        static const char kMessage[] = "rill: io_error: out of memory: cannot set up the allocator's arenas\n";
        ssize_t ignored = ::write(2, kMessage, sizeof(kMessage) - 1);
        (void)ignored;
        ::_exit(1);
      }
    }
    (void)mallctl("thread.arena", nullptr, nullptr, &first, sizeof(first));
  }
};
const ArenasUpFront arenas_up_front;

}  // namespace
