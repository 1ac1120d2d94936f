#include "core/process_manager.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <thread>

#include "store/file_lock.h"

namespace rill {

std::string ProcessManagerCheckpoint(const std::string& manager) { return "pm:" + manager; }

std::optional<ProcessManager::Outcome> ProcessManager::Ended(const StateView& view) const {
  rapidjson::Document state;
  state.Parse(view.state.data(), view.state.size());
  if (state.HasParseError() || !state.IsObject()) return std::nullopt;
  auto status = state.FindMember("status");
  if (status == state.MemberEnd() || !status->value.IsString() || std::string_view(status->value.GetString()) != "failed")
    return std::nullopt;
  Outcome out{view.stream, "failed", ""};
  auto reason = state.FindMember("reason");
  if (reason != state.MemberEnd() && reason->value.IsString()) out.reason = reason->value.GetString();
  return out;
}

namespace {
bool Reads(const ProcessManager& m, const std::string& stream) {
  std::vector<std::string> cats = m.categories();
  return cats.empty() || std::find(cats.begin(), cats.end(), CategoryOf(stream)) != cats.end();
}
}  // namespace

bool IsSagaStream(const DomainRegistry& registry, const std::string& stream) {
  for (const auto& m : registry.process_managers())
    if (Reads(*m, stream)) return true;
  return false;
}

std::vector<ProcessManager::Outcome> FailedSagas(ActorRuntime& runtime, const DomainRegistry& registry,
                                                 const std::vector<std::string>& streams) {
  std::vector<ProcessManager::Outcome> out;
  for (const std::string& stream : streams) {
    for (const auto& m : registry.process_managers()) {
      if (!Reads(*m, stream)) continue;
      Result<StateView> view = runtime.GetState(stream);
      if (!view.ok() || view->version == 0) break;
      if (std::optional<ProcessManager::Outcome> o = m->Ended(*view)) out.push_back(std::move(*o));
      break;
    }
  }
  return out;
}

namespace {

// One runner per store at a time: a FileLock on a file in the store
// directory (released by the kernel if the process dies).
class RunnerLock {
 public:
  explicit RunnerLock(const std::string& dir) : path_(dir + "/process-managers.lock") {}
  // True once held; an error if the lock file cannot be opened.
  Result<bool> TryAcquire() {
    if (lock_.held()) return true;
    Result<FileLock> r = FileLock::TryAcquire(path_, "process managers are running");
    if (r.ok()) {
      lock_ = std::move(r).value();
      return true;
    }
    if (r.status().code() == Code::kBusy) return false;
    return r.status();
  }

 private:
  std::string path_;
  FileLock lock_;
};

class Context final : public ProcessContext {
 public:
  Context(EventStore& store, ActorRuntime& runtime, const std::string& manager)
      : store_(store), runtime_(runtime), manager_(manager) {}
  void set_event(const Event* e) {
    event_ = e;
    correlation_.clear();
    rapidjson::Document meta;
    meta.Parse(e->meta.data(), e->meta.size());
    if (!meta.HasParseError() && meta.IsObject() && meta.HasMember("correlation_id") &&
        meta["correlation_id"].IsString())
      correlation_ = meta["correlation_id"].GetString();
    if (correlation_.empty()) correlation_ = e->id.ToString();
  }

  Result<CommandResult> Send(int step, Command command) override {
    command.id = fmt::format("pm:{}:{}:{}", manager_, event_->id.ToString(), step);
    command.causation_id = event_->id.ToString();
    command.correlation_id = correlation_;
    return runtime_.Execute(std::move(command));
  }

  // A live actor only learns of another process's writes when it next
  // writes; a runner that took over from a dead one may hold actors from
  // before that runner's steps. A saga decides on this state (which step is
  // next), so when the store is ahead of the actor, every actor is dropped
  // and the state is read fresh — else a step whose outcome has changed
  // since (a debit rejected, then funded) would be redone.
  Result<StateView> State(const std::string& stream) override {
    auto view = runtime_.GetState(stream);
    if (!view.ok()) return view;
    auto info = store_.GetStream(stream);
    if (!info.ok() || info->head_version <= view->version) return view;
    runtime_.DropAll();
    return runtime_.GetState(stream);
  }

