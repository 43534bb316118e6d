#include "cairn/erasure/merkle.hpp"

#include <gtest/gtest.h>

#include "cairn/erasure/sha256.hpp"
#include "support/test_util.hpp"

namespace cairn::erasure {
namespace {

std::vector<Hash32> leaves(size_t n) {
  std::vector<Hash32> out;
  for (size_t i = 0; i < n; ++i) {
    uint8_t b[8];
    put_be<uint64_t>(b, i);
    out.push_back(merkle_leaf_hash(ByteSpan(b, 8)));
  }
  return out;
}

TEST(Sha256, KnownVector) {
  EXPECT_EQ(to_hex(sha256(as_bytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(to_hex(sha256(ByteSpan{})),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Merkle, Rfc6962ShapeForThreeLeaves) {
  auto l = leaves(3);
  EXPECT_EQ(merkle_root(l), merkle_node_hash(merkle_node_hash(l[0], l[1]), l[2]));
  EXPECT_EQ(merkle_root(std::span<const Hash32>(l).first(1)), l[0]);
}

TEST(Merkle, EveryProofVerifiesForManyTreeSizes) {
  for (size_t n = 1; n <= 70; ++n) {
    auto l = leaves(n);
    const Hash32 root = merkle_root(l);
    for (size_t i = 0; i < n; ++i) {
      auto proof = merkle_prove(l, i);
      ASSERT_TRUE(proof) << n << " " << i;
      EXPECT_TRUE(merkle_verify(root, l[i], i, n, *proof)) << "n=" << n << " i=" << i;
      auto parsed = MerkleProof::parse(proof->serialize());
      ASSERT_TRUE(parsed);
      EXPECT_EQ(*parsed, *proof);
      // The same leaf claimed at another index or tree size fails.
      // The same leaf claimed at another index, or in a tree of another size, fails.
      if (n > 1) {
        EXPECT_FALSE(merkle_verify(root, l[i], (i + 1) % n, n, *proof));
        MerkleProof moved = *proof;
        moved.index = (i + 1) % n;
        EXPECT_FALSE(merkle_verify(root, l[i], moved.index, n, moved));
      }
      EXPECT_FALSE(merkle_verify(root, l[i], i, n + 1, *proof));
    }
  }
}

TEST(Merkle, AnySingleFlippedBitIsRejected) {
  auto l = leaves(13);
  const Hash32 root = merkle_root(l);
  for (size_t i = 0; i < l.size(); ++i) {
    auto proof = *merkle_prove(l, i);
    for (size_t bit = 0; bit < 256; ++bit) {
      Hash32 leaf = l[i];
      leaf[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
      EXPECT_FALSE(merkle_verify(root, leaf, i, l.size(), proof));
      Hash32 bad_root = root;
      bad_root[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
      EXPECT_FALSE(merkle_verify(bad_root, l[i], i, l.size(), proof));
      for (size_t p = 0; p < proof.path.size(); ++p) {
        MerkleProof bad = proof;
        bad.path[p][bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
        EXPECT_FALSE(merkle_verify(root, l[i], i, l.size(), bad));
      }
    }
    // And every bit of the serialized proof.
    Bytes wire = proof.serialize();
    for (size_t bit = 0; bit < wire.size() * 8; ++bit) {
      Bytes w = wire;
      w[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
      auto parsed = MerkleProof::parse(w);
      if (parsed) {
        EXPECT_FALSE(merkle_verify(root, l[i], i, l.size(), *parsed)) << "bit " << bit;
      }
    }
  }
}

TEST(Merkle, ParseRejectsTruncatedAndOversizedInput) {
  auto l = leaves(9);
  Bytes wire = merkle_prove(l, 4)->serialize();
  for (size_t n = 0; n < wire.size(); ++n) {
    EXPECT_FALSE(MerkleProof::parse(ByteSpan(wire).first(n))) << n;
  }
  wire.push_back(0);
  EXPECT_FALSE(MerkleProof::parse(wire));
  Bytes deep(17, 0);
  deep[16] = 65;
  EXPECT_FALSE(MerkleProof::parse(deep));
}

TEST(MerkleFrontier, MatchesFullRootAtEverySizeAndRoundTrips) {
  MerkleFrontier f;
  std::vector<Hash32> all;
  EXPECT_EQ(f.root(), merkle_root(all));
  auto l = leaves(300);
  for (const auto& h : l) {
    f.append(h);
    all.push_back(h);
    ASSERT_EQ(f.root(), merkle_root(all)) << all.size();
    auto copy = MerkleFrontier::parse(f.serialize());
    ASSERT_TRUE(copy);
    ASSERT_EQ(copy->root(), f.root());
  }
  Bytes bad = f.serialize();
  bad.pop_back();
  EXPECT_FALSE(MerkleFrontier::parse(bad));
}

}  // namespace
}  // namespace cairn::erasure
