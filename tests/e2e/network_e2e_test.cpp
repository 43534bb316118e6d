// A whole network of real processes (docs/localnet.md): 9 nodes over 3
// shards behind one dev chain. Files go in through random nodes and come
// back, bit-exact, through other random nodes; one node per shard crashes
// and the data stays readable; the crashed nodes come back and catch up on
// what was uploaded while they were down; a node whose data dir is wiped
// resyncs its whole shard.

#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <set>

#include "e2e/e2e_network.hpp"
#include "integration/process_network.hpp"

namespace cairn {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using test::E2eNetwork;
using test::Uploaded;

// 150 files of 0 B .. 8 MiB, ~110 MiB in all: ~900 data blobs plus one
// manifest per file. With 512 blobs per shard they fill shard 0, shard 1
// and part of shard 2 (the three shards the nodes serve), so uploads cross
// into shards that fill while the test runs.
constexpr size_t kFiles = 150;
constexpr uint64_t kTotalBytes = uint64_t{110} << 20;
constexpr uint64_t kBlobsPerShard = 512;
// Concurrent client commands: enough to keep several nodes busy at once
// without oversubscribing a 2-core machine running nine nodes.
constexpr size_t kClients = 3;

localnet::Settings nine_over_three() {
  localnet::Settings s;
  s.nodes = 9;
  s.shards = 3;
  s.genesis.block_time_ms = 100;
  s.genesis.blobs_per_shard = kBlobsPerShard;
  // 3 s epochs with a 1 s response window: storage challenges run as in
  // any network, without nine nodes walking their replicas every 0.8 s.
  s.genesis.epoch_blocks = 30;
  s.genesis.deadline_blocks = 10;
  s.ready_timeout = 120s;
  return s;
}

// Uploads every file through a random running node (not in `avoid`);
// records the node used.
void upload_all(E2eNetwork& net, std::vector<Uploaded>& files, std::vector<uint32_t>& via, std::mt19937_64& rng,
                const std::vector<uint32_t>& avoid = {}) {
  const auto live = net.live(avoid);
  ASSERT_FALSE(live.empty());
  via.resize(files.size());
  for (auto& v : via) v = live[std::uniform_int_distribution<size_t>(0, live.size() - 1)(rng)];
  std::map<uint32_t, std::string> urls;
  for (uint32_t i : live) urls[i] = net.url(i);
  test::parallel_for(files.size(), kClients, [&](size_t k) {
    files[k].id = test::put(urls[via[k]], files[k].path);
    EXPECT_FALSE(files[k].id.empty()) << "upload of " << files[k].content.size() << " bytes through node" << via[k]
                                      << " failed";
  });
}

// Fetches every file through a random running node other than the one it
// was uploaded through; bit-exact.
void fetch_all(E2eNetwork& net, const std::vector<Uploaded>& files, const std::vector<uint32_t>& via,
               std::mt19937_64& rng, const fs::path& out_dir) {
  const auto live = net.live();
  ASSERT_GE(live.size(), 2u);
  std::map<uint32_t, std::string> urls;
  for (uint32_t i : live) urls[i] = net.url(i);
  std::vector<uint32_t> reader(files.size());
  for (size_t k = 0; k < files.size(); ++k) {
    do {
      reader[k] = live[std::uniform_int_distribution<size_t>(0, live.size() - 1)(rng)];
    } while (reader[k] == via[k]);
  }
  fs::create_directories(out_dir);
  test::parallel_for(files.size(), kClients, [&](size_t k) {
    if (files[k].id.empty()) return;
    EXPECT_TRUE(test::got(urls[reader[k]], files[k].id, out_dir / ("out-" + std::to_string(k)), files[k].content))
        << "file " << k << " (" << files[k].content.size() << " bytes) through node" << reader[k];
  });
}

uint64_t shard_registered(const nlohmann::json& status, uint32_t shard) {
  for (const auto& y : status.value("sync", nlohmann::json::array())) {
    if (y.value("shard", 0u) == shard) return y.value("registered", uint64_t{0});
  }
  return 0;
}

uint64_t shard_held(const nlohmann::json& status, uint32_t shard) {
  for (const auto& y : status.value("sync", nlohmann::json::array())) {
    if (y.value("shard", 0u) == shard) return y.value("held", uint64_t{0});
  }
  return 0;
}

TEST(E2e, NineNodesThreeShardsSurviveCrashesRestartsAndAWipedNode) {
  const auto started = std::chrono::steady_clock::now();
  auto phase = [&](const std::string& what) {
    std::cout << "["
              << std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started).count()
              << " s] " << what << std::endl;
  };
  E2eNetwork net(nine_over_three());
  auto up = net.start();
  ASSERT_TRUE(up) << up.error().to_string();
  phase("9 nodes over 3 shards ready");
  auto rng = test::seeded_rng(71);

