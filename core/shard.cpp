#include "core/internal/shard.h"

#include <fmt/format.h>
#include <pthread.h>

#include <algorithm>

#include "core/activation.h"
#include "store/start_thread.h"
#include "util/prefetch.h"

namespace rill::actors {

namespace {

Status IdReused(const std::string& id) {
  return Status::Conflict(fmt::format("command id {} was already used for a different command", id));
}

std::string EventMeta(const Command& c, uint64_t hash) {
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

}  // namespace

Shard::Shard(EventStore* store, const DomainRegistry* registry, SnapshotWriter* snapshots, const RuntimeOptions& o,
             size_t max_live)
    : store_(store),
      registry_(registry),
      snapshots_(snapshots),
      mailbox_capacity_(o.mailbox_capacity),
      max_in_flight_(o.max_in_flight),
      snapshot_every_(o.snapshot_every),
      actors_(max_live),
      thread_(MakeThread("shard", [this] { Run(); })) {}

Shard::~Shard() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Shard::Post(Message m) {
  std::unique_lock lk(mu_);
  space_cv_.wait(lk, [&] { return mailbox_.size() < mailbox_capacity_; });
  // The shard takes everything queued when it wakes: only the first
  // message after it emptied the queue needs to wake it.
  bool wake = mailbox_.empty();
  mailbox_.push_back(std::move(m));
  lk.unlock();
  if (wake) cv_.notify_one();
}

void Shard::PostCompletion(uint32_t slot, Result<AppendResult> result) {
  bool wake;
  {
    std::lock_guard lk(mu_);
    wake = completions_.empty();
    completions_.push_back(Completion{slot, std::move(result)});
  }
  if (wake) cv_.notify_one();
}

void Shard::Run() {
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
    if (actors_.OverLimit()) Passivate(nullptr);
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
void Shard::PrefetchCommand(const std::vector<Message>& batch, size_t i) {
  const size_t n = batch.size();
  if (i == 0)
    for (size_t j = 0; j < std::min(n, kSlotAhead); ++j) actors_.PrefetchSlot(batch[j].hash);
  if (i + kSlotAhead < n) actors_.PrefetchSlot(batch[i + kSlotAhead].hash);
  if (i + kActorAhead < n) {
    if (const Actor* a = actors_.Peek(batch[i + kActorAhead].hash)) actors_.PrefetchActor(a);
  }
  if (i + kStateAhead < n) {
    if (const Actor* a = actors_.Peek(batch[i + kStateAhead].hash)) Prefetch(a->state.get());
  }
}

// The same for completions: the in-flight slot, then its actor (whose
// in_flight count is the first thing a completion changes).
void Shard::PrefetchCompletion(const std::vector<Completion>& completions, size_t i) {
  const size_t n = completions.size();
  if (i + kSlotAhead < n) {  // what a completion reads of it
    const InFlight& f = slots_[completions[i + kSlotAhead].slot];
    Prefetch(&f.actor);
    Prefetch(&f.message.command.id);
    Prefetch(&f.message.done);
  }
  if (i + kActorAhead < n) {
    if (const Actor* a = slots_[completions[i + kActorAhead].slot].actor) actors_.PrefetchActor(a);
  }
}

void Shard::RunReady() {
  while (!ready_.empty()) {
    Message m = std::move(ready_.front());
    ready_.pop_front();
    Handle(m);
  }
}

// Takes what it keeps out of `m` (a message is moved once, into the
// in-flight slot, a wait list or the reload queue), and leaves the rest to
// the caller to destroy.
void Shard::Handle(Message& m) {
  switch (m.kind) {
    case Message::kCommand: HandleCommand(m); break;
    case Message::kGetState: HandleGetState(m); break;
    case Message::kBarrier:
      if (in_flight_ == 0) m.barrier_done();
      else barriers_.push_back(std::move(m.barrier_done));
      break;
    case Message::kDropAll: {
      actors_.DropAll();
      stats.live = 0;
      m.barrier_done();
      break;
    }
  }
}

void Shard::HandleGetState(Message& m) {
  if (actors_.Park(m)) return;
  const AggregateType* type = registry_->ForStream(m.command.stream);
  if (!type) return m.state_done(UnknownAggregate(m.command.stream));
  auto actor = GetActor(m.command.stream, m.hash, type);
  if (!actor.ok()) return m.state_done(actor.status());
  const Actor& a = **actor;
  m.state_done(StateView{*a.stream, type->name(), a.version, type->StateToJson(*a.state)});
}

Status Shard::UnknownAggregate(const std::string& stream) {
  std::string known;
  for (const auto* t : registry_->aggregates()) known += (known.empty() ? "" : ", ") + t->name();
  return Status::NotFound(fmt::format("no aggregate type owns stream {} (streams are <aggregate>-<id>; known: {})",
                                      stream, known.empty() ? "none" : known));
}

void Shard::Reply(Message& m, Result<CommandResult> r) {
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

const AggregateType* Shard::TypeFor(const std::string& stream) {
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

void Shard::HandleCommand(Message& m) {
  if (actors_.Park(m)) return;
  if (!m.retried) ShardStats::Bump(stats.commands);
  Command& c = m.command;
  // A live actor's stream passed the name and type checks when it was
  // activated: the common case skips them. Nothing below changes the
  // actor index before the actor is used.
  Actor* live = actors_.Find(c.stream, m.hash);
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
void Shard::FlushAppends() {
  if (!outgoing_.empty()) store_->AppendAsync(&outgoing_);
}

uint32_t Shard::TakeSlot() {
  if (free_slots_.empty()) {
    slots_.emplace_back();
    return static_cast<uint32_t>(slots_.size() - 1);
  }
  uint32_t slot = free_slots_.back();
  free_slots_.pop_back();
  return slot;
}

// An id the store already knows: the same command gets the first outcome,
// another command with the same id is a conflict. The fingerprint of the
// first command is in its events' meta.
Result<CommandResult> Shard::VerifyDuplicate(const Command& c, uint64_t hash, AppendResult earlier) {
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

void Shard::HandleCompletion(Completion& c) {
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
    Zombie& z = actors_.ZombieOf(*actor.stream);
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

void Shard::Drop(Actor& actor, const Status& cause, bool completing) {
  actors_.Drop(actor, cause, completing);
  stats.live = actors_.size();
}

void Shard::Release(const std::string& stream) { actors_.Release(stream, &ready_); }

void Shard::MaybeSnapshot(Actor& actor) {
  uint64_t every = SnapshotEvery(*actor.type);
  if (every == 0 || actor.in_flight != 0 || actor.version < actor.snapshot_version + every) return;
  WriteSnapshot(actor);
}

void Shard::WriteSnapshot(Actor& actor) {
  Snapshot snap;
  snap.version = actor.version;
  snap.state_schema = actor.type->state_schema();
  snap.state = actor.type->StateToJson(*actor.state);
  if (snapshots_->Put(*actor.stream, std::move(snap))) {
    actor.snapshot_version = actor.version;
    ShardStats::Bump(stats.snapshots);
  }
}

Result<Actor*> Shard::GetActor(const std::string& stream, uint64_t hash, const AggregateType* type) {
  if (Actor* live = actors_.Find(stream, hash)) {
    live->referenced = true;
    return live;
  }
  Result<Actor*> added = actors_.Add(stream, hash, type, [this](Actor& a) { return Activate(a); });
  if (!added.ok()) return added;
  ShardStats::Bump(stats.activations);
  if (actors_.OverLimit()) Passivate(*added);
  stats.live = actors_.size();
  return added;
}

Status Shard::Activate(Actor& a) {
  ActivatedState loaded;
  RILL_RETURN_IF_ERROR(ActivateState(*store_, *a.type, *a.stream, &loaded));
  a.state = std::move(loaded.state);
  a.version = loaded.version;
  a.snapshot_version = loaded.snapshot_version;
  a.last_position = loaded.last_position;
  return Status::OK();
}

// An actor passivated past its snapshot interval is snapshotted first, so
// its next activation replays little.
void Shard::Passivate(const Actor* keep) {
  actors_.Passivate(keep, [this](Actor& a) {
    if (SnapshotEvery(*a.type) > 0 && a.version >= a.snapshot_version + SnapshotEvery(*a.type)) WriteSnapshot(a);
    ShardStats::Bump(stats.passivations);
  });
  stats.live = actors_.size();
}

}  // namespace rill::actors
