// Loading the projections registered in a store directory
// (<db>/projections/NAME.sql, written by `rill project add`) into a
// ProjectionRegistry. It needs both the registry (core/projection.h) and the
// SQL-file kind (core/sql_projection.h), so it lives in neither: the
// projection contract does not depend on one of its kinds.
#pragma once

#include <string>

#include "core/projection.h"
#include "store/status.h"

namespace rill {

// Adds every *.sql file of `dir` (ProjectionsDir(store)), in file-name order,
// as Source::kStore with its path; a missing directory holds none. A file
// that does not parse is an error naming it; a name already in `registry` is
// Conflict.
Status LoadProjectionDirectory(const std::string& dir, ProjectionRegistry* registry);

}  // namespace rill
