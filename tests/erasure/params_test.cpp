#include "cairn/erasure/params.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "cairn/erasure/codec.hpp"

namespace cairn::erasure {
namespace {

// Expects validate() to fail with invalid_argument and a message naming `field`.
void expect_rejected(const std::function<void(NetworkParams&)>& change, const std::string& field) {
  NetworkParams p;
  change(p);
  auto status = p.validate();
  ASSERT_FALSE(status) << field;
  EXPECT_EQ(status.error().code, Errc::invalid_argument);
  EXPECT_NE(status.error().message.find(field), std::string::npos) << status.error().message;
  // The codec refuses the same parameters.
  auto codec = Codec::create(p);
  ASSERT_FALSE(codec);
  EXPECT_EQ(codec.error().code, Errc::invalid_argument);
}

TEST(NetworkParams, DefaultsMatchTheDesignAndValidate) {
  const NetworkParams p = NetworkParams::defaults();
  EXPECT_TRUE(p.validate());
  EXPECT_TRUE(NetworkParams::localnet().validate());
  EXPECT_EQ(p.blob_size, 131072u);
  EXPECT_EQ(p.data_fragments, 8u);
  EXPECT_EQ(p.parity_fragments, 4u);
  EXPECT_EQ(p.chunk_size, 1024u);
  EXPECT_EQ(p.total_fragments(), 12u);
  EXPECT_EQ(p.fragment_size(), 16384u);
  EXPECT_EQ(p.chunks_per_fragment(), 16u);
  EXPECT_EQ(p.shard_of(BlobIndex{4095}), ShardId{0});
  EXPECT_EQ(p.shard_of(BlobIndex{4096}), ShardId{1});
  EXPECT_EQ(p.first_index(ShardId{3}), BlobIndex{3 * 4096});
}

TEST(NetworkParams, RejectsMoreThan255Fragments) {
  expect_rejected(
      [](NetworkParams& p) {
        p.data_fragments = 200;
        p.parity_fragments = 56;
        p.blob_size = 200 * 1024;
      },
      "exceeds 255");
  // Huge values must not wrap around into an accepted sum.
  expect_rejected([](NetworkParams& p) { p.parity_fragments = 0xFFFFFFFFu; }, "exceeds 255");
  NetworkParams edge;
  edge.data_fragments = 128;
  edge.parity_fragments = 127;
  edge.blob_size = 128 * 1024;
  EXPECT_TRUE(edge.validate());
  EXPECT_TRUE(Codec::create(edge));
}

TEST(NetworkParams, RejectsBlobsNotDivisibleIntoChunks) {
  expect_rejected([](NetworkParams& p) { p.blob_size = 131071; },
                  "not divisible by data_fragments");
  expect_rejected([](NetworkParams& p) { p.chunk_size = 1000; }, "not a multiple of chunk_size");
  expect_rejected([](NetworkParams& p) { p.chunk_size = 32768; }, "not a multiple of chunk_size");
}

TEST(NetworkParams, RejectsZeroSizes) {
  expect_rejected([](NetworkParams& p) { p.blob_size = 0; }, "blob_size");
  expect_rejected([](NetworkParams& p) { p.data_fragments = 0; }, "data_fragments");
  expect_rejected([](NetworkParams& p) { p.chunk_size = 0; }, "chunk_size");
  expect_rejected([](NetworkParams& p) { p.blobs_per_shard = 0; }, "blobs_per_shard");
  expect_rejected([](NetworkParams& p) { p.epoch_blocks = 0; }, "epoch_blocks");
  expect_rejected([](NetworkParams& p) { p.walk_steps = 0; }, "walk_steps");
}

TEST(NetworkParams, RejectsOtherImpossibleCombinations) {
  expect_rejected([](NetworkParams& p) { p.blob_size = NetworkParams::kMaxBlobSize + 8; },
                  "exceeds");
  expect_rejected([](NetworkParams& p) { p.deadline_blocks = p.epoch_blocks; }, "deadline_blocks");
  expect_rejected([](NetworkParams& p) { p.openings = p.walk_steps; }, "openings");
  // 2^31 openings used to wrap to 0 in 32-bit arithmetic and pass.
  expect_rejected([](NetworkParams& p) { p.openings = 0x80000000u; }, "openings");
}

}  // namespace
}  // namespace cairn::erasure
