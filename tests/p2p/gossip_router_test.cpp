// One router against scripted peers: each test feeds inputs and checks the
// exact RPCs, deliveries and disconnects it produces.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "cairn/p2p/gossip.hpp"
#include "gossip_test_util.hpp"
#include "support/test_util.hpp"

namespace cairn::p2p {
namespace {

using namespace std::chrono_literals;

const TopicId kTopic{7};

struct RouterProbe {
  explicit RouterProbe(GossipSettings s = {})
      : router(test::node_id(0), s, cairn::test::test_seed()) {}

  TimePoint now{};
  GossipRouter router;
  std::map<NodeId, std::vector<GossipRpc>> sent;
  std::vector<GossipDeliver> delivered;
  std::vector<GossipDisconnect> disconnects;

  void drain() {
    for (auto& out : router.take_outputs()) {
      if (auto* s = std::get_if<GossipSend>(&out)) sent[s->peer].push_back(std::move(s->rpc));
      if (auto* d = std::get_if<GossipDeliver>(&out)) delivered.push_back(*d);
      if (auto* x = std::get_if<GossipDisconnect>(&out)) disconnects.push_back(*x);
    }
  }
  // Adds peers 1..n, each subscribed to `topic`.
  void add_subscribed_peers(uint32_t first, uint32_t count, TopicId topic, bool outbound = true) {
    for (uint32_t i = first; i < first + count; ++i) {
      router.add_peer(test::node_id(i), outbound, now);
      GossipRpc rpc;
      rpc.subscriptions.push_back({true, topic});
      router.handle_rpc(test::node_id(i), rpc, now);
    }
    drain();
  }
  void tick() {
    now += router.settings().heartbeat_interval;
    router.heartbeat(now);
    drain();
  }
  // Everything sent to `p` since the last clear, merged.
  GossipRpc merged(const NodeId& p) const {
    GossipRpc all;
    auto it = sent.find(p);
    if (it == sent.end()) return all;
    for (const auto& r : it->second) {
      all.subscriptions.insert(all.subscriptions.end(), r.subscriptions.begin(),
                               r.subscriptions.end());
      all.messages.insert(all.messages.end(), r.messages.begin(), r.messages.end());
      all.ihave.insert(all.ihave.end(), r.ihave.begin(), r.ihave.end());
      all.iwant.insert(all.iwant.end(), r.iwant.begin(), r.iwant.end());
      all.graft.insert(all.graft.end(), r.graft.begin(), r.graft.end());
      all.prune.insert(all.prune.end(), r.prune.begin(), r.prune.end());
    }
    return all;
  }
  void message_from(const NodeId& p, TopicId t, Bytes data) {
    GossipRpc rpc;
    rpc.messages.push_back({t, std::make_shared<const Bytes>(std::move(data))});
    router.handle_rpc(p, rpc, now);
    drain();
  }
};

TEST(GossipRouter, AnnouncesSubscriptionsToNewPeersAndChangesToAll) {
  RouterProbe p;
  p.router.subscribe(kTopic, p.now);
  p.router.add_peer(test::node_id(1), true, p.now);
  p.drain();
  ASSERT_EQ(p.merged(test::node_id(1)).subscriptions,
            (std::vector<GossipSubscription>{{true, kTopic}}));
  p.sent.clear();
  p.router.subscribe(TopicId(8), p.now);
  p.router.unsubscribe(kTopic, p.now);
  p.drain();
  EXPECT_EQ(p.merged(test::node_id(1)).subscriptions,
            (std::vector<GossipSubscription>{{true, TopicId(8)}, {false, kTopic}}));
}

TEST(GossipRouter, JoiningGraftsDPeersAndHeartbeatKeepsDegreeInRange) {
  RouterProbe p;
  p.add_subscribed_peers(1, 20, kTopic);
  p.router.subscribe(kTopic, p.now);
  p.drain();
  EXPECT_EQ(p.router.mesh(kTopic).size(), 6u);
  size_t grafts = 0;
  for (const auto& [peer, rpcs] : p.sent) grafts += p.merged(peer).graft.size();
  EXPECT_EQ(grafts, 6u);

  // Peers graft us until the mesh is oversubscribed; the heartbeat prunes to D.
  for (uint32_t i = 1; i <= 20; ++i) {
    GossipRpc g;
    g.graft.push_back(kTopic);
    p.router.handle_rpc(test::node_id(i), g, p.now);
  }
  p.drain();
  EXPECT_EQ(p.router.mesh(kTopic).size(), 20u);  // all our peers are outbound: accepted
  p.sent.clear();
  p.tick();
  EXPECT_EQ(p.router.mesh(kTopic).size(), 6u);
  size_t prunes = 0;
  for (const auto& [peer, rpcs] : p.sent) {
    for (const auto& pr : p.merged(peer).prune) {
      EXPECT_EQ(pr.backoff_seconds, 60u);
      ++prunes;
    }
  }
  EXPECT_EQ(prunes, 14u);
}

TEST(GossipRouter, InboundGraftBeyondDHighIsPruned) {
  RouterProbe p;
  p.router.subscribe(kTopic, p.now);
  p.add_subscribed_peers(1, 14, kTopic, /*outbound=*/false);
  p.drain();
  for (uint32_t i = 1; i <= 14; ++i) {
    GossipRpc g;
    g.graft.push_back(kTopic);
    p.router.handle_rpc(test::node_id(i), g, p.now);
  }
  p.drain();
  EXPECT_EQ(p.router.mesh(kTopic).size(), 12u);
}

TEST(GossipRouter, ForwardsValidMessagesToTheMeshOnceAndDeliversThemOnce) {
  RouterProbe p;
  p.add_subscribed_peers(1, 10, kTopic);
  p.router.subscribe(kTopic, p.now);
  p.drain();
  const auto mesh = p.router.mesh(kTopic);
  ASSERT_EQ(mesh.size(), 6u);
  p.sent.clear();
  const NodeId from = mesh.front();
  p.message_from(from, kTopic, Bytes{1, 2, 3});
  ASSERT_EQ(p.delivered.size(), 1u);
  EXPECT_EQ(*p.delivered[0].data, (Bytes{1, 2, 3}));
  EXPECT_EQ(p.delivered[0].from, from);
  for (const auto& m : mesh) {
    EXPECT_EQ(p.merged(m).messages.size(), m == from ? 0u : 1u);
  }
  for (uint32_t i = 1; i <= 10; ++i) {
    if (std::find(mesh.begin(), mesh.end(), test::node_id(i)) == mesh.end()) {
      EXPECT_TRUE(p.merged(test::node_id(i)).messages.empty());
    }
  }
  // A duplicate from another peer is neither delivered nor forwarded.
  p.sent.clear();
  p.message_from(mesh.back(), kTopic, Bytes{1, 2, 3});
  EXPECT_EQ(p.delivered.size(), 1u);
  EXPECT_TRUE(p.sent.empty());
  EXPECT_EQ(p.router.stats().duplicates, 1u);
}

TEST(GossipRouter, MessagesForTopicsWeDoNotServeAreNotDelivered) {
  RouterProbe p;
  p.add_subscribed_peers(1, 3, TopicId(1));
  p.message_from(test::node_id(1), TopicId(1), Bytes{9});
  EXPECT_TRUE(p.delivered.empty());
  EXPECT_TRUE(p.sent.empty());
}

TEST(GossipRouter, RejectedMessageIsNotForwardedCostsScoreAndRepeatsDisconnect) {
  RouterProbe p;
  p.router.set_validator([](const NodeId&, TopicId, ByteSpan data) {
    return !data.empty() && data[0] == 0xff ? Validation::reject : Validation::accept;
  });
  p.add_subscribed_peers(1, 8, kTopic);
  p.router.subscribe(kTopic, p.now);
  p.drain();
  const auto mesh = p.router.mesh(kTopic);
  const NodeId bad = mesh.front();
  p.sent.clear();

  p.message_from(bad, kTopic, Bytes{0xff, 1});
  EXPECT_TRUE(p.delivered.empty());
  EXPECT_TRUE(p.sent.empty()) << "an invalid message was forwarded";
  EXPECT_LT(p.router.score(bad), 0);
  EXPECT_EQ(p.router.stats().rejected, 1u);

  // Negative score: pruned at the next heartbeat and not taken back.
  p.tick();
  const auto after = p.router.mesh(kTopic);
  EXPECT_EQ(std::count(after.begin(), after.end(), bad), 0);
  EXPECT_FALSE(p.merged(bad).prune.empty());
  GossipRpc g;
  g.graft.push_back(kTopic);
  p.router.handle_rpc(bad, g, p.now);
  p.drain();
  const auto again = p.router.mesh(kTopic);
  EXPECT_EQ(std::count(again.begin(), again.end(), bad), 0);

  // Two more invalid messages cross the graylist threshold: disconnect.
  p.message_from(bad, kTopic, Bytes{0xff, 2});
  EXPECT_TRUE(p.disconnects.empty());
  p.message_from(bad, kTopic, Bytes{0xff, 3});
  ASSERT_EQ(p.disconnects.size(), 1u);
  EXPECT_EQ(p.disconnects[0].peer, bad);
  EXPECT_LT(p.disconnects[0].score, -80);
  // Graylisted: further RPCs are ignored, even valid messages.
  p.message_from(bad, kTopic, Bytes{1});
  EXPECT_TRUE(p.delivered.empty());
  EXPECT_EQ(p.router.stats().graylisted_rpcs, 1u);
}

TEST(GossipRouter, AnotherCopyOfARejectedMessageAlsoCostsItsSender) {
  RouterProbe p;
  p.router.set_validator([](const NodeId&, TopicId, ByteSpan) { return Validation::reject; });
  p.add_subscribed_peers(1, 2, kTopic);
  p.router.subscribe(kTopic, p.now);
  p.message_from(test::node_id(1), kTopic, Bytes{5});
  p.message_from(test::node_id(2), kTopic, Bytes{5});
  EXPECT_LT(p.router.score(test::node_id(1)), 0);
  EXPECT_LT(p.router.score(test::node_id(2)), 0);
}

TEST(GossipRouter, IgnoredMessageCostsNothing) {
  RouterProbe p;
  p.router.set_validator([](const NodeId&, TopicId, ByteSpan) { return Validation::ignore; });
  p.add_subscribed_peers(1, 4, kTopic);
  p.router.subscribe(kTopic, p.now);
  p.drain();
  p.sent.clear();
  p.message_from(test::node_id(1), kTopic, Bytes{5});
  EXPECT_TRUE(p.delivered.empty());
  EXPECT_TRUE(p.sent.empty());
  EXPECT_GE(p.router.score(test::node_id(1)), 0);
}

TEST(GossipRouter, DecodingValidatorHandsItsResultToTheDeliveryOnce) {
  RouterProbe p;
  int decodes = 0;
  p.router.set_validator(
      [&](const NodeId&, TopicId, ByteSpan data, std::shared_ptr<const void>& decoded) {
        ++decodes;
        if (data.empty() || data[0] == 0xff) return Validation::reject;
        decoded = std::make_shared<const uint64_t>(data.size() * 100 + data[0]);
        return Validation::accept;
      });
  p.add_subscribed_peers(1, 3, kTopic);
  p.router.subscribe(kTopic, p.now);
  p.drain();
  p.message_from(test::node_id(1), kTopic, Bytes{7, 8, 9});
  ASSERT_EQ(p.delivered.size(), 1u);
  ASSERT_NE(p.delivered[0].decoded, nullptr);
  EXPECT_EQ(*std::static_pointer_cast<const uint64_t>(p.delivered[0].decoded), 307u);
  // A duplicate is neither validated (decoded) nor delivered again.
  p.message_from(test::node_id(2), kTopic, Bytes{7, 8, 9});
  EXPECT_EQ(p.delivered.size(), 1u);
  EXPECT_EQ(decodes, 1);
  // A plain validator delivers nothing decoded.
  p.router.set_validator([](const NodeId&, TopicId, ByteSpan) { return Validation::accept; });
  p.message_from(test::node_id(1), kTopic, Bytes{1});
  ASSERT_EQ(p.delivered.size(), 2u);
  EXPECT_EQ(p.delivered[1].decoded, nullptr);
}

TEST(GossipRouter, MalformedFramesCostScore) {
  RouterProbe p;
  p.router.add_peer(test::node_id(1), true, p.now);
  const Bytes junk = {0x01, 0xff, 0xff};
  p.router.handle_frame(test::node_id(1), junk, p.now);
  p.drain();
  EXPECT_LT(p.router.score(test::node_id(1)), 0);
  EXPECT_EQ(p.router.stats().malformed_rpcs, 1u);
}

TEST(GossipRouter, GraftDuringBackoffIsPrunedAgainAndPenalised) {
  RouterProbe p;
  p.add_subscribed_peers(1, 1, kTopic);
  p.router.subscribe(kTopic, p.now);
  p.drain();
  ASSERT_EQ(p.router.mesh(kTopic).size(), 1u);
  GossipRpc prune;
  prune.prune.push_back({kTopic, 30});
  p.router.handle_rpc(test::node_id(1), prune, p.now);
  EXPECT_TRUE(p.router.mesh(kTopic).empty());
  p.sent.clear();
  // The peer's backoff toward us runs 30 s; a heartbeat must not regraft it.
  for (int i = 0; i < 29; ++i) p.tick();
  EXPECT_TRUE(p.merged(test::node_id(1)).graft.empty());
  EXPECT_TRUE(p.router.mesh(kTopic).empty());
  // After the backoff plus slack the mesh (below D_low) takes it back.
  for (int i = 0; i < 4; ++i) p.tick();
  EXPECT_EQ(p.merged(test::node_id(1)).graft, (std::vector<TopicId>{kTopic}));
}

TEST(GossipRouter, EarlyGraftAfterOurPruneIsRefusedAndPenalised) {
  GossipSettings s;
  s.score.behaviour_penalty_threshold = 0;
  RouterProbe p(s);
  p.router.subscribe(kTopic, p.now);
  p.add_subscribed_peers(1, 13, kTopic, /*outbound=*/true);
  for (uint32_t i = 1; i <= 13; ++i) {
    GossipRpc g;
    g.graft.push_back(kTopic);
    p.router.handle_rpc(test::node_id(i), g, p.now);
  }
  p.drain();
  ASSERT_EQ(p.router.mesh(kTopic).size(), 13u);
  p.sent.clear();
  p.tick();  // oversubscribed: prunes 7
  NodeId pruned{};
  for (uint32_t i = 1; i <= 13; ++i) {
    if (!p.merged(test::node_id(i)).prune.empty()) pruned = test::node_id(i);
  }
  ASSERT_NE(pruned, NodeId{});
  p.sent.clear();
  GossipRpc g;
  g.graft.push_back(kTopic);
  p.router.handle_rpc(pruned, g, p.now);
  p.drain();
  EXPECT_EQ(p.merged(pruned).prune.size(), 1u);
  EXPECT_LT(p.router.score(pruned), 0);
}

TEST(GossipRouter, IhaveLeadsToIwantAndTheAnswerIsDelivered) {
  RouterProbe p;
  p.add_subscribed_peers(1, 1, kTopic);
  p.router.subscribe(kTopic, p.now);
  p.drain();
  const Bytes data = {4, 5, 6};
  const MessageId id = gossip_message_id(kTopic, data);
  p.sent.clear();
  GossipRpc ihave;
  ihave.ihave.push_back({kTopic, {id}});
  p.router.handle_rpc(test::node_id(1), ihave, p.now);
  p.drain();
  EXPECT_EQ(p.merged(test::node_id(1)).iwant, (std::vector<MessageId>{id}));
  p.message_from(test::node_id(1), kTopic, data);
  ASSERT_EQ(p.delivered.size(), 1u);
  EXPECT_EQ(p.delivered[0].id, id);
  // The promise was kept: after the follow-up time there is no penalty.
  for (int i = 0; i < 5; ++i) p.tick();
  EXPECT_EQ(p.router.stats().broken_promises, 0u);
}

TEST(GossipRouter, BrokenIwantPromisesArePenalised) {
  RouterProbe p;
  p.add_subscribed_peers(1, 1, kTopic);
  p.router.subscribe(kTopic, p.now);
  GossipRpc ihave;
  for (uint8_t i = 0; i < 5; ++i) {
    MessageId id;
    id.bytes.fill(i);
    ihave.ihave.push_back({kTopic, {id}});
  }
  p.router.handle_rpc(test::node_id(1), ihave, p.now);
  p.drain();
  for (int i = 0; i < 4; ++i) p.tick();
  EXPECT_EQ(p.router.stats().broken_promises, 5u);
  EXPECT_LT(p.router.score(test::node_id(1)), 0);
}

TEST(GossipRouter, IhavePerHeartbeatIsBounded) {
  GossipSettings s;
  s.max_ihave_length = 100;
  RouterProbe p(s);
  p.add_subscribed_peers(1, 1, kTopic);
  p.router.subscribe(kTopic, p.now);
  p.drain();
  p.sent.clear();
  GossipRpc ihave;
  GossipIhave entry{kTopic, {}};
  for (uint32_t i = 0; i < 1000; ++i) {
    MessageId id;
    put_be<uint32_t>(id.bytes.data(), i);
    entry.ids.push_back(id);
  }
  ihave.ihave.push_back(entry);
  p.router.handle_rpc(test::node_id(1), ihave, p.now);
  p.router.handle_rpc(test::node_id(1), ihave, p.now);
  p.drain();
  EXPECT_EQ(p.merged(test::node_id(1)).iwant.size(), 100u);
}

TEST(GossipRouter, IwantIsAnsweredFromTheCacheAtMostRetransmissionTimes) {
  RouterProbe p;
  p.add_subscribed_peers(1, 2, kTopic);
  p.router.subscribe(kTopic, p.now);
  auto id = p.router.publish(kTopic, Bytes{1, 1}, p.now);
  ASSERT_TRUE(id);
  p.drain();
  p.sent.clear();
  GossipRpc want;
  want.iwant.push_back(*id);
  for (int i = 0; i < 5; ++i) p.router.handle_rpc(test::node_id(1), want, p.now);
  p.drain();
  EXPECT_EQ(p.merged(test::node_id(1)).messages.size(), 3u);
  // The message answers IWANT for history_length heartbeats, then leaves
  // the cache.
  for (int i = 0; i < 4; ++i) p.tick();
  p.sent.clear();
  p.router.handle_rpc(test::node_id(2), want, p.now);
  p.drain();
  EXPECT_EQ(p.merged(test::node_id(2)).messages.size(), 1u);
  p.tick();
  p.sent.clear();
  p.router.handle_rpc(test::node_id(2), want, p.now);
  p.drain();
  EXPECT_TRUE(p.merged(test::node_id(2)).messages.empty());
}

TEST(GossipRouter, HeartbeatAdvertisesRecentMessagesToNonMeshPeers) {
  RouterProbe p;
  p.add_subscribed_peers(1, 20, kTopic);
  p.router.subscribe(kTopic, p.now);
  p.drain();
  const auto mesh = p.router.mesh(kTopic);
  auto id = p.router.publish(kTopic, Bytes{3}, p.now);
  ASSERT_TRUE(id);
  p.drain();
  p.sent.clear();
  p.tick();
  size_t advertised = 0;
  for (uint32_t i = 1; i <= 20; ++i) {
    const auto rpc = p.merged(test::node_id(i));
    const bool in_mesh = std::find(mesh.begin(), mesh.end(), test::node_id(i)) != mesh.end();
    if (!rpc.ihave.empty()) {
      EXPECT_FALSE(in_mesh);
      EXPECT_EQ(rpc.ihave[0].ids, (std::vector<MessageId>{*id}));
      ++advertised;
    }
  }
  EXPECT_EQ(advertised, 6u);  // D_lazy (gossip_factor x 14 candidates < 6)
}

TEST(GossipRouter, PublishingToAnUnsubscribedTopicUsesFanout) {
  GossipSettings s;
  s.flood_publish = false;
  RouterProbe p(s);
  p.add_subscribed_peers(1, 10, TopicId(2));
  p.sent.clear();
  ASSERT_TRUE(p.router.publish(TopicId(2), Bytes{1}, p.now));
  p.drain();
  size_t got = 0;
  for (uint32_t i = 1; i <= 10; ++i) got += p.merged(test::node_id(i)).messages.size();
  EXPECT_EQ(got, 6u);
  EXPECT_TRUE(p.router.mesh(TopicId(2)).empty());
  // Subscribing later turns the fanout peers into the mesh.
  p.router.subscribe(TopicId(2), p.now);
  EXPECT_EQ(p.router.mesh(TopicId(2)).size(), 6u);
}

TEST(GossipRouter, FloodPublishReachesEverySubscribedPeer) {
  RouterProbe p;
  p.add_subscribed_peers(1, 15, kTopic);
  p.add_subscribed_peers(16, 5, TopicId(99));
  p.router.subscribe(kTopic, p.now);
  p.drain();
  p.sent.clear();
  ASSERT_TRUE(p.router.publish(kTopic, Bytes{8}, p.now));
  p.drain();
  for (uint32_t i = 1; i <= 15; ++i) EXPECT_EQ(p.merged(test::node_id(i)).messages.size(), 1u);
  for (uint32_t i = 16; i <= 20; ++i) EXPECT_TRUE(p.merged(test::node_id(i)).messages.empty());
  EXPECT_TRUE(p.delivered.empty()) << "own messages are not delivered back";
}

TEST(GossipRouter, PublishRefusesOversizeAndRepeats) {
  GossipSettings s;
  s.max_message_bytes = 100;
  RouterProbe p(s);
  auto r = p.router.publish(kTopic, Bytes(101), p.now);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  ASSERT_TRUE(p.router.publish(kTopic, Bytes(100), p.now));
  r = p.router.publish(kTopic, Bytes(100), p.now);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::conflict);
}

TEST(GossipRouter, OversizeMessageFromAPeerCostsScore) {
  GossipSettings s;
  s.max_message_bytes = 100;
  RouterProbe p(s);
  p.add_subscribed_peers(1, 1, kTopic);
  p.router.subscribe(kTopic, p.now);
  p.message_from(test::node_id(1), kTopic, Bytes(101));
  EXPECT_TRUE(p.delivered.empty());
  EXPECT_LT(p.router.score(test::node_id(1)), 0);
}

TEST(GossipRouter, RemovedPeerLeavesTheMeshAndItsBadScoreIsRemembered) {
  RouterProbe p;
  p.router.set_validator([](const NodeId&, TopicId, ByteSpan) { return Validation::reject; });
  p.add_subscribed_peers(1, 3, kTopic);
  p.router.subscribe(kTopic, p.now);
  p.message_from(test::node_id(1), kTopic, Bytes{1});
  const double bad = p.router.score(test::node_id(1));
  ASSERT_LT(bad, 0);
  p.router.remove_peer(test::node_id(1), p.now);
  EXPECT_EQ(p.router.mesh(kTopic).size(), 2u);
  EXPECT_TRUE(p.router.topic_peers(kTopic).size() == 2u);
  p.router.add_peer(test::node_id(1), true, p.now);
  EXPECT_LT(p.router.score(test::node_id(1)), 0);
}

TEST(GossipRouter, SameSeedSameInputsSameOutputs) {
  auto run = [] {
    RouterProbe p;
    p.add_subscribed_peers(1, 30, kTopic);
    p.router.subscribe(kTopic, p.now);
    p.drain();
    for (int i = 0; i < 3; ++i) p.tick();
    return p.router.mesh(kTopic);
  };
  EXPECT_EQ(run(), run());
}

TEST(GossipRouter, SettingsAreValidated) {
  EXPECT_TRUE(validate(GossipSettings{}));
  GossipSettings s;
  s.mesh_degree_low = 7;
  EXPECT_FALSE(validate(s));
  s = {};
  s.score.publish_threshold = -5;  // above gossip_threshold
  EXPECT_FALSE(validate(s));
  s = {};
  s.max_message_bytes = kMaxGossipDataBytes + 1;
  EXPECT_FALSE(validate(s));
}

}  // namespace
}  // namespace cairn::p2p
