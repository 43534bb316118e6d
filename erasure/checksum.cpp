#include "cairn/erasure/checksum.hpp"

#include <isa-l/crc.h>

#include <algorithm>
#include <climits>

namespace cairn::erasure {

uint32_t crc32c(ByteSpan data, uint32_t seed) {
  // crc32_iscsi neither inverts its input nor its output, and takes an int
  // length: wrap it into the standard form and feed spans > INT_MAX in pieces.
  uint32_t crc = ~seed;
  const uint8_t* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    const size_t n = std::min<size_t>(left, INT_MAX);
    crc = crc32_iscsi(const_cast<unsigned char*>(p), static_cast<int>(n), crc);
    p += n;
    left -= n;
  }
  return ~crc;
}

}  // namespace cairn::erasure
