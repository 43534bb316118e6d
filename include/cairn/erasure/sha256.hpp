#pragma once
// SHA-256 (OpenSSL's SHA-NI/AVX2 code via its low-level API: see sha256.cpp
// for why not EVP). The one hash every commitment, tree and id uses.

#include <initializer_list>
#include <memory>

#include "cairn/core/bytes.hpp"

namespace cairn::erasure {

// Incremental hasher. Not thread-safe; cheap to construct, reusable after finish().
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  Sha256& update(ByteSpan data);
  Sha256& update(uint8_t byte) { return update(ByteSpan(&byte, 1)); }
  // Returns the digest and resets the hasher for reuse.
  Hash32 finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

Hash32 sha256(ByteSpan data);
// SHA-256 over the concatenation of parts (no length framing: callers that
// hash variable-length parts must frame them themselves).
Hash32 sha256(std::initializer_list<ByteSpan> parts);

}  // namespace cairn::erasure
