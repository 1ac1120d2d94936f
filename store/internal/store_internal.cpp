#include "store/internal/store_internal.h"

#include <fmt/format.h>

#include <sys/mman.h>

#include <cstring>
#include <new>

namespace rill {
namespace {
template <class T>
void PutLE(std::string& s, T v) {
  char b[sizeof v];
  std::memcpy(b, &v, sizeof v);
  s.append(b, sizeof v);
}
template <class T>
void PutLE(char*& p, T v) {  // GetLE's mirror: writes and moves past
  std::memcpy(p, &v, sizeof v);
  p += sizeof v;
}
template <class T>
T GetLE(const char*& p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  p += sizeof v;
  return v;
}
}  // namespace

std::string StreamRecord::Encode() const {
  std::string s(kBytes, '\0');
  EncodeTo(s.data());
  return s;
}

void StreamRecord::EncodeTo(char out[kBytes]) const {
  char* p = out;
  PutLE(p, number);
  PutLE(p, head_version);
  PutLE(p, head_position);
  PutLE<uint8_t>(p, deleted ? 1 : 0);
  PutLE(p, metadata.max_count);
  PutLE(p, metadata.max_age_us);
  PutLE(p, metadata.truncate_before);
}

bool StreamRecord::Decode(std::string_view b, StreamRecord* r) {
  if (b.size() != kBytes) return false;
  const char* p = b.data();
  r->number = GetLE<uint64_t>(p);
  r->head_version = GetLE<uint64_t>(p);
  r->head_position = GetLE<uint64_t>(p);
  r->deleted = GetLE<uint8_t>(p) != 0;
  r->metadata.max_count = GetLE<uint64_t>(p);
  r->metadata.max_age_us = GetLE<int64_t>(p);
  r->metadata.truncate_before = GetLE<uint64_t>(p);
  return true;
}

std::string RequestRecord::Encode() const {
  std::string s;
  EncodeTo(&s);
  return s;
}

void RequestRecord::EncodeTo(std::string* out) const {
  std::string& s = *out;
  s.clear();
  PutLE(s, hash);
  PutLE(s, outcome.first_version);
  PutLE(s, outcome.last_version);
  PutLE(s, outcome.first_position);
  PutLE(s, outcome.last_position);
  PutLE(s, outcome.events);
  s += outcome.stream;
}

bool RequestRecord::Decode(std::string_view, std::string_view b, RequestRecord* r) {
  if (b.size() < 48) return false;
  const char* p = b.data();
  r->hash = GetLE<uint64_t>(p);
  r->outcome.first_version = GetLE<uint64_t>(p);
  r->outcome.last_version = GetLE<uint64_t>(p);
  r->outcome.first_position = GetLE<uint64_t>(p);
  r->outcome.last_position = GetLE<uint64_t>(p);
  r->outcome.events = GetLE<uint64_t>(p);
  r->outcome.stream.assign(p, b.data() + b.size());
  r->outcome.duplicate = false;
  return true;
}

uint64_t Fnv1a64(std::string_view s, uint64_t h) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

uint64_t HashRequest(const AppendRequest& r) {
  // Stable across processes and builds: it is stored in the log.
  uint64_t h = Fnv1a64(r.stream);
  h = Fnv1a64(r.expected.ToString(), h);
  for (const auto& e : r.events) {
    h = Fnv1a64(e.type, Fnv1a64("\x1f", h));
    h = Fnv1a64(std::to_string(e.schema), h);
    h = Fnv1a64(e.data, Fnv1a64("\x1f", h));
    h = Fnv1a64(e.meta, Fnv1a64("\x1f", h));
  }
  return h == 0 ? 1 : h;
}

void* AllocateLargeBuffer(size_t bytes) {
  constexpr size_t kHugePage = size_t{2} << 20;
  void* p = nullptr;
  if (bytes >= kHugePage) {
    bytes = (bytes + kHugePage - 1) & ~(kHugePage - 1);
    p = std::aligned_alloc(kHugePage, bytes);
#ifdef MADV_HUGEPAGE
    if (p) (void)madvise(p, bytes, MADV_HUGEPAGE);  // advice only: 4 KB pages still work
#endif
  } else {
    p = std::malloc(bytes);
  }
  if (!p) throw std::bad_alloc();
  return p;
}

void UnindexedTail::AddLocked(const RecordView& v, bool own_writer, WriterHead* head) {
  if (v.position <= known_end) return;  // already seen (catch-up races)
  known_end = v.position;
  if (!own_writer) ++foreign_events;
  StreamMap::value_type* node = head ? head->tail : nullptr;
  if (!node) {
    node = &*streams.try_emplace(std::string(v.stream)).first;
    if (head) {
      head->tail = node;
      node->second.writer = head;
    }
  }
  node->second.entries.emplace_back(v.version, v.position);
  if (IsMetaStream(v.stream)) {
    auto& target = streams[std::string(MetaTarget(v.stream))];
    if (v.type == kDeleteType) target.deleted = true;
    if (v.type == kMetadataType) {
      StreamMetadata m;
      if (ParseStreamMetadata(v.data, &m).ok()) target.metadata = m;
    }
  }
  if (!v.request_id.empty()) {
    request_order.emplace_back(v.position, v.request_id);
    const std::string& id = request_order.back().second;
    auto it = requests.find(id);
    if (it != requests.end() && it->second.outcome.last_position + 1 == v.position &&
        it->second.outcome.stream == v.stream) {
      it->second.outcome.last_version = v.version;
      it->second.outcome.last_position = v.position;
      it->second.outcome.events++;
    } else if (it == requests.end()) {
      RequestRecord r;
      r.hash = v.request_hash;
      r.outcome.stream = std::string(v.stream);
      r.outcome.first_version = r.outcome.last_version = v.version;
      r.outcome.first_position = r.outcome.last_position = v.position;
      r.outcome.events = 1;
      requests.emplace(id, std::move(r));
    }
  }
  order.push_back(Ref{v.position, node});
}

void UnindexedTail::UnlinkWriterLocked() {
  for (auto it = streams.begin(); it != streams.end();) {
    Stream& st = it->second;
    if (st.writer) st.writer->tail = nullptr;
    st.writer = nullptr;
    // Kept only for the link (see TrimLocked): nothing points here any more.
    if (st.Empty()) it = streams.erase(it);
    else ++it;
  }
}

bool UnindexedTail::TrimLocked(uint64_t position, size_t max_events) {
  if (position > indexed) indexed = position;
  for (size_t n = 0; !order.empty() && order.front().position <= position; ++n) {
    if (n == max_events) return true;
    Ref& ref = order.front();
    Stream& st = ref.stream->second;
    auto& e = st.entries;
    if (!e.empty() && e.front().second == ref.position) e.pop_front();
    if (e.empty()) {
      // The last tail event of this stream: the index has it all now.
      const std::string& name = ref.stream->first;
      std::string target;
      if (IsMetaStream(name)) target = MetaTarget(name);
      // A stream the writer links to stays, empty: it is likely to get more
      // events soon, and erasing it cost a hash lookup here and a node
      // allocation, a hash and an insert in the writer when it came back (at
      // 1M streams, ~15% of the writer and the indexer). UnlinkWriterLocked
      // erases the empty ones when the writer forgets its heads, so this
      // keeps at most one node per head the writer caches.
      if (st.Empty() && !st.writer) streams.erase(streams.find(name));  // `name` and `st` die here
      if (!target.empty()) {
        // No newer $$ event is pending: the index holds the target's flags.
        auto t = streams.find(target);
        if (t != streams.end()) {
          t->second.deleted.reset();
          t->second.metadata.reset();
          if (t->second.Empty() && !t->second.writer) streams.erase(t);
        }
      }
    }
    order.pop_front();
  }
  for (size_t n = 0; !request_order.empty() && request_order.front().first <= position; ++n) {
    if (n == max_events) return true;
    auto r = requests.find(request_order.front().second);
    if (r != requests.end() && r->second.outcome.last_position <= position) requests.erase(r);
    request_order.pop_front();
  }
  if (known_end < position) {
    known_end = position;
    ++foreign_events;  // the index saw log entries this process had not
  }
  return false;
}

}  // namespace rill
