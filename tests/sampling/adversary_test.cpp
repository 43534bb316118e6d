// Nodes that do not hold what they claim, over many seeded epochs: a node
// that lost part of its replica, a node that keeps only plain data and
// computes masks for some steps, a node walking another identity's replica.
// Each builds a complete, signed response with the best strategy we know for
// it; verification must refuse it at the rates docs/proof-format.md states.

#include <gtest/gtest.h>

#include <cmath>
#include <iostream>

#include "cairn/erasure/sha256.hpp"
#include "cairn/sampling/seal.hpp"
#include "sampling_test_util.hpp"

namespace cairn::sampling {
namespace {

using test::small_params;
using test::TestNode;

// Deterministic coin for a chunk position: true with probability `p`.
bool coin(uint64_t salt, ChunkPosition pos, double p) {
  uint8_t buf[20];
  put_be<uint64_t>(buf, salt);
  put_be<uint64_t>(buf + 8, pos.blob.value);
  put_be<uint32_t>(buf + 16, pos.chunk);
  const Hash32 h = erasure::sha256(ByteSpan(buf, sizeof buf));
  return static_cast<double>(get_be<uint64_t>(h.data())) < p * 18446744073709551616.0;
}

// Blobs, their plain encodings, and an epoch challenge with fresh seeded
// randomness per epoch (no chain needed: verify_response takes the
// challenge and the anchor's randomness directly).
struct Field {
  erasure::NetworkParams params = small_params();
  BlobLog log;
  std::vector<erasure::CommittedBlob> blobs;
  std::mt19937_64 rng;

  Field(size_t count, uint64_t salt) : rng(cairn::test::seeded_rng(salt)) {
    blobs = test::random_blobs(params, rng, count);
    for (const auto& b : blobs) log.append(b.commitment.id);
  }
  MemoryReplica::BlobPaths paths() {
    return [this](BlobIndex i, BlockNumber, uint64_t size) { return log.prove(i, size); };
  }
  std::unique_ptr<TestNode> node() {
    auto n = std::make_unique<TestNode>(params, rng, paths());
    for (size_t j = 0; j < blobs.size(); ++j) n->replica->add(BlobIndex{j}, blobs[j]);
    return n;
  }
  EpochChallenge epoch(uint64_t e) {
    EpochChallenge c;
    c.params = params;
    c.shard = ShardId{0};
    c.epoch = Epoch{e};
    c.start_block = BlockNumber{e * params.epoch_blocks};
    for (auto& b : c.randomness) b = static_cast<uint8_t>(rng());
    c.first_blob = BlobIndex{0};
    c.blob_count = blobs.size();
    c.blobs_root = *log.root(blobs.size());
    c.blobs_tree_size = blobs.size();
    return c;
  }
  Hash32 randomness() {
    Hash32 h;
    for (auto& b : h) b = static_cast<uint8_t>(rng());
    return h;
  }
};

// Opens a finished transcript against fresh anchor randomness and verifies.
bool passes(Field& field, const EpochChallenge& c, WalkTranscript& t, ProverSource& source,
            const SigningKey& key) {
  const Hash32 anchor = field.randomness();
  auto resp = open_response(t, BlockNumber{c.start_block.value + 1}, anchor, source, key);
  EXPECT_TRUE(resp) << resp.error().to_string();
  return resp && verify_response(c, *resp, anchor).has_value();
}

// A node that lost a fraction of its replica's chunks (sealed and plain).
// For a lost chunk it reads its nearest surviving chunk of the same blob
// instead, and opens that one when asked: the most plausible forgery it has.
class LossyReplica final : public ProverSource {
 public:
  LossyReplica(MemoryReplica& inner, uint32_t replica_chunks, double lost, uint64_t salt)
      : inner_(inner), chunks_(replica_chunks), lost_(lost), salt_(salt) {}
  bool lost(ChunkPosition pos) const { return coin(salt_, pos, lost_); }
  ChunkPosition substitute(ChunkPosition pos) const {
    for (uint32_t d = 0; d < chunks_ && lost(pos); ++d) pos.chunk = (pos.chunk + 1) % chunks_;
    return pos;
  }
  Status read_sealed_chunk(ChunkPosition pos, MutableByteSpan out) override {
    return inner_.read_sealed_chunk(substitute(pos), out);
  }
  Result<ChunkOpening> open_chunk(ChunkPosition pos, BlockNumber b, uint64_t size) override {
    return inner_.open_chunk(substitute(pos), b, size);
  }

