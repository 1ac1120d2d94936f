#include "store/event.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <chrono>
#include <cstring>
#include <ctime>
#include <random>

#include "store/env.h"

namespace rill {

namespace {
// xoshiro256** (Blackman and Vigna): 256 bits of state, two 64-bit outputs
// per id at ~1 ns each. Event ids must be unique, not unpredictable: they
// are no secret and grant nothing, so a statistical generator seeded with 256
// bits from std::random_device (the OS's entropy, per thread, so processes
// and threads start at unrelated points of a 2^256 - 1 period) is enough; the
// 122 random bits of a version-4 id then collide no more often than true
// randomness would. (std::mt19937_64 was 10% of the log writer's time.)
class IdGenerator {
 public:
  IdGenerator() {
    std::random_device rd;
    for (auto& w : s_) w = uint64_t{rd()} << 32 | rd();
    if ((s_[0] | s_[1] | s_[2] | s_[3]) == 0) s_[0] = 1;  // the one state it cannot leave
  }
  uint64_t Next() {
    uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};
}  // namespace

Uuid Uuid::Generate() {
  // One generator per thread: no lock on the append path.
  thread_local IdGenerator rng;
  // Bytes 0-7 are a's, least significant first, 8-15 b's. The version and
  // variant bits are set in the words and each word is stored whole: bytes
  // stored one by one and read back as a word stalled the caller (failed
  // store-to-load forwarding, most of this function's time).
  uint64_t a = rng.Next(), b = rng.Next();
  a = (a & ~(uint64_t{0xF0} << 48)) | (uint64_t{0x40} << 48);  // byte 6: version 4
  b = (b & ~uint64_t{0xC0}) | uint64_t{0x80};                  // byte 8: RFC 4122 variant
  if constexpr (std::endian::native == std::endian::big) {
    a = __builtin_bswap64(a);
    b = __builtin_bswap64(b);
  }
  Uuid u;
  std::memcpy(u.bytes.data(), &a, 8);
  std::memcpy(u.bytes.data() + 8, &b, 8);
  return u;
}

static int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<Uuid> Uuid::Parse(std::string_view t) {
  if (t.size() != 36 || t[8] != '-' || t[13] != '-' || t[18] != '-' || t[23] != '-') return std::nullopt;
  Uuid u;
  size_t j = 0;
  for (size_t i = 0; i < 36;) {
    if (t[i] == '-') {
      ++i;
      continue;
    }
    int hi = HexValue(t[i]), lo = HexValue(t[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    u.bytes[j++] = static_cast<uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return u;
}

std::string Uuid::ToString() const {
  static const char* hex = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += hex[bytes[i] >> 4];
    s += hex[bytes[i] & 0xF];
  }
  return s;
}

bool Uuid::IsNil() const {
  for (auto b : bytes)
    if (b) return false;
  return true;
}

int64_t NowMicros() { return Env::Default()->NowMicros(); }

std::string FormatTime(int64_t micros) {
  int64_t secs = micros >= 0 ? micros / 1000000 : -((-micros + 999999) / 1000000);
  int64_t frac = micros - secs * 1000000;
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

std::optional<int64_t> ParseTime(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.ffffff]Z
  auto num = [&](size_t pos, size_t len, int* out) {
    if (pos + len > s.size()) return false;
    auto r = std::from_chars(s.data() + pos, s.data() + pos + len, *out);
    return r.ec == std::errc() && r.ptr == s.data() + pos + len;
  };
  int y, mo, d, h, mi, se;
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' ||
      s[16] != ':')
    return std::nullopt;
  if (!num(0, 4, &y) || !num(5, 2, &mo) || !num(8, 2, &d) || !num(11, 2, &h) || !num(14, 2, &mi) ||
      !num(17, 2, &se))
    return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return std::nullopt;
  size_t i = 19;
  int64_t frac = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    int digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (digits < 6) {
        frac = frac * 10 + (s[i] - '0');
        ++digits;
      }
      ++i;
    }
    if (digits == 0) return std::nullopt;
    for (; digits < 6; ++digits) frac *= 10;
  }
  if (i + 1 != s.size() || s[i] != 'Z') return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = se;
  int64_t secs = timegm(&tm);
  return secs * 1000000 + frac;
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and out-of-range code points.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

static Status ValidateName(std::string_view name, size_t max, const char* what) {
  if (name.empty()) return Status::InvalidArgument(fmt::format("{} name is empty", what));
  if (name.size() > max)
    return Status::InvalidArgument(fmt::format("{} name is {} bytes; the limit is {}", what, name.size(), max));
  // Names are nearly always printable ASCII: one pass settles those (every
  // append checks its stream and event types, on the appender's thread).
  bool printable_ascii = true;
  for (unsigned char c : name) printable_ascii &= c >= 0x20 && c < 0x7F;
  if (printable_ascii) return Status::OK();
  if (!IsValidUtf8(name)) return Status::InvalidArgument(fmt::format("{} name is not valid UTF-8", what));
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7F)
      return Status::InvalidArgument(fmt::format("{} name contains a control character", what));
  return Status::OK();
}

Status ValidateStreamName(std::string_view name, bool allow_system) {
  RILL_RETURN_IF_ERROR(ValidateName(name, kMaxStreamNameBytes, "stream"));
  if (!allow_system && name[0] == '$')
    return Status::InvalidArgument(fmt::format("stream name '{}' starts with '$', which is reserved for the system", name));
  return Status::OK();
}

Status ValidateTypeName(std::string_view name) {
  RILL_RETURN_IF_ERROR(ValidateName(name, kMaxTypeNameBytes, "event type"));
  // A projection names the types it handles as "-- on TYPE", and a type with
  // a space in it could never be named there.
  if (name.find(' ') != std::string_view::npos)
    return Status::InvalidArgument(fmt::format(
        "event type '{}' contains a space: projections could not name it ('-- on TYPE'); use e.g. '{}'", name,
        [&] {
          std::string t(name);
          std::replace(t.begin(), t.end(), ' ', '_');
          return t;
        }()));
  return Status::OK();
}

std::string_view CategoryOf(std::string_view stream) {
  size_t dash = stream.find('-');
  return dash == std::string_view::npos ? stream : stream.substr(0, dash);
}

std::string_view StreamIdOf(std::string_view stream) {
  size_t dash = stream.find('-');
  return dash == std::string_view::npos ? std::string_view{} : stream.substr(dash + 1);
}

Result<ExpectedVersion> ExpectedVersion::Parse(std::string_view t) {
  if (t == "any") return Any();
  if (t == "no-stream") return NoStream();
  if (t == "exists") return Exists();
  uint64_t v = 0;
  auto r = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || r.ec != std::errc() || r.ptr != t.data() + t.size())
    return Status::InvalidArgument(
        fmt::format("expected version '{}' is not any, no-stream, exists or a non-negative integer", t));
  return Exact(v);
}

std::string ExpectedVersion::ToString() const {
  switch (kind) {
    case kAny: return "any";
    case kNoStream: return "no-stream";
    case kExists: return "exists";
    case kExact: return std::to_string(version);
  }
  return "any";
}

}  // namespace rill
