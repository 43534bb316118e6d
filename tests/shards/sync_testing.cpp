#include "shards/sync_testing.hpp"

#include "shards/store_testing.hpp"

namespace cairn::shards::testing {

erasure::NetworkParams sync_params() {
  erasure::NetworkParams p = small_params();
  p.blobs_per_shard = 64;
  p.seal_cost = 2;
  return p;
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

Ticker::Ticker(std::function<void()> tick, std::chrono::milliseconds period)
    : thread_([this, tick = std::move(tick), period] {
        while (!stop_.load()) {
          tick();
          std::this_thread::sleep_for(period);
        }
      }) {}

Ticker::~Ticker() {
  stop_.store(true);
  thread_.join();
}

}  // namespace cairn::shards::testing
