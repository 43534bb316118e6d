// Scrub and repair on real RocksDB stores: damage written underneath the
// store (a flipped byte in a value on disk, a well-checksummed value with the
// wrong bytes) is found at a bounded rate and rebuilt from local parity, or
// with fragments from peers when too few good ones remain.

#include <gtest/gtest.h>

#include <asio/any_io_executor.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "cairn/core/worker_pool.hpp"
#include "cairn/erasure/codec.hpp"
#include "cairn/p2p/clock.hpp"
#include "cairn/shards/gather.hpp"
#include "cairn/shards/ingest.hpp"
#include "cairn/shards/scrub.hpp"
#include "shards/memory_network.hpp"
#include "shards/store_testing.hpp"
#include "shards/sync_testing.hpp"
#include "support/test_util.hpp"

namespace cairn::shards {
namespace {

using namespace std::chrono_literals;
using format::Family;
using testing::MemoryNetwork;
using testing::TestNode;

class ScrubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    params_ = testing::sync_params();
    codec_ = *erasure::Codec::create(params_);
    auto rng = test::seeded_rng(11);
    corpus_ = testing::make_corpus(*codec_, BlobIndex{0}, 12, rng);
    node_ = testing::make_node(params_, dir_ / "node", 0x21);
    testing::ingest_corpus(*node_, *codec_, corpus_);
    blob_bytes_ = uint64_t{params_.total_fragments()} * params_.fragment_size();
  }

  void TearDown() override {
    stop_all();
    pool_.reset();
  }

  // Flips one byte of a stored fragment value in RocksDB, under a closed store.
  void flip_on_disk(BlobIndex index, uint8_t fragment) {
    node_->close();
    {
      testing::RawDb raw(node_->dir);
      const auto key = testing::fragment_key(params_, index, fragment);
      std::string v = *raw.get(Family::fragments, key);
      v[v.size() / 2] = static_cast<char>(v[v.size() / 2] ^ 0x40);
      raw.put(Family::fragments, key, v);
      raw.flush();
    }
    node_->reopen(params_);
  }

  // Overwrites a fragment with random bytes in a valid envelope: only the
  // commitment check after unsealing can tell.
  void overwrite(BlobIndex index, uint8_t fragment) {
    auto rng = test::seeded_rng(100 + fragment);
    ASSERT_TRUE(node_->store->put_fragment(index, FragmentIndex{fragment},
                                           test::random_bytes(rng, params_.fragment_size())));
  }

  // With `remote`, peers' fragments come through a FragmentGather on an
  // io_context thread of the test's own, as the node's come through its
  // network thread.
  Scrubber& start(ScrubSettings settings, RemoteFragments* remote = nullptr) {
    pool_ = std::make_unique<WorkerPool>(WorkerPoolSettings{2, 64});
    if (remote != nullptr) {
      work_.emplace(io_.get_executor());
      io_thread_ = std::thread([this] { io_.run(); });
      gather_ = std::make_unique<FragmentGather>(
          *remote, *pool_, p2p::real_clock(), io_.get_executor(),
          [this](std::function<void()> fn) { asio::post(io_, std::move(fn)); }, params_,
          GatherSettings{});
    }
    scrubber_ = std::make_unique<Scrubber>(*node_->store, *pool_, codec_, node_->seal,
                                           gather_.get(), settings, clock_);
    return *scrubber_;
  }

  // Stops the scrubber, then the gather and its thread (before the peers a
  // test made go away).
  void stop_all() {
    scrubber_.reset();
    if (gather_) {
      std::promise<void> stopped;
      asio::post(io_, [&] {
        gather_->stop();
        stopped.set_value();
      });
      stopped.get_future().wait();
      work_.reset();
      io_thread_.join();
      gather_.reset();
    }
  }

  // The scrubber reads only the clock's time, from its jobs; the clock's
  // own io_context has no work, so advance() just moves the time.
  void advance(std::chrono::milliseconds d) { clock_.advance(d); }

  // Ticks with the manual clock moving one second per tick until `pred`.
  bool tick_until(const std::function<bool()>& pred, int max_ticks = 200) {
    for (int i = 0; i < max_ticks; ++i) {
      if (pred()) return true;
      advance(1s);
      scrubber_->tick();
      std::this_thread::sleep_for(2ms);
    }
    return testing::eventually(pred, 5s);
  }

  static ScrubSettings fast() {
    ScrubSettings s;
    s.bytes_per_second = uint64_t{64} << 20;
    s.max_job_bytes = uint64_t{1} << 20;
    s.pass_pause_s = 3600;
    s.max_queued_jobs = 8;
    return s;
  }

  void expect_all_good() {
    for (size_t i = 0; i < corpus_.blobs.size(); ++i) {
      auto h = check_blob(*node_->store, corpus_.blobs[i].index, node_->seal.get());
      ASSERT_TRUE(h) << h.error().to_string();
      EXPECT_TRUE(h->bad.empty()) << "index " << i << " still has " << h->bad.size()
                                  << " bad fragments";
      auto read = read_payload(*node_->store, *codec_, corpus_.blobs[i].index, node_->seal.get());
      ASSERT_TRUE(read) << read.error().to_string();
      EXPECT_EQ(*read, corpus_.payloads[i]);
    }
  }

