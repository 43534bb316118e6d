// GossipNode wiring on the simulated network: the chain registry as the only
// discovery source, and joining / leaving a shard at run time.

#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>

#include "gossip_sim_cluster.hpp"
#include "support/test_util.hpp"

namespace cairn::p2p {
namespace {

using namespace std::chrono_literals;

bool in_mesh(const GossipNode& n, ShardId s, const NodeId& peer) {
  const auto mesh = n.router().mesh(s);
  return std::find(mesh.begin(), mesh.end(), peer) != mesh.end();
}

TEST(GossipNode, ChainRegistryAloneIsEnoughToMesh) {
  constexpr size_t kNodes = 20;
  std::vector<std::vector<ShardId>> shards;
  for (size_t i = 0; i < kNodes; ++i) shards.push_back({ShardId(static_cast<uint32_t>(i % 2))});
  StaticEndpointSource chain;
  // No bootstrap addresses: every node learns its shard's peers from the
  // registry only.
  test::SimCluster c(shards, {}, cairn::test::seeded_rng(6)(), {}, &chain);
  for (size_t i = 0; i < kNodes; ++i) {
    chain.put(PeerRecord{c.node(i).gossip->id(), c.node(i).name + ":4100", c.node(i).shards});
  }
  c.start();
  c.run_for(10s);
  // Every node dials its registry peers at once, so many pairs dial each
  // other simultaneously and the Host resolves duplicate sessions; nothing
  // sent on the retired ones (subscriptions, GRAFTs, PX hellos) is lost.
  uint64_t duplicates = 0;
  for (size_t i = 0; i < kNodes; ++i)
    duplicates += c.node(i).gossip->host().stats().duplicates_retired;
  std::cout << "[sim] duplicate sessions retired: " << duplicates << "\n";
  EXPECT_GT(duplicates, 0u) << "no simultaneous dials: the scenario lost its point";
  for (size_t i = 0; i < kNodes; ++i) {
    const ShardId s = c.node(i).shards[0];
    const size_t deg = c.node(i).router().mesh(s).size();
    EXPECT_GE(deg, 4u) << "node " << i << ": " << c.node(i).router().topic_peers(s).size() << " of "
                       << c.node(i).router().peers().size() << " peers announced the shard";
    EXPECT_LE(deg, 12u) << "node " << i;
    EXPECT_GE(c.node(i).gossip->discovery().connected_in_shard(s), 4u) << "node " << i;
    EXPECT_GE(c.node(i).gossip->discovery().stats().chain_queries, 1u);
  }
  auto id = c.node(3).gossip->publish(ShardId(1), Bytes{1, 2, 3});
  ASSERT_TRUE(id);
  c.run_for(1s);
  for (size_t i = 0; i < kNodes; ++i) {
    EXPECT_EQ(c.node(i).delivered.count(*id), (i % 2 == 1 && i != 3) ? 1u : 0u) << "node " << i;
  }
}

TEST(GossipNode, JoiningAndLeavingAShardAtRunTime) {
  constexpr size_t kNodes = 20;
  std::vector<std::vector<ShardId>> shards;
  for (size_t i = 0; i < kNodes; ++i) shards.push_back({ShardId(i < 10 ? 0u : 1u)});
  test::SimCluster c(shards, {0, 10}, cairn::test::seeded_rng(7)());
  c.start();
  c.run_for(20s);
  GossipNode& joiner = *c.node(15).gossip;
  ASSERT_EQ(joiner.router().mesh(ShardId(0)).size(), 0u);

  // Join shard 0: discovery finds its peers (PX from the shard-1 peers, which
  // know the bootstrap's shard-0 neighbours), the router grafts a mesh.
  joiner.subscribe(ShardId(0));
  ASSERT_TRUE(c.run_until(
      [&] {
        return joiner.router().mesh(ShardId(0)).size() >= 4 &&
               joiner.discovery().connected_in_shard(ShardId(0)) >= 4;
      },
      30s))
      << "mesh " << joiner.router().mesh(ShardId(0)).size() << ", connected "
      << joiner.discovery().connected_in_shard(ShardId(0));
  auto id = c.node(2).gossip->publish(ShardId(0), Bytes{7, 7});
  ASSERT_TRUE(id);
  c.run_for(1s);
  EXPECT_EQ(c.node(15).delivered.count(*id), 1u);
  EXPECT_GE(joiner.router().mesh(ShardId(1)).size(), 4u)
      << "joining shard 0 broke the shard-1 mesh";

  // Leave it: peers drop it from their meshes and it receives nothing more.
  joiner.unsubscribe(ShardId(0));
  c.run_for(2s);
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_FALSE(in_mesh(*c.node(i).gossip, ShardId(0), joiner.id())) << "node " << i;
  }
  const uint64_t received = joiner.router().stats().received;
  auto id2 = c.node(2).gossip->publish(ShardId(0), Bytes{8, 8});
  ASSERT_TRUE(id2);
  c.run_for(1s);
  EXPECT_EQ(c.node(15).delivered.count(*id2), 0u);
  EXPECT_EQ(joiner.router().stats().received, received) << "still sent shard-0 traffic";
}

}  // namespace
}  // namespace cairn::p2p
