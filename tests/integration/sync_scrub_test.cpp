// Shard sync and scrub with real `cairn node` processes on loopback: a node
// that joins a running shard fetches every blob from its peers; bytes
// flipped on disk under a stopped node are read around and then repaired,
// from local parity or, when too few good fragments remain, from the peers.

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <signal.h>

#include <iostream>

#include "cairn/erasure/params.hpp"
#include "cairn/shards/scrub.hpp"
#include "cairn/shards/seal_transform.hpp"
#include "cairn/shards/store.hpp"
#include "integration/process_network.hpp"

namespace cairn {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using test::ProcessNetwork;

// Flips one byte in the middle of a stored fragment's value, with RocksDB
// opened directly on a stopped node's store. Layout from
// docs/store-format.md: column family "fragments", key shard u32 ‖ index
// u64 ‖ fragment u8 (big-endian), value = version ‖ payload ‖ CRC-32C; the
// flipped byte lands in the payload, so the checksum no longer holds.
void flip_stored_fragment(const fs::path& store_dir, const erasure::NetworkParams& params,
                          BlobIndex index, uint8_t fragment) {
  std::vector<std::string> names;
  ASSERT_TRUE(
      rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), store_dir.string(), &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const auto& n : names) families.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(
      rocksdb::DB::Open(rocksdb::DBOptions(), store_dir.string(), families, &handles, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  const size_t slot =
      static_cast<size_t>(std::find(names.begin(), names.end(), "fragments") - names.begin());
  ASSERT_LT(slot, names.size()) << "no fragments column family";

  uint8_t key[13];
  put_be<uint32_t>(key, static_cast<uint32_t>(index.value / params.blobs_per_shard));
  put_be<uint64_t>(key + 4, index.value);
  key[12] = fragment;
  const rocksdb::Slice k(reinterpret_cast<const char*>(key), sizeof(key));
  std::string value;
  ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), handles[slot], k, &value).ok());
  ASSERT_EQ(value.size(), 1 + params.fragment_size() + 4);
  value[value.size() / 2] = static_cast<char>(value[value.size() / 2] ^ 0x5a);
  ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[slot], k, value).ok());
  ASSERT_TRUE(db->Flush(rocksdb::FlushOptions()).ok());
  for (auto* h : handles) (void)db->DestroyColumnFamilyHandle(h);
  ASSERT_TRUE(db->Close().ok());
}

// Uploads `count` random files of the given sizes to node 0; ids and contents.
std::vector<std::pair<std::string, Bytes>> upload(ProcessNetwork& net, test::TempDir& tmp,
                                                  const std::vector<size_t>& sizes, uint64_t seed) {
  auto rng = test::seeded_rng(seed);
  std::vector<std::pair<std::string, Bytes>> files;
  for (size_t size : sizes) {
    Bytes content = test::random_bytes(rng, size);
    const fs::path path = tmp / ("in-" + std::to_string(seed) + "-" + std::to_string(size));
    test::write_file(path, content);
    const std::string id = test::put(net.node(0).url(), path);
    EXPECT_FALSE(id.empty()) << "upload of " << size << " bytes failed";
    files.emplace_back(id, std::move(content));
  }
  return files;
}

TEST(SyncProcess, AFourthNodeJoinsTheShardAndSyncsEveryBlob) {
  test::TempDir tmp;
  ProcessNetwork net(tmp);
  net.start(0, {"--min-replicas", "3"});
  net.start(1);
  net.start(2);
  ASSERT_TRUE(net.wait_meshed()) << "the three nodes did not mesh";
  const auto files = upload(net, tmp, {1, 131072, 400000, size_t{3} << 20}, 61);
  const uint64_t blobs = net.status(0)["chain"]["blob_count"].get<uint64_t>();
  ASSERT_GT(blobs, 30u);
  for (size_t i = 0; i < 3; ++i) ASSERT_EQ(net.status(i)["blobs_stored"].get<uint64_t>(), blobs);

  // The fourth node serves the same shard; it was not there for the announcements.
  net.start(3);
  nlohmann::json sync;
  ASSERT_TRUE(test::wait_until(
      [&] {
        auto s = net.status(3);
        if (!s.is_object() || s["sync"].empty()) return false;
        sync = s["sync"][0];
        return sync["state"] == "synced" && sync["held"].get<uint64_t>() == blobs;
      },
      120s))
      << "node 4 did not sync: " << sync.dump();
  std::cout << "node 4 sync status: " << sync.dump() << "\n";
  EXPECT_EQ(sync["registered"].get<uint64_t>(), blobs);
  EXPECT_EQ(sync["remaining"].get<uint64_t>(), 0u);
  EXPECT_EQ(sync["next_index"].get<uint64_t>(), blobs) << "the cursor covers the shard";
  EXPECT_GT(sync["fetched"].get<uint64_t>(), 0u);
  EXPECT_EQ(net.status(3)["blobs_stored"].get<uint64_t>(), blobs);
  const std::string m = net.metrics(3);
  ASSERT_FALSE(m.empty());
  EXPECT_EQ(test::metric_value(m, "cairn_sync_blobs_fetched_total"), sync["fetched"].get<double>());
  EXPECT_EQ(test::metric_value(m, "cairn_sync_blobs_remaining{shard=\"0\"}"), 0.0);
  EXPECT_EQ(test::metric_value(m, "cairn_sync_invalid_replies_total"), 0.0);

  // Its copies are its own: with every other node gone, it serves every file.
  for (size_t i = 0; i < 3; ++i) ASSERT_TRUE(net.node(i).process->stop(SIGKILL, 5s));
  for (const auto& [id, content] : files)
    EXPECT_TRUE(test::got(net.node(3).url(), id, tmp / "out", content));
}

