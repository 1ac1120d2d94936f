#include "core/actor_runtime.h"

#include <fmt/format.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>
#include <unordered_map>

#include "core/activation.h"
#include "store/start_thread.h"
#include "util/open_table.h"
#include "util/prefetch.h"

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

using Done = std::function<void(Result<CommandResult>)>;
using StateDone = std::function<void(Result<StateView>)>;

struct Message {
  enum Kind { kCommand, kGetState, kBarrier, kDropAll } kind = kCommand;
  bool retried = false;
  // ActorIndex::Hash(command.stream), computed once by the submitter (it
  // also picks the shard): the shard uses it to find the actor, and to start
  // loading it while earlier messages of the batch run.
  uint64_t hash = 0;
  Command command;
  Done done;
  StateDone state_done;
  std::function<void()> barrier_done;
};

// One live aggregate. It is the mapped value of its entry in the shard's
// actor map (key: the stream), so an actor costs one allocation for map node
// and actor together, plus its state; the node moves to the zombie map when
// the actor is dropped with commands in flight, and keeps its address.
// Measured: ~180 bytes per live actor with a small state (see
// docs/actor-core.md).
struct Actor {
  const std::string* stream = nullptr;  // the key of its map entry
  uint64_t hash = 0;                    // ActorIndex::Hash(*stream)
  const AggregateType* type = nullptr;
  std::unique_ptr<AnyState> state;
  uint64_t version = 0;           // includes events still in flight
  uint64_t last_position = 0;     // of the last durable event
  uint64_t snapshot_version = 0;  // version of the last snapshot written or read
  uint32_t in_flight = 0;
  uint32_t clock_index = 0;  // position in Shard::clock_ while live
  bool referenced = true;    // CLOCK bit: used since the hand last passed it
  bool dropped = false;
  // Set by the store's writer when one of this actor's pipelined appends was
  // not written: the appends queued after it fail too (they were decided on
  // its state). A reloaded actor is a new Actor with a clear flag. Held
  // (from the shard's FlagPool) only while commands are in flight: the
  // writer reads it for every append, and in a small pool it is a cache hit
  // there instead of a miss on a line of the actor that the shard writes.
  std::atomic<bool>* pipeline_failed = nullptr;
};

// Pipeline flags for the actors of one shard that have commands in flight.
// Addresses are stable (a deque grows without moving its elements); a flag
// is cleared when it comes back, after the last append that carried it has
// completed, so the writer no longer looks at it.
class FlagPool {
 public:
  std::atomic<bool>* Take() {
    if (free_.empty()) return &flags_.emplace_back(false);
    std::atomic<bool>* f = free_.back();
    free_.pop_back();
    return f;
  }
  void Return(std::atomic<bool>* f) {
    f->store(false, std::memory_order_relaxed);  // the next append's handoff to the writer publishes it
    free_.push_back(f);
  }

 private:
  std::deque<std::atomic<bool>> flags_;
  std::vector<std::atomic<bool>*> free_;
};

using ActorMap = std::unordered_map<std::string, Actor>;

// The shard's lookup from stream to live actor, in front of the ActorMap
// that owns them: an OpenTable of 16-byte slots (the name's hash and the
// actor), deletion by backward shift (no tombstones). Finding an actor
// touches one slot and the actor's own node; the map's bucket, node chain
// and cached hash cost three dependent cache misses per command at millions
// of actors (a third of the shard's time in the flash sale). Every live
// actor in the map is here, and nothing else.
class ActorIndex {
 public:
  static uint64_t Hash(std::string_view stream) { return std::hash<std::string_view>{}(stream); }
  Actor* Find(std::string_view stream, uint64_t hash) const {
    const Slots::Slot* s =
        slots_.Find(hash, [&](const Slots::Slot& s) { return s.tag == hash && *s.ref->stream == stream; });
    return s ? s->ref : nullptr;
  }
  // Starts loading the slot where the search for `hash` begins.
  void PrefetchSlot(uint64_t hash) const { slots_.PrefetchHome(hash); }
  // The actor whose name has this hash, judged by the hash alone (the name
  // is not compared, so nothing outside the slots is read): for prefetching
  // only. Null if none.
  const Actor* Peek(uint64_t hash) const {
    const Slots::Slot* s = slots_.Find(hash, [&](const Slots::Slot& s) { return s.tag == hash; });
    return s ? s->ref : nullptr;
  }
  void Insert(uint64_t hash, Actor* actor) {
    slots_.MakeRoom(HashOf);
    slots_.Put(slots_.FindOrEmpty(hash, [](const Slots::Slot&) { return false; }), hash, actor);
  }
  void Erase(uint64_t hash, const Actor* actor) {
    if (Slots::Slot* s = slots_.Find(hash, [&](const Slots::Slot& s) { return s.ref == actor; }))
      slots_.Erase(*s, HashOf);
  }

