// Real Nodes (shared DevChain, TCP on 127.0.0.1, RocksDB on disk) whose store
// runs on a file system that fails on demand (tests/support/fault_fs.hpp):
// an upload whose write fails is never acknowledged and the node does not
// crash; a restart brings writes back without losing anything acknowledged;
// a holder whose fragments cannot be read still serves the blob bit-exact
// and its scrubber counts the unreadable fragments. What the store does in
// each case: docs/store-format.md, "Write, sync and read failures"; what an
// operator sees: docs/operations.md, "Disk failures".

#include <gtest/gtest.h>
#include <httplib.h>

#include <future>

#include "cairn/erasure/codec.hpp"
#include "node/api_server.hpp"
#include "node/cluster.hpp"
#include "support/fault_fs.hpp"
#include "support/test_util.hpp"

namespace cairn::node::test {
namespace {

using cairn::test::metric;

using cairn::test::Fault;
using cairn::test::FaultInjectionFs;
using cairn::test::FaultOp;

// The id a payload gets (what a failed upload would have registered).
BlobId id_of(const erasure::NetworkParams& params, ByteSpan payload) {
  auto codec = erasure::Codec::create(params);
  EXPECT_TRUE(codec);
  erasure::CommittedBlob blob;
  EXPECT_TRUE(erasure::encode_and_commit_into(**codec, payload, blob));
  return blob.commitment.id;
}

Fault fail_log_writes() {
  Fault f;
  f.op = FaultOp::write;
  f.pattern = "*.log";  // the WAL: every store write appends to it first
  return f;
}

Fault fail_fragment_reads() {
  Fault f;
  f.op = FaultOp::read;
  f.pattern = "*.blob";  // RocksDB blob files: the fragment values
  return f;
}

std::function<void(NodeOptions&)> on(const std::shared_ptr<FaultInjectionFs>& fs) {
  return [fs](NodeOptions& o) { o.store.file_system = fs; };
}

// The same node again (data dir of slot `i`), e.g. after a restart.
std::function<void(NodeSettings&)> same_dir(const Cluster& net, size_t i,
                                            const std::function<void(NodeSettings&)>& more = {}) {
  const std::string dir = net.dir(i).string();
  return [dir, more](NodeSettings& s) {
    s.data_dir = dir;
    if (more) more(s);
  };
}

TEST(NodeStoreFaults, AnUploadWhoseStoreWriteFailsIsNotAcknowledgedAndARestartStoresItAgain) {
  auto fs = std::make_shared<FaultInjectionFs>();
  Cluster net;
  const auto with_api = [](NodeSettings& s) { s.api.listen = "127.0.0.1:0"; };
  const auto api_on_fs = [&](NodeOptions& o) {
    on(fs)(o);
    o.api = api_server_factory(net.dir(0) / "spool");
  };
  Node* n = &net.add(with_api, api_on_fs);
  ASSERT_TRUE(eventually([&] { return net.meshed(); }));
  auto rng = cairn::test::seeded_rng(71);
  const auto params = net.chain().info().params;

  const Bytes a = cairn::test::random_bytes(rng, 1000);
  auto put_a = n->service().put_blob(a, {});
  ASSERT_TRUE(put_a) << put_a.error().to_string();

  fs->inject(fail_log_writes());
  const Bytes b = cairn::test::random_bytes(rng, 2000);
  const BlobId b_id = id_of(params, b);
  PutOptions opts;
  opts.timeout = 5s;
  const double failures_before = metric(n->service().metrics_text(), "cairn_upload_failures_total");
  auto put_b = n->service().put_blob(b, opts);
  ASSERT_FALSE(put_b) << "an upload whose store write failed was acknowledged";
  EXPECT_EQ(put_b.error().code, Errc::io_error) << put_b.error().to_string();
  // The answer names the storage failure and what to do about it.
  EXPECT_NE(put_b.error().message.find("injected fault"), std::string::npos)
      << put_b.error().to_string();
  EXPECT_NE(put_b.error().message.find("restart the node"), std::string::npos)
      << put_b.error().to_string();
  EXPECT_GE(fs->failed(FaultOp::write), 1u);
  EXPECT_EQ(metric(n->service().metrics_text(), "cairn_upload_failures_total"),
            failures_before + 1);
  EXPECT_GE(metric(n->service().metrics_text(), "cairn_store_write_failures_total"), 1.0);
  // Over HTTP: 500 io_error with the same message.
  {
    httplib::Client http("http://" + n->api_address());
    http.set_read_timeout(10, 0);
    auto r = http.Post("/v1/blobs", std::string(b.begin(), b.end()), "application/octet-stream");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 500) << r->body;
    EXPECT_NE(r->body.find("\"error\":\"io_error\""), std::string::npos) << r->body;
    EXPECT_NE(r->body.find("restart the node"), std::string::npos) << r->body;
  }
  // Not registered on the chain, not held, not pending: nobody was told it is stored.
  EXPECT_FALSE(net.chain().blob_by_id(b_id).value_or(std::nullopt).has_value());
  EXPECT_EQ(n->service().blob_status(b_id).error().code, Errc::not_found);
  // What was acknowledged is still served.
  auto got_a = n->service().read_blob(put_a->id);
  ASSERT_TRUE(got_a) << got_a.error().to_string();
  EXPECT_EQ(*got_a, a);

