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
//
// Header-only, like the rest of the core vocabulary below every module: the
// implementation follows the interface at the end of this file.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
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
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warn:
      return "warn";
    case Level::error:
      return "error";
    case Level::off:
      return "off";
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
inline Result<LevelSpec> parse_level_spec(std::string_view text);

enum class Format { text, json };
// "text" or "json"; invalid_argument otherwise.
inline Result<Format> parse_format(std::string_view text);

// Receives enabled records instead of the output (tests).
using Sink = std::function<void(Level, std::string_view module, std::string_view message)>;

namespace detail {
// Lowest enabled level over all modules; -1 until the levels are first
// initialised, so the first record takes the slow path, which initialises.
inline std::atomic<int> g_minimum{-1};
// The slow path: the record's module level (initialising on first use).
inline bool module_enabled(Level l, std::string_view module) noexcept;
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
inline LevelSpec set_levels(LevelSpec spec);
inline LevelSpec levels();
// Shorthands: every module at `l` (overrides dropped); the default level.
inline void set_threshold(Level l);
inline Level threshold();

inline void set_format(Format f);
inline Format format();

// Appends to `path` (created mode 0640) instead of stderr; an empty path
// goes back to stderr. io_error naming the path when it cannot be opened
// (the previous output stays).
inline Status set_file(const std::string& path);
// The file set_file() opened; empty: stderr.
inline std::string file();
// Opens the current file again (after logrotate moved it). No-op on stderr;
// io_error and the old descriptor kept when it cannot be opened.
inline Status reopen();

// Installs `sink` (empty: back to the output); returns the previous one.
inline Sink set_sink(Sink sink);

// Writes one record (filtering is the caller's: CAIRN_LOG).
inline void write(Level l, std::string_view module, std::string_view message);

// Formatting, exposed for tests. A line ends with '\n'.
// RFC 3339 UTC with milliseconds: "2026-12-07T09:21:03.123Z".
inline std::string format_timestamp(std::chrono::system_clock::time_point t);
// "<ts> <level padded to 5> <module>: <message>", control characters of the
// message escaped (\n, \r, \t, \xNN) so a record stays one line.
inline std::string format_text(std::chrono::system_clock::time_point t, Level l,
                               std::string_view module, std::string_view message);
// {"ts":"...","level":"...","module":"...","msg":"..."}
inline std::string format_json(std::chrono::system_clock::time_point t, Level l,
                               std::string_view module, std::string_view message);
// Appends `s` as a JSON string literal: quotes, backslash and control
// characters escaped, invalid UTF-8 replaced by U+FFFD.
inline void append_json_string(std::string& out, std::string_view s);

}  // namespace cairn::log

// CAIRN_LOG(cairn::log::Level::info, "p2p", "peer " << id << " connected");
#define CAIRN_LOG(level, module, expr)                         \
  do {                                                         \
    if (::cairn::log::enabled(level, module)) {                \
      std::ostringstream cairn_log_os_;                        \
      cairn_log_os_ << expr;                                   \
      ::cairn::log::write(level, module, cairn_log_os_.str()); \
    }                                                          \
  } while (0)

// ---- implementation ----

namespace cairn::log {

namespace detail {

inline std::optional<Level> parse_level(std::string_view s) noexcept {
  if (s == "debug") return Level::debug;
  if (s == "info") return Level::info;
  if (s == "warn") return Level::warn;
  if (s == "error") return Level::error;
  if (s == "off") return Level::off;
  return std::nullopt;
}

inline std::string_view trim(std::string_view v) noexcept {
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.front()))) v.remove_prefix(1);
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.remove_suffix(1);
  return v;
}

