#pragma once
// In-process storage networks for the node tests: one DevChain shared by N
// real Nodes (RocksDB stores, TCP on 127.0.0.1, real sealing), with fast
// blocks so uploads register quickly.

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cairn/contracts/devchain.hpp"
#include "cairn/p2p/identity.hpp"
#include "node/node.hpp"
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

// Settings of one test node: loopback, no API, fast discovery.
inline NodeSettings node_settings(const std::filesystem::path& dir) {
  NodeSettings s;
  s.data_dir = dir.string();
  s.listen = "127.0.0.1:0";
  s.api.listen.clear();
  s.discovery.chain_refresh = 500ms;
  s.discovery.bootstrap_retry = 500ms;
  s.chain.registry_refresh = 500ms;
  s.gossip.heartbeat_interval = 200ms;
  s.upload.ack_timeout = 30s;
  s.fetch.hedge_after = 500ms;
  s.stop_timeout = 5s;
  // Tests write many small stores at once: skip the per-batch fsync (a
  // crash of the test process is not a power loss).
  s.storage.store.sync_writes = false;
  s.storage.store.write_buffer_bytes = 8u << 20;
  return s;
}

class Cluster {
 public:
  explicit Cluster(erasure::NetworkParams params = fast_params()) {
    contracts::DevChainSettings dcs;
    dcs.db_path = (tmp_ / "chain").string();
    dcs.sync_writes = false;
    auto chain = contracts::DevChain::open(dcs, SigningKey::generate(), params);
    if (!chain) throw std::runtime_error(chain.error().to_string());
    devchain_ = std::shared_ptr<contracts::DevChain>(std::move(*chain));
    devchain_->start();
  }
  ~Cluster() {
    nodes_.clear();
    devchain_->stop();
  }

  contracts::DevChain& chain() { return *devchain_; }
  std::filesystem::path dir(size_t i) const { return tmp_ / ("node" + std::to_string(i)); }
  Node& node(size_t i) { return *nodes_.at(i); }
  size_t size() const { return nodes_.size(); }

  // Starts a node; later nodes bootstrap from the first.
  Node& add(const std::function<void(NodeSettings&)>& tweak = {}) {
    const size_t i = nodes_.size();
    auto s = node_settings(dir(i));
    if (!nodes_.empty()) s.bootstrap.push_back(nodes_[0]->p2p_address());
    if (tweak) tweak(s);
    NodeOptions o;
    o.chain = devchain_;
    o.seed = 1000 + i;
    auto n = Node::open(s, o);
    if (!n) throw std::runtime_error("opening node " + std::to_string(i) + ": " + n.error().to_string());
    auto st = (*n)->start();
    if (!st) throw std::runtime_error("starting node " + std::to_string(i) + ": " + st.error().to_string());
    nodes_.push_back(std::move(*n));
    return *nodes_.back();
  }

  void remove(size_t i) {
    if (nodes_.at(i)) {
      EXPECT_TRUE(nodes_[i]->stop());
      nodes_[i].reset();
    }
  }

  // Every live node is registered on the chain and sees every other live node.
  bool meshed() {
    size_t live = 0;
    for (auto& n : nodes_) live += n ? 1u : 0u;
    for (auto& n : nodes_) {
      if (!n) continue;
      auto st = n->service().status();
      if (!st || !st->chain.registered || st->peers.size() + 1 < live) return false;
    }
    // The registry lists them all (min_replicas caps read it).
    return chain().nodes(ShardId{0}).value_or(std::vector<contracts::NodeRecord>{}).size() >= live;
  }

 private:
  cairn::test::TempDir tmp_;
  std::shared_ptr<contracts::DevChain> devchain_;
  std::vector<std::unique_ptr<Node>> nodes_;
};

}  // namespace cairn::node::test
