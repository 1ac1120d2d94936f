#include "core/projection.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>

namespace rill {

bool EventFilter::Matches(std::string_view stream, std::string_view type) const {
  if (!types.empty() && std::find(types.begin(), types.end(), type) == types.end()) return false;
  if (!categories.empty()) {
    std::string_view cat = CategoryOf(stream);
    if (std::find(categories.begin(), categories.end(), cat) == categories.end()) return false;
  }
  return true;
}

Status ValidateProjectionName(std::string_view name) {
  if (name.empty() || name.size() > 64)
    return Status::InvalidArgument(fmt::format("projection name '{}' must be 1..64 bytes", name));
  if (name.front() == '-') return Status::InvalidArgument(fmt::format("projection name '{}' starts with '-'", name));
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok)
      return Status::InvalidArgument(
          fmt::format("projection name '{}' may hold only letters, digits, '_' and '-'", name));
  }
  return Status::OK();
}

std::string FingerprintOf(std::string_view text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return fmt::format("{:016x}", h);
}

namespace {

class CppHandler : public ProjectionHandler {
 public:
  CppHandler(const CppProjectionSpec& spec, SqliteDb& db) : spec_(spec), db_(db) {}
  Status Apply(const Event& event) override { return spec_.apply(event, db_); }

 private:
  const CppProjectionSpec& spec_;
  SqliteDb& db_;
};

class CppProjection : public Projection {
 public:
  explicit CppProjection(CppProjectionSpec spec) : spec_(std::move(spec)) {}
  const std::string& name() const override { return spec_.name; }
  const char* kind() const override { return "c++"; }
  const EventFilter& filter() const override { return spec_.filter; }
  std::string fingerprint() const override {
    return FingerprintOf(fmt::format("c++ {} v{} {}", spec_.name, spec_.version, spec_.schema));
  }
  Result<std::unique_ptr<ProjectionHandler>> Attach(SqliteDb& db) const override {
    if (!spec_.schema.empty()) {
      Status s = db.Exec(spec_.schema);
      if (!s.ok()) return s.WithContext(fmt::format("projection {}: schema", spec_.name));
    }
    return std::unique_ptr<ProjectionHandler>(new CppHandler(spec_, db));
  }
  bool partitioned_by_stream() const override { return spec_.partitioned_by_stream; }

 private:
  CppProjectionSpec spec_;
};

}  // namespace

std::shared_ptr<const Projection> MakeCppProjection(CppProjectionSpec spec) {
  return std::make_shared<CppProjection>(std::move(spec));
}

const char* SourceName(ProjectionRegistry::Source s) {
  switch (s) {
    case ProjectionRegistry::Source::kBuiltIn: return "built-in";
    case ProjectionRegistry::Source::kPlugin: return "plugin";
    case ProjectionRegistry::Source::kStore: break;
  }
  return "store";
}

Status ProjectionRegistry::Add(std::shared_ptr<const Projection> projection, Source source, std::string file) {
  RILL_RETURN_IF_ERROR(ValidateProjectionName(projection->name()));
  if (const Entry* e = Find(projection->name())) {
    return Status::Conflict(fmt::format("a {} projection named {} already exists{}", SourceName(e->source),
                                        projection->name(), e->file.empty() ? "" : " (" + e->file + ")"));
  }
  Entry entry{std::move(projection), source, std::move(file)};
  auto pos = std::lower_bound(entries_.begin(), entries_.end(), entry.projection->name(),
                              [](const Entry& a, const std::string& n) { return a.projection->name() < n; });
  entries_.insert(pos, std::move(entry));
  return Status::OK();
}

const ProjectionRegistry::Entry* ProjectionRegistry::Find(std::string_view name) const {
  for (const auto& e : entries_)
    if (e.projection->name() == name) return &e;
  return nullptr;
}

}  // namespace rill
