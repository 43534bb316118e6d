#pragma once
// Settings of the connection layer (transport, handshake, framing, peers,
// request/response). Gossip and discovery settings live beside their code and
// are nested with this one into the node's settings.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "cairn/core/bytes.hpp"
#include "cairn/p2p/clock.hpp"

namespace cairn::p2p {

using namespace std::chrono_literals;

struct P2pSettings {
  // --- network identity ---
  // Identifies the network (the genesis hash). A peer with another value is
  // refused at the handshake (network_mismatch), so a testnet node cannot
  // join mainnet by mistake. Default all zero (dev networks).
  Hash32 network_id{};
  // Where peers can dial us, sent in the handshake so peer exchange can pass
  // it on ("host:port", at most 255 bytes). Empty (default): the address
  // listen() bound, which is only useful when it is not a wildcard.
  std::string advertised_address;

  // --- handshake ---
  // From TCP connect (or accept) to a verified session. A peer that stalls
  // inside the handshake is dropped when it passes. Default 10 s: several
  // round trips on a bad intercontinental link, short enough that idle
  // half-open connections cannot pile up.
  Duration handshake_timeout = 10s;
  // How long a dial may take before it is abandoned. Default 10 s.
  Duration connect_timeout = 10s;
  // Connections still in the handshake, inbound and outbound together.
  // Excess inbound connections are closed at accept. Default 32.
  size_t max_pending_handshakes = 32;

  // --- frames ---
  // Largest frame payload in bytes, before and after decompression. A length
  // prefix above the matching record size is refused before any allocation.
  // Default 4 MiB: 32 fragments of a 128 KiB blob with room to spare; each
  // peer can make us hold at most this much for one frame.
  uint32_t max_frame_payload = 4u << 20;
  // zstd on frames: used only when both ends advertise it, the payload is at
  // least `compress_threshold` bytes and compression shrinks it. Default on.
  // A message type whose payloads stop shrinking is tried only once per up
  // to 64 frames, so incompressible traffic costs little; turn off to save
  // even that.
  bool compression = true;
  // Bytes. Default 1024: below that the zstd frame overhead eats the gain.
  size_t compress_threshold = 1024;
  // zstd level. Default 1: fast; the link, not the ratio, is the goal.
  int compression_level = 1;

  // --- peers ---
  // Connected peers by direction (handshake done). Inbound beyond the cap is
  // refused with too_many_peers; outbound dials beyond it return busy.
  // Defaults 48 / 24: enough for D_high = 12 mesh peers in a few subnets.
  size_t max_inbound_peers = 48;
  size_t max_outbound_peers = 24;
  // Per-peer send queue bound, bytes and frames (control frames excepted).
  // send() on a full queue returns Errc::busy and queues nothing (the caller
  // drops or retries). Defaults 8 MiB / 4096: a few large responses or many
  // small gossip frames; memory per peer stays bounded.
  size_t max_queue_bytes = 8u << 20;
  size_t max_queue_frames = 4096;
  // Keepalive: a ping goes out after `ping_interval` without sending any
  // frame; a peer we hear nothing from for `idle_timeout` is disconnected
  // (idle_timeout). Defaults 15 s / 45 s: three missed pings.
  Duration ping_interval = 15s;
  Duration idle_timeout = 45s;
  // Reconnect (persistent peers): the n-th consecutive failure waits
  // min(reconnect_max, reconnect_base * 2^(n-1)), of which the fraction
  // `reconnect_jitter` is replaced by a uniform random draw so that a
  // restarted network does not reconnect in lockstep. Defaults 1 s, 5 min, 0.5.
  Duration reconnect_base = 1s;
  Duration reconnect_max = 5min;
  double reconnect_jitter = 0.5;
  // Duplicate connections (docs/wire-protocol.md section 7). After we retire
  // the losing one of two sessions to the same node, we keep reading it until
  // the peer's goodbye or end of stream, and frames on the surviving session
  // wait behind it (per-peer order); after the peer retires the session we
  // send on, our frames wait for the session replacing it. Both waits end
  // after this long: the retired session is cut, or the peer is disconnected.
  // Default 5 s: a round trip plus the write batch the peer has in flight (at
  // most 4 MiB) on a slow link. Longer tolerates slower links; shorter bounds
  // how long a peer that never answers can stall its own frames.
  Duration duplicate_drain_timeout = 5s;

  // --- scores and bans ---
  // Score starts at 0 and decays toward 0 with this half-life. Default
  // 10 min: old misbehaviour is forgiven, bursts are not.
  Duration score_half_life = 10min;
  // A peer whose score falls to or below this is banned and disconnected.
  // Default -100.
  double ban_threshold = -100;
  // How long such a ban lasts. Default 1 h.
  Duration ban_duration = 1h;
  // Bans remembered at once; the one expiring first is dropped beyond it.
  // Default 4096.
  size_t max_bans = 4096;
  // Scores remembered at once (connected or not); beyond it the score
  // closest to zero is forgotten. Default 4096.
  size_t max_scored_peers = 4096;
  // Penalty for a frame that breaks the protocol (bad type for the phase,
  // malformed control frame). Default 10.
  double penalty_protocol_violation = 10;

  // --- request/response ---
  // Requests we have outstanding at one peer; request() beyond it returns
  // busy. Default 32.
  size_t max_requests_in_flight = 32;
  // Requests a peer may have outstanding at us; beyond it we answer busy
  // without running the handler. Default 32.
  size_t max_inbound_requests = 32;
  // Timeout of a request that does not name one. Default 10 s.
  Duration request_timeout = 10s;
};

}  // namespace cairn::p2p
