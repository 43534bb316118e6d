#pragma once
// Host: a node's end of the peer-to-peer network. It owns the listener, the
// secure sessions (handshake, secretstream, framing), the peer table with its
// caps, queues, keepalive, reconnects, scores and bans, and dispatches typed
// messages to the layers above (gossip, discovery, request/response).
//
// Threading: a Host and every session it owns run on the executor given at
// construction (pass a strand when the io_context has several threads). Every
// method must be called on that executor; every callback runs on it and never
// synchronously inside the method that caused it, except where noted.
// Components take the executor and never start threads.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/core/asio_fwd.hpp"
#include "cairn/core/bytes.hpp"
#include "cairn/core/ed25519.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/core/subscription.hpp"
#include "cairn/p2p/clock.hpp"
#include "cairn/p2p/message_types.hpp"
#include "cairn/p2p/settings.hpp"
#include "cairn/p2p/transport.hpp"

namespace cairn::p2p {

enum class Direction : uint8_t { inbound = 0, outbound = 1 };

// Why a connection ended. Sent as the payload of a goodbye frame, so the
// other side can log our reason: wire format, do not renumber.
enum class DisconnectReason : uint8_t {
  requested = 0,              // the local application asked (disconnect())
  shutdown = 1,               // the node is stopping
  handshake_timeout = 2,      // no verified session within handshake_timeout
  handshake_failed = 3,       // malformed or out-of-order handshake message
  bad_signature = 4,          // the handshake signature did not verify
  unexpected_peer_id = 5,     // we dialed one node id and reached another
  no_common_version = 6,      // protocol version ranges do not overlap
  network_mismatch = 7,       // the peer is on another network (network_id)
  self_connection = 8,        // we reached our own node id
  decrypt_failed = 9,         // a frame failed authentication: tampered, replayed or reordered
  frame_too_large = 10,       // a length prefix or decompressed size above the limit
  protocol_error = 11,        // a frame that does not parse or is not allowed now
  idle_timeout = 12,          // nothing received for idle_timeout
  banned = 13,                // the peer is (now) banned
  too_many_peers = 14,        // the peer cap for its direction is reached
  duplicate_connection = 15,  // another connection to the same node won
  io_error = 16,              // reset, broken pipe, end of stream without goodbye
  send_queue_overflow = 17,   // pings while max_queue_bytes wait for the peer to read
};

std::string_view disconnect_reason_name(DisconnectReason r) noexcept;

struct PeerInfo {
  NodeId id;
  Direction direction = Direction::outbound;
  std::string remote_address;      // transport address of the other end
  std::string advertised_address;  // where the peer says it can be dialed; may be empty
  uint16_t protocol_version = 0;   // negotiated in the handshake
  TimePoint connected_at{};
  Duration rtt{};  // last ping round trip; zero until measured
  double score = 0;
  size_t queued_bytes = 0;  // frames waiting in our send queue
};

struct DisconnectInfo {
  NodeId id;
  Direction direction = Direction::outbound;
  std::string advertised_address;
  DisconnectReason reason = DisconnectReason::io_error;
  bool by_remote = false;  // the peer's goodbye carried `reason`
  std::string detail;      // human-readable context, also logged
};

using MessageHandler = std::function<void(const NodeId& from, ByteSpan payload)>;
using ConnectedHandler = std::function<void(const PeerInfo&)>;
using DisconnectedHandler = std::function<void(const DisconnectInfo&)>;
using ConnectCallback = std::function<void(Result<NodeId>)>;
using SendReadyHandler = std::function<void(const NodeId& peer)>;

// Cancels on destruction (core/subscription.hpp). Destroying or reset()ting a
// handler registration unregisters it (safe after the Host is gone).
using Subscription = cairn::Subscription;

struct ConnectOptions {
  // The node id we mean to reach. The dialer binds it into the handshake; a
  // different responder fails with unexpected_peer_id. Unset: accept anyone
  // (bootstrap addresses).
  std::optional<NodeId> expected_id;
  // Keep this address connected: after a failed dial or a disconnect, redial
  // with exponential backoff and jitter until forget() or shutdown().
  bool persistent = false;
};

struct SendOptions {
  // Compress when the session negotiated zstd and the payload reaches the
  // compress_threshold. Turn off for payloads known not to compress.
  bool compress = true;
};

struct HostStats {
  uint64_t sessions_open = 0;  // connections alive, handshaking or established
  uint64_t handshakes_pending = 0;
  uint64_t peers_inbound = 0;
  uint64_t peers_outbound = 0;
  uint64_t dials_pending = 0;
  uint64_t frames_sent = 0;
  uint64_t frames_received = 0;
  uint64_t bytes_sent = 0;  // on the wire, including headers and MACs
  uint64_t bytes_received = 0;
  uint64_t send_busy = 0;         // send() refused because the peer queue was full
  uint64_t unknown_messages = 0;  // frames of a type nobody handles (ignored)
  uint64_t handshakes_failed = 0;
  uint64_t disconnects = 0;
  uint64_t duplicates_retired = 0;  // sessions retired because another one to the same node won
  uint64_t bans_active = 0;
};

namespace detail {
struct HostImpl;
}

class Host {
 public:
  // `transport` and `clock` must outlive the Host. `seed` drives reconnect
  // jitter and ping nonces (reproducible simulations).
  Host(const asio::any_io_executor& executor, Transport& transport, Clock& clock,
       const SigningKey& identity, P2pSettings settings, uint64_t seed);
  // Calls shutdown() if it was not called. Work still in flight finishes on
  // the executor without calling back into the application.
  ~Host();
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  const NodeId& id() const noexcept;
  const P2pSettings& settings() const noexcept;
  Clock& clock() const noexcept;
  const asio::any_io_executor& executor() const noexcept;

