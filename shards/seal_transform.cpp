#include "cairn/shards/seal_transform.hpp"

#include <cstddef>

#include "cairn/sampling/seal.hpp"

namespace cairn::shards {

SealingTransform::SealingTransform(const erasure::NetworkParams& params, const NodeId& node)
    : params_(params), node_(node) {}

void SealingTransform::to_stored(const BlobId& id, BlobIndex index, MutableByteSpan replica) const {
  // One mask buffer per thread: workers seal blob after blob.
  thread_local Bytes scratch;
  sampling::apply_replica_mask(params_, sampling::SealKey{node_, id, index}, replica, scratch);
}

void SealingTransform::from_stored(const BlobId& id, BlobIndex index,
                                   std::span<const StoredFragment> fragments) const {
  if (fragments.empty()) return;
  thread_local Bytes mask;
  const size_t fragment_size = params_.fragment_size();
  mask.resize(size_t{params_.total_fragments()} * fragment_size);
  sampling::replica_mask(params_, sampling::SealKey{node_, id, index}, mask);
  for (const StoredFragment& f : fragments) {
    // A slice outside the replica is a caller bug; never touch memory for it.
    if (f.index.value >= params_.total_fragments() || f.bytes.size() > fragment_size) continue;
    const uint8_t* m = mask.data() + size_t{f.index.value} * fragment_size;
    uint8_t* b = f.bytes.data();
    for (size_t i = 0; i < f.bytes.size(); ++i) b[i] ^= m[i];
  }
}

}  // namespace cairn::shards
