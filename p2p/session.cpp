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
    auto largest = std::max_element(pool_.begin(), pool_.end(), [](const Buffer& a, const Buffer& b) {
      return a.capacity < b.capacity;
    });
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
  if (state_ != State::established) {
    return make_error(Errc::not_found, "session with " + short_id(peer_id_) + " is not open");
  }
  return queue_frame(type, payload, compress, false);
}

Status Session::queue_frame(MessageType type, ByteSpan payload, bool compress, bool control) {
  const P2pSettings& s = *config_.settings;
  if (payload.size() > s.max_frame_payload) {
    return make_error(Errc::invalid_argument,
                      "payload of " + std::to_string(payload.size()) +
                          " bytes exceeds max_frame_payload " + std::to_string(s.max_frame_payload));
  }
  const size_t raw_total = kLengthPrefixBytes + kFrameHeaderBytes + payload.size() + kSealOverhead;
  // Bounded by the raw size (compression only shrinks it), checked before
  // spending CPU on compression. An empty queue always takes one frame, so a
  // frame larger than the bound can still be sent.
  if (!control && !queue_.empty() &&
      (queued_bytes_ + raw_total > s.max_queue_bytes || queue_.size() >= s.max_queue_frames)) {
    if (!control) refused_busy_ = true;
    return make_error(Errc::busy, "send queue to " + short_id(peer_id_) + " is full (" +
                                      std::to_string(queued_bytes_) + " bytes, " +
                                      std::to_string(queue_.size()) + " frames)");
  }
  ByteSpan body = payload;
  uint8_t flags = 0;
  if (compress && zstd_ && s.compression && payload.size() >= s.compress_threshold &&
      compress_body(payload, s.compression_level, zstd_ctx_, compressed_)) {
    body = compressed_;
    flags = kFlagZstd;
  }
  const size_t plain = kFrameHeaderBytes + body.size();
  const size_t record = plain + kSealOverhead;
  OutRecord r = take_buffer(kLengthPrefixBytes + record);
  uint8_t* p = r.buf.data.get();
  put_be<uint32_t>(p, static_cast<uint32_t>(record));
  put_frame_header(p + kLengthPrefixBytes + kTagBytes, type, flags);
  if (!body.empty()) {
    std::memcpy(p + kLengthPrefixBytes + kTagBytes + kFrameHeaderBytes, body.data(), body.size());
  }
  seal_.seal_in_place(p + kLengthPrefixBytes, plain);
  ++frames_sent;
  enqueue(std::move(r));
  return {};
}

void Session::pump_writes() {
  if (writing_ || queue_.empty() || state_ == State::closed) return;
  gather_.clear();
  size_t bytes = 0;
  for (const auto& r : queue_) {
    if (gather_.size() == kMaxGatherRecords) break;
    if (!gather_.empty() && bytes + r.len > kMaxGatherBytes) break;
    gather_.emplace_back(r.buf.data.get(), r.len);
    bytes += r.len;
  }
  writing_ = true;
  writing_records_ = gather_.size();
  stream_->async_write(gather_, [self = shared_from_this(), n = gather_.size()](
                                    std::error_code ec, size_t written) {
    self->on_written(ec, written, n);
  });
}

void Session::on_written(std::error_code ec, size_t /*n*/, size_t records) {
  writing_ = false;
  writing_records_ = 0;
  if (state_ == State::closed) return;
  if (ec) {
    fail(DisconnectReason::io_error, "write failed: " + ec.message());
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
  return state_ == State::established ? max_session_record(config_.settings->max_frame_payload)
                                      : kMaxHandshakeRecord;
}

void Session::read_more() {
  if (reading_ || paused_ > 0) return;
  if (state_ == State::closing || state_ == State::closed) return;
  MutableByteSpan buf;
  if (big_mode_) {
    buf = MutableByteSpan(big_.data() + big_fill_, big_len_ - big_fill_);
  } else {
    buf = MutableByteSpan(rbuf_.data() + rend_, rbuf_.size() - rend_);
  }
  reading_ = true;
  stream_->async_read_some(buf, [self = shared_from_this()](std::error_code ec, size_t n) {
    self->on_read(ec, n);
  });
}

void Session::on_read(std::error_code ec, size_t n) {
  reading_ = false;
  if (state_ == State::closing || state_ == State::closed) return;
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
    if (big_fill_ < big_len_) {
      read_more();
      return;
    }
    big_mode_ = false;
    if (!handle_record(big_.data(), big_len_)) return;
  } else {
    rend_ += n;
  }
  process_buffered();
}

void Session::process_buffered() {
  // A pending read targets rbuf_ (or big_): nothing may move until it lands.
  if (reading_ || big_mode_) return;
  while (paused_ == 0 && (state_ == State::hello || state_ == State::auth ||
                          state_ == State::established)) {
    const size_t avail = rend_ - rstart_;
    if (avail < kLengthPrefixBytes) break;
    auto len = decode_record_length(ByteSpan(rbuf_.data() + rstart_, kLengthPrefixBytes),
                                    record_limit());
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
  if (state_ == State::closing || state_ == State::closed) return;
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
    case State::hello: return handle_hello(ByteSpan(rec, len));
    case State::auth: return handle_auth(ByteSpan(rec, len));
    case State::established: return handle_frame(rec, len);
    default: return false;
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
  if (h->network_id != s.network_id) {
    fail(DisconnectReason::network_mismatch,
         "peer is on network " + to_hex(ByteSpan(h->network_id).first(8)) + ", we are on " +
             to_hex(ByteSpan(s.network_id).first(8)));
    return false;
  }
  auto v = negotiate_version(kProtocolVersionMin, kProtocolVersionMax, h->min_version,
                             h->max_version);
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
  return state_ == State::established;
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
      (void)queue_frame(MessageType::pong, f->payload, false, true);
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
  return state_ == State::established;
}

void Session::pause_reading() { ++paused_; }

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
  if (paused_ > 0) {
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

// ---------------------------------------------------------------- closing --

void Session::fail(DisconnectReason reason, std::string detail) {
  // Tell the peer why (goodbye frame, or a refusal record during the
  // handshake) unless the stream itself is broken.
  close_impl(reason, std::move(detail), false, reason != DisconnectReason::io_error, true);
}

void Session::close(DisconnectReason reason, std::string detail, bool goodbye, bool drop_queued) {
  close_impl(reason, std::move(detail), false, goodbye, drop_queued);
}

void Session::close_impl(DisconnectReason reason, std::string detail, bool by_remote,
                         bool goodbye, bool drop_queued) {
  if (state_ == State::closing || state_ == State::closed) return;
  auto self = shared_from_this();
  const bool was_established = state_ == State::established;
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
  for (auto* t : {handshake_timer_.get(), idle_timer_.get(), ping_timer_.get(), linger_timer_.get()}) {
    if (t != nullptr) t->cancel();
  }
  // Buffers stay until destruction: a message handler further up the stack
  // may still be looking at a payload in rbuf_, and an aborted write still
  // references its records. Pending handlers complete promptly (aborted) and
  // drop the last references.
  stream_->close();
}

}  // namespace cairn::p2p
