#pragma once
// An in-process storage network: one DevChain (its own RocksDB, fast
// blocks) shared by several real Nodes on 127.0.0.1 (each with its own data
// dir, store, sealing and TCP listener). The node tests and the put/get/sync
// benches run on it; nothing in it is simulated.
//
// Threading: one controlling thread (the test or bench); the nodes' own
// services may be called from any thread.

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <vector>

#include "cairn/contracts/devchain.hpp"
#include "cairn/erasure/params.hpp"
#include "cairn/p2p/io_thread.hpp"
#include "node/node.hpp"

namespace cairn::node {

class LocalNetwork {
 public:
  // Settings of one local node: listen on a free loopback port, no API,
  // fast discovery, registry refresh and gossip heartbeats.
  static NodeSettings node_settings(const std::filesystem::path& data_dir);

  // Opens a new dev chain with `params` under `dir` and starts producing
  // blocks. `dir` must outlive the network.
  static Result<std::unique_ptr<LocalNetwork>> open(const std::filesystem::path& dir,
                                                    const erasure::NetworkParams& params);
  ~LocalNetwork();  // stops every node, then the chain
  LocalNetwork(const LocalNetwork&) = delete;
  LocalNetwork& operator=(const LocalNetwork&) = delete;

  // Opens and starts one more node (data dir DIR/node<i>), bootstrapping
  // from the first live node. `tweak` may change its settings first, and
  // `inject` its options (after the shared chain and the seed are set: a
  // store file system that fails on demand, say).
  Result<Node*> add(const std::function<void(NodeSettings&)>& tweak = {},
                    const std::function<void(NodeOptions&)>& inject = {});
  // Stops node `i` (its slot stays, empty). No-op when already stopped.
  Status remove(size_t i);

  Node& node(size_t i) { return *nodes_.at(i); }
  bool live(size_t i) const { return i < nodes_.size() && nodes_[i] != nullptr; }
  size_t size() const { return nodes_.size(); }
  contracts::DevChain& chain() { return *chain_; }
  // Stops and resumes block production (a chain that stalls).
  void pause_blocks();
  void resume_blocks();
  std::filesystem::path dir(size_t i) const;

  // Every live node is registered on the chain and connected to every other
  // live node, and the chain registry lists them all for shard 0.
  bool meshed();
  // The same test for any set of live nodes on `chain` (a simulation's).
  static bool meshed(const std::vector<Node*>& live, contracts::Chain& chain);
  bool wait_meshed(std::chrono::milliseconds limit);

 private:
  LocalNetwork(std::filesystem::path dir, std::shared_ptr<contracts::DevChain> chain);

  std::filesystem::path dir_;
  p2p::IoThread producer_{"cairn-devchain"};  // outlives chain_
  std::shared_ptr<contracts::DevChain> chain_;
  std::vector<std::unique_ptr<Node>> nodes_;
};

}  // namespace cairn::node
