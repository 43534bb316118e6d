// Hints to shard sync (announced uploads) on a manual clock: the hinted
// blob is fetched at once from the hinted peers, ahead of the walk, on its
// own slots; held or contradicted blobs are not fetched; the hints held are
// bounded; a failed round is retried hint_retry_ms later, on the clock.
// Peers are real sealed stores served as the node serves; the pool runs its
// jobs on the io_context, so every step happens at an exact virtual time.

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <optional>
#include <vector>

#include "cairn/core/worker_pool.hpp"
#include "cairn/erasure/codec.hpp"
#include "cairn/p2p/clock.hpp"
#include "cairn/shards/ingest.hpp"
#include "cairn/shards/sync.hpp"
#include "shards/clocked_peers.hpp"
#include "shards/memory_network.hpp"
#include "shards/sync_testing.hpp"
#include "support/test_util.hpp"

namespace cairn::shards {
namespace {

using namespace std::chrono_literals;
using testing::ClockedPeers;
using testing::PeerAnswer;

constexpr ShardId kHintShard{1};
// Blobs of the shard under test; the registry lists only the first
// kListed to the walk (the rest are fresh uploads, held back as the node's
// settle delay does).
constexpr size_t kBlobs = 8;
constexpr size_t kListed = 4;

class RecordingObserver final : public SyncObserver {
 public:
  struct Done {
    RegisteredBlob blob;
    HintOutcome outcome;
    Duration waited;
  };
  void hint_done(ShardId, const RegisteredBlob& blob, HintOutcome outcome,
                 Duration waited) override {
    done.push_back(Done{blob, outcome, waited});
  }
  std::vector<Done> done;
};

class SyncHintTest : public ::testing::Test {
 protected:
  void SetUp() override {
    params_ = testing::sync_params();
    codec_ = *erasure::Codec::create(params_);
    auto rng = test::seeded_rng(17);
    auto filler = testing::make_corpus(*codec_, BlobIndex{0}, params_.blobs_per_shard, rng);
    for (const auto& b : filler.blobs) registry_.add(b);
    corpus_ = testing::make_corpus(*codec_, params_.first_index(kHintShard), kBlobs, rng);
    for (const auto& b : corpus_.blobs) registry_.add(b);
    registry_.list_only(params_.first_index(kHintShard).value + kListed);
    announcer_ = testing::make_node(params_, dir_ / "announcer", 0x21);
    source_ = testing::make_node(params_, dir_ / "source", 0x22);
    testing::ingest_corpus(*announcer_, *codec_, corpus_);
    testing::ingest_corpus(*source_, *codec_, corpus_);
    target_ = testing::make_node(params_, dir_ / "target", 0x23);
  }

  // Everything under way completes first: stop() waits for the engine's
  // jobs and fetches, which run on this thread.
  void TearDown() override {
    clock_.advance(60s);
    clock_.settle();
    if (engine_) engine_->stop();
  }

  static SyncSettings settings() {
    SyncSettings s;
    s.max_in_flight = 1;  // the walk fetches one blob at a time
    s.hedge_after_ms = 0;
    s.retry_backoff_ms = 5000;
    s.hint_retry_ms = 1000;
    s.max_hint_rounds = 30;
    s.cursor_every_blobs = 1;
    return s;
  }

  SyncEngine& start(SyncSettings s = settings()) {
    engine_ = std::make_unique<SyncEngine>(*target_->store, pool_, codec_, target_->seal, registry_,
                                           peers_, s, clock_, &observer_);
    EXPECT_TRUE(engine_->add_shard(kHintShard));
    return *engine_;
  }

  // The hint an announcement of blob `i` of the corpus gives.
  BlobHint hint(size_t i, std::vector<NodeId> peers) const {
    const RegisteredBlob& b = corpus_.blobs[i];
    return BlobHint{b.id, b.index, b.length, std::move(peers)};
  }

  bool held(size_t i) const {
    return target_->store->get_blob_at(corpus_.blobs[i].index).has_value();
  }

  // Requests for blob `i`, with the virtual time each was sent at.
  std::vector<ClockedPeers::Sent> requests_for(size_t i) const {
    std::vector<ClockedPeers::Sent> out;
    for (const auto& s : peers_.sent()) {
      if (s.request.index == corpus_.blobs[i].index) out.push_back(s);
    }
    return out;
  }

