// rill's JSON helpers: the nesting limit every JSON reader enforces
// (CheckDepth), and the mapping for domain structs.
//
// A command, event or state lists its fields once, and that one list reads
// it from JSON, writes it to JSON (RapidJSON, no intermediate DOM on the
// write side) and describes it for `rill domains`:
//
//   struct Deposit {
//     static constexpr const char* kType = "Deposit";
//     int64_t amount = 0;
//     template <class F> void fields(F& f) { f("amount", amount); }
//   };
//
// Field types: int64_t, uint64_t, int32_t, uint32_t, bool, double,
// std::string, nested structs marked kJsonObject, and std::optional of those
// (optional = may be absent).
// Reading commands is strict (unknown or missing fields are errors, so a typo
// never passes silently); reading events and states is lenient about unknown
// fields so an added field never breaks old code. A nested object is read
// leniently either way.
//
// Errors: InvalidArgument only, naming `what` and the field. Thread safety:
// everything here may be called from any thread (ToJson keeps per-thread
// buffers); one FieldReader, FieldWriter or SmallDocument per thread.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "store/status.h"

namespace rill::json {

// How deeply JSON may nest ('[' and '{' levels). rapidjson's DOM parse,
// Accept() and the writers recurse once per level, so a payload of 100,000
// '[' that a streaming reader accepts would crash whoever later parses it
// (a projection, an upcaster, an actor) with a stack overflow. Real payloads
// nest a handful of levels; inputs deeper than this are refused up front.
inline constexpr int kMaxJsonDepth = 128;

// InvalidArgument naming `what` when `text` nests deeper than kMaxJsonDepth.
// A byte scan that skips strings; it does not validate (the parser does).
inline Status CheckDepth(std::string_view text, std::string_view what) {
  // Each level takes a byte: a text this short cannot nest too deep, and
  // most commands and events are.
  if (text.size() <= static_cast<size_t>(kMaxJsonDepth)) return Status::OK();
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        return Status::InvalidArgument(std::string(what) + " nests deeper than " + std::to_string(kMaxJsonDepth) +
                                       " levels (at offset " + std::to_string(i) + ")");
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return Status::OK();
}

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

enum class FieldKind { kInteger, kNumber, kBool, kString, kObject };
const char* FieldKindName(FieldKind kind);  // "integer", "number", "bool", "string", "object"

// A struct used as a field holds a nested JSON object when it says so:
//   struct Holder { static constexpr bool kJsonObject = true; std::string name;
//     template <class F> void fields(F& f) { f("name", name); } };
template <class T>
concept NestedObject = requires { T::kJsonObject; };
template <class T>
Status Read(const rapidjson::Value& v, T* out, const char* what, bool strict);
template <class T>
void Write(rapidjson::Writer<rapidjson::StringBuffer>& w, const T& t);

struct FieldInfo {
  std::string name;
  FieldKind kind = FieldKind::kString;
  bool optional = false;
};

namespace internal {
template <class T> struct IsOptional : std::false_type {};
template <class T> struct IsOptional<std::optional<T>> : std::true_type {};

template <class T>
constexpr FieldKind KindOf() {
  if constexpr (std::is_same_v<T, bool>) return FieldKind::kBool;
  else if constexpr (std::is_integral_v<T>) return FieldKind::kInteger;
  else if constexpr (std::is_floating_point_v<T>) return FieldKind::kNumber;
  else if constexpr (NestedObject<T>) return FieldKind::kObject;
  else {
    static_assert(std::is_same_v<T, std::string>, "unsupported field type");
    return FieldKind::kString;
  }
}

// Returns false when `v` has the wrong JSON type for T.
template <class T>
bool ReadValue(const rapidjson::Value& v, T& out) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.IsBool()) return false;
    out = v.GetBool();
  } else if constexpr (std::is_same_v<T, int64_t>) {
    if (!v.IsInt64()) return false;
    out = v.GetInt64();
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    if (!v.IsUint64()) return false;
    out = v.GetUint64();
  } else if constexpr (std::is_same_v<T, int32_t>) {
    if (!v.IsInt()) return false;
    out = v.GetInt();
  } else if constexpr (std::is_same_v<T, uint32_t>) {
    if (!v.IsUint()) return false;
    out = v.GetUint();
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.IsNumber()) return false;
    out = static_cast<T>(v.GetDouble());
  } else if constexpr (NestedObject<T>) {
    if (!v.IsObject()) return false;
    return Read(v, &out, "object", /*strict=*/false).ok();
  } else {
    static_assert(std::is_same_v<T, std::string>, "unsupported field type");
    if (!v.IsString()) return false;
    out.assign(v.GetString(), v.GetStringLength());
  }
  return true;
}

