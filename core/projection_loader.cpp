#include "core/projection_loader.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "core/sql_projection.h"

namespace rill {

Status LoadProjectionDirectory(const std::string& dir, ProjectionRegistry* registry) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return Status::OK();
  std::vector<std::string> files;
  for (const auto& de : fs::directory_iterator(dir, ec)) {
    if (de.path().extension() == ".sql") files.push_back(de.path().string());
  }
  if (ec) return Status::IOError(fmt::format("cannot list {}: {}", dir, ec.message()));
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    Result<std::shared_ptr<SqlProjection>> p = LoadSqlProjectionFile(f);
    if (!p.ok()) return p.status();
    RILL_RETURN_IF_ERROR(registry->Add(std::move(p).value(), ProjectionRegistry::Source::kStore, f));
  }
  return Status::OK();
}

}  // namespace rill
