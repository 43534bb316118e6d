#pragma once
// Reed-Solomon RS(k, m) over GF(2^8) with ISA-L. A Codec is built once per
// parameter set (encode tables precomputed) and is safe to share between
// threads; decode matrices are cached per erasure pattern.
//
// The code is systematic: fragments 0..k-1 are the zero-padded payload cut
// into k equal pieces, fragments k..n-1 are parity. The generator is ISA-L's
// Cauchy matrix (gf_gen_cauchy1_matrix: identity on top, 1 / (i XOR j) below,
// polynomial 0x11D), so any k of the n rows are invertible and any k
// fragments rebuild the blob. The matrix is part of the blob format
// (docs/blob-format.md): parity bytes, and therefore blob ids, depend on it.
//
// Library cairn_erasure. The commitments (commitment.hpp) are in the smaller
// cairn_commitment, which the proof verifier links without ISA-L; what needs
// both a codec and a commitment is declared at the end of this header.

#include <cstdint>
#include <memory>
#include <span>

#include "cairn/core/bytes.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/erasure/commitment.hpp"
#include "cairn/erasure/encoded_blob.hpp"
#include "cairn/erasure/params.hpp"

namespace cairn::erasure {

// One fragment available for decoding.
struct FragmentRef {
  uint32_t index = 0;  // 0..n-1; < k are data fragments
  ByteSpan data;       // fragment_size bytes
};

// Counters of the decode-table cache (for tests and metrics).
struct CodecStats {
  uint64_t cache_hits = 0;
  uint64_t cache_misses = 0;
  size_t cache_entries = 0;
  size_t cache_bytes = 0;     // table bytes held now
  size_t cache_capacity = 0;  // bound on cache_bytes
};

class Codec {
 public:
  // Bound on the bytes of decode tables kept per Codec. One entry is
  // 32 * k * (rebuilt fragments) bytes plus bookkeeping: 1.5 KiB for the
  // default k=8 rebuilding 4 fragments, so the default network's every
  // pattern (495 source sets) fits; a k=128 network keeps ~60 patterns.
  static constexpr size_t kDecodeCacheBytes = 4u << 20;

  // Errc::invalid_argument when params.validate() fails.
  static Result<std::shared_ptr<const Codec>> create(const NetworkParams& params);
  virtual ~Codec() = default;

  virtual const NetworkParams& params() const noexcept = 0;

  // Zero-pads payload (<= blob_size bytes, else invalid_argument) and fills
  // all n fragments.
  virtual Result<EncodedBlob> encode(ByteSpan payload) const = 0;

  // Same as encode(), into `out`, reusing its buffer (no allocation once
  // `out` has held a blob of these parameters). On error `out` is unchanged.
  virtual Status encode_into(ByteSpan payload, EncodedBlob& out) const = 0;

  // Computes the m parity fragments from the k data fragments, in place in
  // `blob` (whose data fragments are already filled). invalid_argument when
  // `blob` does not have this codec's shape (n fragments of fragment_size).
  virtual Status encode_parity(EncodedBlob& blob) const = 0;

  // Rebuilds the payload (first `length` bytes) from any k distinct valid
  // fragments. Errc::too_many_losses when fewer than k distinct indexes are
  // given; invalid_argument on a wrong-size fragment, an index >= n, an
  // index given twice, or length > blob_size. Only the data fragments that
  // overlap [0, length) are rebuilt. The result is what the fragments encode:
  // checking it against a commitment is the caller's job (verify_blob).
  virtual Result<Bytes> decode(std::span<const FragmentRef> available, uint32_t length) const = 0;

  // Rebuilds the fragments named in `wanted` (any of 0..n-1, repeats allowed)
  // from any k available ones; returns them concatenated in the order of
  // `wanted`. Errors as for decode(); invalid_argument on a wanted index >= n.
  virtual Result<Bytes> reconstruct(std::span<const FragmentRef> available,
                                    std::span<const uint32_t> wanted) const = 0;

  virtual CodecStats stats() const = 0;
};

// Encodes and commits a payload in one call (what an uploader does).
Result<CommittedBlob> encode_and_commit(const Codec& codec, ByteSpan payload);
// Same, into `out`, reusing its buffers (what a loop over many blobs uses).
// invalid_argument when payload exceeds blob_size; `out` is then unchanged.
Status encode_and_commit_into(const Codec& codec, ByteSpan payload, CommittedBlob& out);

// What a node does when it receives all k data fragments of a blob: re-encode
// the parity, recompute the commitment and compare with `id`.
// Errc::verification_failed when the bytes do not commit to `id`, when the
// given parity differs from the re-encoded parity, or when the padding after
// `blob.length` is not zero (only zero padding is canonical, so one payload
// has one id). invalid_argument when `blob` does not have the codec's shape.
Status verify_blob(const Codec& codec, const EncodedBlob& blob, const BlobId& id);

}  // namespace cairn::erasure
