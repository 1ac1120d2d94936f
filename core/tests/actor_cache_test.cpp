// ActorCache (core/internal/actor_cache.h): a shard's live actors, their
// passivation (CLOCK) and the zombies of dropped actors with commands in
// flight. The cache never reads the store (the shard activates its actors):
// these tests load actors by hand.
#include <boost/test/unit_test.hpp>

#include <deque>
#include <string>
#include <vector>

#include "core/internal/actor_cache.h"

using namespace rill;
using namespace rill::actors;

namespace {

Actor* Add(ActorCache& cache, const std::string& stream, uint64_t version = 1) {
  auto r = cache.Add(stream, ActorIndex::Hash(stream), nullptr, [&](Actor& a) {
    a.version = version;
    return Status::OK();
  });
  BOOST_REQUIRE(r.ok());
  BOOST_REQUIRE_EQUAL(*(*r)->stream, stream);
  return *r;
}

Actor* Find(const ActorCache& cache, const std::string& stream) {
  return cache.Find(stream, ActorIndex::Hash(stream));
}

Message For(const std::string& stream, const std::string& type) {
  Message m;
  m.command.stream = stream;
  m.command.type = type;
  return m;
}

// Passivates and records who went, in order.
std::vector<std::string> Passivate(ActorCache& cache, const Actor* keep) {
  std::vector<std::string> gone;
  cache.Passivate(keep, [&](Actor& a) { gone.push_back(*a.stream); });
  return gone;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(actor_cache)

BOOST_AUTO_TEST_CASE(added_actors_are_found_and_others_are_not) {
  ActorCache cache(100);
  Actor* a = Add(cache, "account-a", 5);
  Actor* b = Add(cache, "account-b");
  BOOST_CHECK_EQUAL(Find(cache, "account-a"), a);
  BOOST_CHECK_EQUAL(Find(cache, "account-b"), b);
  BOOST_CHECK_EQUAL(a->version, 5u);
  BOOST_CHECK(Find(cache, "account-c") == nullptr);
  BOOST_CHECK_EQUAL(cache.size(), 2u);
  BOOST_CHECK(!cache.OverLimit());
}

BOOST_AUTO_TEST_CASE(a_failed_load_leaves_no_actor) {
  ActorCache cache(100);
  auto r = cache.Add("account-a", ActorIndex::Hash("account-a"), nullptr,
                     [](Actor&) { return Status::Corruption("cannot activate account-a"); });
  BOOST_CHECK(!r.ok());
  BOOST_CHECK_EQUAL(r.status().ToString(), Status::Corruption("cannot activate account-a").ToString());
  BOOST_CHECK_EQUAL(cache.size(), 0u);
  BOOST_CHECK(Find(cache, "account-a") == nullptr);
  Add(cache, "account-a");  // a later activation still works
  BOOST_CHECK_EQUAL(cache.size(), 1u);
}

BOOST_AUTO_TEST_CASE(past_the_limit_the_idle_actor_the_hand_passed_goes) {
  ActorCache cache(2);
  Add(cache, "account-a");
  Add(cache, "account-b");
  Actor* c = Add(cache, "account-c");
  BOOST_REQUIRE(cache.OverLimit());
  // Every actor starts referenced: the hand clears a's and b's bits, skips
  // c (being activated) and takes a on its second pass.
  BOOST_CHECK(Passivate(cache, c) == std::vector<std::string>{"account-a"});
  BOOST_CHECK_EQUAL(cache.size(), 2u);
  BOOST_CHECK(!cache.OverLimit());
  BOOST_CHECK(Find(cache, "account-a") == nullptr);
  BOOST_CHECK(Find(cache, "account-b") != nullptr);
  BOOST_CHECK_EQUAL(Find(cache, "account-c"), c);
}

BOOST_AUTO_TEST_CASE(a_used_actor_outlives_an_idle_one) {
  ActorCache cache(2);
  Actor* a = Add(cache, "account-a");
  Actor* b = Add(cache, "account-b");
  a->referenced = b->referenced = false;  // the hand passed both
  a->referenced = true;                   // then a command used a
  Actor* c = Add(cache, "account-c");
  BOOST_CHECK(Passivate(cache, c) == std::vector<std::string>{"account-b"});
  BOOST_CHECK(Find(cache, "account-a") != nullptr);
}

BOOST_AUTO_TEST_CASE(actors_with_commands_in_flight_are_never_passivated) {
  ActorCache cache(1);
  Actor* a = Add(cache, "account-a");
  Actor* b = Add(cache, "account-b");
  a->in_flight = b->in_flight = 1;
  BOOST_CHECK(Passivate(cache, nullptr).empty());  // the scan is bounded: it gives up
  BOOST_CHECK(cache.OverLimit());
  b->in_flight = 0;
  BOOST_CHECK(Passivate(cache, nullptr) == std::vector<std::string>{"account-b"});
  BOOST_CHECK(!cache.OverLimit());
  BOOST_CHECK_EQUAL(Find(cache, "account-a"), a);
}

BOOST_AUTO_TEST_CASE(many_actors_under_a_small_limit_stay_findable) {
  ActorCache cache(64);
  for (int i = 0; i < 5000; ++i) {
    Actor* a = Add(cache, "account-" + std::to_string(i));
    if (cache.OverLimit()) Passivate(cache, a);
    BOOST_REQUIRE_LE(cache.size(), 64u);
    BOOST_REQUIRE_EQUAL(Find(cache, "account-" + std::to_string(i)), a);
  }
  size_t live = 0;
  for (int i = 0; i < 5000; ++i) live += Find(cache, "account-" + std::to_string(i)) != nullptr;
  BOOST_CHECK_EQUAL(live, cache.size());
}

BOOST_AUTO_TEST_CASE(dropped_with_commands_in_flight_it_is_a_zombie_until_released) {
  ActorCache cache(100);
  Actor* a = Add(cache, "account-a");
  a->in_flight = 1;
  cache.Drop(*a, Status::Conflict("lost a race"), false);
  BOOST_CHECK(a->dropped);
  BOOST_CHECK(Find(cache, "account-a") == nullptr);
  BOOST_CHECK_EQUAL(cache.size(), 0u);
  BOOST_CHECK_EQUAL(*a->stream, "account-a");  // the node lives on in the zombie

  Message later = For("account-a", "Later");
  BOOST_CHECK(cache.Park(later));
  Message other = For("account-b", "Other");
  BOOST_CHECK(!cache.Park(other));  // no zombie there
  Zombie& z = cache.ZombieOf("account-a");
  BOOST_CHECK(z.cause.IsConflict());
  z.retry_held.push_back(For("account-a", "Retry"));

  std::deque<Message> ready;
  cache.Release("account-a", &ready);
  BOOST_REQUIRE_EQUAL(ready.size(), 2u);
  BOOST_CHECK_EQUAL(ready[0].command.type, "Retry");  // retries first
  BOOST_CHECK_EQUAL(ready[1].command.type, "Later");
  Message after = For("account-a", "After");
  BOOST_CHECK(!cache.Park(after));  // the zombie is gone
  Add(cache, "account-a");          // and the stream can be activated again
}

BOOST_AUTO_TEST_CASE(dropped_while_idle_it_is_simply_gone) {
  ActorCache cache(100);
  Actor* a = Add(cache, "account-a");
  cache.Drop(*a, Status::IOError("commit failed"), false);
  BOOST_CHECK(Find(cache, "account-a") == nullptr);
  Message m = For("account-a", "Next");
  BOOST_CHECK(!cache.Park(m));
}

BOOST_AUTO_TEST_CASE(drop_all_keeps_only_zombies_of_busy_actors) {
  ActorCache cache(100);
  Actor* busy = Add(cache, "account-busy");
  busy->in_flight = 2;
  for (int i = 0; i < 10; ++i) Add(cache, "account-" + std::to_string(i));
  cache.DropAll();
  BOOST_CHECK_EQUAL(cache.size(), 0u);
  for (int i = 0; i < 10; ++i) BOOST_CHECK(Find(cache, "account-" + std::to_string(i)) == nullptr);
  BOOST_CHECK(cache.ZombieOf("account-busy").cause.ok());  // dropped without a failure
  Message m = For("account-busy", "Next");
  BOOST_CHECK(cache.Park(m));
  for (int i = 0; i < 3; ++i) Add(cache, "account-" + std::to_string(i));  // the clock starts afresh
  BOOST_CHECK(Passivate(cache, nullptr).empty());
  BOOST_CHECK_EQUAL(cache.size(), 3u);
}

BOOST_AUTO_TEST_SUITE_END()
