// The RocksDB store: persistence across reopen, checksummed values (flipped
// and moved bytes are reported, never returned), one atomic batch per blob,
// conflicts, deletes, the small record families and concurrent writers.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <thread>

#include "cairn/shards/store.hpp"
#include "shards/store_testing.hpp"
#include "support/test_util.hpp"

namespace cairn::shards {
namespace {

using format::Family;
using testing::RawDb;
using testing::small_params;
using testing::synthetic_blob;
using testing::SyntheticBlob;

std::unique_ptr<Store> open_store(const std::filesystem::path& dir,
                                  const erasure::NetworkParams& params = small_params(),
                                  const StoreSettings& settings = {}) {
  auto store = Store::open(dir, params, settings);
  EXPECT_TRUE(store) << store.error().to_string();
  return store ? std::move(*store) : nullptr;
}

std::string flip_byte(std::string value, size_t at) {
  value[at] = static_cast<char>(value[at] ^ 0x40);
  return value;
}

// Writes synthetic blobs at `indexes` into a store in `dir` (small
// geometry), optionally flushes, and closes it: the usual start of a test
// that then looks underneath or reopens.
std::vector<SyntheticBlob> seed_store(const std::filesystem::path& dir,
                                      std::initializer_list<uint64_t> indexes, std::mt19937_64& rng,
                                      const StoreSettings& settings = {}, bool flush = false) {
  std::vector<SyntheticBlob> blobs;
  auto store = open_store(dir, small_params(), settings);
  if (!store) return blobs;
  for (uint64_t i : indexes) {
    blobs.push_back(synthetic_blob(small_params(), BlobIndex{i}, rng));
    auto r = store->put_blob(blobs.back().record, blobs.back().spans());
    EXPECT_TRUE(r && *r == PutOutcome::stored) << "seeding index " << i;
  }
  if (flush) {
    EXPECT_TRUE(store->flush());
  }
  EXPECT_TRUE(store->close());
  return blobs;
}

TEST(Store, BlobsSurviveCloseAndReopen) {
  test::TempDir dir;
  auto rng = test::seeded_rng(1);
  // 10 blobs over shards 0, 1 and 2 (16 blobs per shard), written out of order.
  const auto blobs = seed_store(dir.path(), {5, 17, 0, 33, 1, 16, 32, 15, 47, 2}, rng);
  auto store = open_store(dir.path());
  EXPECT_EQ(store->blob_count(), blobs.size());
  for (const auto& b : blobs) {
    auto at = store->get_blob_at(b.record.index);
    ASSERT_TRUE(at) << at.error().to_string();
    EXPECT_EQ(*at, b.record);
    auto by_id = store->get_blob(b.record.id);
    ASSERT_TRUE(by_id) << by_id.error().to_string();
    EXPECT_EQ(by_id->index, b.record.index);
    for (uint8_t f = 0; f < b.fragments.size(); ++f) {
      auto bytes = store->get_fragment(b.record.index, FragmentIndex{f});
      ASSERT_TRUE(bytes) << bytes.error().to_string();
      EXPECT_EQ(*bytes, b.fragments[f]);
    }
  }
  auto shard1 = store->list_shard(ShardId{1});
  ASSERT_TRUE(shard1);
  EXPECT_EQ(*shard1, (std::vector<BlobIndex>{BlobIndex{16}, BlobIndex{17}}));
  auto shard0 = store->list_shard(ShardId{0});
  ASSERT_TRUE(shard0);
  EXPECT_EQ(*shard0, (std::vector<BlobIndex>{BlobIndex{0}, BlobIndex{1}, BlobIndex{2}, BlobIndex{5},
                                             BlobIndex{15}}));
  auto empty = store->list_shard(ShardId{9});
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());

  auto missing = store->get_blob_at(BlobIndex{3});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::not_found);
  auto missing_fragment = store->get_fragment(BlobIndex{3}, FragmentIndex{0});
  ASSERT_FALSE(missing_fragment);
  EXPECT_EQ(missing_fragment.error().code, Errc::not_found);
}