  // RocksDB 7.8 takes no more writes after a failed log write, also once
  // the disk is healthy: the node keeps refusing uploads (never acknowledging
  // them) until it is restarted.
  fs->clear();
  auto again = n->service().put_blob(b, opts);
  ASSERT_FALSE(again) << "acknowledged by a store in a failed state";
  EXPECT_NE(again.error().message.find("restart the node"), std::string::npos)
      << again.error().to_string();
  auto status = n->service().status();
  ASSERT_TRUE(status) << status.error().to_string();
  EXPECT_EQ(status->blobs_stored, 1u);

  // It stops without crashing; the final flush reports the store's error
  // ("io_error: flushing store ...: IO error: ...").
  const double write_failures =
      metric(n->service().metrics_text(), "cairn_store_write_failures_total");
  EXPECT_GE(write_failures, 2.0);
  auto stopped = net.stop(0);
  if (!stopped) {
    EXPECT_EQ(stopped.error().code, Errc::io_error) << stopped.error().to_string();
  }
  n = &net.add(same_dir(net, 0), on(fs));
  ASSERT_TRUE(eventually([&] { return net.meshed(); }));
  got_a = n->service().read_blob(put_a->id);
  ASSERT_TRUE(got_a) << got_a.error().to_string();
  EXPECT_EQ(*got_a, a);
  put_b = n->service().put_blob(b, opts);
  ASSERT_TRUE(put_b) << put_b.error().to_string();
  EXPECT_EQ(put_b->id, b_id);
  EXPECT_EQ(put_b->replicas, 1u);
  auto st_b = n->service().blob_status(b_id);
  ASSERT_TRUE(st_b) << st_b.error().to_string();
  EXPECT_TRUE(st_b->stored_locally);
  auto got_b = n->service().read_blob(b_id);
  ASSERT_TRUE(got_b) << got_b.error().to_string();
  EXPECT_EQ(*got_b, b);
  EXPECT_EQ(fs->failed(FaultOp::write), fs->failed_total());
  EXPECT_EQ(metric(n->service().metrics_text(), "cairn_store_write_failures_total"),
            0);  // counted per open
}

TEST(NodeStoreFaults, AnUploadWhoseOwnReplicaWriteFailsIsNotAcknowledgedAndResumesAfterARestart) {
  auto fs = std::make_shared<FaultInjectionFs>();
  Cluster net;
  Node* n = &net.add({}, on(fs));
  ASSERT_TRUE(eventually([&] { return net.meshed(); }));
  auto rng = cairn::test::seeded_rng(74);
  const Bytes payload = cairn::test::random_bytes(rng, 4000);
  const BlobId id = id_of(net.chain().info().params, payload);

  // Hold the chain so the upload stops between its pending-copy write and
  // its registration, then fail the store's writes: the pending copy is on
  // disk, the node's own replica (written once the blob is registered) is not.
  net.pause_blocks();
  PutOptions opts;
  opts.timeout = 4s;
  auto upload =
      std::async(std::launch::async, [&] { return n->service().put_blob(payload, opts); });
  ASSERT_TRUE(eventually([&] { return net.chain().mempool_size() > 0; }, 10s))
      << "the blob was never submitted";
  fs->inject(fail_log_writes());
  net.resume_blocks();
  auto put = upload.get();
  ASSERT_FALSE(put) << "acknowledged without any stored replica";
  EXPECT_EQ(put.error().code, Errc::timeout) << put.error().to_string();
  EXPECT_NE(put.error().message.find("could not store its own replica"), std::string::npos)
      << put.error().to_string();
  EXPECT_NE(put.error().message.find("injected fault"), std::string::npos)
      << put.error().to_string();
  EXPECT_GE(metric(n->service().metrics_text(), "cairn_upload_local_store_failures_total"), 1.0);
  auto st = n->service().blob_status(id);
  ASSERT_TRUE(st) << st.error().to_string();  // registered on the chain, but held by nobody
  EXPECT_FALSE(st->stored_locally);
  EXPECT_TRUE(st->holders.empty());

  // The pending copy was acknowledged by the store: after a restart the
  // node resumes the upload and stores its replica.
  fs->clear();
  (void)net.stop(0);
  n = &net.add(same_dir(net, 0), on(fs));
  ASSERT_TRUE(eventually([&] {
    auto s = n->service().blob_status(id);
    return s && s->stored_locally && !s->pending;
  })) << "the pending upload did not resume";
  auto got = n->service().read_blob(id);
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(*got, payload);
}

TEST(NodeStoreFaults, AReplicaWhoseStoreWriteFailsIsNeitherConfirmedNorCounted) {
  auto fs = std::make_shared<FaultInjectionFs>();
  Cluster net;
  Node& a = net.add();
  Node& b = net.add({}, on(fs));
  ASSERT_TRUE(eventually([&] { return net.meshed(); }));
  auto rng = cairn::test::seeded_rng(72);

  fs->inject(fail_log_writes());
  const Bytes payload = cairn::test::random_bytes(rng, 3000);
  PutOptions opts;
  opts.min_replicas = 2;
  opts.timeout = 5s;
  auto put = a.service().put_blob(payload, opts);
  ASSERT_FALSE(put) << "acknowledged with a replica the failing node never stored";
  EXPECT_EQ(put.error().code, Errc::timeout) << put.error().to_string();
  const BlobId id = id_of(net.chain().info().params, payload);
  EXPECT_GE(fs->failed(FaultOp::write), 1u) << "the failing node never tried to store the replica";
  // Its own store failed, not the uploader: counted as such, not as a bad pull.
  const std::string m = b.service().metrics_text();
  EXPECT_GE(metric(m, "cairn_replicate_store_failures_total"), 1.0);
  EXPECT_EQ(metric(m, "cairn_replicate_pull_failures_total"), 0);
  EXPECT_EQ(metric(m, "cairn_replicate_stored_total"), 0);

  // Only the uploader holds it; the failing node says it does not.
  auto st = a.service().blob_status(id);
  ASSERT_TRUE(st) << st.error().to_string();
  EXPECT_TRUE(st->stored_locally);
  ASSERT_EQ(st->holders.size(), 1u);
  EXPECT_EQ(st->holders[0].node, a.id());
  auto on_b = b.service().blob_status(id);
  ASSERT_TRUE(on_b) << on_b.error().to_string();
  EXPECT_FALSE(on_b->stored_locally);
  for (const auto& h : on_b->holders) EXPECT_NE(h.node, b.id());
  // Still readable from the failing node (it gathers from the uploader).
  auto got = b.service().read_blob(id);
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(*got, payload);
}

// Node 2 holds every blob, flushed to files by a restart; then none of its
// fragment reads succeed.
class UnreadableHolder : public ::testing::Test {
 protected:
  void SetUp() override {
    net_.add();
    net_.add();
    net_.add({}, on(fs_));
    ASSERT_TRUE(eventually([&] { return net_.meshed(); }));
    auto rng = cairn::test::seeded_rng(73);
    PutOptions opts;
    opts.min_replicas = 3;
    for (int i = 0; i < 3; ++i) {
      Bytes payload = cairn::test::random_bytes(rng, 5000 + 1000 * static_cast<size_t>(i));
      auto put = net_.node(0).service().put_blob(payload, opts);
      ASSERT_TRUE(put) << put.error().to_string();
      ASSERT_EQ(put->replicas, 3u);
      blobs_.emplace_back(put->id, std::move(payload));
    }
    // A graceful stop flushes the memtable: fragments are in blob files now.
    ASSERT_TRUE(net_.stop(2));
  }

