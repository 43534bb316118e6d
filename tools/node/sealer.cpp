#include "node/sealer.hpp"

#include "cairn/sampling/seal.hpp"

namespace cairn::node {
namespace {
// One mask-sized buffer per thread (workers seal blob after blob).
Bytes& scratch() {
  thread_local Bytes buf;
  return buf;
}
}  // namespace

void Sealer::to_stored(const BlobId& id, BlobIndex index, MutableByteSpan replica) const {
  sampling::apply_replica_mask(params_, sampling::SealKey{node_, id, index}, replica, scratch());
}

void Sealer::from_stored(const BlobId& id, BlobIndex index,
                         std::span<const shards::StoredFragment> fragments) const {
  if (fragments.empty()) return;
  Bytes& mask = scratch();
  const size_t fs = params_.fragment_size();
  mask.resize(size_t{params_.total_fragments()} * fs);
  sampling::replica_mask(params_, sampling::SealKey{node_, id, index}, mask);
  for (const shards::StoredFragment& f : fragments) {
    const uint8_t* m = mask.data() + size_t{f.index.value} * fs;
    for (size_t i = 0; i < f.bytes.size() && i < fs; ++i) f.bytes[i] ^= m[i];
  }
}

}  // namespace cairn::node