TEST(Store, ScanShardPagesInIndexOrder) {
  test::TempDir dir;
  auto rng = test::seeded_rng(2);
  const auto params = small_params();
  auto store = open_store(dir.path());
  for (uint64_t i = 16; i < 32; i += 2) {
    auto b = synthetic_blob(params, BlobIndex{i}, rng);
    ASSERT_TRUE(store->put_blob(b.record, b.spans()));
  }
  // A neighbour shard must not leak into the scan.
  auto other = synthetic_blob(params, BlobIndex{32}, rng);
  ASSERT_TRUE(store->put_blob(other.record, other.spans()));

  std::vector<uint64_t> seen;
  std::optional<BlobIndex> from = BlobIndex{0};
  int pages = 0;
  while (from) {
    auto page = store->scan_shard(ShardId{1}, *from, 3);
    ASSERT_TRUE(page) << page.error().to_string();
    EXPECT_TRUE(page->corrupt.empty());
    EXPECT_LE(page->records.size(), 3u);
    for (const auto& r : page->records) seen.push_back(r.index.value);
    from = page->next;
    ++pages;
  }
  EXPECT_EQ(seen, (std::vector<uint64_t>{16, 18, 20, 22, 24, 26, 28, 30}));
  EXPECT_EQ(pages, 3);
  auto resumed = store->scan_shard(ShardId{1}, BlobIndex{25}, 100);
  ASSERT_TRUE(resumed);
  ASSERT_EQ(resumed->records.size(), 3u);
  EXPECT_EQ(resumed->records.front().index, BlobIndex{26});
  EXPECT_FALSE(resumed->next);
}

TEST(Store, ScanBlobsWalksEveryShardInIndexOrder) {
  test::TempDir dir;
  auto rng = test::seeded_rng(2);
  const auto params = small_params();
  auto store = open_store(dir.path());
  // Shards 0, 2 and 9 hold blobs; 1 and 3-8 are empty.
  const std::vector<uint64_t> held{3, 15, 32, 33, 47, 150};
  for (uint64_t i : held) {
    auto b = synthetic_blob(params, BlobIndex{i}, rng);
    ASSERT_TRUE(store->put_blob(b.record, b.spans()));
  }
  std::vector<uint64_t> seen;
  std::optional<BlobIndex> from = BlobIndex{0};
  while (from) {
    auto page = store->scan_blobs(*from, 4);
    ASSERT_TRUE(page) << page.error().to_string();
    for (const auto& r : page->records) seen.push_back(r.index.value);
    from = page->next;
  }
  EXPECT_EQ(seen, held);
  auto tail = store->scan_blobs(BlobIndex{34}, 10);
  ASSERT_TRUE(tail);
  ASSERT_EQ(tail->records.size(), 2u);
  EXPECT_EQ(tail->records[0].index, BlobIndex{47});
  EXPECT_FALSE(tail->next);
  EXPECT_EQ(store->scan_blobs(BlobIndex{0}, 0).error().code, Errc::invalid_argument);
}

TEST(Store, FlippedFragmentByteIsCorruptionNamingShardIndexFragment) {
  test::TempDir dir;
  auto rng = test::seeded_rng(3);
  const auto params = small_params();
  const BlobIndex index{37};  // shard 2
  const auto blob = seed_store(dir.path(), {index.value}, rng).at(0);
  {
    RawDb raw(dir.path());
    const auto key = testing::fragment_key(params, index, 5);
    auto value = raw.get(Family::fragments, key);
    ASSERT_TRUE(value);
    raw.put(Family::fragments, key, flip_byte(*value, 1000));
  }
  auto store = open_store(dir.path());
  auto bad = store->get_fragment(index, FragmentIndex{5});
  ASSERT_FALSE(bad) << "a corrupt fragment was returned";
  EXPECT_EQ(bad.error().code, Errc::corruption);
  EXPECT_NE(bad.error().message.find("shard 2 index 37 fragment 5"), std::string::npos)
      << bad.error().message;
  // Its neighbours are untouched.
  auto good = store->get_fragment(index, FragmentIndex{4});
  ASSERT_TRUE(good);
  EXPECT_EQ(*good, blob.fragments[4]);
}

