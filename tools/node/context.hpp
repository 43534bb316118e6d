#pragma once
// What the node's components share (private to tools/node): the network
// parameters and codec, the identity, the store and worker pool, the chain
// link, the network thread's io_context, the served-shard set and the cache
// of known blob holders. Owned by Node::Impl, which outlives every
// component.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cairn/contracts/chain_client.hpp"
#include "cairn/core/asio_fwd.hpp"
#include "cairn/core/clock.hpp"
#include "cairn/core/ed25519.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/core/worker_pool.hpp"
#include "cairn/erasure/codec.hpp"
#include "cairn/shards/seal_transform.hpp"
#include "cairn/shards/store.hpp"
#include "node/metrics.hpp"
#include "node/settings.hpp"

namespace cairn::p2p {
class GossipNode;
class RequestResponse;
}  // namespace cairn::p2p

namespace cairn::node {

// The shards this node serves. "auto" serves every shard; a list serves
// exactly those. Thread-safe.
class ServedShards {
 public:
  // An auto node registers (and subscribes to) this many shards beyond the
  // open ones, so that when a shard opens the registry already lists it:
  // the first blobs of a new shard are then acknowledged at min_replicas
  // like any other, instead of by the uploader alone while the others'
  // registrations catch up.
  static constexpr uint32_t kAutoLookahead = 8;

  explicit ServedShards(std::optional<std::vector<ShardId>> list);
  bool serves(ShardId shard) const;
  bool automatic() const noexcept { return !list_; }
  // The shards to register and subscribe to while `open` shards are open:
  // the list, or 0 .. open + kAutoLookahead in auto mode.
  std::vector<ShardId> current(uint32_t open) const;

 private:
  std::optional<std::vector<ShardId>> list_;  // sorted; nullopt = auto
};

// Nodes known to hold a verified replica of a blob, learned from stored
// notices and probes. Bounded: the oldest blobs are forgotten first (reads
// then fall back to the shard's registered nodes). Thread-safe.
class HolderCache {
 public:
  // 256 Ki blobs x up to kMaxHolders ids: at most ~130 MiB in the worst
  // case, ~20 MiB with three holders per blob.
  static constexpr size_t kMaxBlobs = size_t{1} << 18;
  static constexpr size_t kMaxHolders = 16;

  void add(const BlobId& blob, const NodeId& node);
  std::vector<NodeId> get(const BlobId& blob) const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<BlobId, std::vector<NodeId>> holders_;
  std::deque<BlobId> order_;
};

struct NodeContext {
  const NodeSettings& settings;
  erasure::NetworkParams params;
  std::shared_ptr<const erasure::Codec> codec;
  SigningKey identity;
  NodeId self;
  shards::Store& store;
  WorkerPool& pool;
  std::shared_ptr<const shards::SealingTransform> sealer;
  contracts::ChainClient& chain;
  metrics::Registry& metrics;
  asio::io_context& io;
  // Time and timers (timers for `io`'s executor): real time, or a
  // simulation's manual clock.
  Clock& clock;
  ServedShards& served;
  HolderCache& holders;
  // Network-thread objects, set once the network is up (use on the io thread only).
  p2p::GossipNode* gossip = nullptr;
  p2p::RequestResponse* rr = nullptr;
  // Set by the Node once the network thread has exited: nothing posted to
  // the io_context will run any more.
  std::atomic<bool> io_stopped{false};
  // The thread that runs `io` itself when the node has no network thread of
  // its own (NodeOptions::io); default-constructed otherwise.
  std::thread::id driver{};

  // Runs `fn` on the network thread. Never call from the network thread.
  void post(std::function<void()> fn) const;
  // Runs `fn` on the network thread and waits for it (callers that may
  // block: API threads, workers). Errc::cancelled when the network thread
  // has exited, or exits before running it (the node is stopping). On the
  // driver thread of a node that runs on its caller's io_context
  // (NodeOptions::io) `fn` runs at once: nothing else runs that io_context.
  Status run_on_io(const std::function<void()>& fn) const;
  // Queues `job` on the worker pool; busy / cancelled as WorkerPool::try_submit.
  Status submit(std::function<void()> job, std::function<void()> cancel = {}) const;
  // The same, waiting up to `timeout` for room in a full queue (callers that
  // may block: API threads). Errc::timeout when none frees.
  Status submit_wait(std::function<void()> job, std::function<void()> cancel, std::chrono::milliseconds timeout) const;
};

uint64_t unix_ms();

}  // namespace cairn::node
