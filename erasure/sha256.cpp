#include "cairn/erasure/sha256.hpp"

#include <openssl/evp.h>

#include <stdexcept>

namespace cairn::erasure {
namespace {

// The digest implementation is fetched once per process; fetching per call
// costs more than hashing a 64-byte Merkle node.
const EVP_MD* sha256_md() {
  static EVP_MD* md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (m == nullptr) throw std::runtime_error("OpenSSL: SHA256 unavailable");
    return m;
  }();
  return md;
}

}  // namespace

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
  bool started = false;
  Impl() : ctx(EVP_MD_CTX_new()) {
    if (ctx == nullptr) throw std::bad_alloc();
  }
  ~Impl() { EVP_MD_CTX_free(ctx); }
  void start() {
    if (!started) {
      EVP_DigestInit_ex2(ctx, sha256_md(), nullptr);
      started = true;
    }
  }
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

Sha256& Sha256::update(ByteSpan data) {
  impl_->start();
  EVP_DigestUpdate(impl_->ctx, data.data(), data.size());
  return *this;
}

Hash32 Sha256::finish() {
  impl_->start();
  Hash32 out{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->ctx, out.data(), &len);
  impl_->started = false;
  return out;
}

namespace {
Sha256& thread_hasher() {
  thread_local Sha256 hasher;
  return hasher;
}
}  // namespace

Hash32 sha256(ByteSpan data) { return thread_hasher().update(data).finish(); }

Hash32 sha256(std::initializer_list<ByteSpan> parts) {
  Sha256& h = thread_hasher();
  for (ByteSpan p : parts) h.update(p);
  return h.finish();
}

}  // namespace cairn::erasure
