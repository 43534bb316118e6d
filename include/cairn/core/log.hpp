#pragma once
// Leveled, module-tagged logging, cheap when disabled: CAIRN_LOG evaluates its
// message expression only when the level is enabled. The threshold comes
// from $CAIRN_LOG (debug, info, warn, error, off; default info) and can be
// changed at run time; lines go to stderr unless a sink is installed (tests
// install one to assert that a reason was logged).

#include <atomic>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>

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

using Sink = std::function<void(Level, std::string_view module, std::string_view message)>;

namespace detail {
inline Level level_from_env() noexcept {
  const char* v = std::getenv("CAIRN_LOG");
  if (v == nullptr) return Level::info;
  const std::string_view s(v);
  if (s == "debug") return Level::debug;
  if (s == "warn") return Level::warn;
  if (s == "error") return Level::error;
  if (s == "off") return Level::off;
  return Level::info;
}
inline std::atomic<int>& threshold_ref() noexcept {
  static std::atomic<int> t{static_cast<int>(level_from_env())};
  return t;
}
struct SinkState {
  std::mutex mu;
  Sink sink;
};
inline SinkState& sink_state() {
  static SinkState s;
  return s;
}
}  // namespace detail

inline bool enabled(Level l) noexcept {
  return static_cast<int>(l) >= detail::threshold_ref().load(std::memory_order_relaxed);
}
inline void set_threshold(Level l) noexcept {
  detail::threshold_ref().store(static_cast<int>(l), std::memory_order_relaxed);
}
inline Level threshold() noexcept {
  return static_cast<Level>(detail::threshold_ref().load(std::memory_order_relaxed));
}

// Installs `sink` (empty: back to stderr); returns the previous one.
inline Sink set_sink(Sink sink) {
  auto& st = detail::sink_state();
  std::lock_guard lock(st.mu);
  std::swap(st.sink, sink);
  return sink;
}

inline void write(Level l, std::string_view module, std::string_view message) {
  auto& st = detail::sink_state();
  std::lock_guard lock(st.mu);
  if (st.sink) {
    st.sink(l, module, message);
    return;
  }
  std::cerr << "[" << level_name(l) << "] " << module << ": " << message << "\n";
}

}  // namespace cairn::log

// CAIRN_LOG(cairn::log::Level::info, "p2p", "peer " << id << " connected");
#define CAIRN_LOG(level, module, expr)                          \
  do {                                                          \
    if (::cairn::log::enabled(level)) {                         \
      std::ostringstream cairn_log_os_;                         \
      cairn_log_os_ << expr;                                    \
      ::cairn::log::write(level, module, cairn_log_os_.str());  \
    }                                                           \
  } while (0)
