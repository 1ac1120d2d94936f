// core/request_ids.h: a UUID request id becomes the event id of a one-event
// append, and the store keeps it.
#include <boost/test/unit_test.hpp>

#include "core/request_ids.h"
#include "core/tests/test_util.h"

using namespace rill;
using namespace rill::coretest;

namespace {
constexpr const char* kId = "0b9d6f1e-3c2a-4f5e-9a8b-7c6d5e4f3a2b";
}

BOOST_AUTO_TEST_SUITE(request_ids)

BOOST_AUTO_TEST_CASE(a_uuid_request_id_becomes_the_event_id) {
  AppendRequest r = MakeAppend("note-1", "Noted", "{}", ExpectedVersion::Any(), kId);
  UseRequestIdAsEventId(&r);
  BOOST_REQUIRE(r.events[0].id.has_value());
  BOOST_TEST(r.events[0].id->ToString() == kId);
  // Either case: the canonical form is lower case.
  AppendRequest upper = MakeAppend("note-1", "Noted", "{}", ExpectedVersion::Any(),
                                   "0B9D6F1E-3C2A-4F5E-9A8B-7C6D5E4F3A2B");
  UseRequestIdAsEventId(&upper);
  BOOST_REQUIRE(upper.events[0].id.has_value());
  BOOST_TEST(upper.events[0].id->ToString() == kId);
}

BOOST_AUTO_TEST_CASE(other_ids_leave_the_event_id_to_the_store) {
  for (const char* id : {"", "order-1", "0b9d6f1e3c2a4f5e9a8b7c6d5e4f3a2b"}) {
    AppendRequest r = MakeAppend("note-1", "Noted", "{}", ExpectedVersion::Any(), id);
    UseRequestIdAsEventId(&r);
    BOOST_TEST(!r.events[0].id.has_value(), id);
  }
}

BOOST_AUTO_TEST_CASE(several_events_or_a_given_id_are_left_alone) {
  AppendRequest two = MakeAppend("note-1", "Noted", "{}", ExpectedVersion::Any(), kId);
  two.events.push_back(two.events[0]);
  UseRequestIdAsEventId(&two);
  BOOST_TEST(!two.events[0].id.has_value());
  BOOST_TEST(!two.events[1].id.has_value());
  AppendRequest given = MakeAppend("note-1", "Noted", "{}", ExpectedVersion::Any(), kId);
  Uuid own = Uuid::Generate();
  given.events[0].id = own;
  UseRequestIdAsEventId(&given);
  BOOST_TEST((*given.events[0].id == own));
}

BOOST_AUTO_TEST_CASE(a_retried_append_names_the_same_event) {
  TempDir tmp;
  auto store = OpenStore(tmp.sub("db"));
  for (int attempt = 0; attempt < 2; ++attempt) {
    AppendRequest r = MakeAppend("note-1", "Noted", "{}", ExpectedVersion::Any(), kId);
    UseRequestIdAsEventId(&r);
    auto appended = store->Append(std::move(r));
    BOOST_REQUIRE(appended.ok());
    BOOST_TEST(appended->duplicate == (attempt == 1));
  }
  std::vector<Event> events;
  BOOST_REQUIRE(store->ReadStream("note-1", Direction::kForward, 1, 10, &events).ok());
  BOOST_REQUIRE_EQUAL(events.size(), 1u);
  BOOST_TEST(events[0].id.ToString() == kId);
}

BOOST_AUTO_TEST_SUITE_END()