 private:
  using Slots = OpenTable<uint64_t, Actor*>;  // the name's hash, the actor
  static uint64_t HashOf(const Slots::Slot& s) { return s.tag; }
  Slots slots_;
};

// A dropped actor whose commands are still in flight: its node (so those
// completions can still reach it) and the commands that wait for the reload.
struct Zombie {
  ActorMap::node_type node;
  Status cause;  // OK: dropped without a failure (DropAll)
  // Commands to run, in order, once the last in-flight one has completed
  // (retries first, then later arrivals).
  std::vector<Message> retry_held, parked;
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

class SnapshotWriter {
 public:
  explicit SnapshotWriter(EventStore* store) : store_(store), thread_(MakeThread("snapshot writer", [this] { Run(); })) {}
  ~SnapshotWriter() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  // Snapshots are derived data: when the queue is full one is skipped rather
  // than stalling a shard; the next threshold writes it.
  bool Put(std::string stream, Snapshot snapshot) {
    std::lock_guard lk(mu_);
    if (queue_.size() >= 16384) return false;
    queue_.emplace_back(std::move(stream), std::move(snapshot));
    cv_.notify_all();
    return true;
  }
  void Drain() {
    std::unique_lock lk(mu_);
    idle_cv_.wait(lk, [&] { return queue_.empty() && !busy_; });
  }

 private:
  void Run() {
    std::unique_lock lk(mu_);
    for (;;) {
      cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty() && stop_) return;
      auto item = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      lk.unlock();
      (void)store_->PutSnapshot(item.first, item.second);  // derived: a failure only costs replay time
      lk.lock();
      busy_ = false;
      if (queue_.empty()) idle_cv_.notify_all();
    }
  }
  EventStore* store_;
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<std::pair<std::string, Snapshot>> queue_;
  bool stop_ = false, busy_ = false;
  std::thread thread_;
};

struct ShardStats {
  // Only the shard's thread writes them (Stats() reads): a plain increment,
  // not a locked read-modify-write, per command.
  static void Bump(std::atomic<uint64_t>& counter) {
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  std::atomic<uint64_t> commands{0}, accepted{0}, rejected{0}, failed{0}, duplicates{0}, retries{0};
  std::atomic<uint64_t> activations{0}, passivations{0}, snapshots{0}, live{0};
};

class Shard {
 public:
  Shard(EventStore* store, const DomainRegistry* registry, SnapshotWriter* snapshots, const RuntimeOptions& o,
        size_t max_live)
      : store_(store),
        registry_(registry),
        snapshots_(snapshots),
        mailbox_capacity_(o.mailbox_capacity),
        max_in_flight_(o.max_in_flight),
        max_live_(std::max<size_t>(1, max_live)),
        snapshot_every_(o.snapshot_every),
        thread_(MakeThread("shard", [this] { Run(); })) {}

