// Real Nodes in one process (shared DevChain, TCP on loopback): the upload,
// replication and fetch protocols end to end.

#include <gtest/gtest.h>
#include <httplib.h>

#include <ctime>
#include <regex>

#include "cairn/erasure/commitment.hpp"
#include "cairn/erasure/file.hpp"
#include "cairn/shards/store.hpp"
#include "node/cluster.hpp"
#include "support/test_util.hpp"

namespace cairn::node::test {
namespace {

using cairn::test::metric;

Bytes read_all(NodeService& svc, const BlobId& id) {
  Bytes out;
  auto st = svc.read(id, {}, [&](ByteSpan b) -> Status {
    out.insert(out.end(), b.begin(), b.end());
    return {};
  });
  EXPECT_TRUE(st) << st.error().to_string();
  return out;
}

TEST(Node, LoneNodeStoresAndReadsBlobsAndFiles) {
  Cluster net;
  Node& a = net.add();
  ASSERT_TRUE(eventually([&] { return net.meshed(); }));
  auto rng = cairn::test::seeded_rng(1);
  NodeService& svc = a.service();

  const Bytes blob = cairn::test::random_bytes(rng, 1000);
  auto put = svc.put_blob(blob, {});
  ASSERT_TRUE(put) << put.error().to_string();
  EXPECT_EQ(put->replicas, 1u);  // a lone node acknowledges with its own replica
  EXPECT_EQ(put->size, 1000u);
  auto got = svc.read_blob(put->id);
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(*got, blob);

  const Bytes file = cairn::test::random_bytes(rng, 3 * 131072 + 17);
  auto pf = svc.put_file(file, {});
  ASSERT_TRUE(pf) << pf.error().to_string();
  EXPECT_EQ(pf->size, file.size());
  EXPECT_EQ(pf->data_blobs, 4u);
  EXPECT_EQ(read_all(svc, pf->id), file);

  auto info = svc.stat(pf->id);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->kind, ObjectKind::file);
  EXPECT_EQ(info->size, file.size());
  auto blob_info = svc.stat(put->id);
  ASSERT_TRUE(blob_info);
  EXPECT_EQ(blob_info->kind, ObjectKind::blob);

  // Both uploads are in the status model's recent uploads, newest first.
  auto st = svc.status();
  ASSERT_TRUE(st);
  ASSERT_EQ(st->recent_uploads.size(), 2u);
  EXPECT_EQ(st->recent_uploads[0].id, pf->id);
  EXPECT_EQ(st->recent_uploads[0].kind, ObjectKind::file);
  EXPECT_EQ(st->recent_uploads[0].size, file.size());
  EXPECT_EQ(st->recent_uploads[1].id, put->id);
  EXPECT_EQ(st->recent_uploads[1].kind, ObjectKind::blob);
  EXPECT_EQ(st->recent_uploads[1].replicas, 1u);

  // A range across a blob boundary.
  Bytes part;
  ASSERT_TRUE(svc.read(pf->id, {131000, 1000}, [&](ByteSpan b) -> Status {
    part.insert(part.end(), b.begin(), b.end());
    return {};
  }));
  EXPECT_EQ(part, Bytes(file.begin() + 131000, file.begin() + 132000));
  EXPECT_EQ(svc.read(pf->id, {file.size(), 1}, [](ByteSpan) -> Status { return {}; }).error().code,
            Errc::invalid_argument);

  auto status = svc.blob_status(put->id);
  ASSERT_TRUE(status) << status.error().to_string();
  EXPECT_TRUE(status->stored_locally);
  ASSERT_EQ(status->holders.size(), 1u);
  EXPECT_TRUE(status->holders[0].local);

  BlobId unknown;
  unknown.bytes[0] = 1;
  EXPECT_EQ(svc.read_blob(unknown).error().code, Errc::not_found);
  EXPECT_EQ(svc.blob_status(unknown).error().code, Errc::not_found);

