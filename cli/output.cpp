#include "cli/output.h"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "store/event.h"

namespace rill::cli {

// ---- Colour ------------------------------------------------------------------

static ColorMode g_color_mode = ColorMode::kAuto;

void SetColorMode(ColorMode mode) { g_color_mode = mode; }

bool ColorOn(int fd) {
  switch (g_color_mode) {
    case ColorMode::kAlways: return true;
    case ColorMode::kNever: return false;
    case ColorMode::kAuto: break;
  }
  if (const char* no = std::getenv("NO_COLOR"); no && *no) return false;
  if (const char* term = std::getenv("TERM"); term && std::strcmp(term, "dumb") == 0) return false;
  return isatty(fd) == 1;
}

std::string Paint(std::string_view text, Style style, bool on) {
  if (!on || text.empty()) return std::string(text);
  const char* code = "";
  switch (style) {
    case Style::kBold: code = "1"; break;
    case Style::kDim: code = "2"; break;
    case Style::kRed: code = "31"; break;
    case Style::kYellow: code = "33"; break;
    case Style::kGreen: code = "32"; break;
  }
  return fmt::format("\x1b[{}m{}\x1b[0m", code, text);
}

// ---- Width -------------------------------------------------------------------

size_t DisplayWidth(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

std::string FitToWidth(std::string_view s, size_t width) {
  if (DisplayWidth(s) <= width) return std::string(s);
  if (width == 0) return "";
  // Keep width-1 code points, then the ellipsis.
  size_t keep = width - 1, seen = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (seen == keep) break;
      ++seen;
    }
  }
  std::string out(s.substr(0, i));
  out += "…";
  return out;
}

size_t TerminalWidth(int fd) {
  if (isatty(fd) != 1) return 0;
  struct winsize ws {};
  if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* cols = std::getenv("COLUMNS"); cols && *cols) {
    long n = std::strtol(cols, nullptr, 10);
    if (n > 0) return static_cast<size_t>(n);
  }
  return 80;
}

std::vector<size_t> FitColumns(const std::vector<size_t>& natural, const std::vector<bool>& shrinkable, size_t gap,
                               size_t max_line, size_t min_width) {
  std::vector<size_t> width = natural;
  if (max_line == 0 || natural.empty()) return width;
  auto line = [&](const std::vector<size_t>& w) {
    size_t total = gap * (w.size() - 1);
    for (size_t x : w) total += x;
    return total;
  };
  if (line(width) <= max_line) return width;
  // Every shrinkable column is capped at the same width `cap`; find the
  // largest cap that fits (binary search: the line length grows with it).
  size_t widest = 0;
  for (size_t i = 0; i < natural.size(); ++i)
    if (i < shrinkable.size() && shrinkable[i]) widest = std::max(widest, natural[i]);
  auto capped = [&](size_t cap) {
    std::vector<size_t> w = natural;
    for (size_t i = 0; i < w.size(); ++i)
      if (i < shrinkable.size() && shrinkable[i]) w[i] = std::max(std::min(w[i], cap), std::min(w[i], min_width));
    return w;
  };
  size_t lo = 0, hi = widest;  // capped(hi) may not fit; find the largest cap that does
  if (line(capped(0)) > max_line) return capped(0);
  while (lo < hi) {
    size_t mid = lo + (hi - lo + 1) / 2;
    if (line(capped(mid)) <= max_line)
      lo = mid;
    else
      hi = mid - 1;
  }
  width = capped(lo);
  // Hand the columns left over to the widest columns that were cut, one each,
  // so the line uses the whole width.
  size_t spare = max_line - line(width);
  for (size_t i = 0; i < width.size() && spare > 0; ++i) {
    if (i < shrinkable.size() && shrinkable[i] && width[i] < natural[i]) {
      ++width[i];
      --spare;
    }
  }
  return width;
}

// ---- Time --------------------------------------------------------------------

int64_t DisplayNowMicros() {
  if (const char* fixed = std::getenv("RILL_NOW"); fixed && *fixed) {
    if (auto t = ParseTime(fixed)) return *t;
  }
  return NowMicros();
}

std::string RelativeTime(int64_t time_us, int64_t now_us) {
  constexpr int64_t kSecond = 1000000, kMinute = 60 * kSecond, kHour = 60 * kMinute, kDay = 24 * kHour;
  int64_t ago = now_us - time_us;
  if (ago < -kSecond) return "in the future";
  if (ago < kSecond) return "just now";
  if (ago < kMinute) return fmt::format("{}s ago", ago / kSecond);
  if (ago < kHour) return fmt::format("{} min ago", ago / kMinute);
  if (ago < kDay) return fmt::format("{} h ago", ago / kHour);
  if (ago < 7 * kDay) {
    int64_t days = ago / kDay;
    return fmt::format("{} day{} ago", days, days == 1 ? "" : "s");
  }
  return FormatTime(time_us).substr(0, 10);  // the date part of the ISO time
}

std::string DisplayTime(int64_t time_us) {
  static const bool relative = isatty(STDOUT_FILENO) == 1;
  return relative ? RelativeTime(time_us, DisplayNowMicros()) : FormatTime(time_us);
}

// ---- Sparkline ---------------------------------------------------------------

std::string Sparkline(const std::vector<uint64_t>& counts) {
  static const char* const kBars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  uint64_t top = counts.empty() ? 0 : *std::max_element(counts.begin(), counts.end());
  std::string out;
  for (uint64_t c : counts) {
    // 0 -> ▁; 1..top -> ▂..█ in 7 equal steps (top is always █).
    size_t level = c == 0 ? 0 : 1 + static_cast<size_t>((static_cast<unsigned __int128>(c) * 7 - 1) / top);
    out += kBars[std::min<size_t>(level, 7)];
  }
  return out;
}

std::vector<uint64_t> BucketCounts(const std::vector<int64_t>& times_us, int64_t end_us, size_t buckets,
                                   int64_t width_us) {
  std::vector<uint64_t> counts(buckets, 0);
  if (buckets == 0 || width_us <= 0) return counts;
  int64_t start = end_us - static_cast<int64_t>(buckets) * width_us;
  for (int64_t t : times_us) {
    if (t < start || t >= end_us) continue;
    counts[static_cast<size_t>((t - start) / width_us)]++;
  }
  return counts;
}

}  // namespace rill::cli
