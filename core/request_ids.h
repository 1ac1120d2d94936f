// Request ids as event ids: an append's request id that is a UUID becomes the
// id of the one event it writes (as in EventStoreDB), so a retried append —
// answered by the store as a duplicate — names the very same event, and a
// client that picked the id knows its event's id before the store answers.
// An append of several events keeps generated ids: they cannot share one.
#pragma once

#include "store/event.h"

namespace rill {

// Gives the only event of `request` its request id as event id when the
// request id is a UUID and the event has no id yet; otherwise changes nothing.
void UseRequestIdAsEventId(AppendRequest* request);

}  // namespace rill
