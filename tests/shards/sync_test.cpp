// Shard sync against real RocksDB stores on disk, with the network replaced
// by MemoryNetwork (peers are other stores in this process, served the way
// the node serves them) and the chain by a VectorRegistry.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <set>
#include <thread>

#include "cairn/core/worker_pool.hpp"
#include "cairn/erasure/codec.hpp"
#include "cairn/p2p/clock.hpp"
#include "cairn/shards/ingest.hpp"
#include "cairn/shards/scrub.hpp"
#include "cairn/shards/sync.hpp"
#include "shards/memory_network.hpp"
#include "shards/store_testing.hpp"
#include "shards/sync_testing.hpp"
#include "support/process.hpp"
#include "support/test_util.hpp"

namespace cairn::shards {
namespace {

using namespace std::chrono_literals;
using testing::MemoryNetwork;
using testing::PeerBehavior;
using testing::PeerMode;
using testing::TestNode;

constexpr ShardId kShard{1};

class SyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    params_ = testing::sync_params();
    codec_ = *erasure::Codec::create(params_);
    auto rng = test::seeded_rng(5);
    corpus_ = testing::make_corpus(*codec_, params_.first_index(kShard), 40, rng);
    // Blobs of shard 0 come first in the registry; the shard under test is 1.
    auto filler = testing::make_corpus(*codec_, BlobIndex{0}, params_.blobs_per_shard, rng);
    for (const auto& b : filler.blobs) registry_.add(b);
    for (const auto& b : corpus_.blobs) registry_.add(b);
    for (uint8_t i = 0; i < 3; ++i) {
      sources_.push_back(
          testing::make_node(params_, dir_ / ("source" + std::to_string(i)), uint8_t(0x10 + i)));
      testing::ingest_corpus(*sources_.back(), *codec_, corpus_);
    }
    target_ = testing::make_node(params_, dir_ / "target", 0x77);
  }

  void TearDown() override {
    engine_.reset();
    pool_.reset();
  }

  void connect(size_t i, PeerBehavior behavior = {}) {
    net_.add_peer(sources_[i]->id, sources_[i]->store.get(), sources_[i]->seal, {kShard}, behavior);
  }

  SyncEngine& start(SyncSettings settings = fast_settings()) {
    pool_ = std::make_unique<WorkerPool>(WorkerPoolSettings{2, 64});
    engine_ = std::make_unique<SyncEngine>(*target_->store, *pool_, codec_, target_->seal,
                                           registry_, net_, settings, p2p::real_clock());
    EXPECT_TRUE(engine_->add_shard(kShard));
    return *engine_;
  }

  static SyncSettings fast_settings() {
    SyncSettings s;
    s.max_in_flight = 8;
    s.max_in_flight_per_peer = 3;
    s.retry_backoff_ms = 50;
    s.hedge_after_ms = 0;
    s.cursor_every_blobs = 4;
    s.plan_batch = 16;
    return s;
  }

  SyncProgress progress() const {
    auto all = engine_->progress();
    EXPECT_EQ(all.size(), 1u);
    return all.empty() ? SyncProgress{} : all.front();
  }

  // Every blob of the corpus reads back from the target, sealed with the
  // target's own identity (its stored bytes differ from every source's).
  void expect_target_holds_corpus() {
    for (size_t i = 0; i < corpus_.blobs.size(); ++i) {
      const BlobIndex index = corpus_.blobs[i].index;
      auto read = read_payload(*target_->store, *codec_, index, target_->seal.get());
      ASSERT_TRUE(read) << read.error().to_string();
      EXPECT_EQ(*read, corpus_.payloads[i]) << "index " << index.value;
      auto record = target_->store->get_blob_at(index);
      ASSERT_TRUE(record);
      EXPECT_EQ(record->encoding, FragmentEncoding::sealed);
      auto mine = target_->store->get_fragment(index, FragmentIndex{0});
      for (const auto& s : sources_) {
        auto theirs = s->store->get_fragment(index, FragmentIndex{0});
        ASSERT_TRUE(mine && theirs);
        EXPECT_NE(*mine, *theirs) << "index " << index.value << " is not sealed for the target";
      }
    }
  }

