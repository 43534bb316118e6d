// The dev chain in-process, driven by a manual clock: blocks, receipts,
// mempool admission and bounds, persistence and replay after a restart,
// inclusion proofs against historical headers, head subscriptions.

#include <gtest/gtest.h>

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <atomic>
#include <thread>

#include "cairn/contracts/devchain.hpp"
#include "cairn/p2p/clock.hpp"
#include "cairn/p2p/io_thread.hpp"
#include "chain_test_util.hpp"

namespace cairn::contracts {
namespace {

using test::commitment_from;
using test::hash_from;
using test::key_from;
using test::kStart;
using test::small_params;

class DevChainTest : public ::testing::Test {
 protected:
  DevChainTest() : rng(cairn::test::seeded_rng(30)), sequencer(key_from(rng)), user(key_from(rng)) {
    settings.db_path = (dir / "chain").string();
    settings.sync_writes = false;
    settings.verify_threads = 2;
  }

  std::unique_ptr<DevChain> open(std::optional<erasure::NetworkParams> params = small_params()) {
    auto c = DevChain::open(settings, sequencer, params, time);
    EXPECT_TRUE(c) << c.error().to_string();
    return c ? std::move(*c) : nullptr;
  }

  BlockHeader block(DevChain& c) {
    time->advance(1000);
    auto h = c.produce_block();
    EXPECT_TRUE(h) << h.error().to_string();
    return *h;
  }

  Bytes put(DevChain& c, uint64_t nonce, const BlobId& id, uint32_t size = 100) {
    return make_put_blob(user, c.info().chain_id, nonce, id, size);
  }

  cairn::test::TempDir dir;
  std::mt19937_64 rng;
  SigningKey sequencer, user;
  DevChainSettings settings;
  std::shared_ptr<ManualTime> time = std::make_shared<ManualTime>(kStart);
};

TEST_F(DevChainTest, GenesisAndBlocksLinkAndCarryTheClock) {
  auto c = open();
  ASSERT_TRUE(c);
  const ChainInfo& info = c->info();
  EXPECT_EQ(info.sequencer, sequencer.public_key());
  EXPECT_EQ(info.chain_id, compute_chain_id(info.sequencer, info.params, kStart));
  auto genesis = c->head();
  ASSERT_TRUE(genesis);
  EXPECT_EQ(genesis->number.value, 0u);
  EXPECT_EQ(genesis->hash(), info.genesis_hash);
  EXPECT_EQ(genesis->parent_hash, Hash32{});

  std::vector<BlockHeader> headers{*genesis};
  for (int i = 0; i < 5; ++i) headers.push_back(block(*c));
  for (size_t i = 1; i < headers.size(); ++i) {
    EXPECT_EQ(headers[i].number.value, i);
    EXPECT_EQ(headers[i].parent_hash, headers[i - 1].hash());
    EXPECT_EQ(headers[i].timestamp_ms, kStart + 1000 * i);
  }
  EXPECT_TRUE(verify_header_chain(headers, sequencer.public_key(), info.chain_id));
  auto stored = c->headers(BlockNumber{0}, 100);
  ASSERT_TRUE(stored);
  EXPECT_EQ(*stored, headers);
  EXPECT_EQ(*c->randomness(BlockNumber{3}), block_randomness(headers[3].hash()));
  EXPECT_EQ(c->header(BlockNumber{6}).error().code, Errc::not_found);
  // A clock that goes back does not make timestamps go back.
  time->set(kStart);
  EXPECT_EQ(c->produce_block()->timestamp_ms, headers.back().timestamp_ms);
}

TEST_F(DevChainTest, TransactionsGetReceiptsAndEvents) {
  auto c = open();
  const BlobId a = commitment_from(rng), b = commitment_from(rng);
  auto ha = c->submit(put(*c, 1, a));
  auto hb = c->submit(put(*c, 2, b, 200));
  auto too_big = c->submit(put(*c, 3, commitment_from(rng), c->info().params.blob_size + 1));
  ASSERT_TRUE(ha && hb && too_big);
  EXPECT_FALSE(*c->receipt(*ha));  // pending
  EXPECT_EQ(c->mempool_size(), 3u);
  const BlockHeader h = block(*c);
  EXPECT_EQ(c->mempool_size(), 0u);
  EXPECT_EQ(h.tx_count, 3u);
  EXPECT_EQ(h.blob_count, 2u);
  auto ra = c->receipt(*ha);
  ASSERT_TRUE(ra && *ra);
  EXPECT_TRUE((*ra)->ok());
  EXPECT_EQ((*ra)->block, h.number);
  EXPECT_EQ((*ra)->blob_index->value, 0u);
  EXPECT_EQ((**c->receipt(*hb)).blob_index->value, 1u);
  auto rbig = **c->receipt(*too_big);
  EXPECT_EQ(rbig.status, TxStatus::blob_too_large);
  EXPECT_EQ(rbig.position, 2u);
  auto events = c->events(h.number);
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ(std::get<BlobRegistered>((*events)[1]).commitment, b);
  EXPECT_EQ((*c->blob_by_id(a))->index.value, 0u);
  EXPECT_EQ((*c->blob_by_index(BlobIndex{1}))->commitment, b);
  EXPECT_EQ(*c->blob_count(), 2u);
  EXPECT_EQ(*c->blob_count(ShardId{0}), 2u);
  auto txs = c->block_transactions(h.number);
  ASSERT_TRUE(txs);
  EXPECT_EQ(tx_hash((*txs)[0]), *ha);
}

TEST_F(DevChainTest, AdmissionRefusesBadSignaturesReplaysAndOverflow) {
  settings.max_mempool_txs = 3;
  auto c = open();
  Bytes good = put(*c, 1, commitment_from(rng));
  Bytes bad = good;
  bad[50] ^= 1;
  auto r = c->submit(bad);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::verification_failed);
  EXPECT_EQ(r.error().message.rfind("bad_signature", 0), 0u) << r.error().message;
  r = c->submit(Bytes(good.begin(), good.end() - 1));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  EXPECT_EQ(r.error().message.rfind("malformed", 0), 0u) << r.error().message;

