// Ingest and read-back through the erasure codec: round trips, sealing via
// the replica transform, reads that survive damaged fragments, concurrent
// ingest on the worker pool.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "cairn/core/worker_pool.hpp"
#include "cairn/erasure/codec.hpp"
#include "cairn/erasure/commitment.hpp"
#include "cairn/sampling/seal.hpp"
#include "cairn/shards/ingest.hpp"
#include "shards/store_testing.hpp"
#include "support/test_util.hpp"

namespace cairn::shards {
namespace {

using format::Family;
using namespace std::chrono_literals;

// The replica seal of sampling/seal.hpp behind the store's transform hook:
// one mask computation per blob, whichever fragments are asked for.
class SealTransform final : public ReplicaTransform {
 public:
  SealTransform(erasure::NetworkParams params, NodeId node) : params_(params), node_(node) {}
  FragmentEncoding encoding() const noexcept override { return FragmentEncoding::sealed; }
  void to_stored(const BlobId& id, BlobIndex index, MutableByteSpan replica) const override {
    Bytes scratch;
    sampling::apply_replica_mask(params_, sampling::SealKey{node_, id, index}, replica, scratch);
  }
  void from_stored(const BlobId& id, BlobIndex index,
                   std::span<const StoredFragment> fragments) const override {
    Bytes mask(size_t{params_.total_fragments()} * params_.fragment_size());
    sampling::replica_mask(params_, sampling::SealKey{node_, id, index}, mask);
    for (const auto& f : fragments) {
      const size_t at = size_t{f.index.value} * params_.fragment_size();
      for (size_t i = 0; i < f.bytes.size(); ++i) f.bytes[i] ^= mask[at + i];
    }
  }

 private:
  erasure::NetworkParams params_;
  NodeId node_;
};

erasure::NetworkParams sealing_params() {
  auto p = testing::small_params();
  p.seal_cost = 2;
  return p;
}

class IngestTest : public ::testing::Test {
 protected:
  void open(const erasure::NetworkParams& params = testing::small_params()) {
    params_ = params;
    auto codec = erasure::Codec::create(params);
    ASSERT_TRUE(codec) << codec.error().to_string();
    codec_ = *codec;
    auto store = Store::open(dir_.path(), params);
    ASSERT_TRUE(store) << store.error().to_string();
    store_ = std::move(*store);
  }
  void reopen() {
    ASSERT_TRUE(store_->close());
    store_.reset();
    auto store = Store::open(dir_.path(), params_);
    ASSERT_TRUE(store) << store.error().to_string();
    store_ = std::move(*store);
  }
  void flip_fragment(BlobIndex index, uint8_t f) {
    ASSERT_TRUE(store_->close());
    store_.reset();
    {
      testing::RawDb raw(dir_.path());
      const auto key = testing::fragment_key(params_, index, f);
      std::string v = *raw.get(Family::fragments, key);
      v[v.size() / 2] = static_cast<char>(v[v.size() / 2] ^ 0x10);
      raw.put(Family::fragments, key, v);
    }
    reopen_only();
  }
  void reopen_only() {
    auto store = Store::open(dir_.path(), params_);
    ASSERT_TRUE(store) << store.error().to_string();
    store_ = std::move(*store);
  }

