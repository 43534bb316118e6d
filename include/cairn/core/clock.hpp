#pragma once
// The injected clock and timers. Everything time-based in cairn's engines
// (p2p timeouts, keepalive and backoff, gossip heartbeats, the chain
// client's batching and refreshes, simulated link latency) reads time and
// arms timers through a Clock, never through std::chrono or asio timers
// directly, so a simulation can run many nodes on one io_context under a
// manual clock and assert exact virtual times. The implementations (real
// time over asio::steady_timer, and the manual clock) are in
// cairn/p2p/clock.hpp.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "cairn/core/asio_fwd.hpp"

namespace cairn {

using Duration = std::chrono::steady_clock::duration;  // nanoseconds
using TimePoint = std::chrono::steady_clock::time_point;

// A one-shot, re-armable timer bound to one executor.
//
// Contract: the callback runs on the executor the timer was made for, at or
// after the deadline, at most once per arming. Re-arming, cancel() and
// destruction all guarantee the previous callback will NOT run (even if its
// deadline already passed and it is queued), so a component may capture
// `this` as long as it owns the Timer. A Timer must be used (armed,
// cancelled, destroyed) only from its executor.
class Timer {
 public:
  virtual ~Timer() = default;
  // Arms the timer to call `fn` after `delay` (<= 0: as soon as possible,
  // never synchronously). Replaces any previous arming.
  virtual void expires_after(Duration delay, std::function<void()> fn) = 0;
  // Disarms; no-op when not armed.
  virtual void cancel() noexcept = 0;
  // True while armed and not yet fired.
  virtual bool armed() const noexcept = 0;
};

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const noexcept = 0;
  // A new timer whose callbacks run on `executor`.
  virtual std::unique_ptr<Timer> make_timer(const asio::any_io_executor& executor) = 0;
};

}  // namespace cairn
