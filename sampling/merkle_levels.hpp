#pragma once
// A Merkle tree kept level by level, for O(log n) inclusion proofs of many
// leaves of one tree (erasure::merkle_prove rebuilds subtrees per proof,
// O(n) each). Same RFC 6962 shape as erasure::merkle_root: each level pairs
// neighbours left to right and carries an unpaired last node up unchanged,
// so roots and proofs are interchangeable with erasure's.
//
// Memory: about two hashes per leaf. Not thread-safe.

#include <cstdint>
#include <span>
#include <vector>

#include "cairn/core/bytes.hpp"
#include "cairn/core/result.hpp"
#include "cairn/erasure/merkle.hpp"

namespace cairn::sampling::detail {

class MerkleLevels {
 public:
  MerkleLevels() = default;
  // Builds every level over `leaf_hashes` (already leaf-hashed).
  explicit MerkleLevels(std::vector<Hash32> leaf_hashes);

  uint64_t size() const noexcept { return levels_.empty() ? 0 : levels_[0].size(); }
  // SHA-256("") for an empty tree, as erasure::merkle_root.
  Hash32 root() const;
  // invalid_argument when index >= size().
  Result<erasure::MerkleProof> prove(uint64_t index) const;

 private:
  std::vector<std::vector<Hash32>> levels_;
};

}  // namespace cairn::sampling::detail