  // Starts node 2 again on its data dir, with every fragment read failing.
  Node& restart_unreadable(const std::function<void(NodeSettings&)>& tweak) {
    fs_->inject(fail_fragment_reads());
    Node& n = net_.add(same_dir(net_, 2, tweak), on(fs_));
    EXPECT_TRUE(eventually([&] { return net_.meshed(); }));
    return n;
  }

  std::shared_ptr<FaultInjectionFs> fs_ = std::make_shared<FaultInjectionFs>();
  Cluster net_;
  std::vector<std::pair<BlobId, Bytes>> blobs_;
};

TEST_F(UnreadableHolder, AGetIsServedBitExactFromTheOtherHolders) {
  Node& n = restart_unreadable([](NodeSettings& s) { s.storage.scrub.enabled = false; });
  for (const auto& [id, payload] : blobs_) {
    auto got = n.service().read_blob(id);
    ASSERT_TRUE(got) << got.error().to_string();
    EXPECT_EQ(*got, payload);
  }
  EXPECT_GE(fs_->failed(FaultOp::read), 1u) << "the reads never touched the failing files";
  const std::string m = n.service().metrics_text();
  EXPECT_EQ(metric(m, "cairn_fetch_local_total"), 0);
  EXPECT_EQ(metric(m, "cairn_fetch_remote_total"), static_cast<double>(blobs_.size()));
  EXPECT_EQ(metric(m, "cairn_fetch_failures_total"), 0);
}

TEST_F(UnreadableHolder, TheScrubberCountsEveryUnreadableFragmentAndRepairsThemFromPeers) {
  Node& n = restart_unreadable([](NodeSettings& s) {
    s.storage.scrub.tick_ms = 20;
    s.storage.scrub.bytes_per_second = uint64_t{256} << 20;
    s.storage.scrub.max_queued_jobs = 64;
  });
  const auto params = net_.chain().info().params;
  const uint64_t all = blobs_.size() * params.total_fragments();
  ASSERT_TRUE(eventually(
      [&] {
        auto st = n.service().status();
        return st && st->scrub.fragments_repaired_remote >= all;
      },
      30s))
      << "repaired from peers: " << n.service().status()->scrub.fragments_repaired_remote << " of "
      << all;
  auto st = n.service().status();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->scrub.fragments_bad, all);
  EXPECT_EQ(st->scrub.fragments_unrepairable, 0u);
  EXPECT_EQ(st->scrub.fragments_unreadable, all);
  EXPECT_EQ(metric(n.service().metrics_text(), "cairn_scrub_fragments_unreadable_total"),
            static_cast<double>(all));
  // The rewritten fragments are read locally again.
  const double local_before = metric(n.service().metrics_text(), "cairn_fetch_local_total");
  for (const auto& [id, payload] : blobs_) {
    auto got = n.service().read_blob(id);
    ASSERT_TRUE(got) << got.error().to_string();
    EXPECT_EQ(*got, payload);
  }
  EXPECT_EQ(metric(n.service().metrics_text(), "cairn_fetch_local_total"),
            local_before + static_cast<double>(blobs_.size()));
}

}  // namespace
}  // namespace cairn::node::test