  test::TempDir dir_;
  erasure::NetworkParams params_;
  std::shared_ptr<const erasure::Codec> codec_;
  testing::Corpus corpus_;
  std::unique_ptr<TestNode> node_;
  uint64_t blob_bytes_ = 0;
  asio::io_context clock_io_;
  p2p::ManualClock clock_{clock_io_};
  std::unique_ptr<WorkerPool> pool_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread io_thread_;
  std::unique_ptr<FragmentGather> gather_;
  std::unique_ptr<Scrubber> scrubber_;
};

TEST_F(ScrubTest, FindsAFlippedByteOnDiskAndRebuildsItFromLocalParity) {
  const BlobIndex index = corpus_.blobs[5].index;
  const Bytes before = *node_->store->get_fragment(index, FragmentIndex{2});
  flip_on_disk(index, 2);
  ASSERT_FALSE(node_->store->get_fragment(index, FragmentIndex{2})) << "the flip must be visible";
  // A read still returns the right bytes meanwhile (it decodes around the damage).
  auto read = read_payload(*node_->store, *codec_, index, node_->seal.get());
  ASSERT_TRUE(read) << read.error().to_string();
  EXPECT_EQ(*read, corpus_.payloads[5]);

  Scrubber& scrubber = start(fast());
  ASSERT_TRUE(tick_until([&] { return scrubber.stats().passes >= 1; }));
  const ScrubStats s = scrubber.stats();
  EXPECT_EQ(s.blobs_scrubbed, corpus_.blobs.size());
  EXPECT_EQ(s.bytes_scrubbed, corpus_.blobs.size() * blob_bytes_ - params_.fragment_size())
      << "every fragment but the unreadable one was read";
  EXPECT_EQ(s.fragments_checked, corpus_.blobs.size() * params_.total_fragments());
  EXPECT_GT(s.last_pass_unix_ms, 0u);
  EXPECT_EQ(s.fragments_bad, 1u);
  EXPECT_EQ(s.fragments_repaired_local, 1u);
  EXPECT_EQ(s.fragments_repaired_remote, 0u);
  EXPECT_EQ(s.fragments_unrepairable, 0u);
  // The fragment on disk is exactly what was there before: sealed, for this node.
  auto after = node_->store->get_fragment(index, FragmentIndex{2});
  ASSERT_TRUE(after) << after.error().to_string();
  EXPECT_EQ(*after, before);
  expect_all_good();
}

TEST_F(ScrubTest, FindsWrongBytesThatPassTheChecksumByTheCommitment) {
  overwrite(corpus_.blobs[0].index, 0);
  overwrite(corpus_.blobs[7].index, 5);  // a parity fragment
  Scrubber& scrubber = start(fast());
  ASSERT_TRUE(tick_until([&] { return scrubber.stats().passes >= 1; }));
  EXPECT_EQ(scrubber.stats().fragments_bad, 2u);
  EXPECT_EQ(scrubber.stats().fragments_repaired_local, 2u);
  expect_all_good();
}

TEST_F(ScrubTest, RepairsFromPeersWhenLocalParityIsNotEnough) {
  // m + 1 = 3 of 6 fragments gone: k = 4 cannot be met locally.
  const BlobIndex index = corpus_.blobs[3].index;
  for (int f : {0, 2, 4}) overwrite(index, static_cast<uint8_t>(f));
  ASSERT_FALSE(read_payload(*node_->store, *codec_, index, node_->seal.get()));

  auto peer = testing::make_node(params_, dir_ / "peer", 0x24);
  testing::ingest_corpus(*peer, *codec_, corpus_);
  auto liar = testing::make_node(params_, dir_ / "liar", 0x22);
  testing::ingest_corpus(*liar, *codec_, corpus_);
  MemoryNetwork net;
  // The liar is asked first (lower id); its flipped bytes must be refused.
  net.add_peer(liar->id, liar->store.get(), liar->seal, {ShardId{0}},
               testing::PeerBehavior{testing::PeerMode::corrupt, 0ms});
  net.add_peer(peer->id, peer->store.get(), peer->seal, {ShardId{0}});

  Scrubber& scrubber = start(fast(), &net);
  ASSERT_TRUE(tick_until([&] { return scrubber.stats().fragments_repaired_remote >= 3; }));
  const ScrubStats s = scrubber.stats();
  EXPECT_EQ(s.fragments_bad, 3u);
  EXPECT_EQ(s.fragments_repaired_local, 0u);
  EXPECT_EQ(s.fragments_repaired_remote, 3u);
  EXPECT_EQ(s.fragments_unrepairable, 0u);
  expect_all_good();
  bool liar_reported = false;
  for (const auto& [id, verdict] : net.reports()) {
    liar_reported = liar_reported || (id == liar->id && verdict == PeerVerdict::invalid_data);
  }
  EXPECT_TRUE(liar_reported);
  stop_all();
}