  const std::string metrics = svc.metrics_text();
  EXPECT_NE(metrics.find("cairn_upload_blobs_acknowledged_total"), std::string::npos);
  EXPECT_NE(metrics.find("cairn_store_blobs 6"), std::string::npos) << metrics;
}

// What an operator's Prometheus sees of a node: who it is, its peers per
// served shard, its chain head's age, its disk; and metrics.listen serves
// the same exposition on its own port.
TEST(Node, MetricsNameTheNodeItsShardsAndServeOnTheirOwnListener) {
  Cluster net;
  Node& a = net.add([](NodeSettings& s) { s.metrics.listen = "127.0.0.1:0"; });
  Node& b = net.add();
  ASSERT_TRUE(eventually([&] { return net.meshed(); }));
  EXPECT_TRUE(b.metrics_address().empty());
  ASSERT_FALSE(a.metrics_address().empty());

  // One peer (b) in a's shard, counted per shard once the tick samples it.
  const std::regex shard_peers(R"(\ncairn_p2p_shard_peers\{shard="[0-9]+"\} 1\n)");
  const std::regex mesh_peers(R"(\ncairn_gossip_mesh_peers\{shard="[0-9]+"\} [0-9]+\n)");
  std::string m;
  ASSERT_TRUE(eventually([&] {
    m = a.service().metrics_text();
    return std::regex_search(m, shard_peers);
  })) << m;
  EXPECT_TRUE(std::regex_search(m, mesh_peers)) << m;
  EXPECT_NE(m.find("cairn_build_info{version=\"" CAIRN_VERSION "\",node_id=\"" + a.id().hex() +
                   "\"} 1\n"),
            std::string::npos)
      << m;
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_NEAR(metric(m, "cairn_chain_head_timestamp_seconds"), now, 60.0) << m;
  EXPECT_GT(metric(m, "cairn_store_disk_total_bytes"), 0.0);
  EXPECT_GT(metric(m, "process_resident_memory_bytes"), 0.0);
  // The sync rate is rate(cairn_sync_bytes_fetched_total), not a gauge.
  EXPECT_EQ(m.find("cairn_sync_bytes_per_second"), std::string::npos);
  EXPECT_NE(m.find("# TYPE cairn_sync_bytes_fetched_total counter"), std::string::npos);

  const auto colon = a.metrics_address().rfind(':');
  httplib::Client c("127.0.0.1", std::stoi(a.metrics_address().substr(colon + 1)));
  auto r = c.Get("/metrics");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->get_header_value("Content-Type").find("version=0.0.4"), std::string::npos);
  EXPECT_NE(r->body.find("cairn_build_info{"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("process_cpu_seconds_total "), std::string::npos);
  // Only /metrics: the API's routes are not reachable through this port.
  auto status = c.Get("/v1/status");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->status, 404);
}

TEST(Node, AMalformedMetricsListenIsRefusedAtStart) {
  Cluster net;
  try {
    net.add([](NodeSettings& s) { s.metrics.listen = "no-port"; });
    FAIL() << "a node started with metrics.listen = \"no-port\"";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("metrics.listen"), std::string::npos) << e.what();
  }
}

TEST(Node, EmptyFileAndOversizeBlob) {
  Cluster net;
  Node& a = net.add();
  ASSERT_TRUE(eventually([&] { return net.meshed(); }));
  auto pf = a.service().put_file(ByteSpan{}, {});
  ASSERT_TRUE(pf) << pf.error().to_string();
  EXPECT_EQ(pf->size, 0u);
  EXPECT_TRUE(read_all(a.service(), pf->id).empty());
  const Bytes big(131073, 1);
  EXPECT_EQ(a.service().put_blob(big, {}).error().code, Errc::invalid_argument);
}

