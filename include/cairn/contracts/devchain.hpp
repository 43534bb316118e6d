#pragma once
// The dev chain: a single sequencer that admits signed transactions to a
// bounded mempool, seals them into a block every block_time_ms, runs them
// through the rollup contract and persists every block in its own RocksDB.
// Reopening the same directory replays every block from genesis, checks
// each header's roots, and continues from the same head.
//
// Owned by `cairn devchain` (its own process) or embedded in a node.
//
// Threads: start() produces the blocks on an executor the owner gives it;
// subscription callbacks run there, right after a block is persisted (or on
// the thread calling produce_block() when a test drives the chain).
// submit_many() verifies signatures on `verify_threads` worker threads the
// chain owns. All Chain methods may be called from any thread.

#include <atomic>
#include <functional>
#include <memory>
#include <optional>

#include "cairn/contracts/chain.hpp"
#include "cairn/contracts/settings.hpp"
#include "cairn/core/asio_fwd.hpp"
#include "cairn/core/clock.hpp"
#include "cairn/core/ed25519.hpp"
#include "cairn/erasure/params.hpp"

namespace cairn::contracts {

// Wall clock for block timestamps (Unix milliseconds). Injected so tests can
// drive the chain with exact times.
class TimeSource {
 public:
  virtual ~TimeSource() = default;
  virtual uint64_t now_ms() = 0;
};
std::shared_ptr<TimeSource> system_time();

class ManualTime final : public TimeSource {
 public:
  explicit ManualTime(uint64_t start_ms) : now_(start_ms) {}
  uint64_t now_ms() override { return now_.load(); }
  void set(uint64_t ms) { now_.store(ms); }
  void advance(uint64_t ms) { now_.fetch_add(ms); }

 private:
  std::atomic<uint64_t> now_;
};

class DevChain final : public Chain {
 public:
  // Opens the chain in settings.db_path, creating block 0 (the genesis) with
  // `params` (or the defaults) when the database is new. Reopening replays
  // every block. Errors: conflict when the database belongs to another
  // sequencer key or `params` differ from the genesis; invalid_argument for
  // params that fail validate(); corruption when a stored block does not
  // replay to its header; io_error from RocksDB.
  static Result<std::unique_ptr<DevChain>> open(const DevChainSettings& settings,
                                                const SigningKey& sequencer,
                                                std::optional<erasure::NetworkParams> params,
                                                std::shared_ptr<TimeSource> time = system_time());
  ~DevChain() override;  // stop(), then closes the database
  DevChain(const DevChain&) = delete;
  DevChain& operator=(const DevChain&) = delete;

  // Produces a block every params.block_time_ms of `clock` (empty blocks
  // too: the chain is the network's clock), on `executor`: block production
  // blocks (it writes the block), so give it an executor of its own in a
  // process (p2p::IoThread), or the simulation's. If persisting a block
  // fails the chain stops producing and `on_error` runs on that executor.
  // No-op when already started. Call from the executor's thread, or while
  // no thread runs it; `clock` must outlive the producer.
  void start(const asio::any_io_executor& executor, Clock& clock,
             std::function<void(const Error&)> on_error = {});
  // Stops producing blocks; idempotent. The same threading as start():
  // stop (or join) the executor's thread first.
  void stop();

  // Seals what is pending (up to max_block_txs) into the next block now.
  // io_error when persisting fails; the chain then refuses every further
  // block and submission (reopen to recover from the persisted head).
  Result<BlockHeader> produce_block();

  size_t mempool_size() const;
  // ContractState::digest() of the state after the head block.
  Hash32 state_digest() const;

  // Chain
  const ChainInfo& info() const override;
  Result<BlockHeader> head() override;
  Result<BlockHeader> header(BlockNumber number) override;
  Result<std::vector<BlockHeader>> headers(BlockNumber from, uint32_t count) override;
  Subscription subscribe_heads(std::function<void(const BlockHeader&)> on_head) override;
  Result<Hash32> submit(ByteSpan signed_tx) override;
  std::vector<Result<Hash32>> submit_many(std::span<const Bytes> signed_txs) override;
  Result<std::optional<Receipt>> receipt(const Hash32& tx_hash) override;
  Result<uint64_t> next_nonce(const NodeId& sender) override;
  Result<std::optional<BlobRecord>> blob_by_id(const BlobId& commitment) override;
  Result<std::optional<BlobRecord>> blob_by_index(BlobIndex index) override;
  Result<std::vector<BlobRecord>> blobs(BlobIndex from, uint32_t count) override;
  Result<uint64_t> blob_count() override;
  Result<uint64_t> blob_count(ShardId shard) override;
  Result<std::vector<NodeRecord>> nodes(ShardId shard) override;
  Result<std::vector<ResponseRecord>> responses(ShardId shard, Epoch epoch) override;
  Result<std::vector<Event>> events(BlockNumber number) override;
  Result<BlobInclusion> blob_inclusion(BlobIndex index, BlockNumber block) override;
  Result<ResponseInclusion> response_inclusion(const NodeId& node, ShardId shard,
                                               Epoch epoch) override;

  // Raw transactions of a block, in order (for eth_getBlockByNumber with
  // full transactions).
  Result<std::vector<Bytes>> block_transactions(BlockNumber number);

 private:
  struct Impl;
  explicit DevChain(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::contracts
