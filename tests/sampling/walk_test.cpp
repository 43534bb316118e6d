// The walk and its response: honest responses verify, every part of a
// response is checked, and the derivations are pinned.

#include "cairn/sampling/walk.hpp"

#include <gtest/gtest.h>

#include <set>

#include "cairn/sampling/seal.hpp"
#include "merkle_levels.hpp"
#include "sampling_test_util.hpp"

namespace cairn::sampling {
namespace {

using test::small_params;
using test::TestChain;
using test::TestNode;

TEST(MerkleLevels, SameRootsAndProofsAsTheErasureTrees) {
  auto rng = cairn::test::seeded_rng(3);
  for (size_t n = 1; n <= 70; ++n) {
    std::vector<Hash32> leaves(n);
    for (auto& l : leaves) l = erasure::merkle_leaf_hash(cairn::test::random_bytes(rng, 8));
    const detail::MerkleLevels tree(leaves);
    ASSERT_EQ(tree.root(), erasure::merkle_root(leaves)) << n;
    for (uint64_t i = 0; i < n; ++i) {
      auto ours = tree.prove(i);
      ASSERT_TRUE(ours);
      EXPECT_EQ(*ours, *erasure::merkle_prove(leaves, i)) << n << " " << i;
      EXPECT_TRUE(erasure::merkle_verify(tree.root(), leaves[i], i, n, *ours));
    }
    EXPECT_FALSE(tree.prove(n));
  }
}

TEST(SealPrefix, EqualsTheFullMaskOverThePrefix) {
  auto params = small_params();
  for (uint32_t cost : {1u, 2u, 3u}) {
    params.seal_cost = cost;
    const size_t total = size_t{params.total_fragments()} * params.fragment_size();
    const uint32_t blocks = static_cast<uint32_t>(total / params.chunk_size);
    SealKey key{NodeId{}, BlobId{}, BlobIndex{9}};
    key.node.bytes.fill(4);
    Bytes full(total), prefix(total), chunk(params.chunk_size), scratch;
    replica_mask(params, key, full);
    for (uint32_t j : {0u, 1u, blocks / 2, blocks - 1}) {
      replica_mask_prefix(params, key, j + 1, prefix);
      EXPECT_TRUE(std::equal(
          prefix.begin(), prefix.begin() + static_cast<std::ptrdiff_t>((j + 1) * params.chunk_size),
          full.begin()))
          << "cost " << cost << " block " << j;
      replica_chunk_mask(params, key, j, chunk, scratch);
      EXPECT_TRUE(std::equal(chunk.begin(), chunk.end(),
                             full.begin() + static_cast<std::ptrdiff_t>(j * params.chunk_size)));
    }
  }
}

TEST(Challenge, DerivationsArePinned) {
  EpochChallenge c;
  c.params = erasure::NetworkParams::defaults();
  c.shard = ShardId{3};
  c.epoch = Epoch{5};
  c.randomness.fill(0x42);
  c.first_blob = BlobIndex{3 * 4096};
  c.blob_count = 1000;
  NodeId node;
  node.bytes.fill(0x11);
  const Hash32 s0 = initial_state(c, node);
  // docs/proof-format.md "Test vectors": a change here is a new kWalkVersion.
  EXPECT_EQ(to_hex(s0), "28a637887aab13f55dd2133c82e79ff7d253b87378d102b2bf635ae3a9c12cdf");
  const ChunkPosition p = step_position(c, s0);
  EXPECT_EQ(p.blob.value, 3 * 4096 + get_be<uint64_t>(s0.data()) % 1000);
  EXPECT_EQ(p.chunk, get_be<uint64_t>(s0.data() + 8) % 192);
  Hash32 root, fin;
  root.fill(1);
  fin.fill(2);
  EXPECT_EQ(to_hex(commitment_hash(node, c.shard, c.epoch, root, fin)),
            "e3fe037671e4b2d18a0a2736ec97c436ddb1dc966998ad1206bd8f495a3746da");
}

TEST(Challenge, OpeningPlanIsDistinctInRangeAndDependsOnTheAnchor) {
  auto params = small_params();
  Hash32 commitment{}, r1{}, r2{};
  r1.fill(1);
  r2.fill(2);
  const OpeningPlan a = plan_openings(params, commitment, r1);
  const OpeningPlan b = plan_openings(params, commitment, r2);
  ASSERT_EQ(a.pair_steps.size(), params.openings);
  ASSERT_EQ(a.mask_slots.size(), params.mask_checks);
  EXPECT_EQ(std::set<uint32_t>(a.pair_steps.begin(), a.pair_steps.end()).size(), params.openings);
  EXPECT_EQ(std::set<uint32_t>(a.mask_slots.begin(), a.mask_slots.end()).size(),
            params.mask_checks);
  for (uint32_t s : a.pair_steps) {
    EXPECT_GE(s, 1u);
    EXPECT_LT(s, params.walk_steps);
  }
  for (uint32_t m : a.mask_slots) EXPECT_LT(m, 2 * params.openings);
  EXPECT_NE(a.pair_steps, b.pair_steps);
  EXPECT_EQ(a.pair_steps, plan_openings(params, commitment, r1).pair_steps);
}

TEST(Challenge, EpochChallengeComesFromTheEpochsFirstBlock) {
  auto params = small_params();
  TestChain chain(params);
  auto rng = cairn::test::seeded_rng(5);
  for (int i = 0; i < 20; ++i) chain.put_blob(BlobId{test::key_from(rng).public_key().bytes});
  chain.produce_until(BlockNumber{16});
  auto c = make_epoch_challenge(params, ShardId{1}, Epoch{2}, chain.header(BlockNumber{16}));
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->first_blob, BlobIndex{16});
  EXPECT_EQ(c->blob_count, 4u);  // blobs 16..19 of shard 1
  EXPECT_EQ(c->blobs_tree_size, 20u);
  EXPECT_EQ(c->randomness, contracts::block_randomness(chain.header(BlockNumber{16}).hash()));
  // Not the epoch's first block; a shard without blobs.
  EXPECT_EQ(make_epoch_challenge(params, ShardId{1}, Epoch{2}, chain.header(BlockNumber{15}))
                .error()
                .code,
            Errc::invalid_argument);
  EXPECT_EQ(make_epoch_challenge(params, ShardId{2}, Epoch{2}, chain.header(BlockNumber{16}))
                .error()
                .code,
            Errc::not_found);
}

// A chain with `blobs` blobs in shard 0, nodes holding all of them, at the
// start of epoch 1.
struct Fixture : test::Network {
  Fixture(erasure::NetworkParams p, size_t blob_count, size_t node_count, uint64_t salt)
      : Network(p, blob_count, node_count, salt) {
    chain.produce_until(start_of(Epoch{1}));
  }
};

TEST(Response, HonestResponseVerifiesAndRoundTrips) {
  Fixture f(small_params(), 5, 1, 11);
  auto responses = test::answer_epoch(f.chain, test::honest(f.nodes), ShardId{0}, Epoch{1});
  ASSERT_EQ(responses.size(), 1u);
  const Response& r = responses[0].response;
  const EpochChallenge c = f.chain.challenge(ShardId{0}, Epoch{1});
  const Hash32 anchor = contracts::block_randomness(f.chain.header(r.anchor_block).hash());
  EXPECT_TRUE(verify_response(c, r, anchor)) << verify_response(c, r, anchor).error().to_string();
  EXPECT_EQ(r.pairs.size(), f.params.openings);

  const Bytes wire = r.encode();
  auto back = Response::decode(wire);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, r);
  EXPECT_EQ(back->encode(), wire);
  EXPECT_EQ(back->commitment(), r.commitment());
  // Truncation anywhere is an error, not a crash.
  for (size_t n : {size_t{0}, size_t{1}, size_t{50}, wire.size() / 2, wire.size() - 1}) {
    EXPECT_FALSE(Response::decode(ByteSpan(wire).first(n))) << n;
  }
  Bytes longer = wire;
  longer.push_back(0);
  EXPECT_FALSE(Response::decode(longer));
}

