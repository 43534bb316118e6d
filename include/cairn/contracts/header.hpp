#pragma once
// Block headers of the cairn dev chain and the checks a verifier runs on them:
// the header-chain check against the sequencer's public key (the trust root),
// block randomness, and inclusion of a blob commitment in `blobs_root` or of
// an anchored response in `responses_root`.
//
// This piece links only cairn_commitment (SHA-256, Merkle) and libsodium: no
// RocksDB, no HTTP, so the replica-count proof verifier can embed it.
// Byte layouts are documented in docs/chain.md.

#include <cstdint>
#include <span>

#include "cairn/core/bytes.hpp"
#include "cairn/core/ed25519.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/erasure/merkle.hpp"
#include "cairn/erasure/params.hpp"

namespace cairn::contracts {

// Persisted / wire format: bump on any layout change.
inline constexpr uint8_t kHeaderVersion = 1;
// version(1) chain_id(32) number(8) parent_hash(32) timestamp_ms(8)
// tx_root(32) tx_count(4) blobs_root(32) blob_count(8) responses_root(32)
// response_count(4).
inline constexpr size_t kUnsignedHeaderBytes = 193;
// The unsigned part followed by the 64-byte ed25519 signature.
inline constexpr size_t kHeaderBytes = kUnsignedHeaderBytes + 64;

struct BlockHeader {
  // Binds the header to one chain (see ChainInfo): a header of another dev
  // chain with the same sequencer key does not fit.
  Hash32 chain_id{};
  BlockNumber number{};
  // hash() of block number - 1; all zero for the genesis block 0.
  Hash32 parent_hash{};
  // Sequencer wall clock, Unix milliseconds; never below the parent's.
  uint64_t timestamp_ms = 0;
  // Merkle root over merkle_leaf_hash(tx_hash) of the block's transactions.
  Hash32 tx_root{};
  uint32_t tx_count = 0;
  // Append-only Merkle root over blob_leaf(commitment) of every blob
  // registered up to and including this block, by index.
  Hash32 blobs_root{};
  uint64_t blob_count = 0;
  // Merkle root over response_leaf(...) of the responses anchored in this block.
  Hash32 responses_root{};
  uint32_t response_count = 0;
  // Sequencer's ed25519 signature over hash().
  Signature signature{};

  // The 193 bytes that hash() covers.
  Bytes encode_unsigned() const;
  // The full 257-byte header.
  Bytes encode() const;
  // SHA-256("cairn/header/v1" || encode_unsigned()). The block hash.
  Hash32 hash() const;
  // Parses exactly kHeaderBytes of untrusted bytes. invalid_argument on a
  // wrong length or unknown version. Does not check the signature.
  static Result<BlockHeader> decode(ByteSpan data) noexcept;

  bool operator==(const BlockHeader&) const = default;
};

// What identifies a dev chain: fixed at genesis, persisted, served by
// cairn_chainInfo, and enough (with the headers) for a verifier.
struct ChainInfo {
  // SHA-256("cairn/chain-id/v1" || sequencer || encode_params(params) ||
  // genesis_time_ms(u64)).
  Hash32 chain_id{};
  // The sequencer's ed25519 public key: the trust root of the header chain.
  NodeId sequencer{};
  erasure::NetworkParams params{};
  uint64_t genesis_time_ms = 0;
  // hash() of block 0.
  Hash32 genesis_hash{};

  // Persisted format (docs/chain.md "Genesis record").
  Bytes encode() const;
  static Result<ChainInfo> decode(ByteSpan data) noexcept;
  bool operator==(const ChainInfo&) const = default;
};

// Every NetworkParams field as big-endian integers in declaration order (52 bytes).
inline constexpr size_t kParamsBytes = 52;
Bytes encode_params(const erasure::NetworkParams& params);
Result<erasure::NetworkParams> decode_params(ByteReader& reader) noexcept;
Hash32 compute_chain_id(const NodeId& sequencer, const erasure::NetworkParams& params,
                        uint64_t genesis_time_ms);

// randomness(b) = SHA-256("cairn/rand" || hash(b)). Chosen by the single
// sequencer (see docs/chain.md, trust model).
Hash32 block_randomness(const Hash32& block_hash);

// Fills header.signature.
void sign_header(BlockHeader& header, const SigningKey& sequencer);

// verification_failed naming the block when the signature does not verify.
Status verify_header(const BlockHeader& header, const NodeId& sequencer);

// The header-chain check: every header is signed by `sequencer`, carries
// `chain_id`, and links to its predecessor (consecutive numbers, parent_hash
// equal to the previous hash, timestamp and blob_count non-decreasing).
// Errc::verification_failed naming the first offending block; invalid_argument
// for an empty span.
Status verify_header_chain(std::span<const BlockHeader> headers, const NodeId& sequencer,
                           const Hash32& chain_id);

// Leaf of blobs_root for one commitment: merkle_leaf_hash(commitment).
Hash32 blob_leaf(const BlobId& commitment);

// Leaf of responses_root for one anchored response:
// merkle_leaf_hash(node_id(32) || shard(u32) || epoch(u64) || response_hash(32)).
Hash32 response_leaf(const NodeId& node, ShardId shard, Epoch epoch, const Hash32& response_hash);

// True iff `commitment` is the blob at `index` in header.blobs_root (tree size
// header.blob_count).
bool verify_blob_inclusion(const BlockHeader& header, const BlobId& commitment, BlobIndex index,
                           const erasure::MerkleProof& proof) noexcept;

// True iff the response is leaf `leaf_index` of header.responses_root (tree
// size header.response_count).
bool verify_response_inclusion(const BlockHeader& header, const NodeId& node, ShardId shard,
                               Epoch epoch, const Hash32& response_hash, uint32_t leaf_index,
                               const erasure::MerkleProof& proof) noexcept;

// Blobs of `shard` registered at or before the block (0 for shards not yet
// opened): the challenged set of an epoch starting at this block.
uint64_t shard_blob_count(const BlockHeader& header, const erasure::NetworkParams& params,
                          ShardId shard) noexcept;

// Response window of epoch e: anchored in a block b with
// e*E < b <= e*E + D. (The randomness of block e*E is unknown until that
// block exists, so nothing in it can answer the epoch.) Returns false when
// e*E overflows.
bool epoch_start_block(const erasure::NetworkParams& params, Epoch epoch,
                       BlockNumber& start) noexcept;

}  // namespace cairn::contracts