  test::TempDir dir_;
  erasure::NetworkParams params_;
  std::shared_ptr<const erasure::Codec> codec_;
  testing::Corpus corpus_;
  testing::VectorRegistry registry_{testing::sync_params()};
  std::vector<std::unique_ptr<TestNode>> sources_;
  std::unique_ptr<TestNode> target_;
  MemoryNetwork net_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<SyncEngine> engine_;
};

TEST_F(SyncTest, FetchesEveryBlobFromSeveralPeersAtOnce) {
  for (size_t i = 0; i < 3; ++i) connect(i, PeerBehavior{PeerMode::honest, 2ms});
  SyncEngine& engine = start();
  ASSERT_TRUE(engine.wait_synced(30s));

  expect_target_holds_corpus();
  for (const auto& s : sources_) EXPECT_GT(net_.requests_to(s->id), 0u) << "a peer was never used";
  const SyncProgress p = progress();
  EXPECT_EQ(p.state, SyncState::synced);
  EXPECT_EQ(p.known, corpus_.blobs.size());
  EXPECT_EQ(p.held, corpus_.blobs.size());
  EXPECT_EQ(p.remaining, 0u);
  EXPECT_EQ(p.fetched_blobs, corpus_.blobs.size());
  uint64_t payload_bytes = 0;
  for (const auto& b : corpus_.blobs) payload_bytes += b.length;
  EXPECT_EQ(p.fetched_bytes, payload_bytes);
  EXPECT_EQ(p.cursor, BlobIndex{params_.first_index(kShard).value + corpus_.blobs.size()});
  EXPECT_EQ(engine.stats().invalid_replies, 0u);
  // Only the shard's blobs were asked for, each once (no hedging, no failures).
  EXPECT_EQ(net_.requests().size(), corpus_.blobs.size());

  engine.stop();
  auto cursor = target_->store->get_sync_cursor(kShard);
  ASSERT_TRUE(cursor);
  EXPECT_EQ(cursor->next, p.cursor) << "the cursor on disk covers the whole shard";
}

TEST_F(SyncTest, NeverFetchesWhatTheStoreHolds) {
  // Half of the blobs are already here (uploads the node received itself).
  for (size_t i = 0; i < corpus_.blobs.size(); i += 2) {
    ASSERT_TRUE(ingest_payload(*target_->store, *codec_, corpus_.blobs[i].index,
                               corpus_.payloads[i], target_->seal.get()));
  }
  connect(0);
  SyncEngine& engine = start();
  ASSERT_TRUE(engine.wait_synced(30s));
  expect_target_holds_corpus();
  std::set<uint64_t> asked;
  for (const auto& [peer, req] : net_.requests()) asked.insert(req.index.value);
  for (size_t i = 0; i < corpus_.blobs.size(); ++i) {
    EXPECT_EQ(asked.count(corpus_.blobs[i].index.value), i % 2 == 0 ? 0u : 1u) << "blob " << i;
  }
  EXPECT_EQ(engine.stats().already_held, corpus_.blobs.size() / 2);
}

