// The epoch driver (sampling::EpochDriver) on a dev chain, over in-memory
// ports: several drivers on one io_context under p2p::ManualClock, a block
// every block_time_ms of virtual time, their job queues posting to the same
// io_context, gossip and request/response as an in-memory bus. Every block
// number and virtual time asserted is exact.

#include "cairn/sampling/epoch_driver.hpp"

#include <gtest/gtest.h>

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <iostream>

#include "cairn/contracts/devchain.hpp"
#include "cairn/contracts/tx.hpp"
#include "cairn/p2p/clock.hpp"
#include "sampling_test_util.hpp"

namespace cairn::sampling {
namespace {

using std::chrono::milliseconds;

constexpr uint64_t kGenesisMs = 1'700'000'000'000;
constexpr size_t kQueueCapacity = 256;

class EpochDriverTest;

// One node: its key, replica, kept responses and driver, and its ports over
// the fixture's chain and bus.
struct SimNode final : EpochChain, EpochPeers, ResponseStore, EpochObserver {
  SimNode(EpochDriverTest& sim, const SigningKey& k);

  // ---- EpochChain over the dev chain ----
  const contracts::ChainInfo& info() const override;
  std::optional<BlockNumber> head() override;
  Result<contracts::BlockHeader> header(BlockNumber number) override;
  Result<std::vector<contracts::BlockHeader>> headers(BlockNumber from, uint32_t count) override;
  Result<Hash32> randomness(BlockNumber number) override;
  std::vector<ShardId> shards() override { return {ShardId{0}}; }
  std::vector<ShardMember> members(ShardId shard) override;
  Result<BlobPlace> blob(const BlobId& id) override;
  Result<std::vector<AnchoredCommitment>> anchored(ShardId shard, Epoch epoch) override;
  Result<AnchoredCommitment> anchor(const NodeId& node, ShardId shard, Epoch epoch) override;
  void submit_anchor(ShardId shard, Epoch epoch, const Hash32& commitment,
                     std::function<void(Result<Hash32>)> done) override;
  Result<std::optional<AnchorReceipt>> receipt(const Hash32& tx) override;

  // ---- EpochPeers over the fixture's bus ----
  void publish(const Response& response) override;
  void fetch(const NodeId& node, ShardId shard, Epoch epoch,
             std::function<void(Result<Response>)> done) override;
  void charge(const NodeId& node) override { charged.push_back(node); }

  // ---- ResponseStore in memory ----
  Status put(ShardId shard, Epoch epoch, const NodeId& node, ByteSpan response) override {
    kept[{shard.value, epoch.value}][node] = Bytes(response.begin(), response.end());
    return {};
  }
  Result<Bytes> get(ShardId shard, Epoch epoch, const NodeId& node) override {
    auto e = kept.find({shard.value, epoch.value});
    if (e == kept.end() || !e->second.count(node))
      return make_error(Errc::not_found, "no response kept");
    return e->second.at(node);
  }
  Result<std::vector<std::pair<NodeId, Bytes>>> list(ShardId shard, Epoch epoch) override {
    std::vector<std::pair<NodeId, Bytes>> out;
    if (auto e = kept.find({shard.value, epoch.value}); e != kept.end()) {
      for (const auto& kv : e->second) out.push_back(kv);
    }
    return out;
  }
  Status prune(ShardId shard, Epoch before) override {
    std::erase_if(kept, [&](const auto& kv) {
      return kv.first.first == shard.value && kv.first.second < before.value;
    });
    return {};
  }

  // ---- EpochObserver: what the test asserts on ----
  void walked(ShardId, Epoch epoch, double) override;
  void anchored(ShardId, Epoch epoch, BlockNumber block) override {
    anchored_in[epoch.value] = block.value;
  }

  void start();  // a fresh driver (a node (re)starting), following the chain from the next block
  const EpochResult* result(uint64_t epoch) const {
    for (const auto& r : history) {
      if (r.epoch.value == epoch) return &r;
    }
    return nullptr;
  }
  void recorded(const EpochResult& r) override { history.push_back(r); }

