#pragma once
// Hash-table hashing for attacker-chosen 32-byte keys (commitments are free
// fields of a PutBlob): SipHash-2-4 under a per-process random key, so
// nobody can craft keys that pile into one bucket. Iteration order of such
// tables is never observable in results (determinism does not depend on it).

#include <sodium.h>

#include <array>
#include <cstddef>

#include "cairn/core/ed25519.hpp"
#include "cairn/core/ids.hpp"

namespace cairn::contracts {

struct KeyedHash {
  static const std::array<uint8_t, crypto_shorthash_KEYBYTES>& key() {
    static const auto k = [] {
      ensure_sodium();
      std::array<uint8_t, crypto_shorthash_KEYBYTES> v{};
      randombytes_buf(v.data(), v.size());
      return v;
    }();
    return k;
  }
  size_t operator()(const Hash32& h) const noexcept {
    uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, h.data(), h.size(), key().data());
    size_t v = 0;
    for (uint8_t b : out) v = (v << 8) | b;
    return v;
  }
  template <class Tag>
  size_t operator()(const Id32<Tag>& id) const noexcept {
    return (*this)(id.bytes);
  }
};

}  // namespace cairn::contracts
