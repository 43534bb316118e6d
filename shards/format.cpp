#include "format.hpp"

#include <cstdint>

#include "cairn/erasure/checksum.hpp"

namespace cairn::shards::format {

ShardKey shard_key(ShardId shard) noexcept {
  ShardKey k{};
  put_be<uint32_t>(k.data(), shard.value);
  return k;
}

BlobKey blob_key(ShardId shard, BlobIndex index) noexcept {
  BlobKey k{};
  put_be<uint32_t>(k.data(), shard.value);
  put_be<uint64_t>(k.data() + 4, index.value);
  return k;
}

FragmentKeyBytes fragment_key(ShardId shard, BlobIndex index, FragmentIndex fragment) noexcept {
  FragmentKeyBytes k{};
  put_be<uint32_t>(k.data(), shard.value);
  put_be<uint64_t>(k.data() + 4, index.value);
  k[12] = fragment.value;
  return k;
}

ResponseKey response_key(ShardId shard, Epoch epoch, const NodeId& node) noexcept {
  ResponseKey k{};
  put_be<uint32_t>(k.data(), shard.value);
  put_be<uint64_t>(k.data() + 4, epoch.value);
  for (size_t i = 0; i < 32; ++i) k[12 + i] = node.bytes[i];
  return k;
}

std::optional<DecodedBlobKey> decode_blob_key(ByteSpan key) noexcept {
  if (key.size() != kBlobKeySize) return std::nullopt;
  return DecodedBlobKey{ShardId{get_be<uint32_t>(key.data())},
                        BlobIndex{get_be<uint64_t>(key.data() + 4)}};
}

std::string describe_key(Family family, ByteSpan key) {
  auto shard_index = [&](const char* what) {
    std::string s = what;
    s += " shard " + std::to_string(get_be<uint32_t>(key.data()));
    s += " index " + std::to_string(get_be<uint64_t>(key.data() + 4));
    return s;
  };
  switch (family) {
    case Family::fragments:
      if (key.size() == kFragmentKeySize) {
        return shard_index("fragment at") + " fragment " + std::to_string(key[12]);
      }
      break;
    case Family::blobs:
      if (key.size() == kBlobKeySize) return shard_index("blob record at");
      break;
    case Family::blob_ids:
      if (key.size() == 32) return "blob id entry " + to_hex(key);
      break;
    case Family::pending:
      if (key.size() == 32) return "pending upload " + to_hex(key);
      break;
    case Family::sync_cursors:
      if (key.size() == kShardKeySize) {
        return "sync cursor of shard " + std::to_string(get_be<uint32_t>(key.data()));
      }
      break;
    case Family::responses:
      if (key.size() == kResponseKeySize) {
        return "response of node " + to_hex(key.subspan(12)) + " shard " +
               std::to_string(get_be<uint32_t>(key.data())) + " epoch " +
               std::to_string(get_be<uint64_t>(key.data() + 4));
      }
      break;
    case Family::peers:
      if (key.size() == 32) return "peer record " + to_hex(key);
      break;
    case Family::meta:
    case Family::chain:
      break;
  }
  std::string printable(key.begin(), key.end());
  for (char c : printable) {
    if (c < 0x20 || c > 0x7e) return std::string(family_name(family)) + " key " + to_hex(key);
  }
  return std::string(family_name(family)) + " key \"" + printable + "\"";
}

uint32_t envelope_checksum(Family family, ByteSpan key, uint8_t version,
                           ByteSpan payload) noexcept {
  // Keys are at most a few dozen bytes; a longer one cannot come from this store.
  uint8_t head[3] = {static_cast<uint8_t>(family), 0, 0};
  const uint16_t key_len = key.size() > UINT16_MAX ? UINT16_MAX : static_cast<uint16_t>(key.size());
  put_be<uint16_t>(head + 1, key_len);
  // CRC-32C of the concatenation, computed piecewise (erasure::crc32c is
  // incremental), so the payload is never copied.
  uint32_t crc = erasure::crc32c(ByteSpan(head, sizeof head));
  crc = erasure::crc32c(key, crc);
  crc = erasure::crc32c(ByteSpan(&version, 1), crc);
  return erasure::crc32c(payload, crc);
}

EnvelopeParts envelope_parts(Family family, ByteSpan key, ByteSpan payload) noexcept {
  EnvelopeParts p;
  put_be<uint32_t>(p.crc.data(), envelope_checksum(family, key, p.version, payload));
  return p;
}

Bytes seal_envelope(Family family, ByteSpan key, ByteSpan payload) {
  const EnvelopeParts p = envelope_parts(family, key, payload);
  Bytes out;
  out.reserve(payload.size() + kEnvelopeOverhead);
  out.push_back(p.version);
  append(out, payload);
  append(out, p.crc);
  return out;
}

Result<ByteSpan> open_envelope(Family family, ByteSpan key, ByteSpan value) {
  if (value.size() < kEnvelopeOverhead) {
    return make_error(Errc::corruption, describe_key(family, key) + ": stored value is " +
                                            std::to_string(value.size()) +
                                            " bytes, shorter than its checksum envelope");
  }
  const uint8_t version = value[0];
  const ByteSpan payload = value.subspan(1, value.size() - kEnvelopeOverhead);
  const uint32_t stored = get_be<uint32_t>(value.data() + value.size() - 4);
  if (envelope_checksum(family, key, version, payload) != stored) {
    return make_error(Errc::corruption,
                      describe_key(family, key) + ": stored value fails its checksum (crc32c)");
  }
  if (version != kEnvelopeVersion) {
    return make_error(Errc::unsupported, describe_key(family, key) + ": value format version " +
                                             std::to_string(version) +
                                             " is newer than this cairn understands");
  }
  return payload;
}

}  // namespace cairn::shards::format
