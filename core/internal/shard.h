// Shard: one worker thread of the actor runtime and the actors it owns.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/actor_runtime.h"
#include "core/internal/actor.h"
#include "core/internal/actor_cache.h"
#include "core/internal/flag_pool.h"
#include "core/internal/message.h"
#include "core/internal/snapshot_writer.h"

namespace rill::actors {

struct ShardStats {
  // Only the shard's thread writes them (Stats() reads): a plain increment,
  // not a locked read-modify-write, per command.
  static void Bump(std::atomic<uint64_t>& counter) {
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  std::atomic<uint64_t> commands{0}, accepted{0}, rejected{0}, failed{0}, duplicates{0}, retries{0};
  std::atomic<uint64_t> activations{0}, passivations{0}, snapshots{0}, live{0};
};

// A command whose events are with the writer: a slot in the shard's pool,
// so handing a command to the writer allocates nothing here.
struct InFlight {
  Actor* actor = nullptr;
  Message message;
  uint64_t hash = 0;
};

// Posted by the writer thread: a slot number and the outcome, so the writer
// spends as little as possible on our behalf.
struct Completion {
  uint32_t slot;
  Result<AppendResult> result;
};

struct InFlightId {
  uint64_t hash = 0;
  std::vector<Message> waiters;  // same id arrived while the first was in flight
};

// The shard's thread takes its mailbox whole, runs each message in arrival
// order (activating the command's actor, deciding, evolving the state and
// handing the events to the store's writer without waiting), and handles
// the writer's completions: replies, snapshots, and the drop and retry of
// an actor whose append failed. Everything but the mailbox and the
// completion queue belongs to that thread alone.
class Shard {
 public:
  // Starts the thread (throws std::system_error if it cannot: for
  // ActorRuntime::Start). At most max_live actors stay live (at least 1).
  Shard(EventStore* store, const DomainRegistry* registry, SnapshotWriter* snapshots, const RuntimeOptions& o,
        size_t max_live);
  // Finishes every queued and in-flight command, then stops the thread.
  ~Shard();

  // Queues `m`; blocks while the mailbox holds mailbox_capacity messages.
  void Post(Message m);

  ShardStats stats;

 private:
  // The loop (shard.cpp, Run), and how it looks ahead.
  static constexpr size_t kSlotAhead = 16, kActorAhead = 8, kStateAhead = 4;  // see PrefetchCommand
  void Run();
  void PrefetchCommand(const std::vector<Message>& batch, size_t i);
  void PrefetchCompletion(const std::vector<Completion>& completions, size_t i);
  void RunReady();
  void Handle(Message& m);
  // Commands.
  void HandleGetState(Message& m);
  void HandleCommand(Message& m);
  Result<CommandResult> VerifyDuplicate(const Command& c, uint64_t hash, AppendResult earlier);
  Status UnknownAggregate(const std::string& stream);
  const AggregateType* TypeFor(const std::string& stream);
  void Reply(Message& m, Result<CommandResult> r);
  // Appends and their completions.
  static constexpr size_t kOutgoingBurst = 64;  // see FlushAppends
  void FlushAppends();
  uint32_t TakeSlot();
  void PostCompletion(uint32_t slot, Result<AppendResult> result);  // on the writer's thread
  void HandleCompletion(Completion& c);
  // Actors: activation, snapshots, and the cache's drop and passivation
  // with the shard's bookkeeping.
  // `hash` is ActorIndex::Hash(stream).
  Result<Actor*> GetActor(const std::string& stream, uint64_t hash, const AggregateType* type);
  Status Activate(Actor& a);
  void MaybeSnapshot(Actor& actor);
  void WriteSnapshot(Actor& actor);
  void Drop(Actor& actor, const Status& cause, bool completing);
  void Release(const std::string& stream);
  void Passivate(const Actor* keep);

  EventStore* store_;
  const DomainRegistry* registry_;
  SnapshotWriter* snapshots_;
  const size_t mailbox_capacity_, max_in_flight_;
  const std::optional<uint64_t> snapshot_every_;  // RuntimeOptions::snapshot_every
  uint64_t SnapshotEvery(const AggregateType& type) const { return snapshot_every_.value_or(type.snapshot_every()); }

  std::mutex mu_;
  std::condition_variable cv_, space_cv_;
  std::vector<Message> mailbox_;
  std::vector<Completion> completions_;
  bool stopping_ = false;

  // Owned by the shard thread.
  size_t in_flight_ = 0;
  std::deque<Message> ready_;
  ActorCache actors_;
  std::unordered_map<std::string, InFlightId> in_flight_ids_;
  std::vector<InFlight> slots_;
  std::vector<uint32_t> free_slots_;
  FlagPool flags_;
  std::vector<EventStore::QueuedRequest> outgoing_;  // appends not yet handed to the store (FlushAppends)
  std::vector<std::function<void()>> barriers_;
  const AggregateType* last_type_ = nullptr;
  std::string last_category_;

  std::thread thread_;  // last: starts after every member is ready
};

}  // namespace rill::actors
