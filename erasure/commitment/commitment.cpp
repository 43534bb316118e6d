#include "cairn/erasure/commitment.hpp"

#include <string>

#include "sha256_batch.hpp"

namespace cairn::erasure {
namespace {

// Leaf hashes of a fragment's chunks, into `leaves` (reused across calls).
void chunk_leaves(ByteSpan fragment, uint32_t chunk_size, std::vector<Hash32>& leaves) {
  if (chunk_size == 0 || fragment.size() <= chunk_size) {
    leaves.assign(1, merkle_leaf_hash(fragment));
    return;
  }
  const size_t whole = fragment.size() / chunk_size;
  const size_t rest = fragment.size() % chunk_size;
  leaves.resize(whole + (rest > 0 ? 1 : 0));
  detail::hash_prefixed(kMerkleLeafPrefix, fragment.data(), chunk_size, whole, leaves.data());
  if (rest > 0) leaves[whole] = merkle_leaf_hash(fragment.last(rest));
}

// Scratch for leaf hashes, one per thread so commit() allocates nothing in
// steady state and stays safe to call from many threads.
std::vector<Hash32>& scratch_leaves() {
  thread_local std::vector<Hash32> leaves;
  return leaves;
}

void root_leaves(std::span<const Hash32> roots, std::vector<Hash32>& leaves) {
  leaves.resize(roots.size());
  detail::hash_prefixed(kMerkleLeafPrefix, reinterpret_cast<const uint8_t*>(roots.data()),
                        sizeof(Hash32), roots.size(), leaves.data());
}

tl::unexpected<Error> invalid(std::string message) {
  return make_error(Errc::invalid_argument, "blob commitment: " + std::move(message));
}

}  // namespace

Hash32 fragment_root(ByteSpan fragment, uint32_t chunk_size) {
  std::vector<Hash32>& leaves = scratch_leaves();
  chunk_leaves(fragment, chunk_size, leaves);
  return merkle_root(leaves);
}

BlobId commitment_from_roots(std::span<const Hash32> fragment_roots) {
  std::vector<Hash32>& leaves = scratch_leaves();
  root_leaves(fragment_roots, leaves);
  return BlobId{merkle_root(leaves)};
}

void commit_into(const EncodedBlob& blob, uint32_t chunk_size, BlobCommitment& out) {
  out.chunk_size = chunk_size;
  out.fragment_roots.resize(blob.fragments);
  for (uint32_t i = 0; i < blob.fragments; ++i) {
    out.fragment_roots[i] = fragment_root(blob.fragment(i), chunk_size);
  }
  out.id = commitment_from_roots(out.fragment_roots);
}

BlobCommitment commit(const EncodedBlob& blob, uint32_t chunk_size) {
  BlobCommitment c;
  commit_into(blob, chunk_size, c);
  return c;
}

Result<MerkleProof> prove_fragment(const BlobCommitment& c, uint32_t index) {
  if (index >= c.fragment_roots.size()) {
    return invalid("fragment " + std::to_string(index) + " outside a blob of " +
                   std::to_string(c.fragment_roots.size()) + " fragments");
  }
  std::vector<Hash32> leaves;
  root_leaves(c.fragment_roots, leaves);
  return merkle_prove(leaves, index);
}

bool verify_fragment(const NetworkParams& params, const BlobId& id, uint32_t index,
                     ByteSpan fragment, const MerkleProof& proof) {
  if (params.chunk_size == 0 || fragment.size() != params.fragment_size()) return false;
  const Hash32 root = fragment_root(fragment, params.chunk_size);
  return merkle_verify(id.bytes, merkle_leaf_hash(root), index, params.total_fragments(), proof);
}

Result<ChunkProof> prove_chunk(const EncodedBlob& blob, const BlobCommitment& c, uint32_t index,
                               uint32_t chunk) {
  if (c.chunk_size == 0 || blob.fragment_size % c.chunk_size != 0 ||
      c.fragment_roots.size() != blob.fragments ||
      blob.data.size() != size_t{blob.fragments} * blob.fragment_size) {
    return invalid("commitment does not describe this blob (" +
                   std::to_string(c.fragment_roots.size()) + " roots, chunk size " +
                   std::to_string(c.chunk_size) + "; blob of " + std::to_string(blob.fragments) +
                   " fragments of " + std::to_string(blob.fragment_size) + " bytes)");
  }
  if (index >= blob.fragments) {
    return invalid("fragment " + std::to_string(index) + " outside a blob of " +
                   std::to_string(blob.fragments) + " fragments");
  }
  const uint32_t chunks = blob.fragment_size / c.chunk_size;
  if (chunk >= chunks) {
    return invalid("chunk " + std::to_string(chunk) + " outside a fragment of " +
                   std::to_string(chunks) + " chunks");
  }
  std::vector<Hash32> leaves;
  chunk_leaves(blob.fragment(index), c.chunk_size, leaves);
  ChunkProof proof;
  auto in_fragment = merkle_prove(leaves, chunk);
  if (!in_fragment) return tl::unexpected(in_fragment.error());
  proof.in_fragment = std::move(*in_fragment);
  proof.fragment_root = c.fragment_roots[index];
  auto in_commitment = prove_fragment(c, index);
  if (!in_commitment) return tl::unexpected(in_commitment.error());
  proof.in_commitment = std::move(*in_commitment);
  return proof;
}

bool verify_chunk(const NetworkParams& params, const BlobId& id, uint32_t index, uint32_t chunk,
                  ByteSpan chunk_bytes, const ChunkProof& proof) {
  if (params.chunk_size == 0 || chunk_bytes.size() != params.chunk_size) return false;
  return merkle_verify(proof.fragment_root, merkle_leaf_hash(chunk_bytes), chunk,
                       params.chunks_per_fragment(), proof.in_fragment) &&
         merkle_verify(id.bytes, merkle_leaf_hash(proof.fragment_root), index,
                       params.total_fragments(), proof.in_commitment);
}

void ChunkProof::serialize_to(Bytes& out) const {
  in_fragment.serialize_to(out);
  append(out, fragment_root);
  in_commitment.serialize_to(out);
}

Bytes ChunkProof::serialize() const {
  Bytes out;
  out.reserve(in_fragment.serialized_size() + 32 + in_commitment.serialized_size());
  serialize_to(out);
  return out;
}

Result<ChunkProof> ChunkProof::read(ByteReader& reader) noexcept {
  ChunkProof p;
  auto in_fragment = MerkleProof::read(reader);
  if (!in_fragment) return tl::unexpected(with_context(in_fragment.error(), "chunk proof"));
  p.in_fragment = std::move(*in_fragment);
  if (!reader.read(p.fragment_root)) {
    return make_error(Errc::invalid_argument, "chunk proof: truncated fragment root");
  }
  auto in_commitment = MerkleProof::read(reader);
  if (!in_commitment) return tl::unexpected(with_context(in_commitment.error(), "chunk proof"));
  p.in_commitment = std::move(*in_commitment);
  return p;
}

Result<ChunkProof> ChunkProof::parse(ByteSpan data) noexcept {
  ByteReader reader(data);
  auto p = read(reader);
  if (p && !reader.done()) return make_error(Errc::invalid_argument, "chunk proof: trailing bytes");
  return p;
}

}  // namespace cairn::erasure
