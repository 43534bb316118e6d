// Replica-count proofs on a hand-built header chain: what is counted, what
// is refused, and that no single changed byte goes unnoticed.

#include "cairn/sampling/proof.hpp"

#include <gtest/gtest.h>

#include "sampling_test_util.hpp"

namespace cairn::sampling {
namespace {

using test::Network;
using test::Prover;
using test::TestChain;
using test::TestNode;
using test::tiny_params;

TEST(ReplicaProof, CountsEveryNodeAndReportsTheChallengedBlobs) {
  Network net(test::small_params(), 6, 3, 21);
  const ReplicaProof proof =
      net.assemble(ShardId{0}, Epoch{1}, net.run_epoch(ShardId{0}, Epoch{1}));
  ASSERT_EQ(proof.entries.size(), 3u);
  const Bytes wire = proof.encode();
  auto back = ReplicaProof::decode(wire);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, proof);
  EXPECT_EQ(back->encode(), wire);

  for (const TrustRoot& trust :
       {TrustRoot::key(net.chain.info().sequencer), TrustRoot::chain(net.chain.info())}) {
    auto report = verify_replica_proof(wire, trust);
    ASSERT_TRUE(report) << report.error().to_string();
    EXPECT_EQ(report->replicas(), 3u);
    EXPECT_EQ(report->shard, ShardId{0});
    EXPECT_EQ(report->epoch, Epoch{1});
    EXPECT_EQ(report->start_block, BlockNumber{8});
    EXPECT_EQ(report->first_blob, BlobIndex{0});
    EXPECT_EQ(report->blob_count, 6u);
    EXPECT_TRUE(report->trust_pinned);
    EXPECT_EQ(report->chain_id, net.chain.info().chain_id);
    std::vector<NodeId> ids;
    for (const auto& n : net.nodes) ids.push_back(n->id());
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(report->nodes, ids);
  }
  auto unpinned = verify_replica_proof(wire, TrustRoot::embedded_key());
  ASSERT_TRUE(unpinned);
  EXPECT_FALSE(unpinned->trust_pinned);
}

TEST(ReplicaProof, AnotherSequencerOrGenesisIsRejected) {
  Network net(test::small_params(), 3, 1, 22);
  const Bytes wire =
      net.assemble(ShardId{0}, Epoch{1}, net.run_epoch(ShardId{0}, Epoch{1})).encode();
  auto rng = cairn::test::seeded_rng(1022);
  const NodeId stranger = test::key_from(rng).public_key();
  auto r = verify_replica_proof(wire, TrustRoot::key(stranger));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::verification_failed);
  EXPECT_NE(r.error().message.find("not the trusted"), std::string::npos) << r.error().message;

  contracts::ChainInfo later = net.chain.info();
  later.genesis_time_ms += 1;
  later.chain_id =
      contracts::compute_chain_id(later.sequencer, later.params, later.genesis_time_ms);
  EXPECT_FALSE(verify_replica_proof(wire, TrustRoot::chain(later)));
  contracts::ChainInfo other_params = net.chain.info();
  other_params.params.walk_steps *= 2;
  EXPECT_FALSE(verify_replica_proof(wire, TrustRoot::chain(other_params)));

  // A proof re-signed by another sequencer over the same content does not
  // pass the pinned key either.
  TestChain forged(net.params, 23);
  ReplicaProof p = *ReplicaProof::decode(wire);
  p.sequencer = forged.info().sequencer;
  EXPECT_FALSE(verify_replica_proof(p, TrustRoot::key(net.chain.info().sequencer)));
  EXPECT_FALSE(
      verify_replica_proof(p, TrustRoot::embedded_key()));  // headers signed by the real key
}