  test::TempDir dir_;
  erasure::NetworkParams params_;
  std::shared_ptr<const erasure::Codec> codec_;
  testing::Corpus corpus_;
  testing::VectorRegistry registry_{testing::sync_params()};
  std::unique_ptr<testing::TestNode> announcer_, source_, target_;
  asio::io_context io_;
  p2p::ManualClock clock_{io_};
  WorkerPool pool_{WorkerPoolSettings{1, 1024},
                   [this](WorkerPool::Job job) { asio::post(io_, std::move(job)); }};
  ClockedPeers peers_{io_, clock_, 5s};
  RecordingObserver observer_;
  std::unique_ptr<SyncEngine> engine_;
};

TEST_F(SyncHintTest, AHintedBlobIsFetchedAndStoredAtOnceAheadOfTheWalk) {
  // The announcer does not serve the shard (an uploader elsewhere); the
  // source does, and is what the walk uses.
  peers_.add(announcer_->id, announcer_.get(), PeerAnswer::honest, 10ms, /*listed=*/false);
  peers_.add(source_->id, source_.get(), PeerAnswer::honest, 10ms);
  SyncEngine& engine = start();
  const size_t fresh = kBlobs - 1;  // not listed to the walk
  ASSERT_TRUE(engine.hint(kHintShard, hint(fresh, {announcer_->id})));
  clock_.settle();

  const auto asked = requests_for(fresh);
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].peer, announcer_->id) << "the announcer is asked first";
  EXPECT_EQ(asked[0].at, 0ms) << "the hint waited";
  // The walk's one slot is taken; the hint had a slot of its own.
  ASSERT_EQ(peers_.sent().size(), 2u);

  clock_.advance(10ms);
  clock_.settle();
  EXPECT_TRUE(held(fresh));
  ASSERT_EQ(observer_.done.size(), 1u);
  EXPECT_EQ(observer_.done[0].outcome, HintOutcome::stored);
  EXPECT_EQ(observer_.done[0].blob, corpus_.blobs[fresh]);
  EXPECT_EQ(observer_.done[0].waited, 10ms);
  // By then the walk stored its first blob only.
  EXPECT_TRUE(held(0));
  EXPECT_FALSE(held(1));
  const SyncStats st = engine.stats();
  EXPECT_EQ(st.hints, 1u);
  EXPECT_EQ(st.hints_stored, 1u);
  EXPECT_EQ(st.hints_pending, 0u);
  EXPECT_GT(st.hint_wire_bytes, 0u);

  // The walk goes on over the listed blobs, one at a time, never fetching
  // the hinted one again; the cursor stops below what the walk has not
  // reached.
  clock_.advance(30ms);
  clock_.settle();
  for (size_t i = 0; i < kListed; ++i) EXPECT_TRUE(held(i)) << "blob " << i;
  EXPECT_EQ(requests_for(fresh).size(), 1u);
  EXPECT_EQ(engine.progress().front().cursor,
            BlobIndex{params_.first_index(kHintShard).value + kListed});
}

TEST_F(SyncHintTest, AHintedBlobTheWalkQueuedMovesAhead) {
  peers_.add(source_->id, source_.get(), PeerAnswer::honest, 10ms);
  SyncEngine& engine = start();
  clock_.settle();  // the plan queued the listed blobs; blob 0 is fetching
  ASSERT_TRUE(engine.hint(kHintShard, hint(kListed - 1, {source_->id})));
  clock_.settle();
  const auto asked = requests_for(kListed - 1);
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].at, 0ms);
  clock_.advance(10ms);
  clock_.settle();
  EXPECT_TRUE(held(kListed - 1));
  EXPECT_FALSE(held(1));
  ASSERT_EQ(observer_.done.size(), 1u);
  EXPECT_EQ(observer_.done[0].outcome, HintOutcome::stored);
}

TEST_F(SyncHintTest, AHintForAHeldOrContradictedBlobFetchesNothing) {
  peers_.add(announcer_->id, announcer_.get(), PeerAnswer::honest, 10ms, /*listed=*/false);
  const size_t fresh = kBlobs - 1;
  ASSERT_TRUE(ingest_payload(*target_->store, *codec_, corpus_.blobs[fresh].index,
                             corpus_.payloads[fresh], target_->seal.get()));
  SyncEngine& engine = start();
  ASSERT_TRUE(engine.hint(kHintShard, hint(fresh, {announcer_->id})));
  // An announcement the registry contradicts (another length).
  BlobHint lying = hint(fresh - 1, {announcer_->id});
  lying.length += 1;
  ASSERT_TRUE(engine.hint(kHintShard, lying));
  clock_.settle();
  clock_.advance(1s);
  clock_.settle();
  EXPECT_TRUE(requests_for(fresh).empty());
  EXPECT_TRUE(requests_for(fresh - 1).empty());
  ASSERT_EQ(observer_.done.size(), 2u);
  EXPECT_EQ(observer_.done[0].outcome, HintOutcome::already_held);
  EXPECT_EQ(observer_.done[0].waited, 0ms);
  EXPECT_EQ(observer_.done[1].outcome, HintOutcome::rejected);
  const SyncStats st = engine.stats();
  EXPECT_EQ(st.hints_already_held, 1u);
  EXPECT_EQ(st.hints_rejected, 1u);
  EXPECT_EQ(st.hints_pending, 0u);
  // A hint outside its shard is refused outright.
  EXPECT_EQ(engine.hint(ShardId{0}, hint(fresh, {})).error().code, Errc::invalid_argument);
  EXPECT_EQ(
      engine.hint(ShardId{2}, BlobHint{corpus_.blobs[0].id, params_.first_index(ShardId{2}), 1, {}})
          .error()
          .code,
      Errc::not_found);
}