  test::TempDir dir_;
  erasure::NetworkParams params_;
  std::shared_ptr<const erasure::Codec> codec_;
  std::unique_ptr<Store> store_;
};

TEST_F(IngestTest, PayloadsRoundTripAndSurviveReopen) {
  open();
  auto rng = test::seeded_rng(31);
  const uint32_t bs = params_.blob_size;
  std::vector<std::pair<BlobIndex, Bytes>> blobs;
  uint64_t index = 0;
  for (uint32_t size : {0u, 1u, bs - 1, bs, bs / 2 + 3}) {
    Bytes payload = test::random_bytes(rng, size);
    auto r = ingest_payload(*store_, *codec_, BlobIndex{index}, payload);
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(r->outcome, PutOutcome::stored);
    auto expected = erasure::encode_and_commit(*codec_, payload);
    ASSERT_TRUE(expected);
    EXPECT_EQ(r->record.id, expected->commitment.id) << "the stored id is the blob's commitment";
    EXPECT_EQ(r->record.length, size);
    EXPECT_EQ(r->record.encoding, FragmentEncoding::plain);
    // Stored fragments are the committed ones.
    auto f0 = store_->get_fragment(BlobIndex{index}, FragmentIndex{5});
    ASSERT_TRUE(f0);
    EXPECT_TRUE(std::equal(f0->begin(), f0->end(), expected->encoded.fragment(5).begin()));
    blobs.emplace_back(BlobIndex{index}, std::move(payload));
    index += 7;  // spread over shards
  }
  reopen();
  EXPECT_EQ(store_->blob_count(), blobs.size());
  for (const auto& [i, payload] : blobs) {
    auto back = read_payload(*store_, *codec_, i);
    ASSERT_TRUE(back) << back.error().to_string();
    EXPECT_EQ(*back, payload);
  }
  // Too large a payload is refused and nothing is written.
  auto big = ingest_payload(*store_, *codec_, BlobIndex{500}, Bytes(bs + 1));
  ASSERT_FALSE(big);
  EXPECT_EQ(store_->blob_count(), blobs.size());
}

TEST_F(IngestTest, DefaultGeometryRoundTrip) {
  open(erasure::NetworkParams::defaults());
  auto rng = test::seeded_rng(32);
  const Bytes payload = test::random_bytes(rng, params_.blob_size);
  auto r = ingest_payload(*store_, *codec_, BlobIndex{4096 * 3 + 1}, payload);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->record.total_fragments(), 12u);
  auto listed = store_->list_shard(ShardId{3});
  ASSERT_TRUE(listed);
  EXPECT_EQ(*listed, std::vector<BlobIndex>{BlobIndex{4096 * 3 + 1}});
  EXPECT_EQ(*read_payload(*store_, *codec_, BlobIndex{4096 * 3 + 1}), payload);
}

TEST_F(IngestTest, SameContentDedupesAndCannotTakeASecondIndex) {
  open();
  auto rng = test::seeded_rng(33);
  const Bytes payload = test::random_bytes(rng, 3000);
  auto a = ingest_payload(*store_, *codec_, BlobIndex{1}, payload);
  ASSERT_TRUE(a);
  auto again = ingest_payload(*store_, *codec_, BlobIndex{1}, payload);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->outcome, PutOutcome::already_present);
  auto elsewhere = ingest_payload(*store_, *codec_, BlobIndex{2}, payload);
  ASSERT_FALSE(elsewhere);
  EXPECT_EQ(elsewhere.error().code, Errc::conflict);
  EXPECT_EQ(store_->blob_count(), 1u);
}

TEST_F(IngestTest, SealedReplicasDifferOnDiskAndReadBackThroughTheTransform) {
  open(sealing_params());
  auto rng = test::seeded_rng(34);
  const Bytes payload = test::random_bytes(rng, params_.blob_size);
  const SealTransform node_a(params_, NodeId{Hash32{0xa}});
  const SealTransform node_b(params_, NodeId{Hash32{0xb}});

  auto r = ingest_payload(*store_, *codec_, BlobIndex{3}, payload, &node_a);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->record.encoding, FragmentEncoding::sealed);
  auto committed = erasure::encode_and_commit(*codec_, payload);
  ASSERT_TRUE(committed);
  EXPECT_EQ(r->record.id, committed->commitment.id) << "sealing must not change the blob id";
  for (uint8_t f = 0; f < params_.total_fragments(); ++f) {
    auto stored = store_->get_fragment(BlobIndex{3}, FragmentIndex{f});
    ASSERT_TRUE(stored);
    EXPECT_FALSE(std::equal(stored->begin(), stored->end(), committed->encoded.fragment(f).begin()))
        << "fragment " << int{f} << " is stored in the clear";
  }
  auto back = read_payload(*store_, *codec_, BlobIndex{3}, &node_a);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, payload);

  auto without = read_payload(*store_, *codec_, BlobIndex{3});
  ASSERT_FALSE(without);
  EXPECT_EQ(without.error().code, Errc::invalid_argument);
  // Another node's mask does not unseal this replica.
  auto wrong = read_payload(*store_, *codec_, BlobIndex{3}, &node_b);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, Errc::corruption);

  // A damaged sealed data fragment is rebuilt from parity through the mask.
  flip_fragment(BlobIndex{3}, 0);
  auto repaired = read_payload(*store_, *codec_, BlobIndex{3}, &node_a);
  ASSERT_TRUE(repaired) << repaired.error().to_string();
  EXPECT_EQ(*repaired, payload);
}

