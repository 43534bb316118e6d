#pragma once
// Leveled, module-tagged logging, cheap when disabled (docs/config.md, "Logs").
//
// CAIRN_LOG evaluates its message expression only when the record is
// enabled. A disabled record costs one relaxed atomic load and a compare
// against the lowest level any module logs at; only a record that passes it
// looks up its module's level, in an immutable snapshot read through one
// atomic pointer (no lock, no allocation).
//
// Levels come from a spec "LEVEL[,MODULE=LEVEL...]" (e.g.
// "info,p2p=debug,challenge=warn"): the default level, then per-module
// overrides. Until set_levels() is called the spec is read once from
// $CAIRN_LOG (an invalid value falls back to "info" with a warning line;
// `cairn node` rejects it instead). Lines go to stderr, or to the file given
// to set_file(), as text or JSON (one object per line); a test may install a
// sink that receives the records instead.
//
// Thread-safety: every function may be called from any thread.

#include <atomic>
#include <chrono>
#include <functional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cairn/core/result.hpp"

namespace cairn::log {

enum class Level : int { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

constexpr std::string_view level_name(Level l) noexcept {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
    case Level::off: return "off";
  }
  return "?";
}

// The default level and per-module overrides. Modules are sorted by name,
// each listed once.
struct LevelSpec {
  Level default_level = Level::info;
  std::vector<std::pair<std::string, Level>> modules;

  // The override of `module`, else the default.
  Level level_for(std::string_view module) const noexcept;
  // The lowest level any module logs at (the fast-path threshold).
  Level minimum() const noexcept;
  // Canonical text: "info,challenge=warn,p2p=debug".
  std::string to_string() const;
  bool operator==(const LevelSpec&) const = default;
};

// Parses "LEVEL[,MODULE=LEVEL...]" (surrounding blanks ignored; a lone
// "MODULE=LEVEL" list keeps the default info). invalid_argument naming the
// offending part: an unknown level, an empty or malformed item, a module
// given twice, two defaults.
Result<LevelSpec> parse_level_spec(std::string_view text);

enum class Format { text, json };
// "text" or "json"; invalid_argument otherwise.
Result<Format> parse_format(std::string_view text);

// Receives enabled records instead of the output (tests).
using Sink = std::function<void(Level, std::string_view module, std::string_view message)>;

namespace detail {
// Lowest enabled level over all modules; -1 until the levels are first
// initialised, so the first record takes the slow path, which initialises.
extern std::atomic<int> g_minimum;
// The slow path: the record's module level (initialising on first use).
bool module_enabled(Level l, std::string_view module) noexcept;
}  // namespace detail

// Fast reject: false when no module logs at `l`.
inline bool enabled(Level l) noexcept {
  return static_cast<int>(l) >= detail::g_minimum.load(std::memory_order_relaxed);
}
// Whether a record of `module` at `l` is written.
inline bool enabled(Level l, std::string_view module) noexcept {
  return enabled(l) && detail::module_enabled(l, module);
}

// Replaces the levels (atomically for readers); returns the previous ones.
LevelSpec set_levels(LevelSpec spec);
LevelSpec levels();
// Shorthands: every module at `l` (overrides dropped); the default level.
void set_threshold(Level l);
Level threshold();

void set_format(Format f);
Format format();

// Appends to `path` (created mode 0640) instead of stderr; an empty path
// goes back to stderr. io_error naming the path when it cannot be opened
// (the previous output stays).
Status set_file(const std::string& path);
// The file set_file() opened; empty: stderr.
std::string file();
// Opens the current file again (after logrotate moved it). No-op on stderr;
// io_error and the old descriptor kept when it cannot be opened.
Status reopen();

// Installs `sink` (empty: back to the output); returns the previous one.
Sink set_sink(Sink sink);

// Writes one record (filtering is the caller's: CAIRN_LOG).
void write(Level l, std::string_view module, std::string_view message);

// Formatting, exposed for tests. A line ends with '\n'.
// RFC 3339 UTC with milliseconds: "2026-12-07T09:21:03.123Z".
std::string format_timestamp(std::chrono::system_clock::time_point t);
// "<ts> <level padded to 5> <module>: <message>", control characters of the
// message escaped (\n, \r, \t, \xNN) so a record stays one line.
std::string format_text(std::chrono::system_clock::time_point t, Level l, std::string_view module,
                        std::string_view message);
// {"ts":"...","level":"...","module":"...","msg":"..."}
std::string format_json(std::chrono::system_clock::time_point t, Level l, std::string_view module,
                        std::string_view message);
// Appends `s` as a JSON string literal: quotes, backslash and control
// characters escaped, invalid UTF-8 replaced by U+FFFD.
void append_json_string(std::string& out, std::string_view s);

}  // namespace cairn::log

// CAIRN_LOG(cairn::log::Level::info, "p2p", "peer " << id << " connected");
#define CAIRN_LOG(level, module, expr)                          \
  do {                                                          \
    if (::cairn::log::enabled(level, module)) {                 \
      std::ostringstream cairn_log_os_;                         \
      cairn_log_os_ << expr;                                    \
      ::cairn::log::write(level, module, cairn_log_os_.str());  \
    }                                                           \
  } while (0)