  // ---- upload through random nodes, read back through others ----
  auto files = test::make_files(rng, net.tmp() / "in", kFiles, kTotalBytes);
  std::vector<uint32_t> via;
  upload_all(net, files, via, rng);
  phase("uploaded " + std::to_string(files.size()) + " files");
  const auto st0 = net.status(0);
  const uint64_t blobs = st0["chain"]["blob_count"].get<uint64_t>();
  std::cout << "blobs registered: " << blobs << " (" << kBlobsPerShard << " per shard)" << std::endl;
  ASSERT_GT(blobs, kBlobsPerShard) << "the files should fill more than one shard";
  ASSERT_LE(blobs, 3 * kBlobsPerShard) << "only shards 0-2 have nodes";
  // Every node holds every blob of its own shard.
  for (uint32_t i = 0; i < net.size(); ++i) {
    const auto s = net.status(i);
    const uint32_t shard = net.shard_of(i);
    EXPECT_GT(shard_registered(s, shard), 0u) << "node" << i;
    EXPECT_TRUE(test::wait_until(
        [&] {
          const auto now = net.status(i);
          return shard_held(now, shard) == shard_registered(now, shard);
        },
        60s))
        << "node" << i << " does not hold all of shard " << shard << ": " << net.status(i)["sync"].dump();
  }
  fetch_all(net, files, via, rng, net.tmp() / "out1");
  phase("fetched every file through other nodes");

  // ---- one node per shard crashes: everything is still readable ----
  const std::vector<uint32_t> crashed{0, 4, 8};  // shards 0, 1, 2
  for (uint32_t i : crashed) ASSERT_TRUE(net.kill(i)) << "kill node" << i;
  for (uint32_t i : crashed) ASSERT_FALSE(net.running(i));
  fetch_all(net, files, via, rng, net.tmp() / "out2");
  phase("fetched every file with node0, node4, node8 down");

  // Uploads go on meanwhile: the crashed nodes miss them.
  auto more = test::make_files(rng, net.tmp() / "in-more", 12, uint64_t{6} << 20);
  std::vector<uint32_t> more_via;
  upload_all(net, more, more_via, rng, crashed);
  const uint64_t blobs_before_restart = net.status(1)["chain"]["blob_count"].get<uint64_t>();
  ASSERT_GT(blobs_before_restart, blobs);

  // ---- they come back and catch up (restart waits for synced + meshed) ----
  for (uint32_t i : crashed) {
    auto r = net.restart(i);
    ASSERT_TRUE(r) << "node" << i << ": " << r.error().to_string();
  }
  phase("crashed nodes restarted and synced");
  for (uint32_t i : crashed) {
    const auto s = net.status(i);
    const uint32_t shard = net.shard_of(i);
    EXPECT_EQ(shard_held(s, shard), shard_registered(s, shard)) << "node" << i << ": " << s["sync"].dump();
    EXPECT_GE(s["chain"]["blob_count"].get<uint64_t>(), blobs_before_restart);
  }
  // The files uploaded while they were down, read through them.
  for (size_t k = 0; k < more.size(); ++k) {
    EXPECT_TRUE(test::got(net.url(crashed[k % crashed.size()]), more[k].id, net.tmp() / "out-more", more[k].content));
  }

  // ---- a wiped node resyncs its shard ----
  // Shard 0 is full (512 blobs, ~64 MiB of payload): the wiped node fetches all of it.
  const uint32_t wiped = 3;
  const uint32_t shard = net.shard_of(wiped);
  const std::string old_id = net.state().nodes[wiped].id;
  ASSERT_TRUE(net.kill(wiped));
  net.wipe(wiped);
  auto r = net.restart(wiped, 180s);
  ASSERT_TRUE(r) << r.error().to_string();
  phase("wiped node" + std::to_string(wiped) + " resynced shard " + std::to_string(shard));
  const auto s = net.status(wiped);
  EXPECT_NE(s["id"].get<std::string>(), old_id) << "a wiped data dir holds a new identity";
  EXPECT_GT(shard_registered(s, shard), 0u);
  EXPECT_EQ(shard_held(s, shard), shard_registered(s, shard)) << s["sync"].dump();
  EXPECT_EQ(s["blobs_stored"].get<uint64_t>(), shard_registered(s, shard));
  EXPECT_EQ(shard_registered(s, shard), kBlobsPerShard);
  // Its copies are its own: with the other nodes of its shard down, every
  // file with a blob in that shard still reads through it.
  std::vector<uint32_t> others;
  for (uint32_t i = 0; i < net.size(); ++i) {
    if (i != wiped && net.shard_of(i) == shard) others.push_back(i);
  }
  for (uint32_t i : others) ASSERT_TRUE(net.kill(i));
  size_t read = 0;
  for (size_t k = 0; k < files.size() && read < 10; k += 7) {
    const auto stat = net.cairn(wiped, {"stat", files[k].id, "--json"});
    if (stat.exit_code != 0 || nlohmann::json::parse(stat.out, nullptr, false).value("shard", 99u) != shard) continue;
    EXPECT_TRUE(test::got(net.url(wiped), files[k].id, net.tmp() / "out-wiped", files[k].content)) << "file " << k;
    ++read;
  }
  EXPECT_GT(read, 0u) << "no sampled file has its manifest in shard " << shard;
  phase("done");
}

}  // namespace
}  // namespace cairn