TEST(Store, EveryFlippedBytePositionIsDetected) {
  test::TempDir dir;
  auto rng = test::seeded_rng(4);
  const auto params = small_params();
  const BlobIndex index{3};
  seed_store(dir.path(), {index.value}, rng);
  const auto key = testing::fragment_key(params, index, 0);
  std::string original;
  {
    RawDb raw(dir.path());
    original = *raw.get(Family::fragments, key);
  }
  // Version byte, first and last payload bytes, every checksum byte.
  for (size_t at : {size_t{0}, size_t{1}, original.size() - 5, original.size() - 4,
                    original.size() - 3, original.size() - 2, original.size() - 1}) {
    {
      RawDb raw(dir.path());
      raw.put(Family::fragments, key, flip_byte(original, at));
    }
    auto store = open_store(dir.path());
    auto r = store->get_fragment(index, FragmentIndex{0});
    ASSERT_FALSE(r) << "flip at byte " << at << " went unnoticed";
    EXPECT_EQ(r.error().code, Errc::corruption) << r.error().to_string();
  }
  {
    RawDb raw(dir.path());
    raw.put(Family::fragments, key, original.substr(0, 3));  // truncated value
  }
  auto store = open_store(dir.path());
  auto r = store->get_fragment(index, FragmentIndex{0});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::corruption);
}

TEST(Store, ValueCopiedToAnotherKeyIsDetected) {
  test::TempDir dir;
  auto rng = test::seeded_rng(5);
  const auto params = small_params();
  seed_store(dir.path(), {1, 2}, rng);
  const NodeId peer_a{}, peer_b{Hash32{1}};
  {
    auto store = open_store(dir.path());
    ASSERT_TRUE(store->put_peer(peer_a, as_bytes("peer a")));
    ASSERT_TRUE(store->put_peer(peer_b, as_bytes("peer b")));
  }
  {
    RawDb raw(dir.path());
    // Fragment 1 of blob 1 copied over fragment 2 of blob 1 (same size, valid envelope).
    raw.put(Family::fragments, testing::fragment_key(params, BlobIndex{1}, 2),
            *raw.get(Family::fragments, testing::fragment_key(params, BlobIndex{1}, 1)));
    // Fragment 0 of blob 1 copied over fragment 0 of blob 2.
    raw.put(Family::fragments, testing::fragment_key(params, BlobIndex{2}, 0),
            *raw.get(Family::fragments, testing::fragment_key(params, BlobIndex{1}, 0)));
    // Record of blob 1 copied over the record of blob 2.
    raw.put(Family::blobs, testing::blob_key(params, BlobIndex{2}),
            *raw.get(Family::blobs, testing::blob_key(params, BlobIndex{1})));
    // A peer record moved to another node id, and into another family under the same key.
    raw.put(Family::peers, peer_b.span(), *raw.get(Family::peers, peer_a.span()));
    raw.put(Family::pending, peer_a.span(), *raw.get(Family::peers, peer_a.span()));
  }
  auto store = open_store(dir.path());
  auto f12 = store->get_fragment(BlobIndex{1}, FragmentIndex{2});
  ASSERT_FALSE(f12);
  EXPECT_EQ(f12.error().code, Errc::corruption);
  EXPECT_NE(f12.error().message.find("shard 0 index 1 fragment 2"), std::string::npos);
  auto f20 = store->get_fragment(BlobIndex{2}, FragmentIndex{0});
  ASSERT_FALSE(f20);
  EXPECT_EQ(f20.error().code, Errc::corruption);
  auto rec = store->get_blob_at(BlobIndex{2});
  ASSERT_FALSE(rec);
  EXPECT_EQ(rec.error().code, Errc::corruption);
  EXPECT_NE(rec.error().message.find("shard 0 index 2"), std::string::npos) << rec.error().message;
  auto moved_peer = store->get_peer(peer_b);
  ASSERT_FALSE(moved_peer);
  EXPECT_EQ(moved_peer.error().code, Errc::corruption);
  auto cross_family = store->get_pending(BlobId{peer_a.bytes});
  ASSERT_FALSE(cross_family);
  EXPECT_EQ(cross_family.error().code, Errc::corruption);
  // The originals still read back.
  EXPECT_TRUE(store->get_fragment(BlobIndex{1}, FragmentIndex{1}));
  EXPECT_TRUE(store->get_blob_at(BlobIndex{1}));
  auto peer = store->get_peer(peer_a);
  ASSERT_TRUE(peer);
  EXPECT_EQ(*peer, Bytes(as_bytes("peer a").begin(), as_bytes("peer a").end()));
}