 private:
  MemoryReplica& inner_;
  uint32_t chunks_;
  double lost_;
  uint64_t salt_;
};

TEST(Adversary, NodeMissing30PercentOfItsReplicaFailsNearlyEveryEpoch) {
  Field field(8, 41);
  auto node = field.node();
  const uint32_t chunks = field.params.total_fragments() * field.params.chunks_per_fragment();
  int passed_substitute = 0, passed_reroll = 0, passed_honest = 0;
  const int epochs = 200;
  for (int e = 1; e <= epochs; ++e) {
    LossyReplica lossy(*node->replica, chunks, 0.30, 1000 + static_cast<uint64_t>(e));
    const EpochChallenge c = field.epoch(static_cast<uint64_t>(e));

    // Strategy 1: walk on, reading a surviving chunk where one is lost.
    auto t1 = run_walk(c, node->id(), lossy);
    ASSERT_TRUE(t1);
    passed_substitute += passes(field, c, *t1, lossy, node->key);

    // Strategy 2: where the walk hits a lost chunk, restart it from a
    // ground state that lands on a surviving chunk: every leaf is genuine,
    // only the link into the restarted step is broken.
    WalkTranscript t2(c, node->id());
    Hash32 state = t2.initial_state();
    Bytes chunk(field.params.chunk_size);
    while (!t2.complete()) {
      Hash32 from = state;
      for (uint32_t k = 0; lossy.lost(step_position(c, from)); ++k) {
        uint8_t k_be[4];
        put_be<uint32_t>(k_be, k);
        from = erasure::sha256({state, ByteSpan(k_be, 4)});
      }
      ASSERT_TRUE(lossy.read_sealed_chunk(step_position(c, from), chunk));
      state = t2.append(from, chunk);
    }
    passed_reroll += passes(field, c, t2, lossy, node->key);

    // The same node before its loss passes (the control: the check is not
    // failing everyone). Every tenth epoch keeps the test fast.
    if (e % 10 == 0) {
      auto t3 = run_walk(c, node->id(), *node->replica);
      ASSERT_TRUE(t3);
      passed_honest += passes(field, c, *t3, *node->replica, node->key);
    }
  }
  // docs/proof-format.md: a node missing a fraction f passes one epoch with
  // probability about (1 - f)^t: 0.7^32 = 1.1e-5 here.
  EXPECT_LE(passed_substitute, epochs / 100)
      << "substituting chunks passed " << passed_substitute << " of 200";
  EXPECT_LE(passed_reroll, epochs / 100)
      << "restarting the walk passed " << passed_reroll << " of 200";
  EXPECT_EQ(passed_honest, epochs / 10);
}

// A node that keeps only the plain blobs (no replica) and, to beat the
// deadline, computes the mask for a fraction `computed` of the steps and
// walks over the plain chunk for the rest.
class PlainDataNode final : public ProverSource {
 public:
  PlainDataNode(Field& field, const NodeId& node, double computed, uint64_t salt)
      : field_(field), node_(node), computed_(computed), salt_(salt) {}
  Status read_sealed_chunk(ChunkPosition pos, MutableByteSpan out) override {
    const erasure::EncodedBlob& blob = field_.blobs.at(pos.blob.value).encoded;
    const size_t l = field_.params.chunk_size;
    std::copy_n(blob.data.begin() + static_cast<std::ptrdiff_t>(pos.chunk * l), l, out.begin());
    if (coin(salt_, pos, computed_)) {
      Bytes mask(l);
      replica_chunk_mask(field_.params,
                         SealKey{node_, field_.blobs[pos.blob.value].commitment.id, pos.blob},
                         pos.chunk, mask, scratch_);
      for (size_t i = 0; i < l; ++i) out[i] ^= mask[i];
    }
    return {};
  }
  Result<ChunkOpening> open_chunk(ChunkPosition pos, BlockNumber, uint64_t size) override {
    const erasure::CommittedBlob& blob = field_.blobs.at(pos.blob.value);
    const uint32_t cpf = field_.params.chunks_per_fragment();
    auto proof =
        erasure::prove_chunk(blob.encoded, blob.commitment, pos.chunk / cpf, pos.chunk % cpf);
    if (!proof) return tl::unexpected(proof.error());
    ChunkOpening o;
    o.commitment = blob.commitment.id;
    o.chunk_proof = *proof;
    const size_t l = field_.params.chunk_size;
    o.unsealed.assign(blob.encoded.data.begin() + static_cast<std::ptrdiff_t>(pos.chunk * l),
                      blob.encoded.data.begin() + static_cast<std::ptrdiff_t>((pos.chunk + 1) * l));
    auto path = field_.log.prove(pos.blob, size);
    if (!path) return tl::unexpected(path.error());
    o.blob_path = *path;
    return o;
  }

