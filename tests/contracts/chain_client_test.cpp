// The chain client on a manual clock: the test owns the io_context the
// client runs on and the dev chain's blocks, so batching, registration and
// stop are checked at exact virtual times.

#include <gtest/gtest.h>

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>

#include <optional>
#include <set>
#include <vector>

#include "cairn/contracts/chain_client.hpp"
#include "cairn/contracts/devchain.hpp"
#include "cairn/p2p/clock.hpp"
#include "chain_test_util.hpp"

namespace cairn::contracts {
namespace {

using namespace std::chrono_literals;
using test::commitment_from;
using test::key_from;
using test::small_params;

class ChainClientTest : public ::testing::Test {
 protected:
  ChainClientTest() : rng(cairn::test::seeded_rng(44)), node_key(key_from(rng)) {}

  // The dev chain's mempool bound (a subclass makes it small).
  virtual size_t mempool_limit() const { return DevChainSettings{}.max_mempool_txs; }

  void SetUp() override {
    DevChainSettings cs;
    cs.db_path = (dir / "chain").string();
    cs.sync_writes = false;
    cs.max_mempool_txs = mempool_limit();
    auto c = DevChain::open(cs, key_from(rng), small_params(), time);
    EXPECT_TRUE(c) << c.error().to_string();
    chain = std::shared_ptr<DevChain>(std::move(*c));
    settings.register_batch = 4;
    settings.registry_refresh = 10s;
    client.emplace(chain, node_key, settings, io.get_executor(), clock);
    EXPECT_TRUE(client->start());
    clock.settle();
  }

  ~ChainClientTest() override { client.reset(); }

  BlockHeader block() {
    time->advance(1000);
    auto h = chain->produce_block();
    EXPECT_TRUE(h) << h.error().to_string();
    clock.settle();  // the client processes the head
    return *h;
  }

  // Asks the client to register a fresh blob; its answer lands in `results`.
  BlobId ask() {
    const BlobId id = commitment_from(rng);
    const size_t slot = results.size();
    results.emplace_back();
    client->register_blob(id, 1000,
                          [this, slot](Result<BlobRecord> r) { results[slot] = std::move(r); });
    return id;
  }

