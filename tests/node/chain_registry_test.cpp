// The chain registry as the sync engine reads it (tools/node/sync_link.hpp):
// settled counts and blob ranges from a dev chain, and how many chain calls
// a shard's registry costs (each is a round trip to a remote chain).

#include <gtest/gtest.h>

#include <asio/any_io_executor.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include <atomic>
#include <random>
#include <thread>

#include "../contracts/chain_test_util.hpp"
#include "cairn/contracts/chain_client.hpp"
#include "cairn/contracts/devchain.hpp"
#include "cairn/p2p/clock.hpp"
#include "node/sync_link.hpp"

namespace cairn::node {
namespace {

using contracts::BlobRecord;
using contracts::BlockHeader;

// Forwards to a chain and counts the registry reads the sync path makes.
class CountingChain final : public contracts::Chain {
 public:
  explicit CountingChain(contracts::Chain& inner) : inner_(inner) {}
  std::atomic<uint64_t> registry_calls{0};

  const contracts::ChainInfo& info() const override { return inner_.info(); }
  Result<BlockHeader> head() override { return inner_.head(); }
  Result<BlockHeader> header(BlockNumber n) override { return count(inner_.header(n)); }
  Result<std::vector<BlockHeader>> headers(BlockNumber from, uint32_t count) override {
    return inner_.headers(from, count);
  }
  Subscription subscribe_heads(std::function<void(const BlockHeader&)> on_head) override {
    return inner_.subscribe_heads(std::move(on_head));
  }
  Result<Hash32> submit(ByteSpan tx) override { return inner_.submit(tx); }
  Result<std::optional<contracts::Receipt>> receipt(const Hash32& tx) override {
    return inner_.receipt(tx);
  }
  Result<uint64_t> next_nonce(const NodeId& sender) override { return inner_.next_nonce(sender); }
  Result<std::optional<BlobRecord>> blob_by_id(const BlobId& c) override {
    return count(inner_.blob_by_id(c));
  }
  Result<std::optional<BlobRecord>> blob_by_index(BlobIndex i) override {
    return count(inner_.blob_by_index(i));
  }
  Result<std::vector<BlobRecord>> blobs(BlobIndex from, uint32_t n) override {
    return count(inner_.blobs(from, n));
  }
  Result<uint64_t> blob_count() override { return count(inner_.blob_count()); }
  Result<uint64_t> blob_count(ShardId s) override { return count(inner_.blob_count(s)); }
  Result<std::vector<contracts::NodeRecord>> nodes(ShardId s) override { return inner_.nodes(s); }
  Result<std::vector<contracts::ResponseRecord>> responses(ShardId s, Epoch e) override {
    return inner_.responses(s, e);
  }
  Result<std::vector<contracts::Event>> events(BlockNumber n) override { return inner_.events(n); }
  Result<contracts::BlobInclusion> blob_inclusion(BlobIndex i, BlockNumber b) override {
    return inner_.blob_inclusion(i, b);
  }
  Result<contracts::ResponseInclusion> response_inclusion(const NodeId& n, ShardId s,
                                                          Epoch e) override {
    return inner_.response_inclusion(n, s, e);
  }

 private:
  template <class T>
  T count(T r) {
    registry_calls.fetch_add(1);
    return r;
  }
  contracts::Chain& inner_;
};

// One thread running an io_context, joined on destruction.
struct ExecutorThread {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  std::thread thread{[this] { io.run(); }};
  void join() {
    work.reset();
    io.stop();
    if (thread.joinable()) thread.join();
  }
  ~ExecutorThread() { join(); }
};

class ChainRegistryTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kPerShard = 3000;

  ChainRegistryTest() : rng(cairn::test::seeded_rng(91)) {
    contracts::DevChainSettings cs;
    cs.db_path = (dir / "chain").string();
    cs.sync_writes = false;
    cs.max_block_txs = 100000;
    params.blobs_per_shard = kPerShard;
    auto c = contracts::DevChain::open(cs, contracts::test::key_from(rng), params,
                                       std::make_shared<contracts::ManualTime>(1'700'000'000'000));
    EXPECT_TRUE(c) << c.error().to_string();
    dev = std::move(*c);
    counting = std::make_shared<CountingChain>(*dev);
  }

