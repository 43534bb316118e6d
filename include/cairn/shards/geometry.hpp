#pragma once
// Shard geometry (docs/design.md section 3): shard s holds the blob indexes
// [s * blobs_per_shard, (s + 1) * blobs_per_shard). Shards fill one after
// another, so a shard is a contiguous index range and, in the store, a
// contiguous key range (docs/store-format.md).

#include <cstdint>

#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/erasure/params.hpp"

namespace cairn::shards {

// A half-open range of blob indexes [begin, end).
struct IndexRange {
  BlobIndex begin;
  BlobIndex end;

  uint64_t size() const noexcept { return end.value - begin.value; }
  bool empty() const noexcept { return end.value <= begin.value; }
  bool contains(BlobIndex i) const noexcept { return i >= begin && i < end; }
};

// The highest shard number a store key can name (shards are u32 on disk and
// on the wire).
inline constexpr uint64_t kMaxShard = UINT32_MAX;

// The shard holding `index`. Errc::invalid_argument when the shard number
// would not fit in 32 bits (index / blobs_per_shard > kMaxShard), which
// NetworkParams::shard_of would silently truncate.
Result<ShardId> shard_for(const erasure::NetworkParams& params, BlobIndex index);

// The indexes shard `shard` holds. The last shard's end saturates at
// UINT64_MAX when (shard + 1) * blobs_per_shard overflows.
IndexRange shard_range(const erasure::NetworkParams& params, ShardId shard) noexcept;

// Position of `index` inside its shard: index - first_index(shard_of(index)).
uint64_t offset_in_shard(const erasure::NetworkParams& params, BlobIndex index) noexcept;

}  // namespace cairn::shards
