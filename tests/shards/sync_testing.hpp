#pragma once
// Shared pieces of the sync and scrub tests: the network geometry they use,
// polling with a deadline, and a thread that drives an engine's tick().

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "cairn/erasure/params.hpp"

namespace cairn::shards::testing {

// small_params() with room for 64 blobs per shard and a cheap seal.
erasure::NetworkParams sync_params();

// Polls `pred` every few milliseconds until it holds (true) or `timeout`
// passes (false).
bool eventually(const std::function<bool()>& pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(20));

// Calls `tick` every `period` on a thread of its own until destroyed.
class Ticker {
 public:
  Ticker(std::function<void()> tick, std::chrono::milliseconds period);
  ~Ticker();
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace cairn::shards::testing
