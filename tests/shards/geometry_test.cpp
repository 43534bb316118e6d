// Shard geometry: which shard holds an index, and which indexes a shard holds.

#include <gtest/gtest.h>

#include "cairn/shards/geometry.hpp"

namespace cairn::shards {
namespace {

TEST(Geometry, ShardsAreContiguousIndexRanges) {
  const auto p = erasure::NetworkParams::defaults();  // 4096 blobs per shard
  EXPECT_EQ(*shard_for(p, BlobIndex{0}), ShardId{0});
  EXPECT_EQ(*shard_for(p, BlobIndex{4095}), ShardId{0});
  EXPECT_EQ(*shard_for(p, BlobIndex{4096}), ShardId{1});
  EXPECT_EQ(*shard_for(p, BlobIndex{3 * 4096 + 17}), ShardId{3});

  const IndexRange r = shard_range(p, ShardId{3});
  EXPECT_EQ(r.begin, BlobIndex{3 * 4096});
  EXPECT_EQ(r.end, BlobIndex{4 * 4096});
  EXPECT_EQ(r.size(), 4096u);
  EXPECT_TRUE(r.contains(BlobIndex{3 * 4096}));
  EXPECT_TRUE(r.contains(BlobIndex{4 * 4096 - 1}));
  EXPECT_FALSE(r.contains(BlobIndex{4 * 4096}));
  EXPECT_EQ(offset_in_shard(p, BlobIndex{3 * 4096 + 17}), 17u);

  // Every index of a shard maps back to that shard (localnet geometry).
  const auto local = erasure::NetworkParams::localnet();
  for (uint32_t s : {0u, 1u, 7u}) {
    const IndexRange lr = shard_range(local, ShardId{s});
    EXPECT_EQ(lr.size(), 256u);
    for (uint64_t i = lr.begin.value; i < lr.end.value; ++i) {
      ASSERT_EQ(*shard_for(local, BlobIndex{i}), ShardId{s}) << i;
    }
  }
}

TEST(Geometry, ShardNumbersBeyond32BitsAreRefused) {
  auto p = erasure::NetworkParams::defaults();
  p.blobs_per_shard = 1;
  EXPECT_EQ(*shard_for(p, BlobIndex{UINT32_MAX}), ShardId{UINT32_MAX});
  auto r = shard_for(p, BlobIndex{uint64_t{UINT32_MAX} + 1});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
}

TEST(Geometry, RangesSaturateAtTheEndOfTheIndexSpace) {
  auto p = erasure::NetworkParams::defaults();
  p.blobs_per_shard = uint64_t{1} << 33;
  // Shard 2^31 - 1 ends exactly at 2^64: its end saturates.
  const IndexRange last = shard_range(p, ShardId{(1u << 31) - 1});
  EXPECT_EQ(last.begin.value, UINT64_MAX - (uint64_t{1} << 33) + 1);
  EXPECT_EQ(last.end.value, UINT64_MAX);
  // Shard 2^31 would begin past the index space: an empty range.
  EXPECT_TRUE(shard_range(p, ShardId{1u << 31}).empty());
}

}  // namespace
}  // namespace cairn::shards