  EpochDriverTest& sim;
  SigningKey key;
  NodeId id;
  MemoryReplica replica;
  // The ProverSource the driver walks and opens over: the replica, unless
  // a test substitutes a damaging one.
  ProverSource* source = &replica;
  std::map<std::pair<uint32_t, uint64_t>, std::map<NodeId, Bytes>> kept;
  std::unique_ptr<EpochDriver> driver;
  // Anchors are submitted no earlier than this block (a slow node).
  uint64_t submit_from_block = 0;
  std::vector<std::tuple<ShardId, Epoch, Hash32, std::function<void(Result<Hash32>)>>> held;
  size_t queued = 0;
  // epoch -> (head block, virtual ms) when the walk finished; epoch -> anchor block.
  std::map<uint64_t, std::pair<uint64_t, int64_t>> walked_at;
  std::map<uint64_t, uint64_t> anchored_in;
  std::vector<NodeId> charged;
  std::vector<EpochResult> history;
};

// A ProverSource that answers openings with one flipped byte of the
// unsealed chunk: the node signs a response whose openings do not verify.
class DamagedOpenings final : public ProverSource {
 public:
  explicit DamagedOpenings(ProverSource& inner) : inner_(inner) {}
  Status read_sealed_chunk(ChunkPosition pos, MutableByteSpan out) override {
    return inner_.read_sealed_chunk(pos, out);
  }
  Result<ChunkOpening> open_chunk(ChunkPosition pos, BlockNumber start_block,
                                  uint64_t tree_size) override {
    auto o = inner_.open_chunk(pos, start_block, tree_size);
    if (o) o->unsealed[0] ^= 0x01;
    return o;
  }

 private:
  ProverSource& inner_;
};

class EpochDriverTest : public ::testing::Test {
 protected:
  EpochDriverTest()
      : rng(cairn::test::seeded_rng(61)),
        sequencer(test::key_from(rng)),
        uploader(test::key_from(rng)) {
    params = test::small_params();
    params.block_time_ms = 1000;
    contracts::DevChainSettings cs;
    cs.db_path = (dir / "chain").string();
    cs.sync_writes = false;
    cs.verify_threads = 1;
    auto c = contracts::DevChain::open(cs, sequencer, params, time);
    EXPECT_TRUE(c) << c.error().to_string();
    chain = std::move(*c);
    codec = *erasure::Codec::create(params);
    block_timer = clock.make_timer(io.get_executor());
  }
  ~EpochDriverTest() override {
    block_timer->cancel();
    for (auto& n : nodes) n->driver.reset();
  }

 public:
  // Nodes registered for shard 0 in block 1; `count` blobs uploaded in block 2.
  void setup(size_t node_count, size_t blobs) {
    std::vector<Hash32> txs;
    for (size_t i = 0; i < node_count; ++i) {
      nodes.push_back(std::make_unique<SimNode>(*this, test::key_from(rng)));
      auto& n = *nodes.back();
      auto tx = chain->submit(
          contracts::make_register_node(n.key, chain->info().chain_id, 1,
                                        "10.0.0." + std::to_string(i + 1) + ":9000", {ShardId{0}}));
      ASSERT_TRUE(tx) << tx.error().to_string();
      txs.push_back(*tx);
    }
    for (auto& n : nodes) n->start();
    arm_blocks();
    clock.advance(milliseconds(params.block_time_ms));  // block 1
    for (const Hash32& h : txs) {
      auto r = chain->receipt(h);
      ASSERT_TRUE(r && r->has_value() && (*r)->ok());
    }
    std::vector<erasure::CommittedBlob> committed;
    std::vector<Hash32> puts;
    for (size_t i = 0; i < blobs; ++i) {
      committed.push_back(
          *erasure::encode_and_commit(*codec, cairn::test::random_bytes(rng, params.blob_size)));
      auto tx =
          chain->submit(contracts::make_put_blob(uploader, chain->info().chain_id, i + 1,
                                                 committed.back().commitment.id, params.blob_size));
      ASSERT_TRUE(tx);
      puts.push_back(*tx);
    }
    clock.advance(milliseconds(params.block_time_ms));  // block 2
    for (size_t i = 0; i < blobs; ++i) {
      auto r = chain->receipt(puts[i]);
      ASSERT_TRUE(r && r->has_value() && (*r)->ok());
      for (auto& n : nodes) n->replica.add(*(*r)->blob_index, committed[i]);
    }
  }

  // Runs the chain on to block `n` (a block every block_time_ms).
  void run_to_block(uint64_t n) {
    const uint64_t head = chain->head()->number.value;
    ASSERT_GE(n, head);
    clock.advance(milliseconds(params.block_time_ms * (n - head)));
    ASSERT_EQ(chain->head()->number.value, n);
    ASSERT_EQ(clock.elapsed(), milliseconds(params.block_time_ms * n));
  }

