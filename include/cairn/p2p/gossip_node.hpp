#pragma once
// GossipNode: the p2p composition a storage node runs. It owns the
// transport, the Host (secure sessions, peer manager), the gossip router and
// discovery, all on one executor, and wires them together:
//
//   Host frames (gossip_rpc)    -> GossipRouter -> Host::send / local handler
//   Host frames (peer_exchange) -> Discovery    -> Host::connect / send
//   Host connect / disconnect   -> both
//   heartbeat timer (Clock)     -> GossipRouter::heartbeat, Discovery::tick
//   router graylist             -> Host::adjust_score + disconnect (bans
//                                  follow from the Host's ban threshold)
//
// The same class runs over real TCP (make_tcp_transport + real_clock()) and
// over the in-memory SimNetwork with a ManualClock, so simulations exercise
// the production wiring.
//
// Threading: every method must be called on the executor; every callback
// (handler, validator) runs on it.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cairn/core/asio_fwd.hpp"
#include "cairn/core/ed25519.hpp"
#include "cairn/core/result.hpp"
#include "cairn/p2p/clock.hpp"
#include "cairn/p2p/discovery.hpp"
#include "cairn/p2p/gossip.hpp"
#include "cairn/p2p/settings.hpp"
#include "cairn/p2p/transport.hpp"

namespace cairn::p2p {

class Host;

struct GossipNodeSettings {
  P2pSettings p2p;
  GossipSettings gossip;
  DiscoverySettings discovery;
  // Where to accept peers ("127.0.0.1:0" picks a free port; a sim transport
  // takes "<name>:0"). Empty: do not listen (a client that only dials).
  std::string listen_address;
  // Shards this node serves: it subscribes to their topics and discovery
  // keeps peers for them.
  std::vector<ShardId> shards;
  // Added to the Host score of a peer the router graylists, before it is
  // disconnected. Default 50: half the default ban threshold, so a peer
  // graylisted twice within the score half-life is banned.
  double graylist_penalty = 50;
  // Added to the Host score for a malformed peer-exchange frame. Default 10.
  double malformed_px_penalty = 10;
};

// Checks every nested settings struct.
Status validate(const GossipNodeSettings& s);

struct GossipNodeStats {
  uint64_t heartbeats = 0;
  uint64_t frames_sent = 0;
  uint64_t send_dropped = 0;  // Host::send refused (queue full or peer gone): gossip is lossy,
                              // IHAVE/IWANT repairs
  uint64_t handler_calls = 0;
};

class GossipNode {
 public:
  using Handler = std::function<void(const GossipDeliver&)>;

  // `clock` and `chain` (may be null) must outlive the node. `seed` drives
  // every random choice (router, discovery, host, heartbeat phase).
  GossipNode(const asio::any_io_executor& executor, std::unique_ptr<Transport> transport,
             Clock& clock, const SigningKey& identity, GossipNodeSettings settings, uint64_t seed,
             EndpointSource* chain = nullptr);
  // Stops (see stop()) if it was not stopped.
  ~GossipNode();
  GossipNode(const GossipNode&) = delete;
  GossipNode& operator=(const GossipNode&) = delete;

  // Validates the settings, listens (when configured), subscribes the served
  // shards, arms the heartbeat. Returns the bound address ("" when not
  // listening). invalid_argument for bad settings; errors from listen() are
  // returned unchanged; conflict when already started.
  Result<std::string> start();

  // Stops the heartbeat and shuts the Host down (goodbye to every peer). No
  // handler runs after it returns; `done` runs on the executor once every
  // session is released.
  void stop(std::function<void()> done = {});

  // Called for every validated message of a subscribed shard.
  void set_handler(Handler handler);
  // Runs before anything is delivered or forwarded (see GossipValidator).
  void set_validator(GossipValidator validator);
  void set_validator(GossipDecodingValidator validator);

  // See GossipRouter::publish.
  Result<MessageId> publish(ShardId shard, Bytes data);
  // Starts or stops serving a shard's topic (discovery follows).
  void subscribe(ShardId shard);
  void unsubscribe(ShardId shard);

  const NodeId& id() const noexcept;
  // The address peers can dial ("" before start() or when not listening).
  const std::string& address() const noexcept;
  Host& host() noexcept;
  const GossipRouter& router() const noexcept;
  const Discovery& discovery() const noexcept;
  const GossipNodeStats& stats() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace cairn::p2p