template <class T>
void WriteValue(Writer& w, const T& v) {
  if constexpr (std::is_same_v<T, bool>) w.Bool(v);
  else if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, int32_t>) w.Int64(v);
  else if constexpr (std::is_same_v<T, uint64_t> || std::is_same_v<T, uint32_t>) w.Uint64(v);
  else if constexpr (std::is_floating_point_v<T>) w.Double(v);
  else if constexpr (NestedObject<T>) Write(w, v);
  else w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}
}  // namespace internal

// Reads the listed fields out of a JSON object; keeps the first error.
class FieldReader {
 public:
  FieldReader(const rapidjson::Value& object, const char* what) : object_(object), what_(what) {}

  template <class T>
  void operator()(const char* name, T& out) {
    if (!status_.ok()) return;
    auto it = object_.FindMember(name);
    if (it != object_.MemberEnd()) ++found_;
    if constexpr (internal::IsOptional<T>::value) {
      if (it == object_.MemberEnd() || it->value.IsNull()) {
        out.reset();
        return;
      }
      typename T::value_type v{};
      Read(name, it->value, v);
      out = std::move(v);
    } else {
      if (it == object_.MemberEnd()) {
        status_ = Status::InvalidArgument(std::string(what_) + ": missing field \"" + name + "\"");
        return;
      }
      Read(name, it->value, out);
    }
  }

  // After fields(): InvalidArgument naming the first member that no field
  // took, and the known fields.
  Status CheckNoUnknownFields(const std::vector<FieldInfo>& known);
  // After fields(): every member of the object was taken by a field (the
  // common case, decided without looking at names).
  bool TookEveryMember() const { return found_ == object_.MemberCount(); }
  const Status& status() const { return status_; }

 private:
  template <class T>
  void Read(const char* name, const rapidjson::Value& v, T& out) {
    if (!internal::ReadValue(v, out))
      status_ = Status::InvalidArgument(std::string(what_) + ": field \"" + name + "\" must be " +
                                        (internal::KindOf<T>() == FieldKind::kInteger ? "an " : "a ") +
                                        FieldKindName(internal::KindOf<T>()));
  }
  const rapidjson::Value& object_;
  const char* what_;
  Status status_;
  size_t found_ = 0;
};

class FieldWriter {
 public:
  explicit FieldWriter(Writer& w) : w_(w) {}
  template <class T>
  void operator()(const char* name, const T& v) {
    if constexpr (internal::IsOptional<T>::value) {
      if (!v) return;
      w_.Key(name);
      internal::WriteValue(w_, *v);
    } else {
      w_.Key(name);
      internal::WriteValue(w_, v);
    }
  }

 private:
  Writer& w_;
};

class FieldDescriber {
 public:
  template <class T>
  void operator()(const char* name, const T&) {
    if constexpr (internal::IsOptional<T>::value)
      fields.push_back({name, internal::KindOf<typename T::value_type>(), true});
    else
      fields.push_back({name, internal::KindOf<T>(), false});
  }
  std::vector<FieldInfo> fields;
};

