// Discovery against scripted peers, and the peer exchange wire format.

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "cairn/p2p/discovery.hpp"
#include "gossip_test_util.hpp"
#include "support/test_util.hpp"

namespace cairn::p2p {
namespace {

using namespace std::chrono_literals;

std::string addr(uint32_t n) { return "10.0.0." + std::to_string(n) + ":4100"; }
PeerRecord rec(uint32_t n, std::vector<ShardId> shards) {
  return {test::node_id(n), addr(n), std::move(shards)};
}

TEST(PeerExchangeWire, RoundTrips) {
  PeerExchange px;
  px.request = true;
  px.address = "127.0.0.1:9000";
  px.shards = {ShardId(1), ShardId(4)};
  px.records = {rec(1, {ShardId(1)}), rec(2, {}), rec(3, {ShardId(0), ShardId(9)})};
  auto bytes = encode_peer_exchange(px);
  ASSERT_TRUE(bytes) << bytes.error().to_string();
  auto back = decode_peer_exchange(*bytes);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, px);
  for (size_t n = 0; n < bytes->size(); ++n) {
    EXPECT_FALSE(decode_peer_exchange(ByteSpan(*bytes).first(n))) << n;
  }
}

TEST(PeerExchangeWire, RefusesMalformedFields) {
  PeerExchange px;
  px.shards = {ShardId(2), ShardId(1)};  // unsorted
  EXPECT_FALSE(encode_peer_exchange(px));
  px.shards = {};
  px.records = {PeerRecord{test::node_id(1), "", {}}};  // record without an address
  EXPECT_FALSE(encode_peer_exchange(px));
  px.records.assign(kMaxPxRecords + 1, rec(1, {}));
  EXPECT_FALSE(encode_peer_exchange(px));

  // Hand-made frames: unknown flag, repeated shard, trailing byte, version 9.
  EXPECT_FALSE(decode_peer_exchange(Bytes{1, 0x02, 0, 0, 0, 0, 0}));
  EXPECT_FALSE(decode_peer_exchange(Bytes{1, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0}));
  EXPECT_TRUE(decode_peer_exchange(Bytes{1, 0, 0, 0, 0, 0, 0}));
  EXPECT_FALSE(decode_peer_exchange(Bytes{1, 0, 0, 0, 0, 0, 0, 0}));
  auto v = decode_peer_exchange(Bytes{9, 0, 0, 0, 0, 0, 0});
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, Errc::unsupported);
  // A record count that the remaining bytes cannot hold.
  EXPECT_FALSE(decode_peer_exchange(Bytes{1, 0, 0, 0, 0, 0, 64}));
}

struct DiscoveryProbe {
  explicit DiscoveryProbe(std::vector<ShardId> served, DiscoverySettings s = {},
                          EndpointSource* chain = nullptr)
      : d(test::node_id(0), addr(0), std::move(served), std::move(s), cairn::test::test_seed(),
          chain) {}
  Discovery d;
  TimePoint now{};
  std::vector<DiscoveryDial> dials;
  std::vector<DiscoverySend> sends;
  std::vector<DiscoveryDisconnect> drops;

  void drain() {
    for (auto& o : d.take_outputs()) {
      if (auto* x = std::get_if<DiscoveryDial>(&o)) dials.push_back(*x);
      if (auto* x = std::get_if<DiscoverySend>(&o)) sends.push_back(*x);
      if (auto* x = std::get_if<DiscoveryDisconnect>(&o)) drops.push_back(*x);
    }
  }
  void tick(std::chrono::milliseconds dt = 1s) {
    now += dt;
    d.tick(now);
    drain();
  }
  void connect(uint32_t n, std::vector<ShardId> shards, bool outbound = true) {
    d.peer_connected(test::node_id(n), addr(n), outbound, now);
    PeerExchange px;
    px.address = addr(n);
    px.shards = std::move(shards);
    d.handle_exchange(test::node_id(n), px, now);
    drain();
  }
  std::set<std::string> dialled() const {
    std::set<std::string> out;
    for (const auto& x : dials) out.insert(x.address);
    return out;
  }
};

TEST(Discovery, SaysHelloWithItsAddressAndShardsOnConnect) {
  DiscoveryProbe p({ShardId(3), ShardId(1)});
  p.d.peer_connected(test::node_id(1), addr(1), true, p.now);
  p.drain();
  ASSERT_EQ(p.sends.size(), 1u);
  EXPECT_EQ(p.sends[0].peer, test::node_id(1));
  EXPECT_TRUE(p.sends[0].px.request);
  EXPECT_EQ(p.sends[0].px.address, addr(0));
  EXPECT_EQ(p.sends[0].px.shards, (std::vector<ShardId>{ShardId(1), ShardId(3)}));
}

