#include "core/upcast_apply.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <tuple>

namespace rill {

namespace {

bool IsSystem(const Event& e) { return !e.type.empty() && e.type[0] == '$'; }

// Walks $all raw in batches, calling `fn` with each batch, polling for stop
// between batches. Ends when a read returns nothing (so events appended
// meanwhile are covered too).
template <class Fn>
Status ForEachBatch(EventStore& store, const UpcastRunOptions& options, Fn fn) {
  uint64_t total = store.LastPosition();
  uint64_t next = 1, done = 0;
  std::vector<Event> batch;
  for (;;) {
    if (options.should_stop && options.should_stop())
      return Status::Interrupted(fmt::format("stopped after position {}", next - 1));
    batch.clear();
    RILL_RETURN_IF_ERROR(store.ReadAll(next, std::max<size_t>(options.batch_events, 1), &batch, /*raw=*/true));
    if (batch.empty()) return Status::OK();
    RILL_RETURN_IF_ERROR(fn(batch));
    next = batch.back().position + 1;
    done += batch.size();
    if (options.progress) options.progress(done, std::max(total, next - 1));
  }
}

}  // namespace

Status ScanUpcast(EventStore& store, const Upcaster& upcaster, const UpcastRunOptions& options, UpcastScan* scan) {
  *scan = UpcastScan{};
  scan->pending.assign(upcaster.Migrations().size(), 0);
  std::map<std::pair<std::string, uint32_t>, UpcastGroup> groups;
  std::map<std::pair<std::string, uint32_t>, std::vector<size_t>> chains;  // cache of ChainOf
  Status s = ForEachBatch(store, options, [&](std::vector<Event>& batch) -> Status {
    for (Event& e : batch) {
      if (IsSystem(e)) continue;
      ++scan->scanned;
      if (!upcaster.NeedsUpcast(e.type, e.schema)) continue;
      auto key = std::make_pair(e.type, e.schema);
      auto chain = chains.find(key);
      if (chain == chains.end()) chain = chains.emplace(key, upcaster.ChainOf(e.type, e.schema)).first;
      for (size_t i : chain->second) ++scan->pending[i];
      auto [g, inserted] = groups.try_emplace(key);
      UpcastGroup& group = g->second;
      Event after = e;
      RILL_RETURN_IF_ERROR(upcaster.UpcastInPlace(after));
      if (inserted) {
        group.type = e.type;
        group.schema = e.schema;
        group.to_type = after.type;
        group.to_schema = after.schema;
        group.split_on_read = after.schema == e.schema;
        group.sample_before = e;
        group.sample_after = after;
      }
      ++group.events;
      if (!group.split_on_read) ++scan->to_change;
    }
    return Status::OK();
  });
  for (auto& [key, group] : groups) scan->groups.push_back(std::move(group));
  return s;
}

Status ApplyUpcast(EventStore& store, const Upcaster& upcaster, const UpcastRunOptions& options,
                   UpcastApplyReport* report) {
  *report = UpcastApplyReport{};
  bool prepared = false;
  std::vector<Event> changed;
  return ForEachBatch(store, options, [&](std::vector<Event>& batch) -> Status {
    changed.clear();
    for (Event& e : batch) {
      if (IsSystem(e)) continue;
      ++report->scanned;
      if (!upcaster.NeedsUpcast(e.type, e.schema)) continue;
      uint32_t before = e.schema;
      RILL_RETURN_IF_ERROR(upcaster.UpcastInPlace(e));
      if (e.schema != before) changed.push_back(std::move(e));
    }
    if (changed.empty()) return Status::OK();
    if (!prepared) {
      if (options.before_first_rewrite) RILL_RETURN_IF_ERROR(options.before_first_rewrite());
      prepared = true;
    }
    RILL_RETURN_IF_ERROR(store.RewriteEvents(changed));
    report->rewritten += changed.size();
    ++report->batches;
    return Status::OK();
  });
}

}  // namespace rill
