// The upcaster's operations, alone and chained, on the JSON form of events.
#include <boost/test/unit_test.hpp>
#include <fmt/format.h>

#include <string>
#include <vector>

#include "core/upcaster.h"

namespace rill {
namespace {

// Upcasts one event (type, schema, data) through the given migration texts.
struct Upcasted {
  std::string type;
  uint32_t schema;
  std::string data;
};

Upcasted Run(const std::vector<std::string>& migrations, const std::string& type, uint32_t schema,
             const std::string& data) {
  Upcaster u;
  for (size_t i = 0; i < migrations.size(); ++i) {
    Status s = u.LoadJson(migrations[i], fmt::format("m{}.json", i));
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  }
  Event e;
  e.position = 7;
  e.type = type;
  e.schema = schema;
  e.data = data;
  Status s = u.UpcastInPlace(e);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  return {e.type, e.schema, e.data};
}

std::string Step(const std::string& ops, const std::string& event = "T", int from = 1) {
  return "{\"event\":\"" + event + "\",\"from\":" + std::to_string(from) + ",\"to\":" + std::to_string(from + 1) +
         ",\"ops\":[" + ops + "]}";
}

void Check(const Upcasted& got, const std::string& type, uint32_t schema, const std::string& data) {
  BOOST_TEST(got.type == type);
  BOOST_TEST(got.schema == schema);
  BOOST_TEST(got.data == data);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(upcaster_ops)

BOOST_AUTO_TEST_CASE(rename_moves_a_value_and_keeps_member_order) {
  auto m = Step(R"({"op":"rename","from":"qty","to":"quantity"})");
  Check(Run({m}, "T", 1, R"({"a":1,"qty":5,"z":2})"), "T", 2, R"({"a":1,"quantity":5,"z":2})");
  // Missing source: nothing to do, but the schema still moves on.
  Check(Run({m}, "T", 1, R"({"a":1})"), "T", 2, R"({"a":1})");
  // Into a nested path (creating the object) and out of one.
  Check(Run({Step(R"({"op":"rename","from":"owner","to":"owner.name"})")}, "T", 1, R"({"owner":"Ann"})"), "T", 2,
        R"({"owner":{"name":"Ann"}})");
  Check(Run({Step(R"({"op":"rename","from":"a.b.c","to":"d"})")}, "T", 1, R"({"a":{"b":{"c":[1,2]}}})"), "T", 2,
        R"({"a":{"b":{}},"d":[1,2]})");
  // An existing destination is replaced.
  Check(Run({m}, "T", 1, R"({"qty":5,"quantity":1})"), "T", 2, R"({"quantity":5})");
}

BOOST_AUTO_TEST_CASE(default_sets_only_missing_fields) {
  auto m = Step(R"({"op":"default","path":"currency","value":"EUR"},{"op":"default","path":"limits.daily","value":{"max":[1,2]}})");
  Check(Run({m}, "T", 1, R"({"owner":"Ann"})"), "T", 2, R"({"owner":"Ann","currency":"EUR","limits":{"daily":{"max":[1,2]}}})");
  Check(Run({m}, "T", 1, R"({"currency":"USD","limits":{"daily":null}})"), "T", 2,
        R"({"currency":"USD","limits":{"daily":null}})");
}

BOOST_AUTO_TEST_CASE(remove_deletes_if_present) {
  auto m = Step(R"({"op":"remove","path":"legacy"},{"op":"remove","path":"a.b"})");
  Check(Run({m}, "T", 1, R"({"legacy":true,"a":{"b":1,"c":2},"k":0})"), "T", 2, R"({"a":{"c":2},"k":0})");
  Check(Run({m}, "T", 1, R"({"k":0})"), "T", 2, R"({"k":0})");
}

BOOST_AUTO_TEST_CASE(nest_and_unnest_are_inverse) {
  auto nest = Step(R"({"op":"nest","fields":["street","city"],"into":"address"})");
  Check(Run({nest}, "T", 1, R"({"name":"A","street":"Main 1","city":"Oslo"})"), "T", 2,
        R"({"name":"A","address":{"street":"Main 1","city":"Oslo"}})");
  // Only present fields move; an existing object is extended.
  Check(Run({nest}, "T", 1, R"({"city":"Oslo","address":{"zip":"0150"}})"), "T", 2,
        R"({"address":{"zip":"0150","city":"Oslo"}})");
  // A field may be nested into an object of its own name.
  Check(Run({Step(R"({"op":"nest","fields":["owner"],"into":"owner"})")}, "T", 1, R"({"owner":"Ann"})"), "T", 2,
        R"({"owner":{"owner":"Ann"}})");
  auto unnest = Step(R"({"op":"unnest","from":"address"})");
  Check(Run({unnest}, "T", 1, R"({"name":"A","address":{"street":"Main 1","city":"Oslo"}})"), "T", 2,
        R"({"name":"A","street":"Main 1","city":"Oslo"})");
  Check(Run({unnest}, "T", 1, R"({"name":"A"})"), "T", 2, R"({"name":"A"})");
  // Chained nest then unnest gives back the original.
  Check(Run({nest, Step(R"({"op":"unnest","from":"address"})", "T", 2)}, "T", 1, R"({"name":"A","street":"S","city":"C"})"),
        "T", 3, R"({"name":"A","street":"S","city":"C"})");
}

BOOST_AUTO_TEST_CASE(convert_between_numbers_and_strings_with_factor) {
  Check(Run({Step(R"({"op":"convert","path":"price","to":"number","factor":0.01})")}, "T", 1, R"({"price":1234})"), "T", 2,
        R"({"price":12.34})");
  Check(Run({Step(R"({"op":"convert","path":"price","to":"integer","factor":100})")}, "T", 1, R"({"price":12.34})"), "T", 2,
        R"({"price":1234})");
  Check(Run({Step(R"({"op":"convert","path":"price","to":"number"})")}, "T", 1, R"({"price":"19.5"})"), "T", 2,
        R"({"price":19.5})");
  Check(Run({Step(R"({"op":"convert","path":"n","to":"number"})")}, "T", 1, R"({"n":"42"})"), "T", 2, R"({"n":42})");
  Check(Run({Step(R"({"op":"convert","path":"n","to":"string"})")}, "T", 1, R"({"n":9007199254740993})"), "T", 2,
        R"({"n":"9007199254740993"})");
  Check(Run({Step(R"({"op":"convert","path":"n","to":"string","factor":0.01})")}, "T", 1, R"({"n":250})"), "T", 2,
        R"({"n":"2.5"})");
  Check(Run({Step(R"({"op":"convert","path":"n","to":"string"})")}, "T", 1, R"({"n":"already"})"), "T", 2,
        R"({"n":"already"})");
  Check(Run({Step(R"({"op":"convert","path":"n","to":"number"})")}, "T", 1, R"({"m":1})"), "T", 2, R"({"m":1})");

  // A value that cannot be converted fails the read, naming the event.
  Upcaster u;
  BOOST_REQUIRE(u.LoadJson(Step(R"({"op":"convert","path":"n","to":"number"})"), "conv.json").ok());
  Event e;
  e.position = 99;
  e.type = "T";
  e.data = R"({"n":"abc"})";
  Status s = u.UpcastInPlace(e);
  BOOST_TEST((s.code() == Code::kCorruption));
  BOOST_TEST(s.message().find("position 99") != std::string::npos);
  BOOST_TEST(s.message().find("conv.json") != std::string::npos);
  BOOST_TEST(s.message().find("\"abc\" is not a number") != std::string::npos);
  BOOST_TEST(e.data == R"({"n":"abc"})");  // untouched on failure
}

BOOST_AUTO_TEST_CASE(retype_continues_with_the_new_types_chain) {
  auto a = Step(R"({"op":"rename","from":"qty","to":"quantity"},{"op":"retype","to":"ItemPut"})", "ItemAdded", 1);
  auto b = Step(R"({"op":"default","path":"unit","value":"pcs"})", "ItemPut", 2);
  Check(Run({a, b}, "ItemAdded", 1, R"({"qty":3})"), "ItemPut", 3, R"({"quantity":3,"unit":"pcs"})");
  Upcaster u;
  BOOST_REQUIRE(u.LoadJson(a, "a").ok());
  BOOST_REQUIRE(u.LoadJson(b, "b").ok());
  BOOST_TEST(u.CurrentSchema("ItemPut") == 3u);
  BOOST_TEST(u.CurrentSchema("ItemAdded") == 2u);
  BOOST_TEST(u.CurrentSchema("Other") == 1u);
  BOOST_TEST(u.ChainOf("ItemAdded", 1).size() == 2u);
  BOOST_TEST(u.ChainOf("ItemPut", 3).empty());
}

BOOST_AUTO_TEST_CASE(chain_of_three_steps_and_entry_midway) {
  std::vector<std::string> m = {
      Step(R"({"op":"rename","from":"owner","to":"owner.name"},{"op":"default","path":"currency","value":"EUR"})",
           "AccountOpened", 1),
      Step(R"({"op":"rename","from":"owner","to":"holder"})", "AccountOpened", 2),
      Step(R"({"op":"convert","path":"limit","to":"number","factor":0.01})", "AccountOpened", 3)};
  Check(Run(m, "AccountOpened", 1, R"({"owner":"Ann","limit":5000})"), "AccountOpened", 4,
        R"({"holder":{"name":"Ann"},"limit":50,"currency":"EUR"})");
  Check(Run(m, "AccountOpened", 2, R"({"owner":{"name":"Bo"},"currency":"NOK"})"), "AccountOpened", 4,
        R"({"holder":{"name":"Bo"},"currency":"NOK"})");
  // Already current: left exactly as stored.
  Check(Run(m, "AccountOpened", 4, R"({ "holder" : 1 })"), "AccountOpened", 4, R"({ "holder" : 1 })");
  // A schema above the current one (written by newer code) is left alone too.
  Check(Run(m, "AccountOpened", 9, R"({"x":1})"), "AccountOpened", 9, R"({"x":1})");
}

BOOST_AUTO_TEST_CASE(shipped_bank_migrations_take_account_opened_to_v3) {
  Upcaster u;
  Status s = u.LoadShipped();
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  BOOST_TEST(u.CurrentSchema("AccountOpened") == 3u);
  BOOST_TEST(u.CurrentSchema("Deposited") == 1u);
  Event e;
  e.type = "AccountOpened";
  e.data = R"({"owner":"Ann"})";
  BOOST_REQUIRE(u.UpcastInPlace(e).ok());
  BOOST_TEST(e.schema == 3u);
  BOOST_TEST(e.data == R"({"holder":{"name":"Ann"},"currency":"EUR"})");
}

BOOST_AUTO_TEST_CASE(declared_schemas_must_match_the_chains) {
  Upcaster u;
  BOOST_REQUIRE(u.LoadShipped().ok());
  // The bank domain: AccountOpened at 3, every other event at 1.
  BOOST_TEST(CheckDeclaredSchemas(u, {{"AccountOpened", 3}, {"Deposited", 1}, {"Withdrawn", 1}, {"AccountClosed", 1}}).ok());
  Status s = CheckDeclaredSchemas(u, {{"AccountOpened", 1}, {"Deposited", 2}});
  BOOST_TEST((s.code() == Code::kInvalidArgument));
  BOOST_TEST(s.message().find("AccountOpened: migrations upcast it to schema 3 but the domain declares 1") != std::string::npos, s.message());
  BOOST_TEST(s.message().find("Deposited: the domain declares schema 2 but migrations stop at 1") != std::string::npos, s.message());
}

BOOST_AUTO_TEST_CASE(cpp_upcaster_chains_with_file_steps) {
  Upcaster u;
  BOOST_REQUIRE(u.LoadJson(Step(R"({"op":"rename","from":"amt","to":"amount"})", "Deposited", 1), "f").ok());
  Status s = u.Register("Deposited", 2, 3,
                        [](UpcastEvent& ev, std::vector<UpcastEvent>*) {
                          auto& a = ev.data.GetAllocator();
                          int64_t amount = ev.data["amount"].GetInt64();
                          ev.data.AddMember("amount_doubled", rapidjson::Value(amount * 2), a);
                          return Status::OK();
                        },
                        "double");
  BOOST_REQUIRE(s.ok());
  Event e;
  e.type = "Deposited";
  e.data = R"({"amt":21})";
  BOOST_REQUIRE(u.UpcastInPlace(e).ok());
  BOOST_TEST(e.schema == 3u);
  BOOST_TEST(e.data == R"({"amount":21,"amount_doubled":42})");
  // A failing C++ step names itself.
  BOOST_REQUIRE(u.Register("Withdrawn", 1, 2, [](UpcastEvent&, std::vector<UpcastEvent>*) { return Status::Corruption("nope"); }, "broken").ok());
  Event w;
  w.type = "Withdrawn";
  w.position = 3;
  Status ws = u.UpcastInPlace(w);
  BOOST_TEST(!ws.ok());
  BOOST_TEST(ws.message().find("c++:broken") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(split_happens_on_read_only_and_keeps_position_and_version) {
  Upcaster u;
  // TransferMade v1 {"from","to","amount"} -> v2 of itself plus a Fee event.
  Status s = u.Register("TransferMade", 1, 2,
                        [](UpcastEvent& ev, std::vector<UpcastEvent>* extra) {
                          UpcastEvent fee;
                          fee.type = "FeeCharged";
                          fee.schema = 1;
                          fee.data.SetObject();
                          fee.data.AddMember("fee", rapidjson::Value(ev.data["fee"].GetInt64()), fee.data.GetAllocator());
                          ev.data.RemoveMember("fee");
                          extra->push_back(std::move(fee));
                          return Status::OK();
                        },
                        "split-fee", /*splits=*/true);
  BOOST_REQUIRE(s.ok());
  // FeeCharged has its own chain, which the split parts go through.
  BOOST_REQUIRE(u.LoadJson(Step(R"({"op":"rename","from":"fee","to":"amount"})", "FeeCharged", 1), "fee.json").ok());
  // Schema numbers start at 1.
  BOOST_TEST((u.LoadJson(Step(R"({"op":"remove","path":"x"})", "TransferMade", 0), "zero.json").code() == Code::kInvalidArgument));

  Event e;
  e.position = 10;
  e.version = 4;
  e.stream = "transfer-1";
  e.id = *Uuid::Parse("0f0e0d0c-0b0a-4908-8706-050403020100");
  e.type = "TransferMade";
  e.data = R"({"from":"a","to":"b","amount":5,"fee":2})";
  Event in_place = e;
  BOOST_REQUIRE(u.UpcastInPlace(in_place).ok());
  BOOST_TEST(in_place.schema == 1u);  // never split in place
  BOOST_TEST(in_place.data == e.data);

  std::vector<Event> parts;
  BOOST_REQUIRE(u.Upcast(e, &parts).ok());
  BOOST_REQUIRE(parts.size() == 2u);
  BOOST_TEST(parts[0].type == "TransferMade");
  BOOST_TEST(parts[0].schema == 2u);
  BOOST_TEST(parts[0].data == R"({"from":"a","to":"b","amount":5})");
  BOOST_TEST((parts[0].id == e.id));
  BOOST_TEST(parts[1].type == "FeeCharged");
  BOOST_TEST(parts[1].schema == 2u);
  BOOST_TEST(parts[1].data == R"({"amount":2})");
  BOOST_TEST(!(parts[1].id == e.id));
  for (const auto& p : parts) {
    BOOST_TEST(p.position == 10u);
    BOOST_TEST(p.version == 4u);
    BOOST_TEST(p.stream == "transfer-1");
  }
  // Ids of parts are stable across reads.
  std::vector<Event> again;
  BOOST_REQUIRE(u.Upcast(e, &again).ok());
  BOOST_TEST((again[1].id == parts[1].id));
  BOOST_TEST(u.Migrations()[u.ChainOf("TransferMade", 1)[0]].splits);
}

BOOST_AUTO_TEST_CASE(events_without_steps_pass_untouched) {
  Upcaster u;
  BOOST_TEST(u.empty());
  Event e;
  e.type = "Anything";
  e.data = "{ \"spacing\" : \"kept\" }";
  BOOST_REQUIRE(u.UpcastInPlace(e).ok());
  BOOST_TEST(e.data == "{ \"spacing\" : \"kept\" }");
  std::vector<Event> out;
  BOOST_REQUIRE(u.Upcast(e, &out).ok());
  BOOST_TEST(out.size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace rill
