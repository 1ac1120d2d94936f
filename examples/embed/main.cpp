// The smallest useful embedding of rill: open (create) a store, append to a
// stream with an expected version, see a stale expected version refused, read
// the stream back and follow $all. When the installed rill has the actor core
// (core/actor_runtime.h), it also registers an aggregate of its own and runs
// commands through the runtime. Exits non-zero if anything disagrees, so CI
// can run it against the installed package.
//
//   embed [STORE_DIR]     (default: a fresh directory under /tmp)
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "store/event_store.h"

#if __has_include("core/actor_runtime.h")
#include "core/actor_runtime.h"
#include "core/aggregate.h"
#include "core/domain_registry.h"
#include "core/open_store.h"
#define RILL_EMBED_HAS_CORE 1
#endif

namespace {

int Fail(const std::string& what, const rill::Status& status) {
  std::fprintf(stderr, "embed: %s: %s\n", what.c_str(), status.message().c_str());
  return 1;
}

rill::NewEvent MakeEvent(std::string type, std::string data) {
  rill::NewEvent event;
  event.type = std::move(type);
  event.data = std::move(data);
  return event;
}

#ifdef RILL_EMBED_HAS_CORE
// The application's own aggregate: a counter that only goes up. State,
// command and event are plain structs listing their fields (their JSON form).
struct Counter {
  int64_t value = 0;
  template <class F> void fields(F& f) { f("value", value); }
};
struct Add {
  static constexpr const char* kType = "Add";
  int64_t n = 0;
  template <class F> void fields(F& f) { f("n", n); }
};
struct Added {
  static constexpr const char* kType = "Added";
  int64_t n = 0;
  template <class F> void fields(F& f) { f("n", n); }
};

int RunCounter(rill::EventStore& store) {
  rill::DomainRegistry registry;
  registry.Add(rill::Aggregate<Counter>("counter")
                   .Decide<Add>([](const Counter&, const Add& c) -> rill::Decision {
                     if (c.n <= 0) return rill::Reject("n must be positive");
                     return rill::Accept(Added{c.n});
                   })
                   .Evolve<Added>([](Counter& s, const Added& e) { s.value += e.n; }));
  auto started = rill::ActorRuntime::Start(&store, &registry);
  if (!started.ok()) return Fail("start the runtime", started.status());
  rill::ActorRuntime& runtime = **started;

  rill::Command add;
  add.type = "Add";
  add.stream = "counter-1";
  add.data = R"({"n":5})";
  add.id = "embed-add-1";
  auto first = runtime.Execute(add);
  if (!first.ok()) return Fail("Add", first.status());
  auto again = runtime.Execute(add);  // a retry with the same command id
  if (!again.ok() || !again->duplicate) {
    std::fprintf(stderr, "embed: a retried command id was run twice\n");
    return 1;
  }
  rill::Command negative = add;
  negative.id = "embed-add-2";
  negative.data = R"({"n":-1})";
  auto refused = runtime.Execute(negative);
  if (refused.ok() || refused.status().code() != rill::Code::kRejected) {
    std::fprintf(stderr, "embed: a command breaking the rule was not rejected\n");
    return 1;
  }
  auto state = runtime.GetState("counter-1");
  if (!state.ok()) return Fail("state", state.status());
  std::printf("counter-1 v%llu %s (rejected: %s)\n", static_cast<unsigned long long>(state->version),
              state->state.c_str(), refused.status().message().c_str());
  if (state->version != 1 || state->state.find("\"value\":5") == std::string::npos) {
    std::fprintf(stderr, "embed: counter-1 should be at version 1 with value 5\n");
    return 1;
  }
  return 0;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  if (argc > 1) {
    dir = argv[1];
  } else {
    char tmpl[] = "/tmp/rill-embed-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return Fail("mkdtemp", rill::Status::IOError("cannot create a temp dir"));
    dir = std::string(tmpl) + "/store";
  }

#ifdef RILL_EMBED_HAS_CORE
  // Opened as the `rill` CLI opens it (core/open_store.h): rill.conf, plugins
  // and migrations, so this program reads events at the schema `rill show` prints.
  rill::OpenOverrides overrides;
  overrides.store.create_if_missing = true;
  auto opened = rill::OpenStore(dir, overrides);
  if (!opened.ok()) return Fail("open " + dir, opened.status());
  std::unique_ptr<rill::EventStore> store = std::move(opened->store);
#else
  rill::StoreOptions options;
  options.create_if_missing = true;
  auto opened = rill::EventStore::Open(dir, options);
  if (!opened.ok()) return Fail("open " + dir, opened.status());
  std::unique_ptr<rill::EventStore> store = std::move(opened.value());
#endif

  // Open the account: only valid if the stream does not exist yet.
  rill::AppendRequest open_account;
  open_account.stream = "account-1";
  open_account.expected = rill::ExpectedVersion::NoStream();
  open_account.events.push_back(MakeEvent("AccountOpened", R"({"owner":"Ann"})"));
  open_account.events.push_back(MakeEvent("Deposited", R"({"amount":100})"));
  auto first = store->Append(open_account);
  if (!first.ok()) return Fail("append", first.status());

  // A writer that read version 2 appends; a second writer with the same stale
  // view is refused with a conflict instead of silently interleaving.
  rill::AppendRequest withdraw;
  withdraw.stream = "account-1";
  withdraw.expected = rill::ExpectedVersion::Exact(first->last_version);
  withdraw.events.push_back(MakeEvent("Withdrawn", R"({"amount":30})"));
  auto second = store->Append(withdraw);
  if (!second.ok()) return Fail("append", second.status());
  auto stale = store->Append(withdraw);
  if (stale.ok() || !stale.status().IsConflict()) {
    std::fprintf(stderr, "embed: a stale expected version was not refused\n");
    return 1;
  }

  std::vector<rill::Event> events;
  rill::Status read = store->ReadStream("account-1", rill::Direction::kForward, 1, 100, &events);
  if (!read.ok()) return Fail("read", read);
  if (events.size() != 3 || events[0].type != "AccountOpened" || events[2].version != 3) {
    std::fprintf(stderr, "embed: read back %zu events, expected 3\n", events.size());
    return 1;
  }
#ifdef RILL_EMBED_HAS_CORE
  // Appended at schema 1; the shipped bank migrations read it at 3, as `rill show` does.
  if (events[0].schema != 3 || events[0].data.find("\"holder\"") == std::string::npos) {
    std::fprintf(stderr, "embed: AccountOpened read at schema %u, expected 3 (migrations not applied)\n",
                 events[0].schema);
    return 1;
  }
#endif
  int64_t balance = 0;
  for (const rill::Event& event : events) {
    std::printf("%s v%llu @%llu %s %s\n", event.stream.c_str(), static_cast<unsigned long long>(event.version),
                static_cast<unsigned long long>(event.position), event.type.c_str(), event.data.c_str());
    // A real application parses data with its JSON library; the example keeps
    // to the store's API and reads the amount by hand.
    auto amount_at = event.data.find("\"amount\":");
    if (amount_at == std::string::npos) continue;
    int64_t amount = std::atoll(event.data.c_str() + amount_at + 9);
    balance += event.type == "Withdrawn" ? -amount : amount;
  }

  std::vector<rill::Event> all;
  read = store->ReadAll(1, 100, &all);
  if (!read.ok()) return Fail("read $all", read);
  if (all.size() != 3 || all.back().position != store->LastPosition()) {
    std::fprintf(stderr, "embed: $all has %zu events, expected 3\n", all.size());
    return 1;
  }
  std::printf("balance of account-1: %lld (expected 70)\n", static_cast<long long>(balance));
  if (balance != 70) return 1;
#ifdef RILL_EMBED_HAS_CORE
  if (int rc = RunCounter(*store); rc != 0) return rc;
#endif
  std::printf("store %s ok\n", dir.c_str());
  return 0;
}
