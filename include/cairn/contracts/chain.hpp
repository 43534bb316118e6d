#pragma once
// The consensus clock and the chain as the node sees them (docs/design.md
// section 4). Backends: the in-process DevChain (devchain.hpp), a DevChain
// reached over JSON-RPC, and, for the clock alone, an Ethereum JSON-RPC node
// (rpc.hpp).
//
// Threading: every method may block (RocksDB reads, or an HTTP round trip):
// call them from a worker, never from a network strand. All methods are
// safe to call from several threads at once. Subscription callbacks run on a
// thread owned by the backend (documented per backend); they must return
// quickly and must not block on the chain's own progress, though they may
// call the query methods.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "cairn/contracts/header.hpp"
#include "cairn/contracts/records.hpp"
#include "cairn/contracts/tx.hpp"
#include "cairn/core/result.hpp"
#include "cairn/core/subscription.hpp"

namespace cairn::contracts {

// The part of a block every clock backend has.
struct ClockTick {
  BlockNumber number{};
  Hash32 hash{};
  Hash32 parent_hash{};
  uint64_t timestamp_ms = 0;
  // Dev chain: block_randomness(hash). Ethereum: the block's mixHash
  // (prevrandao, from the beacon chain) when present and non-zero, else
  // block_randomness(hash).
  Hash32 randomness{};
  bool operator==(const ClockTick&) const = default;
};

ClockTick tick_of(const BlockHeader& header);

// Cancels on destruction (core/subscription.hpp). After reset() returns no
// callback of it is running or will run, unless reset() is called from inside
// that callback, in which case it only stops future ones.
using Subscription = cairn::Subscription;

class ConsensusClock {
 public:
  virtual ~ConsensusClock() = default;
  virtual Result<ClockTick> latest_tick() = 0;
  // Errc::not_found for a block beyond the head.
  virtual Result<ClockTick> tick(BlockNumber number) = 0;
  // `on_tick` runs once per new block after subscribing, in increasing block
  // number order. The in-process dev chain never repeats the head that
  // existed when subscribing; a polling client may deliver blocks sealed up
  // to one poll period before the call, and skips blocks when it falls more
  // than max_catchup_blocks behind.
  virtual Subscription subscribe_ticks(std::function<void(const ClockTick&)> on_tick) = 0;
};

class Chain : public ConsensusClock {
 public:
  // Fixed at genesis; available without a round trip.
  virtual const ChainInfo& info() const = 0;

  virtual Result<BlockHeader> head() = 0;
  // Errc::not_found for a block beyond the head.
  virtual Result<BlockHeader> header(BlockNumber number) = 0;
  // Up to `count` consecutive headers from `from` (fewer at the head).
  virtual Result<std::vector<BlockHeader>> headers(BlockNumber from, uint32_t count) = 0;
  Result<Hash32> randomness(BlockNumber number);
  // `on_head` runs once per new block after subscribing, in order.
  virtual Subscription subscribe_heads(std::function<void(const BlockHeader&)> on_head) = 0;

  // Admits a signed transaction (wire form) to the mempool and returns its
  // hash. Fails before inclusion with a message starting with the TxStatus
  // name: invalid_argument (malformed), verification_failed (bad_signature),
  // conflict (stale_nonce, duplicate_pending), busy (mempool_full).
  virtual Result<Hash32> submit(ByteSpan signed_tx) = 0;
  // The same for many; the dev chain verifies their signatures in parallel.
  virtual std::vector<Result<Hash32>> submit_many(std::span<const Bytes> signed_txs);
  // nullopt while pending (or unknown).
  virtual Result<std::optional<Receipt>> receipt(const Hash32& tx_hash) = 0;
  // A nonce above every included and pending transaction of `sender`.
  virtual Result<uint64_t> next_nonce(const NodeId& sender) = 0;

  // Registry queries (the state after the head block).
  virtual Result<std::optional<BlobRecord>> blob_by_id(const BlobId& commitment) = 0;
  virtual Result<std::optional<BlobRecord>> blob_by_index(BlobIndex index) = 0;
  // Up to `count` registered blobs with index >= `from`, ascending and
  // consecutive: fewer (or none) where the registry ends. One call for a
  // range, so a follower reads a shard's registry in batches instead of one
  // round trip per blob. invalid_argument when count > kMaxBlobRange.
  static constexpr uint32_t kMaxBlobRange = 1024;
  virtual Result<std::vector<BlobRecord>> blobs(BlobIndex from, uint32_t count) = 0;
  virtual Result<uint64_t> blob_count() = 0;
  virtual Result<uint64_t> blob_count(ShardId shard) = 0;
  virtual Result<std::vector<NodeRecord>> nodes(ShardId shard) = 0;
  virtual Result<std::vector<ResponseRecord>> responses(ShardId shard, Epoch epoch) = 0;
  // Events of one block in transaction order (blob registrations, node
  // registrations, anchored responses): how nodes follow uploads.
  virtual Result<std::vector<Event>> events(BlockNumber number) = 0;

  // Inclusion proofs. not_found when the blob did not exist at `block` or
  // the node anchored no response for (shard, epoch).
  virtual Result<BlobInclusion> blob_inclusion(BlobIndex index, BlockNumber block) = 0;
  virtual Result<ResponseInclusion> response_inclusion(const NodeId& node, ShardId shard,
                                                       Epoch epoch) = 0;

  // ConsensusClock in terms of headers.
  Result<ClockTick> latest_tick() final;
  Result<ClockTick> tick(BlockNumber number) final;
  Subscription subscribe_ticks(std::function<void(const ClockTick&)> on_tick) final;
};

}  // namespace cairn::contracts