  ASSERT_TRUE(c->submit(good));
  r = c->submit(good);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::conflict);
  EXPECT_EQ(r.error().message.rfind("duplicate_pending", 0), 0u);
  ASSERT_TRUE(c->submit(put(*c, 2, commitment_from(rng))));
  ASSERT_TRUE(c->submit(put(*c, 3, commitment_from(rng))));
  r = c->submit(put(*c, 4, commitment_from(rng)));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::busy);
  EXPECT_EQ(r.error().message.rfind("mempool_full", 0), 0u);
  EXPECT_EQ(*c->next_nonce(user.public_key()), 4u);

  block(*c);
  // Once included, the same bytes are a stale replay, not a new transaction.
  r = c->submit(good);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::conflict);
  EXPECT_EQ(r.error().message.rfind("stale_nonce", 0), 0u);
  EXPECT_TRUE(c->submit(put(*c, 4, commitment_from(rng))));
  EXPECT_EQ(*c->next_nonce(user.public_key()), 5u);
  EXPECT_EQ(*c->next_nonce(sequencer.public_key()), 0u);
}

TEST_F(DevChainTest, SubmitManyVerifiesInParallelAndKeepsOrder) {
  auto c = open();
  std::vector<Bytes> txs;
  for (uint64_t i = 1; i <= 300; ++i) txs.push_back(put(*c, i, commitment_from(rng)));
  txs[100][60] ^= 0x10;  // broken signature
  txs[200].pop_back();   // malformed
  auto results = c->submit_many(txs);
  ASSERT_EQ(results.size(), txs.size());
  for (size_t i = 0; i < txs.size(); ++i) {
    if (i == 100) {
      EXPECT_EQ(results[i].error().code, Errc::verification_failed);
    } else if (i == 200) {
      EXPECT_EQ(results[i].error().code, Errc::invalid_argument);
    } else {
      ASSERT_TRUE(results[i]) << i << ": " << results[i].error().to_string();
      EXPECT_EQ(*results[i], tx_hash(txs[i]));
    }
  }
  const BlockHeader h = block(*c);
  EXPECT_EQ(h.blob_count, 298u);
  // Blobs got indexes in submission order.
  EXPECT_EQ((**c->receipt(*results[299])).blob_index->value, 297u);
}

