#pragma once
// Network parameters with a chosen blob geometry (everything else default),
// for tests that need small or unusual blobs.

#include "cairn/erasure/params.hpp"

namespace cairn::test {

inline erasure::NetworkParams blob_geometry(uint32_t k, uint32_t m, uint32_t blob_size,
                                            uint32_t chunk_size) {
  erasure::NetworkParams p;
  p.data_fragments = k;
  p.parity_fragments = m;
  p.blob_size = blob_size;
  p.chunk_size = chunk_size;
  return p;
}

}  // namespace cairn::test