  void arm_blocks() {
    block_timer->expires_after(milliseconds(params.block_time_ms), [this] {
      time->advance(params.block_time_ms);
      auto h = chain->produce_block();
      ASSERT_TRUE(h) << h.error().to_string();
      for (auto& n : nodes) {
        for (auto& [shard, epoch, commitment, done] : n->held) {
          if (h->number.value >= n->submit_from_block) {
            n->submit_anchor(shard, epoch, commitment, std::move(done));
            done = nullptr;
          }
        }
        std::erase_if(n->held, [](const auto& t) { return !std::get<3>(t); });
      }
      for (auto& n : nodes) {
        if (n->driver) n->driver->on_head(*h);
      }
      arm_blocks();
    });
  }

  JobQueue queue(SimNode& n) {
    return [this, &n](std::function<void()> run, std::function<void()>) -> Status {
      if (n.queued >= kQueueCapacity) return make_error(Errc::busy, "queue full");
      ++n.queued;
      asio::post(io, [&n, run = std::move(run)] {
        --n.queued;
        run();
      });
      return {};
    };
  }

  SimNode* node_of(const NodeId& id) {
    for (auto& n : nodes) {
      if (n->id == id) return n.get();
    }
    return nullptr;
  }

  uint64_t E() const { return params.epoch_blocks; }
  uint64_t D() const { return params.deadline_blocks; }
  // The block at which epoch e's results are recorded (settle_blocks = 2).
  uint64_t settled(uint64_t e) const { return e * E() + D() + settings.settle_blocks; }