TEST_F(SyncTest, ResumesAfterAStopWithoutFetchingAgain) {
  connect(0, PeerBehavior{PeerMode::honest, 20ms});
  SyncSettings settings = fast_settings();
  settings.max_in_flight = 2;
  start(settings);
  ASSERT_TRUE(testing::eventually([&] { return progress().fetched_blobs >= 10; }));
  engine_->stop();
  engine_.reset();
  pool_.reset();
  const auto held_before = target_->store->list_shard(kShard);
  ASSERT_TRUE(held_before);
  ASSERT_GE(held_before->size(), 10u);
  ASSERT_LT(held_before->size(), corpus_.blobs.size()) << "the sync finished before it was stopped";
  auto cursor = target_->store->get_sync_cursor(kShard);
  ASSERT_TRUE(cursor);

  target_->reopen(params_);
  const size_t asked_before = net_.requests().size();
  net_.set_behavior(sources_[0]->id, PeerBehavior{});
  SyncEngine& engine = start();
  ASSERT_TRUE(engine.wait_synced(30s));
  expect_target_holds_corpus();
  const auto requests = net_.requests();
  for (size_t i = asked_before; i < requests.size(); ++i) {
    const BlobIndex asked = requests[i].second.index;
    EXPECT_FALSE(std::count(held_before->begin(), held_before->end(), asked))
        << "index " << asked.value << " was stored before the restart and fetched again";
    EXPECT_GE(asked, cursor->next);
  }
  EXPECT_EQ(requests.size() - asked_before, corpus_.blobs.size() - held_before->size());
}

TEST_F(SyncTest, RejectsBadDataAndAvoidsThePeerThatSentIt) {
  connect(0, PeerBehavior{PeerMode::corrupt, 1ms});
  connect(1, PeerBehavior{PeerMode::wrong_blob, 1ms});
  connect(2, PeerBehavior{PeerMode::honest, 5ms});
  SyncSettings settings = fast_settings();
  SyncEngine& engine = start(settings);
  ASSERT_TRUE(engine.wait_synced(30s));
  expect_target_holds_corpus();

  const SyncStats stats = engine.stats();
  EXPECT_GE(stats.invalid_replies, 2u);
  EXPECT_EQ(stats.blobs_fetched, corpus_.blobs.size());
  // Each liar gets only the requests sent before its first bad answer was
  // judged (a window of its in-flight cap, refilled once while that answer
  // is being verified), then none: it is avoided for bad_peer_avoid_ms.
  EXPECT_LE(net_.requests_to(sources_[0]->id), 2 * settings.max_in_flight_per_peer);
  EXPECT_LE(net_.requests_to(sources_[1]->id), 2 * settings.max_in_flight_per_peer);
  EXPECT_GE(net_.requests_to(sources_[2]->id),
            corpus_.blobs.size() - 4 * settings.max_in_flight_per_peer);
  bool reported0 = false, reported1 = false;
  for (const auto& [peer, verdict] : net_.reports()) {
    if (verdict != PeerVerdict::invalid_data) continue;
    reported0 = reported0 || peer == sources_[0]->id;
    reported1 = reported1 || peer == sources_[1]->id;
    EXPECT_NE(peer, sources_[2]->id) << "the honest peer was blamed";
  }
  EXPECT_TRUE(reported0 && reported1) << "bad peers are reported to the network layer";
}

TEST_F(SyncTest, ReplacesSlowSilentAndRefusingPeers) {
  connect(0, PeerBehavior{PeerMode::silent, 0ms});  // times out after 2 s
  connect(1, PeerBehavior{PeerMode::refuse_busy, 0ms});
  connect(2, PeerBehavior{PeerMode::honest, 2ms});
  SyncSettings settings = fast_settings();
  settings.hedge_after_ms = 100;
  const auto started = std::chrono::steady_clock::now();
  SyncEngine& engine = start(settings);
  testing::Ticker ticker([&] { engine.tick(); }, 20ms);
  ASSERT_TRUE(engine.wait_synced(30s));
  const auto took = std::chrono::steady_clock::now() - started;
  expect_target_holds_corpus();
  const SyncStats stats = engine.stats();
  EXPECT_GT(stats.fetches_hedged, 0u) << "requests stuck at the silent peer were duplicated";
  // Without hedging the silent peer would cost a 2 s timeout per blob it was given.
  EXPECT_LT(took, 2s) << "the silent peer held the sync back";
  EXPECT_EQ(net_.requests_to(sources_[1]->id), 0u) << "a refusing peer accepts nothing";
}

