#pragma once
// Handshake messages, transcript, signatures, session keys and the two
// secretstream states of a session (docs/wire-protocol.md, "Handshake").
//
// Both ends send a Hello as soon as the stream opens; on receiving the
// other's Hello each sends an Auth (signature over the transcript of both
// Hellos, plus the header of its sending secretstream); a session is
// established once the peer's Auth verified.

#include <sodium.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "cairn/core/bytes.hpp"
#include "cairn/core/ed25519.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"

namespace cairn::p2p {

// Protocol versions this build speaks (inclusive range).
inline constexpr uint16_t kProtocolVersionMin = 1;
inline constexpr uint16_t kProtocolVersionMax = 1;

inline constexpr std::array<uint8_t, 8> kHelloMagic = {'c', 'a', 'i', 'r', 'n', 'p', '2', 'p'};
inline constexpr size_t kHelloFixedBytes = 146;  // everything before the address bytes
inline constexpr size_t kMaxAddressBytes = 255;
inline constexpr size_t kAuthBytes = 64 + crypto_secretstream_xchacha20poly1305_HEADERBYTES;  // 88
inline constexpr uint32_t kFeatureZstd = 0x00000001;

// A refusal replaces a Hello or an Auth when one side gives up during the
// handshake: exactly 2 bytes, 0x00 then the DisconnectReason, then the sender
// closes. Unauthenticated, so it only ever ends a handshake that anyone on the
// path could end anyway; it carries no penalty.
inline constexpr size_t kRefusalBytes = 2;
inline constexpr uint8_t kRefusalMarker = 0x00;
inline bool is_refusal(ByteSpan record) noexcept {
  return record.size() == kRefusalBytes && record[0] == kRefusalMarker;
}

// Wire format: do not renumber.
enum class Role : uint8_t { initiator = 0, responder = 1 };

struct Hello {
  Role role = Role::initiator;
  uint16_t min_version = kProtocolVersionMin;
  uint16_t max_version = kProtocolVersionMax;
  Hash32 network_id{};
  NodeId node_id;
  std::array<uint8_t, 32> ephemeral{};  // X25519 public key (crypto_kx)
  NodeId expected;                      // initiator: the id it dialed, or zero; responder: zero
  uint32_t features = 0;
  std::string address;  // advertised dial address, printable ASCII
};

Bytes encode_hello(const Hello& h);
// Parses a Hello. Bytes after the address are extensions of later versions:
// ignored here but covered by the transcript. corruption on anything malformed.
Result<Hello> decode_hello(ByteSpan bytes) noexcept;

struct Auth {
  Signature signature{};
  std::array<uint8_t, crypto_secretstream_xchacha20poly1305_HEADERBYTES> stream_header{};
};
Bytes encode_auth(const Auth& a);
Result<Auth> decode_auth(ByteSpan bytes) noexcept;

// BLAKE2b-256("cairn/p2p/transcript/v1" | u32 len | initiator hello | u32 len | responder hello)
Hash32 transcript_hash(ByteSpan initiator_hello, ByteSpan responder_hello);
// The bytes each side signs: "cairn/p2p/handshake/v1" | role | transcript.
// The role byte keeps one side's signature from being reflected as the other's.
Bytes auth_message(Role signer, const Hash32& transcript);

// The highest version both ranges contain, or nullopt.
std::optional<uint16_t> negotiate_version(uint16_t min_a, uint16_t max_a, uint16_t min_b,
                                          uint16_t max_b) noexcept;

// A per-connection X25519 key pair (crypto_kx). Wiped on destruction.
class EphemeralKey {
 public:
  EphemeralKey();
  ~EphemeralKey();
  EphemeralKey(const EphemeralKey&) = delete;
  EphemeralKey& operator=(const EphemeralKey&) = delete;
  const std::array<uint8_t, 32>& public_key() const noexcept { return pk_; }
  const uint8_t* secret() const noexcept { return sk_.data(); }

 private:
  std::array<uint8_t, 32> pk_{};
  std::array<uint8_t, 32> sk_{};
};

struct SessionKeys {
  std::array<uint8_t, 32> rx{};
  std::array<uint8_t, 32> tx{};
  ~SessionKeys() {
    sodium_memzero(rx.data(), rx.size());
    sodium_memzero(tx.data(), tx.size());
  }
};

// crypto_kx: the initiator is the kx "client", the responder the "server",
// so initiator.tx == responder.rx. verification_failed when the peer's
// ephemeral key is a low-order point.
Result<SessionKeys> derive_session_keys(Role mine, const EphemeralKey& key,
                                        const std::array<uint8_t, 32>& peer_ephemeral) noexcept;

// The sending secretstream of a session.
class SealState {
 public:
  // Initialises from the tx key and writes the header the peer needs.
  void init(
      const std::array<uint8_t, 32>& key,
      std::array<uint8_t, crypto_secretstream_xchacha20poly1305_HEADERBYTES>& header) noexcept;
  // Seals in place: `out` points at the tag byte, the plaintext already sits
  // at out + 1 with length `plaintext_len`; the MAC is written after it, so
  // out must have plaintext_len + kSealOverhead bytes.
  void seal_in_place(uint8_t* out, size_t plaintext_len) noexcept;
  ~SealState() { sodium_memzero(&state_, sizeof state_); }

 private:
  crypto_secretstream_xchacha20poly1305_state state_{};
};

// The receiving secretstream of a session.
class OpenState {
 public:
  Status init(const std::array<uint8_t, 32>& key,
              const std::array<uint8_t, crypto_secretstream_xchacha20poly1305_HEADERBYTES>&
                  header) noexcept;
  // Authenticates and decrypts one record in place; the plaintext is then at
  // record + 1 with the returned length. verification_failed when the MAC
  // fails (tampered, replayed, reordered or truncated) or the tag is not
  // TAG_MESSAGE; the state is then unusable and the session must close.
  Result<size_t> open_in_place(uint8_t* record, size_t record_len) noexcept;
  ~OpenState() { sodium_memzero(&state_, sizeof state_); }

 private:
  crypto_secretstream_xchacha20poly1305_state state_{};
};

}  // namespace cairn::p2p