TEST(Response, RejectedForAnotherShardEpochOrAnchor) {
  Fixture f(small_params(), 5, 1, 12);
  auto responses = test::answer_epoch(f.chain, test::honest(f.nodes), ShardId{0}, Epoch{1});
  const Response& r = responses[0].response;
  EpochChallenge c = f.chain.challenge(ShardId{0}, Epoch{1});
  const Hash32 anchor = contracts::block_randomness(f.chain.header(r.anchor_block).hash());

  EpochChallenge other_epoch = c;
  other_epoch.epoch = Epoch{2};
  auto st = verify_response(other_epoch, r, anchor);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::verification_failed);
  EXPECT_NE(st.error().message.find("epoch"), std::string::npos) << st.error().message;

  EpochChallenge other_shard = c;
  other_shard.shard = ShardId{1};
  EXPECT_FALSE(verify_response(other_shard, r, anchor));

  // Openings picked by another block's randomness do not fit.
  Hash32 wrong = anchor;
  wrong[0] ^= 1;
  st = verify_response(c, r, wrong);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("picks step"), std::string::npos) << st.error().message;

  // Another epoch randomness moves every position.
  EpochChallenge other_randomness = c;
  other_randomness.randomness[5] ^= 1;
  EXPECT_FALSE(verify_response(other_randomness, r, anchor));
}

