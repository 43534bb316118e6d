// A whole network of real processes (docs/localnet.md): 9 nodes over 3
// shards behind one dev chain. Files go in through random nodes and come
// back, bit-exact, through other random nodes; one node per shard crashes
// and the data stays readable; the crashed nodes come back and catch up on
// what was uploaded while they were down; a node whose data dir is wiped
// resyncs its whole shard. Throughout, every shard's replica-count proofs
// (fetched with `cairn proof`, checked with `cairn verify` against the
// chain's sequencer key) count exactly its live nodes that hold their
// replica.

#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <set>
#include <thread>

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
constexpr uint64_t kEpochBlocks = 40;
constexpr uint64_t kDeadlineBlocks = 30;

localnet::Settings nine_over_three() {
  localnet::Settings s;
  s.nodes = 9;
  s.shards = 3;
  s.genesis.block_time_ms = 100;
  s.genesis.blobs_per_shard = kBlobsPerShard;
  // 4 s epochs with a 3 s response window: the walk parameters are tuned to
  // a 2 s window for one node per machine; here nine nodes on two cores all
  // walk their replicas at each epoch start, beside a resync or a scrub
  // pass, and a starved walk was measured at 2.1 s.
  s.genesis.epoch_blocks = kEpochBlocks;
  s.genesis.deadline_blocks = kDeadlineBlocks;
  s.ready_timeout = 120s;
  return s;
}

// Uploads every file through a random running node (not in `avoid`);
// records the node used.
void upload_all(E2eNetwork& net, std::vector<Uploaded>& files, std::vector<uint32_t>& via,
                std::mt19937_64& rng, const std::vector<uint32_t>& avoid = {}) {
  const auto live = net.live(avoid);
  ASSERT_FALSE(live.empty());
  via.resize(files.size());
  for (auto& v : via) v = live[std::uniform_int_distribution<size_t>(0, live.size() - 1)(rng)];
  std::map<uint32_t, std::string> urls;
  for (uint32_t i : live) urls[i] = net.url(i);
  test::parallel_for(files.size(), kClients, [&](size_t k) {
    files[k].id = test::put(urls[via[k]], files[k].path);
    EXPECT_FALSE(files[k].id.empty())
        << "upload of " << files[k].content.size() << " bytes through node" << via[k] << " failed";
  });
}

