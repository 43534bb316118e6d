// Gossip over real TCP on 127.0.0.1: 12 GossipNodes in one process (one
// io_context, real clock), 3 shard subnets, bootstrapped from node 0 and
// discovered by peer exchange. Bounded in wall time.

#include <gtest/gtest.h>

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>

#include <algorithm>
#include <functional>
#include <iostream>
#include <map>

#include "cairn/core/log.hpp"
#include "cairn/p2p/gossip_node.hpp"
#include "cairn/p2p/host.hpp"
#include "p2p_test_util.hpp"
#include "support/test_util.hpp"

namespace cairn::p2p {
namespace {

using namespace std::chrono_literals;

constexpr size_t kTcpNodes = 12;
constexpr uint32_t kTcpShards = 3;

// Node i serves shards i % 3 and (i + 1) % 3: eight nodes per subnet, so
// every node can reach D_low = 4 mesh peers in each of its subnets.
std::vector<ShardId> shards_of(size_t i) {
  std::vector<ShardId> s = {ShardId(static_cast<uint32_t>(i % kTcpShards)),
                            ShardId(static_cast<uint32_t>((i + 1) % kTcpShards))};
  std::sort(s.begin(), s.end());
  return s;
}

bool serves(size_t i, ShardId s) {
  const auto sh = shards_of(i);
  return std::find(sh.begin(), sh.end(), s) != sh.end();
}

class TcpCluster {
 public:
  TcpCluster() : executor_(ctx_.get_executor()) {
    log::set_threshold(log::Level::warn);
    auto rng = cairn::test::seeded_rng(77);
    for (size_t i = 0; i < kTcpNodes; ++i) {
      GossipNodeSettings s;
      s.listen_address = "127.0.0.1:0";
      s.shards = shards_of(i);
      // A short heartbeat keeps the test fast; the protocol is the same.
      s.gossip.heartbeat_interval = 200ms;
      s.discovery.bootstrap_retry = 500ms;
      s.discovery.px_ask_interval = 1s;
      s.discovery.unrelated_grace = 1s;
      if (i > 0) s.discovery.bootstrap = {bootstrap_};
      auto node = std::make_unique<GossipNode>(executor_, make_tcp_transport(executor_),
                                               real_clock(), test::key_from_rng(rng), s, rng());
      node->set_handler([this, i](const GossipDeliver& d) { ++delivered_[i][d.id]; });
      auto bound = node->start();
      EXPECT_TRUE(bound) << bound.error().to_string();
      if (i == 0 && bound) bootstrap_ = *bound;
      nodes_.push_back(std::move(node));
    }
  }

  ~TcpCluster() {
    size_t stopped = 0;
    for (auto& n : nodes_) n->stop([&stopped] { ++stopped; });
    run_until([&] { return stopped == nodes_.size(); }, 5s);
    nodes_.clear();
    ctx_.poll();
    log::set_threshold(log::Level::info);
  }

  // Runs the io_context until `done` or `limit` of wall time.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (done()) return true;
      ctx_.run_for(20ms);
    }
    return done();
  }

  std::string mesh_violation() const {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      for (ShardId s : shards_of(i)) {
        const size_t deg = nodes_[i]->router().mesh(s).size();
        if (deg < 4 || deg > 12) {
          return "node " + std::to_string(i) + " shard " + std::to_string(s.value) + " mesh " +
                 std::to_string(deg);
        }
      }
    }
    return "";
  }

  size_t count(size_t node, const MessageId& id) {
    auto it = delivered_[node].find(id);
    return it == delivered_[node].end() ? 0 : it->second;
  }

  GossipNode& node(size_t i) { return *nodes_[i]; }

 private:
  asio::io_context ctx_;
  asio::any_io_executor executor_;
  std::string bootstrap_;
  std::vector<std::unique_ptr<GossipNode>> nodes_;
  std::map<size_t, std::map<MessageId, size_t>> delivered_;
};

TEST(GossipTcp, TwelveNodesThreeSubnetsOnLoopback) {
  TcpCluster c;
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(c.run_until([&] { return c.mesh_violation().empty(); }, 20s)) << c.mesh_violation();
  std::cout << "[tcp] meshes in range after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - start)
                   .count()
            << " ms\n";
  for (size_t i = 0; i < kTcpNodes; ++i) {
    for (ShardId s : shards_of(i)) {
      EXPECT_GE(c.node(i).discovery().connected_in_shard(s), 4u) << "node " << i;
    }
  }

  // One message per shard from a subscriber, 1 KiB each.
  auto rng = cairn::test::seeded_rng(78);
  std::vector<std::pair<MessageId, size_t>> pubs;  // id, publisher
  std::vector<ShardId> shard_of_pub;
  for (uint32_t s = 0; s < kTcpShards; ++s) {
    size_t from = 0;
    while (!serves(from, ShardId(s))) ++from;
    auto id = c.node(from).publish(ShardId(s), cairn::test::random_bytes(rng, 1024));
    ASSERT_TRUE(id) << id.error().to_string();
    pubs.emplace_back(*id, from);
    shard_of_pub.push_back(ShardId(s));
  }
  auto all_delivered = [&] {
    for (size_t p = 0; p < pubs.size(); ++p) {
      for (size_t i = 0; i < kTcpNodes; ++i) {
        if (i != pubs[p].second && serves(i, shard_of_pub[p]) && c.count(i, pubs[p].first) == 0) {
          return false;
        }
      }
    }
    return true;
  };
  ASSERT_TRUE(c.run_until(all_delivered, 5s));
  c.run_until([] { return false; }, 300ms);  // let stragglers (duplicates) arrive
  for (size_t p = 0; p < pubs.size(); ++p) {
    for (size_t i = 0; i < kTcpNodes; ++i) {
      const size_t want = (serves(i, shard_of_pub[p]) && i != pubs[p].second) ? 1 : 0;
      EXPECT_EQ(c.count(i, pubs[p].first), want)
          << "node " << i << " shard " << shard_of_pub[p].value;
    }
  }
  for (size_t i = 0; i < kTcpNodes; ++i) {
    EXPECT_EQ(c.node(i).router().stats().ignored, 0u)
        << "node " << i << " was sent a message of a shard it does not serve";
  }
}

}  // namespace
}  // namespace cairn::p2p