TEST_F(IngestTest, ReadSurvivesUpToMDamagedFragmentsAndNamesThemBeyond) {
  open();
  auto rng = test::seeded_rng(35);
  const Bytes payload = test::random_bytes(rng, params_.blob_size - 100);
  ASSERT_TRUE(ingest_payload(*store_, *codec_, BlobIndex{9}, payload));

  // m = 2: a checksum-damaged data fragment and a fragment that passes its
  // checksum but not its root (overwritten with another fragment's bytes).
  flip_fragment(BlobIndex{9}, 1);
  auto other = store_->get_fragment(BlobIndex{9}, FragmentIndex{0});
  ASSERT_TRUE(other);
  ASSERT_TRUE(store_->put_fragment(BlobIndex{9}, FragmentIndex{3}, *other));
  auto back = read_payload(*store_, *codec_, BlobIndex{9});
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, payload);

  flip_fragment(BlobIndex{9}, 4);  // a third loss: more than m
  auto lost = read_payload(*store_, *codec_, BlobIndex{9});
  ASSERT_FALSE(lost) << "decoded from fewer than k good fragments";
  EXPECT_EQ(lost.error().code, Errc::corruption);
  for (const char* f : {"fragment 1", "fragment 3", "fragment 4"}) {
    EXPECT_NE(lost.error().message.find(f), std::string::npos) << lost.error().message;
  }
  EXPECT_EQ(read_payload(*store_, *codec_, BlobIndex{10}).error().code, Errc::not_found);
}

TEST_F(IngestTest, MismatchedCodecOrBlobShapeIsRefused) {
  open();
  auto other = erasure::Codec::create(erasure::NetworkParams::defaults());
  ASSERT_TRUE(other);
  auto r = ingest_payload(*store_, **other, BlobIndex{1}, Bytes(10));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_argument);

  auto committed = erasure::encode_and_commit(**other, Bytes(10));
  ASSERT_TRUE(committed);
  auto wrong_shape = ingest_committed(*store_, BlobIndex{1}, std::move(*committed));
  ASSERT_FALSE(wrong_shape);
  EXPECT_EQ(wrong_shape.error().code, Errc::invalid_argument);
  EXPECT_EQ(store_->blob_count(), 0u);
}

TEST_F(IngestTest, ConcurrentIngestOnTheWorkerPool) {
  open();
  WorkerPool pool(WorkerPoolSettings{2, 16});
  constexpr int kThreads = 4, kPerThread = 30;
  std::vector<std::vector<Bytes>> payloads(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    auto rng = test::seeded_rng(200 + static_cast<uint64_t>(t));
    for (int i = 0; i < kPerThread; ++i) {
      payloads[static_cast<size_t>(t)].push_back(
          test::random_bytes(rng, 1000 + static_cast<size_t>(i)));
    }
  }
  std::atomic<int> ok{0}, failed{0}, busy{0};
  std::vector<std::thread> submitters;
  for (int t = 0; t < kThreads; ++t) {
    submitters.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const BlobIndex index{static_cast<uint64_t>(i * kThreads + t)};
        for (;;) {
          const Bytes& payload = payloads[static_cast<size_t>(t)][static_cast<size_t>(i)];
          auto s = pool.try_submit(
              [&, index] { ++(ingest_payload(*store_, *codec_, index, payload) ? ok : failed); });
          if (s) break;
          ASSERT_EQ(s.error().code, Errc::busy);
          ++busy;  // a full queue pushes back; the submitter retries
          std::this_thread::sleep_for(1ms);
        }
      }
    });
  }
  for (auto& s : submitters) s.join();
  ASSERT_TRUE(pool.shutdown(WorkerPool::Shutdown::drain));
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(store_->blob_count(), static_cast<uint64_t>(kThreads * kPerThread));
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      const BlobIndex index{static_cast<uint64_t>(i * kThreads + t)};
      auto back = read_payload(*store_, *codec_, index);
      ASSERT_TRUE(back) << back.error().to_string();
      ASSERT_EQ(*back, payloads[static_cast<size_t>(t)][static_cast<size_t>(i)]);
    }
  }
}

}  // namespace
}  // namespace cairn::shards