TEST(Store, CorruptRecordIsReportedByScanAndDoesNotStopIt) {
  test::TempDir dir;
  auto rng = test::seeded_rng(6);
  const auto params = small_params();
  seed_store(dir.path(), {0, 1, 2, 3}, rng);
  {
    RawDb raw(dir.path());
    const auto key = testing::blob_key(params, BlobIndex{1});
    raw.put(Family::blobs, key, flip_byte(*raw.get(Family::blobs, key), 10));
  }
  auto store = open_store(dir.path());
  auto page = store->scan_shard(ShardId{0}, BlobIndex{0}, 10);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->records.size(), 3u);
  ASSERT_EQ(page->corrupt.size(), 1u);
  EXPECT_EQ(page->corrupt[0].first, BlobIndex{1});
  EXPECT_EQ(page->corrupt[0].second.code, Errc::corruption);

  // A corrupt blob can be deleted and its index reused.
  auto deleted = store->delete_blob(BlobIndex{1});
  ASSERT_TRUE(deleted) << deleted.error().to_string();
  EXPECT_TRUE(*deleted);
  EXPECT_EQ(store->blob_count(), 3u);
  auto fresh = synthetic_blob(params, BlobIndex{1}, rng);
  auto put = store->put_blob(fresh.record, fresh.spans());
  ASSERT_TRUE(put) << put.error().to_string();
  EXPECT_EQ(*put, PutOutcome::stored);
}

TEST(Store, FlippedByteInFileOnDiskIsCorruption) {
  // Bypass everything: damage the fragment's bytes in the file RocksDB wrote.
  for (bool separate : {true, false}) {
    SCOPED_TRACE(separate ? "fragments in blob files" : "fragments inline in SST files");
    test::TempDir dir;
    auto rng = test::seeded_rng(7);
    const auto params = small_params();
    StoreSettings settings;
    settings.separate_fragment_values = separate;
    const auto blob = seed_store(dir.path(), {9}, rng, settings, /*flush=*/true).at(0);
    // Find the fragment's bytes in a table or blob file and flip one.
    const Bytes& needle = blob.fragments[3];
    bool flipped = false;
    for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
      const auto ext = entry.path().extension();
      if (ext != ".sst" && ext != ".blob") continue;
      Bytes content = test::read_file(entry.path());
      auto it = std::search(content.begin(), content.end(), needle.begin(), needle.end());
      if (it == content.end()) continue;
      it[100] ^= 0x01;
      test::write_file(entry.path(), content);
      flipped = true;
    }
    ASSERT_TRUE(flipped) << "fragment bytes not found in any data file";
    auto store = open_store(dir.path(), params, settings);
    auto r = store->get_fragment(BlobIndex{9}, FragmentIndex{3});
    ASSERT_FALSE(r) << "bytes damaged on disk were returned";
    EXPECT_EQ(r.error().code, Errc::corruption) << r.error().to_string();
    EXPECT_NE(r.error().message.find("shard 0 index 9 fragment 3"), std::string::npos)
        << r.error().message;
  }
}

TEST(Store, TornBatchAtTheEndOfTheLogIsAllOrNothing) {
  // A crash while a blob's batch was being written leaves a torn WAL record:
  // after restart the blob is absent as a whole (no record, no id entry, no
  // fragment) and every blob before it is intact.
  test::TempDir dir;
  auto rng = test::seeded_rng(8);
  const auto params = small_params();
  // No flush: both batches live only in the WAL.
  const auto blobs = seed_store(dir.path(), {4, 5}, rng);
  const auto& first = blobs.at(0);
  const auto& torn = blobs.at(1);
  std::filesystem::path wal;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    if (entry.path().extension() == ".log" &&
        (wal.empty() || entry.path().filename() > wal.filename())) {
      wal = entry.path();
    }
  }
  ASSERT_FALSE(wal.empty());
  const auto size = std::filesystem::file_size(wal);
  // The last batch holds 6 fragments of 2 KiB: cut into its middle.
  std::filesystem::resize_file(wal, size - 5000);

  auto store = open_store(dir.path());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->blob_count(), 1u);
  auto kept = store->get_blob_at(first.record.index);
  ASSERT_TRUE(kept) << kept.error().to_string();
  EXPECT_EQ(*kept, first.record);
  for (uint8_t f = 0; f < first.fragments.size(); ++f) {
    auto bytes = store->get_fragment(first.record.index, FragmentIndex{f});
    ASSERT_TRUE(bytes);
    EXPECT_EQ(*bytes, first.fragments[f]);
  }
  EXPECT_EQ(store->get_blob_at(torn.record.index).error().code, Errc::not_found);
  EXPECT_EQ(store->get_blob(torn.record.id).error().code, Errc::not_found);
  ASSERT_TRUE(store->close());
  RawDb raw(dir.path());
  EXPECT_EQ(raw.count(Family::fragments, testing::blob_key(params, torn.record.index)), 0u);
  EXPECT_EQ(raw.count(Family::fragments, testing::blob_key(params, first.record.index)),
            first.fragments.size());
  EXPECT_FALSE(raw.get(Family::blob_ids, torn.record.id.span()));
}

