#pragma once
// Replica sealing as the store's ReplicaTransform (DESIGN.md section 7): a
// node's stored replica of a blob is its n fragments XOR the blob's mask
// for this node's id (sampling/seal.hpp), so two nodes never hold the same
// bytes. Unsealing any subset of fragments costs one mask computation.
//
// Thread-safe: each thread keeps its own mask buffer.

#include "cairn/erasure/params.hpp"
#include "cairn/shards/ingest.hpp"

namespace cairn::node {

class Sealer final : public shards::ReplicaTransform {
 public:
  Sealer(const erasure::NetworkParams& params, const NodeId& node) : params_(params), node_(node) {}

  shards::FragmentEncoding encoding() const noexcept override { return shards::FragmentEncoding::sealed; }
  void to_stored(const BlobId& id, BlobIndex index, MutableByteSpan replica) const override;
  void from_stored(const BlobId& id, BlobIndex index,
                   std::span<const shards::StoredFragment> fragments) const override;

 private:
  erasure::NetworkParams params_;
  NodeId node_;
};

}  // namespace cairn::node
