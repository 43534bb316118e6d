#pragma once
// Helpers shared by the sampling tests: small network parameters, a
// hand-built header chain signed by a test sequencer (so tests can also build
// what the dev chain refuses, such as a late anchor), and nodes that hold a
// sealed replica and answer epochs.

#include <gtest/gtest.h>

#include <array>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "cairn/contracts/header.hpp"
#include "cairn/core/ed25519.hpp"
#include "cairn/erasure/codec.hpp"
#include "cairn/erasure/commitment.hpp"
#include "cairn/sampling/assemble.hpp"
#include "cairn/sampling/memory_replica.hpp"
#include "cairn/sampling/proof.hpp"
#include "cairn/sampling/walk.hpp"
#include "contracts/chain_test_util.hpp"
#include "support/test_util.hpp"

namespace cairn::sampling::test {

using contracts::test::key_from;

// Small blobs (4 fragments of 8 chunks: 32 chunks per replica) and a short
// walk, so a test answers hundreds of epochs in seconds. Same shape of
// checks as the defaults.
inline erasure::NetworkParams small_params() {
  erasure::NetworkParams p;
  p.blob_size = 4096;
  p.data_fragments = 2;
  p.parity_fragments = 2;
  p.chunk_size = 256;
  p.blobs_per_shard = 16;
  p.epoch_blocks = 8;
  p.deadline_blocks = 2;
  p.walk_steps = 256;
  p.openings = 32;
  p.mask_checks = 4;
  p.seal_cost = 2;
  return p;
}

// Tiny geometry for proofs whose every byte a test flips: 16 chunks per
// replica, a 16-step walk opening 2 pairs.
inline erasure::NetworkParams tiny_params() {
  erasure::NetworkParams p = small_params();
  p.blob_size = 1024;
  p.chunk_size = 128;
  p.blobs_per_shard = 4;
  p.epoch_blocks = 4;
  p.walk_steps = 16;
  p.openings = 2;
  p.mask_checks = 1;
  return p;
}

// A header chain built by hand with the public header API: blocks carry the
// blobs registered and the responses anchored since the previous one, under
// a test sequencer's signature. Enforces none of the contract's rules, so a
// test can anchor anything anywhere.
class TestChain {
 public:
  explicit TestChain(erasure::NetworkParams params, uint64_t salt = 77,
                     uint64_t genesis_time_ms = 1'700'000'000'000)
      : TestChain(params, SigningKey::from_seed(seed_from(salt)), genesis_time_ms) {}

  TestChain(erasure::NetworkParams params, const SigningKey& sequencer, uint64_t genesis_time_ms)
      : sequencer_(sequencer) {
    info_.sequencer = sequencer_.public_key();
    info_.params = params;
    info_.genesis_time_ms = genesis_time_ms;
    info_.chain_id = contracts::compute_chain_id(info_.sequencer, params, genesis_time_ms);
    produce();  // block 0
    info_.genesis_hash = headers_[0].hash();
  }

  const contracts::ChainInfo& info() const { return info_; }
  const erasure::NetworkParams& params() const { return info_.params; }
  const SigningKey& sequencer() const { return sequencer_; }
  BlobLog& blobs() { return blobs_; }
  BlockNumber head() const { return headers_.back().number; }

  // Registers a commitment in the next block.
  BlobIndex put_blob(const BlobId& commitment) { return blobs_.append(commitment); }

  // Anchors (node, shard, epoch, commitment) in the next block; returns its leaf index.
  uint32_t anchor(const NodeId& node, ShardId shard, Epoch epoch, const Hash32& commitment) {
    pending_.push_back(contracts::response_leaf(node, shard, epoch, commitment));
    return static_cast<uint32_t>(pending_.size() - 1);
  }

  const contracts::BlockHeader& produce() {
    contracts::BlockHeader h;
    h.chain_id = info_.chain_id;
    h.number = BlockNumber{headers_.size()};
    if (!headers_.empty()) h.parent_hash = headers_.back().hash();
    h.timestamp_ms = info_.genesis_time_ms + h.number.value * info_.params.block_time_ms;
    h.tx_root = erasure::merkle_root({});
    h.blob_count = blobs_.size();
    h.blobs_root = *blobs_.root(h.blob_count);
    h.responses_root = erasure::merkle_root(pending_);
    h.response_count = static_cast<uint32_t>(pending_.size());
    contracts::sign_header(h, sequencer_);
    response_leaves_.push_back(std::move(pending_));
    pending_.clear();
    headers_.push_back(h);
    return headers_.back();
  }
  void produce_until(BlockNumber n) {
    while (head() < n) produce();
  }

  const contracts::BlockHeader& header(BlockNumber n) const { return headers_.at(n.value); }
  std::vector<contracts::BlockHeader> headers(BlockNumber from, size_t count) const {
    return {headers_.begin() + static_cast<std::ptrdiff_t>(from.value),
            headers_.begin() + static_cast<std::ptrdiff_t>(from.value + count)};
  }
  erasure::MerkleProof anchor_path(BlockNumber block, uint32_t leaf) const {
    return *erasure::merkle_prove(response_leaves_.at(block.value), leaf);
  }
  // Headers e*E .. e*E+D.
  std::vector<contracts::BlockHeader> epoch_headers(Epoch e) const {
    return headers(BlockNumber{e.value * params().epoch_blocks}, params().deadline_blocks + 1);
  }
  EpochChallenge challenge(ShardId shard, Epoch e) const {
    return *make_epoch_challenge(params(), shard, e,
                                 header(BlockNumber{e.value * params().epoch_blocks}));
  }

  MemoryReplica::BlobPaths paths() {
    return [this](BlobIndex index, BlockNumber, uint64_t tree_size) {
      return blobs_.prove(index, tree_size);
    };
  }

