// Storage challenges end to end on the real dev chain, driven block by block
// with a manual clock: nodes register, blobs are uploaded between epochs,
// every node walks its sealed replica at the epoch's first block, anchors its
// commitment with SubmitResponse, opens with the anchoring block's
// randomness, and the epoch's replica-count proof is assembled from the
// chain's headers and inclusion proofs and verified against the genesis.

#include <gtest/gtest.h>

#include "cairn/contracts/devchain.hpp"
#include "cairn/contracts/tx.hpp"
#include "sampling_test_util.hpp"

namespace cairn::sampling {
namespace {

using test::TestNode;

using contracts::test::kStart;

class EpochSim : public ::testing::Test {
 protected:
  EpochSim()
      : rng(cairn::test::seeded_rng(50)),
        sequencer(test::key_from(rng)),
        uploader(test::key_from(rng)) {
    params = erasure::NetworkParams::defaults();
    params.blobs_per_shard = 64;
    contracts::DevChainSettings settings;
    settings.db_path = (dir / "chain").string();
    settings.sync_writes = false;
    settings.verify_threads = 1;
    auto c = contracts::DevChain::open(settings, sequencer, params, time);
    EXPECT_TRUE(c) << c.error().to_string();
    chain = std::move(*c);
    codec = *erasure::Codec::create(params);
  }

  contracts::BlockHeader block() {
    time->advance(params.block_time_ms);
    auto h = chain->produce_block();
    EXPECT_TRUE(h) << h.error().to_string();
    return *h;
  }
  void blocks_until(uint64_t n) {
    while (chain->head()->number.value < n) block();
  }
  // Submits, seals the next block, returns the receipt.
  contracts::Receipt include(const Bytes& tx) {
    auto hash = chain->submit(tx);
    EXPECT_TRUE(hash) << hash.error().to_string();
    block();
    auto receipt = chain->receipt(*hash);
    EXPECT_TRUE(receipt && receipt->has_value());
    return **receipt;
  }

  MemoryReplica::BlobPaths paths() {
    return [this](BlobIndex index, BlockNumber b, uint64_t) -> Result<erasure::MerkleProof> {
      auto inc = chain->blob_inclusion(index, b);
      if (!inc) return tl::unexpected(inc.error());
      return inc->proof;
    };
  }

  // Uploads `count` random blobs in one block; every node seals and stores them.
  void upload(size_t count) {
    std::vector<erasure::CommittedBlob> blobs;
    std::vector<Hash32> txs;
    for (size_t i = 0; i < count; ++i) {
      blobs.push_back(
          *erasure::encode_and_commit(*codec, cairn::test::random_bytes(rng, params.blob_size)));
      auto hash =
          chain->submit(contracts::make_put_blob(uploader, chain->info().chain_id, ++uploader_nonce,
                                                 blobs.back().commitment.id, params.blob_size));
      ASSERT_TRUE(hash);
      txs.push_back(*hash);
    }
    block();
    for (size_t i = 0; i < count; ++i) {
      auto r = chain->receipt(txs[i]);
      ASSERT_TRUE(r && r->has_value() && (*r)->ok());
      for (auto& n : nodes) n->replica->add(*(*r)->blob_index, blobs[i]);
    }
  }