  cairn::test::TempDir dir;
  std::mt19937_64 rng;
  SigningKey sequencer, uploader;
  erasure::NetworkParams params;
  ChallengeSettings settings;
  std::shared_ptr<contracts::ManualTime> time = std::make_shared<contracts::ManualTime>(kGenesisMs);
  std::unique_ptr<contracts::DevChain> chain;
  std::shared_ptr<const erasure::Codec> codec;
  asio::io_context io;
  p2p::ManualClock clock{io};
  std::unique_ptr<Timer> block_timer;
  std::vector<std::unique_ptr<SimNode>> nodes;
};

SimNode::SimNode(EpochDriverTest& s, const SigningKey& k)
    : sim(s),
      key(k),
      id(k.public_key()),
      replica(s.params, k.public_key(),
              [&s](BlobIndex index, BlockNumber b, uint64_t) -> Result<erasure::MerkleProof> {
                auto inc = s.chain->blob_inclusion(index, b);
                if (!inc) return tl::unexpected(inc.error());
                return inc->proof;
              }) {}

void SimNode::start() {
  driver = std::make_unique<EpochDriver>(sim.params, key, sim.settings,
                                         EpochEnv{sim.clock, sim.queue(*this), sim.queue(*this)},
                                         EpochPorts{*this, *this, *this, *source, this});
}

const contracts::ChainInfo& SimNode::info() const { return sim.chain->info(); }
std::optional<BlockNumber> SimNode::head() { return sim.chain->head()->number; }
Result<contracts::BlockHeader> SimNode::header(BlockNumber number) {
  return sim.chain->header(number);
}
Result<std::vector<contracts::BlockHeader>> SimNode::headers(BlockNumber from, uint32_t count) {
  return sim.chain->headers(from, count);
}
Result<Hash32> SimNode::randomness(BlockNumber number) { return sim.chain->randomness(number); }
std::vector<ShardMember> SimNode::members(ShardId shard) {
  std::vector<ShardMember> out;
  if (auto nodes = sim.chain->nodes(shard)) {
    for (const auto& r : *nodes) out.push_back({r.node_id, r.endpoint, r.registered_in});
  }
  return out;
}
Result<BlobPlace> SimNode::blob(const BlobId& id_) {
  auto r = sim.chain->blob_by_id(id_);
  if (!r) return tl::unexpected(r.error());
  if (!*r) return make_error(Errc::not_found, "blob not registered");
  return BlobPlace{(*r)->index, (*r)->registered_in};
}
Result<std::vector<AnchoredCommitment>> SimNode::anchored(ShardId shard, Epoch epoch) {
  auto records = sim.chain->responses(shard, epoch);
  if (!records) return tl::unexpected(records.error());
  std::vector<AnchoredCommitment> out;
  for (const auto& r : *records) out.push_back({r.node_id, r.response_hash, r.anchored_in, {}});
  return out;
}
Result<AnchoredCommitment> SimNode::anchor(const NodeId& node, ShardId shard, Epoch epoch) {
  auto inc = sim.chain->response_inclusion(node, shard, epoch);
  if (!inc) return tl::unexpected(inc.error());
  return AnchoredCommitment{inc->record.node_id, inc->record.response_hash, inc->record.anchored_in,
                            inc->proof};
}
void SimNode::submit_anchor(ShardId shard, Epoch epoch, const Hash32& commitment,
                            std::function<void(Result<Hash32>)> done) {
  if (sim.chain->head()->number.value < submit_from_block) {
    held.emplace_back(shard, epoch, commitment, std::move(done));
    return;
  }
  auto nonce = sim.chain->next_nonce(id);
  ASSERT_TRUE(nonce);
  auto tx = sim.chain->submit(contracts::make_submit_response(key, sim.chain->info().chain_id,
                                                              *nonce, shard, epoch, commitment));
  asio::post(sim.io,
             [done = std::move(done), tx = std::move(tx)]() mutable { done(std::move(tx)); });
}
Result<std::optional<AnchorReceipt>> SimNode::receipt(const Hash32& tx) {
  auto r = sim.chain->receipt(tx);
  if (!r) return tl::unexpected(r.error());
  if (!*r) return std::optional<AnchorReceipt>();
  AnchorReceipt out;
  out.block = (*r)->block;
  out.ok = (*r)->ok();
  out.duplicate = (*r)->status == contracts::TxStatus::duplicate_response;
  out.detail = std::string(contracts::tx_status_name((*r)->status));
  return std::optional<AnchorReceipt>(out);
}
void SimNode::publish(const Response& response) {
  auto shared = std::make_shared<const Response>(response);
  for (auto& n : sim.nodes) {
    if (n.get() == this || !n->driver) continue;
    if (n->driver->screen(*shared) != Admission::accept) continue;
    asio::post(sim.io, [peer = n.get(), shared] {
      if (peer->driver) peer->driver->received(shared);
    });
  }
}
void SimNode::fetch(const NodeId& node, ShardId shard, Epoch epoch,
                    std::function<void(Result<Response>)> done) {
  asio::post(sim.io, [this, node, shard, epoch, done = std::move(done)] {
    SimNode* peer = sim.node_of(node);
    if (peer == nullptr) return done(make_error(Errc::not_found, "no such node"));
    auto bytes = peer->get(shard, epoch, node);
    if (!bytes) return done(tl::unexpected(bytes.error()));
    done(Response::decode(*bytes));
  });
}
void SimNode::walked(ShardId, Epoch epoch, double) {
  walked_at[epoch.value] = {sim.chain->head()->number.value,
                            std::chrono::duration_cast<milliseconds>(sim.clock.elapsed()).count()};
}

std::set<NodeId> nodes_of(const std::vector<PeerEpochResult>& list) {
  std::set<NodeId> out;
  for (const auto& p : list) out.insert(p.node);
  return out;
}

TEST_F(EpochDriverTest, WalksAtEpochStartAnchorsInWindowAndCountsOnlyAnchorsInWindow) {
  setup(3, 6);
  SimNode& a = *nodes[0];
  SimNode& late = *nodes[1];
  SimNode& c = *nodes[2];
  // The late node's anchor reaches the chain only at block E+D: it lands in
  // block E+D+1, after the window (E, E+D].
  late.submit_from_block = E() + D();
  run_to_block(settled(1));

  for (SimNode* n : {&a, &c}) {
    // The walk ran at block E (virtual time E * block_time) and its anchor
    // is in block E+1, inside the window.
    ASSERT_TRUE(n->walked_at.count(1));
    EXPECT_EQ(n->walked_at[1].first, E());
    EXPECT_EQ(n->walked_at[1].second, static_cast<int64_t>(E() * params.block_time_ms));
    ASSERT_TRUE(n->anchored_in.count(1));
    EXPECT_EQ(n->anchored_in[1], E() + 1);
    const EpochResult* r = n->result(1);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->own, "anchored");
    EXPECT_EQ(r->anchored_in, BlockNumber{E() + 1});
    EXPECT_EQ(r->blob_count, 6u);
    EXPECT_EQ(r->valid, 2u) << "the two nodes anchored in the window count";
    EXPECT_TRUE(r->invalid.empty());
    ASSERT_EQ(r->missing.size(), 1u);
    EXPECT_EQ(r->missing[0].node, late.id);
    EXPECT_EQ(r->missing[0].endpoint, "10.0.0.2:9000");
    EXPECT_EQ(r->missing[0].reason, "no response anchored by the deadline");
  }
  // The late node walked in time too, but its anchor came after the window.
  EXPECT_EQ(late.walked_at[1].first, E());
  EXPECT_FALSE(late.anchored_in.count(1));
  const EpochResult* lr = late.result(1);
  ASSERT_NE(lr, nullptr);
  EXPECT_EQ(lr->own, "failed");
  EXPECT_NE(lr->own_detail.find("deadline_passed"), std::string::npos) << lr->own_detail;
  EXPECT_EQ(lr->valid, 2u);
  EXPECT_EQ(nodes_of(lr->missing), std::set<NodeId>{late.id});

