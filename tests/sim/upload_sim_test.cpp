// Uploads, replication and sync of whole nodes in deterministic simulation
// (tests/sim/sim_network.hpp): exact virtual times, real stores.

#include <gtest/gtest.h>

#include "sim/sim_network.hpp"

namespace cairn::sim {
namespace {

using namespace std::chrono_literals;

constexpr const char* kAcked = "cairn_upload_blobs_acknowledged_total";

struct UploadTimes {
  int64_t second_replica_ms = -1;  // the second node holds the blob
  int64_t acknowledged_ms = -1;    // the uploader counted min_replicas
  uint32_t replicas = 0;           // what put_blob returned
};

// Three meshed nodes; node 0 uploads one blob asking for two replicas.
UploadTimes upload_with_two_replicas(uint64_t seed) {
  SimNetwork sim(SimNetwork::default_params(), seed);
  for (int i = 0; i < 3; ++i) sim.add([](node::NodeSettings& s) { s.upload.min_replicas = 2; });
  EXPECT_TRUE(sim.run_until([&] { return sim.meshed(); }, 30s))
      << "not meshed by " << sim.now_ms() << " ms";
  const int64_t meshed_at = sim.now_ms();

  auto rng = std::mt19937_64(seed);
  const Bytes payload = test::random_bytes(rng, 10'000);
  auto put = sim.spawn([&] { return sim.node(0).service().put_blob(payload, {}); });
  // The call reaches the uploader before virtual time moves on.
  EXPECT_TRUE(sim.settle_until([&] {
    auto st = sim.node(0).service().status();
    return st && st->pending_uploads == 1;
  }));
  UploadTimes t;
  const bool acked = sim.run_until(
      [&] {
        uint64_t holders = 0;
        for (size_t i = 0; i < sim.size(); ++i) holders += sim.blobs_stored(i) > 0 ? 1u : 0u;
        if (holders >= 2 && t.second_replica_ms < 0) t.second_replica_ms = sim.now_ms() - meshed_at;
        if (sim.counter(0, kAcked) == 1 && t.acknowledged_ms < 0)
          t.acknowledged_ms = sim.now_ms() - meshed_at;
        return t.acknowledged_ms >= 0;
      },
      30s);
  EXPECT_TRUE(acked) << "not acknowledged by " << sim.now_ms() << " ms";
  sim.settle_until([&] { return put.wait_for(0s) == std::future_status::ready; });
  auto r = put.get();
  EXPECT_TRUE(r) << r.error().to_string();
  if (r) t.replicas = r->replicas;
  return t;
}

// The uploader acknowledges at min_replicas confirmations and not before:
// only after the second replica is stored, one notice flush and one link
// latency later; and the same seed gives the same virtual times.
TEST(SimUpload, AcknowledgedWhenMinReplicasServingNodesHoldTheBlob) {
  const UploadTimes a = upload_with_two_replicas(test::test_seed());
  ASSERT_GE(a.second_replica_ms, 0);
  ASSERT_GE(a.acknowledged_ms, 0);
  EXPECT_EQ(a.replicas, 2u);
  EXPECT_GT(a.acknowledged_ms, a.second_replica_ms)
      << "acknowledged before a second replica was stored";
  // The stored notice waits kFlushDelay (5 ms), then crosses one 5 ms link.
  EXPECT_LE(a.acknowledged_ms - a.second_replica_ms, 10)
      << "the confirmation took longer than one notice";
  const UploadTimes b = upload_with_two_replicas(test::test_seed());
  EXPECT_EQ(a.second_replica_ms, b.second_replica_ms) << "not deterministic";
  EXPECT_EQ(a.acknowledged_ms, b.acknowledged_ms) << "not deterministic";
}

// A node cut off during an upload does not get the blob; once the partition
// heals, shard sync brings it over.
TEST(SimUpload, APartitionedNodeSyncsTheShardAfterTheHeal) {
  SimNetwork sim(SimNetwork::default_params());
  for (int i = 0; i < 3; ++i) sim.add([](node::NodeSettings& s) { s.upload.min_replicas = 2; });
  ASSERT_TRUE(sim.run_until([&] { return sim.meshed(); }, 30s));
  sim.net().partition({{"n0", "n1"}, {"n2"}});
  auto rng = test::seeded_rng(2);
  const Bytes payload = test::random_bytes(rng, 10'000);
  auto r = sim.upload(0, payload, 30s);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(sim.counter(0, kAcked), 1u);
  sim.advance(10s);
  EXPECT_EQ(sim.blobs_stored(2), 0u) << "the partitioned node got the blob";
  EXPECT_EQ(sim.blobs_stored(0), 1u);
  EXPECT_EQ(sim.blobs_stored(1), 1u);
  sim.net().heal();
  const int64_t healed = sim.now_ms();
  ASSERT_TRUE(sim.run_until([&] { return sim.blobs_stored(2) == 1; }, 120s))
      << "node 2 did not sync the blob within 120 s of the heal";
  std::cout << "[ sim      ] synced " << sim.now_ms() - healed << " ms (virtual) after the heal"
            << std::endl;
}

// A holder crashes; a new node joining the shard syncs what it held, and
// reads keep working from the survivors.
TEST(SimUpload, ACrashedHoldersBlobsAreReplicatedToANewNode) {
  SimNetwork sim(SimNetwork::default_params());
  for (int i = 0; i < 3; ++i) sim.add([](node::NodeSettings& s) { s.upload.min_replicas = 3; });
  ASSERT_TRUE(sim.run_until([&] { return sim.meshed(); }, 30s));
  auto rng = test::seeded_rng(3);
  const Bytes payload = test::random_bytes(rng, 20'000);
  auto r = sim.upload(0, payload, 30s);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->replicas, 3u);

  sim.crash(2);
  sim.add([](node::NodeSettings& s) { s.upload.min_replicas = 3; });
  ASSERT_TRUE(sim.run_until([&] { return sim.blobs_stored(3) == 1; }, 120s))
      << "the new node did not get the crashed holder's blob";
  auto read = sim.call([&] { return sim.node(1).service().read_blob(r->id); });
  ASSERT_TRUE(read) << read.error().to_string();
  EXPECT_EQ(*read, payload);
}

}  // namespace
}  // namespace cairn::sim
