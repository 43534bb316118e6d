#pragma once
// A scripted peer for attack tests: speaks the wire protocol by hand over a
// simulated stream, so a test can forge, tamper, replay or stall at any byte.

#include <cstring>
#include <deque>

#include "frame.hpp"
#include "handshake.hpp"
#include "p2p_test_util.hpp"

namespace cairn::p2p::test {

class RawPeer {
 public:
  RawPeer(SimWorld& w, const std::string& name) : w_(w), transport_(w.net.make_transport(name)) {}

  bool connect(const std::string& address) {
    transport_->connect(address, [this](Result<std::unique_ptr<Stream>> r) {
      if (r) stream_ = std::move(*r);
    });
    if (!w_.clock.run_until([&] { return stream_ != nullptr; }, std::chrono::seconds(1)))
      return false;
    read_loop();
    return true;
  }

  void write(Bytes b) {
    out_.push_back(std::move(b));
    pump();
  }
  void write_record(ByteSpan body) {
    Bytes r(kLengthPrefixBytes);
    put_be<uint32_t>(r.data(), static_cast<uint32_t>(body.size()));
    append(r, body);
    write(std::move(r));
  }

  // The next complete record, waiting up to `limit` of virtual time.
  std::optional<Bytes> read_record(Duration limit = std::chrono::seconds(1)) {
    auto ready = [&] {
      if (in_.size() < kLengthPrefixBytes) return false;
      return in_.size() >= kLengthPrefixBytes + get_be<uint32_t>(in_.data());
    };
    if (!w_.clock.run_until([&] { return ready() || ended_; }, limit) || !ready())
      return std::nullopt;
    const size_t n = get_be<uint32_t>(in_.data());
    Bytes rec(in_.begin() + kLengthPrefixBytes,
              in_.begin() + static_cast<long>(kLengthPrefixBytes + n));
    in_.erase(in_.begin(), in_.begin() + static_cast<long>(kLengthPrefixBytes + n));
    return rec;
  }

  // True once the other side closed the stream (waits up to `limit`).
  bool wait_closed(Duration limit = std::chrono::seconds(1)) {
    return w_.clock.run_until([&] { return ended_; }, limit);
  }

  // Accepts one connection on `address` (instead of connect()): the host
  // dials us, and we play the responder.
  bool listen(const std::string& address) {
    auto bound = transport_->listen(address, [this](std::unique_ptr<Stream> s) {
      if (stream_) return;
      stream_ = std::move(s);
      read_loop();
    });
    return static_cast<bool>(bound);
  }

  // Runs the responder side on the accepted connection: hello claiming
  // `claimed`, auth signed by `signer`, then checks the dialer's auth.
  bool accept_handshake(const NodeId& claimed, const SigningKey& signer) {
    if (!w_.clock.run_until([&] { return stream_ != nullptr; }, std::chrono::seconds(1)))
      return false;
    write_record(hello(claimed, {}, Role::responder));
    auto peer_hello = read_record();
    if (!peer_hello) return false;
    auto h = decode_hello(*peer_hello);
    if (!h) return false;
    peer_id_ = h->node_id;
    auto keys = derive_session_keys(Role::responder, eph_, h->ephemeral);
    if (!keys) return false;
    transcript_ = transcript_hash(*peer_hello, my_hello_);
    Auth a;
    seal_.init(keys->tx, a.stream_header);
    a.signature = signer.sign(auth_message(Role::responder, transcript_));
    write_record(encode_auth(a));
    auto peer_auth = read_record();
    if (!peer_auth) return false;
    auto pa = decode_auth(*peer_auth);
    if (!pa ||
        !ed25519_verify(peer_id_, auth_message(Role::initiator, transcript_), pa->signature)) {
      return false;
    }
    return static_cast<bool>(open_.init(keys->rx, pa->stream_header));
  }

  Bytes hello(const NodeId& claimed, const NodeId& expected = {}, Role role = Role::initiator) {
    Hello h;
    h.role = role;
    h.node_id = claimed;
    h.ephemeral = eph_.public_key();
    h.expected = expected;
    h.features = kFeatureZstd;
    h.address = "evil:1";
    my_hello_ = encode_hello(h);
    return my_hello_;
  }

