#pragma once
// Helpers shared by the contracts tests: deterministic keys and commitments
// from the seeded test RNG, and small network parameters.

#include <random>

#include "cairn/contracts/contract.hpp"
#include "cairn/contracts/tx.hpp"
#include "cairn/core/ed25519.hpp"
#include "cairn/erasure/params.hpp"
#include "support/test_util.hpp"

namespace cairn::contracts::test {

// The dev chain's genesis time in the chain tests (unix ms).
inline constexpr uint64_t kStart = 1'700'000'000'000;

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
