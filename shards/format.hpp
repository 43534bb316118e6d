#pragma once
// The store's persisted format (docs/store-format.md): column families,
// key layouts and the checksummed value envelope. Private to shards/ (tests
// and the store bench include it to reach RocksDB underneath the store).

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cairn/core/bytes.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"

namespace cairn::shards::format {

// Column families. The number is the family's tag inside every value
// checksum (so a value copied into another family fails its check); the
// name is the RocksDB column family name. Persisted format: do not renumber
// or rename.
enum class Family : uint8_t {
  meta = 0,          // "default": store format version and network geometry
  fragments = 1,     // shard u32 | index u64 | fragment u8 -> stored fragment bytes
  blobs = 2,         // shard u32 | index u64 -> blob record
  blob_ids = 3,      // blob id (32) -> shard u32 | index u64
  pending = 4,       // blob id (32) -> pending upload
  sync_cursors = 5,  // shard u32 -> sync cursor
  responses = 6,  // shard u32 | epoch u64 | node id (32) -> challenge response (sampling's format)
  peers = 7,      // node id (32) -> peer record (p2p's format)
  chain = 8,      // reserved for the embedded dev chain (contracts/); unused by shards
};
inline constexpr size_t kFamilyCount = 9;

constexpr std::string_view family_name(Family f) noexcept {
  switch (f) {
    case Family::meta:
      return "default";
    case Family::fragments:
      return "fragments";
    case Family::blobs:
      return "blobs";
    case Family::blob_ids:
      return "blob_ids";
    case Family::pending:
      return "pending";
    case Family::sync_cursors:
      return "sync_cursors";
    case Family::responses:
      return "responses";
    case Family::peers:
      return "peers";
    case Family::chain:
      return "chain";
  }
  return "?";
}

constexpr Family family_at(size_t i) noexcept { return static_cast<Family>(i); }
constexpr size_t family_slot(Family f) noexcept { return static_cast<size_t>(f); }

// Format version of the store as a whole (meta key "format").
inline constexpr uint32_t kStoreFormatVersion = 1;
// Version byte leading every value envelope.
inline constexpr uint8_t kEnvelopeVersion = 1;
// Envelope overhead: version byte + crc32c.
inline constexpr size_t kEnvelopeOverhead = 1 + 4;

inline constexpr std::string_view kMetaFormatKey = "format";
inline constexpr std::string_view kMetaNetworkKey = "network";

// ---- keys (all integers big-endian, so byte order is numeric order) ----

inline constexpr size_t kShardKeySize = 4;
inline constexpr size_t kBlobKeySize = 12;
inline constexpr size_t kFragmentKeySize = 13;
inline constexpr size_t kResponseKeySize = 4 + 8 + 32;

using ShardKey = std::array<uint8_t, kShardKeySize>;
using BlobKey = std::array<uint8_t, kBlobKeySize>;
using FragmentKeyBytes = std::array<uint8_t, kFragmentKeySize>;
using ResponseKey = std::array<uint8_t, kResponseKeySize>;

ShardKey shard_key(ShardId shard) noexcept;
BlobKey blob_key(ShardId shard, BlobIndex index) noexcept;
FragmentKeyBytes fragment_key(ShardId shard, BlobIndex index, FragmentIndex fragment) noexcept;
ResponseKey response_key(ShardId shard, Epoch epoch, const NodeId& node) noexcept;

struct DecodedBlobKey {
  ShardId shard;
  BlobIndex index;
};
std::optional<DecodedBlobKey> decode_blob_key(ByteSpan key) noexcept;

// Human-readable name of a key for error messages: "shard 3 index 12345
// fragment 7", "blob id <hex>", ...
std::string describe_key(Family family, ByteSpan key);

// ---- value envelope ----
//
//   value = version (1 byte) | payload | crc (u32 BE)
//   crc   = CRC-32C(tag | key_len u16 BE | key | version | payload)
//
// The checksum covers the family tag and the key, so a value moved to another
// key or family is detected like a flipped byte.

uint32_t envelope_checksum(Family family, ByteSpan key, uint8_t version, ByteSpan payload) noexcept;

// The envelope around `payload` (one contiguous buffer).
Bytes seal_envelope(Family family, ByteSpan key, ByteSpan payload);

// The 5 trailer/header bytes around a payload that is written separately (to
// avoid copying fragment bytes into the batch twice).
struct EnvelopeParts {
  uint8_t version = kEnvelopeVersion;
  std::array<uint8_t, 4> crc{};
};
EnvelopeParts envelope_parts(Family family, ByteSpan key, ByteSpan payload) noexcept;

// Checks an envelope read back from `key` in `family` and returns a view of
// its payload (inside `value`). Errc::corruption naming the key when the value
// is too short or its checksum does not match; Errc::unsupported for a
// checksummed value of an unknown envelope version.
Result<ByteSpan> open_envelope(Family family, ByteSpan key, ByteSpan value);

}  // namespace cairn::shards::format
