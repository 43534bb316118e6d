#pragma once
// An append-only Merkle log that answers roots and inclusion proofs for any
// earlier size, so the chain can prove "commitment c was blob i in blobs_root
// of block b" for old blocks too. Same tree shape as erasure::merkle_root
// (RFC 6962), so its roots equal MerkleFrontier's.
//
// Keeps every complete perfect subtree: about 2 hashes (64 bytes) per leaf.
// root(n) and prove(i, n) cost O(log^2 n) hashes; append O(1) amortised.
// Not thread-safe: the owner serialises access.

#include <cstdint>
#include <vector>

#include "cairn/core/bytes.hpp"
#include "cairn/core/result.hpp"
#include "cairn/erasure/merkle.hpp"

namespace cairn::contracts {

class MerkleLog {
 public:
  void append(const Hash32& leaf_hash);
  uint64_t size() const noexcept { return levels_.empty() ? 0 : levels_[0].size(); }
  const Hash32& leaf(uint64_t index) const { return levels_[0][index]; }

  // Root of the first n leaves (n <= size()); SHA-256("") for n = 0.
  Hash32 root(uint64_t n) const;
  // Path of leaf `index` in the tree of the first n leaves. invalid_argument
  // when index >= n or n > size().
  Result<erasure::MerkleProof> prove(uint64_t index, uint64_t n) const;

 private:
  // RFC 6962 MTH of leaves [start, start + len), len >= 1.
  Hash32 subtree(uint64_t start, uint64_t len) const;
  void path(uint64_t start, uint64_t len, uint64_t index, std::vector<Hash32>& out) const;

  // levels_[k][i] = root of the perfect subtree over leaves [i*2^k, (i+1)*2^k).
  std::vector<std::vector<Hash32>> levels_;
};

}  // namespace cairn::contracts