TEST_F(SyncTest, PeersThatLackTheBlobAreSkipped) {
  connect(0, PeerBehavior{PeerMode::missing, 0ms});
  connect(1, PeerBehavior{PeerMode::honest, 1ms});
  SyncEngine& engine = start();
  ASSERT_TRUE(engine.wait_synced(30s));
  expect_target_holds_corpus();
  EXPECT_GT(engine.stats().fetches_failed, 0u);
  EXPECT_EQ(engine.stats().invalid_replies, 0u) << "missing data is not bad data";
}

TEST_F(SyncTest, WaitsForPeersThenFollowsTheRegistry) {
  SyncSettings settings = fast_settings();
  SyncEngine& engine = start(settings);
  testing::Ticker ticker([&] { engine.tick(); }, 20ms);
  ASSERT_TRUE(testing::eventually([&] { return progress().known == corpus_.blobs.size(); }));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(progress().state, SyncState::waiting) << "no peer serves the shard yet";
  EXPECT_EQ(progress().held, 0u);

  connect(0);
  ASSERT_TRUE(engine.wait_synced(30s));
  expect_target_holds_corpus();

  // The chain registers more blobs of the shard; the peers get them too.
  auto rng = test::seeded_rng(6);
  const BlobIndex next{corpus_.blobs.back().index.value + 1};
  testing::Corpus more = testing::make_corpus(*codec_, next, 8, rng);
  testing::ingest_corpus(*sources_[0], *codec_, more);
  for (const auto& b : more.blobs) registry_.add(b);
  engine.registry_changed();
  ASSERT_TRUE(testing::eventually([&] { return progress().known == corpus_.blobs.size() + 8; }));
  ASSERT_TRUE(engine.wait_synced(30s));
  EXPECT_EQ(progress().held, corpus_.blobs.size() + 8);
  for (size_t i = 0; i < more.blobs.size(); ++i) {
    auto read = read_payload(*target_->store, *codec_, more.blobs[i].index, target_->seal.get());
    ASSERT_TRUE(read) << read.error().to_string();
    EXPECT_EQ(*read, more.payloads[i]);
  }
}

TEST_F(SyncTest, RegistryFailuresAreRetried) {
  registry_.fail_next(3);
  connect(0);
  SyncEngine& engine = start();
  testing::Ticker ticker([&] { engine.tick(); }, 20ms);
  ASSERT_TRUE(engine.wait_synced(30s));
  expect_target_holds_corpus();
  EXPECT_NE(progress().last_error.find("registry"), std::string::npos) << progress().last_error;
}

TEST_F(SyncTest, AnotherBlobAtARegisteredIndexIsLeftAndCounted) {
  // The store holds a different blob where the registry lists corpus blob 3.
  auto rng = test::seeded_rng(7);
  const Bytes other = test::random_bytes(rng, 100);
  ASSERT_TRUE(
      ingest_payload(*target_->store, *codec_, corpus_.blobs[3].index, other, target_->seal.get()));
  connect(0);
  SyncEngine& engine = start();
  ASSERT_TRUE(engine.wait_synced(30s));
  const SyncProgress p = progress();
  EXPECT_EQ(p.conflicts, 1u);
  EXPECT_EQ(p.held, corpus_.blobs.size());  // the store holds a blob at every index
  EXPECT_EQ(p.remaining, 0u);
  auto kept = read_payload(*target_->store, *codec_, corpus_.blobs[3].index, target_->seal.get());
  ASSERT_TRUE(kept);
  EXPECT_EQ(*kept, other) << "sync never overwrites a stored blob";
}

TEST_F(SyncTest, ProgressShowsBytesAndRateWhileFetching) {
  connect(0, PeerBehavior{PeerMode::honest, 10ms});
  SyncSettings settings = fast_settings();
  settings.max_in_flight = 2;
  SyncEngine& engine = start(settings);
  ASSERT_TRUE(testing::eventually([&] { return progress().fetched_blobs >= 5; }));
  const SyncProgress p = progress();
  EXPECT_EQ(p.state, SyncState::fetching);
  EXPECT_GT(p.fetched_bytes, 0u);
  EXPECT_GT(p.bytes_per_second, 0.0);
  EXPECT_EQ(p.known, corpus_.blobs.size());
  EXPECT_EQ(p.held + p.remaining, p.known);
  EXPECT_EQ(p.peers, 1u);
  EXPECT_EQ(std::string(sync_state_name(p.state)), "fetching");
  ASSERT_TRUE(engine.wait_synced(30s));
}