TEST(Response, EveryCheckedPartIsBound) {
  Fixture f(small_params(), 5, 1, 13);
  auto responses = test::answer_epoch(f.chain, test::honest(f.nodes), ShardId{0}, Epoch{1});
  const Response good = responses[0].response;
  const EpochChallenge c = f.chain.challenge(ShardId{0}, Epoch{1});
  const Hash32 anchor = contracts::block_randomness(f.chain.header(good.anchor_block).hash());
  const SigningKey& key = f.nodes[0]->key;

  // Re-signed after each change, so the check that fires is the one under test.
  auto expect_rejected = [&](const std::function<void(Response&)>& change, const std::string& why) {
    Response r = good;
    change(r);
    ASSERT_TRUE(sign_response(r, key));
    auto st = verify_response(c, r, anchor);
    ASSERT_FALSE(st) << why;
    EXPECT_EQ(st.error().code, Errc::verification_failed) << why;
    EXPECT_NE(st.error().message.find(why), std::string::npos) << st.error().message;
  };
  expect_rejected([](Response& r) { r.pairs[0].first.sealed[3] ^= 1; }, "transcript root");
  expect_rejected([](Response& r) { r.pairs[0].second.unsealed[0] ^= 1; }, "unsealed chunk");
  expect_rejected([](Response& r) { r.pairs[1].first.commitment.bytes[0] ^= 1; }, "unsealed chunk");
  expect_rejected([](Response& r) { r.pairs[1].first.blob_path.path[0][0] ^= 1; }, "blobs_root");
  const size_t later = good.pairs[2].step > 1 ? 2 : 3;
  expect_rejected([&](Response& r) { r.pairs[later].prev_state[0] ^= 1; }, "transcript root");
  expect_rejected([](Response& r) { r.pairs[2].second.transcript_path.path[0][0] ^= 1; },
                  "transcript root");
  expect_rejected([](Response& r) { r.pairs.pop_back(); }, "opened pairs");
  expect_rejected([](Response& r) { std::swap(r.pairs[0], r.pairs[1]); }, "picks step");
  expect_rejected([](Response& r) { r.final_state[0] ^= 1; }, "picks step");
  // An unsigned change: the signature.
  Response r = good;
  r.anchor_block = BlockNumber{r.anchor_block.value + 1};
  auto st = verify_response(c, r, anchor);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("signature"), std::string::npos) << st.error().message;
  // Signed by another key.
  Response other = good;
  auto rng = cairn::test::seeded_rng(99);
  const SigningKey stranger = test::key_from(rng);
  EXPECT_FALSE(sign_response(other, stranger));
  other.signature = stranger.sign(other.signing_hash());
  EXPECT_FALSE(verify_response(c, other, anchor));
}

