// Storage networks of real processes on loopback: a `cairn devchain` and
// several `cairn node`s, driven through `cairn put` / `cairn get` /
// `cairn status` exactly as an operator would.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <iostream>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "cairn/erasure/params.hpp"
#include "cairn/shards/store.hpp"
#include "support/process.hpp"
#include "support/test_util.hpp"

namespace cairn {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr auto kStartTimeout = 30s;

std::string hostport(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

class Network {
 public:
  explicit Network(test::TempDir& tmp) : tmp_(tmp) {
    chain_port_ = test::free_port();
    chain_ = std::make_unique<test::Process>(
        std::vector<std::string>{test::cairn_binary(), "devchain", "--listen", hostport(chain_port_), "--data-dir",
                                 (tmp_ / "chain").string(), "--block-time-ms", "100"},
        tmp_ / "chain-logs");
    EXPECT_TRUE(chain_->wait_for_output("running", kStartTimeout)) << chain_->stderr_text();
  }

  struct Node {
    fs::path dir;
    uint16_t p2p = 0, api = 0;
    std::vector<std::string> extra;
    std::unique_ptr<test::Process> process;
    int runs = 0;
    std::string url() const { return "http://" + hostport(api); }
  };

  // Starts node `i` (a new one when i == size()), bootstrapping from node 0.
  Node& start(size_t i, std::vector<std::string> extra = {}) {
    if (i == nodes_.size()) {
      Node n;
      n.dir = tmp_ / ("node" + std::to_string(i));
      n.p2p = test::free_port();
      n.api = test::free_port();
      n.extra = std::move(extra);
      nodes_.push_back(std::move(n));
    }
    Node& n = nodes_[i];
    std::vector<std::string> argv{test::cairn_binary(), "node", "--data-dir", n.dir.string(), "--listen",
                                  hostport(n.p2p), "--api", hostport(n.api), "--chain",
                                  "http://" + hostport(chain_port_), "--set", "discovery.chain_refresh_ms=300",
                                  "--set", "chain.registry_refresh_ms=300", "--set", "gossip.heartbeat_interval_ms=200",
                                  "--set", "fetch.hedge_after_ms=500"};
    if (i > 0) argv.insert(argv.end(), {"--bootstrap", hostport(nodes_[0].p2p)});
    argv.insert(argv.end(), n.extra.begin(), n.extra.end());
    n.process = std::make_unique<test::Process>(argv, n.dir.string() + "-logs-" + std::to_string(n.runs++));
    EXPECT_TRUE(n.process->wait_for_output("running", kStartTimeout))
        << "node " << i << " stdout:\n" << n.process->stdout_text() << "\nstderr:\n" << n.process->stderr_text();
    return n;
  }

  Node& node(size_t i) { return nodes_.at(i); }

  nlohmann::json status(size_t i) {
    auto r = test::run({test::cairn_binary(), "status", "--node", node(i).url(), "--json"}, 10s);
    if (r.exit_code != 0) return {};
    return nlohmann::json::parse(r.out, nullptr, false);
  }

  // Every running node is registered and connected to every other running node.
  bool meshed() {
    size_t live = 0;
    for (auto& n : nodes_) live += n.process && n.process->running() ? 1u : 0u;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (!nodes_[i].process || !nodes_[i].process->running()) continue;
      auto s = status(i);
      if (!s.is_object() || !s["chain"]["registered"].get<bool>() || s["peers"].size() + 1 < live) return false;
    }
    return true;
  }

  bool wait_meshed(std::chrono::seconds limit = 30s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (meshed()) return true;
      std::this_thread::sleep_for(200ms);
    }
    return false;
  }

 private:
  test::TempDir& tmp_;
  uint16_t chain_port_ = 0;
  std::unique_ptr<test::Process> chain_;
  std::vector<Node> nodes_;
};

// `cairn put` of one file; the id on success, "" on failure.
std::string put(const std::string& url, const fs::path& file, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{test::cairn_binary(), "put", file.string(), "--node", url, "--json"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto r = test::run(argv, 60s);
  if (r.exit_code != 0) return {};
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  return j.is_object() && j.contains("id") ? j["id"].get<std::string>() : std::string();
}

// `cairn get` into `out`; true when it exits 0 and the bytes equal `want`.
::testing::AssertionResult got(const std::string& url, const std::string& id, const fs::path& out, const Bytes& want) {
  std::error_code ec;
  fs::remove(out, ec);
  auto r = test::run({test::cairn_binary(), "get", id, "-o", out.string(), "--node", url, "--quiet"}, 60s);
  if (r.exit_code != 0) {
    return ::testing::AssertionFailure() << "cairn get " << id << " via " << url << " exited " << r.exit_code << ": "
                                         << r.err;
  }
  if (test::read_file(out) != want) return ::testing::AssertionFailure() << "cairn get " << id << ": bytes differ";
  return ::testing::AssertionSuccess();
}

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
  for (const auto& [id, content] : files) EXPECT_TRUE(got(net.node(2).url(), id, tmp / "out", content));
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
  for (size_t i : {0u, 2u, 3u}) EXPECT_EQ(net.node(i).process->stop(SIGTERM, 20s), std::optional<int>(0));
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

TEST(NetworkProcess, AcknowledgedUploadsSurviveSigkillOfTheUploader) {
  test::TempDir tmp;
  Network net(tmp);
  net.start(0);
  net.start(1);
  net.start(2);
  ASSERT_TRUE(net.wait_meshed()) << "the three nodes did not mesh";

  // A stream of uploads to node A; A is killed with SIGKILL in the middle.
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
  // Kill once a third of the stream is acknowledged (or the stream ends).
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(mu);
      if (acknowledged.size() >= inputs.size() / 3) break;
    }
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(net.node(0).process->stop(SIGKILL, 5s));
  uploader.join();
  std::vector<std::pair<std::string, size_t>> acked;
  {
    std::lock_guard lock(mu);
    acked = acknowledged;
  }
  ASSERT_GE(acked.size(), inputs.size() / 3);
  ASSERT_LT(acked.size(), inputs.size()) << "node A was killed after the stream ended";
  std::cout << acked.size() << " of " << inputs.size() << " uploads acknowledged before SIGKILL\n";

  // A restarts on the same data dir and resumes; every acknowledged upload
  // reads back through A and through C.
  net.start(0);
  ASSERT_TRUE(net.wait_meshed()) << "node A did not rejoin";
  for (const auto& [id, i] : acked) {
    EXPECT_TRUE(got(net.node(0).url(), id, tmp / "out", inputs[i].second)) << "upload " << i;
    EXPECT_TRUE(got(net.node(2).url(), id, tmp / "out", inputs[i].second)) << "upload " << i;
  }
}

}  // namespace
}  // namespace cairn