  cairn::test::TempDir dir;
  std::mt19937_64 rng;
  SigningKey sequencer, uploader;
  uint64_t uploader_nonce = 0;
  erasure::NetworkParams params;
  std::shared_ptr<contracts::ManualTime> time = std::make_shared<contracts::ManualTime>(kStart);
  std::unique_ptr<contracts::DevChain> chain;
  std::shared_ptr<const erasure::Codec> codec;
  std::vector<std::unique_ptr<TestNode>> nodes;
  std::map<NodeId, uint64_t> nonces;
};

TEST_F(EpochSim, EightNodesOverFiveEpochsAreCountedEveryEpoch) {
  const ShardId shard{0};
  const auto chain_id = chain->info().chain_id;
  // Eight serving nodes and a ninth whose anchors always come too late.
  std::vector<Hash32> registrations;
  for (int i = 0; i < 9; ++i) {
    nodes.push_back(std::make_unique<TestNode>(params, rng, paths()));
    const auto& key = nodes.back()->key;
    auto hash = chain->submit(
        contracts::make_register_node(key, chain_id, ++nonces[key.public_key()],
                                      "127.0.0.1:" + std::to_string(9100 + i), {shard}));
    ASSERT_TRUE(hash) << hash.error().to_string();
    registrations.push_back(*hash);
  }
  block();
  for (const Hash32& h : registrations) {
    auto r = chain->receipt(h);
    ASSERT_TRUE(r && r->has_value() && (*r)->ok());
  }
  TestNode& late = *nodes.back();
  upload(6);

  for (uint64_t e = 1; e <= 5; ++e) {
    upload(2);  // the challenged set grows between epochs
    const uint64_t start = e * params.epoch_blocks;
    blocks_until(start);
    auto header = chain->header(BlockNumber{start});
    ASSERT_TRUE(header);
    auto challenge = make_epoch_challenge(params, shard, Epoch{e}, *header);
    ASSERT_TRUE(challenge) << challenge.error().to_string();
    ASSERT_EQ(challenge->blob_count, 6 + 2 * e);

    // Walk at block e*E, anchor in the next block.
    std::vector<WalkTranscript> walks;
    std::vector<Hash32> submitted;
    for (auto& n : nodes) {
      auto t = run_walk(*challenge, n->id(), *n->replica);
      ASSERT_TRUE(t) << t.error().to_string();
      if (n.get() != &late) {
        auto tx = contracts::make_submit_response(n->key, chain_id, ++nonces[n->id()], shard,
                                                  Epoch{e}, t->commitment());
        auto hash = chain->submit(tx);
        ASSERT_TRUE(hash) << hash.error().to_string();
        submitted.push_back(*hash);
      }
      walks.push_back(std::move(*t));
    }
    const contracts::BlockHeader anchor = block();
    for (const Hash32& h : submitted) {
      auto r = chain->receipt(h);
      ASSERT_TRUE(r && r->has_value());
      ASSERT_TRUE((*r)->ok()) << (*r)->detail;
      ASSERT_EQ((*r)->block, anchor.number);
    }
    blocks_until(start + params.deadline_blocks);
    // The late node submits after block e*E+D: the contract refuses it.
    auto late_receipt = include(contracts::make_submit_response(
        late.key, chain_id, ++nonces[late.id()], shard, Epoch{e}, walks.back().commitment()));
    EXPECT_EQ(late_receipt.status, contracts::TxStatus::deadline_passed);

    // Open with the anchor block's randomness; collect what a node would
    // have gathered from gossip, the late node's included.
    std::vector<AnchoredResponse> candidates;
    for (size_t i = 0; i < nodes.size(); ++i) {
      auto resp = open_response(walks[i], anchor.number, contracts::block_randomness(anchor.hash()),
                                *nodes[i]->replica, nodes[i]->key);
      ASSERT_TRUE(resp) << resp.error().to_string();
      auto inclusion = chain->response_inclusion(nodes[i]->id(), shard, Epoch{e});
      if (nodes[i].get() == &late) {
        ASSERT_FALSE(inclusion);
        EXPECT_EQ(inclusion.error().code, Errc::not_found);
        candidates.push_back(AnchoredResponse{*resp, erasure::MerkleProof{}});
        continue;
      }
      ASSERT_TRUE(inclusion) << inclusion.error().to_string();
      EXPECT_EQ(inclusion->record.anchored_in, anchor.number);
      candidates.push_back(AnchoredResponse{*resp, inclusion->proof});
    }

    auto headers = chain->headers(BlockNumber{start}, params.deadline_blocks + 1);
    ASSERT_TRUE(headers);
    auto assembled = assemble_replica_proof(chain->info(), shard, Epoch{e}, *headers, candidates);
    ASSERT_TRUE(assembled) << assembled.error().to_string();
    ASSERT_EQ(assembled->excluded.size(), 1u);
    EXPECT_EQ(assembled->excluded[0].first, late.id());

    const Bytes file = assembled->proof.encode();
    auto report = verify_replica_proof(file, TrustRoot::chain(chain->info()));
    ASSERT_TRUE(report) << report.error().to_string();
    EXPECT_EQ(report->replicas(), 8u) << "epoch " << e;
    EXPECT_EQ(report->epoch, Epoch{e});
    EXPECT_EQ(report->first_blob, BlobIndex{0});
    EXPECT_EQ(report->blob_count, 6 + 2 * e);
    EXPECT_EQ(std::count(report->nodes.begin(), report->nodes.end(), late.id()), 0);
    // The sequencer key alone is enough of a trust root too.
    EXPECT_EQ(verify_replica_proof(file, TrustRoot::key(sequencer.public_key()))->replicas(), 8u);
    std::cout << "epoch " << e << ": " << report->replicas() << " replicas of blobs 0.."
              << report->blob_count - 1 << ", proof " << file.size() << " bytes\n";
  }
}

}  // namespace
}  // namespace cairn::sampling
