#pragma once
// Binary Merkle trees over SHA-256 in the shape of RFC 6962 (Certificate
// Transparency): leaves H(0x00 || data), interior nodes H(0x01 || left ||
// right), a tree of n leaves splits at the largest power of two below n, and
// the empty tree's root is H(""). No padding leaves, so every leaf count has
// exactly one root, and append-only logs (blobs_root) get cheap roots.
//
// Used for chunk -> fragment_root, fragment_root -> commitment, the chain's
// blobs_root/responses_root/tx root, and the challenge transcript.

#include <cstdint>
#include <span>
#include <vector>

#include "cairn/core/bytes.hpp"
#include "cairn/core/result.hpp"

namespace cairn::erasure {

inline constexpr uint8_t kMerkleLeafPrefix = 0x00;
inline constexpr uint8_t kMerkleNodePrefix = 0x01;
// A proof path longer than this cannot belong to a tree of < 2^64 leaves.
inline constexpr size_t kMaxMerkleDepth = 64;

Hash32 merkle_leaf_hash(ByteSpan data);
Hash32 merkle_node_hash(const Hash32& left, const Hash32& right);

// Root over already-hashed leaves (merkle_leaf_hash of each item).
Hash32 merkle_root(std::span<const Hash32> leaf_hashes);

// Inclusion proof of leaf `index` in a tree of `tree_size` leaves. The path
// runs from the leaf's sibling up to the root's child.
struct MerkleProof {
  uint64_t index = 0;
  uint64_t tree_size = 0;
  std::vector<Hash32> path;

  // Compact form: u64 index, u64 tree_size, u8 path length, path hashes
  // (all big-endian). 17 + 32 * depth bytes.
  Bytes serialize() const;
  void serialize_to(Bytes& out) const;
  size_t serialized_size() const noexcept { return 17 + 32 * path.size(); }
  // Parses untrusted bytes; the whole span must be consumed.
  static Result<MerkleProof> parse(ByteSpan data) noexcept;
  // Parses one proof from the reader's position (for embedding in larger formats).
  static Result<MerkleProof> read(ByteReader& reader) noexcept;

  bool operator==(const MerkleProof&) const = default;
};

// O(n) per proof. Errc::invalid_argument when index >= leaf count.
Result<MerkleProof> merkle_prove(std::span<const Hash32> leaf_hashes, uint64_t index);

// True iff `leaf_hash` sits at `index` in a tree of `tree_size` leaves whose
// root is `root`, and the proof claims exactly that position. The root alone
// does not bind the tree size (a proof for 3 leaves also fits 4), so the
// caller must pass the size it knows independently (n fragments, chunks per
// fragment, blob count in a header). Rejects paths that do not match the shape.
bool merkle_verify(const Hash32& root, const Hash32& leaf_hash, uint64_t index, uint64_t tree_size,
                   const MerkleProof& proof) noexcept;

// Append-only accumulator: O(log n) state, O(log n) append, O(log n) root.
// Gives the same root as merkle_root over all appended leaf hashes.
class MerkleFrontier {
 public:
  void append(const Hash32& leaf_hash);
  Hash32 root() const;
  uint64_t size() const noexcept { return size_; }

  // Serialized state (u64 size, then one hash per set bit of size, high to low)
  // so a persistent log can resume without rereading its leaves.
  Bytes serialize() const;
  static Result<MerkleFrontier> parse(ByteSpan data) noexcept;

 private:
  uint64_t size_ = 0;
  // Roots of the perfect subtrees, largest (leftmost) first; one per set bit of size_.
  std::vector<Hash32> peaks_;
};

}  // namespace cairn::erasure