TEST(ReplicaProof, ResponseAnchoredAfterTheDeadlineIsNotCounted) {
  Network net(test::small_params(), 4, 3, 24);
  const Epoch e{1};
  net.chain.produce_until(net.start_of(e));
  // Two nodes anchor in time; the third walks in time but anchors in block
  // e*E + D + 1 (the dev chain refuses that; this chain lets a test do it).
  auto on_time = test::answer_epoch(net.chain,
                                    {Prover{net.nodes[0].get(), net.nodes[0]->replica.get()},
                                     Prover{net.nodes[1].get(), net.nodes[1]->replica.get()}},
                                    ShardId{0}, e);
  const EpochChallenge c = net.chain.challenge(ShardId{0}, e);
  auto t = run_walk(c, net.nodes[2]->id(), *net.nodes[2]->replica);
  ASSERT_TRUE(t);
  net.chain.produce_until(BlockNumber{net.start_of(e).value + net.params.deadline_blocks});
  const uint32_t leaf = net.chain.anchor(net.nodes[2]->id(), ShardId{0}, e, t->commitment());
  const BlockNumber late = net.chain.produce().number;
  auto resp = open_response(*t, late, contracts::block_randomness(net.chain.header(late).hash()),
                            *net.nodes[2]->replica, net.nodes[2]->key);
  ASSERT_TRUE(resp);
  AnchoredResponse late_one{*resp, net.chain.anchor_path(late, leaf)};
  // On its own terms (its block's headers) the late response is sound...
  EpochChallenge again = c;
  EXPECT_TRUE(verify_response(again, late_one.response,
                              contracts::block_randomness(net.chain.header(late).hash())));

  // ...but the assembler leaves it out,
  std::vector<AnchoredResponse> all = on_time;
  all.push_back(late_one);
  auto a = assemble_replica_proof(net.chain.info(), ShardId{0}, e, net.chain.epoch_headers(e), all);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->proof.entries.size(), 2u);
  ASSERT_EQ(a->excluded.size(), 1u);
  EXPECT_EQ(a->excluded[0].first, net.nodes[2]->id());
  EXPECT_NE(a->excluded[0].second.message.find("outside the window"), std::string::npos)
      << a->excluded[0].second.message;
  auto report = verify_replica_proof(a->proof, TrustRoot::key(net.chain.info().sequencer));
  ASSERT_TRUE(report);
  EXPECT_EQ(report->replicas(), 2u);

  // ...and a proof that carries it anyway, with or without the late header, is refused.
  ReplicaProof forged = a->proof;
  forged.entries.push_back(ProofEntry{late_one.response, late_one.anchor_path});
  auto r = verify_replica_proof(forged, TrustRoot::key(net.chain.info().sequencer));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("outside the window"), std::string::npos) << r.error().message;
  forged.headers.push_back(net.chain.header(late));
  EXPECT_FALSE(verify_replica_proof(forged, TrustRoot::key(net.chain.info().sequencer)));
}

TEST(ReplicaProof, DuplicateResponsesOfOneNodeCountOnce) {
  Network net(test::small_params(), 4, 2, 25);
  const Epoch e{1};
  net.chain.produce_until(net.start_of(e));
  // Node 0 anchors in both blocks of the window (two different responses:
  // the second walk has the same commitment, opened with another block).
  auto first = test::answer_epoch(net.chain, test::honest(net.nodes), ShardId{0}, e);
  auto second = test::answer_epoch(
      net.chain, {Prover{net.nodes[0].get(), net.nodes[0]->replica.get()}}, ShardId{0}, e);
  ASSERT_NE(first[0].response.anchor_block, second[0].response.anchor_block);
  ReplicaProof proof;
  {
    auto a =
        assemble_replica_proof(net.chain.info(), ShardId{0}, e, net.chain.epoch_headers(e), first);
    ASSERT_TRUE(a);
    proof = a->proof;
  }
  auto trust = TrustRoot::key(net.chain.info().sequencer);
  ASSERT_EQ(verify_replica_proof(proof, trust)->replicas(), 2u);

  ReplicaProof dup = proof;
  dup.entries.push_back(dup.entries.front());  // the same entry again
  dup.entries.push_back(
      ProofEntry{second[0].response, second[0].anchor_path});  // another valid one
  auto report = verify_replica_proof(dup, trust);
  ASSERT_TRUE(report) << report.error().to_string();
  EXPECT_EQ(report->replicas(), 2u);
  EXPECT_EQ(report->responses, 4u);

  // The assembler keeps one per node.
  std::vector<AnchoredResponse> all = first;
  all.push_back(second[0]);
  auto a = assemble_replica_proof(net.chain.info(), ShardId{0}, e, net.chain.epoch_headers(e), all);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->proof.entries.size(), 2u);
  ASSERT_EQ(a->excluded.size(), 1u);
  EXPECT_EQ(a->excluded[0].second.code, Errc::conflict);
}

