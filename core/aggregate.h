// The aggregate (decider) API. An aggregate type is an initial state plus two
// pure functions: decide(state, command) -> events or a rejection, and
// evolve(state, event) -> state. Commands, events and the state are plain
// structs that list their fields (core/json_fields.h). A whole aggregate is
// one short file:
//
//   struct Counter { int64_t value = 0;
//     template <class F> void fields(F& f) { f("value", value); } };
//   struct Add { static constexpr const char* kType = "Add"; int64_t n = 0;
//     template <class F> void fields(F& f) { f("n", n); } };
//   struct Added { static constexpr const char* kType = "Added"; int64_t n = 0;
//     template <class F> void fields(F& f) { f("n", n); } };
//
//   registry.Add(rill::Aggregate<Counter>("counter")
//       .Decide<Add>([](const Counter& s, const Add& c) -> rill::Decision {
//         if (c.n <= 0) return rill::Reject("n must be positive");
//         return rill::Accept(Added{c.n});
//       })
//       .Evolve<Added>([](Counter& s, const Added& e) { s.value += e.n; }));
//
// The aggregate owns the streams of its category ("counter-7"). A decide
// function may take a third argument, the stream's version (0: no events
// yet), to tell a new stream from an existing one. Events an aggregate has no
// Evolve for are skipped. An event struct may declare
// `static constexpr uint32_t kSchema = N;` (default 1).
//
// Thread safety: decide and evolve run on the shard thread that owns the
// stream, and for different streams on several shards at once, so they must
// be pure (no shared mutable state). A built AggregateType is immutable: its
// const methods may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <cstddef>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/json_fields.h"
#include "store/status.h"

namespace rill {

// One event produced by decide: its type and JSON data for the store, and the
// typed value so evolve needs no re-parse on the hot path. A small event
// (up to kInline bytes) lives inside the DecidedEvent: deciding a command
// allocates nothing for it beyond its JSON text.
class DecidedEvent {
 public:
  std::string type;
  uint32_t schema = 1;
  std::string data;  // JSON object text

  DecidedEvent() = default;
  DecidedEvent(const DecidedEvent& o) : type(o.type), schema(o.schema), data(o.data) { CopyValue(o); }
  DecidedEvent& operator=(const DecidedEvent& o) {
    if (this != &o) {
      Reset();
      type = o.type;
      schema = o.schema;
      data = o.data;
      CopyValue(o);
    }
    return *this;
  }
  DecidedEvent(DecidedEvent&& o) noexcept : type(std::move(o.type)), schema(o.schema), data(std::move(o.data)) {
    TakeValue(o);
  }
  DecidedEvent& operator=(DecidedEvent&& o) noexcept {
    if (this != &o) {
      Reset();
      type = std::move(o.type);
      schema = o.schema;
      data = std::move(o.data);
      TakeValue(o);
    }
    return *this;
  }
  ~DecidedEvent() { Reset(); }

  template <class E>
  void SetValue(E event) {
    Reset();
    if constexpr (sizeof(E) <= kInline && alignof(E) <= alignof(std::max_align_t) &&
                  std::is_nothrow_move_constructible_v<E>) {
      value_ = new (inline_) E(std::move(event));
      ops_ = &kInlineOps<E>;
    } else {
      value_ = new E(std::move(event));
      ops_ = &kHeapOps<E>;
    }
  }
  const void* value() const { return value_; }

 private:
  static constexpr size_t kInline = 64;
  struct Ops {
    void (*destroy)(void* value);
    void* (*move_to)(void* from, void* inline_to);       // inline only: move-constructs at inline_to
    void* (*copy)(const void* from, void* inline_to);  // copy-constructs (at inline_to if inline)
    bool inline_storage;
  };
  template <class E>
  static constexpr Ops kInlineOps{
      [](void* v) { static_cast<E*>(v)->~E(); },
      [](void* from, void* to) -> void* {
        E* e = static_cast<E*>(from);
        void* moved = new (to) E(std::move(*e));
        e->~E();
        return moved;
      },
      [](const void* from, void* to) -> void* { return new (to) E(*static_cast<const E*>(from)); },
      true};
  template <class E>
  static constexpr Ops kHeapOps{
      [](void* v) { delete static_cast<E*>(v); },
      nullptr,
      [](const void* from, void*) -> void* { return new E(*static_cast<const E*>(from)); },
      false};