TEST_F(DevChainTest, OneSendersOutOfOrderArrivalsApplyInNonceOrder) {
  auto c = open();
  const SigningKey other = key_from(rng);
  const BlobId x = commitment_from(rng), y = commitment_from(rng), z = commitment_from(rng);
  // Nonce 2 arrives before nonce 1 (two connections racing).
  auto h2 = c->submit(put(*c, 2, x));
  auto ho = c->submit(make_put_blob(other, c->info().chain_id, 1, y, 5));
  auto h1 = c->submit(put(*c, 1, z));
  ASSERT_TRUE(h1 && h2 && ho);
  block(*c);
  EXPECT_TRUE((**c->receipt(*h1)).ok());
  EXPECT_TRUE((**c->receipt(*h2)).ok());
  // user's transactions took the user's slots (0 and 2) in nonce order.
  EXPECT_EQ((**c->receipt(*h1)).blob_index->value, 0u);
  EXPECT_EQ((**c->receipt(*ho)).blob_index->value, 1u);
  EXPECT_EQ((**c->receipt(*h2)).blob_index->value, 2u);
}

TEST_F(DevChainTest, RestartContinuesFromTheSameHeadAndState) {
  Hash32 digest{};
  BlockHeader head;
  std::vector<Hash32> hashes;
  const SigningKey node = key_from(rng);
  {
    auto c = open();
    const Hash32 id = c->info().chain_id;
    ASSERT_TRUE(c->submit(make_register_node(node, id, 1, "127.0.0.1:7001", {ShardId{0}})));
    for (uint64_t i = 1; i <= 9; ++i) {
      auto h = c->submit(put(*c, i, commitment_from(rng), static_cast<uint32_t>(i)));
      ASSERT_TRUE(h);
      hashes.push_back(*h);
      if (i % 3 == 0) block(*c);
      // Epoch 0's window is blocks 1..2: anchor in block 2.
      if (i == 3) {
        ASSERT_TRUE(
            c->submit(make_submit_response(node, id, 2, ShardId{0}, Epoch{0}, hash_from(rng))));
      }
    }
    head = block(*c);
    EXPECT_EQ(head.number.value, 4u);
    EXPECT_EQ(c->header(BlockNumber{2})->response_count, 1u);
    digest = c->state_digest();
  }
  // Reopen without parameters: the genesis has them.
  auto c = open(std::nullopt);
  ASSERT_TRUE(c);
  EXPECT_EQ(*c->head(), head);
  EXPECT_EQ(c->state_digest(), digest);
  EXPECT_EQ(c->info().params, small_params());
  EXPECT_EQ(*c->blob_count(), 9u);
  EXPECT_EQ((**c->receipt(hashes[4])).blob_index->value, 4u);
  EXPECT_EQ(c->nodes(ShardId{0})->size(), 1u);
  EXPECT_EQ(c->responses(ShardId{0}, Epoch{0})->size(), 1u);
  // Replay protection survives the restart.
  EXPECT_EQ(*c->next_nonce(user.public_key()), 10u);
  const BlockHeader next = block(*c);
  EXPECT_EQ(next.number.value, 5u);
  EXPECT_EQ(next.parent_hash, head.hash());
  auto all = c->headers(BlockNumber{0}, 10);
  ASSERT_TRUE(all);
  EXPECT_TRUE(verify_header_chain(*all, sequencer.public_key(), c->info().chain_id));
}