TEST(Store, RejectedBlobWritesNothing) {
  test::TempDir dir;
  auto rng = test::seeded_rng(9);
  const auto params = small_params();
  auto store = open_store(dir.path());
  auto blob = synthetic_blob(params, BlobIndex{7}, rng);
  auto spans = blob.spans();
  spans[4] = spans[4].first(100);  // one short fragment
  auto r = store->put_blob(blob.record, spans);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  spans.pop_back();  // too few fragments
  EXPECT_EQ(store->put_blob(blob.record, spans).error().code, Errc::invalid_argument);
  auto wrong_k = blob.record;
  wrong_k.data_fragments = 3;
  EXPECT_EQ(store->put_blob(wrong_k, blob.spans()).error().code, Errc::invalid_argument);
  auto too_long = blob.record;
  too_long.length = params.blob_size + 1;
  EXPECT_EQ(store->put_blob(too_long, blob.spans()).error().code, Errc::invalid_argument);

  EXPECT_EQ(store->blob_count(), 0u);
  EXPECT_EQ(store->get_blob_at(BlobIndex{7}).error().code, Errc::not_found);
  ASSERT_TRUE(store->close());
  RawDb raw(dir.path());
  EXPECT_EQ(raw.count(Family::fragments), 0u);
  EXPECT_EQ(raw.count(Family::blobs), 0u);
  EXPECT_EQ(raw.count(Family::blob_ids), 0u);
}

TEST(Store, SameBlobIsDedupedAndConflictsAreRefused) {
  test::TempDir dir;
  auto rng = test::seeded_rng(10);
  const auto params = small_params();
  auto store = open_store(dir.path());
  auto a = synthetic_blob(params, BlobIndex{3}, rng);
  ASSERT_EQ(*store->put_blob(a.record, a.spans()), PutOutcome::stored);
  EXPECT_EQ(*store->put_blob(a.record, a.spans()), PutOutcome::already_present);

  auto other_at_same_index = synthetic_blob(params, BlobIndex{3}, rng);
  auto c1 = store->put_blob(other_at_same_index.record, other_at_same_index.spans());
  ASSERT_FALSE(c1);
  EXPECT_EQ(c1.error().code, Errc::conflict);

  auto same_id_elsewhere = a;
  same_id_elsewhere.record.index = BlobIndex{40};
  auto c2 = store->put_blob(same_id_elsewhere.record, same_id_elsewhere.spans());
  ASSERT_FALSE(c2);
  EXPECT_EQ(c2.error().code, Errc::conflict);
  EXPECT_EQ(store->blob_count(), 1u);

  // Once deleted, the id may be stored at another index.
  EXPECT_TRUE(*store->delete_blob(BlobIndex{3}));
  EXPECT_FALSE(*store->delete_blob(BlobIndex{3}));
  EXPECT_EQ(*store->put_blob(same_id_elsewhere.record, same_id_elsewhere.spans()),
            PutOutcome::stored);
  EXPECT_EQ(store->get_blob(a.record.id)->index, BlobIndex{40});
}

TEST(Store, DeleteRemovesRecordIdAndEveryFragment) {
  test::TempDir dir;
  auto rng = test::seeded_rng(11);
  const auto params = small_params();
  auto a = synthetic_blob(params, BlobIndex{20}, rng);
  auto b = synthetic_blob(params, BlobIndex{21}, rng);
  {
    auto store = open_store(dir.path());
    ASSERT_TRUE(store->put_blob(a.record, a.spans()));
    ASSERT_TRUE(store->put_blob(b.record, b.spans()));
    ASSERT_TRUE(*store->delete_blob(BlobIndex{20}));
    EXPECT_EQ(store->blob_count(), 1u);
    EXPECT_EQ(store->get_fragment(BlobIndex{20}, FragmentIndex{0}).error().code, Errc::not_found);
    EXPECT_EQ(store->get_blob(a.record.id).error().code, Errc::not_found);
  }
  {
    RawDb raw(dir.path());
    EXPECT_EQ(raw.count(Family::fragments, testing::blob_key(params, BlobIndex{20})), 0u);
    EXPECT_EQ(raw.count(Family::fragments, testing::blob_key(params, BlobIndex{21})), 6u);
    EXPECT_FALSE(raw.get(Family::blob_ids, a.record.id.span()));
  }
  auto store = open_store(dir.path());
  EXPECT_EQ(store->blob_count(), 1u);
}