inline bool valid_module_name(std::string_view m) noexcept {
  if (m.empty()) return false;
  return std::all_of(m.begin(), m.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

inline constexpr const char* kLevels = "debug, info, warn, error or off";

// The level snapshot readers see. Snapshots are immutable once published and
// never freed: a reader may still hold the previous pointer while a new one
// is swapped in, and level changes are rare (start, SIGHUP), so the retired
// ones are a few hundred bytes each for the life of the process.
inline std::atomic<const LevelSpec*> g_spec{nullptr};

// The output side; every member under `mu`.
struct Output {
  std::mutex mu;
  Sink sink;
  Format format = Format::text;
  std::string path;  // empty: stderr
  int fd = STDERR_FILENO;
};

inline Output& output() {
  // Leaked on purpose: threads may log while static destructors run.
  static Output* o = new Output;
  return *o;
}

// Every snapshot ever published, kept reachable so leak checkers do not
// report the retired ones.
inline void retain(const LevelSpec* spec) {
  static std::mutex mu;
  static auto* all = new std::vector<const LevelSpec*>;
  std::lock_guard lock(mu);
  all->push_back(spec);
}

inline void publish(LevelSpec spec) {
  const auto* fresh = new LevelSpec(std::move(spec));  // never freed (see g_spec)
  retain(fresh);
  g_spec.store(fresh, std::memory_order_release);
  g_minimum.store(static_cast<int>(fresh->minimum()), std::memory_order_relaxed);
}

// The levels from $CAIRN_LOG, once, unless set_levels() came first.
inline const LevelSpec& current() noexcept {
  if (const LevelSpec* s = g_spec.load(std::memory_order_acquire)) return *s;
  static std::once_flag once;
  std::call_once(once, [] {
    if (g_spec.load(std::memory_order_acquire) != nullptr) return;
    LevelSpec spec;
    std::string warning;
    if (const char* v = std::getenv("CAIRN_LOG"); v != nullptr) {
      if (auto parsed = parse_level_spec(v)) {
        spec = std::move(*parsed);
      } else {
        warning = "ignoring CAIRN_LOG='" + std::string(v) + "': " + parsed.error().message +
                  "; logging at info";
      }
    }
    const LevelSpec* none = nullptr;
    auto* fresh = new LevelSpec(std::move(spec));
    if (g_spec.compare_exchange_strong(none, fresh, std::memory_order_acq_rel)) {
      retain(fresh);
      g_minimum.store(static_cast<int>(fresh->minimum()), std::memory_order_relaxed);
    } else {
      delete fresh;  // set_levels() won the race; nobody saw `fresh`
    }
    if (!warning.empty()) write(Level::warn, "log", warning);
  });
  return *g_spec.load(std::memory_order_acquire);
}

inline void write_all(int fd, std::string_view data) noexcept {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere left to report it
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

inline Result<int> open_append(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return make_error(Errc::io_error, "cannot open log file " + path + ": " + std::strerror(errno));
  }
  return fd;
}

inline void append_hex_escape(std::string& out, const char* prefix, unsigned v, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += prefix;
  for (int i = digits - 1; i >= 0; --i) out += kHex[(v >> (4 * i)) & 0xf];
}

// Length of the valid UTF-8 sequence at the start of `s` (1-4), 0 if it is
// not one (stray continuation byte, truncated, overlong, surrogate, > U+10FFFF).
inline size_t utf8_sequence(std::string_view s) noexcept {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  size_t len = 0;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
  } else {
    return 0;
  }
  if (s.size() < len) return 0;
  for (size_t i = 1; i < len; ++i) {
    if ((b(i) & 0xc0) != 0x80) return 0;
  }
  if (c == 0xe0 && b(1) < 0xa0) return 0;   // overlong
  if (c == 0xed && b(1) >= 0xa0) return 0;  // surrogate
  if (c == 0xf0 && b(1) < 0x90) return 0;   // overlong
  if (c == 0xf4 && b(1) >= 0x90) return 0;  // beyond U+10FFFF
  return len;
}

}  // namespace detail

// ---- levels ----

inline Level LevelSpec::level_for(std::string_view module) const noexcept {
  for (const auto& [name, level] : modules) {
    if (name == module) return level;
  }
  return default_level;
}

inline Level LevelSpec::minimum() const noexcept {
  Level m = default_level;
  for (const auto& [name, level] : modules) m = std::min(m, level);
  return m;
}

inline std::string LevelSpec::to_string() const {
  std::string out(level_name(default_level));
  for (const auto& [name, level] : modules) {
    out += ',';
    out += name;
    out += '=';
    out += level_name(level);
  }
  return out;
}

inline Result<LevelSpec> parse_level_spec(std::string_view text) {
  const auto bad = [&](const std::string& why) {
    return make_error(Errc::invalid_argument,
                      why + " (expected LEVEL[,MODULE=LEVEL...] with LEVEL one of " +
                          detail::kLevels + ", e.g. info,p2p=debug)");
  };
  LevelSpec spec;
  bool have_default = false;
  if (detail::trim(text).empty()) return bad("an empty level");
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string_view item = detail::trim(
        text.substr(start, comma == std::string_view::npos ? text.npos : comma - start));
    if (item.empty()) return bad("an empty item in '" + std::string(text) + "'");
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      const auto level = detail::parse_level(item);
      if (!level) return bad("unknown level '" + std::string(item) + "'");
      if (have_default) return bad("two default levels in '" + std::string(text) + "'");
      spec.default_level = *level;
      have_default = true;
    } else {
      const std::string_view module = detail::trim(item.substr(0, eq));
      const std::string_view level_text = detail::trim(item.substr(eq + 1));
      if (!detail::valid_module_name(module))
        return bad("'" + std::string(item) + "' names no module");
      const auto level = detail::parse_level(level_text);
      if (!level)
        return bad("unknown level '" + std::string(level_text) + "' for module " +
                   std::string(module));
      const auto it =
          std::lower_bound(spec.modules.begin(), spec.modules.end(), module,
                           [](const auto& m, std::string_view name) { return m.first < name; });
      if (it != spec.modules.end() && it->first == module)
        return bad("module " + std::string(module) + " given twice");
      spec.modules.emplace(it, std::string(module), *level);
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return spec;
}

