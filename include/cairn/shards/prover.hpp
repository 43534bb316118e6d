#pragma once
// The storage-challenge prover over the node's store (docs/design.md section 7):
// a sampling::ProverSource reading the sealed replica this node keeps in
// its shards::Store (the SealingTransform's output) and opening chunks from
// it. blobs_root paths come from the caller (the node asks the chain's
// blob_inclusion; the challenge bench its own blob list).

#include <functional>

#include "cairn/sampling/walk.hpp"
#include "cairn/shards/store.hpp"

namespace cairn::shards {

// Not thread-safe (one walk or opening at a time: it reuses an unsealing
// buffer); several provers over one Store may run at once. Every call
// blocks on RocksDB: run it on a worker thread.
class StoreProver final : public sampling::ProverSource {
 public:
  // The path of the commitment at `index` in blobs_root of block `block`
  // (tree size `tree_size`, that block's blob_count). not_found when the
  // blob did not exist at that block.
  using BlobPaths = std::function<Result<erasure::MerkleProof>(BlobIndex index, BlockNumber block,
                                                               uint64_t tree_size)>;

  // `store` must hold this node's sealed replicas (FragmentEncoding::sealed
  // for `node`) and outlive the prover.
  StoreProver(const Store& store, const NodeId& node, BlobPaths paths);

  // The chunk's bytes from the stored sealed fragment. not_found when the
  // blob or the fragment is not held; corruption / io_error from the store.
  Status read_sealed_chunk(sampling::ChunkPosition pos, MutableByteSpan out) override;
  // Unseals the chunk's fragment (one mask computation) and proves it:
  // sampling::open_from_sealed_fragment with the blob's stored record.
  Result<sampling::ChunkOpening> open_chunk(sampling::ChunkPosition pos, BlockNumber start_block,
                                            uint64_t blobs_tree_size) override;

 private:
  const Store& store_;
  erasure::NetworkParams params_;
  NodeId node_;
  BlobPaths paths_;
  Bytes scratch_;
};

}  // namespace cairn::shards
