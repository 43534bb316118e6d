#include "cairn/p2p/message_types.hpp"

namespace cairn::p2p {

std::string_view message_type_name(MessageType t) noexcept {
  switch (t) {
    case MessageType::ping:
      return "ping";
    case MessageType::pong:
      return "pong";
    case MessageType::goodbye:
      return "goodbye";
    case MessageType::response:
      return "response";
    case MessageType::cancel_request:
      return "cancel_request";
    case MessageType::fragments_request:
      return "fragments_request";
    case MessageType::shard_range_request:
      return "shard_range_request";
    case MessageType::challenge_response_request:
      return "challenge_response_request";
    case MessageType::gossip_rpc:
      return "gossip_rpc";
    case MessageType::peer_exchange:
      return "peer_exchange";
  }
  return "unknown";
}

}  // namespace cairn::p2p
