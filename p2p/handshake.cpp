#include "handshake.hpp"

#include <algorithm>
#include <cstring>

namespace cairn::p2p {
namespace {
constexpr std::string_view kTranscriptContext = "cairn/p2p/transcript/v1";
constexpr std::string_view kAuthContext = "cairn/p2p/handshake/v1";

bool printable(ByteSpan b) noexcept {
  return std::all_of(b.begin(), b.end(), [](uint8_t c) { return c >= 0x21 && c <= 0x7e; });
}
}  // namespace

Bytes encode_hello(const Hello& h) {
  const size_t addr_len = std::min(h.address.size(), kMaxAddressBytes);
  Bytes out;
  out.reserve(kHelloFixedBytes + addr_len);
  out.insert(out.end(), kHelloMagic.begin(), kHelloMagic.end());
  out.push_back(static_cast<uint8_t>(h.role));
  append_be<uint16_t>(out, h.min_version);
  append_be<uint16_t>(out, h.max_version);
  append(out, h.network_id);
  append(out, h.node_id.bytes);
  append(out, h.ephemeral);
  append(out, h.expected.bytes);
  append_be<uint32_t>(out, h.features);
  out.push_back(static_cast<uint8_t>(addr_len));
  append(out, as_bytes(std::string_view(h.address).substr(0, addr_len)));
  return out;
}

Result<Hello> decode_hello(ByteSpan bytes) noexcept {
  ByteReader r(bytes);
  std::array<uint8_t, 8> magic{};
  if (!r.read(magic)) return make_error(Errc::corruption, "hello is truncated");
  if (magic != kHelloMagic)
    return make_error(Errc::corruption, "not a cairn p2p hello (bad magic)");
  Hello h;
  uint8_t role = 0;
  uint8_t addr_len = 0;
  if (!r.read_be(role) || !r.read_be(h.min_version) || !r.read_be(h.max_version) ||
      !r.read(h.network_id) || !r.read(h.node_id.bytes) || !r.read(h.ephemeral) ||
      !r.read(h.expected.bytes) || !r.read_be(h.features) || !r.read_be(addr_len)) {
    return make_error(Errc::corruption, "hello is truncated");
  }
  if (role > 1) return make_error(Errc::corruption, "hello has an unknown role");
  h.role = static_cast<Role>(role);
  if (h.min_version == 0 || h.min_version > h.max_version) {
    return make_error(Errc::corruption, "hello has an empty version range");
  }
  ByteSpan addr;
  if (!r.view(addr_len, addr)) return make_error(Errc::corruption, "hello address is truncated");
  if (!printable(addr)) return make_error(Errc::corruption, "hello address is not printable ASCII");
  try {
    h.address.assign(addr.begin(), addr.end());
  } catch (...) {
    return make_error(Errc::internal, "out of memory");
  }
  return h;
}

Bytes encode_auth(const Auth& a) {
  Bytes out;
  out.reserve(kAuthBytes);
  append(out, a.signature);
  append(out, a.stream_header);
  return out;
}

Result<Auth> decode_auth(ByteSpan bytes) noexcept {
  if (bytes.size() != kAuthBytes) {
    return make_error(Errc::corruption, "auth message must be exactly 88 bytes");
  }
  Auth a;
  ByteReader r(bytes);
  r.read(a.signature);
  r.read(a.stream_header);
  return a;
}

Hash32 transcript_hash(ByteSpan initiator_hello, ByteSpan responder_hello) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  const ByteSpan ctx = as_bytes(kTranscriptContext);
  crypto_generichash_update(&st, ctx.data(), ctx.size());
  uint8_t len[4];
  put_be<uint32_t>(len, static_cast<uint32_t>(initiator_hello.size()));
  crypto_generichash_update(&st, len, 4);
  crypto_generichash_update(&st, initiator_hello.data(), initiator_hello.size());
  put_be<uint32_t>(len, static_cast<uint32_t>(responder_hello.size()));
  crypto_generichash_update(&st, len, 4);
  crypto_generichash_update(&st, responder_hello.data(), responder_hello.size());
  Hash32 out{};
  crypto_generichash_final(&st, out.data(), out.size());
  return out;
}

Bytes auth_message(Role signer, const Hash32& transcript) {
  Bytes m;
  append(m, as_bytes(kAuthContext));
  m.push_back(static_cast<uint8_t>(signer));
  append(m, transcript);
  return m;
}

std::optional<uint16_t> negotiate_version(uint16_t min_a, uint16_t max_a, uint16_t min_b,
                                          uint16_t max_b) noexcept {
  const uint16_t hi = std::min(max_a, max_b);
  const uint16_t lo = std::max(min_a, min_b);
  if (hi < lo) return std::nullopt;
  return hi;
}

EphemeralKey::EphemeralKey() {
  ensure_sodium();
  crypto_kx_keypair(pk_.data(), sk_.data());
}

EphemeralKey::~EphemeralKey() { sodium_memzero(sk_.data(), sk_.size()); }

Result<SessionKeys> derive_session_keys(Role mine, const EphemeralKey& key,
                                        const std::array<uint8_t, 32>& peer_ephemeral) noexcept {
  SessionKeys k;
  const int rc =
      mine == Role::initiator
          ? crypto_kx_client_session_keys(k.rx.data(), k.tx.data(), key.public_key().data(),
                                          key.secret(), peer_ephemeral.data())
          : crypto_kx_server_session_keys(k.rx.data(), k.tx.data(), key.public_key().data(),
                                          key.secret(), peer_ephemeral.data());
  if (rc != 0) {
    return make_error(Errc::verification_failed, "peer ephemeral key is not a valid X25519 key");
  }
  return k;
}

void SealState::init(
    const std::array<uint8_t, 32>& key,
    std::array<uint8_t, crypto_secretstream_xchacha20poly1305_HEADERBYTES>& header) noexcept {
  crypto_secretstream_xchacha20poly1305_init_push(&state_, header.data(), key.data());
}

void SealState::seal_in_place(uint8_t* out, size_t plaintext_len) noexcept {
  // libsodium writes the ciphertext to out + 1 from the message pointer; with
  // both equal the XOR runs in place, which its stream cipher supports.
  crypto_secretstream_xchacha20poly1305_push(&state_, out, nullptr, out + 1, plaintext_len, nullptr,
                                             0, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
}

Status OpenState::init(
    const std::array<uint8_t, 32>& key,
    const std::array<uint8_t, crypto_secretstream_xchacha20poly1305_HEADERBYTES>& header) noexcept {
  if (crypto_secretstream_xchacha20poly1305_init_pull(&state_, header.data(), key.data()) != 0) {
    return make_error(Errc::verification_failed, "invalid secretstream header");
  }
  return {};
}

Result<size_t> OpenState::open_in_place(uint8_t* record, size_t record_len) noexcept {
  if (record_len < crypto_secretstream_xchacha20poly1305_ABYTES) {
    return make_error(Errc::verification_failed, "record shorter than its authenticator");
  }
  unsigned long long mlen = 0;
  unsigned char tag = 0;
  // The MAC is checked over the ciphertext before anything is decrypted; the
  // plaintext then overwrites the ciphertext at record + 1.
  if (crypto_secretstream_xchacha20poly1305_pull(&state_, record + 1, &mlen, &tag, record,
                                                 record_len, nullptr, 0) != 0) {
    return make_error(Errc::verification_failed,
                      "frame failed authentication (tampered, replayed or reordered)");
  }
  if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
    return make_error(Errc::verification_failed, "frame carries an unexpected secretstream tag");
  }
  return static_cast<size_t>(mlen);
}

}  // namespace cairn::p2p