  // Accepts peers on `address`; returns the bound address (see
  // Transport::listen). May be called more than once for several addresses.
  Result<std::string> listen(const std::string& address);

  // Dials `address` and runs the handshake. `done` (optional) runs once with
  // the peer's node id when the session is established (also when the node
  // was already connected), or with the error: busy (outbound cap), conflict
  // (banned id), timeout, io_error, verification_failed (handshake) ...
  // Persistent dials report only their first attempt to `done`.
  void connect(const std::string& address, ConnectOptions options = {}, ConnectCallback done = {});

  // Stops redialing a persistent address (a connected session stays up).
  void forget(const std::string& address);

  // Sends a goodbye with `reason`, then closes after the queued frames are
  // written (or at once when the peer is not reading). No-op when unknown.
  void disconnect(const NodeId& peer, DisconnectReason reason = DisconnectReason::requested,
                  std::string detail = {});

  // Queues one frame. Errors: not_found (not connected), busy (the peer's
  // queue is at max_queue_bytes/max_queue_frames; nothing was queued),
  // invalid_argument (payload above max_frame_payload, or a control type).
  // The payload is copied; it may be reused when send() returns.
  Status send(const NodeId& peer, MessageType type, ByteSpan payload, SendOptions options = {});

  // Registers the handler for one message type (not control types). The
  // payload view is valid only during the call. Errc::conflict when the type
  // already has a handler, invalid_argument for control types.
  Result<Subscription> on_message(MessageType type, MessageHandler handler);
  // Event listeners; any number, called in registration order.
  Subscription on_connected(ConnectedHandler handler);
  Subscription on_disconnected(DisconnectedHandler handler);
  // Called when a peer whose send() returned busy has drained its queue to
  // half of max_queue_bytes, so a producer can resume instead of polling.
  // Runs from the write completion (not inside send()).
  Subscription on_send_ready(SendReadyHandler handler);

  // Receive-side backpressure: stop reading from the peer's socket (its
  // frames wait in the kernel and, when full, the peer's own queue reports
  // busy) until resume_reading(). The idle timeout is suspended while
  // paused. Pauses nest: each pause needs its resume.
  void pause_reading(const NodeId& peer);
  void resume_reading(const NodeId& peer);

  // Scores: adds `delta` (negative for misbehaviour) to the peer's decayed
  // score and logs `reason`; at or below ban_threshold the peer is banned
  // for ban_duration and disconnected (banned).
  void adjust_score(const NodeId& peer, double delta, std::string_view reason);
  double score(const NodeId& peer) const;
  // Bans a node id for `duration` (disconnecting it), refusing its
  // handshakes until the ban expires or unban().
  void ban(const NodeId& peer, Duration duration, std::string_view reason);
  void unban(const NodeId& peer);
  bool is_banned(const NodeId& peer) const;

  bool is_connected(const NodeId& peer) const;
  std::optional<PeerInfo> peer(const NodeId& peer) const;
  std::vector<PeerInfo> peers() const;
  size_t peer_count() const;
  HostStats stats() const;

  // Stops listening, cancels dials and reconnects, says goodbye (shutdown) to
  // every peer and closes every session. No message, connect or disconnect
  // callback runs after shutdown() returns; `done` runs on the executor once
  // every session and timer of this Host is released (the join).
  void shutdown(std::function<void()> done = {});

 private:
  std::shared_ptr<detail::HostImpl> impl_;
};

}  // namespace cairn::p2p
