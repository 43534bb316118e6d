#pragma once
// Helpers shared by the contracts tests: deterministic keys and commitments
// from the seeded test RNG, and small network parameters.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include "cairn/contracts/chain.hpp"
#include "cairn/contracts/contract.hpp"
#include "cairn/contracts/tx.hpp"
#include "cairn/core/ed25519.hpp"
#include "cairn/erasure/params.hpp"
#include "support/test_util.hpp"

namespace cairn::contracts::test {

// The dev chain's genesis time in the chain tests (unix ms).
inline constexpr uint64_t kStart = 1'700'000'000'000;

// Waits (blocking, in real time) for the receipt of `tx_hash`; Errc::timeout
// when it has not appeared in time. The node never blocks on a receipt (its
// chain client follows them on its executor): only tests wait like this.
inline Result<Receipt> wait_for_receipt(Chain& chain, const Hash32& tx_hash,
                                        std::chrono::milliseconds timeout) {
  struct Waiter {
    std::mutex mu;
    std::condition_variable cv;
    uint64_t heads = 0;
  };
  auto waiter = std::make_shared<Waiter>();
  // Subscribe before the first look so a block sealed in between still wakes us.
  Subscription sub = chain.subscribe_heads([waiter](const BlockHeader&) {
    std::lock_guard lock(waiter->mu);
    ++waiter->heads;
    waiter->cv.notify_all();
  });
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  uint64_t seen = 0;
  for (;;) {
    auto r = chain.receipt(tx_hash);
    if (!r) return tl::unexpected(r.error());
    if (*r) return std::move(**r);
    std::unique_lock lock(waiter->mu);
    // Also re-check every 250 ms: a backend may deliver heads late.
    const auto wake =
        std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(250));
    waiter->cv.wait_until(lock, wake, [&] { return waiter->heads != seen; });
    seen = waiter->heads;
    if (std::chrono::steady_clock::now() >= deadline) {
      lock.unlock();
      auto last = chain.receipt(tx_hash);
      if (last && *last) return std::move(**last);
      return make_error(Errc::timeout, "transaction " + to_hex(tx_hash) + " not included within " +
                                           std::to_string(timeout.count()) + " ms");
    }
  }
}

inline Result<Receipt> submit_and_wait(Chain& chain, ByteSpan signed_tx,
                                       std::chrono::milliseconds timeout) {
  auto hash = chain.submit(signed_tx);
  if (!hash) return tl::unexpected(hash.error());
  return wait_for_receipt(chain, *hash, timeout);
}

inline SigningKey key_from(std::mt19937_64& rng) {
  std::array<uint8_t, 32> seed{};
  for (auto& b : seed) b = static_cast<uint8_t>(rng());
  return SigningKey::from_seed(seed);
}

inline BlobId commitment_from(std::mt19937_64& rng) {
  BlobId id;
  for (auto& b : id.bytes) b = static_cast<uint8_t>(rng());
  return id;
}

inline Hash32 hash_from(std::mt19937_64& rng) { return commitment_from(rng).bytes; }

// Small shards so tests cross shard boundaries quickly.
inline erasure::NetworkParams small_params() {
  erasure::NetworkParams p;
  p.blobs_per_shard = 4;
  p.epoch_blocks = 8;
  p.deadline_blocks = 2;
  return p;
}

}  // namespace cairn::contracts::test