  void Reset() {
    if (ops_) ops_->destroy(value_);
    value_ = nullptr;
    ops_ = nullptr;
  }
  void CopyValue(const DecidedEvent& o) {
    ops_ = o.ops_;
    value_ = ops_ ? ops_->copy(o.value_, inline_) : nullptr;
  }
  void TakeValue(DecidedEvent& o) {
    ops_ = o.ops_;
    if (!ops_) value_ = nullptr;
    else if (ops_->inline_storage) value_ = ops_->move_to(o.value_, inline_);
    else value_ = o.value_;
    o.ops_ = nullptr;
    o.value_ = nullptr;
  }

  const Ops* ops_ = nullptr;
  void* value_ = nullptr;
  alignas(std::max_align_t) unsigned char inline_[kInline];
};

// decide's answer: the events to append (possibly none), or a rejection with
// the domain's reason. A rejected command has no effect.
class Decision {
 public:
  bool rejected() const { return rejected_; }
  const std::string& reason() const { return reason_; }
  std::vector<DecidedEvent>& events() { return events_; }
  const std::vector<DecidedEvent>& events() const { return events_; }

  template <class E>
  Decision& Then(E event) {
    DecidedEvent d;
    d.type = E::kType;
    if constexpr (requires { E::kSchema; }) d.schema = E::kSchema;
    d.data = json::ToJson(event);
    d.SetValue(std::move(event));
    events_.push_back(std::move(d));
    return *this;
  }
  static Decision Rejection(std::string reason) {
    Decision d;
    d.rejected_ = true;
    d.reason_ = std::move(reason);
    return d;
  }

 private:
  bool rejected_ = false;
  std::string reason_;
  std::vector<DecidedEvent> events_;
};

template <class... E>
Decision Accept(E... events) {
  Decision d;
  (d.Then(std::move(events)), ...);
  return d;
}
inline Decision Reject(std::string reason) { return Decision::Rejection(std::move(reason)); }

// Type-erased state of one actor.
struct AnyState {
  virtual ~AnyState() = default;
};
template <class S>
struct StateOf final : AnyState {
  S value{};
};

// What `rill domains` lists about a command or event type.
struct MessageInfo {
  std::string type;
  uint32_t schema = 1;  // events only
  std::vector<json::FieldInfo> fields;
};

// The runtime's view of an aggregate type. Built by Aggregate<State>.
class AggregateType {
 public:
  const std::string& name() const { return name_; }
  // Version of the state's JSON form; snapshots of another schema are ignored.
  uint32_t state_schema() const { return state_schema_; }
  // Snapshot when an actor is this many events past its last snapshot; 0: never.
  uint64_t snapshot_every() const { return snapshot_every_; }

  std::unique_ptr<AnyState> NewState() const { return new_state_(); }
  bool HasCommand(std::string_view type) const { return commands_.find(type) != commands_.end(); }
  bool Evolves(std::string_view event_type) const { return events_.find(event_type) != events_.end(); }
  // Decodes the command's data (strictly: a missing or unknown field, or one
  // of the wrong type, is an error) and decides. InvalidArgument for an
  // unknown command type (naming the known ones) or bad data; a rejection is
  // a Decision, not an error. `state` must come from this type's NewState.
  Status Decide(const AnyState& state, uint64_t version, std::string_view command_type,
                const rapidjson::Value& data, Decision* out) const;
  // Applies an event produced by Decide (typed, no parsing); one this type
  // does not evolve is skipped.
  void Apply(AnyState& state, const DecidedEvent& event) const;
  // Applies a stored event (type + JSON data); unknown types are skipped.
  // InvalidArgument when `data` is not a JSON object (or nests too deep) or
  // a listed field is missing or of the wrong type; unknown fields pass.
  Status Apply(AnyState& state, std::string_view type, std::string_view data) const;
  std::string StateToJson(const AnyState& state) const { return state_to_json_(state); }
  // Leniently, as for events. InvalidArgument as for Apply; `state` is
  // unchanged then.
  Status StateFromJson(std::string_view text, AnyState& state) const { return state_from_json_(text, state); }

  std::vector<MessageInfo> commands() const;
  std::vector<MessageInfo> events() const;
  std::vector<json::FieldInfo> state_fields() const { return state_fields_; }
  // Field list of a command type (for typed k=v arguments); null if unknown.
  const std::vector<json::FieldInfo>* CommandFields(std::string_view type) const;