TEST(Discovery, AnswersARequestWithPeersOfTheRequestersShardsAtABoundedRate) {
  DiscoverySettings s;
  s.px_records = 5;
  DiscoveryProbe p({ShardId(0)}, s);
  PeerExchange learn;
  for (uint32_t i = 10; i < 30; ++i)
    learn.records.push_back(rec(i, {ShardId(i % 2 == 0 ? 2u : 3u)}));
  p.connect(1, {ShardId(0)});
  p.d.handle_exchange(test::node_id(1), learn, p.now);
  p.d.peer_connected(test::node_id(2), addr(2), false, p.now);
  p.drain();
  p.sends.clear();

  PeerExchange ask;
  ask.request = true;
  ask.address = addr(2);
  ask.shards = {ShardId(2)};
  p.d.handle_exchange(test::node_id(2), ask, p.now);
  p.drain();
  ASSERT_EQ(p.sends.size(), 1u);
  EXPECT_FALSE(p.sends[0].px.request);
  ASSERT_EQ(p.sends[0].px.records.size(), 5u);
  for (const auto& r : p.sends[0].px.records) {
    EXPECT_EQ(r.shards, (std::vector<ShardId>{ShardId(2)}));
    EXPECT_NE(r.id, test::node_id(2));
  }
  // Asked again at once: not answered; after the interval: answered.
  p.sends.clear();
  p.d.handle_exchange(test::node_id(2), ask, p.now);
  p.drain();
  EXPECT_TRUE(p.sends.empty());
  p.now += s.px_answer_interval;
  p.d.handle_exchange(test::node_id(2), ask, p.now);
  p.drain();
  EXPECT_EQ(p.sends.size(), 1u);
}

TEST(Discovery, DialsLearnedPeersOfItsShardsUpToTheTarget) {
  DiscoverySettings s;
  s.target_peers_per_shard = 3;
  s.max_dials_in_flight = 10;
  DiscoveryProbe p({ShardId(1)}, s);
  p.connect(1, {ShardId(5)});
  PeerExchange px;
  for (uint32_t i = 10; i < 20; ++i) px.records.push_back(rec(i, {ShardId(1)}));
  for (uint32_t i = 20; i < 30; ++i) px.records.push_back(rec(i, {ShardId(2)}));
  p.d.handle_exchange(test::node_id(1), px, p.now);
  p.tick();
  ASSERT_EQ(p.dials.size(), 3u);
  for (const auto& dial : p.dials) {
    ASSERT_TRUE(dial.expected);
    EXPECT_EQ(dial.address, addr(test::node_number(*dial.expected)));
    auto r = p.d.record(*dial.expected);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->shards, (std::vector<ShardId>{ShardId(1)}));
  }
  // In flight counts toward the target: no more dials until results come.
  p.tick();
  EXPECT_EQ(p.dials.size(), 3u);
  for (const auto& dial : p.dials) {
    p.d.dial_result(dial.address, *dial.expected, p.now);
    p.connect(test::node_number(*dial.expected), {ShardId(1)});
  }
  EXPECT_EQ(p.d.connected_in_shard(ShardId(1)), 3u);
  p.tick();
  EXPECT_EQ(p.dials.size(), 3u);
}

TEST(Discovery, FailedDialsBackOffAndHearsayIsForgotten) {
  DiscoverySettings s;
  s.target_peers_per_shard = 1;
  s.min_peers_per_shard = 1;
  s.px_max_failures = 3;
  DiscoveryProbe p({ShardId(1)}, s);
  p.connect(1, {ShardId(7)});
  PeerExchange px;
  px.records = {rec(10, {ShardId(1)})};
  p.d.handle_exchange(test::node_id(1), px, p.now);
  const Result<NodeId> refused = make_error(Errc::io_error, "refused");
  std::vector<TimePoint> dial_times;
  for (int i = 0; i < 20 && p.d.known_peers() > 1; ++i) {
    const size_t before = p.dials.size();
    p.tick();
    if (p.dials.size() > before) {
      dial_times.push_back(p.now);
      p.d.dial_result(addr(10), refused, p.now);
    }
  }
  ASSERT_EQ(dial_times.size(), 3u);
  EXPECT_EQ(dial_times[1] - dial_times[0], 1s);  // backoff base
  EXPECT_EQ(dial_times[2] - dial_times[1], 2s);  // doubled
  EXPECT_FALSE(p.d.record(test::node_id(10))) << "a PX record is dropped after px_max_failures";
}

