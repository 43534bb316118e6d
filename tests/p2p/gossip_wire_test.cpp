#include "cairn/p2p/gossip_wire.hpp"

#include <gtest/gtest.h>

#include "support/test_util.hpp"

namespace cairn::p2p {
namespace {

MessageId id_of(uint8_t b) {
  MessageId id;
  id.bytes.fill(b);
  return id;
}

GossipRpc sample_rpc() {
  GossipRpc rpc;
  rpc.subscriptions = {{true, ShardId(3)}, {false, ShardId(9)}};
  rpc.messages = {{ShardId(3), std::make_shared<const Bytes>(Bytes{1, 2, 3})},
                  {ShardId(4), std::make_shared<const Bytes>(Bytes{})}};
  rpc.ihave = {{ShardId(3), {id_of(1), id_of(2)}}};
  rpc.iwant = {id_of(7)};
  rpc.graft = {ShardId(3), ShardId(5)};
  rpc.prune = {{ShardId(6), 60}};
  return rpc;
}

TEST(GossipWire, RoundTripsEverySection) {
  const GossipRpc rpc = sample_rpc();
  auto bytes = encode_gossip_rpc(rpc);
  ASSERT_TRUE(bytes) << bytes.error().to_string();
  EXPECT_EQ(bytes->size(), encoded_size(rpc));
  auto back = decode_gossip_rpc(*bytes);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, rpc);
}

TEST(GossipWire, EmptyRpcIsThirteenBytes) {
  auto bytes = encode_gossip_rpc(GossipRpc{});
  ASSERT_TRUE(bytes);
  EXPECT_EQ(bytes->size(), 13u);
  EXPECT_EQ((*bytes)[0], kGossipWireVersion);
}

TEST(GossipWire, EveryTruncationIsRefused) {
  auto bytes = encode_gossip_rpc(sample_rpc());
  ASSERT_TRUE(bytes);
  for (size_t n = 0; n < bytes->size(); ++n) {
    auto r = decode_gossip_rpc(ByteSpan(*bytes).first(n));
    EXPECT_FALSE(r) << "prefix of " << n << " bytes decoded";
  }
}

TEST(GossipWire, TrailingBytesAndUnknownVersionAreRefused) {
  auto bytes = encode_gossip_rpc(sample_rpc());
  ASSERT_TRUE(bytes);
  Bytes longer = *bytes;
  longer.push_back(0);
  auto r = decode_gossip_rpc(longer);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_argument);

  Bytes v2 = *bytes;
  v2[0] = 2;
  r = decode_gossip_rpc(v2);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::unsupported);
}

TEST(GossipWire, CountsBeyondTheInputOrTheLimitAreRefusedBeforeAllocating) {
  // Version, then a subscription count of 0xffff with nothing behind it.
  Bytes huge = {kGossipWireVersion, 0xff, 0xff};
  EXPECT_FALSE(decode_gossip_rpc(huge));
  // A message declaring a 4 GiB payload.
  Bytes msg = {kGossipWireVersion, 0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff};
  auto r = decode_gossip_rpc(msg);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("wire limit"), std::string::npos) << r.error().message;
  // A bad subscription flag.
  Bytes flag = {kGossipWireVersion, 0, 1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_FALSE(decode_gossip_rpc(flag));
}

TEST(GossipWire, EncoderRefusesSectionsOverTheWireLimits) {
  GossipRpc rpc;
  rpc.iwant.resize(kMaxGossipIdsPerControl + 1);
  EXPECT_FALSE(encode_gossip_rpc(rpc));
  GossipRpc big;
  big.messages.push_back({ShardId(1), std::make_shared<const Bytes>(kMaxGossipDataBytes + 1)});
  EXPECT_FALSE(encode_gossip_rpc(big));
}

TEST(GossipWire, SplitKeepsEveryPartUnderTheBudgetAndLosesNothing) {
  auto rng = cairn::test::seeded_rng(11);
  GossipRpc rpc;
  for (uint32_t t = 0; t < 40; ++t) rpc.subscriptions.push_back({true, ShardId(t)});
  for (int i = 0; i < 50; ++i) {
    rpc.messages.push_back({ShardId(1), std::make_shared<const Bytes>(
                                            cairn::test::random_bytes(rng, 100 + rng() % 900))});
  }
  GossipIhave ih{ShardId(2), {}};
  for (int i = 0; i < 3000; ++i) ih.ids.push_back(id_of(static_cast<uint8_t>(i)));
  rpc.ihave.push_back(ih);
  for (int i = 0; i < 2500; ++i) rpc.iwant.push_back(id_of(static_cast<uint8_t>(i)));
  rpc.graft = {ShardId(1)};
  rpc.prune = {{ShardId(2), 10}};

  const size_t budget = 8 * 1024;
  auto parts = split_gossip_rpc(rpc, budget);
  ASSERT_GT(parts.size(), 1u);
  GossipRpc joined;
  for (const auto& p : parts) {
    EXPECT_LE(encoded_size(p), budget);
    auto enc = encode_gossip_rpc(p);
    ASSERT_TRUE(enc) << enc.error().to_string();
    auto dec = decode_gossip_rpc(*enc);
    ASSERT_TRUE(dec);
    for (const auto& x : dec->subscriptions) joined.subscriptions.push_back(x);
    for (const auto& x : dec->messages) joined.messages.push_back(x);
    for (const auto& x : dec->ihave) {
      for (const auto& id : x.ids) {
        if (joined.ihave.empty()) joined.ihave.push_back({x.topic, {}});
        joined.ihave.front().ids.push_back(id);
      }
    }
    for (const auto& x : dec->iwant) joined.iwant.push_back(x);
    for (const auto& x : dec->graft) joined.graft.push_back(x);
    for (const auto& x : dec->prune) joined.prune.push_back(x);
  }
  EXPECT_EQ(joined, rpc);
}

TEST(GossipWire, MessageIdDependsOnTopicAndData) {
  const Bytes data = {1, 2, 3};
  EXPECT_EQ(gossip_message_id(ShardId(1), data), gossip_message_id(ShardId(1), data));
  EXPECT_NE(gossip_message_id(ShardId(1), data), gossip_message_id(ShardId(2), data));
  EXPECT_NE(gossip_message_id(ShardId(1), data), gossip_message_id(ShardId(1), Bytes{1, 2}));
}

}  // namespace
}  // namespace cairn::p2p