TEST(SyncProcess, FlippedBytesOnDiskAreReadAroundAndScrubbedBack) {
  test::TempDir tmp;
  ProcessNetwork net(tmp);
  const std::vector<std::string> fast_scrub{"--set", "storage.scrub.tick_ms=50",
                                            "--set", "storage.scrub.bytes_per_second=268435456",
                                            "--set", "storage.scrub.max_queued_jobs=16"};
  net.start(0, {"--min-replicas", "3"});
  net.start(1, fast_scrub);
  net.start(2);
  ASSERT_TRUE(net.wait_meshed()) << "the three nodes did not mesh";
  const auto files = upload(net, tmp, {size_t{1} << 20}, 62);  // 8 data blobs and a manifest
  ASSERT_EQ(net.status(1)["blobs_stored"].get<uint64_t>(), 9u);
  const std::string node_id = net.status(1)["id"].get<std::string>();
  ASSERT_TRUE(
      test::wait_until([&] { return net.status(1)["scrub"]["passes"].get<uint64_t>() >= 1; }, 30s));
  ASSERT_EQ(net.status(1)["scrub"]["fragments_bad"].get<uint64_t>(), 0u)
      << "damage before the test made any";

  // Stop node B and damage its store: one fragment of blob 0 (local parity
  // suffices), five of blob 1 (7 good of the 8 needed: peers must help).
  ASSERT_EQ(net.node(1).process->stop(SIGTERM, 20s), std::optional<int>(0));
  const auto params = erasure::NetworkParams::defaults();
  const fs::path store_dir = net.node(1).dir / "store";
  flip_stored_fragment(store_dir, params, BlobIndex{0}, 3);
  for (uint8_t f = 0; f < 5; ++f) flip_stored_fragment(store_dir, params, BlobIndex{1}, f);
  {
    auto store = shards::Store::open(store_dir, params);
    ASSERT_TRUE(store) << store.error().to_string();
    EXPECT_EQ((*store)->get_fragment(BlobIndex{0}, FragmentIndex{3}).error().code,
              Errc::corruption);
  }

  // Restarted, B still returns the right bytes, and its scrubber repairs
  // all six fragments: one from local parity, five with the peers' help.
  net.start(1);
  ASSERT_TRUE(net.wait_meshed());
  for (const auto& [id, content] : files)
    EXPECT_TRUE(test::got(net.node(1).url(), id, tmp / "out", content));
  nlohmann::json scrub;
  ASSERT_TRUE(test::wait_until(
      [&] {
        scrub = net.status(1)["scrub"];
        return scrub.is_object() &&
               scrub["repaired_local"].get<uint64_t>() + scrub["repaired_remote"].get<uint64_t>() >=
                   6;
      },
      60s))
      << "scrub did not repair: " << scrub.dump();
  std::cout << "node B scrub status: " << scrub.dump() << "\n";
  EXPECT_EQ(scrub["fragments_bad"].get<uint64_t>(), 6u);
  EXPECT_EQ(scrub["repaired_local"].get<uint64_t>(), 1u);
  EXPECT_EQ(scrub["repaired_remote"].get<uint64_t>(), 5u);
  EXPECT_EQ(scrub["unrepairable"].get<uint64_t>(), 0u);
  const std::string m = net.metrics(1);
  EXPECT_EQ(test::metric_value(m, "cairn_scrub_fragments_bad_total"), 6.0);
  EXPECT_EQ(test::metric_value(m, "cairn_scrub_repaired_local_total"), 1.0);
  EXPECT_EQ(test::metric_value(m, "cairn_scrub_repaired_remote_total"), 5.0);

  // On disk every fragment of both blobs is sound again, sealed for B.
  ASSERT_EQ(net.node(1).process->stop(SIGTERM, 20s), std::optional<int>(0));
  auto store = shards::Store::open(store_dir, params);
  ASSERT_TRUE(store) << store.error().to_string();
  auto id = NodeId::from_hex(node_id);
  ASSERT_TRUE(id);
  shards::SealingTransform seal(params, *id);
  for (uint64_t i : {0u, 1u}) {
    auto health = shards::check_blob(**store, BlobIndex{i}, &seal);
    ASSERT_TRUE(health) << health.error().to_string();
    EXPECT_TRUE(health->bad.empty()) << "blob " << i << " still has bad fragments";
  }
}

}  // namespace
}  // namespace cairn
