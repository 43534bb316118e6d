#pragma once
// Blob commitments (docs/design.md section 3, docs/blob-format.md):
//   fragment_root(f) = merkle_root(leaf hashes of f's chunks)
//   commitment      = merkle_root(leaf hashes of the n fragment roots)
// The blob id is the commitment; the length travels beside it.
//
// Library cairn_commitment (erasure/commitment/, with sha256.hpp, merkle.hpp
// and params.hpp): SHA-256 over OpenSSL and nothing else, so the proof
// verifier embeds it without ISA-L or zstd. Encoding and committing in one
// call, and checking a received blob's parity, need a Codec: codec.hpp.

#include <cstdint>
#include <span>
#include <vector>

#include "cairn/core/bytes.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/erasure/encoded_blob.hpp"
#include "cairn/erasure/merkle.hpp"
#include "cairn/erasure/params.hpp"

namespace cairn::erasure {

struct BlobCommitment {
  BlobId id;                           // the commitment
  std::vector<Hash32> fragment_roots;  // n roots, by fragment index
  uint32_t chunk_size = 0;             // the chunking the roots were built with
};

// Merkle root over a fragment's chunks. Callers pass a fragment made of whole
// chunks (NetworkParams::validate() guarantees it for real blobs); otherwise
// the last, shorter chunk is its own leaf, and chunk_size 0 means one chunk.
Hash32 fragment_root(ByteSpan fragment, uint32_t chunk_size);

// Commits to all n fragments of an encoded blob.
BlobCommitment commit(const EncodedBlob& blob, uint32_t chunk_size);
// Same, into `out`, reusing its storage (no allocation in steady state).
void commit_into(const EncodedBlob& blob, uint32_t chunk_size, BlobCommitment& out);

// Commitment over given fragment roots.
BlobId commitment_from_roots(std::span<const Hash32> fragment_roots);

// An encoded blob with its commitment (what encode_and_commit() in codec.hpp
// returns).
struct CommittedBlob {
  EncodedBlob encoded;
  BlobCommitment commitment;
};

// Proof that fragment `index` with root `fragment_root` belongs to commitment `id`.
// invalid_argument when index >= n.
Result<MerkleProof> prove_fragment(const BlobCommitment& c, uint32_t index);
// True iff `fragment` is exactly fragment_size bytes and sits at `index` of
// the n-leaf commitment tree `id`. The tree sizes come from `params`, never
// from the proof: a proof's own size claim could move a leaf to another index.
bool verify_fragment(const NetworkParams& params, const BlobId& id, uint32_t index,
                     ByteSpan fragment, const MerkleProof& proof);

// Proof that chunk `chunk` of fragment `index` belongs to commitment `id`: the
// chunk's path in its fragment tree followed by the fragment root's path in
// the commitment tree (what a challenge opening carries).
struct ChunkProof {
  MerkleProof in_fragment;
  Hash32 fragment_root{};
  MerkleProof in_commitment;

  // Compact form: in_fragment, fragment_root (32 bytes), in_commitment, each
  // proof in MerkleProof's serialization (docs/blob-format.md).
  Bytes serialize() const;
  void serialize_to(Bytes& out) const;
  // Parses untrusted bytes; parse() requires the whole span to be consumed.
  static Result<ChunkProof> parse(ByteSpan data) noexcept;
  static Result<ChunkProof> read(ByteReader& reader) noexcept;

  bool operator==(const ChunkProof&) const = default;
};
// invalid_argument when `c` does not describe `blob` or index/chunk are out of range.
Result<ChunkProof> prove_chunk(const EncodedBlob& blob, const BlobCommitment& c, uint32_t index,
                               uint32_t chunk);
// True iff `chunk_bytes` (exactly chunk_size bytes) is chunk `chunk` of
// fragment `index` of blob `id`, with tree sizes taken from `params`.
bool verify_chunk(const NetworkParams& params, const BlobId& id, uint32_t index, uint32_t chunk,
                  ByteSpan chunk_bytes, const ChunkProof& proof);

}  // namespace cairn::erasure
