// Process managers (sagas): in-process consumers of the store's catch-up
// subscription that turn events into commands. Each keeps its checkpoint in
// the store ("pm:<name>"); every command it sends has the id
// "pm:<name>:<triggering event id>:<step>", so after a crash the redelivered
// event sends the same ids and an effect already made is never made twice.
//
// Only one process runs the managers of a store at a time (a lock file in
// the store directory): a second runner waits for the first one's progress
// instead of racing it.
//
// Thread safety: RunProcessManagers runs every manager on its calling
// thread, one event at a time: Handle, the ProcessContext it is given,
// options.stop and options.progress are all called there. A ProcessContext
// is valid only during the Handle call that received it.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/actor_runtime.h"
#include "store/event.h"
#include "store/event_store.h"
#include "store/status.h"

namespace rill {

// What a process manager may do while it handles one event.
class ProcessContext {
 public:
  virtual ~ProcessContext() = default;
  // Sends `command` with the id derived from (manager, event, step) and
  // causation/correlation meta (any it carried are replaced); waits for
  // the outcome. Errors: those of ActorRuntime's commands; a rejection comes
  // back as Rejected, and a step already made answers its first outcome
  // (duplicate = true).
  virtual Result<CommandResult> Send(int step, Command command) = 0;
  // The current state of an aggregate stream (version 0 if it has no
  // events), reloaded when the store is ahead of the live actor (another
  // process wrote it). Errors: those of ActorRuntime::GetState.
  virtual Result<StateView> State(const std::string& stream) = 0;
};

class ProcessManager {
 public:
  virtual ~ProcessManager() = default;
  virtual std::string name() const = 0;
  // Categories whose events it reads; empty: all.
  virtual std::vector<std::string> categories() const = 0;
  // Handles one event. A rejection of a command it sends is part of the
  // workflow (handle it); any other error stops the run before this
  // event, which is redelivered on the next run (its steps then answer as
  // duplicates). May be called again for an event it handled before a crash.
  // Must not throw.
  virtual Status Handle(const Event& event, ProcessContext& context) = 0;

  // How the saga kept on `stream` (a stream of one of categories()) ended,
  // judged from its aggregate state once the manager has handled everything
  // its events caused. `rill submit` prints each failed one, so that a
  // command accepted for a workflow that then failed does not look like
  // success. The default reads the convention of the sample sagas: a state
  // with "status":"failed" failed, for its "reason". Running or succeeded
  // sagas, and streams that are not sagas, answer nullopt.
  struct Outcome {
    std::string stream;
    std::string status;  // "failed"
    std::string reason;
  };
  virtual std::optional<Outcome> Ended(const StateView& state) const;
};

// True if some manager in `registry` reads `stream`'s category (keeps its
// sagas there).
bool IsSagaStream(const DomainRegistry& registry, const std::string& stream);
// The failed sagas among `streams` (those of a category some manager in
// `registry` reads), by each manager's Ended(), in the order of `streams`.
// A stream whose state cannot be read (or has no events) is skipped: the
// caller already has the command's result, and this is only a report.
// Blocks on runtime.GetState: not from a shard thread.
std::vector<ProcessManager::Outcome> FailedSagas(ActorRuntime& runtime, const DomainRegistry& registry,
                                                 const std::vector<std::string>& streams);

struct ProcessRunOptions {
  bool follow = false;                       // keep going until stop() is true
  std::function<bool()> stop;                // polled between batches (and while waiting for the lock)
  std::chrono::milliseconds poll{100};       // wait for new events when following
  // For a runner that finds another process holding the lock: how long to
  // wait for that process to catch up before giving up (catch-up mode).
  std::chrono::milliseconds wait_for_other_runner{30000};
  // After each batch of events read for a manager: its name and the
  // position handled through.
  std::function<void(const std::string& manager, uint64_t position)> progress;
};

// Runs every registered process manager: from its checkpoint to the end of
// the log, repeating until the commands they send cause nothing more to
// handle; with follow, then keeps handling new events until stop(). OK at
// once without managers. When another process holds the lock: without
// follow, OK once that process's checkpoints reach the log's end as it is
// now (or this one takes over the lock and runs); with follow, waits for
// the lock (OK if stop() comes first). A stop() during a catch-up returns
// OK, not Interrupted. Errors: the first error a Handle returns ("process
// manager <name> at position <p>: ..."; the run stops, what was handled
// before stays checkpointed); Busy (the other runner did not catch up within
// wait_for_other_runner); Interrupted (stop() while waiting for it); the
// store's (the subscription, checkpoints: IOError, Corruption); IOError (the
// lock file cannot be opened).
Status RunProcessManagers(EventStore& store, ActorRuntime& runtime, const DomainRegistry& registry,
                          const ProcessRunOptions& options = {});

// The checkpoint name of a manager in the store.
std::string ProcessManagerCheckpoint(const std::string& manager);

}  // namespace rill