TEST_F(ScrubTest, CountsWhatNobodyCanRepair) {
  const BlobIndex index = corpus_.blobs[3].index;
  for (int f : {1, 3, 5}) overwrite(index, static_cast<uint8_t>(f));
  Scrubber& scrubber = start(fast());
  ASSERT_TRUE(tick_until([&] { return scrubber.stats().passes >= 1; }));
  EXPECT_EQ(scrubber.stats().fragments_bad, 3u);
  EXPECT_EQ(scrubber.stats().fragments_unrepairable, 3u);
  EXPECT_EQ(scrubber.stats().fragments_repaired_local, 0u);
}

TEST_F(ScrubTest, ReadsNoFasterThanItsRate) {
  ScrubSettings s = fast();
  s.bytes_per_second = 2 * blob_bytes_;  // two blobs a second
  s.max_job_bytes = 64 * blob_bytes_;
  Scrubber& scrubber = start(s);
  for (int second = 1; second <= 4; ++second) {
    advance(1s);
    scrubber.tick();
    ASSERT_TRUE(testing::eventually(
        [&] { return scrubber.stats().blobs_scrubbed >= uint64_t(2 * second); }));
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(scrubber.stats().blobs_scrubbed, uint64_t(2 * second)) << "after " << second << " s";
  }
  // Ticks without time passing add no budget.
  for (int i = 0; i < 5; ++i) scrubber.tick();
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(scrubber.stats().blobs_scrubbed, 8u);
}

TEST_F(ScrubTest, YieldsToForegroundWork) {
  pool_ = std::make_unique<WorkerPool>(WorkerPoolSettings{1, 64});
  ScrubSettings s = fast();
  s.max_queued_jobs = 0;
  scrubber_ =
      std::make_unique<Scrubber>(*node_->store, *pool_, codec_, node_->seal, nullptr, s, clock_);
  // Foreground work occupies the only worker and another job waits behind it.
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  ASSERT_TRUE(pool_->try_submit([&] {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return release; });
  }));
  ASSERT_TRUE(pool_->try_submit([] {}));
  ASSERT_TRUE(testing::eventually([&] { return pool_->queued() == 1; }));
  for (int i = 0; i < 5; ++i) {
    advance(1s);
    scrubber_->tick();
  }
  EXPECT_EQ(pool_->queued(), 1u) << "the scrubber queued work behind a foreground job";
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(testing::eventually([&] { return pool_->queued() == 0; }));
  ASSERT_TRUE(tick_until([&] { return scrubber_->stats().passes >= 1; }));
}

TEST_F(ScrubTest, PausesBetweenPasses) {
  ScrubSettings s = fast();
  s.pass_pause_s = 10;
  Scrubber& scrubber = start(s);
  ASSERT_TRUE(tick_until([&] { return scrubber.stats().passes >= 1; }));
  const uint64_t after_one = scrubber.stats().blobs_scrubbed;
  for (int i = 0; i < 5; ++i) {
    advance(1s);
    scrubber.tick();
  }
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(scrubber.stats().blobs_scrubbed, after_one) << "scrubbed during the pause";
  ASSERT_TRUE(tick_until([&] { return scrubber.stats().passes >= 2; }));
}

TEST_F(ScrubTest, ScrubBlobRepairsAtOnce) {
  const BlobIndex index = corpus_.blobs[9].index;
  overwrite(index, 1);
  ScrubSettings s = fast();
  s.enabled = false;  // no periodic walk: only the request below
  Scrubber& scrubber = start(s);
  ASSERT_TRUE(scrubber.scrub_blob(index));
  ASSERT_TRUE(testing::eventually([&] { return scrubber.stats().fragments_repaired_local == 1; }));
  EXPECT_EQ(scrubber.stats().blobs_scrubbed, 1u);
  auto h = check_blob(*node_->store, index, node_->seal.get());
  ASSERT_TRUE(h);
  EXPECT_TRUE(h->bad.empty());
}

TEST_F(ScrubTest, CheckBlobNamesTheBadFragments) {
  const BlobIndex index = corpus_.blobs[4].index;
  overwrite(index, 3);
  auto h = check_blob(*node_->store, index, node_->seal.get());
  ASSERT_TRUE(h) << h.error().to_string();
  ASSERT_EQ(h->bad.size(), 1u);
  EXPECT_EQ(h->bad[0], FragmentIndex{3});
  EXPECT_EQ(h->good, params_.total_fragments() - 1);
  EXPECT_EQ(h->bytes_checked, blob_bytes_);
  EXPECT_EQ(check_blob(*node_->store, BlobIndex{500}, node_->seal.get()).error().code,
            Errc::not_found);
  EXPECT_EQ(check_blob(*node_->store, index, nullptr).error().code, Errc::invalid_argument)
      << "sealed fragments cannot be judged without the seal";
  auto written = repair_blob(*node_->store, *codec_, *h, node_->seal.get());
  ASSERT_TRUE(written) << written.error().to_string();
  EXPECT_EQ(*written, 1u);
  auto again = repair_blob(*node_->store, *codec_, *h, node_->seal.get());
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 0u) << "nothing is bad any more";
}

}  // namespace
}  // namespace cairn::shards