TEST_F(DevChainTest, RefusesAnotherSequencerOrOtherParameters) {
  { ASSERT_TRUE(open()); }
  const SigningKey stranger = key_from(rng);
  auto other = DevChain::open(settings, stranger, std::nullopt, time);
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, Errc::conflict);
  erasure::NetworkParams p = small_params();
  p.epoch_blocks = 16;
  auto changed = DevChain::open(settings, sequencer, p, time);
  ASSERT_FALSE(changed);
  EXPECT_EQ(changed.error().code, Errc::conflict);
  erasure::NetworkParams invalid = small_params();
  invalid.deadline_blocks = invalid.epoch_blocks;
  settings.db_path = (dir / "fresh").string();
  EXPECT_EQ(DevChain::open(settings, sequencer, invalid, time).error().code,
            Errc::invalid_argument);
}

TEST_F(DevChainTest, ProvesBlobsAgainstHistoricalHeadersAndResponsesAgainstTheirBlock) {
  auto c = open();
  const Hash32 id = c->info().chain_id;
  std::vector<BlobId> blobs;
  std::vector<BlockHeader> headers;
  uint64_t nonce = 0;
  for (int b = 0; b < 4; ++b) {
    for (int i = 0; i < 3 + b; ++i) {
      blobs.push_back(commitment_from(rng));
      ASSERT_TRUE(c->submit(put(*c, ++nonce, blobs.back())));
    }
    headers.push_back(block(*c));
  }
  for (const BlockHeader& h : headers) {
    for (uint64_t i = 0; i < blobs.size(); ++i) {
      auto inc = c->blob_inclusion(BlobIndex{i}, h.number);
      if (i >= h.blob_count) {
        EXPECT_EQ(inc.error().code, Errc::not_found);
        continue;
      }
      ASSERT_TRUE(inc) << inc.error().to_string();
      EXPECT_EQ(inc->blob.commitment, blobs[i]);
      EXPECT_TRUE(verify_blob_inclusion(h, blobs[i], BlobIndex{i}, inc->proof));
      EXPECT_FALSE(
          verify_blob_inclusion(h, blobs[(i + 1) % blobs.size()], BlobIndex{i}, inc->proof));
    }
  }
  // Responses: two nodes anchor in block 9, inside epoch 1's window (E = 8, D = 2).
  const SigningKey n1 = key_from(rng), n2 = key_from(rng);
  ASSERT_TRUE(c->submit(make_register_node(n1, id, 1, "127.0.0.1:1", {ShardId{0}})));
  ASSERT_TRUE(c->submit(make_register_node(n2, id, 1, "127.0.0.1:2", {ShardId{0}})));
  while (c->head()->number.value < 8) block(*c);
  const Hash32 r1 = hash_from(rng), r2 = hash_from(rng);
  ASSERT_TRUE(c->submit(make_submit_response(n1, id, 2, ShardId{0}, Epoch{1}, r1)));
  ASSERT_TRUE(c->submit(make_submit_response(n2, id, 2, ShardId{0}, Epoch{1}, r2)));
  const BlockHeader anchor = block(*c);
  EXPECT_EQ(anchor.number.value, 9u);
  EXPECT_EQ(anchor.response_count, 2u);
  for (const auto& [key, hash] : {std::pair{&n1, r1}, std::pair{&n2, r2}}) {
    auto inc = c->response_inclusion(key->public_key(), ShardId{0}, Epoch{1});
    ASSERT_TRUE(inc) << inc.error().to_string();
    EXPECT_EQ(inc->record.anchored_in, anchor.number);
    EXPECT_TRUE(verify_response_inclusion(anchor, key->public_key(), ShardId{0}, Epoch{1}, hash,
                                          inc->record.leaf_index, inc->proof));
  }
  EXPECT_EQ(c->responses(ShardId{0}, Epoch{1})->size(), 2u);
  EXPECT_EQ(c->response_inclusion(n1.public_key(), ShardId{0}, Epoch{0}).error().code,
            Errc::not_found);
}

