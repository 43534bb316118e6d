#pragma once
// The rollup contract: a deterministic state machine over signed
// transactions (RegisterNode, PutBlob, SubmitResponse). Given the same
// network parameters, chain id and the same blocks of transactions, every
// replay reaches the same registry, the same roots and the same receipts.
//
// The dev chain owns one instance; tests and re-executing verifiers can run
// their own. Not thread-safe: the owner serialises every call.

#include <memory>
#include <optional>
#include <vector>

#include "cairn/contracts/records.hpp"
#include "cairn/contracts/tx.hpp"
#include "cairn/core/result.hpp"
#include "cairn/erasure/merkle.hpp"
#include "cairn/erasure/params.hpp"

namespace cairn::contracts {

struct BlockContext {
  BlockNumber number{};
  uint64_t timestamp_ms = 0;
};

// What a block commits to after its transactions ran.
struct BlockRoots {
  Hash32 blobs_root{};
  uint64_t blob_count = 0;
  Hash32 responses_root{};
  uint32_t response_count = 0;
};

class ContractState {
 public:
  ContractState(const erasure::NetworkParams& params, const Hash32& chain_id);
  ~ContractState();
  ContractState(ContractState&&) noexcept;
  ContractState& operator=(ContractState&&) noexcept;

  const erasure::NetworkParams& params() const noexcept;
  const Hash32& chain_id() const noexcept;

  // Transactions run between begin_block() and end_block(). Block numbers
  // must increase by one from 1 (block 0 is the empty genesis).
  void begin_block(const BlockContext& ctx);
  // Decodes, checks the signature, applies. Never fails: a transaction that
  // is malformed or not allowed gets a receipt with its TxStatus and reason
  // and changes nothing (except that a well-formed, signed transaction with a
  // fresh nonce consumes that nonce even when the contract rejects it).
  Receipt execute(ByteSpan encoded, uint32_t position);
  // Applies a decoded transaction whose signature the caller already checked
  // (the dev chain verifies on admission, in parallel).
  Receipt apply(const Transaction& tx, const Hash32& tx_hash, uint32_t position);
  BlockRoots end_block();

  // --- registry (reflects every applied transaction) ---
  std::optional<BlobRecord> blob_by_id(const BlobId& commitment) const;
  std::optional<BlobRecord> blob_by_index(BlobIndex index) const;
  uint64_t blob_count() const noexcept;
  // Blobs in `shard` (0 for a shard not yet open).
  uint64_t blob_count(ShardId shard) const noexcept;
  // Nodes serving `shard`, ordered by node id.
  std::vector<NodeRecord> nodes(ShardId shard) const;
  std::optional<NodeRecord> node(const NodeId& id) const;
  // Responses anchored for (shard, epoch), ordered by node id.
  std::vector<ResponseRecord> responses(ShardId shard, Epoch epoch) const;
  std::optional<ResponseRecord> response(const NodeId& node, ShardId shard, Epoch epoch) const;
  // The largest nonce of the sender's included transactions, if any.
  std::optional<uint64_t> last_nonce(const NodeId& sender) const;
  // A shard is open once the index space reaches it: shard <= shard of the
  // next index. Responses are accepted for open shards only.
  bool shard_open(ShardId shard) const noexcept;

  // --- roots and proofs ---
  // blobs_root over the first `blob_count` blobs (any earlier block's count).
  Hash32 blobs_root(uint64_t blob_count) const;
  Result<erasure::MerkleProof> blob_proof(BlobIndex index, uint64_t blob_count) const;
  // Path of leaf `leaf_index` in responses_root of `block`.
  Result<erasure::MerkleProof> response_proof(BlockNumber block, uint32_t leaf_index) const;

  // SHA-256 over a canonical serialisation of the whole registry, nonces and
  // roots: equal digests mean equal states. O(state); for checks, not per block.
  Hash32 digest() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::contracts
