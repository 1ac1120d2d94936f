#include "core/snapshot_tools.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>

namespace rill {

namespace {

bool SameJson(const std::string& a, const std::string& b) {
  rapidjson::Document da, db;
  da.Parse(a.c_str());
  db.Parse(b.c_str());
  return !da.HasParseError() && !db.HasParseError() && da == db;
}

}  // namespace

bool SnapshotSelection::Contains(std::string_view name) const {
  if (all) return true;
  if (!stream.empty()) return name == stream;
  return CategoryOf(name) == category;
}

Result<std::vector<std::pair<std::string, Snapshot>>> SelectedSnapshots(EventStore& store,
                                                                         const SnapshotSelection& selection) {
  std::vector<std::pair<std::string, Snapshot>> all, out;
  RILL_RETURN_IF_ERROR(store.ListSnapshots(&all));
  for (auto& s : all)
    if (selection.Contains(s.first)) out.push_back(std::move(s));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  if (out.empty() && !selection.stream.empty())
    return Status::NotFound(fmt::format("no snapshot for stream {}", selection.stream));
  return out;
}

std::string SnapshotProblem(EventStore& store, const DomainRegistry& registry, const std::string& stream,
                            const Snapshot& snapshot) {
  const AggregateType* type = registry.ForStream(stream);
  if (!type) return "no aggregate type owns this stream";
  if (snapshot.state_schema != type->state_schema())
    return fmt::format("state schema {} but {} declares {} (the snapshot is ignored)", snapshot.state_schema,
                       type->name(), type->state_schema());
  auto replay = ReplayState(store, registry, stream, {.until_version = snapshot.version});
  if (!replay.ok()) return "replay failed: " + replay.status().ToString();
  if (replay->version != snapshot.version)
    return fmt::format("snapshot is at version {} but the stream has only {}", snapshot.version, replay->version);
  if (!SameJson(replay->state, snapshot.state))
    return fmt::format("state differs: snapshot {} replay {}", snapshot.state, replay->state);
  return "";
}

Result<std::vector<std::string>> StreamsToSnapshot(EventStore& store, const DomainRegistry& registry,
                                                   const SnapshotSelection& selection) {
  std::vector<std::string> streams;
  if (!selection.stream.empty()) {
    streams.push_back(selection.stream);
    return streams;
  }
  std::vector<StreamInfo> infos;
  RILL_RETURN_IF_ERROR(store.ListStreams(selection.all ? "" : selection.category, &infos));
  for (const auto& i : infos)
    if (!i.deleted && i.head_version > 0 && registry.ForStream(i.name)) streams.push_back(i.name);
  return streams;
}

Result<RebuiltSnapshot> RebuildSnapshot(EventStore& store, ActorRuntime& runtime, const DomainRegistry& registry,
                                        const std::string& stream) {
  const AggregateType* type = registry.ForStream(stream);
  if (!type) return Status::NotFound(fmt::format("no aggregate type owns stream {}", stream));
  RebuiltSnapshot out;
  auto live = runtime.GetState(stream);
  if (!live.ok()) return live.status();
  out.live = std::move(live).value();
  auto replay = ReplayState(store, registry, stream);
  if (!replay.ok()) return replay.status();
  out.replayed = std::move(replay).value();
  out.state_schema = type->state_schema();
  out.previous_differed =
      out.live.version != out.replayed.version || !SameJson(out.live.state, out.replayed.state);
  RILL_RETURN_IF_ERROR(
      store.PutSnapshot(stream, Snapshot{out.replayed.version, out.state_schema, out.replayed.state}));
  return out;
}

}  // namespace rill
