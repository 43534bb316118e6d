#include "merkle_log.hpp"

#include <bit>
#include <string>

#include "cairn/erasure/sha256.hpp"

namespace cairn::contracts {

void MerkleLog::append(const Hash32& leaf_hash) {
  if (levels_.empty()) levels_.emplace_back();
  levels_[0].push_back(leaf_hash);
  // Complete every perfect subtree the new leaf closes (a binary carry).
  for (size_t k = 0; levels_[k].size() % 2 == 0; ++k) {
    const size_t n = levels_[k].size();
    const Hash32 parent = erasure::merkle_node_hash(levels_[k][n - 2], levels_[k][n - 1]);
    if (levels_.size() == k + 1) levels_.emplace_back();
    levels_[k + 1].push_back(parent);
  }
}

Hash32 MerkleLog::subtree(uint64_t start, uint64_t len) const {
  if (std::has_single_bit(len) && start % len == 0) {
    const auto level = static_cast<size_t>(std::countr_zero(len));
    return levels_[level][start / len];
  }
  // RFC 6962 splits at the largest power of two below len; the left part is
  // perfect and aligned, so only the right part recurses.
  const uint64_t k = std::bit_floor(len - 1);
  return erasure::merkle_node_hash(subtree(start, k), subtree(start + k, len - k));
}

Hash32 MerkleLog::root(uint64_t n) const {
  if (n == 0) return erasure::sha256(ByteSpan{});
  return subtree(0, n);
}

void MerkleLog::path(uint64_t start, uint64_t len, uint64_t index, std::vector<Hash32>& out) const {
  if (len <= 1) return;
  const uint64_t k = std::bit_floor(len - 1);
  if (index < start + k) {
    path(start, k, index, out);
    out.push_back(subtree(start + k, len - k));
  } else {
    path(start + k, len - k, index, out);
    out.push_back(subtree(start, k));
  }
}

Result<erasure::MerkleProof> MerkleLog::prove(uint64_t index, uint64_t n) const {
  if (n > size() || index >= n) {
    return make_error(Errc::invalid_argument, "merkle log: leaf " + std::to_string(index) +
                                                  " not in a tree of " + std::to_string(n) +
                                                  " (log holds " + std::to_string(size()) + ")");
  }
  erasure::MerkleProof proof;
  proof.index = index;
  proof.tree_size = n;
  path(0, n, index, proof.path);
  return proof;
}

}  // namespace cairn::contracts