TEST_F(SyncTest, AnUnreadableRecordBehindTheCursorIsFetchedAgain) {
  connect(0);
  start();
  ASSERT_TRUE(engine_->wait_synced(30s));
  engine_.reset();
  pool_.reset();

  // A flipped byte in one blob record on disk, well behind the cursor.
  const BlobIndex victim = corpus_.blobs[6].index;
  target_->close();
  {
    testing::RawDb raw(target_->dir);
    const auto key = testing::blob_key(params_, victim);
    std::string v = *raw.get(format::Family::blobs, key);
    v[10] = static_cast<char>(v[10] ^ 0x01);
    raw.put(format::Family::blobs, key, v);
    raw.flush();
  }
  target_->reopen(params_);
  ASSERT_EQ(target_->store->get_blob_at(victim).error().code, Errc::corruption);

  const size_t asked_before = net_.requests().size();
  SyncEngine& engine = start();
  ASSERT_TRUE(engine.wait_synced(30s));
  EXPECT_EQ(net_.requests().size(), asked_before)
      << "the cursor covers the shard: nothing to fetch";

  // The scrubber cannot judge the blob and hands it to sync.
  ScrubSettings scrub;
  scrub.bytes_per_second = uint64_t{64} << 20;
  scrub.max_queued_jobs = 64;
  Scrubber scrubber(*target_->store, *pool_, codec_, target_->seal, nullptr, scrub,
                    p2p::real_clock());
  scrubber.on_unreadable([&](BlobIndex i) { EXPECT_TRUE(engine.refetch(i)); });
  testing::Ticker ticker([&] { scrubber.tick(); }, 10ms);
  ASSERT_TRUE(testing::eventually([&] { return engine.stats().blobs_fetched == 1; }));
  ASSERT_TRUE(engine.wait_synced(30s));
  // The scrubber adds a job's counts when the job ends, which may be after
  // the refetch it triggered completed.
  EXPECT_TRUE(testing::eventually([&] { return scrubber.stats().records_corrupt == 1u; }))
      << scrubber.stats().records_corrupt;
  expect_target_holds_corpus();
  EXPECT_EQ(net_.requests().back().second.index, victim);
  EXPECT_EQ(engine.refetch(BlobIndex{0}).error().code, Errc::not_found)
      << "shard 0 is not synced here";
}

// ---- a sync killed with SIGKILL ----

// The child half of KilledMidSyncResumes: runs only when the parent set
// CAIRN_SYNC_CRASH_DIR, syncs the prepared target slowly and prints the
// number of blobs held until it is killed.
TEST(SyncCrash, Child) {
  const char* dir_env = std::getenv("CAIRN_SYNC_CRASH_DIR");
  if (dir_env == nullptr) GTEST_SKIP() << "the child half of SyncCrash.KilledMidSyncResumes";
  const std::filesystem::path dir(dir_env);
  const auto params = testing::sync_params();
  auto codec = *erasure::Codec::create(params);
  auto source = testing::make_node(params, dir / "source", 0x10);
  auto target = testing::make_node(params, dir / "target", 0x77);
  testing::VectorRegistry registry(params);
  auto page = source->store->scan_blobs(BlobIndex{0}, 1000);
  ASSERT_TRUE(page);
  for (const BlobRecord& r : page->records) registry.add(RegisteredBlob{r.index, r.id, r.length});
  MemoryNetwork net;
  net.add_peer(source->id, source->store.get(), source->seal, {ShardId{0}},
               PeerBehavior{PeerMode::honest, 30ms});
  WorkerPool pool(WorkerPoolSettings{2, 64});
  SyncSettings settings;
  settings.max_in_flight = 2;
  settings.cursor_every_blobs = 3;
  SyncEngine engine(*target->store, pool, codec, target->seal, registry, net, settings,
                    p2p::real_clock());
  ASSERT_TRUE(engine.add_shard(ShardId{0}));
  // Runs until the parent kills it; the bound only guards against an orphan.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    for (const auto& p : engine.progress()) std::cout << "held " << p.held << std::endl;
    std::this_thread::sleep_for(5ms);
  }
  FAIL() << "the parent never killed this process";
}

