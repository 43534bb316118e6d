#pragma once
// CRC-32C (Castagnoli, the iSCSI/ext4/RocksDB polynomial 0x1EDC6F41) over
// ISA-L's crc32_iscsi: the checksum the store puts beside every value.
// Detects corruption, not tampering (use the commitment for that).

#include <cstdint>

#include "cairn/core/bytes.hpp"

namespace cairn::erasure {

// The standard CRC-32C (initial value and final XOR 0xFFFFFFFF), so
// crc32c("123456789") == 0xE3069283. `seed` is the CRC of the bytes that
// precede `data`, which makes the CRC incremental:
//   crc32c(b, crc32c(a)) == crc32c(a || b),  crc32c({}) == 0.
uint32_t crc32c(ByteSpan data, uint32_t seed = 0);

}  // namespace cairn::erasure