// Fetches every file through a random running node other than the one it
// was uploaded through; bit-exact.
void fetch_all(E2eNetwork& net, const std::vector<Uploaded>& files,
               const std::vector<uint32_t>& via, std::mt19937_64& rng, const fs::path& out_dir) {
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
    EXPECT_TRUE(test::got(urls[reader[k]], files[k].id, out_dir / ("out-" + std::to_string(k)),
                          files[k].content))
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

// Chain head as node i sees it (0 when it does not answer).
uint64_t head_of(E2eNetwork& net, uint32_t i) {
  const auto s = net.status(i);
  return s.is_null() ? 0 : s["chain"]["head"].get<uint64_t>();
}

// The first epoch that starts after block `head`.
uint64_t next_epoch(uint64_t head) { return head / kEpochBlocks + 1; }

struct Proven {
  bool ok = false;
  uint64_t replicas = 0;
  std::set<std::string> nodes;
  std::string error;
};

// `cairn proof --shard S --epoch E` from node i (retried until the epoch has
// settled), then `cairn verify --trust <sequencer> --json` on the file.
Proven prove(E2eNetwork& net, uint32_t i, uint32_t shard, uint64_t epoch) {
  Proven out;
  const fs::path file = net.tmp() / ("proof-s" + std::to_string(shard) + "-e" +
                                     std::to_string(epoch) + "-n" + std::to_string(i));
  const bool fetched = test::wait_until(
      [&] {
        auto r = net.cairn(i,
                           {"proof", "--shard", std::to_string(shard), "--epoch",
                            std::to_string(epoch), "-o", file.string()},
                           30s);
        out.error = r.err;
        return r.exit_code == 0;
      },
      std::chrono::seconds(30 + 2 * kEpochBlocks / 10));
  if (!fetched) return out;
  const auto v = test::run(
      {test::cairn_binary(), "verify", file.string(), "--trust", net.state().sequencer, "--json"},
      60s);
  const auto j = nlohmann::json::parse(v.out, nullptr, false);
  if (v.exit_code != 0 || j.is_discarded() || !j.value("valid", false)) {
    out.error = "cairn verify exit " + std::to_string(v.exit_code) + ": " + v.out + v.err;
    return out;
  }
  out.ok = true;
  out.replicas = j["replicas"].get<uint64_t>();
  for (const auto& n : j["nodes"]) out.nodes.insert(n.get<std::string>());
  return out;
}

// Node ids of the running nodes of `shard`.
std::set<std::string> live_ids(E2eNetwork& net, uint32_t shard) {
  std::set<std::string> ids;
  const auto st = net.state();
  for (uint32_t i : net.live()) {
    if (net.shard_of(i) == shard) ids.insert(st.nodes[i].id);
  }
  return ids;
}

// The proof of (shard, epoch) from node `from` counts exactly the running
// nodes of the shard; a node left out has its challenge status printed.
::testing::AssertionResult proves_live_nodes(E2eNetwork& net, uint32_t from, uint32_t shard,
                                             uint64_t epoch) {
  const auto expected = live_ids(net, shard);
  const Proven p = prove(net, from, shard, epoch);
  if (!p.ok)
    return ::testing::AssertionFailure()
           << "shard " << shard << " epoch " << epoch << ": " << p.error;
  if (p.nodes == expected) return ::testing::AssertionSuccess();
  std::string left_out;
  const auto st = net.state();
  for (uint32_t i : net.live()) {
    if (net.shard_of(i) == shard && p.nodes.count(st.nodes[i].id) == 0) {
      left_out +=
          "\nnode" + std::to_string(i) + " challenges: " + net.status(i)["challenges"].dump();
    }
  }
  return ::testing::AssertionFailure()
         << "shard " << shard << " epoch " << epoch << ": " << p.nodes.size()
         << " replicas counted, " << expected.size() << " nodes running" << left_out;
}

// Every shard's proof of `epoch` counts exactly its running nodes.
void expect_every_shard_proves_its_live_nodes(E2eNetwork& net, uint64_t epoch) {
  for (uint32_t shard = 0; shard < 3; ++shard) {
    uint32_t from = 0;
    for (uint32_t i : net.live()) {
      if (net.shard_of(i) == shard) from = i;
    }
    EXPECT_TRUE(proves_live_nodes(net, from, shard, epoch));
  }
}

TEST(E2e, NineNodesThreeShardsSurviveCrashesRestartsAndAWipedNode) {
  const auto started = std::chrono::steady_clock::now();
  auto phase = [&](const std::string& what) {
    std::cout << "["
              << std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                  started)
                     .count()
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
  std::cout << "blobs registered: " << blobs << " (" << kBlobsPerShard << " per shard)"
            << std::endl;
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
        << "node" << i << " does not hold all of shard " << shard << ": "
        << net.status(i)["sync"].dump();
  }
  fetch_all(net, files, via, rng, net.tmp() / "out1");
  phase("fetched every file through other nodes");

  // ---- three epochs of replica-count proofs, every node counted ----
  const uint64_t first_epoch = next_epoch(head_of(net, 1));
  for (uint64_t e = first_epoch; e < first_epoch + 3; ++e)
    expect_every_shard_proves_its_live_nodes(net, e);
  phase("epochs " + std::to_string(first_epoch) + ".." + std::to_string(first_epoch + 2) +
        ": every shard proved 3 replicas");

  // ---- one node per shard crashes: everything is still readable ----
  const std::vector<uint32_t> crashed{0, 4, 8};  // shards 0, 1, 2
  for (uint32_t i : crashed) ASSERT_TRUE(net.kill(i)) << "kill node" << i;
  for (uint32_t i : crashed) ASSERT_FALSE(net.running(i));
  const uint64_t crashed_epoch = next_epoch(head_of(net, 1));
  fetch_all(net, files, via, rng, net.tmp() / "out2");
  phase("fetched every file with node0, node4, node8 down");

  // Uploads go on meanwhile: the crashed nodes miss them.
  auto more = test::make_files(rng, net.tmp() / "in-more", 12, uint64_t{6} << 20);
  std::vector<uint32_t> more_via;
  upload_all(net, more, more_via, rng, crashed);
  const uint64_t blobs_before_restart = net.status(1)["chain"]["blob_count"].get<uint64_t>();
  ASSERT_GT(blobs_before_restart, blobs);
  // An epoch that started after the crashes counts the two live nodes of each shard.
  expect_every_shard_proves_its_live_nodes(net, crashed_epoch);
  phase("epoch " + std::to_string(crashed_epoch) + ": every shard proved its 2 live replicas");

  // ---- they come back and catch up (restart waits for synced + meshed) ----
  for (uint32_t i : crashed) {
    auto r = net.restart(i);
    ASSERT_TRUE(r) << "node" << i << ": " << r.error().to_string();
  }
  phase("crashed nodes restarted and synced");
  for (uint32_t i : crashed) {
    const auto s = net.status(i);
    const uint32_t shard = net.shard_of(i);
    EXPECT_EQ(shard_held(s, shard), shard_registered(s, shard))
        << "node" << i << ": " << s["sync"].dump();
    EXPECT_GE(s["chain"]["blob_count"].get<uint64_t>(), blobs_before_restart);
  }
  // The files uploaded while they were down, read through them.
  for (size_t k = 0; k < more.size(); ++k) {
    EXPECT_TRUE(test::got(net.url(crashed[k % crashed.size()]), more[k].id, net.tmp() / "out-more",
                          more[k].content));
  }

  // ---- a wiped node resyncs its shard ----
  // Shard 0 is full (512 blobs, ~64 MiB of payload): the wiped node fetches all of it.
  const uint32_t wiped = 3;
  const uint32_t shard = net.shard_of(wiped);
  const std::string old_id = net.state().nodes[wiped].id;
  ASSERT_TRUE(net.kill(wiped));
  net.wipe(wiped);
  // While it resyncs, its view of the chain head and of its shard, sampled.
  struct Sample {
    uint64_t head, held, registered;
  };
  std::vector<Sample> samples;
  std::atomic<bool> sampling{true};
  std::thread sampler([&] {
    while (sampling) {
      try {
        const auto st = net.status(wiped);
        if (!st.is_null()) {
          samples.push_back({st["chain"]["head"].get<uint64_t>(), shard_held(st, shard),
                             shard_registered(st, shard)});
        }
      } catch (const std::exception&) {
        // The state file between two writes, or a status without a head: skip the sample.
      }
      std::this_thread::sleep_for(100ms);
    }
  });
  // One sync fetch at a time for this node only (CAIRN_* variables override
  // its config file; only this restart inherits them): its resync then
  // spans several epochs, and the proofs of those must leave it out.
  setenv("CAIRN_STORAGE_SYNC_MAX_IN_FLIGHT", "1", 1);
  setenv("CAIRN_STORAGE_SYNC_MAX_IN_FLIGHT_PER_PEER", "1", 1);
  auto r = net.restart(wiped, 180s);
  unsetenv("CAIRN_STORAGE_SYNC_MAX_IN_FLIGHT");
  unsetenv("CAIRN_STORAGE_SYNC_MAX_IN_FLIGHT_PER_PEER");
  sampling = false;
  sampler.join();
  ASSERT_TRUE(r) << r.error().to_string();
  phase("wiped node" + std::to_string(wiped) + " resynced shard " + std::to_string(shard));
  const auto s = net.status(wiped);
  EXPECT_NE(s["id"].get<std::string>(), old_id) << "a wiped data dir holds a new identity";
  EXPECT_GT(shard_registered(s, shard), 0u);
  EXPECT_EQ(shard_held(s, shard), shard_registered(s, shard)) << s["sync"].dump();
  EXPECT_EQ(s["blobs_stored"].get<uint64_t>(), shard_registered(s, shard));
  EXPECT_EQ(shard_registered(s, shard), kBlobsPerShard);
  // Not counted in a proof until it holds its replica again: an epoch whose
  // response window closed while the node still lacked blobs of its shard
  // leaves it out; the first epoch after it held them all counts it.
  const std::string new_id = s["id"].get<std::string>();
  uint64_t synced_head = 0, unsynced_head = 0;
  for (const Sample& x : samples) {
    if (x.registered > 0 && x.held == x.registered && synced_head == 0) synced_head = x.head;
    if (x.held < x.registered) unsynced_head = std::max(unsynced_head, x.head);
  }
  if (synced_head == 0) synced_head = head_of(net, wiped);
  size_t unsynced_epochs = 0;
  for (uint64_t e = next_epoch(samples.empty() ? synced_head : samples.front().head);
       (e * kEpochBlocks) + kDeadlineBlocks <= unsynced_head; ++e) {
    const Proven p = prove(net, 6, shard, e);
    ASSERT_TRUE(p.ok) << "epoch " << e << ": " << p.error;
    EXPECT_EQ(p.nodes.count(new_id), 0u)
        << "epoch " << e << " counts node" << wiped << " before it held its replica";
    EXPECT_EQ(p.nodes.count(old_id), 0u) << "epoch " << e << " counts the wiped identity";
    ++unsynced_epochs;
  }
  const uint64_t synced_epoch = next_epoch(synced_head);
  ASSERT_EQ(live_ids(net, shard).count(new_id), 1u);
  // The first epochs after the resync may still find a node of the shard
  // starved by the catch-up work of the others; within three epochs the
  // proof counts every running node, the resynced one included.
  ::testing::AssertionResult counted = ::testing::AssertionFailure();
  uint64_t counted_epoch = synced_epoch;
  for (; counted_epoch < synced_epoch + 3 && !counted; ++counted_epoch) {
    counted = proves_live_nodes(net, 6, shard, counted_epoch);
  }
  EXPECT_TRUE(counted);
  phase("node" + std::to_string(wiped) + " left out of " + std::to_string(unsynced_epochs) +
        " epoch(s) while resyncing; epoch " + std::to_string(counted_epoch - 1) +
        " counts every running node");

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
    if (stat.exit_code != 0 ||
        nlohmann::json::parse(stat.out, nullptr, false).value("shard", 99u) != shard)
      continue;
    EXPECT_TRUE(test::got(net.url(wiped), files[k].id, net.tmp() / "out-wiped", files[k].content))
        << "file " << k;
    ++read;
  }
  EXPECT_GT(read, 0u) << "no sampled file has its manifest in shard " << shard;
  phase("done");
}

}  // namespace
}  // namespace cairn