 private:
  Field& field_;
  NodeId node_;
  double computed_;
  uint64_t salt_;
  Bytes scratch_;
};

double pass_rate(Field& field, double computed, int epochs, uint64_t salt) {
  auto rng = cairn::test::seeded_rng(salt);
  const SigningKey key = test::key_from(rng);
  int passed = 0;
  for (int e = 1; e <= epochs; ++e) {
    PlainDataNode cheat(field, key.public_key(), computed, salt * 1000 + static_cast<uint64_t>(e));
    const EpochChallenge c = field.epoch(static_cast<uint64_t>(e));
    auto t = run_walk(c, key.public_key(), cheat);
    EXPECT_TRUE(t);
    passed += passes(field, c, *t, cheat, key);
  }
  return static_cast<double>(passed) / epochs;
}

TEST(Adversary, NodeWithoutItsReplicaIsCaughtByTheMaskChecks) {
  Field field(6, 42);
  const uint32_t q = field.params.mask_checks;
  // Computing every mask is an honest walk (just slow): it passes.
  EXPECT_EQ(pass_rate(field, 1.0, 10, 7), 1.0);
  // Computing none: every mask check fails.
  EXPECT_EQ(pass_rate(field, 0.0, 100, 8), 0.0);
  // Computing half passes with probability about 0.5^q (6.25% at q = 4);
  // 400 epochs put the expected 25 passes well inside [5, 50].
  const double half = pass_rate(field, 0.5, 400, 9);
  std::cout << "computing half the masks passed " << half * 100 << "% of 400 epochs (0.5^" << q
            << " = " << std::pow(0.5, q) * 100 << "%)\n";
  EXPECT_GT(half, 5.0 / 400) << "q = " << q;
  EXPECT_LT(half, 50.0 / 400) << "q = " << q;
}

TEST(Adversary, NodeWalkingAnotherIdentitysReplicaFails) {
  Field field(6, 43);
  auto a = field.node();
  auto rng = cairn::test::seeded_rng(43);
  const SigningKey b = test::key_from(rng);
  int passed = 0;
  for (int e = 1; e <= 50; ++e) {
    const EpochChallenge c = field.epoch(static_cast<uint64_t>(e));
    // b walks over a's sealed replica under its own identity: the positions
    // are b's, every chunk is there, but sealed with a's mask.
    auto t = run_walk(c, b.public_key(), *a->replica);
    ASSERT_TRUE(t);
    passed += passes(field, c, *t, *a->replica, b);
  }
  EXPECT_EQ(passed, 0);
}

}  // namespace
}  // namespace cairn::sampling
