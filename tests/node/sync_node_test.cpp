// Shard sync and scrub inside real Nodes (shared DevChain, TCP on loopback,
// sealed RocksDB stores): a node that joins late fetches every registered
// blob; damage on disk is found and repaired by the scrubber.

#include <gtest/gtest.h>

#include "cairn/shards/scrub.hpp"
#include "cairn/shards/seal_transform.hpp"
#include "cairn/shards/store.hpp"
#include "node/cluster.hpp"

namespace cairn::node::test {
namespace {

double metric(const std::string& text, const std::string& name) {
  const auto at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + name.size() + 2));
}

std::optional<ShardSyncStatus> shard_sync(Node& n, ShardId shard) {
  auto st = n.service().status();
  if (!st) return std::nullopt;
  for (const auto& s : st->sync) {
    if (s.shard == shard) return s;
  }
  return std::nullopt;
}

void fast_maintenance(NodeSettings& s) {
  s.storage.sync.tick_ms = 50;
  s.storage.sync.settle_blocks = 2;
  s.storage.scrub.tick_ms = 20;
  s.storage.scrub.bytes_per_second = uint64_t{256} << 20;
  s.storage.scrub.max_queued_jobs = 64;
  s.storage.scrub.pass_pause_s = 1;
}

TEST(NodeSync, ALateNodeFetchesEveryBlobOfItsShardFromThePeers) {
  Cluster net;
  for (int i = 0; i < 3; ++i) net.add(fast_maintenance);
  ASSERT_TRUE(eventually([&] { return net.meshed(); })) << "nodes did not mesh";
  auto rng = cairn::test::seeded_rng(31);
  std::vector<std::pair<BlobId, Bytes>> blobs;
  PutOptions opts;
  opts.min_replicas = 3;
  for (size_t i = 0; i < 24; ++i) {
    Bytes payload = cairn::test::random_bytes(rng, i % 3 == 0 ? 131072 : 1000 + 4000 * i);
    auto put = net.node(i % 3).service().put_blob(payload, opts);
    ASSERT_TRUE(put) << put.error().to_string();
    blobs.emplace_back(put->id, std::move(payload));
  }

  Node& late = net.add(fast_maintenance);
  ASSERT_TRUE(eventually([&] {
    auto s = shard_sync(late, ShardId{0});
    return s && s->state == "synced" && s->held == blobs.size();
  }, 60s)) << "state " << (shard_sync(late, ShardId{0}) ? shard_sync(late, ShardId{0})->state : "none");
  const auto s = *shard_sync(late, ShardId{0});
  EXPECT_EQ(s.registered, blobs.size());
  EXPECT_EQ(s.remaining, 0u);
  EXPECT_EQ(s.next_index, blobs.size());
  EXPECT_EQ(s.fetched, blobs.size()) << "the late node missed the announcements: sync fetched everything";
  EXPECT_GT(s.fetched_bytes, 0u);
  const std::string m = late.service().metrics_text();
  EXPECT_EQ(metric(m, "cairn_sync_blobs_fetched_total"), double(blobs.size()));
  EXPECT_EQ(metric(m, "cairn_sync_blobs_remaining{shard=\"0\"}"), 0.0);
  EXPECT_EQ(metric(m, "cairn_sync_blobs_known{shard=\"0\"}"), double(blobs.size()));
  EXPECT_EQ(metric(m, "cairn_sync_blobs_held{shard=\"0\"}"), double(blobs.size()));
  EXPECT_EQ(metric(m, "cairn_sync_blobs_held"), -1.0) << "per-shard series only, no unlabelled sum";
  EXPECT_EQ(metric(m, "cairn_sync_invalid_replies_total"), 0.0);
  EXPECT_EQ(late.service().status()->blobs_stored, blobs.size());
  // Reads are local now.
  const double remote_before = metric(late.service().metrics_text(), "cairn_fetch_remote_total");
  for (const auto& [id, payload] : blobs) {
    auto got = late.service().read_blob(id);
    ASSERT_TRUE(got) << got.error().to_string();
    EXPECT_EQ(*got, payload);
  }
  EXPECT_EQ(metric(late.service().metrics_text(), "cairn_fetch_remote_total"), remote_before);
}

TEST(NodeSync, ScrubRepairsDamageFoundAfterARestart) {
  Cluster net;
  net.add(fast_maintenance);
  auto rng = cairn::test::seeded_rng(32);
  std::vector<std::pair<BlobId, Bytes>> blobs;
  for (int i = 0; i < 6; ++i) {
    Bytes payload = cairn::test::random_bytes(rng, 50000 + 1000 * size_t(i));
    auto put = net.node(0).service().put_blob(payload, {});
    ASSERT_TRUE(put) << put.error().to_string();
    blobs.emplace_back(put->id, std::move(payload));
  }
  net.remove(0);

  // Damage under the node: wrong bytes in two fragments of one blob, with
  // valid store checksums (only the commitment can tell).
  const auto params = net.chain().info().params;
  BlobIndex damaged;
  {
    auto store = shards::Store::open(net.dir(0) / "store", params);
    ASSERT_TRUE(store) << store.error().to_string();
    auto rec = (*store)->get_blob(blobs[2].first);
    ASSERT_TRUE(rec);
    damaged = rec->index;
    for (uint8_t f : {uint8_t{1}, uint8_t{9}}) {
      ASSERT_TRUE((*store)->put_fragment(damaged, FragmentIndex{f},
                                         cairn::test::random_bytes(rng, params.fragment_size())));
    }
    ASSERT_TRUE((*store)->close());
  }

  Node& n = net.add([](NodeSettings& s) {
    fast_maintenance(s);
    s.data_dir = (std::filesystem::path(s.data_dir).parent_path() / "node0").string();  // the same node again
  });
  // Reads are right before and after the repair.
  auto early = n.service().read_blob(blobs[2].first);
  ASSERT_TRUE(early) << early.error().to_string();
  EXPECT_EQ(*early, blobs[2].second);
  ASSERT_TRUE(eventually([&] {
    auto st = n.service().status();
    return st && st->scrub.repaired_local >= 2 && st->scrub.passes >= 1;
  }, 30s));
  auto st = n.service().status();
  EXPECT_EQ(st->scrub.fragments_bad, 2u);
  EXPECT_EQ(st->scrub.unrepairable, 0u);
  EXPECT_GE(metric(n.service().metrics_text(), "cairn_scrub_repaired_local_total"), 2.0);
  for (const auto& [id, payload] : blobs) {
    auto got = n.service().read_blob(id);
    ASSERT_TRUE(got) << got.error().to_string();
    EXPECT_EQ(*got, payload);
  }
  const NodeId id = n.id();
  net.remove(1);
  auto store = shards::Store::open(net.dir(0) / "store", params);
  ASSERT_TRUE(store);
  shards::SealingTransform seal(params, id);
  auto health = shards::check_blob(**store, damaged, &seal);
  ASSERT_TRUE(health) << health.error().to_string();
  EXPECT_TRUE(health->bad.empty()) << "the repaired fragments are on disk";
}

}  // namespace
}  // namespace cairn::node::test
