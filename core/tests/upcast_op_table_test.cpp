// The op table (core/internal/upcast_ops.h): every op named once, each with
// its parse and apply, a sample here that uses exactly the keys it takes, and
// a line in the user docs; an op the table does not have is an error naming it.
#include <boost/test/unit_test.hpp>
#include <fmt/format.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/internal/upcast_ops.h"
#include "core/upcaster.h"

namespace rill {
namespace {

// One op object per table entry, using every key the op takes. A new op
// fails op_table_* until it has its sample here.
const std::map<std::string, std::string>& Samples() {
  static const std::map<std::string, std::string> samples = {
      {"rename", R"({"op":"rename","from":"a","to":"b"})"},
      {"default", R"({"op":"default","path":"c","value":1})"},
      {"remove", R"({"op":"remove","path":"a"})"},
      {"nest", R"({"op":"nest","fields":["a"],"into":"n"})"},
      {"unnest", R"({"op":"unnest","from":"n"})"},
      {"convert", R"({"op":"convert","path":"a","to":"string","factor":2})"},
      {"retype", R"({"op":"retype","to":"U"})"},
      {"split", R"({"op":"split","parts":[{"type":"T","schema":2,"ops":[{"op":"remove","path":"a"}]},{"type":"U"}]})"},
      {"merge", R"({"op":"merge","into":"U","as":"m"})"},
  };
  return samples;
}

std::string Migration(const std::string& op) { return R"({"event":"T","from":1,"to":2,"ops":[)" + op + "]}"; }

std::string ReadSource(const std::string& relative) {
  std::ifstream in(std::string(RILL_SOURCE_DIR) + "/" + relative);
  BOOST_REQUIRE_MESSAGE(in, "cannot read " << relative);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(upcast_op_table)

BOOST_AUTO_TEST_CASE(each_op_is_named_once_with_parse_and_apply) {
  const auto& table = upcast::OpTable();
  BOOST_TEST(table.size() >= 9u);
  std::set<std::string_view> names;
  for (const upcast::OpSpec& spec : table) {
    BOOST_TEST_CONTEXT(spec.name) {
      BOOST_TEST(!spec.name.empty());
      BOOST_TEST(names.insert(spec.name).second, "named twice");
      BOOST_TEST(spec.parse != nullptr);
      BOOST_TEST(spec.apply != nullptr);
      BOOST_TEST(upcast::FindOp(spec.name) == &spec);
      std::set<std::string_view> keys(spec.keys.begin(), spec.keys.end());
      BOOST_TEST(keys.size() == spec.keys.size(), "a key listed twice");
      BOOST_TEST(!keys.count("op"));
    }
  }
  BOOST_TEST(upcast::FindOp("frobnicate") == nullptr);
}

BOOST_AUTO_TEST_CASE(each_op_has_a_sample_that_loads_and_applies) {
  for (const upcast::OpSpec& spec : upcast::OpTable()) {
    std::string name(spec.name);
    BOOST_TEST_CONTEXT(name) {
      auto sample = Samples().find(name);
      BOOST_REQUIRE_MESSAGE(sample != Samples().end(), "no sample for op " << name << " in this test");
      // The sample uses exactly the keys the entry lists.
      rapidjson::Document doc;
      doc.Parse(sample->second.c_str());
      BOOST_REQUIRE(doc.IsObject());
      std::set<std::string> used, listed(spec.keys.begin(), spec.keys.end());
      for (auto& m : doc.GetObject())
        if (std::string(m.name.GetString()) != "op") used.insert(m.name.GetString());
      BOOST_TEST((used == listed));

      Upcaster u;
      Status s = u.LoadJson(Migration(sample->second), name + ".json");
      BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
      Event e;
      e.position = 1;
      e.type = "T";
      e.data = R"({"a":1,"n":{"x":2}})";
      std::vector<Event> out;
      s = u.Upcast(e, &out);
      BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
      BOOST_TEST(out.size() == (spec.shape == upcast::OpShape::kSplit ? 2u : 1u));

      // A key the entry does not take is refused, naming the op.
      std::string extra = sample->second;
      extra.insert(extra.size() - 1, R"(,"bogus":true)");
      Status bad = Upcaster().LoadJson(Migration(extra), "bogus.json");
      BOOST_TEST((bad.code() == Code::kInvalidArgument));
      BOOST_TEST(bad.message().find(name + ": unknown key \"bogus\"") != std::string::npos, bad.message());
    }
  }
}

BOOST_AUTO_TEST_CASE(an_unknown_op_is_an_error_naming_it_and_listing_the_table) {
  Upcaster u;
  Status s = u.LoadJson("{\"event\":\"T\",\"from\":1,\"to\":2,\n\"ops\":[\n{\"op\":\"frobnicate\",\"path\":\"a\"}]}", "m.json");
  BOOST_TEST((s.code() == Code::kInvalidArgument));
  BOOST_TEST(s.message().rfind("m.json:3: unknown op \"frobnicate\" (expected ", 0) == 0u, s.message());
  for (const upcast::OpSpec& spec : upcast::OpTable())
    BOOST_TEST(s.message().find(std::string(spec.name)) != std::string::npos, spec.name << " not listed: " << s.message());
  BOOST_TEST(u.empty());
  // Inside a split part too.
  Status in_part = u.LoadJson(Migration(R"({"op":"split","parts":[{"ops":[{"op":"frobnicate"}]},{"type":"U"}]})"), "p.json");
  BOOST_TEST(in_part.message().find("unknown op \"frobnicate\"") != std::string::npos, in_part.message());
}

BOOST_AUTO_TEST_CASE(each_op_is_documented_for_users) {
  const std::string guide = ReadSource("docs/upcasting.md");
  const std::string man = ReadSource("man/rill-migrations.1");
  for (const upcast::OpSpec& spec : upcast::OpTable()) {
    std::string name(spec.name);
    BOOST_TEST(guide.find("{\"op\": \"" + name + "\"") != std::string::npos, "docs/upcasting.md has no {\"op\": \"" << name << "\"");
    BOOST_TEST(man.find(".B " + name + " \"") != std::string::npos, "man/rill-migrations.1 has no entry .B " << name);
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace rill
