#include "store/system_events.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "store/abbreviate.h"

namespace rill {

bool IsMetaStream(std::string_view s) { return s.size() > 2 && s[0] == '$' && s[1] == '$'; }
std::string_view MetaTarget(std::string_view s) { return s.substr(2); }

std::string MetadataToJson(const StreamMetadata& m) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  if (m.max_count) {
    w.Key("max-count");
    w.Uint64(m.max_count);
  }
  if (m.max_age_us) {
    w.Key("max-age");
    w.Double(m.max_age_us / 1e6);
  }
  if (m.truncate_before) {
    w.Key("truncate-before");
    w.Uint64(m.truncate_before);
  }
  w.EndObject();
  return buf.GetString();
}

Status ParseStreamMetadata(std::string_view json, StreamMetadata* out, MetadataParsing parsing) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) return Status::InvalidArgument("$metadata data must be a JSON object");
  const bool strict = parsing == MetadataParsing::kStrict;
  StreamMetadata m;
  bool seen_count = false, seen_age = false, seen_truncate = false;
  for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it) {
    std::string_view key(it->name.GetString(), it->name.GetStringLength());
    const rapidjson::Value& v = it->value;
    bool valid = false;
    if (key == "max-count") {
      valid = v.IsUint64();
      if (valid && (strict || !seen_count)) m.max_count = v.GetUint64();
      seen_count = true;
    } else if (key == "truncate-before") {
      valid = v.IsUint64();
      if (valid && (strict || !seen_truncate)) m.truncate_before = v.GetUint64();
      seen_truncate = true;
    } else if (key == "max-age") {
      // Strict: what fits in int64 microseconds.
      valid = v.IsNumber() && (!strict || (v.GetDouble() >= 0 && v.GetDouble() < 9.2e12));
      if (valid && (strict || !seen_age)) m.max_age_us = static_cast<int64_t>(v.GetDouble() * 1e6);
      seen_age = true;
    }
    if (!valid && strict)
      return Status::InvalidArgument(
          fmt::format("$metadata field \"{}\" is unknown or out of range", Abbreviate(key, 40)));
  }
  *out = m;
  return Status::OK();
}

}  // namespace rill
