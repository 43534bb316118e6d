// Storage networks of real processes on loopback: a `cairn devchain` and
// several `cairn node`s, driven through `cairn put` / `cairn get` /
// `cairn status` exactly as an operator would.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "cairn/erasure/params.hpp"
#include "cairn/shards/store.hpp"
#include "integration/process_network.hpp"
#include "support/process.hpp"
#include "support/test_util.hpp"

namespace cairn {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

using test::got;
using test::put;
using Network = test::ProcessNetwork;

TEST(NetworkProcess, ThreeNodesReplicateSealedCopiesAndReadsSurviveANodeLoss) {
  test::TempDir tmp;
  Network net(tmp);
  net.start(0, {"--min-replicas", "3"});
  net.start(1);
  net.start(2);
  ASSERT_TRUE(net.wait_meshed()) << "the three nodes did not mesh";

  auto rng = test::seeded_rng(51);
  std::vector<std::pair<std::string, Bytes>> files;
  for (size_t size : {size_t{0}, size_t{1}, size_t{131071}, size_t{131073}, size_t{3} << 20}) {
    const Bytes content = test::random_bytes(rng, size);
    const fs::path path = tmp / ("in-" + std::to_string(size));
    test::write_file(path, content);
    const std::string id = put(net.node(0).url(), path);
    ASSERT_FALSE(id.empty()) << "upload of " << size << " bytes to node A failed";
    files.emplace_back(id, content);
  }
  // Acknowledged with 3 replicas: node C reads every file.
  for (const auto& [id, content] : files)
    EXPECT_TRUE(got(net.node(2).url(), id, tmp / "out", content));
  const auto blobs_on_a = net.status(0)["blobs_stored"].get<uint64_t>();
  EXPECT_EQ(net.status(1)["blobs_stored"].get<uint64_t>(), blobs_on_a);
  EXPECT_EQ(net.status(2)["blobs_stored"].get<uint64_t>(), blobs_on_a);

  // A node that serves another shard holds nothing and reads over the network.
  net.start(3, {"--shards", "99"});
  EXPECT_TRUE(got(net.node(3).url(), files.back().first, tmp / "out", files.back().second));

  // Node B dies: everything is still read, through C and through D.
  ASSERT_TRUE(net.node(1).process->stop(SIGKILL, 5s));
  for (const auto& [id, content] : files) {
    EXPECT_TRUE(got(net.node(2).url(), id, tmp / "out", content));
    EXPECT_TRUE(got(net.node(3).url(), id, tmp / "out", content));
  }

  // On disk the three replicas of a blob differ byte for byte (each sealed
  // for its node).
  for (size_t i : {0u, 2u, 3u})
    EXPECT_EQ(net.node(i).process->stop(SIGTERM, 20s), std::optional<int>(0));
  const auto params = erasure::NetworkParams::defaults();
  std::vector<std::unique_ptr<shards::Store>> stores;
  for (size_t i = 0; i < 3; ++i) {
    auto s = shards::Store::open(net.node(i).dir / "store", params);
    ASSERT_TRUE(s) << s.error().to_string();
    stores.push_back(std::move(*s));
  }
  auto id = BlobId::from_hex(files.back().first);
  ASSERT_TRUE(id);
  auto rec = stores[0]->get_blob(*id);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->encoding, shards::FragmentEncoding::sealed);
  for (uint8_t f = 0; f < params.total_fragments(); ++f) {
    std::vector<Bytes> copies;
    for (auto& s : stores) {
      auto b = s->get_fragment(rec->index, FragmentIndex{f});
      ASSERT_TRUE(b) << b.error().to_string();
      copies.push_back(*b);
    }
    EXPECT_NE(copies[0], copies[1]);
    EXPECT_NE(copies[0], copies[2]);
    EXPECT_NE(copies[1], copies[2]);
  }
}

// Streams uploads to node A of a three-node network and stops A with
// `signal` once a third are acknowledged; A then restarts on the same data
// dir. Every acknowledged upload must read back through A and through C.
void upload_stream_then_stop(int signal) {
  test::TempDir tmp;
  Network net(tmp);
  net.start(0);
  net.start(1);
  net.start(2);
  ASSERT_TRUE(net.wait_meshed()) << "the three nodes did not mesh";

  auto rng = test::seeded_rng(52);
  std::vector<std::pair<fs::path, Bytes>> inputs;
  for (size_t i = 0; i < 60; ++i) {
    Bytes content = test::random_bytes(rng, 20000 + (i * 7919) % 300000);
    const fs::path path = tmp / ("up-" + std::to_string(i));
    test::write_file(path, content);
    inputs.emplace_back(path, std::move(content));
  }
  std::mutex mu;
  std::vector<std::pair<std::string, size_t>> acknowledged;
  std::atomic<bool> done{false};
  std::thread uploader([&] {
    for (size_t i = 0; i < inputs.size(); ++i) {
      const std::string id = put(net.node(0).url(), inputs[i].first);
      if (!id.empty()) {
        std::lock_guard lock(mu);
        acknowledged.emplace_back(id, i);
      }
    }
    done = true;
  });
  // Stop once a third of the stream is acknowledged (or the stream ends).
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(mu);
      if (acknowledged.size() >= inputs.size() / 3) break;
    }
    std::this_thread::sleep_for(20ms);
  }
  auto code = net.node(0).process->stop(signal, 25s);
  ASSERT_TRUE(code) << "node A did not exit within 25 s of signal " << signal;
  if (signal != SIGKILL) {
    // A graceful stop: exit 0 after finishing its writes.
    EXPECT_EQ(*code, 0) << net.node(0).process->stderr_text();
    EXPECT_NE(net.node(0).process->stdout_text().find("stopped"), std::string::npos);
  }
  uploader.join();
  std::vector<std::pair<std::string, size_t>> acked;
  {
    std::lock_guard lock(mu);
    acked = acknowledged;
  }
  ASSERT_GE(acked.size(), inputs.size() / 3);
  ASSERT_LT(acked.size(), inputs.size()) << "node A was stopped after the stream ended";
  std::cout << acked.size() << " of " << inputs.size() << " uploads acknowledged before signal "
            << signal << "\n";

  net.start(0);
  ASSERT_TRUE(net.wait_meshed()) << "node A did not rejoin";
  for (const auto& [id, i] : acked) {
    EXPECT_TRUE(got(net.node(0).url(), id, tmp / "out", inputs[i].second)) << "upload " << i;
    EXPECT_TRUE(got(net.node(2).url(), id, tmp / "out", inputs[i].second)) << "upload " << i;
  }
  // What A had accepted but not acknowledged resumes from its pending store
  // and completes.
  EXPECT_TRUE(
      test::wait_until([&] { return net.status(0).value("pending_uploads", 1) == 0; }, 30s));
}

TEST(NetworkProcess, AcknowledgedUploadsSurviveSigkillOfTheUploader) {
  upload_stream_then_stop(SIGKILL);
}

TEST(NetworkProcess, SigtermStopsTheUploaderCleanlyAndLosesNothingAcknowledged) {
  upload_stream_then_stop(SIGTERM);
}

}  // namespace
}  // namespace cairn
