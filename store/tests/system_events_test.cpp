// store/system_events.h: the $metadata parser the store applies stored
// metadata with (lenient) and import checks metadata with (strict), and the
// round trip through MetadataToJson.
#include <boost/test/unit_test.hpp>
#include <fmt/format.h>

#include "store/system_events.h"
#include "store/tests/test_util.h"

using namespace rill;
using namespace rill::testing;

BOOST_AUTO_TEST_SUITE(system_events)

BOOST_AUTO_TEST_CASE(meta_streams) {
  BOOST_TEST(IsMetaStream("$$account-1"));
  BOOST_TEST(!IsMetaStream("$$"));
  BOOST_TEST(!IsMetaStream("$account-1"));
  BOOST_TEST(!IsMetaStream("account-1"));
  BOOST_TEST(MetaTarget("$$account-1") == "account-1");
}

BOOST_AUTO_TEST_CASE(metadata_round_trips_in_both_modes) {
  StreamMetadata m{.max_count = 3, .max_age_us = 1500000, .truncate_before = 7};
  std::string json = MetadataToJson(m);
  BOOST_TEST(json == R"({"max-count":3,"max-age":1.5,"truncate-before":7})");
  for (MetadataParsing p : {MetadataParsing::kLenient, MetadataParsing::kStrict}) {
    StreamMetadata back;
    BOOST_REQUIRE(ParseStreamMetadata(json, &back, p).ok());
    BOOST_TEST((back == m));
  }
  StreamMetadata none{.max_count = 9};
  BOOST_REQUIRE(ParseStreamMetadata("{}", &none).ok());
  BOOST_TEST((none == StreamMetadata{}));
}

BOOST_AUTO_TEST_CASE(not_an_object_fails_in_both_modes_and_leaves_the_output) {
  for (MetadataParsing p : {MetadataParsing::kLenient, MetadataParsing::kStrict})
    for (std::string_view bad : {"[]", "{", "3", ""}) {
      StreamMetadata m{.max_count = 5};
      Status s = ParseStreamMetadata(bad, &m, p);
      BOOST_TEST(s.code() == Code::kInvalidArgument);
      BOOST_TEST(s.message() == "$metadata data must be a JSON object");
      BOOST_TEST(m.max_count == 5u);
    }
}

BOOST_AUTO_TEST_CASE(lenient_ignores_what_strict_refuses) {
  const char* cases[][2] = {
      {R"({"max-count":2,"colour":"red"})", "colour"},
      {R"({"max-count":-1})", "max-count"},
      {R"({"max-count":"2"})", "max-count"},
      {R"({"truncate-before":1.5})", "truncate-before"},
      {R"({"max-age":-1})", "max-age"},
      {R"({"max-age":1e13})", "max-age"},
      {R"({"max-age":"60"})", "max-age"},
  };
  for (const auto& [json, field] : cases) {
    StreamMetadata m;
    BOOST_TEST(ParseStreamMetadata(json, &m, MetadataParsing::kLenient).ok(), json);
    Status s = ParseStreamMetadata(json, &m, MetadataParsing::kStrict);
    BOOST_TEST(s.code() == Code::kInvalidArgument, json);
    BOOST_TEST(s.message() == fmt::format("$metadata field \"{}\" is unknown or out of range", field), json);
  }
  StreamMetadata m;
  BOOST_REQUIRE(ParseStreamMetadata(R"({"max-count":2,"colour":"red","max-age":-1})", &m).ok());
  BOOST_TEST(m.max_count == 2u);
  BOOST_TEST(m.max_age_us == -1000000);  // lenient: any number
}

BOOST_AUTO_TEST_CASE(a_long_or_unprintable_field_is_quoted_abbreviated) {
  StreamMetadata m;
  std::string key(50, 'k');
  Status s = ParseStreamMetadata("{\"" + key + "\":1}", &m, MetadataParsing::kStrict);
  BOOST_TEST(s.message() == "$metadata field \"" + std::string(40, 'k') + "…\" is unknown or out of range");
  s = ParseStreamMetadata(R"({"a\u0001":1})", &m, MetadataParsing::kStrict);
  BOOST_TEST(s.message() == "$metadata field \"a\\x01\" is unknown or out of range");
}

BOOST_AUTO_TEST_CASE(a_field_given_twice_first_counts_lenient_last_strict) {
  StreamMetadata m;
  BOOST_REQUIRE(ParseStreamMetadata(R"({"max-count":1,"max-count":2})", &m).ok());
  BOOST_TEST(m.max_count == 1u);
  BOOST_REQUIRE(ParseStreamMetadata(R"({"max-count":"x","max-count":2})", &m).ok());
  BOOST_TEST(m.max_count == 0u);
  BOOST_REQUIRE(ParseStreamMetadata(R"({"max-count":1,"max-count":2})", &m, MetadataParsing::kStrict).ok());
  BOOST_TEST(m.max_count == 2u);
}

BOOST_AUTO_TEST_CASE(the_store_writes_and_applies_metadata_under_these_names) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.sub("db"));
  BOOST_REQUIRE(store->Append(MakeAppend("note-1", "Noted")).ok());
  BOOST_REQUIRE(store->SetStreamMetadata("note-1", {.max_count = 1}).ok());
  BOOST_REQUIRE(store->DeleteStream("note-1", ExpectedVersion::Any()).ok());
  std::vector<Event> log;
  BOOST_REQUIRE(store->ReadAll(1, 10, &log, /*raw=*/true).ok());
  BOOST_REQUIRE_EQUAL(log.size(), 3u);
  BOOST_TEST(IsMetaStream(log[1].stream));
  BOOST_TEST(MetaTarget(log[1].stream) == "note-1");
  BOOST_TEST(log[1].type == kMetadataType);
  StreamMetadata m;
  BOOST_REQUIRE(ParseStreamMetadata(log[1].data, &m, MetadataParsing::kStrict).ok());
  BOOST_TEST(m.max_count == 1u);
  BOOST_TEST(log[2].type == kDeleteType);
}

BOOST_AUTO_TEST_SUITE_END()
