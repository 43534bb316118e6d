#pragma once
// The fragment layout of an encoded blob (docs/blob-format.md): plain data,
// filled by the Codec (codec.hpp) and committed to by commitment.hpp, which
// needs no codec for it.

#include <cstddef>
#include <cstdint>

#include "cairn/core/bytes.hpp"

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

}  // namespace cairn::erasure
