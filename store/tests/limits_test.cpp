// store/limits.h: the checks callers run before the store sees their input
// agree with what the store itself refuses.
#include <boost/test/unit_test.hpp>

#include "store/limits.h"
#include "store/tests/test_util.h"

using namespace rill;
using namespace rill::testing;

namespace {

NewEvent EventOfSize(size_t bytes) {
  NewEvent e;
  e.type = "E";
  e.meta = "{}";
  e.data = "{\"x\":\"" + std::string(bytes - 1 - 2 - 8, 'a') + "\"}";
  return e;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(limits)

BOOST_AUTO_TEST_CASE(the_default_event_limit_is_the_default_store_options) {
  BOOST_TEST(kDefaultMaxEventBytes == StoreOptions{}.max_event_bytes);
}

BOOST_AUTO_TEST_CASE(event_size_counts_data_meta_and_type) {
  NewEvent e;
  e.type = "Deposited";
  e.data = R"({"a":1})";
  e.meta = R"({"m":"x"})";
  BOOST_TEST(EventSizeBytes(e) == 9u + 7u + 9u);
  Event stored;
  stored.type = e.type;
  stored.data = e.data;
  stored.meta = e.meta;
  BOOST_TEST(EventSizeBytes(stored) == EventSizeBytes(e));
}

BOOST_AUTO_TEST_CASE(check_event_size_refuses_one_byte_over_the_limit) {
  BOOST_TEST(EventSizeBytes(EventOfSize(1000)) == 1000u);
  BOOST_TEST(CheckEventSize(EventOfSize(1000), 1000).ok());
  Status s = CheckEventSize(EventOfSize(1001), 1000);
  BOOST_TEST(s.code() == Code::kInvalidArgument);
  BOOST_TEST(s.message() == "event too large: 1001 bytes of data, meta and type (the limit is 1000 bytes)");
  BOOST_TEST(CheckEventSize(EventOfSize(kDefaultMaxEventBytes)).ok());
  BOOST_TEST(!CheckEventSize(EventOfSize(kDefaultMaxEventBytes + 1)).ok());
}

BOOST_AUTO_TEST_CASE(the_store_refuses_what_check_event_size_refuses) {
  TempDir tmp;
  StoreOptions o;
  o.max_event_bytes = 4096;
  auto store = OpenOrDie(tmp.sub("db"), o);
  for (size_t bytes : {size_t{4095}, size_t{4096}, size_t{4097}}) {
    AppendRequest r;
    r.stream = "blob-1";
    r.events.push_back(EventOfSize(bytes));
    bool fits = CheckEventSize(r.events[0], o.max_event_bytes).ok();
    auto appended = store->Append(std::move(r));
    BOOST_TEST(appended.ok() == fits, bytes);
    if (!fits) BOOST_TEST(appended.status().code() == Code::kInvalidArgument);
  }
}

BOOST_AUTO_TEST_CASE(request_id_faults) {
  BOOST_TEST((FindRequestIdFault("order-1") == RequestIdFault::kNone));
  BOOST_TEST((FindRequestIdFault("b\xc3\xa4r") == RequestIdFault::kNone));
  BOOST_TEST((FindRequestIdFault(std::string(kMaxRequestIdBytes, 'a')) == RequestIdFault::kNone));
  BOOST_TEST((FindRequestIdFault("") == RequestIdFault::kEmpty));
  BOOST_TEST((FindRequestIdFault(std::string(kMaxRequestIdBytes + 1, 'a')) == RequestIdFault::kTooLong));
  BOOST_TEST((FindRequestIdFault("bad\xff") == RequestIdFault::kNotUtf8));
  BOOST_TEST((FindRequestIdFault("a\tb") == RequestIdFault::kControlCharacter));
  BOOST_TEST((FindRequestIdFault("a\x7f") == RequestIdFault::kControlCharacter));
}

BOOST_AUTO_TEST_CASE(validate_request_id_names_what_was_wrong) {
  BOOST_TEST(ValidateRequestId("order-1", "--id").ok());
  BOOST_TEST(ValidateRequestId("", "--id").message() == "--id must not be empty");
  BOOST_TEST(ValidateRequestId(std::string(201, 'a'), "\"id\"").message() ==
             "\"id\" is too long: 201 bytes (at most 200)");
  BOOST_TEST(ValidateRequestId("bad\xff", "id").message() == "id is not valid UTF-8");
  BOOST_TEST(ValidateRequestId("a\nb", "id").message() == "id contains a control character");
  BOOST_TEST(ValidateRequestId("", "id").code() == Code::kInvalidArgument);
}

BOOST_AUTO_TEST_CASE(the_store_refuses_the_ids_validate_request_id_refuses_but_reads_empty_as_none) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.sub("db"));
  for (std::string id : {std::string(kMaxRequestIdBytes, 'a'), std::string(kMaxRequestIdBytes + 1, 'a'),
                         std::string("bad\xff"), std::string("a\x01"), std::string("ok-id")}) {
    bool valid = ValidateRequestId(id, "id").ok();
    auto r = store->Append(MakeAppend("note-1", "Noted", "{}", ExpectedVersion::Any(), id));
    BOOST_TEST(r.ok() == valid, id.size());
  }
  BOOST_TEST(store->Append(MakeAppend("note-1", "Noted", "{}", ExpectedVersion::Any(), "")).ok());
}

BOOST_AUTO_TEST_SUITE_END()
