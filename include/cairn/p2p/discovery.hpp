#pragma once
// Discovery: finds peers for the shards a node serves and keeps at least
// D_low of them connected in every served shard. Three sources, in order of
// trust: endpoints registered on the chain (consensus-backed, pluggable
// EndpointSource), peer exchange (PX) with connected peers, and bootstrap
// addresses (used when nothing else is known).
//
// Written sans-IO like the gossip router: the owner feeds connection events,
// PX frames, dial results and ticks at a given time, and drains outputs
// (dial an address, send a PX frame, drop a connection that serves none of
// our shards). Not thread-safe; one strand.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "cairn/core/bytes.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/p2p/clock.hpp"

namespace cairn::p2p {

// What is known about a node: where to dial it and which shards it serves.
struct PeerRecord {
  NodeId id;
  std::string address;          // "host:port"; 1..kMaxPxAddressBytes bytes
  std::vector<ShardId> shards;  // sorted, unique, at most kMaxPxShards
  bool operator==(const PeerRecord&) const = default;
};

// ---- peer exchange wire format (docs/wire-protocol.md, "Peer exchange") ----
// Wire format: do not change version 1; bump kPeerExchangeVersion.

inline constexpr uint8_t kPeerExchangeVersion = 1;
inline constexpr size_t kMaxPxRecords = 64;        // records per frame
inline constexpr size_t kMaxPxAddressBytes = 255;  // one address
inline constexpr size_t kMaxPxShards = 256;        // shards per record (and for the sender)

// Flag bits. Unknown bits are refused (a later version bumps the version).
inline constexpr uint8_t kPxFlagRequest = 0x01;  // the sender asks for an answer

struct PeerExchange {
  // The sender asks to be answered with records for `shards`.
  bool request = false;
  // The sender's own dialable address (may be empty: not dialable) and the
  // shards it serves.
  std::string address;
  std::vector<ShardId> shards;
  // Other nodes the sender knows.
  std::vector<PeerRecord> records;
  bool operator==(const PeerExchange&) const = default;
};

// Errc::invalid_argument when a field is over its wire limit.
Result<Bytes> encode_peer_exchange(const PeerExchange& px);
// Never throws. Errc::unsupported for another version; invalid_argument for
// anything malformed (truncated, over a limit, empty or oversize address,
// unsorted or repeated shards, unknown flags, trailing bytes).
Result<PeerExchange> decode_peer_exchange(ByteSpan data) noexcept;

// ---- the chain's node registry ----

// Endpoints registered on the chain (RegisterNode{node_id, endpoint,
// shards}). Implemented by the chain client; StaticEndpointSource serves
// tests and fixed deployments.
class EndpointSource {
 public:
  virtual ~EndpointSource() = default;
  // Nodes registered for `shard`. Called on the network strand: it must
  // answer from memory (the chain client keeps the registry cached and
  // refreshes it elsewhere), never block on I/O. Errc::not_found when the
  // shard has no registration; other errors are logged and retried at the
  // next refresh.
  virtual Result<std::vector<PeerRecord>> endpoints_for_shard(ShardId shard) = 0;
};

// An in-memory registry: exactly the records it was given.
class StaticEndpointSource final : public EndpointSource {
 public:
  StaticEndpointSource() = default;
  explicit StaticEndpointSource(std::vector<PeerRecord> records) : records_(std::move(records)) {}
  // Adds or replaces the record with the same node id.
  void put(PeerRecord record);
  void remove(const NodeId& id);
  Result<std::vector<PeerRecord>> endpoints_for_shard(ShardId shard) override;

