#pragma once
// Network parameters (docs/design.md section 2): fixed per network, carried in the
// genesis. Every module reads geometry from here; nothing hard-codes sizes.

#include <cstdint>

#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"

namespace cairn::erasure {

struct NetworkParams {
  // Largest blob_size validate() accepts: a blob is encoded whole in memory,
  // and ISA-L takes fragment lengths as C int.
  static constexpr uint32_t kMaxBlobSize = 1u << 30;

  // Payload bytes per blob (one EIP-4844 blob). Shorter blobs are zero-padded.
  uint32_t blob_size = 131072;
  // k: Reed-Solomon data fragments per blob.
  uint32_t data_fragments = 8;
  // m: parity fragments; any k of n = k + m fragments rebuild the blob.
  uint32_t parity_fragments = 4;
  // Bytes per chunk: the Merkle leaf and the challenge sample unit.
  uint32_t chunk_size = 1024;
  // Shard s holds blob indexes [s*B, (s+1)*B).
  uint64_t blobs_per_shard = 4096;
  // Dev chain block interval, milliseconds (the consensus clock).
  uint32_t block_time_ms = 1000;
  // A challenge epoch starts every E blocks.
  uint32_t epoch_blocks = 8;
  // A response must be anchored within D blocks of its epoch start.
  uint32_t deadline_blocks = 2;
  // Sequential samples per challenge response (tuned: docs/proof-format.md).
  uint32_t walk_steps = 12288;
  // Adjacent transcript step pairs opened per response (tuned).
  uint32_t openings = 32;
  // Work factor of the replica sealing mask (tuned).
  uint32_t seal_cost = 2;
  // q: opened walk steps whose sealed chunk the verifier checks against a
  // recomputed replica mask (tuned: docs/proof-format.md). Each costs the
  // verifier about one mask; fewer lets a node without its replica skip more
  // mask computations.
  uint32_t mask_checks = 8;

  uint32_t total_fragments() const noexcept { return data_fragments + parity_fragments; }
  uint32_t fragment_size() const noexcept { return blob_size / data_fragments; }
  uint32_t chunks_per_fragment() const noexcept { return fragment_size() / chunk_size; }
  ShardId shard_of(BlobIndex index) const noexcept {
    return ShardId{static_cast<uint32_t>(index.value / blobs_per_shard)};
  }
  BlobIndex first_index(ShardId shard) const noexcept {
    return BlobIndex{uint64_t{shard.value} * blobs_per_shard};
  }

  // Errc::invalid_argument naming the offending field when the combination is
  // impossible: zero sizes, blob_size > kMaxBlobSize, k + m > 255,
  // blob_size not divisible into k fragments of whole chunks, deadline not
  // inside the epoch.
  Status validate() const;

  // The defaults above, and the smaller-shard variant used by localnets.
  static NetworkParams defaults() { return {}; }
  static NetworkParams localnet() {
    NetworkParams p;
    p.blobs_per_shard = 256;
    return p;
  }

  bool operator==(const NetworkParams&) const = default;
};

}  // namespace cairn::erasure
