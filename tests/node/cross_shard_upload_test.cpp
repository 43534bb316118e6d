// An upload through a node that does not serve the shard its blobs land in
// (every node of a multi-shard network takes uploads): the node follows
// that shard's subnet, the shard's nodes pull and store the blobs, and
// their confirmations come back, so the upload is acknowledged.

#include <gtest/gtest.h>

#include "node/cluster.hpp"

namespace cairn::node::test {
namespace {

TEST(Node, AnUploadThroughANodeOfAnotherShardIsAcknowledgedByTheShardsNodes) {
  Cluster net;
  auto shard0 = [](NodeSettings& s) { s.shards = std::vector<ShardId>{ShardId{0}}; };
  net.add(shard0);
  net.add(shard0);
  ASSERT_TRUE(eventually([&] { return net.meshed(); })) << "shard 0's nodes did not mesh";
  // Serves shard 7 only and bootstraps from nobody: it knows shard 0's
  // nodes from the chain registry alone.
  Node& other = net.add([](NodeSettings& s) {
    s.shards = std::vector<ShardId>{ShardId{7}};
    s.bootstrap.clear();
  });

  auto rng = cairn::test::seeded_rng(12);
  const Bytes file = cairn::test::random_bytes(rng, 700'000);
  PutOptions opts;
  opts.min_replicas = 2;
  opts.timeout = std::chrono::seconds(20);
  auto pf = other.service().put_file(file, opts);
  ASSERT_TRUE(pf) << pf.error().to_string();
  EXPECT_GE(pf->replicas, 2u);
  const uint64_t blobs = pf->data_blobs + pf->manifest_blobs;
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_TRUE(eventually([&] { return net.node(i).service().status()->blobs_stored == blobs; }))
        << "node " << i << " of shard 0 holds " << net.node(i).service().status()->blobs_stored
        << " of " << blobs;
  }
  EXPECT_EQ(other.service().status()->blobs_stored, 0u) << "the uploader does not serve shard 0";
}

}  // namespace
}  // namespace cairn::node::test