template <class T>
std::vector<FieldInfo> Describe() {
  T t{};
  FieldDescriber d;
  t.fields(d);
  return std::move(d.fields);
}

// Writes `t` as one JSON object. A double must be finite: rapidjson writes
// nothing for NaN or infinity, which leaves the text invalid JSON.
template <class T>
void Write(Writer& w, const T& t) {
  FieldWriter fw(w);
  w.StartObject();
  const_cast<T&>(t).fields(fw);  // fields() only reads through a FieldWriter
  w.EndObject();
}

template <class T>
std::string ToJson(const T& t) {
  // One buffer and writer per thread, reused: encoding an event on the hot
  // path allocates only the returned string.
  thread_local rapidjson::StringBuffer buf;
  thread_local Writer w;
  buf.Clear();
  w.Reset(buf);
  Write(w, t);
  return std::string(buf.GetString(), buf.GetSize());
}

// Reads `out` from a JSON object value. `what` prefixes error messages.
// InvalidArgument: not an object, a field missing (unless optional; null
// counts as absent for those) or of the wrong JSON type (an integer out of
// the field's range too), and with strict an unknown member. A nested
// object's own error is reported only as "field X must be an object".
// *out may be partly filled on an error.
template <class T>
Status Read(const rapidjson::Value& v, T* out, const char* what, bool strict) {
  if (!v.IsObject()) return Status::InvalidArgument(std::string(what) + ": must be a JSON object");
  FieldReader r(v, what);
  out->fields(r);
  RILL_RETURN_IF_ERROR(r.status());
  if (strict && !r.TookEveryMember()) {
    static const std::vector<FieldInfo> known = Describe<T>();
    return r.CheckNoUnknownFields(known);
  }
  return Status::OK();
}

// Parses `text` as one JSON object (InvalidArgument with the offset if not).
// Stricter than SmallDocument::Parse: invalid UTF-8, an unpaired surrogate
// escape and a key given twice in one object are InvalidArgument too; all
// nest at most kMaxJsonDepth.
Status Parse(std::string_view text, rapidjson::Document* doc, const char* what);

// A parsed JSON object that lives in fixed buffers: parsing a small command
// or event touches the heap not at all (large inputs spill to it). A
// rapidjson::Document would allocate a 64 KiB pool chunk per parse, which on
// the hot path costs more than the parse.
class SmallDocument {
 public:
  SmallDocument()
      : value_alloc_(value_buf_, sizeof value_buf_, 4096),
        stack_alloc_(stack_buf_, sizeof stack_buf_, 4096),
        doc_(&value_alloc_, sizeof stack_buf_ / 2, &stack_alloc_) {}
  SmallDocument(const SmallDocument&) = delete;
  SmallDocument& operator=(const SmallDocument&) = delete;
  // InvalidArgument with the offset unless `text` is one JSON object (or
  // when it nests deeper than kMaxJsonDepth). Neither UTF-8 nor duplicate
  // keys are checked (json::Parse does).
  Status Parse(std::string_view text, const char* what);
  const rapidjson::Value& root() const { return doc_; }

 private:
  using Pool = rapidjson::MemoryPoolAllocator<>;
  alignas(16) char value_buf_[2048];
  alignas(16) char stack_buf_[1024];
  Pool value_alloc_;
  Pool stack_alloc_;
  rapidjson::GenericDocument<rapidjson::UTF8<>, Pool, Pool> doc_;
};

// SmallDocument::Parse, then Read: their errors.
template <class T>
Status ReadText(std::string_view text, T* out, const char* what, bool strict) {
  SmallDocument doc;
  RILL_RETURN_IF_ERROR(doc.Parse(text, what));
  return Read(doc.root(), out, what, strict);
}

// Compact re-serialization of a JSON value (keeps member order: not a
// canonical form across key orders).
std::string Canonical(const rapidjson::Value& v);

}  // namespace rill::json