 private:
  template <class S> friend class Aggregate;
  struct CommandEntry {
    std::vector<json::FieldInfo> fields;
    std::function<Status(const AnyState&, uint64_t, const rapidjson::Value&, Decision*)> decide;
  };
  struct EventEntry {
    uint32_t schema = 1;
    std::vector<json::FieldInfo> fields;
    std::function<void(AnyState&, const void*)> apply_typed;
    std::function<Status(AnyState&, const rapidjson::Value&)> apply_json;
  };
  std::string name_;
  uint32_t state_schema_ = 1;
  uint64_t snapshot_every_ = 1000;
  std::function<std::unique_ptr<AnyState>()> new_state_;
  std::function<std::string(const AnyState&)> state_to_json_;
  std::function<Status(std::string_view, AnyState&)> state_from_json_;
  std::vector<json::FieldInfo> state_fields_;
  std::map<std::string, CommandEntry, std::less<>> commands_;
  std::map<std::string, EventEntry, std::less<>> events_;
};

// Builder for an aggregate type whose state is the struct S.
template <class S>
class Aggregate {
 public:
  explicit Aggregate(std::string name) : type_(std::make_shared<AggregateType>()) {
    type_->name_ = std::move(name);
    type_->new_state_ = [] { return std::make_unique<StateOf<S>>(); };
    type_->state_to_json_ = [](const AnyState& s) { return json::ToJson(static_cast<const StateOf<S>&>(s).value); };
    type_->state_from_json_ = [](std::string_view text, AnyState& s) {
      S value{};
      RILL_RETURN_IF_ERROR(json::ReadText(text, &value, "state", /*strict=*/false));
      static_cast<StateOf<S>&>(s).value = std::move(value);
      return Status::OK();
    };
    type_->state_fields_ = json::Describe<S>();
  }

  // fn(const S&, const C&) -> Decision, or fn(const S&, const C&, uint64_t version).
  // A later Decide for the same C::kType replaces the earlier one. fn must
  // not throw (on a shard thread that is std::terminate).
  template <class C, class Fn>
  Aggregate& Decide(Fn fn) {
    AggregateType::CommandEntry e;
    e.fields = json::Describe<C>();
    e.decide = [fn = std::move(fn)](const AnyState& s, uint64_t version, const rapidjson::Value& data,
                                    Decision* out) -> Status {
      C command{};
      RILL_RETURN_IF_ERROR(json::Read(data, &command, C::kType, /*strict=*/true));
      const S& state = static_cast<const StateOf<S>&>(s).value;
      if constexpr (std::is_invocable_v<Fn, const S&, const C&, uint64_t>)
        *out = fn(state, command, version);
      else
        *out = fn(state, command);
      return Status::OK();
    };
    type_->commands_[C::kType] = std::move(e);
    return *this;
  }

  // fn(S&, const E&): folds one event into the state. The same rules as
  // Decide's fn; it cannot fail, so a value it cannot take is decide's to
  // refuse.
  template <class E, class Fn>
  Aggregate& Evolve(Fn fn) {
    AggregateType::EventEntry e;
    if constexpr (requires { E::kSchema; }) e.schema = E::kSchema;
    e.fields = json::Describe<E>();
    e.apply_typed = [fn](AnyState& s, const void* event) {
      fn(static_cast<StateOf<S>&>(s).value, *static_cast<const E*>(event));
    };
    e.apply_json = [fn](AnyState& s, const rapidjson::Value& data) -> Status {
      E event{};
      RILL_RETURN_IF_ERROR(json::Read(data, &event, E::kType, /*strict=*/false));
      fn(static_cast<StateOf<S>&>(s).value, event);
      return Status::OK();
    };
    type_->events_[E::kType] = std::move(e);
    return *this;
  }

  Aggregate& SnapshotEvery(uint64_t events) {
    type_->snapshot_every_ = events;
    return *this;
  }
  // Bump when the state's JSON form changes: older snapshots are then ignored
  // and states are rebuilt from events.
  Aggregate& StateSchema(uint32_t schema) {
    type_->state_schema_ = schema;
    return *this;
  }

  operator std::shared_ptr<const AggregateType>() const { return type_; }  // NOLINT: builder

 private:
  std::shared_ptr<AggregateType> type_;
};

}  // namespace rill
