#pragma once
// The node tests' network: LocalNetwork (a shared DevChain with fast blocks
// and real Nodes on loopback) with failures turned into exceptions, so a
// test reads as a script.

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <thread>

#include "node/local_network.hpp"
#include "support/test_util.hpp"

namespace cairn::node::test {

using namespace std::chrono_literals;

// Polls `done` every 20 ms until it holds or `limit` passes.
inline bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

inline erasure::NetworkParams fast_params() {
  auto p = erasure::NetworkParams::localnet();
  p.block_time_ms = 50;
  return p;
}

class Cluster {
 public:
  explicit Cluster(erasure::NetworkParams params = fast_params()) {
    auto net = LocalNetwork::open(tmp_.path(), params);
    if (!net) throw std::runtime_error(net.error().to_string());
    net_ = std::move(*net);
  }

  contracts::DevChain& chain() { return net_->chain(); }
  void pause_blocks() { net_->pause_blocks(); }
  void resume_blocks() { net_->resume_blocks(); }
  std::filesystem::path dir(size_t i) const { return net_->dir(i); }
  Node& node(size_t i) { return net_->node(i); }
  size_t size() const { return net_->size(); }

  // Starts a node; later nodes bootstrap from the first live one. Tests
  // write many small stores at once: no fsync per batch (a crashed test
  // process is not a power loss).
  Node& add(const std::function<void(NodeSettings&)>& tweak = {},
            const std::function<void(NodeOptions&)>& inject = {}) {
    auto n = net_->add(
        [&](NodeSettings& s) {
          s.upload.ack_timeout = 30s;
          s.storage.store.sync_writes = false;
          s.storage.store.write_buffer_bytes = 8u << 20;
          if (tweak) tweak(s);
        },
        inject);
    if (!n) throw std::runtime_error(n.error().to_string());
    return **n;
  }

  void remove(size_t i) { EXPECT_TRUE(net_->remove(i)); }
  // Stops node `i` and returns what its stop returned (the final flush
  // fails on a store that took a write error).
  Status stop(size_t i) { return net_->remove(i); }
  bool meshed() { return net_->meshed(); }

 private:
  cairn::test::TempDir tmp_;
  std::unique_ptr<LocalNetwork> net_;
};

}  // namespace cairn::node::test