TEST(ReplicaProof, ResponseForAnotherShardOrEpochIsRejected) {
  auto params = test::small_params();
  params.blobs_per_shard = 4;
  Network net(params, 8, 2, 26);  // shards 0 and 1 full
  auto trust = TrustRoot::key(net.chain.info().sequencer);
  net.chain.produce_until(net.start_of(Epoch{1}));
  auto shard0 = test::answer_epoch(net.chain, test::honest(net.nodes), ShardId{0}, Epoch{1});
  auto shard1 = test::answer_epoch(
      net.chain, {Prover{net.nodes[0].get(), net.nodes[0]->replica.get()}}, ShardId{1}, Epoch{1});
  net.chain.produce_until(BlockNumber{net.start_of(Epoch{1}).value + params.deadline_blocks});
  auto epoch2 = net.run_epoch(ShardId{0}, Epoch{2});

  // The assembler refuses them with the reason.
  std::vector<AnchoredResponse> mixed = shard0;
  mixed.push_back(shard1[0]);
  mixed.push_back(epoch2[1]);
  auto a = assemble_replica_proof(net.chain.info(), ShardId{0}, Epoch{1},
                                  net.chain.epoch_headers(Epoch{1}), mixed);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->proof.entries.size(), 2u);
  ASSERT_EQ(a->excluded.size(), 2u);
  for (const auto& [node, err] : a->excluded) {
    EXPECT_NE(err.message.find("answers shard"), std::string::npos) << err.message;
  }
  ASSERT_EQ(verify_replica_proof(a->proof, trust)->replicas(), 2u);

  // A proof that carries one is invalid as a whole.
  for (const AnchoredResponse& stray : {shard1[0], epoch2[1]}) {
    ReplicaProof p = a->proof;
    p.entries.push_back(ProofEntry{stray.response, stray.anchor_path});
    auto r = verify_replica_proof(p, trust);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::verification_failed);
    EXPECT_NE(r.error().message.find("answers shard"), std::string::npos) << r.error().message;
  }
  // The same response relabelled (shard or epoch changed, re-signed by its
  // node) no longer matches its anchor.
  Response relabelled = shard1[0].response;
  relabelled.shard = ShardId{0};
  ASSERT_TRUE(sign_response(relabelled, net.nodes[0]->key));
  ReplicaProof p = a->proof;
  p.entries.push_back(ProofEntry{relabelled, shard1[0].anchor_path});
  EXPECT_FALSE(verify_replica_proof(p, trust));
}

TEST(ReplicaProof, HeadersMustBeTheEpochWindowOfTheTrustedChain) {
  Network net(test::small_params(), 3, 1, 27);
  ReplicaProof good = net.assemble(ShardId{0}, Epoch{1}, net.run_epoch(ShardId{0}, Epoch{1}));
  auto trust = TrustRoot::key(net.chain.info().sequencer);
  ReplicaProof p = good;
  p.headers.pop_back();
  EXPECT_FALSE(verify_replica_proof(p, trust));
  p = good;
  net.chain.produce();
  p.headers.erase(p.headers.begin());
  p.headers.push_back(net.chain.header(BlockNumber{11}));
  EXPECT_FALSE(verify_replica_proof(p, trust));
  p = good;
  std::swap(p.headers[1], p.headers[2]);
  EXPECT_FALSE(verify_replica_proof(p, trust));
  p = good;
  p.epoch = Epoch{2};
  EXPECT_FALSE(verify_replica_proof(p, trust));
  // Block 0 held no blob yet: epoch 0 challenged nothing, and a shard never
  // opened cannot be proven either.
  EXPECT_FALSE(assemble_replica_proof(net.chain.info(), ShardId{0}, Epoch{0},
                                      net.chain.epoch_headers(Epoch{0}), {}));
  EXPECT_FALSE(assemble_replica_proof(net.chain.info(), ShardId{5}, Epoch{1},
                                      net.chain.epoch_headers(Epoch{1}), {}));
}