TEST_F(SyncHintTest, TheHintsHeldAreBoundedAndDropsCounted) {
  peers_.add(announcer_->id, announcer_.get(), PeerAnswer::honest, 10s, /*listed=*/false);
  SyncSettings s = settings();
  s.max_hints = 2;
  SyncEngine& engine = start(s);
  ASSERT_TRUE(engine.hint(kHintShard, hint(kListed, {announcer_->id})));
  ASSERT_TRUE(engine.hint(kHintShard, hint(kListed + 1, {announcer_->id})));
  auto third = engine.hint(kHintShard, hint(kListed + 2, {announcer_->id}));
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error().code, Errc::busy);
  // A second announcement of a held hint is merged, not counted.
  EXPECT_TRUE(engine.hint(kHintShard, hint(kListed, {source_->id})));
  clock_.settle();
  SyncStats st = engine.stats();
  EXPECT_EQ(st.hints, 2u);
  EXPECT_EQ(st.hints_dropped, 1u);
  EXPECT_EQ(st.hints_pending, 2u);
  EXPECT_TRUE(requests_for(kListed + 2).empty());
  EXPECT_EQ(requests_for(kListed).size(), 1u);

  // Once they are stored, there is room again.
  clock_.advance(10s);
  clock_.settle();
  EXPECT_EQ(engine.stats().hints_pending, 0u);
  EXPECT_TRUE(engine.hint(kHintShard, hint(kListed + 2, {announcer_->id})));
  clock_.settle();
  EXPECT_EQ(requests_for(kListed + 2).size(), 1u);
}

TEST_F(SyncHintTest, AFailedHintIsRetriedOnTheClock) {
  // Nobody serves the shard yet; the announcer lacks the blob at first.
  peers_.add(announcer_->id, announcer_.get(), PeerAnswer::missing, 10ms, /*listed=*/false);
  SyncEngine& engine = start();
  const size_t fresh = kBlobs - 1;
  ASSERT_TRUE(engine.hint(kHintShard, hint(fresh, {announcer_->id})));
  clock_.settle();
  clock_.advance(10ms);
  clock_.settle();
  EXPECT_FALSE(held(fresh));
  EXPECT_EQ(engine.stats().hint_fetches_failed, 1u);
  peers_.add(announcer_->id, announcer_.get(), PeerAnswer::honest, 10ms, /*listed=*/false);

  // Retried hint_retry_ms after the failed round (10 ms), at the first tick
  // from then on, and not before.
  clock_.advance(999ms);
  engine.tick();
  clock_.settle();
  EXPECT_EQ(requests_for(fresh).size(), 1u) << "retried before hint_retry_ms";
  clock_.advance(1ms);
  engine.tick();
  clock_.settle();
  const auto asked = requests_for(fresh);
  ASSERT_EQ(asked.size(), 2u);
  EXPECT_EQ(asked[0].at, 0ms);
  EXPECT_EQ(asked[1].at, 1010ms);
  clock_.advance(10ms);
  clock_.settle();
  EXPECT_TRUE(held(fresh));
  ASSERT_EQ(observer_.done.size(), 1u);
  EXPECT_EQ(observer_.done[0].outcome, HintOutcome::stored);
  EXPECT_EQ(observer_.done[0].waited, 1020ms);
}

TEST_F(SyncHintTest, AHintNoPeerServesIsGivenUpToTheWalk) {
  peers_.add(announcer_->id, announcer_.get(), PeerAnswer::missing, 10ms, /*listed=*/false);
  SyncSettings s = settings();
  s.max_hint_rounds = 2;
  SyncEngine& engine = start(s);
  const size_t fresh = kBlobs - 1;
  ASSERT_TRUE(engine.hint(kHintShard, hint(fresh, {announcer_->id})));
  for (int i = 0; i < 4; ++i) {
    clock_.advance(1010ms);
    engine.tick();
    clock_.settle();
  }
  EXPECT_EQ(requests_for(fresh).size(), 2u);
  ASSERT_EQ(observer_.done.size(), 1u);
  EXPECT_EQ(observer_.done[0].outcome, HintOutcome::given_up);
  const SyncStats st = engine.stats();
  EXPECT_EQ(st.hints_dropped, 1u);
  EXPECT_EQ(st.hints_pending, 0u);
}

}  // namespace
}  // namespace cairn::shards