std::filesystem::path self_exe() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return {};
  return std::filesystem::path(std::string(buf, static_cast<size_t>(n)));
}

TEST(SyncCrash, KilledMidSyncResumes) {
  test::TempDir dir;
  const auto params = testing::sync_params();
  auto codec = *erasure::Codec::create(params);
  auto rng = test::seeded_rng(8);
  const testing::Corpus corpus = testing::make_corpus(*codec, BlobIndex{0}, 48, rng);
  {
    auto source = testing::make_node(params, dir / "source", 0x10);
    testing::ingest_corpus(*source, *codec, corpus);
    source->close();
  }
  {
    ::setenv("CAIRN_SYNC_CRASH_DIR", dir.path().c_str(), 1);
    test::Process child({self_exe().string(), "--gtest_filter=SyncCrash.Child"}, dir / "child");
    ::unsetenv("CAIRN_SYNC_CRASH_DIR");
    ASSERT_TRUE(child.wait_for_output("held 20", 60s))
        << child.stdout_text() << child.stderr_text();
    child.stop(SIGKILL);
  }

  // What the killed process left: only whole, verified blobs, and a cursor
  // that never runs ahead of them.
  auto target = testing::make_node(params, dir / "target", 0x77);
  auto held = target->store->list_shard(ShardId{0});
  ASSERT_TRUE(held);
  ASSERT_GE(held->size(), 20u);
  ASSERT_LT(held->size(), corpus.blobs.size()) << "the child finished before it was killed";
  for (BlobIndex i : *held) {
    auto read = read_payload(*target->store, *codec, i, target->seal.get());
    ASSERT_TRUE(read) << read.error().to_string();
    EXPECT_EQ(*read, corpus.payloads[i.value]);
  }
  auto cursor = target->store->get_sync_cursor(ShardId{0});
  ASSERT_TRUE(cursor) << "the cursor was persisted along the way";
  for (uint64_t i = 0; i < cursor->next.value; ++i) {
    EXPECT_TRUE(std::count(held->begin(), held->end(), BlobIndex{i}))
        << "cursor passed missing index " << i;
  }

  // Resume: only what is missing is fetched.
  auto source = testing::make_node(params, dir / "source", 0x10);
  testing::VectorRegistry registry(params);
  for (const auto& b : corpus.blobs) registry.add(b);
  MemoryNetwork net;
  net.add_peer(source->id, source->store.get(), source->seal, {ShardId{0}});
  {
    WorkerPool pool(WorkerPoolSettings{2, 64});
    SyncEngine engine(*target->store, pool, codec, target->seal, registry, net, SyncSettings{},
                      p2p::real_clock());
    ASSERT_TRUE(engine.add_shard(ShardId{0}));
    ASSERT_TRUE(engine.wait_synced(30s));
    EXPECT_EQ(engine.stats().blobs_fetched, corpus.blobs.size() - held->size());
  }
  for (const auto& [peer, req] : net.requests()) {
    EXPECT_FALSE(std::count(held->begin(), held->end(), req.index))
        << "fetched stored index " << req.index.value;
  }
  for (size_t i = 0; i < corpus.blobs.size(); ++i) {
    auto read = read_payload(*target->store, *codec, corpus.blobs[i].index, target->seal.get());
    ASSERT_TRUE(read) << read.error().to_string();
    EXPECT_EQ(*read, corpus.payloads[i]);
  }
}

}  // namespace
}  // namespace cairn::shards
