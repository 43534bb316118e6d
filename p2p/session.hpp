#pragma once
// One connection: handshake, secretstream records, frames, the bounded send
// queue, keepalive. Private to p2p; the Host owns sessions and is their
// SessionOwner.
//
// Lifetime: a Session is held by shared_ptr: by its owner while open and by
// its own pending I/O handlers. Every handler runs on the session's
// executor. Once closed, a session never calls its owner again except
// session_destroyed (from its destructor).
//
// Duplicate connections (docs/wire-protocol.md section 7): the owner may
// retire() the losing one of two sessions to the same node. A retiring
// session sends goodbye(duplicate_connection) after the records already being
// written, keeps its unwritten data frames for hand_over() to the surviving
// session, and keeps reading and delivering the peer's frames until the
// peer's goodbye or end of stream (at most duplicate_drain_timeout). Frames
// are kept in plaintext until they are written and sealed just before, so a
// frame not yet written can move to another session.

#include <asio/any_io_executor.hpp>

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cairn/core/ed25519.hpp"
#include "cairn/p2p/clock.hpp"
#include "cairn/p2p/host.hpp"
#include "cairn/p2p/settings.hpp"
#include "cairn/p2p/transport.hpp"
#include "frame.hpp"
#include "handshake.hpp"

namespace cairn::p2p {

class Session;

class SessionOwner {
 public:
  virtual ~SessionOwner() = default;
  // Called with the peer's Hello before we answer it. Return a reason to
  // refuse (banned ...), or nullopt to continue.
  virtual std::optional<DisconnectReason> session_vet(Session& s, const Hello& peer,
                                                      std::string& detail) = 0;
  // The peer's Auth verified: frames may flow.
  virtual void session_established(Session& s) = 0;
  // One frame of a non-control type (also from a retiring session). The
  // payload view dies with the call.
  virtual void session_frame(Session& s, MessageType type, ByteSpan payload) = 0;
  // The peer said goodbye(duplicate_connection) on this established,
  // not retiring session: it keeps another session to us. Return true to
  // keep `s` as the peer's session until that one is established (s then
  // answers goodbye, holds what is sent through it for hand_over(), and
  // reports session_closed when released or after duplicate_drain_timeout);
  // false to close it as an ordinary disconnect.
  virtual bool session_superseded(Session& s) = 0;
  // The session closed (or began its closing flush). Exactly once; for a
  // retiring session when its drain ended.
  virtual void session_closed(Session& s, DisconnectReason reason, bool by_remote,
                              const std::string& detail) = 0;
  // A send() refused as busy earlier; the queue has drained to half its bound.
  virtual void session_send_ready(Session& s) = 0;
  // From ~Session: its stream, buffers and timers are released.
  virtual void session_destroyed() noexcept = 0;
};

struct SessionConfig {
  const SigningKey* identity = nullptr;
  const P2pSettings* settings = nullptr;
  Role role = Role::initiator;
  std::optional<NodeId> expected;  // initiator only
  std::string advertised_address;
  uint64_t id = 0;          // owner-assigned, unique per Host
  uint64_t nonce_seed = 0;  // ping nonces
};

// How long a closing session may take to flush its goodbye before the
// stream is cut. 2 s: a goodbye is tiny; a peer that is not reading by then
// will not read it at all.
inline constexpr Duration kCloseLinger = std::chrono::seconds(2);

class Session : public std::enable_shared_from_this<Session> {
 public:
  enum class State { hello, auth, established, retiring, closing, closed };

  Session(std::shared_ptr<SessionOwner> owner, const asio::any_io_executor& executor, Clock& clock,
          std::unique_ptr<Stream> stream, SessionConfig config);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Sends our Hello, starts reading and arms the handshake timer.
  void start();

  // Queues one data frame (established, or retiring awaiting its successor:
  // then held for hand_over()). Errors: busy (queue full, nothing queued),
  // invalid_argument (too large), not_found (not established).
  Status send(MessageType type, ByteSpan payload, bool compress);