TEST_F(DevChainTest, HeadSubscribersSeeEveryBlockInOrderUntilUnsubscribed) {
  auto c = open();
  std::vector<uint64_t> seen;
  Subscription sub =
      c->subscribe_heads([&](const BlockHeader& h) { seen.push_back(h.number.value); });
  std::vector<uint64_t> ticks;
  Subscription tick_sub = c->subscribe_ticks([&](const ClockTick& t) {
    ticks.push_back(t.number.value);
    EXPECT_EQ(t.randomness, block_randomness(t.hash));
  });
  block(*c);
  block(*c);
  sub.reset();
  block(*c);
  EXPECT_EQ(seen, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(ticks, (std::vector<uint64_t>{1, 2, 3}));
}

TEST_F(DevChainTest, ProducerOnItsOwnThreadMakesBlocksOnTheRealClock) {
  erasure::NetworkParams p = small_params();
  p.block_time_ms = 50;
  auto c = DevChain::open(settings, sequencer, p, system_time());
  ASSERT_TRUE(c);
  std::atomic<int> blocks{0};
  Subscription sub = (*c)->subscribe_heads([&](const BlockHeader&) { ++blocks; });
  const auto start = std::chrono::steady_clock::now();
  p2p::IoThread producer("devchain-test");
  (*c)->start(producer.executor(), p2p::real_clock());
  producer.start();
  auto h = test::submit_and_wait(**c, put(**c, 1, commitment_from(rng)), std::chrono::seconds(5));
  ASSERT_TRUE(h) << h.error().to_string();
  EXPECT_TRUE(h->ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  producer.stop();
  (*c)->stop();
  const double elapsed_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const double expected = elapsed_ms / 50;
  // Generous bounds: the machine is shared; the cadence itself is checked
  // precisely over HTTP in the integration test.
  EXPECT_GE(blocks.load(), expected * 0.6) << elapsed_ms << " ms";
  EXPECT_LE(blocks.load(), expected + 2) << elapsed_ms << " ms";
  const int after_stop = blocks.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  EXPECT_EQ(blocks.load(), after_stop);
}

// The producer on a manual clock: a block at every block_time_ms of virtual
// time exactly, transactions land in the next block, stop() ends it.
TEST_F(DevChainTest, ProducerOnAManualClockMakesABlockEveryBlockTimeExactly) {
  erasure::NetworkParams p = small_params();
  p.block_time_ms = 50;
  auto manual_time = std::make_shared<ManualTime>(1'000'000);
  auto c = DevChain::open(settings, sequencer, p, manual_time);
  ASSERT_TRUE(c);
  asio::io_context io;
  p2p::ManualClock clock(io);
  std::vector<std::pair<uint64_t, int64_t>> heads;  // number, virtual ms
  Subscription sub = (*c)->subscribe_heads([&](const BlockHeader& h) {
    heads.emplace_back(
        h.number.value,
        std::chrono::duration_cast<std::chrono::milliseconds>(clock.elapsed()).count());
  });
  (*c)->start(io.get_executor(), clock);
  clock.advance(std::chrono::milliseconds(49));
  EXPECT_TRUE(heads.empty());
  clock.advance(std::chrono::milliseconds(1));
  ASSERT_EQ(heads.size(), 1u);
  EXPECT_EQ(heads[0], (std::pair<uint64_t, int64_t>{1, 50}));
  ASSERT_TRUE((*c)->submit(put(**c, 1, commitment_from(rng))));
  EXPECT_EQ((*c)->mempool_size(), 1u);
  clock.advance(std::chrono::milliseconds(200));
  ASSERT_EQ(heads.size(), 5u);
  for (size_t i = 0; i < heads.size(); ++i) {
    EXPECT_EQ(heads[i].first, i + 1);
    EXPECT_EQ(heads[i].second, static_cast<int64_t>(50 * (i + 1)));
  }
  EXPECT_EQ((*c)->mempool_size(), 0u);
  EXPECT_EQ((*c)->blob_count().value_or(0), 1u);
  (*c)->stop();
  clock.advance(std::chrono::milliseconds(500));
  EXPECT_EQ(heads.size(), 5u);
}

}  // namespace
}  // namespace cairn::contracts
