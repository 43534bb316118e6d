#include "merkle_levels.hpp"

#include <string>

#include "cairn/erasure/sha256.hpp"

namespace cairn::sampling::detail {

MerkleLevels::MerkleLevels(std::vector<Hash32> leaf_hashes) {
  if (leaf_hashes.empty()) return;
  levels_.push_back(std::move(leaf_hashes));
  while (levels_.back().size() > 1) {
    const std::vector<Hash32>& below = levels_.back();
    std::vector<Hash32> up;
    up.reserve((below.size() + 1) / 2);
    for (size_t i = 0; i + 1 < below.size(); i += 2)
      up.push_back(erasure::merkle_node_hash(below[i], below[i + 1]));
    if (below.size() % 2 == 1) up.push_back(below.back());
    levels_.push_back(std::move(up));
  }
}

Hash32 MerkleLevels::root() const {
  if (levels_.empty()) return erasure::sha256(ByteSpan{});
  return levels_.back()[0];
}

Result<erasure::MerkleProof> MerkleLevels::prove(uint64_t index) const {
  if (index >= size()) {
    return make_error(Errc::invalid_argument, "merkle proof: leaf " + std::to_string(index) +
                                                  " outside a tree of " + std::to_string(size()));
  }
  erasure::MerkleProof proof;
  proof.index = index;
  proof.tree_size = size();
  uint64_t i = index;
  for (size_t level = 0; level + 1 < levels_.size(); ++level) {
    const std::vector<Hash32>& nodes = levels_[level];
    const uint64_t sibling = i ^ 1;
    // The unpaired last node of a level is carried up: no path entry.
    if (sibling < nodes.size()) proof.path.push_back(nodes[sibling]);
    i >>= 1;
  }
  return proof;
}

}  // namespace cairn::sampling::detail