TEST(ReplicaProof, VerifierLimitsBoundWhatAnUnpinnedProofCanAskFor) {
  Network net(test::small_params(), 3, 1, 28);
  const ReplicaProof proof =
      net.assemble(ShardId{0}, Epoch{1}, net.run_epoch(ShardId{0}, Epoch{1}));
  VerifyLimits limits;
  limits.max_seal_cost = 1;
  auto r = verify_replica_proof(proof, TrustRoot::embedded_key(), limits);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("limits"), std::string::npos);
  limits = {};
  limits.max_proof_bytes = 100;
  EXPECT_FALSE(verify_replica_proof(proof.encode(), TrustRoot::embedded_key(), limits));
}

// Flips byte i of `wire` (xor 0x01 and xor 0x80 at alternate positions) and
// expects the proof to fail; returns the positions that still verified.
std::vector<size_t> surviving_flips(const Bytes& wire, const std::vector<size_t>& positions,
                                    const TrustRoot& trust) {
  std::vector<size_t> survived;
  Bytes copy = wire;
  for (size_t i : positions) {
    const uint8_t mask = (i % 2 == 0) ? 0x01 : 0x80;
    copy[i] ^= mask;
    if (verify_replica_proof(copy, trust)) survived.push_back(i);
    copy[i] ^= mask;
  }
  return survived;
}

TEST(ReplicaProofTamper, EveryByteOfASmallProofMatters) {
  Network net(tiny_params(), 3, 2, 29);
  const ReplicaProof proof =
      net.assemble(ShardId{0}, Epoch{1}, net.run_epoch(ShardId{0}, Epoch{1}));
  const Bytes wire = proof.encode();
  const auto trust = TrustRoot::key(net.chain.info().sequencer);
  ASSERT_EQ(verify_replica_proof(wire, trust)->replicas(), 2u);
  std::vector<size_t> all(wire.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  const auto survived = surviving_flips(wire, all, trust);
  EXPECT_TRUE(survived.empty()) << survived.size() << " of " << wire.size()
                                << " single-byte changes still verify, first at byte "
                                << (survived.empty() ? 0 : survived.front());
  // Without a pinned key the proof still checks itself: the embedded key
  // must have signed every header.
  EXPECT_TRUE(surviving_flips(wire, all, TrustRoot::embedded_key()).empty());
}

TEST(ReplicaProofTamper, SeededPositionsOfADefaultParameterProof) {
  auto params = erasure::NetworkParams::defaults();
  params.blobs_per_shard = 8;
  Network net(params, 6, 3, 30);
  const ReplicaProof proof =
      net.assemble(ShardId{0}, Epoch{1}, net.run_epoch(ShardId{0}, Epoch{1}));
  const Bytes wire = proof.encode();
  const auto trust = TrustRoot::key(net.chain.info().sequencer);
  ASSERT_EQ(verify_replica_proof(wire, trust)->replicas(), 3u);
  auto rng = cairn::test::seeded_rng(30);
  std::vector<size_t> positions;
  for (int i = 0; i < 2500; ++i) positions.push_back(rng() % wire.size());
  // The first kilobyte (identity, headers, the first response's header) fully.
  for (size_t i = 0; i < 1024; ++i) positions.push_back(i);
  const auto survived = surviving_flips(wire, positions, trust);
  EXPECT_TRUE(survived.empty()) << survived.size() << " changes still verify, first at byte "
                                << (survived.empty() ? 0 : survived.front()) << " of "
                                << wire.size();
}

}  // namespace
}  // namespace cairn::sampling
