// Shared by the projection commands (project.cpp, run.cpp): the projections
// this binary knows, built-in and registered in the store directory.
#pragma once

#include <string>

#include "core/projection.h"
#include "store/status.h"

namespace rill::cli {

// The sample domains' built-ins plus <db>/projections/*.sql.
Status LoadProjections(const std::string& db_dir, ProjectionRegistry* registry);

}  // namespace rill::cli
