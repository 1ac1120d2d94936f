// rill delete / metadata: the operator's per-stream operations. Both are
// written to the log as system events ($$stream), so they survive an index
// rebuild and appear in exports.
#include <fmt/format.h>

#include "cli/cli.h"
#include "cli/json_input.h"

namespace rill::cli {
namespace {

Status ValidUserStream(const std::string& stream) {
  return WithName(ValidateStreamName(stream), "stream", stream);
}

// ---- delete ----------------------------------------------------------------

struct DeleteArgs {
  std::string stream, expect = "any";
};

int RunDelete(GlobalOptions& g, const DeleteArgs& a) {
  Status valid = ValidUserStream(a.stream);
  if (!valid.ok()) return Fail(g, valid);
  auto expected = ParseExpected(a.expect, "--expect");
  if (!expected.ok()) return Fail(g, expected.status());
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(g, store.status());
  Status s = (*store)->DeleteStream(a.stream, *expected);
  if (!s.ok()) return Fail(g, s);
  if (g.json) {
    PrintJsonLine([&](JsonWriter& w) {
      w.StartObject();
      w.Key("stream");
      w.String(a.stream);
      w.Key("deleted");
      w.Bool(true);
      w.EndObject();
    });
  } else if (!g.quiet) {
    std::printf("deleted %s (its events stay in the global log)\n", a.stream.c_str());
  }
  return kExitOk;
}

// ---- metadata --------------------------------------------------------------

struct MetadataArgs {
  std::string stream, max_count, max_age, truncate_before;
};

void PrintMetadata(const GlobalOptions& g, const std::string& stream, const StreamMetadata& m) {
  if (g.json) {
    PrintJsonLine([&](JsonWriter& w) {
      w.StartObject();
      w.Key("stream");
      w.String(stream);
      w.Key("max_count");
      w.Uint64(m.max_count);
      w.Key("max_age");
      w.Int64(m.max_age_us / 1000000);
      w.Key("truncate_before");
      w.Uint64(m.truncate_before);
      w.EndObject();
    });
    return;
  }
  if (g.quiet) return;
  auto show = [](uint64_t v, const char* unit) { return v ? fmt::format("{}{}", v, unit) : std::string("not set"); };
  fmt::print("{:<16} {}\n", "stream", stream);
  fmt::print("{:<16} {}\n", "max-count", show(m.max_count, ""));
  fmt::print("{:<16} {}\n", "max-age", show(static_cast<uint64_t>(m.max_age_us / 1000000), "s"));
  fmt::print("{:<16} {}\n", "truncate-before", show(m.truncate_before, ""));
}

int RunMetadata(GlobalOptions& g, const MetadataArgs& a) {
  Status valid = ValidUserStream(a.stream);
  if (!valid.ok()) return Fail(g, valid);
  std::optional<uint64_t> max_count, max_age, truncate_before;
  if (!a.max_count.empty()) {
    auto v = ParseUint(a.max_count, "--max-count");
    if (!v.ok()) return Fail(g, v.status());
    max_count = *v;
  }
  if (!a.max_age.empty()) {
    auto v = ParseUint(a.max_age, "--max-age", 0, static_cast<uint64_t>(INT64_MAX / 1000000));
    if (!v.ok()) return Fail(g, v.status());
    max_age = *v;
  }
  if (!a.truncate_before.empty()) {
    auto v = ParseUint(a.truncate_before, "--truncate-before");
    if (!v.ok()) return Fail(g, v.status());
    truncate_before = *v;
  }
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(g, store.status());
  auto info = (*store)->GetStream(a.stream);
  if (!info.ok() && !info.status().IsNotFound()) return Fail(g, info.status());
  StreamMetadata m = info.ok() ? info->metadata : StreamMetadata{};
  if (!max_count && !max_age && !truncate_before) {
    if (!info.ok()) return Fail(g, info.status());
    PrintMetadata(g, a.stream, m);
    return kExitOk;
  }
  // Options given replace their setting; the others are kept. 0 clears.
  if (max_count) m.max_count = *max_count;
  if (max_age) m.max_age_us = static_cast<int64_t>(*max_age) * 1000000;
  if (truncate_before) m.truncate_before = *truncate_before;
  Status s = (*store)->SetStreamMetadata(a.stream, m);
  if (!s.ok()) return Fail(g, s);
  PrintMetadata(g, a.stream, m);
  return kExitOk;
}

void SetupStreamOps(CLI::App& root, GlobalOptions& g) {
  auto da = std::make_shared<DeleteArgs>();
  CLI::App* del = root.add_subcommand("delete", "Tombstone a stream: reads say not found, appends conflict");
  del->add_option("stream", da->stream, "Stream name")->required();
  del->add_option("--expect", da->expect, "Expected version: any, no-stream, exists or N")->capture_default_str();
  del->callback([da, &g] { g.exit_code = RunDelete(g, *da); });

  auto ma = std::make_shared<MetadataArgs>();
  CLI::App* meta = root.add_subcommand("metadata", "Show or set a stream's metadata (max-count, max-age, truncate-before)");
  meta->add_option("stream", ma->stream, "Stream name")->required();
  meta->add_option("--max-count", ma->max_count, "Only the newest N events are visible (0 clears)");
  meta->add_option("--max-age", ma->max_age, "Events older than SECONDS are invisible (0 clears)");
  meta->add_option("--truncate-before", ma->truncate_before, "Versions below V are invisible (0 clears)");
  meta->callback([ma, &g] { g.exit_code = RunMetadata(g, *ma); });
}

}  // namespace

RILL_COMMANDS("stream-ops", SetupStreamOps);

}  // namespace rill::cli