  cairn::test::TempDir dir;
  std::mt19937_64 rng;
  SigningKey node_key;
  std::shared_ptr<ManualTime> time = std::make_shared<ManualTime>(1'700'000'000'000);
  std::shared_ptr<DevChain> chain;
  asio::io_context io;
  p2p::ManualClock clock{io};
  ChainClientSettings settings;
  std::optional<ChainClient> client;
  std::vector<std::optional<Result<BlobRecord>>> results;
};

TEST_F(ChainClientTest, ABurstSharesOneBatchAfterTheBatchDelayAndAFullBatchGoesAtOnce) {
  std::vector<BlobId> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(ask());
  clock.settle();
  EXPECT_EQ(chain->mempool_size(), 0u) << "a partial batch waits for more";
  clock.advance(1ms);
  EXPECT_EQ(chain->mempool_size(), 0u);
  clock.advance(1ms);
  EXPECT_EQ(chain->mempool_size(), 3u) << "submitted together 2 ms after the first ask";
  EXPECT_EQ(clock.elapsed(), 2ms);

  // Four more fill a batch: submitted at this instant, no delay.
  for (int i = 0; i < 4; ++i) ids.push_back(ask());
  clock.settle();
  EXPECT_EQ(chain->mempool_size(), 7u);
  EXPECT_EQ(clock.elapsed(), 2ms);
  for (const auto& r : results) EXPECT_FALSE(r) << "nothing resolves before a block";

  // One block resolves all seven, in the order they were asked for.
  block();
  ASSERT_EQ(results.size(), 7u);
  for (size_t i = 0; i < results.size(); ++i) {
    ASSERT_TRUE(results[i]) << i;
    ASSERT_TRUE(*results[i]) << results[i]->error().to_string();
    EXPECT_EQ((*results[i])->index.value, i);
    EXPECT_EQ((*results[i])->commitment, ids[i]);
    EXPECT_EQ((*results[i])->size, 1000u);
  }
  // Known now: asking again answers at once from memory, with no transaction.
  bool answered = false;
  client->register_blob(ids[2], 1000,
                        [&](Result<BlobRecord> r) { answered = r && r->index.value == 2; });
  EXPECT_TRUE(answered);
  clock.advance(10ms);
  EXPECT_EQ(chain->mempool_size(), 0u);
}

TEST_F(ChainClientTest, OwnRegistrationIsSubmittedConfirmedAndOthersAppearAfterTheirBlock) {
  EXPECT_FALSE(client->registered());
  client->set_registration("127.0.0.1:7000", {ShardId{1}, ShardId{0}, ShardId{1}});
  clock.settle();
  EXPECT_EQ(chain->mempool_size(), 1u);
  block();
  EXPECT_TRUE(client->registered());
  auto self = client->node(node_key.public_key());
  ASSERT_TRUE(self);
  EXPECT_EQ(self->endpoint, "127.0.0.1:7000");
  EXPECT_EQ(self->shards, (std::vector<ShardId>{ShardId{0}, ShardId{1}}));

  // Another node registers: the client lists it right after that block,
  // without waiting for the periodic refresh (10 s of virtual time).
  const SigningKey other = key_from(rng);
  ASSERT_TRUE(chain->submit(
      make_register_node(other, chain->info().chain_id, 0, "127.0.0.1:7001", {ShardId{0}})));
  const auto before = clock.elapsed();
  block();
  EXPECT_EQ(clock.elapsed(), before);
  EXPECT_EQ(client->nodes(ShardId{0}).size(), 2u);
  EXPECT_EQ(client->serving_count(ShardId{0}, node_key.public_key(), true), 2u);
}

TEST_F(ChainClientTest, StopCancelsWaitingRegistrationsAndNothingRunsAfterIt) {
  ask();
  ask();
  clock.settle();
  client->stop();
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    ASSERT_TRUE(r);
    ASSERT_FALSE(*r);
    EXPECT_EQ(r->error().code, Errc::cancelled);
  }
  clock.advance(1s);
  EXPECT_EQ(chain->mempool_size(), 0u) << "the batch timer died with the client";
  bool told = false;
  client->register_blob(commitment_from(rng), 10, [&](Result<BlobRecord> r) {
    told = !r && r.error().code == Errc::cancelled;
  });
  EXPECT_TRUE(told);
}

class FullMempoolTest : public ChainClientTest {
 protected:
  size_t mempool_limit() const override { return 4; }
};

TEST_F(FullMempoolTest, WhatTheChainPutsBackWaitsForTheBatchTimerAndHeadsKeepFlowing) {
  // Twelve asks, batches of four, room for four: the first batch is
  // admitted, the second put back. The client must not retry it in a loop
  // (that would never return here) but wait for the batch timer.
  for (int i = 0; i < 12; ++i) ask();
  clock.settle();
  EXPECT_EQ(chain->mempool_size(), 4u);
  EXPECT_EQ(clock.elapsed(), Duration::zero());
  // Each block empties the mempool and resolves four; the next batch goes
  // 2 ms later.
  for (uint64_t round = 1; round <= 3; ++round) {
    block();
    size_t resolved = 0;
    for (const auto& r : results) resolved += r && *r ? 1u : 0u;
    EXPECT_EQ(resolved, 4 * round);
    clock.advance(2ms);
  }
  std::set<uint64_t> indexes;
  for (size_t i = 0; i < results.size(); ++i) {
    ASSERT_TRUE(results[i] && *results[i]) << i;
    indexes.insert((*results[i])->index.value);
  }
  EXPECT_EQ(indexes.size(), 12u);
  EXPECT_EQ(*indexes.rbegin(), 11u);
}

}  // namespace
}  // namespace cairn::contracts
