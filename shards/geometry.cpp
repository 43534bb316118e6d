#include "cairn/shards/geometry.hpp"

#include <string>

namespace cairn::shards {

Result<ShardId> shard_for(const erasure::NetworkParams& params, BlobIndex index) {
  if (params.blobs_per_shard == 0) {
    return make_error(Errc::invalid_argument, "shard geometry: blobs_per_shard is 0");
  }
  const uint64_t shard = index.value / params.blobs_per_shard;
  if (shard > kMaxShard) {
    return make_error(Errc::invalid_argument, "blob index " + std::to_string(index.value) +
                                                  " lies in shard " + std::to_string(shard) +
                                                  ", beyond the 32-bit shard space");
  }
  return ShardId{static_cast<uint32_t>(shard)};
}

IndexRange shard_range(const erasure::NetworkParams& params, ShardId shard) noexcept {
  const uint64_t per = params.blobs_per_shard;
  const uint64_t s = shard.value;
  const uint64_t begin = (per != 0 && s > UINT64_MAX / per) ? UINT64_MAX : s * per;
  const uint64_t end = (begin > UINT64_MAX - per) ? UINT64_MAX : begin + per;
  return IndexRange{BlobIndex{begin}, BlobIndex{end}};
}

uint64_t offset_in_shard(const erasure::NetworkParams& params, BlobIndex index) noexcept {
  return params.blobs_per_shard == 0 ? 0 : index.value % params.blobs_per_shard;
}

}  // namespace cairn::shards
