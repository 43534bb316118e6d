#include "cairn/erasure/merkle.hpp"

#include <bit>
#include <cstring>

#include "cairn/erasure/sha256.hpp"
#include "sha256_batch.hpp"

namespace cairn::erasure {
namespace {

// Largest power of two strictly below n (n >= 2).
uint64_t split_point(uint64_t n) { return std::bit_floor(n - 1); }

Hash32 subtree_root(std::span<const Hash32> leaves) {
  if (leaves.size() == 1) return leaves[0];
  const uint64_t k = split_point(leaves.size());
  return merkle_node_hash(subtree_root(leaves.first(k)), subtree_root(leaves.subspan(k)));
}

void build_path(std::span<const Hash32> leaves, uint64_t index, std::vector<Hash32>& path) {
  if (leaves.size() <= 1) return;
  const uint64_t k = split_point(leaves.size());
  if (index < k) {
    build_path(leaves.first(k), index, path);
    path.push_back(subtree_root(leaves.subspan(k)));
  } else {
    build_path(leaves.subspan(k), index - k, path);
    path.push_back(subtree_root(leaves.first(k)));
  }
}

}  // namespace

Hash32 merkle_leaf_hash(ByteSpan data) {
  const uint8_t prefix = kMerkleLeafPrefix;
  return sha256({ByteSpan(&prefix, 1), data});
}

Hash32 merkle_node_hash(const Hash32& left, const Hash32& right) {
  uint8_t buf[65];
  buf[0] = kMerkleNodePrefix;
  std::memcpy(buf + 1, left.data(), 32);
  std::memcpy(buf + 33, right.data(), 32);
  return sha256(ByteSpan(buf, sizeof buf));
}

// Level by level: pair neighbours left to right and carry an unpaired last
// node up unchanged. That is the same tree as the recursive split at the
// largest power of two (RFC 6962), and it keeps each level's pairs adjacent
// in memory, so a level is one batch for the multi-lane hasher.
Hash32 merkle_root(std::span<const Hash32> leaf_hashes) {
  static_assert(sizeof(Hash32) == 32, "levels are hashed as packed 64-byte pairs");
  if (leaf_hashes.empty()) return sha256(ByteSpan{});
  thread_local std::vector<Hash32> level_a, level_b;
  const Hash32* in = leaf_hashes.data();
  size_t count = leaf_hashes.size();
  std::vector<Hash32>* out = &level_a;
  while (count > 1) {
    const size_t pairs = count / 2;
    out->resize(pairs + (count & 1));
    detail::hash_prefixed(kMerkleNodePrefix, reinterpret_cast<const uint8_t*>(in), 64, pairs,
                          out->data());
    if ((count & 1) != 0) (*out)[pairs] = in[count - 1];
    in = out->data();
    count = out->size();
    out = out == &level_a ? &level_b : &level_a;
  }
  return in[0];
}

Result<MerkleProof> merkle_prove(std::span<const Hash32> leaf_hashes, uint64_t index) {
  if (index >= leaf_hashes.size()) {
    return make_error(Errc::invalid_argument, "merkle proof: leaf " + std::to_string(index) +
                                                  " outside a tree of " +
                                                  std::to_string(leaf_hashes.size()));
  }
  MerkleProof proof;
  proof.index = index;
  proof.tree_size = leaf_hashes.size();
  build_path(leaf_hashes, index, proof.path);
  return proof;
}

// RFC 9162 section 2.1.3.2 verification.
bool merkle_verify(const Hash32& root, const Hash32& leaf_hash, uint64_t index, uint64_t tree_size,
                   const MerkleProof& proof) noexcept {
  if (proof.index != index || proof.tree_size != tree_size) return false;
  if (proof.index >= proof.tree_size || proof.path.size() > kMaxMerkleDepth) return false;
  uint64_t fn = proof.index;
  uint64_t sn = proof.tree_size - 1;
  Hash32 r = leaf_hash;
  for (const Hash32& p : proof.path) {
    if (sn == 0) return false;
    if ((fn & 1) == 1 || fn == sn) {
      r = merkle_node_hash(p, r);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = merkle_node_hash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && r == root;
}

void MerkleProof::serialize_to(Bytes& out) const {
  append_be<uint64_t>(out, index);
  append_be<uint64_t>(out, tree_size);
  out.push_back(static_cast<uint8_t>(path.size()));
  for (const Hash32& h : path) append(out, h);
}

Bytes MerkleProof::serialize() const {
  Bytes out;
  out.reserve(serialized_size());
  serialize_to(out);
  return out;
}

Result<MerkleProof> MerkleProof::read(ByteReader& reader) noexcept {
  MerkleProof p;
  uint8_t depth = 0;
  if (!reader.read_be(p.index) || !reader.read_be(p.tree_size) || !reader.read_be(depth)) {
    return make_error(Errc::invalid_argument, "merkle proof: truncated header");
  }
  if (depth > kMaxMerkleDepth) {
    return make_error(Errc::invalid_argument,
                      "merkle proof: depth " + std::to_string(depth) + " exceeds 64");
  }
  if (reader.remaining() < size_t{depth} * 32) {
    return make_error(Errc::invalid_argument, "merkle proof: truncated path");
  }
  p.path.resize(depth);
  for (Hash32& h : p.path) reader.read(h);
  return p;
}

Result<MerkleProof> MerkleProof::parse(ByteSpan data) noexcept {
  ByteReader reader(data);
  auto p = read(reader);
  if (p && !reader.done()) {
    return make_error(Errc::invalid_argument, "merkle proof: trailing bytes");
  }
  return p;
}

void MerkleFrontier::append(const Hash32& leaf_hash) {
  // Merge equal-sized perfect subtrees like a binary counter increment.
  Hash32 carry = leaf_hash;
  uint64_t s = size_;
  while ((s & 1) == 1) {
    carry = merkle_node_hash(peaks_.back(), carry);
    peaks_.pop_back();
    s >>= 1;
  }
  peaks_.push_back(carry);
  ++size_;
}

Hash32 MerkleFrontier::root() const {
  if (peaks_.empty()) return sha256(ByteSpan{});
  // RFC 6962 splits at the largest power of two, so the tree is the leftmost
  // (largest) peak joined with the tree of the rest: fold right to left.
  Hash32 acc = peaks_.back();
  for (size_t i = peaks_.size() - 1; i-- > 0;) acc = merkle_node_hash(peaks_[i], acc);
  return acc;
}

Bytes MerkleFrontier::serialize() const {
  Bytes out;
  append_be<uint64_t>(out, size_);
  for (const Hash32& h : peaks_) cairn::append(out, h);
  return out;
}

Result<MerkleFrontier> MerkleFrontier::parse(ByteSpan data) noexcept {
  ByteReader reader(data);
  MerkleFrontier f;
  if (!reader.read_be(f.size_)) return make_error(Errc::invalid_argument, "frontier: truncated");
  const auto peaks = static_cast<size_t>(std::popcount(f.size_));
  if (reader.remaining() != peaks * 32) {
    return make_error(Errc::invalid_argument, "frontier: expected " + std::to_string(peaks) +
                                                  " peaks for size " + std::to_string(f.size_));
  }
  f.peaks_.resize(peaks);
  for (Hash32& h : f.peaks_) reader.read(h);
  return f;
}

}  // namespace cairn::erasure