TEST(Store, RepairRewritesOneFragment) {
  test::TempDir dir;
  auto rng = test::seeded_rng(12);
  const auto params = small_params();
  const auto blob = seed_store(dir.path(), {2}, rng).at(0);
  {
    RawDb raw(dir.path());
    const auto key = testing::fragment_key(params, BlobIndex{2}, 1);
    raw.put(Family::fragments, key, flip_byte(*raw.get(Family::fragments, key), 7));
  }
  auto store = open_store(dir.path());
  EXPECT_EQ(store->get_fragment(BlobIndex{2}, FragmentIndex{1}).error().code, Errc::corruption);
  ASSERT_TRUE(store->put_fragment(BlobIndex{2}, FragmentIndex{1}, blob.fragments[1]));
  EXPECT_EQ(*store->get_fragment(BlobIndex{2}, FragmentIndex{1}), blob.fragments[1]);

  EXPECT_EQ(store->put_fragment(BlobIndex{2}, FragmentIndex{6}, blob.fragments[1]).error().code,
            Errc::invalid_argument);
  EXPECT_EQ(
      store->put_fragment(BlobIndex{2}, FragmentIndex{1}, ByteSpan(blob.fragments[1]).first(9))
          .error()
          .code,
      Errc::invalid_argument);
  EXPECT_EQ(store->put_fragment(BlobIndex{99}, FragmentIndex{1}, blob.fragments[1]).error().code,
            Errc::not_found);
}

TEST(Store, PendingCursorsResponsesAndPeersPersist) {
  test::TempDir dir;
  auto rng = test::seeded_rng(13);
  const BlobId id_a{Hash32{0xaa}}, id_b{Hash32{0xbb}};
  const NodeId n1{Hash32{1}}, n2{Hash32{2}}, n3{Hash32{3}};
  const PendingUpload upload{test::random_bytes(rng, 5000), 1700000000123};
  {
    auto store = open_store(dir.path());
    ASSERT_TRUE(store->put_pending(id_a, upload));
    ASSERT_TRUE(store->put_pending(id_b, PendingUpload{{}, 5}));
    EXPECT_EQ(store->put_pending(id_a, PendingUpload{Bytes(8193), 0}).error().code,
              Errc::invalid_argument);
    ASSERT_TRUE(store->put_sync_cursor(ShardId{4}, SyncCursor{BlobIndex{70}, 99}));
    ASSERT_TRUE(store->put_response(ShardId{1}, Epoch{7}, n2, as_bytes("r-7-2")));
    ASSERT_TRUE(store->put_response(ShardId{1}, Epoch{7}, n1, as_bytes("r-7-1")));
    ASSERT_TRUE(store->put_response(ShardId{1}, Epoch{8}, n1, as_bytes("r-8-1")));
    ASSERT_TRUE(store->put_response(ShardId{2}, Epoch{7}, n3, as_bytes("other shard")));
    ASSERT_TRUE(store->put_peer(n1, as_bytes("127.0.0.1:9000")));
    ASSERT_TRUE(store->put_peer(n2, as_bytes("127.0.0.1:9001")));
  }
  auto store = open_store(dir.path());
  EXPECT_EQ(*store->get_pending(id_a), upload);
  EXPECT_EQ(store->get_pending(id_b)->created_at_ms, 5u);
  EXPECT_EQ(*store->list_pending(10), (std::vector<BlobId>{id_a, id_b}));
  EXPECT_EQ(store->list_pending(1)->size(), 1u);
  ASSERT_TRUE(store->erase_pending(id_a));
  EXPECT_EQ(store->get_pending(id_a).error().code, Errc::not_found);

  EXPECT_EQ(*store->get_sync_cursor(ShardId{4}), (SyncCursor{BlobIndex{70}, 99}));
  EXPECT_EQ(store->get_sync_cursor(ShardId{5}).error().code, Errc::not_found);
  ASSERT_TRUE(store->erase_sync_cursor(ShardId{4}));
  EXPECT_EQ(store->get_sync_cursor(ShardId{4}).error().code, Errc::not_found);

  auto epoch7 = store->responses(ShardId{1}, Epoch{7}, 100);
  ASSERT_TRUE(epoch7);
  ASSERT_EQ(epoch7->records.size(), 2u);
  EXPECT_EQ(epoch7->records[0].node, n1);
  EXPECT_EQ(epoch7->records[1].node, n2);
  EXPECT_EQ(epoch7->records[1].value, Bytes(as_bytes("r-7-2").begin(), as_bytes("r-7-2").end()));
  ASSERT_TRUE(store->prune_responses(ShardId{1}, Epoch{8}));
  EXPECT_TRUE(store->responses(ShardId{1}, Epoch{7}, 100)->records.empty());
  EXPECT_EQ(store->responses(ShardId{1}, Epoch{8}, 100)->records.size(), 1u);
  EXPECT_EQ(store->responses(ShardId{2}, Epoch{7}, 100)->records.size(), 1u);

  auto peers = store->peers(100);
  ASSERT_TRUE(peers);
  ASSERT_EQ(peers->records.size(), 2u);
  ASSERT_TRUE(store->erase_peer(n1));
  EXPECT_EQ(store->get_peer(n1).error().code, Errc::not_found);
  EXPECT_EQ(store->peers(100)->records.size(), 1u);
}

