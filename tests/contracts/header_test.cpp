// Block headers, the header-chain check a verifier runs against the
// sequencer key, and the append-only Merkle log behind blobs_root proofs.

#include <gtest/gtest.h>

#include "cairn/contracts/header.hpp"
#include "cairn/erasure/sha256.hpp"
#include "chain_test_util.hpp"
#include "merkle_log.hpp"

namespace cairn::contracts {
namespace {

using test::hash_from;
using test::key_from;

std::vector<BlockHeader> make_chain(const SigningKey& sequencer, const Hash32& chain_id, size_t n,
                                    std::mt19937_64& rng) {
  std::vector<BlockHeader> out;
  Hash32 parent{};
  uint64_t blobs = 0;
  for (uint64_t i = 0; i < n; ++i) {
    BlockHeader h;
    h.chain_id = chain_id;
    h.number = BlockNumber{i};
    h.parent_hash = parent;
    h.timestamp_ms = 1'700'000'000'000 + 1000 * i;
    h.tx_root = hash_from(rng);
    h.tx_count = static_cast<uint32_t>(rng() % 100);
    h.blobs_root = hash_from(rng);
    blobs += rng() % 10;
    h.blob_count = blobs;
    h.responses_root = hash_from(rng);
    h.response_count = static_cast<uint32_t>(rng() % 5);
    sign_header(h, sequencer);
    parent = h.hash();
    out.push_back(h);
  }
  return out;
}

TEST(Header, EncodesToTheDocumentedLayout) {
  auto rng = cairn::test::seeded_rng(20);
  const SigningKey seq = key_from(rng);
  const auto chain = make_chain(seq, hash_from(rng), 3, rng);
  const BlockHeader& h = chain[2];
  const Bytes wire = h.encode();
  ASSERT_EQ(wire.size(), kHeaderBytes);
  EXPECT_EQ(wire[0], kHeaderVersion);
  EXPECT_EQ(get_be<uint64_t>(wire.data() + 33), 2u);  // number
  EXPECT_TRUE(std::equal(h.parent_hash.begin(), h.parent_hash.end(), wire.begin() + 41));
  EXPECT_EQ(get_be<uint64_t>(wire.data() + 73), h.timestamp_ms);
  EXPECT_EQ(get_be<uint32_t>(wire.data() + 113), h.tx_count);
  EXPECT_EQ(get_be<uint64_t>(wire.data() + 149), h.blob_count);
  EXPECT_EQ(get_be<uint32_t>(wire.data() + 189), h.response_count);
  auto back = BlockHeader::decode(wire);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, h);
  EXPECT_FALSE(BlockHeader::decode(ByteSpan(wire).first(kHeaderBytes - 1)));
  Bytes v2 = wire;
  v2[0] = 2;
  EXPECT_EQ(BlockHeader::decode(v2).error().code, Errc::unsupported);
  // randomness(b) = SHA-256("cairn/rand" || hash(b)).
  EXPECT_EQ(block_randomness(h.hash()), erasure::sha256({as_bytes("cairn/rand"), h.hash()}));
}

TEST(HeaderChain, AcceptsAGenuineChain) {
  auto rng = cairn::test::seeded_rng(21);
  const SigningKey seq = key_from(rng);
  const Hash32 chain_id = hash_from(rng);
  const auto chain = make_chain(seq, chain_id, 12, rng);
  EXPECT_TRUE(verify_header_chain(chain, seq.public_key(), chain_id));
  // Any window of it too (a proof carries headers e*E .. e*E+D).
  EXPECT_TRUE(verify_header_chain(std::span(chain).subspan(8, 3), seq.public_key(), chain_id));
}

TEST(HeaderChain, DetectsEveryTamperedByte) {
  auto rng = cairn::test::seeded_rng(22);
  const SigningKey seq = key_from(rng);
  const Hash32 chain_id = hash_from(rng);
  const auto chain = make_chain(seq, chain_id, 4, rng);
  // Flip each bit position class of every byte of every header: the check
  // (after decoding what a verifier would receive) must fail.
  for (size_t which = 0; which < chain.size(); ++which) {
    const Bytes wire = chain[which].encode();
    for (size_t pos = 0; pos < wire.size(); ++pos) {
      for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}}) {
        Bytes tampered = wire;
        tampered[pos] ^= mask;
        auto decoded = BlockHeader::decode(tampered);
        if (!decoded) continue;  // the version byte: refused outright
        auto copy = chain;
        copy[which] = *decoded;
        EXPECT_FALSE(verify_header_chain(copy, seq.public_key(), chain_id))
            << "header " << which << " byte " << pos << " mask " << int(mask);
      }
    }
  }
}

TEST(HeaderChain, RejectsWrongKeyGapsAndReordering) {
  auto rng = cairn::test::seeded_rng(23);
  const SigningKey seq = key_from(rng), other = key_from(rng);
  const Hash32 chain_id = hash_from(rng);
  auto chain = make_chain(seq, chain_id, 5, rng);
  EXPECT_EQ(verify_header_chain(chain, other.public_key(), chain_id).error().code,
            Errc::verification_failed);
  Hash32 other_id = chain_id;
  other_id[5] ^= 1;
  EXPECT_FALSE(verify_header_chain(chain, seq.public_key(), other_id));
  auto gap = chain;
  gap.erase(gap.begin() + 2);
  EXPECT_FALSE(verify_header_chain(gap, seq.public_key(), chain_id));
  auto swapped = chain;
  std::swap(swapped[1], swapped[2]);
  EXPECT_FALSE(verify_header_chain(swapped, seq.public_key(), chain_id));
  // A re-signed fork by the right key with a wrong parent link is caught too.
  auto fork = chain;
  fork[3].parent_hash = hash_from(rng);
  sign_header(fork[3], seq);
  EXPECT_FALSE(verify_header_chain(fork, seq.public_key(), chain_id));
  EXPECT_FALSE(verify_header_chain({}, seq.public_key(), chain_id));
}

TEST(MerkleLog, RootsAndProofsMatchTheReferenceTree) {
  auto rng = cairn::test::seeded_rng(24);
  MerkleLog log;
  erasure::MerkleFrontier frontier;
  std::vector<Hash32> leaves;
  EXPECT_EQ(log.root(0), erasure::merkle_root({}));
  for (size_t n = 1; n <= 70; ++n) {
    leaves.push_back(erasure::merkle_leaf_hash(hash_from(rng)));
    log.append(leaves.back());
    frontier.append(leaves.back());
    EXPECT_EQ(log.root(n), frontier.root()) << n;
  }
  // Historical roots and proofs for every earlier size.
  for (uint64_t size = 1; size <= leaves.size(); ++size) {
    const auto prefix = std::span(leaves).first(size);
    const Hash32 root = erasure::merkle_root(prefix);
    ASSERT_EQ(log.root(size), root) << size;
    for (uint64_t i = 0; i < size; ++i) {
      auto proof = log.prove(i, size);
      ASSERT_TRUE(proof);
      EXPECT_EQ(*proof, *erasure::merkle_prove(prefix, i)) << i << " of " << size;
      EXPECT_TRUE(erasure::merkle_verify(root, leaves[i], i, size, *proof));
    }
  }
  EXPECT_FALSE(log.prove(5, 5));
  EXPECT_FALSE(log.prove(0, 71));
}

}  // namespace
}  // namespace cairn::contracts
