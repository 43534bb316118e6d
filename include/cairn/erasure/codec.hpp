#pragma once
// Reed-Solomon RS(k, m) over GF(2^8) with ISA-L. A Codec is built once per
// parameter set (encode tables precomputed) and is safe to share between
// threads; decode matrices are cached per erasure pattern.

#include <cstdint>
#include <memory>
#include <span>

#include "cairn/core/bytes.hpp"
#include "cairn/core/result.hpp"
#include "cairn/erasure/params.hpp"

namespace cairn::erasure {

// A blob after encoding: n fragments of fragment_size bytes, stored
// contiguously (fragment i at [i * fragment_size, (i+1) * fragment_size)).
struct EncodedBlob {
  Bytes data;
  uint32_t fragment_size = 0;
  uint32_t fragments = 0;
  uint32_t length = 0;  // payload bytes before zero padding

  ByteSpan fragment(uint32_t i) const noexcept {
    return ByteSpan(data).subspan(size_t{i} * fragment_size, fragment_size);
  }
  MutableByteSpan fragment(uint32_t i) noexcept {
    return MutableByteSpan(data).subspan(size_t{i} * fragment_size, fragment_size);
  }
};

// One fragment available for decoding.
struct FragmentRef {
  uint32_t index = 0;  // 0..n-1; < k are data fragments
  ByteSpan data;       // fragment_size bytes
};

class Codec {
 public:
  // Errc::invalid_argument when params.validate() fails.
  static Result<std::shared_ptr<const Codec>> create(const NetworkParams& params);
  virtual ~Codec() = default;

  virtual const NetworkParams& params() const noexcept = 0;

  // Zero-pads payload (<= blob_size bytes, else invalid_argument) and fills
  // all n fragments.
  virtual Result<EncodedBlob> encode(ByteSpan payload) const = 0;

  // Computes the m parity fragments from the k data fragments, in place in
  // `blob` (whose data fragments are already filled).
  virtual void encode_parity(EncodedBlob& blob) const = 0;

  // Rebuilds the payload (first `length` bytes) from any k distinct valid
  // fragments. Errc::too_many_losses when fewer than k distinct indexes are
  // given; invalid_argument on a wrong-size fragment or index >= n.
  virtual Result<Bytes> decode(std::span<const FragmentRef> available, uint32_t length) const = 0;

  // Rebuilds the fragments named in `wanted` (any of 0..n-1) from any k
  // available ones; returns them concatenated in the order of `wanted`.
  virtual Result<Bytes> reconstruct(std::span<const FragmentRef> available,
                                    std::span<const uint32_t> wanted) const = 0;
};

}  // namespace cairn::erasure
