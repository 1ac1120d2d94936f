#include "core/actor_runtime.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>

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
  Command command;
  Done done;
  StateDone state_done;
  std::function<void()> barrier_done;
  bool retried = false;
};

struct Actor {
  std::string stream;
  const AggregateType* type = nullptr;
  std::unique_ptr<AnyState> state;
  uint64_t version = 0;           // includes events still in flight
  uint64_t last_position = 0;     // of the last durable event
  uint64_t snapshot_version = 0;  // version of the last snapshot written or read
  size_t in_flight = 0;
  bool dropped = false;
  Status drop_cause;
  // While dropped with commands in flight: commands to run, in order, once the
  // last in-flight one has completed (retries first, then later arrivals).
  std::vector<Message> retry_held, parked;
  std::list<Actor*>::iterator lru;
};

// A command whose events are with the writer.
struct InFlight {
  std::shared_ptr<Actor> actor;
  Message message;
  uint64_t hash = 0;
};

// Posted by the writer thread: only a pointer moves there, so the writer
// spends as little as possible on our behalf.
struct Completion {
  std::shared_ptr<InFlight> in_flight;
  Result<AppendResult> result;
};

struct InFlightId {
  uint64_t hash = 0;
  std::vector<Message> waiters;  // same id arrived while the first was in flight
};

class SnapshotWriter {
 public:
  explicit SnapshotWriter(EventStore* store) : store_(store), thread_([this] { Run(); }) {}
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
        thread_([this] { Run(); }) {}

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
  void PostCompletion(Completion c) {
    bool wake;
    {
      std::lock_guard lk(mu_);
      wake = completions_.empty();
      completions_.push_back(std::move(c));
    }
    if (wake) cv_.notify_one();
  }

