// Loading migration files: every class of malformed file is refused with
// "file:line: reason", and two steps for one (type, from) are an error.
#include <boost/test/unit_test.hpp>

#include <string>

#include "core/upcaster.h"

namespace rill {
namespace {

const std::string kBad = std::string(RILL_SOURCE_DIR) + "/testdata/bad/migrations/";

// Loads one bad file and checks the error's class, line and reason.
void ExpectRefused(const std::string& file, int line, const std::string& reason) {
  Upcaster u;
  Status s = u.LoadFile(kBad + file);
  BOOST_TEST_CONTEXT(file) {
    BOOST_TEST((s.code() == Code::kInvalidArgument));
    std::string where = kBad + file + ":" + std::to_string(line) + ": ";
    BOOST_TEST(s.message().rfind(where, 0) == 0u, "message: " << s.message());
    BOOST_TEST(s.message().find(reason) != std::string::npos, "message: " << s.message());
    BOOST_TEST(u.empty());
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(upcaster_load)

BOOST_AUTO_TEST_CASE(each_error_class_names_file_line_and_reason) {
  ExpectRefused("invalid-json.json", 4, "invalid JSON");
  ExpectRefused("not-an-object.json", 1, "must be a JSON object");
  ExpectRefused("unknown-key.json", 3, "unknown key \"form\"");
  ExpectRefused("missing-event.json", 1, "missing key \"event\"");
  ExpectRefused("bad-schema.json", 3, "\"from\" must be a schema number");
  ExpectRefused("to-not-next.json", 4, "\"to\" must be \"from\" + 1 (2), not 3");
  ExpectRefused("empty-ops.json", 5, "\"ops\" must be a non-empty array");
  ExpectRefused("unknown-op.json", 7, "unknown op \"frobnicate\"");
  ExpectRefused("op-missing-argument.json", 6, "missing key \"to\"");
  ExpectRefused("op-unknown-argument.json", 8, "remove: unknown key \"value\"");
  ExpectRefused("bad-path.json", 6, "not a valid dotted path");
  ExpectRefused("bad-convert.json", 7, "\"to\" must be \"number\", \"integer\" or \"string\"");
  ExpectRefused("split-in-file.json", 6, "split: missing key \"parts\"");
  // split and merge (core/upcaster.h)
  ExpectRefused("split-too-few-parts.json", 7, "\"parts\" must be an array of at least two parts");
  ExpectRefused("split-part-unknown-key.json", 9, "split part: unknown key \"fields\"");
  ExpectRefused("split-not-last.json", 6, "\"split\" must be the last op of its migration");
  ExpectRefused("split-part-loops.json", 8, "which this migration would upcast again");
  ExpectRefused("split-part-nested-op.json", 10, "\"merge\" is not allowed inside a part");
  ExpectRefused("merge-missing-into.json", 6, "missing key \"into\"");
  ExpectRefused("merge-with-retype.json", 7, "\"merge\" and \"retype\" cannot be in one migration");
  ExpectRefused("merge-bad-as.json", 8, "\"as\" is not a valid dotted path");
}

BOOST_AUTO_TEST_CASE(duplicate_type_and_from_is_an_error_naming_both_files) {
  Upcaster u;
  Status s = u.LoadDirectory(kBad + "duplicate");
  BOOST_TEST((s.code() == Code::kInvalidArgument));
  BOOST_TEST(s.message().find("0002-b.json: duplicate upcaster for AccountOpened schema 1") != std::string::npos,
             s.message());
  BOOST_TEST(s.message().find("0001-a.json") != std::string::npos, s.message());
  // A C++ step colliding with a file step too.
  Upcaster v;
  BOOST_REQUIRE(v.LoadShipped().ok());
  Status c = v.Register("AccountOpened", 2, 3, [](UpcastEvent&, std::vector<UpcastEvent>*) { return Status::OK(); }, "mine");
  BOOST_TEST((c.code() == Code::kInvalidArgument));
  BOOST_TEST(c.message().find("c++:mine: duplicate upcaster for AccountOpened schema 2") != std::string::npos, c.message());
}

BOOST_AUTO_TEST_CASE(directory_loads_json_files_in_name_order_and_missing_is_empty) {
  Upcaster u;
  BOOST_TEST(u.LoadDirectory("/nonexistent/rill/migrations").ok());
  BOOST_TEST(u.empty());
  BOOST_REQUIRE(u.LoadDirectory(std::string(RILL_SOURCE_DIR) + "/migrations/bank").ok());
  auto m = u.Migrations();
  BOOST_REQUIRE(m.size() == 2u);
  BOOST_TEST(m[0].from == 1u);
  BOOST_TEST(m[1].from == 2u);
  BOOST_TEST(m[0].source.find("0001-") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace rill