  ~Shard() {
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  void Post(Message m) {
    std::unique_lock lk(mu_);
    space_cv_.wait(lk, [&] { return mailbox_.size() < mailbox_capacity_; });
    // The shard takes everything queued when it wakes: only the first
    // message after it emptied the queue needs to wake it.
    bool wake = mailbox_.empty();
    mailbox_.push_back(std::move(m));
    lk.unlock();
    if (wake) cv_.notify_one();
  }

  ShardStats stats;

 private:
  void PostCompletion(uint32_t slot, Result<AppendResult> result) {
    bool wake;
    {
      std::lock_guard lk(mu_);
      wake = completions_.empty();
      completions_.push_back(Completion{slot, std::move(result)});
    }
    if (wake) cv_.notify_one();
  }

  void Run() {
    pthread_setname_np(pthread_self(), "rill-shard");  // for top -H and perf
    std::vector<Completion> completions;
    std::vector<Message> batch;
    for (;;) {
      bool took = false;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] {
          return !completions_.empty() || (!mailbox_.empty() && in_flight_ < max_in_flight_) ||
                 (stopping_ && mailbox_.empty() && in_flight_ == 0);
        });
        if (completions_.empty() && mailbox_.empty() && stopping_ && in_flight_ == 0) return;
        completions.swap(completions_);
        // Everything queued, in one handoff (the mailbox is bounded).
        if (in_flight_ < max_in_flight_ && !mailbox_.empty()) {
          batch.swap(mailbox_);
          took = true;
        }
      }
      if (took) space_cv_.notify_all();
      for (size_t i = 0; i < completions.size(); ++i) {
        PrefetchCompletion(completions, i);
        HandleCompletion(completions[i]);
      }
      completions.clear();
      // Actors that were busy when the bound was reached can go now.
      if (actors_.size() > max_live_) Passivate(nullptr);
      RunReady();
      for (size_t i = 0; i < batch.size(); ++i) {
        PrefetchCommand(batch, i);
        Handle(batch[i]);
        RunReady();
      }
      batch.clear();
      if (batch.capacity() > 2 * mailbox_capacity_) batch.shrink_to_fit();
      FlushAppends();
      if (in_flight_ == 0 && !barriers_.empty()) {
        for (auto& b : barriers_) b();
        barriers_.clear();
      }
    }
  }

  // With a million live actors nearly every actor a command touches is a
  // cache miss, several in a row (index slot, actor, state), each costing
  // more than the rest of the command's work. So while message i runs, the
  // loads of the ones a few places down the batch are started, one step of
  // the chain per place: the slot of i + kSlotAhead, the actor of
  // i + kActorAhead (its slot has arrived by then), the state of
  // i + kStateAhead. Prefetching only reads, so the messages still run in
  // arrival order; a guess made stale by the messages in between (an actor
  // activated, passivated or dropped) only costs a wasted load.
  static constexpr size_t kSlotAhead = 16, kActorAhead = 8, kStateAhead = 4;

  void PrefetchCommand(const std::vector<Message>& batch, size_t i) {
    const size_t n = batch.size();
    if (i == 0)
      for (size_t j = 0; j < std::min(n, kSlotAhead); ++j) index_.PrefetchSlot(batch[j].hash);
    if (i + kSlotAhead < n) index_.PrefetchSlot(batch[i + kSlotAhead].hash);
    if (i + kActorAhead < n) {
      if (const Actor* a = index_.Peek(batch[i + kActorAhead].hash)) PrefetchActor(a);
    }
    if (i + kStateAhead < n) {
      if (const Actor* a = index_.Peek(batch[i + kStateAhead].hash)) Prefetch(a->state.get());
    }
  }

  // The same for completions: the in-flight slot, then its actor (whose
  // in_flight count is the first thing a completion changes).
  void PrefetchCompletion(const std::vector<Completion>& completions, size_t i) {
    const size_t n = completions.size();
    if (i + kSlotAhead < n) {  // what a completion reads of it
      const InFlight& f = slots_[completions[i + kSlotAhead].slot];
      Prefetch(&f.actor);
      Prefetch(&f.message.command.id);
      Prefetch(&f.message.done);
    }
    if (i + kActorAhead < n) {
      if (const Actor* a = slots_[completions[i + kActorAhead].slot].actor) PrefetchActor(a);
    }
  }

  // Every cache line of the actor's map node that finding and running it
  // reads: its name (the key, just before the actor) and the actor.
  void PrefetchActor(const Actor* a) const {
    const char* first = reinterpret_cast<const char*>(a) - key_to_actor_;
    const char* last = reinterpret_cast<const char*>(a + 1) - 1;
    for (const char* p = first; p < last; p += 64) Prefetch(p);
    Prefetch(last);
  }

  void RunReady() {
    while (!ready_.empty()) {
      Message m = std::move(ready_.front());
      ready_.pop_front();
      Handle(m);
    }
  }

  // Takes what it keeps out of `m` (a message is moved once, into the
  // in-flight slot, a wait list or the reload queue), and leaves the rest to
  // the caller to destroy.
  void Handle(Message& m) {
    switch (m.kind) {
      case Message::kCommand: HandleCommand(m); break;
      case Message::kGetState: HandleGetState(m); break;
      case Message::kBarrier:
        if (in_flight_ == 0) m.barrier_done();
        else barriers_.push_back(std::move(m.barrier_done));
        break;
      case Message::kDropAll: {
        for (auto it = actors_.begin(); it != actors_.end();) {
          Actor& a = it->second;
          auto next = std::next(it);
          Drop(a, Status::OK(), false);  // no failure: in-flight commands complete normally
          it = next;
        }
        clock_.clear();
        hand_ = 0;
        stats.live = 0;
        m.barrier_done();
        break;
      }
    }
  }

  // A stream whose dropped actor still has commands in flight: hold new
  // messages back so they run after the retries, in arrival order.
  bool ParkIfReloading(Message& m) {
    if (zombies_.empty()) return false;
    auto it = zombies_.find(m.command.stream);
    if (it == zombies_.end()) return false;
    it->second.parked.push_back(std::move(m));
    return true;
  }

  void HandleGetState(Message& m) {
    if (ParkIfReloading(m)) return;
    const AggregateType* type = registry_->ForStream(m.command.stream);
    if (!type) return m.state_done(UnknownAggregate(m.command.stream));
    auto actor = GetActor(m.command.stream, m.hash, type);
    if (!actor.ok()) return m.state_done(actor.status());
    const Actor& a = **actor;
    m.state_done(StateView{*a.stream, type->name(), a.version, type->StateToJson(*a.state)});
  }

  Status UnknownAggregate(const std::string& stream) {
    std::string known;
    for (const auto* t : registry_->aggregates()) known += (known.empty() ? "" : ", ") + t->name();
    return Status::NotFound(fmt::format("no aggregate type owns stream {} (streams are <aggregate>-<id>; known: {})",
                                        stream, known.empty() ? "none" : known));
  }

  void Reply(Message& m, Result<CommandResult> r) {
    if (r.ok()) {
      ShardStats::Bump(stats.accepted);
      if (r->duplicate) ShardStats::Bump(stats.duplicates);
    } else if (r.status().code() == Code::kRejected) {
      ShardStats::Bump(stats.rejected);
    } else {
      ShardStats::Bump(stats.failed);
    }
    m.done(std::move(r));
  }

  const AggregateType* TypeFor(const std::string& stream) {
    // Consecutive commands mostly hit the same category: skip the registry.
    std::string_view category = CategoryOf(stream);
    if (last_type_ && category.size() < stream.size() && category == last_category_) return last_type_;
    const AggregateType* t = registry_->ForStream(stream);
    if (t) {
      last_type_ = t;
      last_category_.assign(category);
    }
    return t;
  }

  void HandleCommand(Message& m) {
    if (ParkIfReloading(m)) return;
    if (!m.retried) ShardStats::Bump(stats.commands);
    Command& c = m.command;
    // A live actor's stream passed the name and type checks when it was
    // activated: the common case skips them. Nothing below changes the
    // actor index before the actor is used.
    Actor* live = index_.Find(c.stream, m.hash);
    const AggregateType* type = live ? live->type : nullptr;
    if (!live) {
      if (Status s = ValidateStreamName(c.stream); !s.ok()) return Reply(m, s);
      type = TypeFor(c.stream);
      if (!type) return Reply(m, UnknownAggregate(c.stream));
    }
    if (!type->HasCommand(c.type)) {
      Decision unused;
      rapidjson::Document empty;
      empty.SetObject();
      return Reply(m, type->Decide(*type->NewState(), 0, c.type, empty, &unused));  // names the known commands
    }
    json::SmallDocument parsed;
    if (Status s = parsed.Parse(c.data, "command data"); !s.ok()) return Reply(m, s);
    const rapidjson::Value& data = parsed.root();

    uint64_t hash = 0;
    if (!c.id.empty()) {
      hash = CommandHash(c.type, c.stream, json::Canonical(data));
      if (auto it = in_flight_ids_.find(c.id); it != in_flight_ids_.end()) {
        if (it->second.hash != hash) return Reply(m, IdReused(c.id));
        it->second.waiters.push_back(std::move(m));
        return;
      }
      auto earlier = store_->LookupRequest(c.id);
      if (earlier.ok()) return Reply(m, VerifyDuplicate(c, hash, *earlier));
      if (!earlier.status().IsNotFound()) return Reply(m, earlier.status());
    }

    if (live) {
      live->referenced = true;
    } else {
      auto found = GetActor(c.stream, m.hash, type);
      if (!found.ok()) return Reply(m, found.status());
      live = *found;
    }
    Actor& actor = *live;
    if (c.expected_version && *c.expected_version != actor.version)
      return Reply(m, Status::Conflict(fmt::format("stream {} is at version {}, the command expected {}", c.stream,
                                                   actor.version, *c.expected_version)));

    Decision decision;
    if (Status s = type->Decide(*actor.state, actor.version, c.type, data, &decision); !s.ok())
      return Reply(m, s);
    if (decision.rejected()) return Reply(m, Status::Rejected(decision.reason()));
    if (decision.events().empty()) {
      CommandResult r;
      r.stream = c.stream;
      r.first_version = r.last_version = actor.version;
      r.first_position = r.last_position = actor.last_position;
      return Reply(m, r);
    }

    AppendRequest req;
    req.stream = c.stream;
    req.expected = ExpectedVersion::Exact(actor.version);
    req.request_id = c.id;
    req.request_hash = hash;
    if (!actor.pipeline_failed) actor.pipeline_failed = flags_.Take();
    req.pipeline_failed = actor.pipeline_failed;
    std::string meta = EventMeta(c, hash);
    req.events.reserve(decision.events().size());
    for (auto& e : decision.events()) {
      type->Apply(*actor.state, e);
      NewEvent& ne = req.events.emplace_back();
      ne.type = std::move(e.type);
      ne.data = std::move(e.data);
      ne.meta = meta;
      ne.schema = e.schema;
    }
    actor.version += req.events.size();
    actor.in_flight++;
    in_flight_++;
    if (!c.id.empty()) in_flight_ids_[c.id].hash = hash;

    uint32_t slot = TakeSlot();
    InFlight& f = slots_[slot];
    f.actor = &actor;
    f.message = std::move(m);
    f.hash = hash;
    // Captures 16 bytes: std::function keeps it inline, no allocation.
    outgoing_.push_back(
        {std::move(req), [this, slot](Result<AppendResult> r) { PostCompletion(slot, std::move(r)); }});
    if (outgoing_.size() >= kOutgoingBurst) FlushAppends();
  }

  // Appends go to the store in bursts of up to kOutgoingBurst, queued in
  // order under one lock (EventStore::AppendAsync of a vector): a lock per
  // append, contended with the other shards and the writer, was ~9% of the
  // shard thread. Small enough that the writer is never starved; Run flushes
  // what is left before it checks barriers or sleeps, so a command is never
  // held back past the shard's current batch. A held append counts in
  // in_flight_ like a queued one.
  static constexpr size_t kOutgoingBurst = 64;
  void FlushAppends() {
    if (!outgoing_.empty()) store_->AppendAsync(&outgoing_);
  }

  uint32_t TakeSlot() {
    if (free_slots_.empty()) {
      slots_.emplace_back();
      return static_cast<uint32_t>(slots_.size() - 1);
    }
    uint32_t slot = free_slots_.back();
    free_slots_.pop_back();
    return slot;
  }

  static Status IdReused(const std::string& id) {
    return Status::Conflict(fmt::format("command id {} was already used for a different command", id));
  }

  static std::string EventMeta(const Command& c, uint64_t hash) {
    if (c.id.empty() && c.causation_id.empty() && c.correlation_id.empty()) return "{}";
    rapidjson::StringBuffer buf;
    json::Writer w(buf);
    w.StartObject();
    w.Key("command");
    w.String(c.type);
    if (!c.id.empty()) {
      w.Key("command_id");
      w.String(c.id);
      w.Key("command_hash");
      w.String(fmt::format("{:016x}", hash));
    }
    if (!c.causation_id.empty()) {
      w.Key("causation_id");
      w.String(c.causation_id);
    }
    if (!c.correlation_id.empty()) {
      w.Key("correlation_id");
      w.String(c.correlation_id);
    }
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
  }

  // An id the store already knows: the same command gets the first outcome,
  // another command with the same id is a conflict. The fingerprint of the
  // first command is in its events' meta.
  Result<CommandResult> VerifyDuplicate(const Command& c, uint64_t hash, AppendResult earlier) {
    if (earlier.stream != c.stream) return IdReused(c.id);
    std::vector<Event> first;
    Status s = store_->ReadStream(earlier.stream, Direction::kForward, earlier.first_version, 1, &first, true);
    if (s.ok() && !first.empty()) {
      rapidjson::Document meta;
      meta.Parse(first[0].meta.data(), first[0].meta.size());
      if (!meta.HasParseError() && meta.IsObject() && meta.HasMember("command_hash") &&
          meta["command_hash"].IsString() && meta["command_hash"].GetString() != fmt::format("{:016x}", hash))
        return IdReused(c.id);
    }
    earlier.duplicate = true;
    return earlier;
  }

  void HandleCompletion(Completion& c) {
    // The message is handled where it lies; nothing below takes a slot.
    InFlight& f = slots_[c.slot];
    Actor& actor = *f.actor;
    Message& message = f.message;
    actor.in_flight--;
    in_flight_--;
    std::vector<Message> waiters;
    if (!message.command.id.empty()) {
      auto it = in_flight_ids_.find(message.command.id);
      if (it != in_flight_ids_.end()) {
        waiters = std::move(it->second.waiters);
        in_flight_ids_.erase(it);
      }
    }

    if (c.result.ok()) {
      AppendResult& r = *c.result;
      if (r.duplicate) {
        // Another process committed this id first: our in-memory events were
        // never written, so the state is wrong. Reload.
        Drop(actor, Status::Conflict("command id already committed elsewhere"), true);
      } else if (!actor.dropped) {
        actor.last_position = r.last_position;
        MaybeSnapshot(actor);
      }
      if (waiters.empty()) {
        Reply(message, std::move(c.result));
      } else {
        Reply(message, r);
        r.duplicate = true;
        for (auto& w : waiters) Reply(w, r);
      }
    } else {
      Status s = c.result.status();
      bool first_failure = !actor.dropped;
      if (first_failure) Drop(actor, s, true);
      Zombie& z = zombies_.at(*actor.stream);
      if (z.cause.ok()) {  // dropped without a failure (DropAll): this is the first
        z.cause = s;
        first_failure = true;
      }
      bool retry = z.cause.IsConflict() && s.IsConflict() && !message.command.expected_version && !message.retried;
      if (retry) {
        ShardStats::Bump(stats.retries);
        message.retried = true;
        z.retry_held.push_back(std::move(message));
      } else if (first_failure) {
        Reply(message, s.WithContext(fmt::format("command {} on {} not applied", message.command.type,
                                                 *actor.stream)));
      } else {
        Reply(message, Status(z.cause).WithContext(fmt::format(
                           "command {} on {} not applied: an earlier command on the stream failed to commit",
                           message.command.type, *actor.stream)));
      }
      // Waiters with the same id run again after the reload: they will find
      // the id committed (duplicate) or run afresh.
      for (auto& w : waiters) z.parked.push_back(std::move(w));
    }
    // The slot is free; its message's strings go when the next command
    // moves in, but the callback (it may own things) goes now.
    message.done = nullptr;
    f.actor = nullptr;
    free_slots_.push_back(c.slot);
    if (actor.in_flight == 0) {  // every append that carried its flag has completed
      flags_.Return(actor.pipeline_failed);
      actor.pipeline_failed = nullptr;
    }
    // Last: this may destroy the actor.
    if (actor.dropped && actor.in_flight == 0) Release(*actor.stream);
  }

  // Forget the actor; it is reactivated from the store by its next command.
  // With commands in flight (or while its completion is being handled:
  // `completing`) it becomes a zombie until they have completed.
  void Drop(Actor& actor, const Status& cause, bool completing) {
    if (actor.dropped) return;
    actor.dropped = true;
    auto it = actors_.find(*actor.stream);
    if (it == actors_.end() || &it->second != &actor) return;
    index_.Erase(actor.hash, &actor);
    if (clock_index_valid(actor)) Untrack(actor);
    if (actor.in_flight > 0 || completing) {
      Zombie z;
      z.node = actors_.extract(it);
      z.cause = cause;
      std::string stream = z.node.key();
      zombies_.emplace(std::move(stream), std::move(z));
    } else {
      actors_.erase(it);
    }
    stats.live = actors_.size();
  }

  bool clock_index_valid(const Actor& a) const { return a.clock_index < clock_.size() && clock_[a.clock_index] == &a; }

  // The dropped actor's last in-flight command completed: run what waited.
  void Release(const std::string& stream) {
    auto it = zombies_.find(stream);
    if (it == zombies_.end()) return;
    for (auto& m : it->second.retry_held) ready_.push_back(std::move(m));
    for (auto& m : it->second.parked) ready_.push_back(std::move(m));
    zombies_.erase(it);
  }

  void MaybeSnapshot(Actor& actor) {
    uint64_t every = SnapshotEvery(*actor.type);
    if (every == 0 || actor.in_flight != 0 || actor.version < actor.snapshot_version + every) return;
    WriteSnapshot(actor);
  }

  void WriteSnapshot(Actor& actor) {
    Snapshot snap;
    snap.version = actor.version;
    snap.state_schema = actor.type->state_schema();
    snap.state = actor.type->StateToJson(*actor.state);
    if (snapshots_->Put(*actor.stream, std::move(snap))) {
      actor.snapshot_version = actor.version;
      ShardStats::Bump(stats.snapshots);
    }
  }

  // `hash` is ActorIndex::Hash(stream).
  Result<Actor*> GetActor(const std::string& stream, uint64_t hash, const AggregateType* type) {
    if (Actor* live = index_.Find(stream, hash)) {
      live->referenced = true;
      return live;
    }
    auto [it, fresh] = actors_.try_emplace(stream);
    Actor& a = it->second;
    a.stream = &it->first;
    key_to_actor_ = reinterpret_cast<const char*>(&a) - reinterpret_cast<const char*>(&it->first);
    a.hash = hash;
    a.type = type;
    if (Status s = Activate(a); !s.ok()) {
      actors_.erase(it);
      return s;
    }
    index_.Insert(hash, &a);
    ShardStats::Bump(stats.activations);
    Track(a);
    if (actors_.size() > max_live_) Passivate(&a);
    stats.live = actors_.size();
    return &a;
  }

  Status Activate(Actor& a) {
    ActivatedState loaded;
    RILL_RETURN_IF_ERROR(ActivateState(*store_, *a.type, *a.stream, &loaded));
    a.state = std::move(loaded.state);
    a.version = loaded.version;
    a.snapshot_version = loaded.snapshot_version;
    a.last_position = loaded.last_position;
    return Status::OK();
  }

  void Track(Actor& a) {
    a.clock_index = static_cast<uint32_t>(clock_.size());
    clock_.push_back(&a);
  }
  void Untrack(Actor& a) {
    size_t i = a.clock_index;
    Actor* last = clock_.back();
    clock_[i] = last;
    last->clock_index = static_cast<uint32_t>(i);
    clock_.pop_back();
  }

  // Keep at most max_live_ actors: passivate idle ones that were not used
  // since the clock hand last passed them (CLOCK, an LRU approximation whose
  // bookkeeping on a hit is one bit in the actor itself). `keep` (the actor
  // being activated) stays.
  void Passivate(Actor* keep) {
    size_t scanned = 0;
    const size_t limit = std::min<size_t>(2 * clock_.size() + 1, 4096);
    while (actors_.size() > max_live_ && scanned < limit && !clock_.empty()) {
      ++scanned;
      if (hand_ >= clock_.size()) hand_ = 0;
      Actor* a = clock_[hand_];
      if (a == keep || a->in_flight > 0) {
        ++hand_;
        continue;
      }
      if (a->referenced) {
        a->referenced = false;
        ++hand_;
        continue;
      }
      if (SnapshotEvery(*a->type) > 0 && a->version >= a->snapshot_version + SnapshotEvery(*a->type))
        WriteSnapshot(*a);
      Untrack(*a);  // the last actor moves to hand_: look at it next
      index_.Erase(a->hash, a);
      auto it = actors_.find(*a->stream);
      actors_.erase(it);
      ShardStats::Bump(stats.passivations);
    }
    stats.live = actors_.size();
  }

  EventStore* store_;
  const DomainRegistry* registry_;
  SnapshotWriter* snapshots_;
  const size_t mailbox_capacity_, max_in_flight_, max_live_;
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
  ActorMap actors_;  // owns the live actors
  ActorIndex index_;  // finds them
  // Bytes from an ActorMap node's key to its actor (the same in every node).
  ptrdiff_t key_to_actor_ = 0;
  std::vector<Actor*> clock_;  // live actors, in no particular order
  size_t hand_ = 0;
  std::unordered_map<std::string, Zombie> zombies_;
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

  void SubmitAsync(Command command, Done done) override {
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
