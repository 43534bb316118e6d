#include "session.hpp"

#include <asio/error.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <cstring>

#include "cairn/core/log.hpp"
#include "cairn/p2p/identity.hpp"

namespace cairn::p2p {
namespace {

// Read buffer for small records; a larger record is read straight into its
// own buffer. 64 KiB: many gossip frames per syscall, and at most ~6% extra
// copying for a 1 MiB record (the part that arrived with its prefix).
constexpr size_t kReadBufferBytes = 64 * 1024;
// A gathered write carries at most this many records / bytes.
constexpr size_t kMaxGatherRecords = 64;
constexpr size_t kMaxGatherBytes = 4u << 20;
// Recycled send buffers per session. While frames flow, up to a full queue's
// worth (max_queue_bytes) is kept so steady large transfers neither allocate
// nor fault in pages per frame; once the queue runs empty the pool is trimmed
// to kIdlePoolBytes, so an idle peer holds little.
constexpr size_t kPoolBuffers = 16;
constexpr size_t kIdlePoolBytes = 256 * 1024;
constexpr size_t kPingBytes = 8;
// Frames of a message type whose last zstd attempt did not shrink skip
// compression: 1, then 2, 4 ... up to this many before the next attempt. A
// stream of incompressible payloads (erasure-coded fragments) then costs one
// attempt per 64 frames instead of one per frame, and one that turns
// compressible again is noticed within 64 frames; a success resets it.
constexpr uint16_t kMaxCompressSkip = 64;

uint64_t splitmix64(uint64_t& s) noexcept {
  uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string millis(Duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

}  // namespace

Session::Session(std::shared_ptr<SessionOwner> owner, const asio::any_io_executor& executor,
                 Clock& clock, std::unique_ptr<Stream> stream, SessionConfig config)
    : owner_(std::move(owner)),
      executor_(executor),
      clock_(clock),
      stream_(std::move(stream)),
      config_(std::move(config)) {
  remote_address_ = stream_->remote_address();
  nonce_state_ = config_.nonce_seed;
  rbuf_.resize(kReadBufferBytes);
  last_rx_ = last_tx_ = clock_.now();
}

Session::~Session() {
  sodium_memzero(rx_key_.data(), rx_key_.size());
  owner_->session_destroyed();
}

void Session::start() {
  const P2pSettings& s = *config_.settings;
  ephemeral_ = std::make_unique<EphemeralKey>();
  Hello h;
  h.role = config_.role;
  h.network_id = s.network_id;
  h.node_id = config_.identity->public_key();
  h.ephemeral = ephemeral_->public_key();
  if (config_.role == Role::initiator && config_.expected) h.expected = *config_.expected;
  // We can always inflate; whether we compress is our own setting.
  h.features = kFeatureZstd;
  h.address = config_.advertised_address;
  my_hello_ = encode_hello(h);

  handshake_timer_ = clock_.make_timer(executor_);
  idle_timer_ = clock_.make_timer(executor_);
  ping_timer_ = clock_.make_timer(executor_);
  linger_timer_ = clock_.make_timer(executor_);
  handshake_timer_->expires_after(s.handshake_timeout, [weak = weak_from_this(), &s] {
    if (auto self = weak.lock()) {
      self->fail(DisconnectReason::handshake_timeout,
                 "no verified session within " + millis(s.handshake_timeout));
    }
  });
  queue_handshake(my_hello_);
  read_more();
}

// ---------------------------------------------------------------- writing --

Session::OutRecord Session::take_buffer(size_t len) {
  OutRecord r;
  r.len = len;
  for (auto it = pool_.begin(); it != pool_.end(); ++it) {
    if (it->capacity >= len) {
      r.buf = std::move(*it);
      pooled_bytes_ -= r.buf.capacity;
      pool_.erase(it);
      return r;
    }
  }
  // Round up so that frames of similar size reuse each other's buffers.
  constexpr size_t kGranule = 4096;
  r.buf.capacity = (len + kGranule - 1) / kGranule * kGranule;
  r.buf.data.reset(new uint8_t[r.buf.capacity]);
  return r;
}

void Session::recycle(Buffer&& buf) {
  const size_t cap = std::max(config_.settings->max_queue_bytes, kIdlePoolBytes);
  if (pool_.size() < kPoolBuffers && pooled_bytes_ + buf.capacity <= cap) {
    pooled_bytes_ += buf.capacity;
    pool_.push_back(std::move(buf));
  }
}

void Session::trim_pool() noexcept {
  while (pooled_bytes_ > kIdlePoolBytes && !pool_.empty()) {
    auto largest =
        std::max_element(pool_.begin(), pool_.end(),
                         [](const Buffer& a, const Buffer& b) { return a.capacity < b.capacity; });
    pooled_bytes_ -= largest->capacity;
    pool_.erase(largest);
  }
}

void Session::enqueue(OutRecord rec) {
  queued_bytes_ += rec.len;
  queue_.push_back(std::move(rec));
  last_tx_ = clock_.now();
  pump_writes();
}

void Session::queue_handshake(ByteSpan message) {
  OutRecord r = take_buffer(kLengthPrefixBytes + message.size());
  put_be<uint32_t>(r.buf.data.get(), static_cast<uint32_t>(message.size()));
  std::memcpy(r.buf.data.get() + kLengthPrefixBytes, message.data(), message.size());
  enqueue(std::move(r));
}

Status Session::send(MessageType type, ByteSpan payload, bool compress) {
  if (state_ != State::established && !(state_ == State::retiring && await_successor_)) {
    return make_error(Errc::not_found, "session with " + short_id(peer_id_) + " is not open");
  }
  return queue_frame(type, payload, compress, false);
}

Status Session::queue_frame(MessageType type, ByteSpan payload, bool compress, bool control) {
  auto r = build_frame(type, payload, compress, control);
  if (!r) return tl::unexpected(r.error());
  ++frames_sent;
  if (state_ == State::retiring && !control) {
    held_bytes_ += r->len;
    held_.push_back(std::move(*r));
    return {};
  }
  enqueue(std::move(*r));
  return {};
}

Result<Session::OutRecord> Session::build_frame(MessageType type, ByteSpan payload, bool compress,
                                                bool control) {
  const P2pSettings& s = *config_.settings;
  if (payload.size() > s.max_frame_payload) {
    return make_error(Errc::invalid_argument, "payload of " + std::to_string(payload.size()) +
                                                  " bytes exceeds max_frame_payload " +
                                                  std::to_string(s.max_frame_payload));
  }
  const size_t raw_total = kLengthPrefixBytes + kFrameHeaderBytes + payload.size() + kSealOverhead;
  // Bounded by the raw size (compression only shrinks it), checked before
  // spending CPU on compression. An empty queue always takes one frame, so a
  // frame larger than the bound can still be sent.
  const size_t frames = queue_.size() + held_.size();
  if (!control && frames != 0 &&
      (queued_bytes() + raw_total > s.max_queue_bytes || frames >= s.max_queue_frames)) {
    refused_busy_ = true;
    return make_error(Errc::busy, "send queue to " + short_id(peer_id_) + " is full (" +
                                      std::to_string(queued_bytes()) + " bytes, " +
                                      std::to_string(frames) + " frames)");
  }
  ByteSpan body = payload;
  uint8_t flags = 0;
  if (compress && zstd_ && s.compression && payload.size() >= s.compress_threshold) {
    CompressBackoff& b = compress_backoff_[to_wire(type)];
    if (b.skip > 0) {
      --b.skip;
    } else if (compress_body(payload, s.compression_level, zstd_ctx_, compressed_)) {
      body = compressed_;
      flags = kFlagZstd;
      b.next = 1;
    } else {
      b.skip = b.next;
      b.next = static_cast<uint16_t>(std::min<int>(b.next * 2, kMaxCompressSkip));
    }
  }
  const size_t plain = kFrameHeaderBytes + body.size();
  const size_t record = plain + kSealOverhead;
  OutRecord r = take_buffer(kLengthPrefixBytes + record);
  r.plain = plain;
  r.data = !control;
  uint8_t* p = r.buf.data.get();
  put_be<uint32_t>(p, static_cast<uint32_t>(record));
  put_frame_header(p + kLengthPrefixBytes + kTagBytes, type, flags);
  if (!body.empty()) {
    std::memcpy(p + kLengthPrefixBytes + kTagBytes + kFrameHeaderBytes, body.data(), body.size());
  }
  return r;
}

void Session::pump_writes() {
  if (writing_ || queue_.empty() || state_ == State::closed) return;
  gather_.clear();
  size_t bytes = 0;
  for (auto& r : queue_) {
    if (gather_.size() == kMaxGatherRecords) break;
    if (!gather_.empty() && bytes + r.len > kMaxGatherBytes) break;
    if (r.plain != 0) {
      // Sealed in queue order, so the stream's nonces follow the wire order.
      seal_.seal_in_place(r.buf.data.get() + kLengthPrefixBytes, r.plain);
      r.plain = 0;
    }
    gather_.emplace_back(r.buf.data.get(), r.len);
    bytes += r.len;
  }
  writing_ = true;
  writing_records_ = gather_.size();
  stream_->async_write(
      gather_, [self = shared_from_this(), n = gather_.size()](std::error_code ec, size_t written) {
        self->on_written(ec, written, n);
      });
}

void Session::on_written(std::error_code ec, size_t /*n*/, size_t records) {
  writing_ = false;
  writing_records_ = 0;
  if (state_ == State::closed) return;
  if (ec) {
    if (state_ == State::retiring) {
      end_retirement("write failed while retiring: " + ec.message());
    } else {
      fail(DisconnectReason::io_error, "write failed: " + ec.message());
    }
    return;
  }
  for (size_t i = 0; i < records && !queue_.empty(); ++i) {
    bytes_sent += queue_.front().len;
    queued_bytes_ -= queue_.front().len;
    recycle(std::move(queue_.front().buf));
    queue_.pop_front();
  }
  if (state_ == State::closing && queue_.empty()) {
    hard_close();
    return;
  }
  if (state_ == State::retiring && queue_.empty()) {
    maybe_finish_retire();
    return;
  }
  pump_writes();
  if (queue_.empty()) trim_pool();
  if (refused_busy_ && state_ == State::established &&
      queued_bytes_ <= config_.settings->max_queue_bytes / 2) {
    refused_busy_ = false;
    owner_->session_send_ready(*this);
  }
}

// ---------------------------------------------------------------- reading --

size_t Session::record_limit() const noexcept {
  return state_ == State::established || state_ == State::retiring
             ? max_session_record(config_.settings->max_frame_payload)
             : kMaxHandshakeRecord;
}

bool Session::reads() const noexcept {
  switch (state_) {
    case State::hello:
    case State::auth:
    case State::established:
      return true;
    case State::retiring:
      return !peer_done_;
    default:
      return false;
  }
}

void Session::read_more() {
  if (reading_ || paused_ > 0 || held_reading_ || !reads()) return;
  MutableByteSpan buf;
  if (big_mode_) {
    buf = MutableByteSpan(big_.data() + big_fill_, big_len_ - big_fill_);
  } else {
    buf = MutableByteSpan(rbuf_.data() + rend_, rbuf_.size() - rend_);
  }
  reading_ = true;
  stream_->async_read_some(
      buf, [self = shared_from_this()](std::error_code ec, size_t n) { self->on_read(ec, n); });
}

void Session::on_read(std::error_code ec, size_t n) {
  reading_ = false;
  if (!reads()) return;
  if (ec && state_ == State::retiring) {
    if (ec == asio::error::eof) {
      // Everything the peer sent here has been read.
      peer_done_ = true;
      maybe_finish_retire();
    } else {
      end_retirement("read failed while retiring: " + ec.message());
    }
    return;
  }
  if (ec) {
    if (ec == asio::error::eof) {
      fail(DisconnectReason::io_error, "peer closed the connection without goodbye");
    } else {
      fail(DisconnectReason::io_error, "read failed: " + ec.message());
    }
    return;
  }
  bytes_received += n;
  if (big_mode_) {
    big_fill_ += n;
  } else {
    rend_ += n;
  }
  process_buffered();
}

void Session::process_buffered() {
  // A pending read targets rbuf_ (or big_): nothing may move until it lands.
  if (reading_) return;
  if (big_mode_) {
    if (big_fill_ < big_len_) {
      read_more();
      return;
    }
    // A complete large record waits like any other while paused or held.
    if (paused_ > 0 || held_reading_ || !reads()) return;
    big_mode_ = false;
    if (!handle_record(big_.data(), big_len_)) return;
  }
  while (paused_ == 0 && !held_reading_ && reads()) {
    const size_t avail = rend_ - rstart_;
    if (avail < kLengthPrefixBytes) break;
    auto len =
        decode_record_length(ByteSpan(rbuf_.data() + rstart_, kLengthPrefixBytes), record_limit());
    if (!len) {
      fail(len.error().code == Errc::invalid_argument ? DisconnectReason::frame_too_large
                                                      : DisconnectReason::protocol_error,
           len.error().message);
      return;
    }
    const size_t total = kLengthPrefixBytes + *len;
    if (avail >= total) {
      uint8_t* rec = rbuf_.data() + rstart_ + kLengthPrefixBytes;
      rstart_ += total;
      if (!handle_record(rec, *len)) return;
      continue;
    }
    if (total > rbuf_.size()) {
      // Larger than the read buffer: give it its own (bounded above by
      // record_limit(), checked before this allocation).
      big_len_ = *len;
      if (big_.size() < big_len_) big_.resize(big_len_);
      big_fill_ = avail - kLengthPrefixBytes;
      std::memcpy(big_.data(), rbuf_.data() + rstart_ + kLengthPrefixBytes, big_fill_);
      rstart_ = rend_ = 0;
      big_mode_ = true;
    }
    break;
  }
  if (!reads()) return;
  if (rstart_ == rend_) {
    rstart_ = rend_ = 0;
  } else if (rstart_ > 0) {
    std::memmove(rbuf_.data(), rbuf_.data() + rstart_, rend_ - rstart_);
    rend_ -= rstart_;
    rstart_ = 0;
  }
  read_more();
}

bool Session::handle_record(uint8_t* rec, size_t len) {
  last_rx_ = clock_.now();
  if ((state_ == State::hello || state_ == State::auth) && is_refusal(ByteSpan(rec, len))) {
    const auto reason = static_cast<DisconnectReason>(rec[1]);
    close_impl(reason, "peer refused the handshake", true, false, true);
    return false;
  }
  switch (state_) {
    case State::hello:
      return handle_hello(ByteSpan(rec, len));
    case State::auth:
      return handle_auth(ByteSpan(rec, len));
    case State::established:
    case State::retiring:
      return handle_frame(rec, len);
    default:
      return false;
  }
}

bool Session::handle_hello(ByteSpan rec) {
  const P2pSettings& s = *config_.settings;
  auto h = decode_hello(rec);
  if (!h) {
    fail(DisconnectReason::handshake_failed, "malformed hello: " + h.error().message);
    return false;
  }
  const Role peer_role = config_.role == Role::initiator ? Role::responder : Role::initiator;
  if (h->role != peer_role) {
    fail(DisconnectReason::handshake_failed, "peer hello claims our own role");
    return false;
  }
  peer_id_ = h->node_id;
  peer_address_ = h->address;
  hello_at_ = clock_.now();
  if (h->network_id != s.network_id) {
    fail(DisconnectReason::network_mismatch,
         "peer is on network " + to_hex(ByteSpan(h->network_id).first(8)) + ", we are on " +
             to_hex(ByteSpan(s.network_id).first(8)));
    return false;
  }
  auto v =
      negotiate_version(kProtocolVersionMin, kProtocolVersionMax, h->min_version, h->max_version);
  if (!v) {
    fail(DisconnectReason::no_common_version,
         "peer speaks versions " + std::to_string(h->min_version) + "-" +
             std::to_string(h->max_version) + ", we speak " + std::to_string(kProtocolVersionMin) +
             "-" + std::to_string(kProtocolVersionMax));
    return false;
  }
  version_ = *v;
  const NodeId& me = config_.identity->public_key();
  if (h->node_id == me) {
    fail(DisconnectReason::self_connection, "reached our own node id");
    return false;
  }
  if (config_.role == Role::initiator && config_.expected && h->node_id != *config_.expected) {
    fail(DisconnectReason::unexpected_peer_id,
         "dialed " + short_id(*config_.expected) + " but reached " + short_id(h->node_id));
    return false;
  }
  if (config_.role == Role::responder && h->expected != NodeId{} && h->expected != me) {
    fail(DisconnectReason::unexpected_peer_id,
         "peer dialed " + short_id(h->expected) + " but reached us (" + short_id(me) + ")");
    return false;
  }
  std::string detail;
  if (auto why = owner_->session_vet(*this, *h, detail)) {
    fail(*why, detail);
    return false;
  }
  auto keys = derive_session_keys(config_.role, *ephemeral_, h->ephemeral);
  if (!keys) {
    fail(DisconnectReason::handshake_failed, keys.error().message);
    return false;
  }
  ephemeral_.reset();  // forward secrecy: the secret half is not needed again
  peer_hello_.assign(rec.begin(), rec.end());
  transcript_ = config_.role == Role::initiator ? transcript_hash(my_hello_, peer_hello_)
                                                : transcript_hash(peer_hello_, my_hello_);
  rx_key_ = keys->rx;
  zstd_ = (h->features & kFeatureZstd) != 0;
  peer_ = std::move(*h);
  Auth a;
  seal_.init(keys->tx, a.stream_header);
  a.signature = config_.identity->sign(auth_message(config_.role, transcript_));
  state_ = State::auth;
  queue_handshake(encode_auth(a));
  return true;
}

bool Session::handle_auth(ByteSpan rec) {
  auto a = decode_auth(rec);
  if (!a) {
    fail(DisconnectReason::handshake_failed, "malformed auth: " + a.error().message);
    return false;
  }
  const Role peer_role = config_.role == Role::initiator ? Role::responder : Role::initiator;
  if (!ed25519_verify(peer_id_, auth_message(peer_role, transcript_), a->signature)) {
    fail(DisconnectReason::bad_signature,
         "handshake signature of " + short_id(peer_id_) + " does not verify");
    return false;
  }
  auto st = open_.init(rx_key_, a->stream_header);
  sodium_memzero(rx_key_.data(), rx_key_.size());
  if (!st) {
    fail(DisconnectReason::handshake_failed, st.error().message);
    return false;
  }
  state_ = State::established;
  handshake_completed_ = true;
  handshake_timer_->cancel();
  established_at_ = last_rx_ = clock_.now();
  arm_idle();
  arm_ping();
  owner_->session_established(*this);
  return reads();
}

bool Session::handle_frame(uint8_t* rec, size_t len) {
  const P2pSettings& s = *config_.settings;
  auto n = open_.open_in_place(rec, len);
  if (!n) {
    fail(DisconnectReason::decrypt_failed, n.error().message);
    return false;
  }
  auto f = decode_frame(ByteSpan(rec + kTagBytes, *n), s.max_frame_payload, scratch_, &zstd_ctx_);
  if (!f) {
    fail(f.error().code == Errc::invalid_argument ? DisconnectReason::frame_too_large
                                                  : DisconnectReason::protocol_error,
         f.error().message);
    return false;
  }
  ++frames_received;
  switch (f->type) {
    case MessageType::ping:
      if (f->payload.size() != kPingBytes) {
        fail(DisconnectReason::protocol_error, "ping must carry 8 bytes");
        return false;
      }
      // A pong is a control frame, queued past the data bounds; a peer that
      // pings while not reading what we queue could grow the queue without
      // end, so past either bound (bytes or frames) it is cut instead.
      if (queued_bytes() > config_.settings->max_queue_bytes ||
          queue_.size() + held_.size() >= config_.settings->max_queue_frames) {
        fail(DisconnectReason::send_queue_overflow,
             "pings while " + std::to_string(queue_.size() + held_.size()) + " frames (" +
                 std::to_string(queued_bytes()) + " bytes) wait for it to read");
        return false;
      }
      // Nothing follows our goodbye on a retiring session, not even a pong.
      if (state_ == State::established) {
        (void)queue_frame(MessageType::pong, f->payload, false, true);
      }
      return true;
    case MessageType::pong:
      if (f->payload.size() != kPingBytes) {
        fail(DisconnectReason::protocol_error, "pong must carry 8 bytes");
        return false;
      }
      if (ping_nonce_ != 0 && get_be<uint64_t>(f->payload.data()) == ping_nonce_) {
        rtt_ = clock_.now() - ping_sent_at_;
        ping_nonce_ = 0;
      }
      return true;
    case MessageType::goodbye: {
      if (f->payload.size() != 1) {
        fail(DisconnectReason::protocol_error, "goodbye must carry 1 byte");
        return false;
      }
      const auto reason = static_cast<DisconnectReason>(f->payload[0]);
      if (state_ == State::retiring) {
        peer_done_ = true;
        maybe_finish_retire();
        return false;
      }
      if (reason == DisconnectReason::duplicate_connection && owner_->session_superseded(*this)) {
        begin_retire(true, "peer retired it for a duplicate session");
        return false;
      }
      close_impl(reason, "peer said goodbye", true, false, true);
      return false;
    }
    default:
      break;
  }
  if (is_control(f->type)) {
    fail(DisconnectReason::protocol_error,
         "unknown control frame type " + std::to_string(to_wire(f->type)));
    return false;
  }
  owner_->session_frame(*this, f->type, f->payload);
  return reads();
}

void Session::pause_reading() { ++paused_; }

void Session::set_held(bool held) {
  if (held_reading_ == held) return;
  held_reading_ = held;
  if (held) return;
  last_rx_ = std::max(last_rx_, clock_.now());
  asio::post(executor_, [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->process_buffered();
  });
}

void Session::resume_reading() {
  if (paused_ == 0) return;
  if (--paused_ > 0) return;
  last_rx_ = std::max(last_rx_, clock_.now());
  asio::post(executor_, [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->process_buffered();
  });
}

// -------------------------------------------------------------- keepalive --

void Session::arm_idle() {
  const Duration left = last_rx_ + config_.settings->idle_timeout - clock_.now();
  idle_timer_->expires_after(left, [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->on_idle();
  });
}

void Session::on_idle() {
  if (state_ != State::established) return;
  const Duration idle = config_.settings->idle_timeout;
  if (paused_ > 0 || held_reading_) {
    // We are not reading, so silence is ours: wait a full period again.
    last_rx_ = clock_.now();
  } else if (clock_.now() - last_rx_ >= idle) {
    fail(DisconnectReason::idle_timeout, "nothing received for " + millis(idle));
    return;
  }
  arm_idle();
}

void Session::arm_ping() {
  const Duration left = last_tx_ + config_.settings->ping_interval - clock_.now();
  ping_timer_->expires_after(left, [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->on_ping_timer();
  });
}

void Session::on_ping_timer() {
  if (state_ != State::established) return;
  if (clock_.now() - last_tx_ >= config_.settings->ping_interval) send_ping();
  arm_ping();
}

void Session::send_ping() {
  uint64_t nonce = 0;
  while (nonce == 0) nonce = splitmix64(nonce_state_);
  uint8_t payload[kPingBytes];
  put_be<uint64_t>(payload, nonce);
  ping_nonce_ = nonce;
  ping_sent_at_ = clock_.now();
  (void)queue_frame(MessageType::ping, ByteSpan(payload, kPingBytes), false, true);
}

// ------------------------------------------------- duplicate connections --

void Session::retire(std::string detail) {
  if (state_ != State::established) return;
  begin_retire(false, std::move(detail));
}

void Session::begin_retire(bool by_peer, std::string detail) {
  state_ = State::retiring;
  retired_by_peer_ = by_peer;
  await_successor_ = by_peer;
  peer_done_ = by_peer;  // the peer's goodbye was its last frame here
  retire_detail_ = std::move(detail);
  set_held(false);  // a retiring session's frames come first: it always reads
  idle_timer_->cancel();
  ping_timer_->cancel();
  // Data frames not yet being written are kept for the successor; control
  // frames (a pong) still go out here, before our goodbye.
  std::deque<OutRecord> keep;
  size_t index = 0;
  for (auto& r : queue_) {
    if (index++ < writing_records_ || !r.data) {
      keep.push_back(std::move(r));
    } else {
      queued_bytes_ -= r.len;
      held_bytes_ += r.len;
      held_.push_back(std::move(r));
    }
  }
  queue_ = std::move(keep);
  const uint8_t r = static_cast<uint8_t>(DisconnectReason::duplicate_connection);
  (void)queue_frame(MessageType::goodbye, ByteSpan(&r, 1), false, true);
  const Duration drain = config_.settings->duplicate_drain_timeout;
  linger_timer_->expires_after(drain, [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->on_drain_timeout();
  });
  CAIRN_LOG(log::Level::debug, "p2p",
            "retiring session with " << short_id(peer_id_) << " at " << remote_address_ << ": "
                                     << retire_detail_ << " (" << held_.size()
                                     << " frames for its successor)");
}

void Session::hand_over(Session& successor) {
  if (state_ != State::retiring) return;
  successor.adopt(std::move(held_), refused_busy_);
  held_.clear();
  held_bytes_ = 0;
  refused_busy_ = false;
  if (await_successor_) {
    await_successor_ = false;
    // Not synchronously: the owner is in the middle of its swap.
    asio::post(executor_, [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->maybe_finish_retire();
    });
  }
}

void Session::adopt(std::deque<OutRecord>&& records, bool refused_busy) {
  for (auto& r : records) {
    uint8_t* frame = r.buf.data.get() + kLengthPrefixBytes + kTagBytes;
    if ((frame[2] & kFlagZstd) != 0 && !zstd_) {
      // Compressed for a session whose peer inflates; this one does not
      // (another implementation behind the same node id): send it raw.
      Bytes inflated;
      auto f = decode_frame(ByteSpan(frame, r.plain), config_.settings->max_frame_payload, inflated,
                            &zstd_ctx_);
      if (f) {
        if (auto raw = build_frame(f->type, f->payload, false, true)) {
          raw->data = true;
          queued_bytes_ += raw->len;
          queue_.push_back(std::move(*raw));
        }
      }
      continue;
    }
    queued_bytes_ += r.len;
    queue_.push_back(std::move(r));
  }
  refused_busy_ = refused_busy_ || refused_busy;
  last_tx_ = clock_.now();
  pump_writes();
}

void Session::end_retirement(std::string detail) {
  if (state_ != State::retiring) return;
  auto self = shared_from_this();
  state_ = State::closing;
  held_.clear();
  held_bytes_ = 0;
  owner_told_ = true;
  owner_->session_closed(*this, DisconnectReason::duplicate_connection, retired_by_peer_, detail);
  hard_close();
}

void Session::on_drain_timeout() {
  if (state_ != State::retiring) return;
  const Duration drain = config_.settings->duplicate_drain_timeout;
  if (paused_ > 0 && !peer_done_) {
    // We are not reading: the silence is ours, not the peer's.
    linger_timer_->expires_after(drain, [weak = weak_from_this()] {
      if (auto s = weak.lock()) s->on_drain_timeout();
    });
    return;
  }
  if (await_successor_) {
    end_retirement("no session replaced it within " + millis(drain));
  } else if (!peer_done_) {
    end_retirement("no goodbye from the peer within " + millis(drain) + " of retiring it (" +
                   retire_detail_ + ")");
  } else {
    end_retirement("our goodbye was not written within " + millis(drain));
  }
}

void Session::maybe_finish_retire() {
  if (state_ != State::retiring || !peer_done_ || await_successor_ || writing_ || !queue_.empty()) {
    return;
  }
  end_retirement(retire_detail_);
}

// ---------------------------------------------------------------- closing --

void Session::fail(DisconnectReason reason, std::string detail) {
  // Tell the peer why (goodbye frame, or a refusal record during the
  // handshake) unless the stream itself is broken.
  close_impl(reason, std::move(detail), false, reason != DisconnectReason::io_error, true);
}

void Session::close(DisconnectReason reason, std::string detail, bool goodbye, bool drop_queued) {
  close_impl(reason, std::move(detail), false, goodbye, drop_queued);
}

void Session::close_impl(DisconnectReason reason, std::string detail, bool by_remote, bool goodbye,
                         bool drop_queued) {
  if (state_ == State::closing || state_ == State::closed) return;
  auto self = shared_from_this();
  const bool was_established = state_ == State::established;
  // A retiring session has said its goodbye already.
  if (state_ == State::retiring) goodbye = false;
  held_.clear();
  held_bytes_ = 0;
  state_ = State::closing;
  if (handshake_timer_) handshake_timer_->cancel();
  if (idle_timer_) idle_timer_->cancel();
  if (ping_timer_) ping_timer_->cancel();
  if (drop_queued) {
    // Keep only what the stream is writing right now.
    while (queue_.size() > writing_records_) {
      queued_bytes_ -= queue_.back().len;
      queue_.pop_back();
    }
  }
  if (goodbye) {
    const uint8_t r = static_cast<uint8_t>(reason);
    if (was_established) {
      (void)queue_frame(MessageType::goodbye, ByteSpan(&r, 1), false, true);
    } else {
      const uint8_t refusal[kRefusalBytes] = {kRefusalMarker, r};
      queue_handshake(ByteSpan(refusal, kRefusalBytes));
    }
  }
  owner_told_ = true;
  owner_->session_closed(*this, reason, by_remote, detail);
  if (state_ == State::closed) return;
  if (queue_.empty() && !writing_) {
    hard_close();
    return;
  }
  if (linger_timer_) {
    linger_timer_->expires_after(kCloseLinger, [weak = weak_from_this()] {
      if (auto s = weak.lock()) s->hard_close();
    });
  } else {
    hard_close();
  }
}

void Session::hard_close() {
  if (state_ == State::closed) return;
  state_ = State::closed;
  for (auto* t :
       {handshake_timer_.get(), idle_timer_.get(), ping_timer_.get(), linger_timer_.get()}) {
    if (t != nullptr) t->cancel();
  }
  // Buffers stay until destruction: a message handler further up the stack
  // may still be looking at a payload in rbuf_, and an aborted write still
  // references its records. Pending handlers complete promptly (aborted) and
  // drop the last references.
  stream_->close();
}

}  // namespace cairn::p2p