TEST(Store, ReopenWithOtherGeometryIsRefused) {
  test::TempDir dir;
  { ASSERT_NE(open_store(dir.path()), nullptr); }
  auto other = small_params();
  other.blobs_per_shard = 32;
  auto r = Store::open(dir.path(), other);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::conflict);
  EXPECT_NE(r.error().message.find("blobs_per_shard 16"), std::string::npos) << r.error().message;
}

TEST(Store, SecondOpenOfTheSameDirectoryIsRefused) {
  test::TempDir dir;
  auto first = open_store(dir.path());
  auto second = Store::open(dir.path(), small_params());
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, Errc::io_error);
  EXPECT_NE(second.error().message.find("in use"), std::string::npos) << second.error().message;
}

TEST(Store, UnknownColumnFamilyMeansNewerFormat) {
  test::TempDir dir;
  { ASSERT_NE(open_store(dir.path()), nullptr); }
  {
    rocksdb::DB* db = nullptr;
    DbLayout layout = make_db_layout({});
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    ASSERT_TRUE(
        rocksdb::DB::Open(layout.db, dir.path().string(), layout.families, &handles, &db).ok());
    rocksdb::ColumnFamilyHandle* extra = nullptr;
    ASSERT_TRUE(
        db->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), "from_the_future", &extra).ok());
    handles.push_back(extra);
    for (auto* h : handles) (void)db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  auto r = Store::open(dir.path(), small_params());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::unsupported);
  EXPECT_NE(r.error().message.find("from_the_future"), std::string::npos);
}

TEST(Store, ClosedStoreRefusesCalls) {
  test::TempDir dir;
  auto rng = test::seeded_rng(14);
  auto store = open_store(dir.path());
  ASSERT_TRUE(store->close());
  ASSERT_TRUE(store->close());  // idempotent
  auto b = synthetic_blob(small_params(), BlobIndex{1}, rng);
  EXPECT_EQ(store->put_blob(b.record, b.spans()).error().code, Errc::cancelled);
  EXPECT_EQ(store->get_fragment(BlobIndex{1}, FragmentIndex{0}).error().code, Errc::cancelled);
  EXPECT_EQ(store->list_shard(ShardId{0}).error().code, Errc::cancelled);
}

