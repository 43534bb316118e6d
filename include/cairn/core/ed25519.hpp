#pragma once
// ed25519 signatures (libsodium), shared by transactions, handshakes and
// challenge responses. Keys are 32-byte seeds; the public key is the NodeId.

#include <sodium.h>

#include <array>
#include <stdexcept>

#include "cairn/core/bytes.hpp"
#include "cairn/core/ids.hpp"

namespace cairn {

using Signature = std::array<uint8_t, 64>;

inline void ensure_sodium() {
  static const int rc = sodium_init();
  if (rc < 0) throw std::runtime_error("libsodium failed to initialise");
}

// An ed25519 key pair. Owns the secret; wipes it on destruction.
class SigningKey {
 public:
  static SigningKey generate() {
    ensure_sodium();
    std::array<uint8_t, 32> seed{};
    randombytes_buf(seed.data(), seed.size());
    SigningKey k = from_seed(seed);
    sodium_memzero(seed.data(), seed.size());
    return k;
  }
  static SigningKey from_seed(const std::array<uint8_t, 32>& seed) {
    ensure_sodium();
    SigningKey k;
    crypto_sign_seed_keypair(k.public_.bytes.data(), k.secret_.data(), seed.data());
    return k;
  }

  SigningKey(const SigningKey&) = default;
  SigningKey& operator=(const SigningKey&) = default;
  ~SigningKey() { sodium_memzero(secret_.data(), secret_.size()); }

  const NodeId& public_key() const noexcept { return public_; }
  std::array<uint8_t, 32> seed() const {
    std::array<uint8_t, 32> s{};
    crypto_sign_ed25519_sk_to_seed(s.data(), secret_.data());
    return s;
  }
  Signature sign(ByteSpan message) const {
    Signature sig{};
    crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), secret_.data());
    return sig;
  }

 private:
  SigningKey() = default;
  std::array<uint8_t, 64> secret_{};
  NodeId public_{};
};

inline bool ed25519_verify(const NodeId& key, ByteSpan message, const Signature& sig) noexcept {
  if (sodium_init() < 0) return false;
  return crypto_sign_verify_detached(sig.data(), message.data(), message.size(),
                                     key.bytes.data()) == 0;
}

}  // namespace cairn
