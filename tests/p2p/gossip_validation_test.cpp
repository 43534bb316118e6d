// The validation hook end to end: GossipNodes on the simulated network, one
// of which publishes messages every other node's validator rejects.

#include <gtest/gtest.h>

#include "gossip_sim_cluster.hpp"
#include "support/test_util.hpp"

namespace cairn::p2p {
namespace {

using namespace std::chrono_literals;

const ShardId kShard{0};

// The application's rule in this test: a payload starting with 0xff is invalid.
Validation reject_ff(const NodeId&, TopicId, ByteSpan data) {
  return !data.empty() && data[0] == 0xff ? Validation::reject : Validation::accept;
}

TEST(GossipValidation, InvalidMessagesAreNotForwardedAndGetTheSenderDropped) {
  constexpr size_t kNodes = 10;
  test::SimCluster c(std::vector<std::vector<ShardId>>(kNodes, {kShard}), {1},
                     cairn::test::seeded_rng(5)());
  for (size_t i = 1; i < kNodes; ++i) c.node(i).gossip->set_validator(reject_ff);
  c.start();
  c.run_for(20s);
  GossipNode& bad = *c.node(0).gossip;
  const auto victims = bad.router().topic_peers(kShard);
  ASSERT_GE(victims.size(), 4u);

  // One invalid message: only the publisher's direct targets see it, none
  // delivers it, none forwards it, and each now scores the publisher < 0.
  ASSERT_TRUE(bad.publish(kShard, Bytes{0xff, 1}));
  c.run_for(2s);
  uint64_t copies = 0, rejected = 0;
  for (size_t i = 1; i < kNodes; ++i) {
    const auto& st = c.node(i).router().stats();
    copies += st.received;
    rejected += st.rejected;
    EXPECT_TRUE(c.node(i).delivered.empty()) << "node " << i << " delivered an invalid message";
    EXPECT_EQ(st.forwarded, 0u) << "node " << i << " forwarded an invalid message";
  }
  EXPECT_EQ(copies, bad.router().stats().forwarded) << "a copy travelled beyond the first hop";
  EXPECT_EQ(rejected, copies);
  for (size_t i = 1; i < kNodes; ++i) {
    const auto& r = c.node(i).router();
    if (r.stats().rejected == 0) continue;
    EXPECT_LT(r.score(bad.id()), 0) << "node " << i;
  }
  // Negative score: pruned from every mesh at the next heartbeat.
  c.run_for(2s);
  for (size_t i = 1; i < kNodes; ++i) {
    const auto mesh = c.node(i).router().mesh(kShard);
    EXPECT_EQ(std::count(mesh.begin(), mesh.end(), bad.id()), 0) << "node " << i;
  }

  // Two more: past the graylist threshold, the peers disconnect it through
  // the Host and it stays out (the router remembers its score).
  ASSERT_TRUE(bad.publish(kShard, Bytes{0xff, 2}));
  ASSERT_TRUE(bad.publish(kShard, Bytes{0xff, 3}));
  c.run_for(5s);
  for (const auto& v : victims) {
    for (size_t i = 1; i < kNodes; ++i) {
      if (c.node(i).gossip->id() != v) continue;
      EXPECT_FALSE(c.node(i).gossip->host().is_connected(bad.id())) << "node " << i;
      EXPECT_LT(c.node(i).gossip->host().score(bad.id()), 0) << "node " << i;
    }
  }

  // The honest nodes still deliver to each other.
  ASSERT_TRUE(c.node(1).gossip->publish(kShard, Bytes{1, 2, 3}));
  c.run_for(2s);
  for (size_t i = 2; i < kNodes; ++i) EXPECT_EQ(c.node(i).delivered.size(), 1u) << "node " << i;
}

}  // namespace
}  // namespace cairn::p2p