 private:
  static std::array<uint8_t, 32> seed_from(uint64_t salt) {
    // Offset so the sequencer key never equals a key a test draws with the same salt.
    auto rng = cairn::test::seeded_rng(salt + 0x5e9000);
    std::array<uint8_t, 32> seed{};
    for (auto& b : seed) b = static_cast<uint8_t>(rng());
    return seed;
  }

  SigningKey sequencer_;
  contracts::ChainInfo info_;
  BlobLog blobs_;
  std::vector<Hash32> pending_;
  std::vector<std::vector<Hash32>> response_leaves_;
  std::vector<contracts::BlockHeader> headers_;
};

// Random payloads encoded and committed with `params`.
inline std::vector<erasure::CommittedBlob> random_blobs(const erasure::NetworkParams& params,
                                                        std::mt19937_64& rng, size_t count) {
  auto codec = *erasure::Codec::create(params);
  std::vector<erasure::CommittedBlob> out;
  for (size_t i = 0; i < count; ++i) {
    const Bytes payload = cairn::test::random_bytes(rng, params.blob_size - (rng() % 64));
    out.push_back(*erasure::encode_and_commit(*codec, payload));
  }
  return out;
}

// A storage node of the tests: its key and its sealed replica of the blobs
// given to it.
struct TestNode {
  SigningKey key;
  std::unique_ptr<MemoryReplica> replica;

  TestNode(const erasure::NetworkParams& params, std::mt19937_64& rng,
           MemoryReplica::BlobPaths paths)
      : TestNode(params, key_from(rng), std::move(paths)) {}
  TestNode(const erasure::NetworkParams& params, const SigningKey& k,
           MemoryReplica::BlobPaths paths)
      : key(k),
        replica(std::make_unique<MemoryReplica>(params, key.public_key(), std::move(paths))) {}
  const NodeId& id() const { return key.public_key(); }
};

// One prover of an epoch: a node and what it walks over (its own replica
// unless a test substitutes a cheating source).
struct Prover {
  const TestNode* node = nullptr;
  ProverSource* source = nullptr;
};

// The provers' responses to (shard, epoch) on `chain`: all walk at block e*E
// (the chain must be there), anchor in the next block and open with its
// randomness. The chain ends at the anchor block.
inline std::vector<AnchoredResponse> answer_epoch(TestChain& chain,
                                                  const std::vector<Prover>& provers, ShardId shard,
                                                  Epoch e) {
  const EpochChallenge c = chain.challenge(shard, e);
  std::vector<WalkTranscript> transcripts;
  std::vector<uint32_t> leaves;
  for (const Prover& p : provers) {
    auto t = run_walk(c, p.node->id(), *p.source);
    EXPECT_TRUE(t) << t.error().to_string();
    leaves.push_back(chain.anchor(p.node->id(), shard, e, t->commitment()));
    transcripts.push_back(std::move(*t));
  }
  const BlockNumber b = chain.produce().number;
  const Hash32 randomness = contracts::block_randomness(chain.header(b).hash());
  std::vector<AnchoredResponse> out;
  for (size_t i = 0; i < provers.size(); ++i) {
    auto resp =
        open_response(transcripts[i], b, randomness, *provers[i].source, provers[i].node->key);
    EXPECT_TRUE(resp) << resp.error().to_string();
    out.push_back(AnchoredResponse{*resp, chain.anchor_path(b, leaves[i])});
  }
  return out;
}

inline std::vector<Prover> honest(const std::vector<std::unique_ptr<TestNode>>& nodes) {
  std::vector<Prover> out;
  for (const auto& n : nodes) out.push_back(Prover{n.get(), n->replica.get()});
  return out;
}

// `blob_count` blobs registered before epoch 1 (spilling into later shards
// when more than blobs_per_shard), `node_count` nodes holding all of them.
struct Network {
  erasure::NetworkParams params;
  TestChain chain;
  std::vector<erasure::CommittedBlob> blobs;
  std::vector<std::unique_ptr<TestNode>> nodes;

  Network(erasure::NetworkParams p, size_t blob_count, size_t node_count, uint64_t salt)
      : params(p), chain(p, salt) {
    auto rng = cairn::test::seeded_rng(salt);
    blobs = random_blobs(params, rng, blob_count);
    for (const auto& b : blobs) chain.put_blob(b.commitment.id);
    for (size_t i = 0; i < node_count; ++i) {
      nodes.push_back(std::make_unique<TestNode>(params, rng, chain.paths()));
      for (size_t j = 0; j < blobs.size(); ++j) nodes.back()->replica->add(BlobIndex{j}, blobs[j]);
    }
  }

  BlockNumber start_of(Epoch e) const { return BlockNumber{e.value * params.epoch_blocks}; }

  // Every node answers (shard, e); the chain is produced to e*E+D.
  std::vector<AnchoredResponse> run_epoch(ShardId shard, Epoch e) {
    chain.produce_until(start_of(e));
    auto out = answer_epoch(chain, honest(nodes), shard, e);
    chain.produce_until(BlockNumber{start_of(e).value + params.deadline_blocks});
    return out;
  }

  ReplicaProof assemble(ShardId shard, Epoch e, std::vector<AnchoredResponse> responses) {
    auto a = assemble_replica_proof(chain.info(), shard, e, chain.epoch_headers(e),
                                    std::move(responses));
    EXPECT_TRUE(a) << a.error().to_string();
    for (const auto& [node, err] : a->excluded)
      ADD_FAILURE() << "excluded " << node.hex() << ": " << err.to_string();
    return a->proof;
  }
};

}  // namespace cairn::sampling::test
