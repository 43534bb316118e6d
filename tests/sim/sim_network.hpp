#pragma once
// Whole cairn nodes in deterministic simulation: N real Nodes (real RocksDB
// stores on disk, the real engines) and a DevChain on one io_context, over
// p2p::SimNetwork, with a p2p::ManualClock. Nothing runs unless the driver
// (the test's thread) runs it: blocks come at exact virtual times, links
// have exact latencies, and run_until() reports the virtual instant a
// condition first held.
//
// Blocking NodeService calls that only wait on the node's network (status,
// reads) may be made from the driver thread: the node runs them inline.
// Calls that wait for time to pass (put_* wait for confirmations) go through
// spawn(): they run on a thread of their own while the driver advances time.
//
// Every RNG is seeded from the test seed (tests/support/test_util.hpp,
// printed once per run; CAIRN_TEST_SEED overrides it).

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cairn/contracts/devchain.hpp"
#include "cairn/p2p/clock.hpp"
#include "cairn/p2p/sim_transport.hpp"
#include "node/node.hpp"
#include "support/test_util.hpp"

namespace cairn::sim {

class SimNetwork {
 public:
  // The localnet parameters with 100 ms blocks.
  static erasure::NetworkParams default_params();

  // A new dev chain with `params`, producing blocks on the manual clock.
  explicit SimNetwork(const erasure::NetworkParams& params, uint64_t seed = test::test_seed());
  ~SimNetwork();  // stops every node, then the chain
  SimNetwork(const SimNetwork&) = delete;
  SimNetwork& operator=(const SimNetwork&) = delete;

  // Opens and starts node i = size() (name "n<i>", data dir under the test's
  // temporary directory), bootstrapping from the first live node.
  node::Node& add(const std::function<void(node::NodeSettings&)>& tweak = {});
  // Stops node i gracefully (its data dir stays); restart() opens it again
  // with the same identity, store and settings.
  void stop(size_t i);
  // The process dies: the network sees its connections reset, then the
  // node is torn down (stop without goodbyes reaching anyone).
  void crash(size_t i);
  node::Node& restart(size_t i);

  node::Node& node(size_t i) { return *nodes_.at(i).node; }
  // Node i's settings (its data dir among them), also while it is stopped.
  const node::NodeSettings& settings(size_t i) const { return nodes_.at(i).settings; }
  bool live(size_t i) const { return i < nodes_.size() && nodes_[i].node != nullptr; }
  size_t size() const { return nodes_.size(); }
  // The network name of node i now: "n<i>", "n<i>r<k>" after its k-th
  // restart from a crash (a crashed name never comes back).
  std::string name(size_t i) const;

  contracts::DevChain& chain() { return *chain_; }
  p2p::ManualClock& clock() { return clock_; }
  p2p::SimNetwork& net() { return net_; }
  asio::io_context& io() { return io_; }
  uint64_t seed() const { return seed_; }

  // Virtual time since the start, in milliseconds.
  int64_t now_ms() const;
  // Advances virtual time until `done()` holds (checked after every
  // quiescent step) or `limit` of virtual time passed.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit);
  void advance(std::chrono::milliseconds d) { clock_.advance(d); }

  // Runs `fn` on a thread of its own; the driver keeps running the network
  // (run_until with `ready()` of the future, say).
  template <class F>
  auto spawn(F fn) -> std::future<decltype(fn())> {
    return std::async(std::launch::async, std::move(fn));
  }
  // Runs `fn` on another thread with virtual time frozen, polling the
  // network until it returns (blocking calls that wait on the network only).
  template <class F>
  auto call(F fn) -> decltype(fn()) {
    auto f = spawn(std::move(fn));
    while (f.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
      clock_.settle();
      std::this_thread::yield();
    }
    return f.get();
  }

  // Uploads `payload` as one blob through node i, driving the network until
  // the upload returns (at most `limit` of virtual time: Errc::timeout).
  Result<node::PutBlobResult> upload(size_t i, ByteSpan payload, std::chrono::milliseconds limit);

  // Polls the network with virtual time frozen until `done()` holds (a
  // spawned call reached the node, say); false after `real_limit` of
  // real time.
  bool settle_until(const std::function<bool()>& done,
                    std::chrono::milliseconds real_limit = std::chrono::seconds(30));

  // Blobs node i holds (NodeStatus::blobs_stored).
  uint64_t blobs_stored(size_t i);

  // Every live node is registered, connected to every other live node, and
  // the chain lists them all for shard 0.
  bool meshed();

  // Counter `name` of node i (0 when the node never touched it).
  uint64_t counter(size_t i, const std::string& name);

 private:
  struct Slot {
    node::NodeSettings settings;
    std::unique_ptr<node::Node> node;
    uint32_t crashes = 0;
  };
  node::Node& open(size_t i);

  uint64_t seed_;
  test::TempDir dir_;
  asio::io_context io_;
  p2p::ManualClock clock_;
  p2p::SimNetwork net_;
  std::shared_ptr<contracts::TimeSource> time_;  // block timestamps: the manual clock
  std::shared_ptr<contracts::DevChain> chain_;
  std::vector<Slot> nodes_;
};

}  // namespace cairn::sim
