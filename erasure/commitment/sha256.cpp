#include "cairn/erasure/sha256.hpp"

// The low-level SHA256_* calls are deprecated in OpenSSL 3 in favour of EVP,
// but EVP costs ~30-65 ns of dispatch per digest (measured on the bench
// machine: a 65-byte Merkle node takes 90 ns low-level, 119-156 ns via EVP).
// A blob commitment hashes ~400 short messages, so that overhead alone would
// cost 10-20% of commitment throughput. Both paths run the same assembly
// (SHA-NI / AVX2 selected at run time by OpenSSL).
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

namespace cairn::erasure {

struct Sha256::Impl {
  SHA256_CTX ctx{};
  Impl() { SHA256_Init(&ctx); }
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

Sha256& Sha256::update(ByteSpan data) {
  SHA256_Update(&impl_->ctx, data.data(), data.size());
  return *this;
}

Hash32 Sha256::finish() {
  Hash32 out{};
  SHA256_Final(out.data(), &impl_->ctx);
  SHA256_Init(&impl_->ctx);
  return out;
}

Hash32 sha256(ByteSpan data) {
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, data.data(), data.size());
  Hash32 out{};
  SHA256_Final(out.data(), &ctx);
  return out;
}

Hash32 sha256(std::initializer_list<ByteSpan> parts) {
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  for (ByteSpan p : parts) SHA256_Update(&ctx, p.data(), p.size());
  Hash32 out{};
  SHA256_Final(out.data(), &ctx);
  return out;
}

}  // namespace cairn::erasure
