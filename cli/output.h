// Text output for people: terminal width, colour, relative times, sparklines.
// Pure functions (no store, no CLI11) so cli_tests can check them exactly;
// Table (cli.h) and the commands use them.
//
// Rules (rill(1) "OUTPUT"): on a terminal, tables fit its width and times
// are relative; when stdout is a pipe or a file nothing is cut and times are
// absolute ISO-8601 UTC, so scripts and goldens see full values. Colour only
// on a terminal, never when NO_COLOR is set (https://no-color.org), unless
// --color always.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace rill::cli {

// ---- Colour ------------------------------------------------------------------
enum class ColorMode { kAuto, kAlways, kNever };
// The --color option (default auto).
void SetColorMode(ColorMode mode);
// Whether text written to `fd` gets ANSI colour: always/never as set; auto:
// `fd` is a terminal, NO_COLOR is unset or empty and TERM is not "dumb".
bool ColorOn(int fd);
enum class Style { kBold, kDim, kRed, kYellow, kGreen };
// `text` wrapped in the style's escape codes, or `text` as is when !on.
std::string Paint(std::string_view text, Style style, bool on);

// ---- Width -------------------------------------------------------------------
// Columns a UTF-8 string takes (code points; no wide-glyph tables).
size_t DisplayWidth(std::string_view s);
// `s` cut to at most `width` columns, ending in "…" when something was cut.
std::string FitToWidth(std::string_view s, size_t width);
// Columns available on `fd`: 0 (no limit) unless it is a terminal; then the
// terminal's width (TIOCGWINSZ), else $COLUMNS, else 80.
size_t TerminalWidth(int fd);
// Column widths for a table whose line is the widths joined by `gap` blanks,
// to fit in `max_line` columns (0: no limit, natural widths returned). Only
// shrinkable columns are narrowed: the widest first, evenly (a common cap),
// never below min(natural, min_width) ("59 min ago" is 10 wide: a cell cut
// shorter says little). The line may then still exceed max_line.
std::vector<size_t> FitColumns(const std::vector<size_t>& natural, const std::vector<bool>& shrinkable,
                               size_t gap, size_t max_line, size_t min_width = 10);

// ---- Time --------------------------------------------------------------------
// "now" for display: $RILL_NOW (an ISO-8601 UTC time; test-only, so goldens
// and the stats sparkline are deterministic) or the clock. Microseconds.
int64_t DisplayNowMicros();
// "just now" (< 1 s), "12s ago", "3 min ago", "2 h ago", "5 days ago"; the
// ISO date "2026-11-16" from 7 days on; "in the future" for times after now
// by more than a second (clock skew, imported events).
std::string RelativeTime(int64_t time_us, int64_t now_us);
// An event time in text output: relative on a terminal stdout, else the full
// ISO-8601 UTC time (FormatTime).
std::string DisplayTime(int64_t time_us);

// ---- Sparkline ---------------------------------------------------------------
// One of ▁▂▃▄▅▆▇█ per count, scaled to the largest; 0 is "▁" too, any count
// above 0 at least "▂" so activity never looks like silence.
std::string Sparkline(const std::vector<uint64_t>& counts);
// Counts of the times in [end - buckets*width, end) per bucket of `width`
// microseconds, oldest first. Times outside the window are not counted.
std::vector<uint64_t> BucketCounts(const std::vector<int64_t>& times_us, int64_t end_us, size_t buckets,
                                   int64_t width_us);

}  // namespace rill::cli