inline Result<Format> parse_format(std::string_view text) {
  const std::string_view t = detail::trim(text);
  if (t == "text") return Format::text;
  if (t == "json") return Format::json;
  return make_error(Errc::invalid_argument,
                    "unknown log format '" + std::string(text) + "' (expected text or json)");
}

inline bool detail::module_enabled(Level l, std::string_view module) noexcept {
  // level_for() is never below the minimum, so this also rejects what the
  // fast path let through before the first initialisation (minimum -1).
  if (l == Level::off) return false;
  return static_cast<int>(l) >= static_cast<int>(detail::current().level_for(module));
}

inline LevelSpec set_levels(LevelSpec spec) {
  LevelSpec previous = detail::current();
  detail::publish(std::move(spec));
  return previous;
}

inline LevelSpec levels() { return detail::current(); }

inline void set_threshold(Level l) { set_levels(LevelSpec{l, {}}); }

inline Level threshold() { return detail::current().default_level; }

// ---- output ----

inline void set_format(Format f) {
  auto& o = detail::output();
  std::lock_guard lock(o.mu);
  o.format = f;
}

inline Format format() {
  auto& o = detail::output();
  std::lock_guard lock(o.mu);
  return o.format;
}

inline Status set_file(const std::string& path) {
  int fd = STDERR_FILENO;
  if (!path.empty()) {
    auto opened = detail::open_append(path);
    if (!opened) return tl::unexpected(opened.error());
    fd = *opened;
  }
  auto& o = detail::output();
  std::lock_guard lock(o.mu);
  if (o.fd != STDERR_FILENO) ::close(o.fd);
  o.fd = fd;
  o.path = path;
  return {};
}

inline std::string file() {
  auto& o = detail::output();
  std::lock_guard lock(o.mu);
  return o.path;
}

inline Status reopen() {
  auto& o = detail::output();
  std::string path;
  {
    std::lock_guard lock(o.mu);
    path = o.path;
  }
  if (path.empty()) return {};
  auto opened = detail::open_append(path);
  if (!opened) return tl::unexpected(opened.error());
  std::lock_guard lock(o.mu);
  if (o.path != path) {  // set_file() ran meanwhile: its file wins
    ::close(*opened);
    return {};
  }
  if (o.fd != STDERR_FILENO) ::close(o.fd);
  o.fd = *opened;
  return {};
}

inline Sink set_sink(Sink sink) {
  auto& o = detail::output();
  std::lock_guard lock(o.mu);
  std::swap(o.sink, sink);
  return sink;
}

inline void write(Level l, std::string_view module, std::string_view message) {
  const auto now = std::chrono::system_clock::now();
  auto& o = detail::output();
  std::lock_guard lock(o.mu);
  if (o.sink) {
    o.sink(l, module, message);
    return;
  }
  const std::string line = o.format == Format::json ? format_json(now, l, module, message)
                                                    : format_text(now, l, module, message);
  // One write(2) per line: with O_APPEND, lines of concurrent writers (and
  // of a second process on the same file) do not interleave.
  detail::write_all(o.fd, line);
}

// ---- formatting ----

inline std::string format_timestamp(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto ms_total = duration_cast<milliseconds>(t.time_since_epoch()).count();
  auto secs = static_cast<time_t>(ms_total / 1000);
  auto ms = static_cast<int>(ms_total % 1000);
  if (ms < 0) {  // before 1970: floor, not truncate
    ms += 1000;
    --secs;
  }
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[96];  // room for any int the fields could hold (the compiler checks)
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

inline std::string format_text(std::chrono::system_clock::time_point t, Level l,
                               std::string_view module, std::string_view message) {
  std::string out = format_timestamp(t);
  out += ' ';
  const std::string_view name = level_name(l);
  out += name;
  out.append(name.size() < 5 ? 6 - name.size() : 1, ' ');
  out += module;
  out += ": ";
  for (char ch : message) {
    const auto u = static_cast<unsigned char>(ch);
    switch (ch) {
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          detail::append_hex_escape(out, "\\x", u, 2);
        } else {
          out += ch;
        }
    }
  }
  out += '\n';
  return out;
}

inline void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  while (!s.empty()) {
    const auto c = static_cast<unsigned char>(s.front());
    if (c >= 0x80) {
      const size_t len = detail::utf8_sequence(s);
      if (len == 0) {
        out += "\xef\xbf\xbd";  // U+FFFD for one invalid byte
        s.remove_prefix(1);
      } else {
        out.append(s.data(), len);
        s.remove_prefix(len);
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          detail::append_hex_escape(out, "\\u", c, 4);
        } else {
          out += static_cast<char>(c);
        }
    }
    s.remove_prefix(1);
  }
  out += '"';
}

inline std::string format_json(std::chrono::system_clock::time_point t, Level l,
                               std::string_view module, std::string_view message) {
  std::string out = "{\"ts\":\"";
  out += format_timestamp(t);
  out += "\",\"level\":\"";
  out += level_name(l);
  out += "\",\"module\":";
  append_json_string(out, module);
  out += ",\"msg\":";
  append_json_string(out, message);
  out += "}\n";
  return out;
}

}  // namespace cairn::log