TEST(Walk, SansIoWalkEqualsRunWalk) {
  Fixture f(small_params(), 3, 1, 14);
  const EpochChallenge c = f.chain.challenge(ShardId{0}, Epoch{1});
  const TestNode& node = *f.nodes[0];
  Walk walk(c, node.id());
  Bytes chunk(f.params.chunk_size);
  std::set<uint64_t> blobs_seen;
  while (!walk.done()) {
    const ChunkPosition p = walk.position();
    EXPECT_LT(p.blob.value, 3u);
    EXPECT_LT(p.chunk, c.replica_chunks());
    blobs_seen.insert(p.blob.value);
    ASSERT_TRUE(node.replica->read_sealed_chunk(p, chunk));
    walk.feed(chunk);
  }
  EXPECT_EQ(blobs_seen.size(), 3u);
  WalkTranscript by_hand = std::move(walk).take();
  auto by_run = run_walk(c, node.id(), *node.replica);
  ASSERT_TRUE(by_run);
  EXPECT_EQ(by_hand.commitment(), by_run->commitment());
}

TEST(Walk, MissingBlobStopsTheWalkWithItsPosition) {
  Fixture f(small_params(), 3, 1, 15);
  auto rng = cairn::test::seeded_rng(15);
  TestNode partial(f.params, rng, f.chain.paths());
  partial.replica->add(BlobIndex{0}, f.blobs[0]);  // lacks blobs 1 and 2
  auto t = run_walk(f.chain.challenge(ShardId{0}, Epoch{1}), partial.id(), *partial.replica);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, Errc::not_found);
  EXPECT_NE(t.error().message.find("walk step"), std::string::npos) << t.error().message;
}

TEST(Walk, ReplicaChangedBetweenWalkAndOpeningIsCorruption) {
  Fixture f(small_params(), 2, 1, 16);
  const EpochChallenge c = f.chain.challenge(ShardId{0}, Epoch{1});
  TestNode& node = *f.nodes[0];
  auto t = run_walk(c, node.id(), *node.replica);
  ASSERT_TRUE(t);
  for (uint64_t b = 0; b < 2; ++b) {
    auto sealed = node.replica->sealed_replica(BlobIndex{b});
    for (auto& x : *sealed) x ^= 0x5a;
  }
  Hash32 anchor{};
  auto r = open_response(*t, BlockNumber{9}, anchor, *node.replica, node.key);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::corruption);
}

TEST(Walk, OpeningRefusesAStoredFragmentThatDoesNotUnsealToItsRoot) {
  Fixture f(small_params(), 1, 1, 17);
  TestNode& node = *f.nodes[0];
  auto sealed = node.replica->sealed_replica(BlobIndex{0});
  (*sealed)[7] ^= 1;  // damage chunk 0 of fragment 0
  auto o = node.replica->open_chunk(ChunkPosition{BlobIndex{0}, 3}, BlockNumber{8}, 1);
  ASSERT_FALSE(o);
  EXPECT_EQ(o.error().code, Errc::corruption);
  // Another fragment is still fine.
  EXPECT_TRUE(node.replica->open_chunk(ChunkPosition{BlobIndex{0}, f.params.chunks_per_fragment()},
                                       BlockNumber{8}, 1));
}

}  // namespace
}  // namespace cairn::sampling
