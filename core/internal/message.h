// Message: what the actor runtime posts to a shard's mailbox.
#pragma once

#include <cstdint>
#include <functional>

#include "core/actor_runtime.h"

namespace rill::actors {

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

}  // namespace rill::actors
