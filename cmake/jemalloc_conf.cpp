/* jemalloc's compiled-in options for rill's own programs (the `rill` binary
 * and the benchmarks), read at its first allocation; MALLOC_CONF in the
 * environment still overrides them.
 *
 * thp:always — jemalloc asks for transparent huge pages (madvise) on the
 * memory it maps. With millions of live aggregates, the actor index, the
 * tail and the indexer's batch are walked in random order: on 4 KB pages
 * nearly every step was a TLB miss, and growing the heap cost a page fault
 * per 4 KB (a VM's first touch of a page is dear). Flash sale, 10,000,000
 * purchases over 2,000,000 SKUs: page faults 624,461 -> 62,804, CPU per
 * purchase 4.48 -> 3.03 us (README, Figures). Where the kernel's THP mode is
 * "never" this asks for nothing. metadata_thp:always does the same for
 * jemalloc's own bookkeeping. */
extern "C" {
const char* malloc_conf = "thp:always,metadata_thp:always";
}
