#pragma once
// Replica-count proofs (docs/design.md section 7; byte layout in
// docs/proof-format.md "Replica-count proof"): a self-contained file from
// which anyone holding the chain's trust root learns "shard s had at least R
// physically distinct replicas at epoch e".
//
// A proof carries the chain identity (sequencer key, network parameters,
// genesis time: together they give the chain id every header carries), the
// headers of blocks e*E .. e*E+D, and every counted response with the path
// of its commitment in the responses_root of the block that anchored it.
//
// This header and its sources (sampling/verify/) link neither Asio nor
// RocksDB: library cairn_verify, with a C interface in cairn/verify.h.

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "cairn/contracts/header.hpp"
#include "cairn/core/bytes.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/erasure/merkle.hpp"
#include "cairn/erasure/params.hpp"
#include "cairn/sampling/response.hpp"

namespace cairn::sampling {

// Persisted format: "CAIRNRCP" then version 1.
inline constexpr uint8_t kProofVersion = 1;
inline constexpr size_t kProofMagicBytes = 8;
// Decoder bounds (abuse guards).
inline constexpr uint32_t kMaxProofResponses = 65536;
inline constexpr uint32_t kMaxProofHeaders = 1024;

// One counted response and where it was anchored: the response's
// anchor_block, leaf `anchor_path.index` of that block's responses_root.
struct ProofEntry {
  Response response;
  erasure::MerkleProof anchor_path;
  bool operator==(const ProofEntry&) const = default;
};

struct ReplicaProof {
  // Chain identity: chain_id = contracts::compute_chain_id(sequencer,
  // params, genesis_time_ms).
  NodeId sequencer{};
  erasure::NetworkParams params;
  uint64_t genesis_time_ms = 0;
  ShardId shard{};
  Epoch epoch{};
  // Blocks e*E .. e*E + D, consecutive.
  std::vector<contracts::BlockHeader> headers;
  std::vector<ProofEntry> entries;

  Hash32 chain_id() const;
  Bytes encode() const;
  // Parses untrusted bytes (all consumed). invalid_argument naming the field
  // on a wrong magic, truncation, a count over its bound or trailing bytes;
  // unsupported for another version. Verifies nothing.
  static Result<ReplicaProof> decode(ByteSpan data) noexcept;

  bool operator==(const ReplicaProof&) const = default;
};

// What the verifier trusts. The sequencer key is the dev chain's trust root
// (printed by `cairn devchain`, served by cairn_chainInfo); a genesis record
// (contracts::ChainInfo) pins the parameters and genesis time as well.
// Without either, the key inside the proof is used: the proof is then only
// checked for consistency, and the report says the trust root was not pinned.
struct TrustRoot {
  enum class Kind { embedded, sequencer_key, genesis };
  Kind kind = Kind::embedded;
  NodeId sequencer{};            // Kind::sequencer_key
  contracts::ChainInfo genesis;  // Kind::genesis

  static TrustRoot embedded_key() { return {}; }
  static TrustRoot key(const NodeId& sequencer) { return {Kind::sequencer_key, sequencer, {}}; }
  static TrustRoot chain(const contracts::ChainInfo& info) {
    return {Kind::genesis, info.sequencer, info};
  }
};

// Resource bounds of the verifier: a proof signed by an unpinned key could
// ask for anything. Defaults are far above every network we run.
struct VerifyLimits {
  // Largest proof accepted, bytes. Default 256 MiB (1,000 replicas of the
  // default parameters take ~250 MB).
  size_t max_proof_bytes = size_t{256} << 20;
  // Largest blob replica (n * fragment_size) whose mask the verifier computes,
  // bytes. Default 64 MiB.
  uint64_t max_replica_bytes = uint64_t{64} << 20;
  // Largest seal_cost, passes. Default 64 (the tuned value is 2).
  uint32_t max_seal_cost = 64;
  // Largest mask_checks per response. Default 64 (the tuned value is 4);
  // each costs about one replica mask.
  uint32_t max_mask_checks = 64;
};

struct ProofReport {
  ShardId shard{};
  Epoch epoch{};
  BlockNumber start_block{};
  // The blobs every counted replica was challenged over:
  // [first_blob, first_blob + blob_count).
  BlobIndex first_blob{};
  uint64_t blob_count = 0;
  // Distinct node ids with a valid response anchored in time, ascending.
  std::vector<NodeId> nodes;
  uint32_t replicas() const noexcept { return static_cast<uint32_t>(nodes.size()); }
  size_t responses = 0;  // entries in the proof (duplicates included)
  Hash32 chain_id{};
  NodeId sequencer{};
  bool trust_pinned = false;  // false: TrustRoot::embedded
};

// Checks everything: the chain identity against `trust`, the header chain
// (signatures, links, chain id, blocks e*E .. e*E+D), and for every entry
// that its response answers this shard and epoch, was anchored in a block
// e*E < b <= e*E+D (leaf of b's responses_root binding node, shard, epoch
// and commitment) and verifies (verify_response with randomness(b)).
// Any failure rejects the whole proof: verification_failed (or
// invalid_argument / unsupported from decoding, parameters outside `limits`)
// with a message naming the block, node, pair and check. Duplicate entries
// of one node count once.
Result<ProofReport> verify_replica_proof(const ReplicaProof& proof, const TrustRoot& trust,
                                         const VerifyLimits& limits = {});
Result<ProofReport> verify_replica_proof(ByteSpan proof, const TrustRoot& trust,
                                         const VerifyLimits& limits = {});

}  // namespace cairn::sampling