  void Run() {
    std::vector<Completion> completions;
    std::vector<Message> batch;
    for (;;) {
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] {
          return !completions_.empty() || (!mailbox_.empty() && in_flight_ < max_in_flight_) ||
                 (stopping_ && mailbox_.empty() && in_flight_ == 0);
        });
        if (completions_.empty() && mailbox_.empty() && stopping_ && in_flight_ == 0) return;
        completions.swap(completions_);
        size_t take = in_flight_ < max_in_flight_ ? std::min<size_t>(mailbox_.size(), 512) : 0;
        for (size_t i = 0; i < take; ++i) {
          batch.push_back(std::move(mailbox_.front()));
          mailbox_.pop_front();
        }
      }
      if (!batch.empty()) space_cv_.notify_all();
      for (auto& c : completions) HandleCompletion(std::move(c));
      completions.clear();
      // Actors that were busy when the bound was reached can go now.
      if (actors_.size() > max_live_) Passivate();
      RunReady();
      for (auto& m : batch) {
        Handle(std::move(m));
        RunReady();
      }
      batch.clear();
      // Actors busy when they were activated can be passivated now.
      if (actors_.size() > max_live_) Passivate();
      if (in_flight_ == 0 && !barriers_.empty()) {
        for (auto& b : barriers_) b();
        barriers_.clear();
      }
    }
  }

  void RunReady() {
    while (!ready_.empty()) {
      Message m = std::move(ready_.front());
      ready_.pop_front();
      Handle(std::move(m));
    }
  }

  void Handle(Message m) {
    switch (m.kind) {
      case Message::kCommand: HandleCommand(std::move(m)); break;
      case Message::kGetState: HandleGetState(std::move(m)); break;
      case Message::kBarrier:
        if (in_flight_ == 0) m.barrier_done();
        else barriers_.push_back(std::move(m.barrier_done));
        break;
      case Message::kDropAll:
        for (auto& [_, a] : actors_) a->dropped = true;
        actors_.clear();
        lru_.clear();
        stats.live = 0;
        m.barrier_done();
        break;
    }
  }

  // A stream whose dropped actor still has commands in flight: hold new
  // messages back so they run after the retries, in arrival order.
  bool ParkIfReloading(Message& m) {
    auto it = zombies_.find(m.command.stream);
    if (it == zombies_.end()) return false;
    it->second->parked.push_back(std::move(m));
    return true;
  }

  void HandleGetState(Message m) {
    if (ParkIfReloading(m)) return;
    const AggregateType* type = registry_->ForStream(m.command.stream);
    if (!type) return m.state_done(UnknownAggregate(m.command.stream));
    auto actor = GetActor(m.command.stream, type);
    if (!actor.ok()) return m.state_done(actor.status());
    const Actor& a = **actor;
    m.state_done(StateView{a.stream, type->name(), a.version, type->StateToJson(*a.state)});
  }

  Status UnknownAggregate(const std::string& stream) {
    std::string known;
    for (const auto* t : registry_->aggregates()) known += (known.empty() ? "" : ", ") + t->name();
    return Status::NotFound(fmt::format("no aggregate type owns stream {} (streams are <aggregate>-<id>; known: {})",
                                        stream, known.empty() ? "none" : known));
  }

  void Reply(Message& m, Result<CommandResult> r) {
    if (r.ok()) {
      stats.accepted++;
      if (r->duplicate) stats.duplicates++;
    } else if (r.status().code() == Code::kRejected) {
      stats.rejected++;
    } else {
      stats.failed++;
    }
    m.done(std::move(r));
  }

  void HandleCommand(Message m) {
    if (ParkIfReloading(m)) return;
    if (!m.retried) stats.commands++;
    Command& c = m.command;
    if (Status s = ValidateStreamName(c.stream); !s.ok()) return Reply(m, s);
    const AggregateType* type = registry_->ForStream(c.stream);
    if (!type) return Reply(m, UnknownAggregate(c.stream));
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

    auto found = GetActor(c.stream, type);
    if (!found.ok()) return Reply(m, found.status());
    std::shared_ptr<Actor> actor = *found;
    if (c.expected_version && *c.expected_version != actor->version)
      return Reply(m, Status::Conflict(fmt::format("stream {} is at version {}, the command expected {}", c.stream,
                                                   actor->version, *c.expected_version)));

    Decision decision;
    if (Status s = type->Decide(*actor->state, actor->version, c.type, data, &decision); !s.ok())
      return Reply(m, s);
    if (decision.rejected()) return Reply(m, Status::Rejected(decision.reason()));
    if (decision.events().empty()) {
      CommandResult r;
      r.stream = c.stream;
      r.first_version = r.last_version = actor->version;
      r.first_position = r.last_position = actor->last_position;
      return Reply(m, r);
    }

    AppendRequest req;
    req.stream = c.stream;
    req.expected = ExpectedVersion::Exact(actor->version);
    req.request_id = c.id;
    req.request_hash = hash;
    std::string meta = EventMeta(c, hash);
    req.events.reserve(decision.events().size());
    for (auto& e : decision.events()) {
      type->Apply(*actor->state, e);
      NewEvent ne;
      ne.type = std::move(e.type);
      ne.data = std::move(e.data);
      ne.meta = meta;
      ne.schema = e.schema;
      req.events.push_back(std::move(ne));
    }
    actor->version += req.events.size();
    actor->in_flight++;
    in_flight_++;
    if (!c.id.empty()) in_flight_ids_[c.id].hash = hash;

    auto pending = std::make_shared<InFlight>(InFlight{std::move(actor), std::move(m), hash});
    store_->AppendAsync(std::move(req), [this, pending = std::move(pending)](Result<AppendResult> r) mutable {
      PostCompletion(Completion{std::move(pending), std::move(r)});
    });
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

  void HandleCompletion(Completion c) {
    InFlight& f = *c.in_flight;
    Actor& actor = *f.actor;
    actor.in_flight--;
    in_flight_--;
    std::vector<Message> waiters;
    if (!f.message.command.id.empty()) {
      auto it = in_flight_ids_.find(f.message.command.id);
      if (it != in_flight_ids_.end()) {
        waiters = std::move(it->second.waiters);
        in_flight_ids_.erase(it);
      }
    }

    if (c.result.ok()) {
      AppendResult r = *c.result;
      if (r.duplicate) {
        // Another process committed this id first: our in-memory events were
        // never written, so the state is wrong. Reload.
        Drop(f.actor, Status::Conflict("command id already committed elsewhere"));
      } else if (!actor.dropped) {
        actor.last_position = r.last_position;
        MaybeSnapshot(actor);
      }
      Reply(f.message, r);
      r.duplicate = true;
      for (auto& w : waiters) Reply(w, r);
    } else {
      Status s = c.result.status();
      bool first_failure = !actor.dropped;
      if (first_failure) Drop(f.actor, s);
      const Status& cause = actor.drop_cause;
      bool retry = cause.IsConflict() && s.IsConflict() && !f.message.command.expected_version &&
                   !f.message.retried;
      if (retry) {
        stats.retries++;
        f.message.retried = true;
        actor.retry_held.push_back(std::move(f.message));
      } else if (first_failure) {
        Reply(f.message, s.WithContext(fmt::format("command {} on {} not applied", f.message.command.type,
                                                   actor.stream)));
      } else {
        Reply(f.message, Status(cause).WithContext(fmt::format(
                             "command {} on {} not applied: an earlier command on the stream failed to commit",
                             f.message.command.type, actor.stream)));
      }
      // Waiters with the same id run again after the reload: they will find
      // the id committed (duplicate) or run afresh.
      for (auto& w : waiters) actor.parked.push_back(std::move(w));
    }
    if (actor.dropped && actor.in_flight == 0) Release(actor);
  }

  // Forget the actor; it is reactivated from the store by its next command.
  void Drop(const std::shared_ptr<Actor>& actor, const Status& cause) {
    if (actor->dropped) return;
    actor->dropped = true;
    actor->drop_cause = cause;
    auto it = actors_.find(actor->stream);
    if (it != actors_.end() && it->second == actor) {
      lru_.erase(actor->lru);
      actors_.erase(it);
      stats.live = actors_.size();
    }
    if (actor->in_flight > 0) zombies_[actor->stream] = actor;
  }

  // The dropped actor's last in-flight command completed: run what waited.
  void Release(Actor& actor) {
    auto it = zombies_.find(actor.stream);
    std::shared_ptr<Actor> keep;
    if (it != zombies_.end() && it->second.get() == &actor) {
      keep = it->second;
      zombies_.erase(it);
    }
    for (auto& m : actor.retry_held) ready_.push_back(std::move(m));
    for (auto& m : actor.parked) ready_.push_back(std::move(m));
    actor.retry_held.clear();
    actor.parked.clear();
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
    if (snapshots_->Put(actor.stream, std::move(snap))) {
      actor.snapshot_version = actor.version;
      stats.snapshots++;
    }
  }

  Result<std::shared_ptr<Actor>> GetActor(const std::string& stream, const AggregateType* type) {
    auto it = actors_.find(stream);
    if (it != actors_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second->lru);
      return it->second;
    }
    auto actor = std::make_shared<Actor>();
    actor->stream = stream;
    actor->type = type;
    RILL_RETURN_IF_ERROR(Activate(*actor));
    stats.activations++;
    lru_.push_front(actor.get());
    actor->lru = lru_.begin();
    actors_.emplace(stream, actor);
    Passivate();
    stats.live = actors_.size();
    return actor;
  }

  Status Activate(Actor& a) {
    const AggregateType& type = *a.type;
    a.state = type.NewState();
    a.version = a.snapshot_version = a.last_position = 0;
    auto snap = store_->GetSnapshot(a.stream);
    if (snap.ok() && snap->state_schema == type.state_schema()) {
      auto state = type.NewState();
      if (type.StateFromJson(snap->state, *state).ok()) {
        a.state = std::move(state);
        a.version = a.snapshot_version = snap->version;
      }
    }
    std::vector<Event> events;
    for (;;) {
      events.clear();
      Status s = store_->ReadStream(a.stream, Direction::kForward, a.version + 1, 4096, &events);
      if (s.IsNotFound()) {
        if (a.version > 0) {  // a snapshot of a stream that is gone (deleted): start empty
          a.state = type.NewState();
          a.version = a.snapshot_version = 0;
        }
        break;
      }
      if (!s.ok()) return s.WithContext("cannot activate " + a.stream);
      // Parts of a split event share its version: skip by the version this
      // read started after, not by the last applied one.
      const uint64_t after = a.version;
      for (const Event& e : events) {
        if (e.version <= after) continue;
        Status as = type.Apply(*a.state, e.type, e.data);
        if (!as.ok()) return as.WithContext(fmt::format("cannot activate {}: event version {}", a.stream, e.version));
        a.version = e.version;
        a.last_position = e.position;
      }
      if (events.size() < 4096) break;
    }
    if (a.last_position == 0 && a.version > 0) {
      auto info = store_->GetStream(a.stream);
      if (info.ok()) a.last_position = info->head_position;
    }
    return Status::OK();
  }

  // Keep at most max_live_ actors: passivate the least recently used idle ones.
  void Passivate() {
    size_t scanned = 0;
    auto it = lru_.end();
    while (actors_.size() > max_live_ && scanned < 64) {
      --it;
      ++scanned;
      if (it == lru_.begin()) break;  // never the actor being activated
      Actor* a = *it;
      if (a->in_flight > 0) continue;
      if (SnapshotEvery(*a->type) > 0 && a->version >= a->snapshot_version + SnapshotEvery(*a->type))
        WriteSnapshot(*a);
      std::string stream = a->stream;
      it = lru_.erase(it);
      actors_.erase(stream);
      stats.passivations++;
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
  std::deque<Message> mailbox_;
  std::vector<Completion> completions_;
  bool stopping_ = false;

  // Owned by the shard thread.
  size_t in_flight_ = 0;
  std::deque<Message> ready_;
  std::unordered_map<std::string, std::shared_ptr<Actor>> actors_;
  std::list<Actor*> lru_;
  std::unordered_map<std::string, std::shared_ptr<Actor>> zombies_;
  std::unordered_map<std::string, InFlightId> in_flight_ids_;
  std::vector<std::function<void()>> barriers_;

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
    Shard& shard = For(command.stream);
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
    m.state_done = [&p](Result<StateView> r) { p.set_value(std::move(r)); };
    For(stream).Post(std::move(m));
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
  Shard& For(const std::string& stream) {
    return *shards_[std::hash<std::string_view>{}(stream) % shards_.size()];
  }

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
  return std::unique_ptr<ActorRuntime>(new ActorRuntimeImpl(store, registry, options));
}

}  // namespace rill