 private:
  EventStore& store_;
  ActorRuntime& runtime_;
  const std::string& manager_;
  const Event* event_ = nullptr;
  std::string correlation_;
};

struct Running {
  ProcessManager* manager;
  std::string name;
  std::vector<std::string> categories;
  std::unique_ptr<Subscription> subscription;
  uint64_t saved = 0;  // checkpoint as stored
};

bool Wants(const Running& r, const Event& e) {
  if (e.stream.empty() || e.stream[0] == '$') return false;
  if (r.categories.empty()) return true;
  std::string_view category = CategoryOf(e.stream);
  for (const auto& c : r.categories)
    if (c == category) return true;
  return false;
}

// Handles what the subscription has now (waiting up to `wait` when nothing);
// sets *got when any event arrived.
Status Pump(EventStore& store, ActorRuntime& runtime, Running& r, std::chrono::milliseconds wait, bool* got,
            const ProcessRunOptions& options) {
  Context context(store, runtime, r.name);
  const std::string checkpoint = ProcessManagerCheckpoint(r.name);
  std::vector<Event> batch;
  for (;;) {
    batch.clear();
    RILL_RETURN_IF_ERROR(r.subscription->Next(&batch, 1024, wait));
    wait = std::chrono::milliseconds(0);
    if (batch.empty()) break;
    *got = true;
    bool handled = false;
    uint64_t done = r.saved;
    for (const Event& e : batch) {
      if (Wants(r, e)) {
        context.set_event(&e);
        Status s = r.manager->Handle(e, context);
        if (!s.ok()) {
          if (done > r.saved) (void)store.SetCheckpoint(checkpoint, done);
          // Redeliver this event next time: the subscription is past it.
          r.subscription = store.Subscribe(done);
          r.saved = done;
          return s.WithContext(fmt::format("process manager {} at position {}", r.name, e.position));
        }
        handled = true;
      }
      // Checkpoint whole stored events only: inside a split event (parts
      // of one position) the checkpoint stays before it, so a failure or
      // crash redelivers all its parts (their commands dedupe by the parts'
      // own ids) and never skips one.
      done = e.part + 1 == e.parts ? e.position : e.position - 1;
    }
    // A checkpoint is a durable write: save it when work was done, and
    // otherwise only now and then while skipping unrelated events.
    if (handled || done >= r.saved + 100000) {
      RILL_RETURN_IF_ERROR(store.SetCheckpoint(checkpoint, done));
      r.saved = done;
    }
    if (options.progress) options.progress(r.name, done);
    if (options.stop && options.stop()) break;
  }
  uint64_t position = r.subscription->position();
  if (position > r.saved) {
    RILL_RETURN_IF_ERROR(store.SetCheckpoint(checkpoint, position));
    r.saved = position;
  }
  return Status::OK();
}

// Another process runs the managers: wait until it has handled everything
// up to `target`, or until we can take over.
Status WaitForOtherRunner(EventStore& store, const DomainRegistry& registry, RunnerLock& lock, uint64_t target,
                          const ProcessRunOptions& options, bool* took_over) {
  auto deadline = std::chrono::steady_clock::now() + options.wait_for_other_runner;
  for (;;) {
    Result<bool> got = lock.TryAcquire();
    RILL_RETURN_IF_ERROR(got.status());
    if (*got) {
      *took_over = true;
      return Status::OK();
    }
    bool all = true;
    for (const auto& m : registry.process_managers()) {
      auto cp = store.GetCheckpoint(ProcessManagerCheckpoint(m->name()));
      RILL_RETURN_IF_ERROR(cp.status());
      all = all && *cp >= target;
    }
    if (all) return Status::OK();
    if (options.stop && options.stop()) return Status::Interrupted("stopped while waiting for process managers");
    if (std::chrono::steady_clock::now() > deadline)
      return Status::Busy("process managers are run by another process that has not caught up");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

Status RunProcessManagers(EventStore& store, ActorRuntime& runtime, const DomainRegistry& registry,
                          const ProcessRunOptions& options) {
  if (registry.process_managers().empty()) return Status::OK();
  RunnerLock lock(store.dir());
  Result<bool> got = lock.TryAcquire();
  RILL_RETURN_IF_ERROR(got.status());
  if (!*got) {
    if (!options.follow) {
      bool took_over = false;
      RILL_RETURN_IF_ERROR(WaitForOtherRunner(store, registry, lock, store.LastPosition(), options, &took_over));
      if (!took_over) return Status::OK();
    } else {
      for (;;) {
        got = lock.TryAcquire();
        RILL_RETURN_IF_ERROR(got.status());
        if (*got) break;
        if (options.stop && options.stop()) return Status::OK();
        std::this_thread::sleep_for(options.poll);
      }
    }
  }

  std::vector<Running> running;
  for (const auto& m : registry.process_managers()) {
    Running r;
    r.manager = m.get();
    r.name = m->name();
    r.categories = m->categories();
    auto cp = store.GetCheckpoint(ProcessManagerCheckpoint(r.name));
    RILL_RETURN_IF_ERROR(cp.status());
    r.saved = *cp;
    r.subscription = store.Subscribe(r.saved);
    running.push_back(std::move(r));
  }

  // Catch up, again and again while the managers' own commands cause events.
  for (;;) {
    bool got = false;
    for (auto& r : running) RILL_RETURN_IF_ERROR(Pump(store, runtime, r, std::chrono::milliseconds(0), &got, options));
    if (!got || (options.stop && options.stop())) break;
  }
  if (!options.follow) return Status::OK();

  auto wait = std::chrono::milliseconds(
      std::max<int64_t>(1, options.poll.count() / static_cast<int64_t>(running.size())));
  while (!(options.stop && options.stop())) {
    bool got = false;
    for (auto& r : running) RILL_RETURN_IF_ERROR(Pump(store, runtime, r, wait, &got, options));
  }
  return Status::OK();
}

}  // namespace rill