  // Begins closing with `reason`. With `goodbye`, an established session
  // queues a goodbye frame and closes after flushing (kCloseLinger at most);
  // otherwise the stream is cut at once. `drop_queued` discards data frames
  // not yet being written. Reports session_closed to the owner now.
  void close(DisconnectReason reason, std::string detail, bool goodbye, bool drop_queued);

  void pause_reading();
  void resume_reading();

  // --- duplicate connections ---
  // Retires an established session that lost to a duplicate (see above).
  // No-op in any other state.
  void retire(std::string detail);
  // Moves the data frames this retiring session has not written (in order)
  // to the end of `successor`'s queue, ahead of anything sent there later;
  // a session retired by the peer is then free to finish its drain.
  void hand_over(Session& successor);
  // Ends a retiring session now: session_closed(duplicate_connection,
  // by_remote when the peer retired it) and the stream is cut; frames still
  // held for a successor are dropped. Also how a drain ends normally.
  void end_retirement(std::string detail);
  // Ordering hold set by the owner: while held, received records wait
  // unread (like pause_reading, and the idle timeout is suspended) so that
  // frames of a retiring session to the same peer are delivered first.
  void set_held(bool held);

  State state() const noexcept { return state_; }
  bool established() const noexcept { return state_ == State::established; }
  bool retiring() const noexcept { return state_ == State::retiring; }
  // Retiring and still reading: the peer's goodbye or end of stream is due.
  bool draining() const noexcept { return state_ == State::retiring && !peer_done_; }
  // When the peer's Hello arrived (its node id is known from then on).
  TimePoint hello_at() const noexcept { return hello_at_; }
  // The peer's Auth verified at some point (stays true while closing).
  bool handshake_completed() const noexcept { return handshake_completed_; }
  uint64_t id() const noexcept { return config_.id; }
  Role role() const noexcept { return config_.role; }
  Direction direction() const noexcept {
    return config_.role == Role::initiator ? Direction::outbound : Direction::inbound;
  }
  const NodeId& peer_id() const noexcept { return peer_id_; }
  const std::string& peer_address() const noexcept { return peer_address_; }
  const std::string& remote_address() const noexcept { return remote_address_; }
  uint16_t version() const noexcept { return version_; }
  TimePoint established_at() const noexcept { return established_at_; }
  Duration rtt() const noexcept { return rtt_; }
  size_t queued_bytes() const noexcept { return queued_bytes_ + held_bytes_; }

  // Wire counters (the owner sums them into HostStats).
  uint64_t frames_sent = 0, frames_received = 0, bytes_sent = 0, bytes_received = 0;

 private:
  // A send buffer: uninitialised on allocation (every byte up to len is
  // written before use), recycled through pool_.
  struct Buffer {
    std::unique_ptr<uint8_t[]> data;
    size_t capacity = 0;
  };
  // One record on its way out: len bytes from buf.data. A frame stays in
  // plaintext (`plain` > 0: the frame's length, at offset 5 behind the
  // length prefix and the tag slot, with room for the MAC) until it is
  // gathered for writing, so an unwritten frame can move to another session.
  struct OutRecord {
    Buffer buf;
    size_t len = 0;
    size_t plain = 0;
    bool data = false;  // an application frame (control frames never move)
  };

  // --- writing ---
  OutRecord take_buffer(size_t len);
  void recycle(Buffer&& buf);
  void trim_pool() noexcept;
  void enqueue(OutRecord rec);
  void queue_handshake(ByteSpan message);
  // Builds a frame record (unsealed); `control` frames bypass the queue
  // bound. Errors as send().
  Result<OutRecord> build_frame(MessageType type, ByteSpan payload, bool compress, bool control);
  // Builds and queues a frame (a retiring session holds data frames).
  Status queue_frame(MessageType type, ByteSpan payload, bool compress, bool control);
  void adopt(std::deque<OutRecord>&& records, bool refused_busy);
  void pump_writes();
  void on_written(std::error_code ec, size_t n, size_t records);

