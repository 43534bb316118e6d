#pragma once
// Bytes per second over a sliding window, for progress displays. Not
// thread-safe: the owner serializes calls.

#include <chrono>
#include <cstdint>
#include <deque>
#include <utility>

#include "cairn/core/clock.hpp"

namespace cairn::shards {

class RateMeter {
 public:
  // Window over which the rate is averaged. 5 s: steady enough for a status
  // line, quick to fall to zero when transfers stop.
  static constexpr std::chrono::seconds kWindow{5};

  void add(TimePoint now, uint64_t bytes) {
    if (!started_) {
      started_ = true;
      first_ = now;
    }
    samples_.emplace_back(now, bytes);
    sum_ += bytes;
    prune(now);
  }

  // Bytes per second over the last kWindow (or since the first sample, when
  // more recent); 0 before any sample or when none is in the window.
  double rate(TimePoint now) const {
    if (!started_) return 0;
    uint64_t sum = sum_;
    for (const auto& [t, b] : samples_) {
      if (now - t <= kWindow) break;
      sum -= b;
    }
    if (sum == 0) return 0;
    const TimePoint from = std::max(first_, now - kWindow);
    const double seconds = std::chrono::duration<double>(now - from).count();
    // Below 100 ms the estimate is noise; report over at least that long.
    return static_cast<double>(sum) / std::max(seconds, 0.1);
  }

 private:
  void prune(TimePoint now) {
    while (!samples_.empty() && now - samples_.front().first > kWindow) {
      sum_ -= samples_.front().second;
      samples_.pop_front();
    }
  }

  bool started_ = false;
  TimePoint first_{};
  std::deque<std::pair<TimePoint, uint64_t>> samples_;
  uint64_t sum_ = 0;
};

}  // namespace cairn::shards