TEST(Node, ThreeNodesReplicateSealedReplicasAndServeReadsThroughAnyNode) {
  Cluster net;
  net.add();
  net.add();
  net.add();
  ASSERT_TRUE(eventually([&] { return net.meshed(); })) << "nodes did not mesh";
  auto rng = cairn::test::seeded_rng(2);
  const Bytes file = cairn::test::random_bytes(rng, 2 * 1024 * 1024 + 333);
  PutOptions opts;
  opts.min_replicas = 3;
  auto pf = net.node(0).service().put_file(file, opts);
  ASSERT_TRUE(pf) << pf.error().to_string();
  EXPECT_EQ(pf->replicas, 3u);
  const uint64_t blobs = pf->data_blobs + pf->manifest_blobs;

  // Every node holds every blob and reads the file.
  for (size_t i = 0; i < 3; ++i) {
    auto st = net.node(i).service().status();
    ASSERT_TRUE(st);
    EXPECT_EQ(st->blobs_stored, blobs) << "node " << i;
    EXPECT_EQ(read_all(net.node(i).service(), pf->id), file) << "node " << i;
  }
  auto status = net.node(2).service().blob_status(pf->id);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->holders.size(), 3u);

  // A fourth node serving another shard holds nothing and reads through
  // the others (it dials the registered holders itself).
  Node& d = net.add([](NodeSettings& s) {
    s.shards = std::vector<ShardId>{ShardId{7}};
    s.bootstrap.clear();
  });
  EXPECT_EQ(read_all(d.service(), pf->id), file);
  EXPECT_EQ(d.service().status()->blobs_stored, 0u);
  EXPECT_EQ(metric(d.service().metrics_text(), "cairn_fetch_remote_total"),
            static_cast<double>(blobs));
  EXPECT_EQ(metric(d.service().metrics_text(), "cairn_fetch_local_total"), 0.0);

  // With one holder gone, the file is still read through the others.
  net.remove(1);
  EXPECT_EQ(read_all(d.service(), pf->id), file);
  EXPECT_EQ(read_all(net.node(2).service(), pf->id), file);

  // The replicas on disk differ byte for byte (sealed per node).
  net.remove(0);
  net.remove(2);
  net.remove(3);
  auto s0 = shards::Store::open(net.dir(0) / "store", net.chain().info().params);
  auto s1 = shards::Store::open(net.dir(1) / "store", net.chain().info().params);
  ASSERT_TRUE(s0 && s1);
  auto rec = (*s0)->get_blob(pf->id);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->encoding, shards::FragmentEncoding::sealed);
  for (uint8_t f = 0; f < 12; ++f) {
    auto a = (*s0)->get_fragment(rec->index, FragmentIndex{f});
    auto b = (*s1)->get_fragment(rec->index, FragmentIndex{f});
    ASSERT_TRUE(a && b);
    EXPECT_NE(*a, *b) << "fragment " << int(f) << " is identical on two nodes";
  }
}

}  // namespace
}  // namespace cairn::node::test

namespace cairn::node::test {
namespace {

TEST(Node, AutoShardsFollowTheIndexSpaceAsShardsOpen) {
  auto params = fast_params();
  params.blobs_per_shard = 4;  // a 1 MiB file spans three shards
  Cluster net(params);
  net.add();
  net.add();
  net.add();
  ASSERT_TRUE(eventually([&] { return net.meshed(); }));
  auto rng = cairn::test::seeded_rng(3);
  const Bytes file = cairn::test::random_bytes(rng, 1024 * 1024);
  PutOptions opts;
  opts.min_replicas = 3;
  auto pf = net.node(1).service().put_file(file, opts);
  ASSERT_TRUE(pf) << pf.error().to_string();
  EXPECT_EQ(pf->replicas, 3u);
  for (size_t i = 0; i < 3; ++i) {
    auto st = net.node(i).service().status();
    ASSERT_TRUE(st);
    EXPECT_EQ(st->blobs_stored, pf->data_blobs + pf->manifest_blobs) << "node " << i;
    EXPECT_GE(st->shards.size(), 3u) << "node " << i;
    EXPECT_EQ(read_all(net.node(i).service(), pf->id), file);
  }
  // Every node registers for the shards that opened.
  EXPECT_TRUE(eventually([&] {
    return net.chain().nodes(ShardId{2}).value_or(std::vector<contracts::NodeRecord>{}).size() == 3;
  }));
}

}  // namespace
}  // namespace cairn::node::test