  // --- reading ---
  void read_more();
  void on_read(std::error_code ec, size_t n);
  void process_buffered();
  // Handles one complete record; false when the session closed.
  bool handle_record(uint8_t* rec, size_t len);
  bool handle_hello(ByteSpan rec);
  bool handle_auth(ByteSpan rec);
  bool handle_frame(uint8_t* rec, size_t len);
  size_t record_limit() const noexcept;
  // The state reads records: handshaking, established, or retiring and
  // waiting for the peer's goodbye.
  bool reads() const noexcept;

  // --- keepalive ---
  void arm_idle();
  void arm_ping();

  void on_idle();
  void on_ping_timer();
  void send_ping();

  void begin_retire(bool by_peer, std::string detail);
  void on_drain_timeout();
  void maybe_finish_retire();

  void fail(DisconnectReason reason, std::string detail);
  void close_impl(DisconnectReason reason, std::string detail, bool by_remote, bool goodbye,
                  bool drop_queued);
  void hard_close();

  std::shared_ptr<SessionOwner> owner_;
  asio::any_io_executor executor_;
  Clock& clock_;
  std::unique_ptr<Stream> stream_;
  SessionConfig config_;
  State state_ = State::hello;
  bool owner_told_ = false;
  bool handshake_completed_ = false;

  // handshake
  std::unique_ptr<EphemeralKey> ephemeral_;
  Bytes my_hello_, peer_hello_;
  Hello peer_;
  NodeId peer_id_;
  std::string peer_address_, remote_address_;
  uint16_t version_ = 0;
  bool zstd_ = false;
  SealState seal_;
  OpenState open_;
  Hash32 transcript_{};
  std::array<uint8_t, 32> rx_key_{};

  // write side
  std::deque<OutRecord> queue_;
  size_t queued_bytes_ = 0;
  bool refused_busy_ = false;  // a send() was refused; report when drained
  bool writing_ = false;
  size_t writing_records_ = 0;
  std::vector<ByteSpan> gather_;
  std::vector<Buffer> pool_;
  size_t pooled_bytes_ = 0;
  Bytes compressed_;
  ZstdContexts zstd_ctx_;
  // Per message type: frames left to send without trying zstd, and the
  // skip after the next failed attempt (see kMaxCompressSkip).
  struct CompressBackoff {
    uint16_t skip = 0;
    uint16_t next = 1;
  };
  std::unordered_map<uint16_t, CompressBackoff> compress_backoff_;
  // retiring: data frames not written here, waiting for hand_over()
  std::deque<OutRecord> held_;
  size_t held_bytes_ = 0;
  bool retired_by_peer_ = false;  // the peer's goodbye started the retirement
  bool await_successor_ = false;  // still the peer's session until hand_over()
  bool peer_done_ = false;        // the peer's goodbye or end of stream was read
  std::string retire_detail_;

  // read side
  Bytes rbuf_;
  size_t rstart_ = 0, rend_ = 0;
  Bytes big_;  // one record larger than rbuf_, read straight into place
  size_t big_len_ = 0, big_fill_ = 0;
  bool big_mode_ = false;
  bool reading_ = false;
  int paused_ = 0;
  bool held_reading_ = false;
  Bytes scratch_;  // inflated payloads

  // timers and keepalive
  // linger_timer_ bounds the closing flush, and the drain while retiring.
  std::unique_ptr<Timer> handshake_timer_, idle_timer_, ping_timer_, linger_timer_;
  TimePoint last_rx_{}, last_tx_{}, established_at_{}, hello_at_{};
  uint64_t ping_nonce_ = 0, nonce_state_ = 0;
  TimePoint ping_sent_at_{};
  Duration rtt_{};
};

}  // namespace cairn::p2p