  // Runs the initiator side: hello claiming `claimed`, auth signed by
  // `signer`. Returns false when the responder did not answer as expected.
  bool handshake(const NodeId& claimed, const SigningKey& signer) {
    return begin_handshake(claimed) && finish_handshake(signer);
  }

  // The first half: sends our hello, reads the responder's hello and auth
  // (it answers our hello without waiting for our auth) and verifies it.
  // The responder then has the session in its auth state.
  bool begin_handshake(const NodeId& claimed) {
    write_record(hello(claimed));
    auto peer_hello = read_record();
    if (!peer_hello) return false;
    auto h = decode_hello(*peer_hello);
    if (!h) return false;
    peer_id_ = h->node_id;
    auto keys = derive_session_keys(Role::initiator, eph_, h->ephemeral);
    if (!keys) return false;
    tx_key_ = keys->tx;
    transcript_ = transcript_hash(my_hello_, *peer_hello);
    auto peer_auth = read_record();
    if (!peer_auth) return false;
    auto pa = decode_auth(*peer_auth);
    if (!pa ||
        !ed25519_verify(peer_id_, auth_message(Role::responder, transcript_), pa->signature)) {
      return false;
    }
    return static_cast<bool>(open_.init(keys->rx, pa->stream_header));
  }

  // The second half: sends our auth signed by `signer`.
  bool finish_handshake(const SigningKey& signer) {
    Auth a;
    seal_.init(tx_key_, a.stream_header);
    a.signature = signer.sign(auth_message(Role::initiator, transcript_));
    write_record(encode_auth(a));
    return true;
  }

  // A complete sealed record (prefix included) carrying one raw frame.
  Bytes sealed(MessageType type, ByteSpan payload) {
    const size_t plain = kFrameHeaderBytes + payload.size();
    Bytes r(kLengthPrefixBytes + plain + kSealOverhead);
    put_be<uint32_t>(r.data(), static_cast<uint32_t>(plain + kSealOverhead));
    put_frame_header(r.data() + kLengthPrefixBytes + kTagBytes, type, 0);
    if (!payload.empty()) {
      std::memcpy(r.data() + kLengthPrefixBytes + kTagBytes + kFrameHeaderBytes, payload.data(),
                  payload.size());
    }
    seal_.seal_in_place(r.data() + kLengthPrefixBytes, plain);
    return r;
  }

  // Opens a sealed record received from the host (for goodbye checks).
  std::optional<std::pair<MessageType, Bytes>> open(Bytes rec) {
    auto n = open_.open_in_place(rec.data(), rec.size());
    if (!n) return std::nullopt;
    Bytes scratch;
    auto f = decode_frame(ByteSpan(rec.data() + 1, *n), 1u << 24, scratch, nullptr);
    if (!f) return std::nullopt;
    return std::make_pair(f->type, Bytes(f->payload.begin(), f->payload.end()));
  }

  bool ended() const { return ended_; }
  const NodeId& peer_id() const { return peer_id_; }
  void close() {
    if (stream_) stream_->close();
  }

 private:
  void read_loop() {
    stream_->async_read_some(buf_, [this](std::error_code ec, size_t n) {
      if (ec) {
        ended_ = true;
        return;
      }
      in_.insert(in_.end(), buf_.begin(), buf_.begin() + static_cast<long>(n));
      read_loop();
    });
  }
  void pump() {
    if (writing_ || out_.empty() || !stream_) return;
    writing_ = true;
    current_ = ByteSpan(out_.front());
    stream_->async_write(std::span<const ByteSpan>(&current_, 1), [this](std::error_code, size_t) {
      writing_ = false;
      out_.pop_front();
      pump();
    });
  }

  SimWorld& w_;
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<Stream> stream_;
  std::array<uint8_t, 4096> buf_{};
  Bytes in_;
  std::deque<Bytes> out_;
  ByteSpan current_;
  bool writing_ = false;
  bool ended_ = false;
  EphemeralKey eph_;
  Bytes my_hello_;
  Hash32 transcript_{};
  std::array<uint8_t, 32> tx_key_{};
  NodeId peer_id_;
  SealState seal_;
  OpenState open_;
};

}  // namespace cairn::p2p::test