  // Registers `n` blobs in one block; returns their ids in index order.
  std::vector<BlobId> register_block(uint32_t n) {
    const SigningKey user = contracts::test::key_from(rng);
    std::vector<Bytes> txs;
    std::vector<BlobId> ids;
    for (uint32_t i = 0; i < n; ++i) {
      ids.push_back(contracts::test::commitment_from(rng));
      txs.push_back(contracts::make_put_blob(user, dev->info().chain_id, i, ids.back(), 100 + i));
    }
    for (auto& r : dev->submit_many(txs)) EXPECT_TRUE(r) << r.error().to_string();
    EXPECT_TRUE(dev->produce_block());
    return ids;
  }

  cairn::test::TempDir dir;
  std::mt19937_64 rng;
  erasure::NetworkParams params = contracts::test::small_params();
  std::unique_ptr<contracts::DevChain> dev;
  std::shared_ptr<CountingChain> counting;
};

TEST_F(ChainRegistryTest, SettledCountsAndRangesCostAFewChainCallsPerShard) {
  // Shard 0 fills over three blocks: 2,000 + 1,000 (full) and then 500 blobs
  // of shard 1; two empty blocks let the first two settle (settle_blocks 2).
  std::vector<BlobId> ids = register_block(2000);
  for (const BlobId& id : register_block(1000)) ids.push_back(id);
  for (const BlobId& id : register_block(500)) ids.push_back(id);
  ASSERT_TRUE(dev->produce_block());

  ExecutorThread executor;
  contracts::ChainClient link(counting, contracts::test::key_from(rng),
                              contracts::ChainClientSettings{}, executor.io.get_executor(),
                              p2p::real_clock());
  ASSERT_TRUE(link.start());
  ChainRegistry registry(link, params, /*settle_blocks=*/2);
  // Head is block 4: blocks up to 2 are settled (all of shard 0), shard 1's
  // block 3 is not yet.
  counting->registry_calls.store(0);
  auto shard0 = registry.blob_count(ShardId{0});
  ASSERT_TRUE(shard0) << shard0.error().to_string();
  EXPECT_EQ(*shard0, kPerShard);
  EXPECT_EQ(*registry.blob_count(ShardId{1}), 0u);
  auto listed = registry.blobs(ShardId{0}, BlobIndex{0}, kPerShard);
  ASSERT_TRUE(listed) << listed.error().to_string();
  ASSERT_EQ(listed->size(), kPerShard);
  for (uint32_t i = 0; i < kPerShard; ++i) {
    ASSERT_EQ((*listed)[i].index.value, i);
    ASSERT_EQ((*listed)[i].id, ids[i]) << i;
    ASSERT_EQ((*listed)[i].length, i < 2000 ? 100 + i : 100 + (i - 2000));
  }
  // Two counts (a header each) and one listing: a header for its count and
  // ceil(3000 / kMaxBlobRange) = 3 ranges. One call per blob would be 3,000.
  EXPECT_LE(counting->registry_calls.load(), 6u);

  // A later start in the middle of the shard, bounded by `limit`.
  auto tail = registry.blobs(ShardId{0}, BlobIndex{2990}, 100);
  ASSERT_TRUE(tail);
  ASSERT_EQ(tail->size(), 10u);
  EXPECT_EQ(tail->front().id, ids[2990]);

  // Once two more blocks pass, shard 1's 500 settle.
  ASSERT_TRUE(dev->produce_block());
  ASSERT_TRUE(dev->produce_block());
  for (int i = 0; i < 200 && link.head()->number.value < 6; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(*registry.blob_count(ShardId{1}), 500u);
  auto shard1 = registry.blobs(ShardId{1}, BlobIndex{0}, 1000);
  ASSERT_TRUE(shard1);
  ASSERT_EQ(shard1->size(), 500u);
  EXPECT_EQ(shard1->front().index.value, kPerShard);
  EXPECT_EQ(shard1->back().id, ids.back());
  executor.join();
  link.stop();
}

}  // namespace
}  // namespace cairn::node
