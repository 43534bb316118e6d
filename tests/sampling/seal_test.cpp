#include "cairn/sampling/seal.hpp"

#include <gtest/gtest.h>

#include "erasure/test_params.hpp"
#include "support/test_util.hpp"

namespace cairn::sampling {
namespace {

erasure::NetworkParams seal_params() {
  auto p = cairn::test::blob_geometry(4, 2, 8192, 512);
  p.seal_cost = 2;
  return p;
}

size_t replica_size(const erasure::NetworkParams& p) {
  return size_t{p.total_fragments()} * p.fragment_size();
}

SealKey key_for(uint8_t node, uint8_t blob, uint64_t index) {
  SealKey k;
  k.node.bytes.fill(node);
  k.commitment.bytes.fill(blob);
  k.index = BlobIndex{index};
  return k;
}

// Fraction of positions where two equal-length buffers differ.
double differing(ByteSpan a, ByteSpan b) {
  size_t d = 0;
  for (size_t i = 0; i < a.size(); ++i) d += a[i] != b[i];
  return static_cast<double>(d) / static_cast<double>(a.size());
}

TEST(Seal, SealThenUnsealRestoresTheReplica) {
  auto params = seal_params();
  auto rng = cairn::test::seeded_rng(1);
  const Bytes original = cairn::test::random_bytes(rng, replica_size(params));
  Bytes replica = original;
  Bytes scratch;
  apply_replica_mask(params, key_for(1, 2, 3), replica, scratch);
  EXPECT_GT(differing(original, replica), 0.99);
  apply_replica_mask(params, key_for(1, 2, 3), replica, scratch);
  EXPECT_EQ(replica, original);
}

TEST(Seal, TwoNodesStoreDifferentBytesForTheSameBlob) {
  auto params = seal_params();
  auto rng = cairn::test::seeded_rng(2);
  const Bytes original = cairn::test::random_bytes(rng, replica_size(params));
  Bytes a = original, b = original, scratch;
  apply_replica_mask(params, key_for(1, 9, 7), a, scratch);
  apply_replica_mask(params, key_for(2, 9, 7), b, scratch);
  // Independent masks: about 255/256 of bytes differ.
  EXPECT_GT(differing(a, b), 0.99);
}

TEST(Seal, EveryInputChangesTheWholeMask) {
  auto params = seal_params();
  Bytes base(replica_size(params)), other(replica_size(params));
  replica_mask(params, key_for(1, 2, 3), base);
  for (const SealKey& k : {key_for(5, 2, 3), key_for(1, 6, 3), key_for(1, 2, 4)}) {
    replica_mask(params, k, other);
    EXPECT_GT(differing(base, other), 0.99);
  }
  auto costlier = params;
  costlier.seal_cost = 3;
  replica_mask(costlier, key_for(1, 2, 3), other);
  EXPECT_GT(differing(base, other), 0.99);
  // A single flipped bit in the node id changes every chunk of the mask.
  SealKey flipped = key_for(1, 2, 3);
  flipped.node.bytes[31] ^= 1;
  replica_mask(params, flipped, other);
  for (size_t c = 0; c < base.size() / params.chunk_size; ++c) {
    ByteSpan x = ByteSpan(base).subspan(c * params.chunk_size, params.chunk_size);
    ByteSpan y = ByteSpan(other).subspan(c * params.chunk_size, params.chunk_size);
    EXPECT_GT(differing(x, y), 0.95) << "chunk " << c;
  }
}

TEST(Seal, MaskIsDeterministicAndPinnedByATestVector) {
  auto params = erasure::NetworkParams::defaults();
  params.seal_cost = 2;
  Bytes a(replica_size(params)), b(replica_size(params));
  replica_mask(params, key_for(0x11, 0x22, 42), a);
  replica_mask(params, key_for(0x11, 0x22, 42), b);
  EXPECT_EQ(a, b);
  // Stored replicas depend on this construction (docs/proof-format.md):
  // a change here must come with a new kSealVersion.
  EXPECT_EQ(to_hex(ByteSpan(a).first(16)), "e1e536813aa5cec9ab632ce10022f645");
}

}  // namespace
}  // namespace cairn::sampling
