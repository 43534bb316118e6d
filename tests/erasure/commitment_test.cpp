#include "cairn/erasure/commitment.hpp"

#include <gtest/gtest.h>

#include "cairn/erasure/codec.hpp"
#include "cairn/erasure/sha256.hpp"
#include "erasure/test_params.hpp"
#include "support/test_util.hpp"

namespace cairn::erasure {
namespace {

// Fragments of 1536 bytes, 6 chunks each: a tree that is not a power of two.
NetworkParams small_params() { return test::blob_geometry(4, 3, 4 * 1536, 256); }

struct Fixture {
  NetworkParams params;
  std::shared_ptr<const Codec> codec;
  Bytes payload;
  CommittedBlob blob;

  explicit Fixture(const NetworkParams& p, size_t length, uint64_t salt) : params(p) {
    codec = *Codec::create(p);
    auto rng = test::seeded_rng(salt);
    payload = test::random_bytes(rng, length);
    blob = *encode_and_commit(*codec, payload);
  }
};

void flip(MutableByteSpan bytes, size_t bit) {
  bytes[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
}

TEST(Commitment, IsTheRootOverFragmentRootsOfChunkLeaves) {
  Fixture f(small_params(), 5000, 1);
  const auto& c = f.blob.commitment;
  ASSERT_EQ(c.fragment_roots.size(), 7u);
  EXPECT_EQ(c.chunk_size, 256u);
  std::vector<Hash32> root_leaves;
  for (uint32_t i = 0; i < 7; ++i) {
    std::vector<Hash32> chunk_leaves;
    for (uint32_t j = 0; j < 6; ++j) {
      chunk_leaves.push_back(merkle_leaf_hash(f.blob.encoded.fragment(i).subspan(j * 256, 256)));
    }
    EXPECT_EQ(c.fragment_roots[i], merkle_root(chunk_leaves)) << i;
    root_leaves.push_back(merkle_leaf_hash(c.fragment_roots[i]));
  }
  EXPECT_EQ(c.id.bytes, merkle_root(root_leaves));
  EXPECT_EQ(commitment_from_roots(c.fragment_roots), c.id);
}

TEST(Commitment, SameBytesSameIdAndLengthIsNotPartOfIt) {
  Fixture f(small_params(), 5000, 2);
  auto again = encode_and_commit(*f.codec, f.payload);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->commitment.id, f.blob.commitment.id);
  // Zero padding is implicit: the id alone does not fix the length, which
  // travels beside it (registry, manifest).
  Bytes padded = f.payload;
  padded.push_back(0);
  EXPECT_EQ(encode_and_commit(*f.codec, padded)->commitment.id, f.blob.commitment.id);
  Bytes changed = f.payload;
  changed[4999] ^= 1;
  EXPECT_NE(encode_and_commit(*f.codec, changed)->commitment.id, f.blob.commitment.id);
}

// The worked example of docs/blob-format.md: k=2, m=1, 8-byte blobs, 2-byte
// chunks, payload "cairn".
TEST(Commitment, WorkedExampleFromTheDocs) {
  auto codec = *Codec::create(test::blob_geometry(2, 1, 8, 2));
  auto blob = encode_and_commit(*codec, as_bytes("cairn"));
  ASSERT_TRUE(blob);
  EXPECT_EQ(to_hex(blob->encoded.data), "636169726e0000006ebeba39");
  EXPECT_EQ(to_hex(blob->encoded.fragment(2)), "6ebeba39");
  const uint8_t chunk0[] = {0x00, 'c', 'a'};
  EXPECT_EQ(merkle_leaf_hash(as_bytes("ca")), sha256(ByteSpan(chunk0, 3)));
  EXPECT_EQ(to_hex(blob->commitment.fragment_roots[0]),
            "7405df6af79cadacc1adfb3b60a34d9af45e441db79c96f7a3a63bc9b1016383");
  EXPECT_EQ(to_hex(blob->commitment.fragment_roots[1]),
            "8622f6ab0f2db41d9ef47eca8a1d1679f453f75349093dd6146e9882e80bfe98");
  EXPECT_EQ(to_hex(blob->commitment.fragment_roots[2]),
            "8880ea1ca23b21ae78247c8deed198ab8ecdd74fca0d7666ae4d2a253fb3252f");
  EXPECT_EQ(blob->commitment.id.hex(),
            "d5ad5291c60c6c6e863ec62a7364152ffdf2fea908a335010f0f59f209603360");
}

// Fixed ids with the default parameters: a change to the codec matrix, the
// chunking or the hashing shows up here.
TEST(Commitment, DefaultParameterVectors) {
  auto codec = *Codec::create(NetworkParams::defaults());
  EXPECT_EQ(encode_and_commit(*codec, ByteSpan{})->commitment.id.hex(),
            "b88bce871ab4283a954f3db5544f335ffd4e904e9d5ea2a6e4ed81f527529f2c");
  EXPECT_EQ(encode_and_commit(*codec, as_bytes("hello, cairn\n"))->commitment.id.hex(),
            "a1532e9195cb35e0fea40888e9c4013c7e2b9cf0ef744063097ddf4c294b336f");
}

TEST(Commitment, EveryFragmentProofVerifiesAndTamperingFails) {
  Fixture f(small_params(), 6000, 3);
  const auto& c = f.blob.commitment;
  const BlobId& id = c.id;
  for (uint32_t i = 0; i < 7; ++i) {
    auto proof = prove_fragment(c, i);
    ASSERT_TRUE(proof);
    Bytes fragment(f.blob.encoded.fragment(i).begin(), f.blob.encoded.fragment(i).end());
    EXPECT_TRUE(verify_fragment(f.params, id, i, fragment, *proof)) << i;
    EXPECT_FALSE(verify_fragment(f.params, id, (i + 1) % 7, fragment, *proof)) << i;
    for (size_t byte : {size_t{0}, size_t{700}, fragment.size() - 1}) {
      fragment[byte] ^= 0x40;
      EXPECT_FALSE(verify_fragment(f.params, id, i, fragment, *proof)) << i << " byte " << byte;
      fragment[byte] ^= 0x40;
    }
    // A fragment of the wrong size never verifies.
    Bytes longer = fragment;
    longer.resize(fragment.size() + 256);
    EXPECT_FALSE(verify_fragment(f.params, id, i, longer, *proof));
    // Any flipped bit in the proof path fails.
    for (size_t p = 0; p < proof->path.size(); ++p) {
      MerkleProof bad = *proof;
      flip(bad.path[p], (p * 37 + i) % 256);
      EXPECT_FALSE(verify_fragment(f.params, id, i, fragment, bad));
    }
    // A proof that claims another tree size does not help.
    MerkleProof resized = *proof;
    resized.tree_size = 8;
    EXPECT_FALSE(verify_fragment(f.params, id, i, fragment, resized));
  }
  EXPECT_FALSE(prove_fragment(c, 7));
}

TEST(Commitment, ProofTreeSizeComesFromTheParameters) {
  // With 3 fragments, fragment 2 hangs directly under the root, exactly where
  // fragment 1 of a 2-leaf tree would be: only the caller's n tells them apart.
  Fixture f(test::blob_geometry(2, 1, 2048, 256), 2000, 4);
  auto proof = *prove_fragment(f.blob.commitment, 2);
  MerkleProof forged = proof;
  forged.index = 1;
  forged.tree_size = 2;
  EXPECT_TRUE(merkle_verify(f.blob.commitment.id.bytes,
                            merkle_leaf_hash(f.blob.commitment.fragment_roots[2]), 1, 2, forged));
  EXPECT_FALSE(
      verify_fragment(f.params, f.blob.commitment.id, 1, f.blob.encoded.fragment(2), forged));
  EXPECT_TRUE(
      verify_fragment(f.params, f.blob.commitment.id, 2, f.blob.encoded.fragment(2), proof));
}

TEST(Commitment, EveryChunkProofVerifiesAndTamperingFails) {
  Fixture f(small_params(), 6144, 5);
  const BlobId& id = f.blob.commitment.id;
  for (uint32_t i = 0; i < 7; ++i) {
    for (uint32_t j = 0; j < 6; ++j) {
      auto proof = prove_chunk(f.blob.encoded, f.blob.commitment, i, j);
      ASSERT_TRUE(proof) << proof.error().to_string();
      Bytes chunk(f.blob.encoded.fragment(i).subspan(j * 256, 256).begin(),
                  f.blob.encoded.fragment(i).subspan(j * 256, 256).end());
      ASSERT_TRUE(verify_chunk(f.params, id, i, j, chunk, *proof)) << i << "/" << j;
      EXPECT_FALSE(verify_chunk(f.params, id, i, (j + 1) % 6, chunk, *proof));
      EXPECT_FALSE(verify_chunk(f.params, id, (i + 1) % 7, j, chunk, *proof));
      chunk[(i * 6 + j) % 256] ^= 0x01;
      EXPECT_FALSE(verify_chunk(f.params, id, i, j, chunk, *proof));
      chunk[(i * 6 + j) % 256] ^= 0x01;
      ChunkProof bad_root = *proof;
      flip(bad_root.fragment_root, i * 6 + j);
      EXPECT_FALSE(verify_chunk(f.params, id, i, j, chunk, bad_root));
      chunk.pop_back();
      EXPECT_FALSE(verify_chunk(f.params, id, i, j, chunk, *proof));

      // Compact form round-trips, and any flipped bit is caught.
      Bytes wire = proof->serialize();
      auto parsed = ChunkProof::parse(wire);
      ASSERT_TRUE(parsed);
      EXPECT_EQ(*parsed, *proof);
      chunk.assign(f.blob.encoded.fragment(i).subspan(j * 256, 256).begin(),
                   f.blob.encoded.fragment(i).subspan(j * 256, 256).end());
      for (size_t bit = 0; bit < wire.size() * 8; bit += 7) {
        Bytes w = wire;
        flip(w, bit);
        auto p = ChunkProof::parse(w);
        if (p) {
          EXPECT_FALSE(verify_chunk(f.params, id, i, j, chunk, *p)) << "bit " << bit;
        }
      }
    }
  }
  EXPECT_FALSE(prove_chunk(f.blob.encoded, f.blob.commitment, 7, 0));
  EXPECT_FALSE(prove_chunk(f.blob.encoded, f.blob.commitment, 0, 6));
}

TEST(Commitment, ChunkProofParseRejectsTruncationAndTrailingBytes) {
  Fixture f(small_params(), 100, 6);
  Bytes wire = prove_chunk(f.blob.encoded, f.blob.commitment, 3, 2)->serialize();
  for (size_t n = 0; n < wire.size(); ++n)
    EXPECT_FALSE(ChunkProof::parse(ByteSpan(wire).first(n))) << n;
  wire.push_back(0);
  EXPECT_FALSE(ChunkProof::parse(wire));
}

TEST(Commitment, VerifyBlobAcceptsHonestBlobsAndRejectsTampering) {
  Fixture f(NetworkParams::defaults(), 100000, 7);
  const BlobId id = f.blob.commitment.id;
  EXPECT_TRUE(verify_blob(*f.codec, f.blob.encoded, id));

  auto expect_rejected = [&](const EncodedBlob& b, const std::string& why) {
    auto s = verify_blob(*f.codec, b, id);
    ASSERT_FALSE(s) << why;
    EXPECT_EQ(s.error().code, Errc::verification_failed) << why;
    EXPECT_NE(s.error().message.find(why), std::string::npos) << s.error().message;
  };
  EncodedBlob tampered = f.blob.encoded;
  tampered.fragment(2)[17] ^= 0x80;  // data: parity no longer matches either
  expect_rejected(tampered, "parity fragment");

  tampered = f.blob.encoded;
  tampered.fragment(10)[500] ^= 0x01;  // parity only
  expect_rejected(tampered, "parity fragment 10");

  // Data changed and parity re-encoded consistently: the commitment catches it.
  tampered = f.blob.encoded;
  tampered.fragment(0)[0] ^= 0x01;
  ASSERT_TRUE(f.codec->encode_parity(tampered));
  expect_rejected(tampered, "commit to");

  // Bytes hidden in the padding.
  tampered = f.blob.encoded;
  tampered.data[100005] = 1;
  ASSERT_TRUE(f.codec->encode_parity(tampered));
  expect_rejected(tampered, "non-zero padding");

  auto other = encode_and_commit(*f.codec, as_bytes("other"));
  auto s = verify_blob(*f.codec, other->encoded, id);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Errc::verification_failed);

  EncodedBlob wrong_shape = f.blob.encoded;
  wrong_shape.fragments = 11;
  wrong_shape.data.resize(11 * wrong_shape.fragment_size);
  auto shape = verify_blob(*f.codec, wrong_shape, id);
  ASSERT_FALSE(shape);
  EXPECT_EQ(shape.error().code, Errc::invalid_argument);
}

}  // namespace
}  // namespace cairn::erasure
