#pragma once
// The production ReplicaTransform: replica sealing of sampling/seal.hpp
// (docs/design.md section 7) behind the store's transform hook. Every blob this
// node stores is kept as its n fragments XOR the node's mask for that blob,
// so two nodes holding the same blob hold different bytes.

#include "cairn/core/ids.hpp"
#include "cairn/erasure/params.hpp"
#include "cairn/shards/ingest.hpp"

namespace cairn::shards {

// Thread-safe and stateless apart from per-thread scratch buffers (one blob
// mask, n * fragment_size bytes, per thread that seals or unseals).
class SealingTransform final : public ReplicaTransform {
 public:
  // `params` must be the store's network parameters (seal_cost included:
  // changing it changes every mask, so a store must keep the one it sealed
  // with).
  SealingTransform(const erasure::NetworkParams& params, const NodeId& node);

  FragmentEncoding encoding() const noexcept override { return FragmentEncoding::sealed; }
  // One mask computation per call.
  void to_stored(const BlobId& id, BlobIndex index, MutableByteSpan replica) const override;
  // One mask computation per call, whichever fragments are given.
  void from_stored(const BlobId& id, BlobIndex index,
                   std::span<const StoredFragment> fragments) const override;

  const NodeId& node() const noexcept { return node_; }

 private:
  erasure::NetworkParams params_;
  NodeId node_;
};

}  // namespace cairn::shards
