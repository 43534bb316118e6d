#pragma once
// The clocks behind cairn::Clock (cairn/core/clock.hpp): real time, and a
// manual clock for deterministic simulation.

#include <cstdint>
#include <functional>
#include <memory>

#include "cairn/core/asio_fwd.hpp"
#include "cairn/core/clock.hpp"

namespace cairn::p2p {

// Real time: std::chrono::steady_clock and asio::steady_timer. Stateless; one
// instance may be shared by every component in the process.
Clock& real_clock();

// Virtual time for deterministic simulation. Time starts at the epoch
// (TimePoint{}) and moves only when advance()/run_until() is called; due
// timers then fire in deadline order (ties in arming order), and the
// io_context is polled to quiescence after each one, so everything a timer
// callback triggers at the same virtual instant happens before time moves on.
//
// Owner: the test or simulation driver. Single-threaded: the io_context must
// not be run by any other thread, and advance() must not be called from
// inside a handler. now() and elapsed() may be read from any thread (a
// simulated node's blocked callers check their deadlines with it).
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
