#pragma once
// Storage networks of real processes on loopback for the integration tests:
// a `cairn devchain` and several `cairn node`s on free ports, driven through
// `cairn put` / `cairn get` / `cairn status` exactly as an operator would,
// plus the node's Prometheus /metrics over plain HTTP.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cairn/core/bytes.hpp"
#include "support/process.hpp"
#include "support/test_util.hpp"

namespace cairn::test {

inline constexpr auto kNodeStartTimeout = std::chrono::seconds(30);

inline std::string hostport(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

class ProcessNetwork {
 public:
  // Starts the dev chain in `tmp` with `chain_args` (`cairn devchain`
  // flags; default: blocks every 100 ms).
  explicit ProcessNetwork(TempDir& tmp,
                          std::vector<std::string> chain_args = {"--block-time-ms", "100"});

  struct Node {
    std::filesystem::path dir;
    uint16_t p2p = 0, api = 0;
    std::vector<std::string> extra;
    std::unique_ptr<Process> process;
    int runs = 0;
    std::string url() const { return "http://" + hostport(api); }
  };

  // Starts node `i` (a new one when i == size(), with `extra` flags kept for
  // its restarts), bootstrapping from node 0.
  Node& start(size_t i, std::vector<std::string> extra = {});
  Node& node(size_t i) { return nodes_.at(i); }
  size_t size() const { return nodes_.size(); }

  // `cairn status --json` of node i; null when it fails.
  nlohmann::json status(size_t i);
  // GET /metrics of node i; "" when it fails.
  std::string metrics(size_t i);

  // Every running node is registered and connected to every other one.
  bool meshed();
  bool wait_meshed(std::chrono::seconds limit = std::chrono::seconds(30));

 private:
  TempDir& tmp_;
  uint16_t chain_port_ = 0;
  std::unique_ptr<Process> chain_;
  std::vector<Node> nodes_;
};

// The value of an unlabelled series in a Prometheus exposition; -1 when absent.
double metric_value(const std::string& text, const std::string& name);

// Polls `pred` every 200 ms until it holds or `limit` passes.
bool wait_until(const std::function<bool()>& pred, std::chrono::seconds limit);

// `cairn put` of one file; the id on success, "" on failure.
std::string put(const std::string& url, const std::filesystem::path& file,
                std::vector<std::string> extra = {});

// `cairn get` into `out`; success when it exits 0 and the bytes equal `want`.
::testing::AssertionResult got(const std::string& url, const std::string& id,
                               const std::filesystem::path& out, const Bytes& want);

}  // namespace cairn::test
