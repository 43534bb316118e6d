#pragma once
// Message type numbers carried in every frame header (u16, big-endian).
// Wire format: do not renumber, do not reuse a retired number.
// docs/wire-protocol.md lists every type with its payload.

#include <cstdint>
#include <string_view>

namespace cairn::p2p {

enum class MessageType : uint16_t {
  // 0x0000-0x00ff: connection control. Consumed by Host; never delivered to
  // registered handlers.
  ping = 0x0001,     // u64 nonce; answered by pong with the same nonce
  pong = 0x0002,     // u64 nonce
  goodbye = 0x0003,  // u8 DisconnectReason; the sender closes after it

  // 0x0100-0x01ff: request/response (request.hpp). 0x0100-0x010f are the
  // protocol's own frames; 0x0110-0x01ff are request kinds, one per kind of
  // question, each answered by a `response` frame.
  response = 0x0100,                    // u64 request id, u8 ResponseStatus, body
  cancel_request = 0x0101,              // u64 request id
  fragments_request = 0x0110,           // reserved: fragments of a blob (storage layer)
  shard_range_request = 0x0111,         // reserved: blob range of a shard (shard sync)
  challenge_response_request = 0x0112,  // reserved: a stored challenge response (sampling)

  // 0x0200-0x02ff: gossip subnets (gossip layer adds its types here).
  gossip_rpc = 0x0200,  // GossipRpc (gossip_wire.hpp): subscriptions, messages, mesh control
  // 0x0300-0x03ff: discovery and peer exchange (gossip layer adds its types here).
  peer_exchange =
      0x0300,  // PeerExchange (discovery.hpp): the sender and peers it knows, with shards
  // 0x0400-0xefff: unassigned.
  // 0xf000-0xffff: private/experimental; never sent on a shared network.
};

inline constexpr uint16_t kControlFirst = 0x0000, kControlLast = 0x00ff;
inline constexpr uint16_t kRequestFirst = 0x0100, kRequestLast = 0x01ff;
inline constexpr uint16_t kRequestKindFirst = 0x0110;
inline constexpr uint16_t kGossipFirst = 0x0200, kGossipLast = 0x02ff;
inline constexpr uint16_t kDiscoveryFirst = 0x0300, kDiscoveryLast = 0x03ff;

constexpr uint16_t to_wire(MessageType t) noexcept { return static_cast<uint16_t>(t); }

constexpr bool is_control(MessageType t) noexcept { return to_wire(t) <= kControlLast; }
// A type a RequestResponse handler may be registered for.
constexpr bool is_request_kind(MessageType t) noexcept {
  return to_wire(t) >= kRequestKindFirst && to_wire(t) <= kRequestLast;
}

// Printable name for logs; "unknown" for numbers this build does not know.
std::string_view message_type_name(MessageType t) noexcept;

}  // namespace cairn::p2p
