// Reading one migration file (core/upcaster.h, "Migration files") into a
// Step. Strict: bad JSON, an unknown or missing key, a value of the wrong
// type, to != from + 1, an unknown op or a bad op argument is refused, and
// every error reads "file:line: reason" with the line of the value it is
// about.
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/internal/json_path.h"
#include "core/internal/upcast_steps.h"
#include "store/status.h"

namespace rill::upcast {

// The parsed file and where each of its values starts, so that an error about
// a value can name its line. The ops' parsers (core/upcast_ops.cpp) read
// their arguments through it.
class MigrationReader {
 public:
  // `text` and `source` must outlive the reader.
  MigrationReader(std::string_view text, const std::string& source) : text_(text), source_(source) {}
  MigrationReader(const MigrationReader&) = delete;
  MigrationReader& operator=(const MigrationReader&) = delete;

  // Parses the text; errors for bad JSON or JSON nested too deep.
  Status Parse();
  const rapidjson::Document& root() const { return doc_; }

  // InvalidArgument "source:line: reason", the line of the value at JSON
  // pointer `pointer` ("/ops/2/from"), or of the nearest value around it.
  Status ErrorAt(const std::string& pointer, const std::string& reason) const;

  // Member `key` of the object `obj` found at pointer `at`, required:
  // a non-empty string,
  Status RequireString(const rapidjson::Value& obj, const std::string& at, const char* key, std::string* out) const;
  // a schema number (an integer >= 1),
  Status RequireSchema(const rapidjson::Value& obj, const std::string& at, const char* key, uint64_t* out) const;
  // a dotted path of non-empty segments.
  Status RequirePath(const rapidjson::Value& obj, const std::string& at, const char* key, Path* out) const;

 private:
  Status Error(size_t offset, const std::string& reason) const;

  std::string_view text_;
  const std::string& source_;
  rapidjson::Document doc_;
  std::map<std::string, size_t> offsets_;  // JSON pointer -> byte offset of its value
};

// The step the file `text` describes; `source` names it in errors and in
// Step::source.
Status ParseMigrationFile(std::string_view text, const std::string& source, Step* step);

}  // namespace rill::upcast
