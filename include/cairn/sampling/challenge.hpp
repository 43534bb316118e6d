#pragma once
// The epoch challenge (docs/design.md section 7; byte-exact definitions in
// docs/proof-format.md "Challenge walk"): which blobs of a shard an epoch
// challenges, and how each walk step's position, state and transcript leaf,
// and the opened steps, are derived. Pure functions shared by the prover
// (walk.hpp) and the verifier (response.hpp); no I/O.

#include <cstdint>
#include <vector>

#include "cairn/contracts/header.hpp"
#include "cairn/core/bytes.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/erasure/params.hpp"

namespace cairn::sampling {

// Version of the walk, response and opening derivations; part of their
// domain strings. Persisted / wire format: a change needs a new version.
inline constexpr uint8_t kWalkVersion = 1;

// Where a walk step reads: one chunk of the sealed replica of blob `blob`.
// `chunk` counts chunk_size chunks across all n fragments of the replica:
// fragment chunk / chunks_per_fragment, chunk % chunks_per_fragment inside it
// (the same numbering as the blocks of the replica mask).
struct ChunkPosition {
  BlobIndex blob{};
  uint32_t chunk = 0;
  bool operator==(const ChunkPosition&) const = default;
};

// What every node serving `shard` answers in `epoch`; the same for all of
// them. Built from the header of block e*E (make_epoch_challenge), or by hand
// from the same values.
struct EpochChallenge {
  erasure::NetworkParams params;
  ShardId shard{};
  Epoch epoch{};
  // Block e*E: its randomness seeds the walk, its blobs_root anchors the
  // commitments of the challenged blobs.
  BlockNumber start_block{};
  Hash32 randomness{};
  // The challenged blobs: [first_blob, first_blob + blob_count), the blobs of
  // the shard registered at or before start_block. blob_count > 0.
  BlobIndex first_blob{};
  uint64_t blob_count = 0;
  // blobs_root and blob_count (its tree size) of block start_block.
  Hash32 blobs_root{};
  uint64_t blobs_tree_size = 0;

  // Chunks in one blob's replica: n * chunks_per_fragment.
  uint32_t replica_chunks() const noexcept {
    return params.total_fragments() * params.chunks_per_fragment();
  }
};

// The challenge of (shard, epoch) from `start`, the header of block e*E.
// invalid_argument when the parameters do not validate or `start` is not
// block e*E; not_found when the shard had no blob registered at that block
// (there is nothing to prove for that epoch).
Result<EpochChallenge> make_epoch_challenge(const erasure::NetworkParams& params, ShardId shard,
                                            Epoch epoch, const contracts::BlockHeader& start);

// state_0 = SHA-256("cairn/walk/v1" || randomness || node || u32 shard || u64 epoch).
Hash32 initial_state(const EpochChallenge& challenge, const NodeId& node);

// The position step i reads, from state_{i-1}:
//   blob  = first_blob + u64(state[0..8]) mod blob_count
//   chunk = u64(state[8..16]) mod replica_chunks
ChunkPosition step_position(const EpochChallenge& challenge, const Hash32& prev_state) noexcept;

// state_i = SHA-256(state_0 || state_{i-1} || sealed chunk_i). Every step
// hashes state_0, so a verifier that sees one step alone still knows it
// belongs to this node's walk of this epoch: no part of a walk can be
// computed before the epoch's randomness exists, or reused from another
// node's or epoch's (docs/proof-format.md "Why every step hashes state_0").
Hash32 next_state(const Hash32& state0, const Hash32& prev_state, ByteSpan sealed_chunk);

// Transcript leaf hash of step i (1-based; leaf index i - 1 in a tree of S
// leaves): merkle_leaf_hash(u32 i || state_{i-1} || chunk_i || state_i).
Hash32 transcript_leaf(uint32_t step, const Hash32& prev_state, ByteSpan sealed_chunk,
                       const Hash32& state);

// The walk's commitment, what SubmitResponse anchors:
// SHA-256("cairn/response/v1" || node || u32 shard || u64 epoch ||
//         transcript_root || final_state).
Hash32 commitment_hash(const NodeId& node, ShardId shard, Epoch epoch,
                       const Hash32& transcript_root, const Hash32& final_state);

// Which steps a response opens, derived from its commitment hash and the
// randomness of the block that anchored it (docs/proof-format.md
// "Openings"): pair p opens steps pair_steps[p] and pair_steps[p] + 1;
// opened step slot 2p is the first of pair p, 2p + 1 the second.
struct OpeningPlan {
  // `openings` distinct first steps in [1, S - 1], in derivation order.
  std::vector<uint32_t> pair_steps;
  // `mask_checks` distinct slots in [0, 2 * openings), in derivation order:
  // the opened steps whose sealed chunk is checked against the replica mask.
  std::vector<uint32_t> mask_slots;
};
// params must validate().
OpeningPlan plan_openings(const erasure::NetworkParams& params, const Hash32& commitment,
                          const Hash32& anchor_randomness);

}  // namespace cairn::sampling