TEST(Store, ConcurrentWritersAllLand) {
  test::TempDir dir;
  const auto params = small_params();
  auto store = open_store(dir.path());
  constexpr int kThreads = 4;
  constexpr uint64_t kPerThread = 40;
  std::vector<std::vector<SyntheticBlob>> work(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    auto rng = test::seeded_rng(100 + static_cast<uint64_t>(t));
    for (uint64_t i = 0; i < kPerThread; ++i) {
      // Interleaved indexes: every shard gets writers from every thread.
      work[static_cast<size_t>(t)].push_back(
          synthetic_blob(params, BlobIndex{i * kThreads + static_cast<uint64_t>(t)}, rng));
    }
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (const auto& b : work[static_cast<size_t>(t)]) {
        auto r = store->put_blob(b.record, b.spans());
        if (!r || *r != PutOutcome::stored) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store->blob_count(), kThreads * kPerThread);
  ASSERT_TRUE(store->close());
  store = open_store(dir.path());
  EXPECT_EQ(store->blob_count(), kThreads * kPerThread);
  for (const auto& per_thread : work) {
    for (const auto& b : per_thread) {
      ASSERT_EQ(*store->get_blob_at(b.record.index), b.record);
      ASSERT_EQ(*store->get_fragment(b.record.index, FragmentIndex{3}), b.fragments[3]);
    }
  }
}

TEST(Store, RacingWritersOfOneIndexOrOneIdLetExactlyOneWin) {
  test::TempDir dir;
  const auto params = small_params();
  auto store = open_store(dir.path());
  auto rng = test::seeded_rng(15);
  constexpr int kThreads = 6;

  // Different blobs, same index.
  std::vector<SyntheticBlob> rivals;
  for (int t = 0; t < kThreads; ++t) rivals.push_back(synthetic_blob(params, BlobIndex{8}, rng));
  // Same blob, different indexes.
  auto one = synthetic_blob(params, BlobIndex{100}, rng);
  std::vector<SyntheticBlob> copies(kThreads, one);
  for (int t = 0; t < kThreads; ++t)
    copies[static_cast<size_t>(t)].record.index = BlobIndex{100 + static_cast<uint64_t>(t) * 17};

  std::atomic<int> stored_index{0}, conflicts_index{0}, stored_id{0}, conflicts_id{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      const auto& r = rivals[static_cast<size_t>(t)];
      auto a = store->put_blob(r.record, r.spans());
      if (a && *a == PutOutcome::stored) ++stored_index;
      if (!a && a.error().code == Errc::conflict) ++conflicts_index;
      const auto& c = copies[static_cast<size_t>(t)];
      auto b = store->put_blob(c.record, c.spans());
      if (b && *b == PutOutcome::stored) ++stored_id;
      if (!b && b.error().code == Errc::conflict) ++conflicts_id;
    });
  }
  go = true;
  for (auto& th : threads) th.join();
  EXPECT_EQ(stored_index.load(), 1);
  EXPECT_EQ(conflicts_index.load(), kThreads - 1);
  EXPECT_EQ(stored_id.load(), 1);
  EXPECT_EQ(conflicts_id.load(), kThreads - 1);
  EXPECT_EQ(store->blob_count(), 2u);
  // The winner at index 8 is whole: its record and its own fragments.
  auto winner = store->get_blob_at(BlobIndex{8});
  ASSERT_TRUE(winner);
  for (const auto& r : rivals) {
    if (r.record.id != winner->id) continue;
    for (uint8_t f = 0; f < r.fragments.size(); ++f) {
      EXPECT_EQ(*store->get_fragment(BlobIndex{8}, FragmentIndex{f}), r.fragments[f]);
    }
  }
}

TEST(Store, IndexBeyondTheShardSpaceIsRefused) {
  test::TempDir dir;
  auto rng = test::seeded_rng(16);
  auto store = open_store(dir.path());
  // blobs_per_shard 16: index 2^40 lies in shard 2^36, beyond u32.
  auto b = synthetic_blob(small_params(), BlobIndex{uint64_t{1} << 40}, rng);
  auto r = store->put_blob(b.record, b.spans());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
}

TEST(Store, EngineSettingsMayChangeBetweenOpens) {
  test::TempDir dir;
  auto rng = test::seeded_rng(17);
  const auto params = small_params();
  StoreSettings separate;
  separate.separate_fragment_values = true;
  StoreSettings inline_values;
  inline_values.separate_fragment_values = false;
  inline_values.sync_writes = false;
  const auto blob = seed_store(dir.path(), {11}, rng, separate, /*flush=*/true).at(0);
  auto store = open_store(dir.path(), params, inline_values);
  ASSERT_NE(store, nullptr);
  for (uint8_t f = 0; f < blob.fragments.size(); ++f) {
    auto bytes = store->get_fragment(blob.record.index, FragmentIndex{f});
    ASSERT_TRUE(bytes) << bytes.error().to_string();
    EXPECT_EQ(*bytes, blob.fragments[f]);
  }
}

}  // namespace
}  // namespace cairn::shards
