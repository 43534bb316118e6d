#pragma once
// The gossip fuzz harnesses, shared by the libFuzzer targets
// (p2p_gossip_rpc_fuzz.cpp, p2p_peer_exchange_fuzz.cpp; CAIRN_FUZZ=ON with
// clang) and the corpus replay in the unit tests
// (tests/p2p/gossip_corpus_test.cpp). The targets abort on a violation; the
// replay reports it.

#include <chrono>
#include <string>

#include "cairn/p2p/discovery.hpp"
#include "cairn/p2p/gossip.hpp"
#include "cairn/p2p/gossip_wire.hpp"

namespace cairn::p2p::fuzz {

struct CheckResult {
  bool decoded = false;   // the decoder accepted the input
  std::string violation;  // empty when every property held
};

// Decodes `input` with `decode`; what decodes must re-encode with `encode`
// to exactly the input bytes (one encoding per value).
template <class Decode, class Encode>
CheckResult check_round_trip(ByteSpan input, Decode decode, Encode encode) {
  CheckResult out;
  auto value = decode(input);
  out.decoded = value.has_value();
  if (value) {
    auto again = encode(*value);
    if (!again) {
      out.violation = "decoded value does not re-encode: " + again.error().to_string();
    } else if (*again != Bytes(input.begin(), input.end())) {
      out.violation = "decoded value re-encodes to different bytes";
    }
  }
  return out;
}

inline NodeId fuzz_peer() {
  NodeId peer{};
  peer.bytes[0] = 1;
  return peer;
}

// The round trip for a gossip RPC, then the bytes fed to a router as a frame
// from a connected peer, before and after a heartbeat.
inline CheckResult check_gossip_rpc(ByteSpan input) {
  CheckResult out = check_round_trip(input, decode_gossip_rpc, encode_gossip_rpc);
  const NodeId self{};
  const NodeId peer = fuzz_peer();
  GossipRouter router(self, GossipSettings{}, 1);
  TimePoint now{};
  router.subscribe(ShardId(0), now);
  router.subscribe(ShardId(1), now);
  router.add_peer(peer, true, now);
  router.handle_frame(peer, input, now);
  now += std::chrono::seconds(1);
  router.heartbeat(now);
  router.handle_frame(peer, input, now);
  (void)router.take_outputs();
  return out;
}

// The same for a peer-exchange frame fed to discovery.
inline CheckResult check_peer_exchange(ByteSpan input) {
  CheckResult out = check_round_trip(input, decode_peer_exchange, encode_peer_exchange);
  const NodeId self{};
  const NodeId peer = fuzz_peer();
  DiscoverySettings settings;
  settings.max_known_peers = 64;
  Discovery discovery(self, "127.0.0.1:1", {ShardId(0), ShardId(1)}, settings, 1);
  TimePoint now{};
  discovery.peer_connected(peer, "127.0.0.1:2", true, now);
  (void)discovery.handle_frame(peer, input, now);
  now += std::chrono::seconds(1);
  discovery.tick(now);
  (void)discovery.take_outputs();
  return out;
}

}  // namespace cairn::p2p::fuzz