  // The proof counts exactly the two responses anchored in the window.
  std::optional<Result<EpochProof>> proof;
  a.driver->proof(ShardId{0}, Epoch{1}, [&](Result<EpochProof> p) { proof = std::move(p); });
  clock.settle();
  ASSERT_TRUE(proof.has_value());
  ASSERT_TRUE(*proof) << proof->error().to_string();
  EXPECT_EQ((*proof)->replicas, 2u);
  auto report = verify_replica_proof((*proof)->bytes, TrustRoot::chain(chain->info()));
  ASSERT_TRUE(report) << report.error().to_string();
  EXPECT_EQ(report->replicas(), 2u);
  EXPECT_EQ(std::count(report->nodes.begin(), report->nodes.end(), late.id), 0);

  // A response naming an anchor block after the window is refused unverified.
  Response forged = *Response::decode(a.kept[{0, 1}].at(a.id));
  forged.node = late.id;
  forged.anchor_block = BlockNumber{E() + D() + 1};
  EXPECT_EQ(c.driver->screen(forged), Admission::reject);
  forged.anchor_block = BlockNumber{E() + D()};
  EXPECT_EQ(c.driver->screen(forged), Admission::accept);
}

TEST_F(EpochDriverTest, NodeWhoseResponseFailsVerificationIsRecordedInvalid) {
  setup(2, 4);
  SimNode& a = *nodes[0];
  SimNode& bad = *nodes[1];
  DamagedOpenings damaged(bad.replica);
  bad.source = &damaged;
  bad.start();  // walks its real replica, opens with damaged chunks
  run_to_block(settled(1));

  const EpochResult* r = a.result(1);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->own, "anchored");
  EXPECT_EQ(r->valid, 1u);
  ASSERT_EQ(r->invalid.size(), 1u);
  EXPECT_EQ(r->invalid[0].node, bad.id);
  EXPECT_EQ(r->invalid[0].endpoint, "10.0.0.2:9000");
  EXPECT_FALSE(r->invalid[0].reason.empty());
  EXPECT_TRUE(r->missing.empty());
  EXPECT_EQ(a.charged, std::vector<NodeId>{bad.id});
  EXPECT_FALSE(a.get(ShardId{0}, Epoch{1}, bad.id)) << "an invalid response is not kept";
  // The bad node's own answer went through: it cannot tell its openings are wrong.
  ASSERT_NE(bad.result(1), nullptr);
  EXPECT_EQ(bad.result(1)->own, "anchored");
  EXPECT_EQ(bad.anchored_in[1], E() + 1);
  std::cout << "invalid: " << r->invalid[0].reason << "\n";
}

TEST_F(EpochDriverTest, DriverRestartedMidEpochAnswersTheNextEpoch) {
  setup(2, 4);
  SimNode& a = *nodes[0];
  SimNode& b = *nodes[1];
  // Epoch 1 runs normally up to its anchors; a then restarts mid-epoch
  // (block E+3): a new driver over the same kept responses and replica.
  run_to_block(E() + 3);
  EXPECT_EQ(a.anchored_in[1], E() + 1);
  a.driver.reset();
  run_to_block(E() + 5);
  a.start();
  run_to_block(settled(2));

  // The restarted driver did not follow epoch 1 from its start: it records
  // nothing for it; b recorded a as valid there (its response came before
  // the restart).
  EXPECT_EQ(a.result(1), nullptr);
  ASSERT_NE(b.result(1), nullptr);
  EXPECT_EQ(b.result(1)->valid, 2u);
  // Epoch 2: walked at block 2E, anchored in 2E+1, counted by both.
  EXPECT_EQ(a.walked_at[2].first, 2 * E());
  EXPECT_EQ(a.walked_at[2].second, static_cast<int64_t>(2 * E() * params.block_time_ms));
  EXPECT_EQ(a.anchored_in[2], 2 * E() + 1);
  for (SimNode* n : {&a, &b}) {
    const EpochResult* r = n->result(2);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->own, "anchored");
    EXPECT_EQ(r->valid, 2u);
    EXPECT_TRUE(r->missing.empty());
    EXPECT_TRUE(r->invalid.empty());
  }
  ASSERT_EQ(a.driver->status().size(), 1u);
  EXPECT_EQ(a.driver->status()[0].epoch, Epoch{2});
}

}  // namespace
}  // namespace cairn::sampling
