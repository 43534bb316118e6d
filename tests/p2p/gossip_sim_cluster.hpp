#pragma once
// A cluster of GossipNodes (Host + router + discovery) on the in-memory
// SimNetwork under a ManualClock, all on one io_context: the harness of the
// gossip simulations. Reproducible from the test seed.

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>

#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cairn/core/log.hpp"
#include "cairn/p2p/gossip_node.hpp"
#include "cairn/p2p/host.hpp"
#include "cairn/p2p/sim_transport.hpp"
#include "p2p_test_util.hpp"

namespace cairn::p2p::test {

using namespace std::chrono_literals;

// Simulated nodes "n<i>" listening on port 4100, bootstrapped from the nodes
// in `bootstrap`, with a 5 ms link (and 1 ms jitter) between every pair.
class SimCluster {
 public:
  struct Node {
    std::string name;
    std::vector<ShardId> shards;
    std::unique_ptr<GossipNode> gossip;
    std::map<MessageId, size_t> delivered;
    bool alive() const { return gossip != nullptr; }
    const GossipRouter& router() const { return gossip->router(); }
  };

  // `configure` (optional) adjusts each node's settings before it is built;
  // `chain` (optional, must outlive the cluster) is every node's registry.
  SimCluster(const std::vector<std::vector<ShardId>>& shards, const std::vector<size_t>& bootstrap,
             uint64_t seed, std::function<void(size_t, GossipNodeSettings&)> configure = {},
             EndpointSource* chain = nullptr)
      : executor_(ctx_.get_executor()), clock_(ctx_), net_(executor_, clock_, seed, link()) {
    std::cout << "[sim] cluster seed " << seed << " (from CAIRN_TEST_SEED "
              << cairn::test::test_seed() << ")\n";
    // Quiet: the scenarios produce thousands of connect, refuse and disconnect lines.
    log::set_threshold(log::Level::error);
    std::mt19937_64 rng(seed);
    for (size_t i = 0; i < shards.size(); ++i) {
      Node n;
      n.name = "n" + std::to_string(i);
      n.shards = shards[i];
      GossipNodeSettings s;
      s.listen_address = n.name + ":4100";
      s.p2p.advertised_address = s.listen_address;
      s.shards = n.shards;
      for (size_t b : bootstrap) {
        if (b != i) s.discovery.bootstrap.push_back("n" + std::to_string(b) + ":4100");
      }
      if (configure) configure(i, s);
      n.gossip = std::make_unique<GossipNode>(executor_, net_.make_transport(n.name), clock_,
                                              key_from_rng(rng), s, rng(), chain);
      nodes_.push_back(std::move(n));
    }
    for (size_t i = 0; i < nodes_.size(); ++i) {
      nodes_[i].gossip->set_handler(
          [this, i](const GossipDeliver& d) { ++nodes_[i].delivered[d.id]; });
    }
  }

  ~SimCluster() {
    for (auto& n : nodes_) n.gossip.reset();
    clock_.settle();
    log::set_threshold(log::Level::info);
  }

  static LinkModel link() {
    LinkModel l;
    l.latency = 5ms;
    l.jitter = 1ms;
    return l;
  }

  void start() {
    for (auto& n : nodes_) {
      auto r = n.gossip->start();
      ASSERT_TRUE(r) << r.error().to_string();
    }
  }

  void run_for(Duration d) { clock_.advance(d); }
  bool run_until(const std::function<bool()>& done, Duration limit) {
    return clock_.run_until(done, limit);
  }
  TimePoint now() const { return clock_.now(); }
  size_t size() const { return nodes_.size(); }
  Node& node(size_t i) { return nodes_[i]; }

  Result<MessageId> publish(size_t i, ShardId s, Bytes data) {
    auto r = nodes_[i].gossip->publish(s, std::move(data));
    clock_.settle();
    return r;
  }

  // The process dies: peers see their connections reset one link latency later.
  void kill(size_t i) {
    net_.crash(nodes_[i].name, /*reset=*/true);
    nodes_[i].gossip.reset();
  }

  void partition(const std::set<size_t>& side_a) {
    std::vector<std::string> a, b;
    for (size_t i = 0; i < nodes_.size(); ++i)
      (side_a.count(i) != 0 ? a : b).push_back(nodes_[i].name);
    net_.partition({a, b});
  }
  void heal() { net_.heal(); }

 private:
  asio::io_context ctx_;
  asio::any_io_executor executor_;
  ManualClock clock_;
  SimNetwork net_;
  std::vector<Node> nodes_;
};

}  // namespace cairn::p2p::test
