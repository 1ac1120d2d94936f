// SnapshotWriter (core/internal/snapshot_writer.h) against a real store:
// what it accepts is written, in order, by Drain or by its destructor.
#include <boost/test/unit_test.hpp>

#include <fmt/format.h>

#include <optional>
#include <string>
#include <vector>

#include "core/internal/snapshot_writer.h"
#include "core/tests/test_util.h"

using namespace rill;
using namespace rill::coretest;
using rill::actors::SnapshotWriter;

namespace {

Snapshot At(uint64_t version) {
  Snapshot s;
  s.version = version;
  s.state = fmt::format("{{\"v\":{}}}", version);
  return s;
}

// The stored snapshot's version, or nullopt if there is none.
std::optional<uint64_t> StoredVersion(EventStore& store, const std::string& stream) {
  auto r = store.GetSnapshot(stream);
  if (!r.ok()) {
    BOOST_REQUIRE_MESSAGE(r.status().IsNotFound(), r.status().ToString());
    return std::nullopt;
  }
  return r->version;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(snapshot_writer)

BOOST_AUTO_TEST_CASE(drain_waits_until_every_snapshot_is_written_in_order) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  SnapshotWriter writer(store.get());
  for (int i = 0; i < 200; ++i) BOOST_REQUIRE(writer.Put(fmt::format("account-{}", i), At(i + 1)));
  for (uint64_t v = 1; v <= 50; ++v) BOOST_REQUIRE(writer.Put("account-x", At(v)));
  writer.Drain();
  for (int i = 0; i < 200; ++i) BOOST_REQUIRE_EQUAL(StoredVersion(*store, fmt::format("account-{}", i)).value_or(0), i + 1);
  BOOST_CHECK_EQUAL(StoredVersion(*store, "account-x").value_or(0), 50u);  // the last one handed over wins
  auto full = store->GetSnapshot("account-x");
  BOOST_REQUIRE(full.ok());
  BOOST_CHECK_EQUAL(full->state, "{\"v\":50}");
  writer.Drain();  // nothing queued: returns at once
}

BOOST_AUTO_TEST_CASE(destructor_writes_what_is_queued) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  {
    SnapshotWriter writer(store.get());
    for (int i = 0; i < 500; ++i) BOOST_REQUIRE(writer.Put(fmt::format("account-{}", i), At(7)));
  }
  for (int i = 0; i < 500; ++i) BOOST_REQUIRE(StoredVersion(*store, fmt::format("account-{}", i)) == 7u);
}

BOOST_AUTO_TEST_CASE(a_failed_write_is_dropped_and_the_writer_goes_on) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  SnapshotWriter writer(store.get());
  BOOST_REQUIRE(!store->PutSnapshot("", At(1)).ok());  // the store refuses this one
  BOOST_REQUIRE(writer.Put("", At(1)));
  BOOST_REQUIRE(writer.Put("account-after", At(3)));
  writer.Drain();
  BOOST_CHECK(StoredVersion(*store, "account-after") == 3u);
}

BOOST_AUTO_TEST_CASE(a_skipped_snapshot_is_never_written_and_an_accepted_one_always_is) {
  // Faster than the writer can keep up, some are skipped (the queue is
  // full) and some not, depending on timing: either way Put's answer is
  // the truth.
  TempDir dir;
  auto store = OpenStore(dir.path());
  const int n = static_cast<int>(SnapshotWriter::kMaxQueued) + 4000;
  std::vector<bool> accepted(n);
  {
    SnapshotWriter writer(store.get());
    for (int i = 0; i < n; ++i) accepted[i] = writer.Put(fmt::format("account-{}", i), At(1));
    writer.Drain();
  }
  int written = 0;
  for (int i = 0; i < n; ++i) {
    bool stored = StoredVersion(*store, fmt::format("account-{}", i)).has_value();
    BOOST_REQUIRE_EQUAL(stored, accepted[i]);
    written += stored;
  }
  BOOST_CHECK_GE(written, static_cast<int>(SnapshotWriter::kMaxQueued));  // the first kMaxQueued always fit
}

BOOST_AUTO_TEST_SUITE_END()
