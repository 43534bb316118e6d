#pragma once
// The storage node: the composition that ties the modules together
// (docs/design.md sections 5-8). A Node owns
//   - the identity key (DATA_DIR/identity.key),
//   - the Store (DATA_DIR/store) and the worker pool running blocking work,
//   - the Chain: an embedded DevChain (DATA_DIR/devchain) or a JSON-RPC
//     client of a `cairn devchain`, or one injected by a test,
//   - the io_context with its network thread, the GossipNode (transport,
//     Host, gossip subnets, discovery) and request/response,
//   - the upload, fetch and serving protocols (docs/node-protocol.md),
//   - the metrics registry and, when a factory is given, the HTTP API server.
//
// `cairn node`, in-process tests and the benches all run this class; there
// is no fake node.
//
// Threading: create/start/stop from one controlling thread (main, or a
// test). service() may be called from any thread but the node's own.

#include <functional>
#include <memory>
#include <string>

#include "cairn/core/asio_fwd.hpp"
#include "cairn/core/clock.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/shards/store_options.hpp"
#include "node/metrics.hpp"
#include "node/node_service.hpp"
#include "node/settings.hpp"

namespace cairn::contracts {
class Chain;
}
namespace cairn::p2p {
class Transport;
}

namespace cairn::node {

// The HTTP API server a Node runs (implemented beside the node by the API
// code; the Node only starts and stops it).
class ApiServer {
 public:
  virtual ~ApiServer() = default;
  // The bound "HOST:PORT" (useful with port 0).
  virtual std::string address() const = 0;
  // Stops accepting, finishes requests in flight, joins its threads.
  // Idempotent. After it returns no thread of the server calls the service.
  virtual void stop() = 0;
};

// Starts an API server over `service` with `settings`. `service` and
// `metrics` outlive the server (the Node stops the server first). Errors
// (address in use, no token beyond loopback) make Node::start fail.
using ApiServerFactory = std::function<Result<std::unique_ptr<ApiServer>>(
    NodeService& service, const ApiSettings& settings, metrics::Registry& metrics)>;

// What a caller may inject instead of the defaults.
struct NodeOptions {
  // Use this chain instead of the one settings.chain.backend names (several
  // in-process nodes sharing one DevChain). Must outlive the Node.
  std::shared_ptr<contracts::Chain> chain;
  // Starts the HTTP API when set and settings.api.listen is not empty.
  ApiServerFactory api;
  // Seed for p2p random choices; 0 derives one from the node id.
  uint64_t seed = 0;
  // Time and timers of every component; real time when null. Must outlive
  // the Node.
  Clock* clock = nullptr;
  // Runs the node on the caller's io_context instead of threads of its own
  // (deterministic simulation, tests/sim/): the network, the chain client
  // and the worker pool's jobs all run there, so whoever runs the io_context
  // runs the node, and with a p2p::ManualClock as `clock` time moves only
  // when the driver advances it. Needs `chain` (an embedded chain would
  // start a thread). The thread that calls open() is the driver: start()
  // and stop() run the io_context themselves while they wait on it, and
  // must be called from it, outside the io_context's handlers; blocking
  // NodeService calls come from other threads while the driver runs the
  // io_context. Must outlive the Node.
  asio::io_context* io = nullptr;
  // With `io`: called when stop() waits on the network (peers' goodbyes)
  // and nothing on the io_context is ready: a simulation advances its
  // manual clock a step. Empty: stop() waits in real time (up to 5 s).
  std::function<void()> idle;
  // Makes the p2p transport on the network executor. Default: TCP
  // (settings.listen is HOST:PORT). A simulation gives SimNetwork's.
  std::function<std::unique_ptr<p2p::Transport>(const asio::any_io_executor&)> transport;
  // Passed to shards::Store::open for DATA_DIR/store: the file system the
  // store's RocksDB files go through. Default: the operating system's.
  // Tests inject one that fails writes, syncs or reads
  // (tests/support/fault_fs.hpp); it must outlive the Node.
  shards::StoreOptions store;
};

class Node {
 public:
  // Opens everything that needs no network: data dir, identity, chain
  // (genesis -> network parameters), store (checked against them), pending
  // uploads. Errors: io_error (data dir, store locked by another process),
  // invalid_argument (bad settings, named), conflict (store or chain made
  // with other parameters), timeout (chain URL unreachable).
  static Result<std::unique_ptr<Node>> open(NodeSettings settings, NodeOptions options = {});

  // Stops if running.
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Listens, joins the subnets of the served shards, dials bootstrap and
  // registered peers, registers (RegisterNode) on the chain, resumes pending
  // uploads and starts the API server. Returns once listening and the
  // registration is submitted (not necessarily included). conflict when
  // already started; listen / API errors unchanged.
  Status start();

  // Graceful stop: stops the API server (no new requests), lets uploads in
  // flight finish their local writes for up to settings.stop_timeout (the
  // rest stays pending for the next start), leaves the network, drains the
  // worker pool, flushes and closes the store and the chain. Idempotent;
  // errors of the final flush/close are returned (the node is stopped
  // regardless).
  Status stop();

  NodeService& service() noexcept;
  metrics::Registry& metrics() noexcept;
  const NodeId& id() const noexcept;
  // True when open() generated DATA_DIR/identity.key (first start).
  bool identity_created() const noexcept;
  const NodeSettings& settings() const noexcept;
  // Bound addresses ("" before start / without API).
  std::string p2p_address() const;
  std::string api_address() const;
  // "host:port" of the metrics listener (metrics.listen); empty when off.
  std::string metrics_address() const;

 private:
  struct Impl;
  explicit Node(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::node
