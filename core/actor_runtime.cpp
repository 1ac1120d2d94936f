// ActorRuntimeImpl: the shards and the snapshot writer they share, and the
// routing of each message to its stream's shard. A shard's own work is in
// core/shard.cpp, the actors it keeps in core/actor_cache.cpp.
#include "core/actor_runtime.h"

#include <fmt/format.h>

#include <algorithm>
#include <future>
#include <memory>
#include <new>
#include <system_error>
#include <thread>
#include <vector>

#include "core/internal/actor_index.h"
#include "core/internal/message.h"
#include "core/internal/shard.h"
#include "core/internal/snapshot_writer.h"

namespace rill {

uint64_t CommandHash(std::string_view type, std::string_view stream, std::string_view canonical_data) {
  // FNV-1a: stable across builds and processes (it is compared with hashes
  // recorded by earlier runs), and good enough to tell two requests apart.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
    h ^= 0xff;  // separator, so ("ab","c") != ("a","bc")
    h *= 1099511628211ull;
  };
  mix(type);
  mix(stream);
  mix(canonical_data);
  return h == 0 ? 1 : h;  // 0 means "let the store hash it"
}

std::future<Result<CommandResult>> ActorRuntime::Submit(Command command) {
  auto promise = std::make_shared<std::promise<Result<CommandResult>>>();
  auto future = promise->get_future();
  SubmitAsync(std::move(command), [promise](Result<CommandResult> r) { promise->set_value(std::move(r)); });
  return future;
}

Result<CommandResult> ActorRuntime::Execute(Command command) { return Submit(std::move(command)).get(); }

namespace {

using actors::ActorIndex;
using actors::Message;
using actors::Shard;
using actors::ShardStats;
using actors::SnapshotWriter;

class ActorRuntimeImpl final : public ActorRuntime {
 public:
  ActorRuntimeImpl(EventStore* store, const DomainRegistry* registry, RuntimeOptions options)
      : snapshots_(store) {
    size_t n = options.shards ? options.shards : std::max(1u, std::thread::hardware_concurrency());
    for (size_t i = 0; i < n; ++i)
      shards_.push_back(std::make_unique<Shard>(store, registry, &snapshots_, options,
                                                (options.max_live_actors + n - 1) / n));
  }

  ~ActorRuntimeImpl() override {
    shards_.clear();  // each drains its mailbox and in-flight commands
  }

  void SubmitAsync(Command command, actors::Done done) override {
    Message m;
    m.kind = Message::kCommand;
    m.hash = ActorIndex::Hash(command.stream);
    Shard& shard = For(m.hash);
    m.command = std::move(command);
    m.done = std::move(done);
    shard.Post(std::move(m));
  }

  Result<StateView> GetState(const std::string& stream) override {
    std::promise<Result<StateView>> p;
    auto f = p.get_future();
    Message m;
    m.kind = Message::kGetState;
    m.command.stream = stream;
    m.hash = ActorIndex::Hash(stream);
    m.state_done = [&p](Result<StateView> r) { p.set_value(std::move(r)); };
    For(m.hash).Post(std::move(m));
    return f.get();
  }

  void Drain() override {
    Broadcast(Message::kBarrier);
    snapshots_.Drain();
  }

  void DropAll() override {
    Drain();
    Broadcast(Message::kDropAll);
  }

  RuntimeStats Stats() override {
    RuntimeStats s;
    for (auto& sh : shards_) {
      const ShardStats& t = sh->stats;
      s.commands += t.commands;
      s.accepted += t.accepted;
      s.rejected += t.rejected;
      s.failed += t.failed;
      s.duplicates += t.duplicates;
      s.retries += t.retries;
      s.activations += t.activations;
      s.passivations += t.passivations;
      s.snapshots += t.snapshots;
      s.live_actors += t.live;
    }
    return s;
  }

  size_t shards() const override { return shards_.size(); }

 private:
  Shard& For(uint64_t stream_hash) { return *shards_[stream_hash % shards_.size()]; }

  void Broadcast(Message::Kind kind) {
    std::vector<std::future<void>> waits;
    for (auto& sh : shards_) {
      auto p = std::make_shared<std::promise<void>>();
      waits.push_back(p->get_future());
      Message m;
      m.kind = kind;
      m.barrier_done = [p] { p->set_value(); };
      sh->Post(std::move(m));
    }
    for (auto& w : waits) w.wait();
  }

  SnapshotWriter snapshots_;  // outlives the shards (declared first, destroyed last)
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace

Result<std::unique_ptr<ActorRuntime>> ActorRuntime::Start(EventStore* store, const DomainRegistry* registry,
                                                          RuntimeOptions options) {
  if (!store || !registry) return Status::InvalidArgument("ActorRuntime needs a store and a registry");
  if (options.mailbox_capacity == 0 || options.max_in_flight == 0)
    return Status::InvalidArgument("mailbox_capacity and max_in_flight must be positive");
  // A shard's or the snapshot writer's thread that cannot start (or memory
  // that runs out while they are set up) fails the start; what was started
  // is stopped as the partly built runtime unwinds.
  try {
    return std::unique_ptr<ActorRuntime>(new ActorRuntimeImpl(store, registry, options));
  } catch (const std::system_error& e) {
    return Status::IOError(fmt::format("cannot start the actor runtime's threads: {}", e.what()));
  } catch (const std::bad_alloc&) {
    return Status::IOError("out of memory while starting the actor runtime");
  }
}

}  // namespace rill
