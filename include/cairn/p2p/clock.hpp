#pragma once
// The injected clock and timers. Everything time-based in p2p (handshake and
// idle timeouts, keepalive, reconnect backoff, request timeouts, gossip
// heartbeats, simulated link latency) reads time and arms timers through a
// Clock, never through std::chrono or asio timers directly, so a simulation
// can run many nodes on one io_context under a ManualClock and assert exact
// virtual times.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "cairn/p2p/asio_fwd.hpp"

namespace cairn::p2p {

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

// Real time: std::chrono::steady_clock and asio::steady_timer. Stateless; one
// instance may be shared by every component in the process.
Clock& steady_clock();

// Virtual time for deterministic simulation. Time starts at the epoch
// (TimePoint{}) and moves only when advance()/run_until() is called; due
// timers then fire in deadline order (ties in arming order), and the
// io_context is polled to quiescence after each one, so everything a timer
// callback triggers at the same virtual instant happens before time moves on.
//
// Owner: the test or simulation driver. Single-threaded: the io_context must
// not be run by any other thread, and advance() must not be called from
// inside a handler.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(asio::io_context& ctx);
  ~ManualClock() override;
  ManualClock(const ManualClock&) = delete;
  ManualClock& operator=(const ManualClock&) = delete;

  TimePoint now() const noexcept override;
  std::unique_ptr<Timer> make_timer(const asio::any_io_executor& executor) override;

  // Time since the epoch (convenient in assertions).
  Duration elapsed() const noexcept;

  // Runs ready handlers and every timer due up to now()+d, then sets now() to
  // exactly now()+d. Returns the number of timers fired.
  uint64_t advance(Duration d);

  // Advances in steps to the next timer deadline until `done()` holds (checked
  // after each quiescent step) or `limit` of virtual time has passed. Returns
  // true when `done()` held; now() is then the instant it first held.
  bool run_until(const std::function<bool()>& done, Duration limit);

  // Polls the io_context until no handler is ready; time does not move.
  void settle();

  // Deadline of the earliest armed timer, if any.
  bool next_deadline(TimePoint& out) const noexcept;

  struct Impl;  // implementation detail (defined in the .cpp)

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace cairn::p2p