TEST(Discovery, ChainRecordsArePreferredAndKeptAfterFailures) {
  StaticEndpointSource chain;
  chain.put(rec(40, {ShardId(2)}));
  chain.put(rec(41, {ShardId(2), ShardId(3)}));
  chain.put(rec(42, {ShardId(9)}));
  DiscoverySettings s;
  s.target_peers_per_shard = 2;
  s.min_peers_per_shard = 1;
  s.px_max_failures = 1;
  DiscoveryProbe p({ShardId(2)}, s, &chain);
  p.connect(1, {ShardId(7)});
  PeerExchange px;
  for (uint32_t i = 10; i < 20; ++i) px.records.push_back(rec(i, {ShardId(2)}));
  p.d.handle_exchange(test::node_id(1), px, p.now);
  p.tick();
  EXPECT_EQ(p.dialled(), (std::set<std::string>{addr(40), addr(41)}));
  EXPECT_EQ(p.d.stats().chain_queries, 1u);
  for (const auto& dial : p.dials)
    p.d.dial_result(dial.address, make_error(Errc::io_error, "x"), p.now);
  EXPECT_TRUE(p.d.record(test::node_id(40)));
  EXPECT_TRUE(p.d.record(test::node_id(41)));
  // Refreshed every chain_refresh, not every tick.
  for (int i = 0; i < 29; ++i) p.tick();
  EXPECT_EQ(p.d.stats().chain_queries, 1u);
  p.tick();
  EXPECT_EQ(p.d.stats().chain_queries, 2u);
}

TEST(Discovery, BootstrapsWhenAloneAndRetriesOnlyAfterTheInterval) {
  DiscoverySettings s;
  s.bootstrap = {"10.9.9.1:4100", "10.9.9.2:4100"};
  DiscoveryProbe p({ShardId(1)}, s);
  p.tick();
  EXPECT_EQ(p.dialled(), (std::set<std::string>{"10.9.9.1:4100", "10.9.9.2:4100"}));
  for (const auto& x : p.dials) EXPECT_FALSE(x.expected);
  for (const auto& x : p.dials)
    p.d.dial_result(x.address, make_error(Errc::io_error, "refused"), p.now);
  p.dials.clear();
  p.tick(1s);
  EXPECT_TRUE(p.dials.empty());
  p.tick(4s);
  EXPECT_EQ(p.dials.size(), 2u);
}

TEST(Discovery, AsksConnectedPeersForMoreWhenAShardIsShort) {
  DiscoverySettings s;
  s.px_ask_peers = 2;
  DiscoveryProbe p({ShardId(1)}, s);
  for (uint32_t i = 1; i <= 4; ++i) p.connect(i, {ShardId(1)});
  p.sends.clear();
  p.tick();
  size_t requests = 0;
  for (const auto& x : p.sends) requests += x.px.request ? 1 : 0;
  EXPECT_EQ(requests, 2u);
  p.sends.clear();
  p.tick();
  EXPECT_TRUE(p.sends.empty()) << "asked again before px_ask_interval";
}

TEST(Discovery, DropsDialledPeersThatServeNoneOfOurShardsAfterTheGrace) {
  DiscoveryProbe p({ShardId(1)});
  p.connect(1, {ShardId(5)}, /*outbound=*/true);
  p.connect(2, {ShardId(5)}, /*outbound=*/false);
  p.connect(3, {ShardId(1), ShardId(5)}, /*outbound=*/true);
  p.tick(4s);
  EXPECT_TRUE(p.drops.empty());
  p.tick(1s);
  ASSERT_EQ(p.drops.size(), 1u);
  EXPECT_EQ(p.drops[0].peer, test::node_id(1));
  p.tick(1s);
  EXPECT_EQ(p.drops.size(), 1u) << "a drop is asked for once";
}

TEST(Discovery, AddressBookIsBounded) {
  DiscoverySettings s;
  s.max_known_peers = 40;
  DiscoveryProbe p({ShardId(1)}, s);
  p.connect(1, {ShardId(1)});
  for (uint32_t batch = 0; batch < 5; ++batch) {
    PeerExchange px;
    for (uint32_t i = 0; i < 64; ++i) px.records.push_back(rec(100 + batch * 64 + i, {ShardId(2)}));
    p.d.handle_exchange(test::node_id(1), px, p.now);
  }
  EXPECT_LE(p.d.known_peers(), 40u);
  EXPECT_TRUE(p.d.record(test::node_id(1))) << "a connected peer's record is never evicted";
}

TEST(Discovery, IgnoresRecordsOfItself) {
  DiscoveryProbe p({ShardId(1)});
  p.connect(1, {ShardId(1)});
  PeerExchange px;
  px.records = {rec(0, {ShardId(1)}), PeerRecord{test::node_id(77), addr(0), {ShardId(1)}}};
  p.d.handle_exchange(test::node_id(1), px, p.now);
  EXPECT_FALSE(p.d.record(test::node_id(0)));
  EXPECT_FALSE(p.d.record(test::node_id(77)));
}

TEST(Discovery, SettingsAreValidated) {
  EXPECT_TRUE(validate(DiscoverySettings{}));
  DiscoverySettings s;
  s.min_peers_per_shard = 9;
  EXPECT_FALSE(validate(s));
  s = {};
  s.px_records = 65;
  EXPECT_FALSE(validate(s));
}

}  // namespace
}  // namespace cairn::p2p
