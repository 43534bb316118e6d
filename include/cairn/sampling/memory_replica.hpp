#pragma once
// An in-memory ProverSource: a node's sealed replicas of some blobs, and a
// list of every registered commitment for blobs_root paths. What the
// simulations, the tests and `cairn bench challenge` walk over; the node
// plugs its store and chain in through the same interface instead.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "cairn/erasure/commitment.hpp"
#include "cairn/sampling/walk.hpp"

namespace cairn::sampling {

// The chain's blob registry as a list of commitments by index: roots and
// paths of blobs_root as of any earlier block (tree size = that block's
// blob_count). Caches the tree of the last size asked for. Not thread-safe.
class BlobLog {
 public:
  BlobLog();
  ~BlobLog();
  BlobLog(BlobLog&&) noexcept;
  BlobLog& operator=(BlobLog&&) noexcept;

  // Registers the next index; returns it.
  BlobIndex append(const BlobId& commitment);
  uint64_t size() const noexcept;
  const BlobId& at(BlobIndex index) const;
  // invalid_argument when tree_size > size() (or index >= tree_size).
  Result<Hash32> root(uint64_t tree_size);
  Result<erasure::MerkleProof> prove(BlobIndex index, uint64_t tree_size);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Not thread-safe (one walk or opening at a time; it reuses a mask buffer).
class MemoryReplica final : public ProverSource {
 public:
  // blobs_root path of the blob at an index, in the tree of the given size
  // (block's blob_count). The dev chain answers with blob_inclusion().
  using BlobPaths = std::function<Result<erasure::MerkleProof>(BlobIndex index, BlockNumber block,
                                                               uint64_t tree_size)>;

  MemoryReplica(erasure::NetworkParams params, NodeId node, BlobPaths paths);

  // Seals `blob` for this node and keeps it at `index` (replacing any).
  void add(BlobIndex index, const erasure::CommittedBlob& blob);
  bool holds(BlobIndex index) const;
  size_t blobs() const noexcept { return blobs_.size(); }
  // The stored sealed replica of a blob (n fragments, contiguous); for tests
  // that damage it. nullopt when not held.
  std::optional<MutableByteSpan> sealed_replica(BlobIndex index);

  const NodeId& node() const noexcept { return node_; }
  const erasure::NetworkParams& params() const noexcept { return params_; }

  // ProverSource. not_found for a blob not held.
  Status read_sealed_chunk(ChunkPosition pos, MutableByteSpan out) override;
  Result<ChunkOpening> open_chunk(ChunkPosition pos, BlockNumber start_block,
                                  uint64_t blobs_tree_size) override;

 private:
  struct Stored {
    BlobId id{};
    std::vector<Hash32> fragment_roots;
    Bytes sealed;
  };
  erasure::NetworkParams params_;
  NodeId node_;
  BlobPaths paths_;
  std::map<BlobIndex, Stored> blobs_;
  Bytes scratch_;
};

}  // namespace cairn::sampling
