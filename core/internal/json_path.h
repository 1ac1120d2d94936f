// Dotted paths ("a.b.c", object members only) into a rapidjson DOM: what
// migration ops and merges use to find, move and set values in an event's
// data. Inline: they run inside every upcast op on the read path.
#pragma once

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <string>
#include <string_view>
#include <vector>

#include "store/status.h"

namespace rill::upcast {

using Path = std::vector<std::string>;
using Alloc = rapidjson::Document::AllocatorType;

inline Path SplitPath(std::string_view text) {
  Path p;
  size_t start = 0;
  while (true) {
    size_t dot = text.find('.', start);
    p.emplace_back(text.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return p;
}

inline std::string JoinPath(const Path& p) {
  std::string s;
  for (size_t i = 0; i < p.size(); ++i) {
    if (i) s += '.';
    s += p[i];
  }
  return s;
}

// The value at the first `depth` segments of `path`, or nullptr.
inline rapidjson::Value* Find(rapidjson::Value& root, const Path& path, size_t depth) {
  rapidjson::Value* v = &root;
  for (size_t i = 0; i < depth; ++i) {
    if (!v->IsObject()) return nullptr;
    auto it = v->FindMember(rapidjson::StringRef(path[i].data(), path[i].size()));
    if (it == v->MemberEnd()) return nullptr;
    v = &it->value;
  }
  return v;
}
inline rapidjson::Value* Find(rapidjson::Value& root, const Path& path) { return Find(root, path, path.size()); }

// Moves the value at `path` out of the tree. False when absent.
inline bool Take(rapidjson::Value& root, const Path& path, rapidjson::Value* out) {
  rapidjson::Value* parent = Find(root, path, path.size() - 1);
  if (!parent || !parent->IsObject()) return false;
  auto it = parent->FindMember(rapidjson::StringRef(path.back().data(), path.back().size()));
  if (it == parent->MemberEnd()) return false;
  *out = std::move(it->value);
  parent->EraseMember(it);  // keeps member order, so diffs stay readable
  return true;
}

// The object at the first `depth` segments of `path`, created (with its
// parents) when missing; Corruption when a value on the way is not an object.
inline Status ObjectAt(rapidjson::Value& root, const Path& path, size_t depth, Alloc& a, rapidjson::Value** out) {
  rapidjson::Value* v = &root;
  for (size_t i = 0; i < depth; ++i) {
    auto it = v->FindMember(rapidjson::StringRef(path[i].data(), path[i].size()));
    if (it == v->MemberEnd()) {
      v->AddMember(rapidjson::Value(path[i].c_str(), a), rapidjson::Value(rapidjson::kObjectType), a);
      v = &(v->MemberEnd() - 1)->value;
    } else {
      v = &it->value;
    }
    if (!v->IsObject())
      return Status::Corruption(fmt::format("'{}' is not an object", JoinPath(Path(path.begin(), path.begin() + i + 1))));
  }
  *out = v;
  return Status::OK();
}

// Sets member `name` of `obj`, replacing a value already there in place.
inline void SetMember(rapidjson::Value& obj, const std::string& name, rapidjson::Value&& value, Alloc& a) {
  auto it = obj.FindMember(rapidjson::StringRef(name.data(), name.size()));
  if (it != obj.MemberEnd()) {
    it->value = std::move(value);
  } else {
    obj.AddMember(rapidjson::Value(name.c_str(), a), std::move(value), a);
  }
}

// Sets the value at `path`, creating the objects on the way.
inline Status Set(rapidjson::Value& root, const Path& path, rapidjson::Value&& value, Alloc& a) {
  rapidjson::Value* parent = nullptr;
  RILL_RETURN_IF_ERROR(ObjectAt(root, path, path.size() - 1, a, &parent));
  SetMember(*parent, path.back(), std::move(value), a);
  return Status::OK();
}

}  // namespace rill::upcast
