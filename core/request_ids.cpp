#include "core/request_ids.h"

namespace rill {

void UseRequestIdAsEventId(AppendRequest* request) {
  if (request->request_id.empty() || request->events.size() != 1 || request->events[0].id) return;
  request->events[0].id = Uuid::Parse(request->request_id);
}

}  // namespace rill
