#pragma once
// Blob commitments (DESIGN.md section 3, docs/blob-format.md):
//   fragment_root(f) = merkle_root(leaf hashes of f's chunks)
//   commitment      = merkle_root(leaf hashes of the n fragment roots)
// The blob id is the commitment; the length travels beside it.

#include <span>
#include <vector>

#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/erasure/codec.hpp"
#include "cairn/erasure/merkle.hpp"

namespace cairn::erasure {

struct BlobCommitment {
  BlobId id;                         // the commitment
  std::vector<Hash32> fragment_roots;  // n roots, by fragment index
};

// Merkle root over a fragment's chunks (fragment.size() a multiple of chunk_size).
Hash32 fragment_root(ByteSpan fragment, uint32_t chunk_size);

// Commits to all n fragments of an encoded blob.
BlobCommitment commit(const EncodedBlob& blob, uint32_t chunk_size);

// Commitment over given fragment roots.
BlobId commitment_from_roots(std::span<const Hash32> fragment_roots);

// Encodes and commits a payload in one call (what an uploader does).
struct CommittedBlob {
  EncodedBlob encoded;
  BlobCommitment commitment;
};
Result<CommittedBlob> encode_and_commit(const Codec& codec, ByteSpan payload);

// Proof that fragment `index` with root `fragment_root` belongs to commitment `id`.
Result<MerkleProof> prove_fragment(const BlobCommitment& c, uint32_t index);
bool verify_fragment(const BlobId& id, uint32_t index, ByteSpan fragment, uint32_t chunk_size,
                     const MerkleProof& proof);

// Proof that chunk `chunk` of fragment `index` belongs to commitment `id`: the
// chunk's path in its fragment tree followed by the fragment root's path in
// the commitment tree (what a challenge opening carries).
struct ChunkProof {
  MerkleProof in_fragment;
  Hash32 fragment_root{};
  MerkleProof in_commitment;
};
Result<ChunkProof> prove_chunk(const EncodedBlob& blob, const BlobCommitment& c, uint32_t index,
                               uint32_t chunk);
bool verify_chunk(const BlobId& id, uint32_t index, uint32_t chunk, ByteSpan chunk_bytes,
                  const ChunkProof& proof);

// What a node does when it receives all k data fragments of a blob: re-encode
// the parity, recompute the commitment and compare with `id`.
// Errc::verification_failed when the bytes do not commit to `id`.
Status verify_blob(const Codec& codec, const EncodedBlob& blob, const BlobId& id);

}  // namespace cairn::erasure
