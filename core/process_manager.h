// Process managers (sagas): in-process consumers of the store's catch-up
// subscription that turn events into commands. Each keeps its checkpoint in
// the store ("pm:<name>"); every command it sends has the id
// "pm:<name>:<triggering event id>:<step>", so after a crash the redelivered
// event sends the same ids and an effect already made is never made twice.
//
// Only one process runs the managers of a store at a time (a lock file in
// the store directory): a second runner waits for the first one's progress
// instead of racing it.
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
  // causation/correlation meta; waits for the outcome. A rejection comes
  // back as a Status with code kRejected.
  virtual Result<CommandResult> Send(int step, Command command) = 0;
  // The current state of an aggregate stream (version 0 if it has no events).
  virtual Result<StateView> State(const std::string& stream) = 0;
};

class ProcessManager {
 public:
  virtual ~ProcessManager() = default;
  virtual std::string name() const = 0;
  // Categories whose events it reads; empty: all.
  virtual std::vector<std::string> categories() const = 0;
  // Handles one event. A rejection of a command it sends is part of the
  // workflow (handle it); any other error stops the manager before this
  // event, which is redelivered on the next run.
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

// The failed sagas among `streams` (those of a category some manager in
// `registry` reads), by each manager's Ended(), in the order of `streams`.
// A stream whose state cannot be read is skipped: the caller already has
// the command's result, and this is only a report.
// True if some manager in `registry` reads `stream`'s category (keeps its
// sagas there).
bool IsSagaStream(const DomainRegistry& registry, const std::string& stream);
std::vector<ProcessManager::Outcome> FailedSagas(ActorRuntime& runtime, const DomainRegistry& registry,
                                                 const std::vector<std::string>& streams);

struct ProcessRunOptions {
  bool follow = false;                       // keep going until stop() is true
  std::function<bool()> stop;                // polled between batches
  std::chrono::milliseconds poll{100};       // wait for new events when following
  // For a runner that finds another process holding the lock: how long to
  // wait for that process to catch up before giving up (catch-up mode).
  std::chrono::milliseconds wait_for_other_runner{30000};
  std::function<void(const std::string& manager, uint64_t position)> progress;
};

// Runs every registered process manager: from its checkpoint to the end of
// the log, repeating until the commands they send cause nothing more to
// handle; with follow, then keeps handling new events until stop().
Status RunProcessManagers(EventStore& store, ActorRuntime& runtime, const DomainRegistry& registry,
                          const ProcessRunOptions& options = {});

// The checkpoint name of a manager in the store.
std::string ProcessManagerCheckpoint(const std::string& manager);

}  // namespace rill
