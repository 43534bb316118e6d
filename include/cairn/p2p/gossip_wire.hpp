#pragma once
// Gossip RPC: the body of a gossip frame (docs/wire-protocol.md, "Gossip").
//
// One RPC bundles subscription changes, published messages and mesh control
// (IHAVE / IWANT / GRAFT / PRUNE), in the manner of gossipsub v1.1. Messages
// are anonymous and content-addressed: the id is a hash of (topic, data), the
// payload carries its own signature where the application needs one.
//
// Wire format: do not change the layout of version 1; bump kGossipWireVersion.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "cairn/core/bytes.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"

namespace cairn::p2p {

// One gossip topic per storage shard (docs/design.md section 5).
using TopicId = ShardId;

// A message id: BLAKE2b-256("cairn/gossip/msg/v1" || topic (u32 BE) || data).
using MessageId = Id32<struct GossipMessageIdTag>;

MessageId gossip_message_id(TopicId topic, ByteSpan data) noexcept;

inline constexpr uint8_t kGossipWireVersion = 1;

// Hard wire limits. The decoder refuses anything beyond them before it
// allocates; the router's settings may only be tighter. They are sized so a
// well-formed RPC of every section at its limit still fits a 4 MiB frame.
inline constexpr size_t kMaxGossipSubscriptions = 1024;  // topic changes per RPC
inline constexpr size_t kMaxGossipMessages = 256;        // published messages per RPC
inline constexpr size_t kMaxGossipDataBytes = 1 << 20;   // one message payload
inline constexpr size_t kMaxGossipIhaveTopics = 64;      // IHAVE entries per RPC
inline constexpr size_t kMaxGossipIdsPerControl = 1024;  // ids per IHAVE entry or per IWANT
inline constexpr size_t kMaxGossipGraftPrune = 1024;     // GRAFT or PRUNE entries per RPC

struct GossipSubscription {
  bool subscribe = true;  // false: unsubscribe
  TopicId topic;
  bool operator==(const GossipSubscription&) const = default;
};

// A published message. The payload is shared: the router hands the same
// buffer to every peer it forwards to and to the message cache.
struct GossipPayload {
  TopicId topic;
  std::shared_ptr<const Bytes> data;
  bool operator==(const GossipPayload& o) const {
    return topic == o.topic && data && o.data && *data == *o.data;
  }
};

struct GossipIhave {
  TopicId topic;
  std::vector<MessageId> ids;
  bool operator==(const GossipIhave&) const = default;
};

struct GossipPrune {
  TopicId topic;
  // Seconds the pruned peer must wait before it may GRAFT this topic again.
  uint32_t backoff_seconds = 0;
  bool operator==(const GossipPrune&) const = default;
};

struct GossipRpc {
  std::vector<GossipSubscription> subscriptions;
  std::vector<GossipPayload> messages;
  std::vector<GossipIhave> ihave;
  std::vector<MessageId> iwant;
  std::vector<TopicId> graft;
  std::vector<GossipPrune> prune;

  bool empty() const noexcept {
    return subscriptions.empty() && messages.empty() && ihave.empty() && iwant.empty() &&
           graft.empty() && prune.empty();
  }
  bool operator==(const GossipRpc&) const = default;
};

// Exact encoded size of `rpc` (no allocation). Used to split outgoing RPCs
// under a frame budget.
size_t encoded_size(const GossipRpc& rpc) noexcept;

// Splits `rpc` into RPCs that each respect the wire limits and encode to at
// most `max_bytes` (a single message larger than that travels alone).
// Section order is kept: subscriptions before messages before control, so a
// peer learns a subscription before the GRAFT that relies on it.
std::vector<GossipRpc> split_gossip_rpc(GossipRpc rpc, size_t max_bytes);

// Encodes `rpc`. Errc::invalid_argument when a section exceeds a wire limit
// or a payload is null (a router bug, never peer input).
Result<Bytes> encode_gossip_rpc(const GossipRpc& rpc);

// Decodes an RPC from untrusted bytes. Never throws; allocates at most a
// small constant times data.size(). Errc::unsupported for an unknown version,
// Errc::invalid_argument for anything malformed (truncated, over a limit,
// trailing bytes, unknown flag values).
Result<GossipRpc> decode_gossip_rpc(ByteSpan data) noexcept;

}  // namespace cairn::p2p
