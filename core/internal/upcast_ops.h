// The ops of migration files ({"op": "rename", ...}; core/upcaster.h): one
// table, one entry per op, each entry saying how the op is read from its JSON
// object and what it does to an event. The table is core/upcast_ops.cpp; the
// file parser (core/migration_file.cpp) and the chain (core/upcast_chain.cpp)
// reach ops only through it.
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/internal/json_path.h"
#include "core/upcaster.h"
#include "store/status.h"

namespace rill::upcast {

class MigrationReader;  // core/internal/migration_file.h
struct OpSpec;
struct Op;

// One part of a "split": its type and schema as it leaves the step (empty and
// 0 until the file parser fills in the defaults, which depend on the step),
// and the ops that shape its data from a copy of the event's.
struct SplitPart {
  std::string type;
  uint32_t schema = 1;
  std::vector<Op> ops;
};

// One op of a migration file, parsed: its table entry and its arguments. The
// arguments are a vocabulary the entries share; each entry says which members
// it fills.
struct Op {
  const OpSpec* spec = nullptr;
  Path from, to, path;
  std::vector<Path> fields;
  std::shared_ptr<rapidjson::Document> value;
  std::string target;  // a type name, or a word such as convert's "number"
  double factor = 1.0;
  std::vector<SplitPart> parts;
};

// What an op means to the step around it; the file parser enforces where an
// op of each shape may stand, and the chain reads the step's shape.
enum class OpShape {
  kData,    // reshapes the event's data: anywhere, also inside split parts
  kRetype,  // changes the event's type: once per step, not inside a part
  kSplit,   // reads the event as several: the last op, no retype beside it
  kMerge,   // folds the event into the one before it: the last op, no retype beside it
};

struct OpSpec {
  std::string_view name;                // its "op" value
  std::vector<std::string_view> keys;   // the keys it takes besides "op"; any other is an error
  OpShape shape;
  // Reads the op's arguments from `object` (at JSON pointer `at`) into *op,
  // errors through `file` so they carry the file and line.
  Status (*parse)(const MigrationReader& file, const rapidjson::Value& object, const std::string& at, Op* op);
  // Applies the op to `event`. Only a split adds parts to *extra_parts,
  // which is null where splitting is not allowed (in place).
  Status (*apply)(const Op& op, UpcastEvent& event, std::vector<UpcastEvent>* extra_parts);
};

// Every op, in the order errors list them.
const std::vector<OpSpec>& OpTable();
// The entry named `name`, or nullptr.
const OpSpec* FindOp(std::string_view name);

// Reads one op object at JSON pointer `at`: its "op" names a table entry,
// which parses the rest; a key the entry does not take is an error. Inside a
// split part (`in_part`) only data ops are allowed.
Status ParseOp(const MigrationReader& file, const rapidjson::Value& object, const std::string& at, bool in_part, Op* op);

}  // namespace rill::upcast