 private:
  std::vector<PeerRecord> records_;
};

// ---- discovery ----

struct DiscoverySettings {
  // Addresses dialled (without an expected node id) when no other source
  // yields a candidate for a served shard. "host:port".
  std::vector<std::string> bootstrap;
  // Connected peers wanted per served shard. Below `min_peers_per_shard`
  // (D_low) the node dials at every tick; below `target_peers_per_shard` it
  // keeps dialing as candidates allow. Default 8 / 4: a mesh of D = 6 with
  // two spares, so one departure does not drop the mesh under D_low.
  size_t target_peers_per_shard = 8;
  size_t min_peers_per_shard = 4;
  // Dials outstanding at once. Default 8: fills a shard quickly without a
  // burst of handshakes.
  size_t max_dials_in_flight = 8;
  // Address book size (records not connected are evicted beyond it: PX
  // records with the most failures first, chain records last). Default 1024.
  size_t max_known_peers = 1024;
  // Records sent in one PX answer. Default 32.
  size_t px_records = 32;
  // A connected peer is answered at most once per this interval (its first
  // request on a connection is always answered). Default 10 s: bounds the
  // work a peer can make us do.
  std::chrono::milliseconds px_answer_interval{std::chrono::seconds(10)};
  // When a served shard is below target and no candidate is known, ask up to
  // px_ask_peers connected peers for more, at most once per px_ask_interval.
  size_t px_ask_peers = 3;
  std::chrono::milliseconds px_ask_interval{std::chrono::seconds(5)};
  // A failed dial waits min(dial_backoff_max, dial_backoff_base *
  // 2^(failures-1)); PX records are forgotten after px_max_failures
  // consecutive failures (chain records are kept: the chain vouches for
  // them). Defaults 1 s, 2 min, 4.
  std::chrono::milliseconds dial_backoff_base{std::chrono::seconds(1)};
  std::chrono::milliseconds dial_backoff_max{std::chrono::minutes(2)};
  size_t px_max_failures = 4;
  // Bootstrap addresses are dialled when the node has no peer or a served
  // shard is below min_peers_per_shard with no candidate, at most once per
  // bootstrap_retry per address (default 5 s); and when a shard merely stays
  // below target with no candidate, once per bootstrap_refresh (default
  // 30 s). The latter is what rejoins the two sides of a healed partition
  // when both sides forgot each other's records.
  std::chrono::milliseconds bootstrap_retry{std::chrono::seconds(5)};
  std::chrono::milliseconds bootstrap_refresh{std::chrono::seconds(30)};
  // How often the EndpointSource is asked for every served shard.
  // Default 30 s; the first tick always asks.
  std::chrono::milliseconds chain_refresh{std::chrono::seconds(30)};
  // A peer we dialled that serves none of our shards is disconnected after
  // this long (time for the PX exchange), when we serve at least one shard.
  // Default 5 s. Zero keeps such connections.
  std::chrono::milliseconds unrelated_grace{std::chrono::seconds(5)};
};

Status validate(const DiscoverySettings& s);

// ---- outputs ----

// Dial `address`; when `expected` is set the handshake must reach that id.
// The owner reports the outcome with dial_result().
struct DiscoveryDial {
  std::string address;
  std::optional<NodeId> expected;
};
// Send this PX frame to a connected peer.
struct DiscoverySend {
  NodeId peer;
  PeerExchange px;
};
// Close a connection we opened that serves none of our shards.
struct DiscoveryDisconnect {
  NodeId peer;
  std::string reason;
};
using DiscoveryOutput = std::variant<DiscoveryDial, DiscoverySend, DiscoveryDisconnect>;

struct DiscoveryStats {
  uint64_t dials = 0;
  uint64_t dial_failures = 0;
  uint64_t px_sent = 0;
  uint64_t px_received = 0;
  uint64_t px_malformed = 0;
  uint64_t records_learned = 0;
  uint64_t chain_queries = 0;
  uint64_t unrelated_disconnects = 0;
};

class Discovery {
 public:
  // `self_address` is our dialable address ("" when not dialable). `chain`
  // may be null; when set it must outlive this object.
  Discovery(const NodeId& self, std::string self_address, std::vector<ShardId> served,
            DiscoverySettings settings, uint64_t seed, EndpointSource* chain = nullptr);
  ~Discovery();
  Discovery(const Discovery&) = delete;
  Discovery& operator=(const Discovery&) = delete;

  const DiscoverySettings& settings() const noexcept;
  void set_self_address(std::string address);
  void set_served_shards(std::vector<ShardId> served);

  // ---- inputs ----
  // A session with `peer` is up. `address` is where it can be dialled (its
  // advertised address; may be empty). Sends it our PX hello.
  void peer_connected(const NodeId& peer, const std::string& address, bool outbound, TimePoint now);
  void peer_disconnected(const NodeId& peer, TimePoint now);
  // A PX frame from a connected peer. Malformed frames return the error (the
  // owner charges the peer) and change nothing.
  Status handle_frame(const NodeId& from, ByteSpan body, TimePoint now);
  void handle_exchange(const NodeId& from, PeerExchange px, TimePoint now);
  // Outcome of a DiscoveryDial: the node id reached, or the error.
  void dial_result(const std::string& address, const Result<NodeId>& result, TimePoint now);
  // Refreshes chain records when due, asks for PX when short, dials
  // candidates for shards below target, drops unrelated connections.
  void tick(TimePoint now);

  std::vector<DiscoveryOutput> take_outputs();

  // ---- introspection ----
  // Connected peers known to serve `shard`.
  size_t connected_in_shard(ShardId shard) const;
  size_t known_peers() const;
  std::optional<PeerRecord> record(const NodeId& id) const;
  const DiscoveryStats& stats() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::p2p
