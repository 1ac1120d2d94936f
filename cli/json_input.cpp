#include "cli/json_input.h"

#include "core/json_fields.h"

#include <fmt/format.h>
#include <rapidjson/encodedstream.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <unordered_set>

namespace rill::cli {
namespace {

// Iterative: a line of 100,000 '[' must not overflow the stack.
// NumbersAsStrings: numbers are copied as written, never via double.
constexpr unsigned kParseFlags =
    rapidjson::kParseValidateEncodingFlag | rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseIterativeFlag;

using InputStream = rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream>;
using SizeType = rapidjson::SizeType;

// "Invalid encoding in string." -> "invalid encoding in string"
std::string ParseErrorText(rapidjson::ParseErrorCode code) {
  std::string s = rapidjson::GetParseError_En(code);
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

const char* KindName(JsonScalar::Kind k) {
  switch (k) {
    case JsonScalar::kNull: return "null";
    case JsonScalar::kBool: return "a boolean";
    case JsonScalar::kNumber: return "a number";
    case JsonScalar::kString: return "a string";
  }
  return "a value";
}

// Runs the reader over `text` with `handler`; the handler's own error (it
// returned false) wins over the parser's generic "terminated" message.
template <class Handler>
Status RunParse(std::string_view text, Handler& handler, std::string_view what) {
  // Deeper input would crash whoever parses the stored payload later.
  RILL_RETURN_IF_ERROR(rill::json::CheckDepth(text, what));
  rapidjson::MemoryStream ms(text.data(), text.size());
  InputStream is(ms);
  rapidjson::Reader reader;
  rapidjson::ParseResult r = reader.Parse<kParseFlags>(is, handler);
  if (!handler.error.empty()) return Status::InvalidArgument(handler.error);
  if (r.IsError())
    return Status::InvalidArgument(
        fmt::format("{} is not valid JSON: {} at offset {}", what, ParseErrorText(r.Code()), r.Offset()));
  // MemoryStream reports a NUL byte as the end of input; anything after it is
  // trailing garbage the parser did not see.
  if (is.Tell() < text.size())
    return Status::InvalidArgument(fmt::format("{} is not valid JSON: unexpected NUL byte at offset {}", what, is.Tell()));
  return Status::OK();
}

// RapidJSON validates the input's bytes but decodes a "\udc00" escape (a
// lone low surrogate) to bytes that are not UTF-8; stored, it would make an
// export that import refuses. A surrogate's UTF-8 form starts ED A0..ED BF.
bool HasSurrogate(const char* s, SizeType n) {
  const char* end = s + n;
  for (const char* p = s; (p = static_cast<const char*>(std::memchr(p, 0xED, static_cast<size_t>(end - p))));
       ++p)
    if (p + 1 < end && static_cast<unsigned char>(p[1]) >= 0xA0) return true;
  return false;
}
constexpr const char* kSurrogateError = "contains an unpaired UTF-16 surrogate escape, which is not Unicode";

// The keys of each object open in a parse, innermost last: a key that
// appears twice in one object is refused (readers would disagree on which
// one counts). Linear while an object is small, a hash set once it is not.
class KeyTracker {
 public:
  void Open() {
    if (depth_ == levels_.size()) levels_.emplace_back();
    Level& l = levels_[depth_++];
    l.small.clear();
    l.big.clear();
  }
  void Close() {
    if (depth_ > 0) --depth_;
  }
  // False if the innermost open object already has `key`.
  bool Add(std::string_view key) {
    if (depth_ == 0) return true;
    Level& l = levels_[depth_ - 1];
    if (l.big.empty()) {
      if (std::find(l.small.begin(), l.small.end(), key) != l.small.end()) return false;
      l.small.emplace_back(key);
      if (l.small.size() > 32) l.big.insert(l.small.begin(), l.small.end());
      return true;
    }
    return l.big.emplace(key).second;
  }

 private:
  struct Level {
    std::vector<std::string> small;
    std::unordered_set<std::string> big;
  };
  std::vector<Level> levels_;
  size_t depth_ = 0;
};

// Copies a JSON object to a compact writer, refusing any other root type.
struct ObjectCompactor {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w{buf};
  std::string what;
  std::string error;
  bool started = false;

  bool Root(bool is_object, const char* kind) {
    if (started) return true;
    started = true;
    if (!is_object) error = fmt::format("{} must be a JSON object, not {}", what, kind);
    return is_object;
  }
  bool Null() { return Root(false, "null") && w.Null(); }
  bool Bool(bool b) { return Root(false, "a boolean") && w.Bool(b); }
  bool Int(int i) { return Root(false, "a number") && w.Int(i); }
  bool Uint(unsigned u) { return Root(false, "a number") && w.Uint(u); }
  bool Int64(int64_t i) { return Root(false, "a number") && w.Int64(i); }
  bool Uint64(uint64_t u) { return Root(false, "a number") && w.Uint64(u); }
  bool Double(double d) { return Root(false, "a number") && w.Double(d); }
  bool RawNumber(const char* s, SizeType n, bool) {
    return Root(false, "a number") && w.RawValue(s, n, rapidjson::kNumberType);
  }
  bool String(const char* s, SizeType n, bool) {
    return Root(false, "a string") && Unicode(s, n) && w.String(s, n);
  }
  bool StartObject() {
    keys.Open();
    return Root(true, "") && w.StartObject();
  }
  bool Key(const char* s, SizeType n, bool) {
    if (!Unicode(s, n)) return false;
    if (!keys.Add(std::string_view(s, n))) {
      error = fmt::format("{} has the key \"{}\" twice in one object", what, Abbreviate(std::string_view(s, n), 40));
      return false;
    }
    return w.Key(s, n);
  }
  bool EndObject(SizeType n) {
    keys.Close();
    return w.EndObject(n);
  }
  bool Unicode(const char* s, SizeType n) {
    if (!HasSurrogate(s, n)) return true;
    error = fmt::format("{} {}", what, kSurrogateError);
    return false;
  }
  KeyTracker keys;
  bool StartArray() { return Root(false, "an array") && w.StartArray(); }
  bool EndArray(SizeType n) { return w.EndArray(n); }
};

// Flattens one JSONL line (see JsonLine).
struct LineHandler {
  const std::vector<std::string_view>& allowed;
  const std::vector<std::string_view>& object_fields;
  JsonLine* out;
  std::string error;

  int depth = 0;  // 0 outside the root object, 1 inside it
  std::string key;
  bool capturing = false;
  int capture_depth = 0;
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w;

  LineHandler(const std::vector<std::string_view>& a, const std::vector<std::string_view>& o, JsonLine* j)
      : allowed(a), object_fields(o), out(j) {}

  bool Fail(std::string m) {
    error = std::move(m);
    return false;
  }
  bool IsObjectField() const {
    return std::find(object_fields.begin(), object_fields.end(), key) != object_fields.end();
  }
  bool Scalar(JsonScalar::Kind kind, std::string_view text) {
    if (depth == 0) return Fail(fmt::format("the line must be a JSON object, not {}", KindName(kind)));
    if (IsObjectField()) return Fail(fmt::format("\"{}\" must be a JSON object, not {}", key, KindName(kind)));
    out->scalars[key] = JsonScalar{kind, std::string(text)};
    return true;
  }
  bool Null() { return capturing ? w.Null() : Scalar(JsonScalar::kNull, "null"); }
  bool Bool(bool b) { return capturing ? w.Bool(b) : Scalar(JsonScalar::kBool, b ? "true" : "false"); }
  // Only RawNumber is called under kParseNumbersAsStringsFlag; the others
  // complete the handler concept.
  bool Int(int i) { return RawText(std::to_string(i)); }
  bool Uint(unsigned u) { return RawText(std::to_string(u)); }
  bool Int64(int64_t i) { return RawText(std::to_string(i)); }
  bool Uint64(uint64_t u) { return RawText(std::to_string(u)); }
  bool Double(double d) { return RawText(fmt::format("{}", d)); }
  bool RawText(const std::string& s) { return RawNumber(s.data(), static_cast<SizeType>(s.size()), true); }
  bool RawNumber(const char* s, SizeType n, bool) {
    if (capturing) return w.RawValue(s, n, rapidjson::kNumberType);
    return Scalar(JsonScalar::kNumber, std::string_view(s, n));
  }
  bool String(const char* s, SizeType n, bool) {
    if (HasSurrogate(s, n)) return Fail(fmt::format("\"{}\" {}", key, kSurrogateError));
    if (capturing) return w.String(s, n);
    return Scalar(JsonScalar::kString, std::string_view(s, n));
  }
  KeyTracker keys;  // of the captured objects
  bool StartObject() {
    if (capturing) {
      ++capture_depth;
      keys.Open();
      return w.StartObject();
    }
    if (depth == 0) {
      depth = 1;
      return true;
    }
    if (!IsObjectField()) return Fail(fmt::format("\"{}\" must not be an object", key));
    buf.Clear();
    w.Reset(buf);
    capturing = true;
    capture_depth = 1;
    keys.Open();
    return w.StartObject();
  }
  bool EndObject(SizeType n) {
    if (!capturing) {
      depth = 0;
      return true;
    }
    keys.Close();
    if (!w.EndObject(n)) return false;
    if (--capture_depth == 0) {
      capturing = false;
      out->objects[key] = std::string(buf.GetString(), buf.GetSize());
    }
    return true;
  }
  bool StartArray() {
    if (capturing) {
      ++capture_depth;
      return w.StartArray();
    }
    if (depth == 0) return Fail("the line must be a JSON object, not an array");
    if (IsObjectField()) return Fail(fmt::format("\"{}\" must be a JSON object, not an array", key));
    return Fail(fmt::format("\"{}\" must not be an array", key));
  }
  bool EndArray(SizeType n) {
    --capture_depth;
    return w.EndArray(n);
  }
  bool Key(const char* s, SizeType n, bool) {
    if (HasSurrogate(s, n)) return Fail(fmt::format("a key in \"{}\" {}", key, kSurrogateError));
    if (capturing) {
      if (!keys.Add(std::string_view(s, n)))
        return Fail(fmt::format("\"{}\" has the key \"{}\" twice in one object", key,
                                Abbreviate(std::string_view(s, n), 40)));
      return w.Key(s, n);
    }
    key.assign(s, n);
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
      return Fail(fmt::format("unknown field \"{}\"", Abbreviate(key, 40)));
    if (std::find(out->keys.begin(), out->keys.end(), key) != out->keys.end())
      return Fail(fmt::format("field \"{}\" appears twice", key));
    out->keys.push_back(key);
    return true;
  }
};

}  // namespace

Result<std::string> CompactJsonObject(std::string_view text, std::string_view what) {
  ObjectCompactor c;
  c.what = std::string(what);
  RILL_RETURN_IF_ERROR(RunParse(text, c, what));
  return std::string(c.buf.GetString(), c.buf.GetSize());
}

bool JsonLine::Has(std::string_view key) const {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

Result<std::string> JsonLine::String(std::string_view key) const {
  auto it = scalars.find(key);
  if (it == scalars.end()) {
    if (objects.count(std::string(key))) return Status::InvalidArgument(fmt::format("\"{}\" must be a string", key));
    return Status::InvalidArgument(fmt::format("missing field \"{}\"", key));
  }
  if (it->second.kind != JsonScalar::kString)
    return Status::InvalidArgument(fmt::format("\"{}\" must be a string, not {}", key, KindName(it->second.kind)));
  return it->second.text;
}

Result<uint64_t> JsonLine::Uint(std::string_view key, uint64_t min, uint64_t max) const {
  auto it = scalars.find(key);
  if (it == scalars.end()) return Status::InvalidArgument(fmt::format("missing field \"{}\"", key));
  if (it->second.kind != JsonScalar::kNumber)
    return Status::InvalidArgument(fmt::format("\"{}\" must be a number, not {}", key, KindName(it->second.kind)));
  return ParseUint(it->second.text, fmt::format("\"{}\"", key), min, max);
}

Status ParseJsonLine(std::string_view line, const std::vector<std::string_view>& allowed,
                     const std::vector<std::string_view>& object_fields, JsonLine* out) {
  *out = JsonLine{};
  LineHandler h(allowed, object_fields, out);
  return RunParse(line, h, "the line");
}

std::vector<LineRef> SplitLines(std::string_view text) {
  std::vector<LineRef> lines;
  size_t pos = 0, number = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    ++number;
    size_t len = end - pos;
    if (len > 0 && text[pos + len - 1] == '\r') --len;
    if (text.substr(pos, len).find_first_not_of(" \t") != std::string_view::npos) lines.push_back({pos, len, number});
    pos = end + 1;
  }
  return lines;
}

Result<uint64_t> ParseUint(std::string_view text, std::string_view what, uint64_t min, uint64_t max) {
  uint64_t v = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  bool digits = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) {
    if (!text.empty() && text[0] == '-' && text.size() > 1)
      return Status::InvalidArgument(fmt::format("{} must not be negative: {}", what, Abbreviate(text, 40)));
    return Status::InvalidArgument(fmt::format("{} must be a whole number, not \"{}\"", what, Abbreviate(text, 40)));
  }
  auto [ptr, ec] = std::from_chars(begin, end, v);
  if (ec == std::errc::result_out_of_range || v > max)
    return Status::InvalidArgument(fmt::format("{} is too large: {} (at most {})", what, Abbreviate(text, 40), max));
  if (ec != std::errc() || ptr != end)
    return Status::InvalidArgument(fmt::format("{} must be a whole number, not \"{}\"", what, Abbreviate(text, 40)));
  if (v < min) return Status::InvalidArgument(fmt::format("{} must be at least {}, not {}", what, min, v));
  return v;
}

Result<ExpectedVersion> ParseExpected(std::string_view text, std::string_view what) {
  if (text == "any") return ExpectedVersion::Any();
  if (text == "no-stream") return ExpectedVersion::NoStream();
  if (text == "exists") return ExpectedVersion::Exists();
  if (!text.empty() && (text[0] == '-' || (text[0] >= '0' && text[0] <= '9'))) {
    auto v = ParseUint(text, what);
    if (!v.ok()) return v.status();
    return ExpectedVersion::Exact(*v);
  }
  return Status::InvalidArgument(
      fmt::format("{} must be any, no-stream, exists or a version number, not \"{}\"", what, Abbreviate(text, 40)));
}

CLI::Validator RequestIdCheck() {
  return CLI::Validator(
      [](std::string& v) {
        Status s = ValidateRequestId(v, "the id");
        return s.ok() ? std::string() : s.message();
      },
      "", "RequestId");
}

int WorseExit(int a, int b) {
  auto rank = [](int code) {
    switch (code) {
      case 0: return 0;
      case 5: return 1;
      case 3: return 2;
      case 4: return 3;
      case 2: return 4;
      case 1: return 5;
      case 130: return 6;
      default: return 5;
    }
  };
  return rank(a) >= rank(b) ? a : b;
}

Status WithName(const Status& s, std::string_view what, std::string_view name) {
  if (s.ok() || (!name.empty() && s.message().find(name) != std::string::npos)) return s;
  return s.WithContext(fmt::format("{} \"{}\"", what, Abbreviate(name, 60)));
}

}  // namespace rill::cli
