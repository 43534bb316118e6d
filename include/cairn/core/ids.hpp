#pragma once
// Strong types for the identifiers that cross module boundaries, so a shard
// number cannot be passed where a blob index is expected.

#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "cairn/core/bytes.hpp"

namespace cairn {

template <class Tag, class Rep>
struct StrongInt {
  Rep value{};
  constexpr StrongInt() = default;
  constexpr explicit StrongInt(Rep v) : value(v) {}
  constexpr auto operator<=>(const StrongInt&) const = default;
};

using ShardId = StrongInt<struct ShardIdTag, uint32_t>;
using BlobIndex = StrongInt<struct BlobIndexTag, uint64_t>;
using FragmentIndex = StrongInt<struct FragmentIndexTag, uint8_t>;
using Epoch = StrongInt<struct EpochTag, uint64_t>;
using BlockNumber = StrongInt<struct BlockNumberTag, uint64_t>;

// A 32-byte identifier with hex text form.
template <class Tag>
struct Id32 {
  Hash32 bytes{};
  constexpr auto operator<=>(const Id32&) const = default;

  std::string hex() const { return to_hex(bytes); }
  static std::optional<Id32> from_hex(std::string_view s) {
    auto b = from_hex_fixed<32>(s);
    if (!b) return std::nullopt;
    return Id32{*b};
  }
  ByteSpan span() const noexcept { return bytes; }
};

// A blob's id is its commitment (docs/design.md section 3).
using BlobId = Id32<struct BlobIdTag>;
// A node's id is its ed25519 public key (docs/design.md section 5).
using NodeId = Id32<struct NodeIdTag>;

}  // namespace cairn

template <class Tag, class Rep>
struct std::hash<cairn::StrongInt<Tag, Rep>> {
  size_t operator()(const cairn::StrongInt<Tag, Rep>& v) const noexcept {
    return std::hash<Rep>{}(v.value);
  }
};

template <class Tag>
struct std::hash<cairn::Id32<Tag>> {
  size_t operator()(const cairn::Id32<Tag>& id) const noexcept {
    // Ids are uniformly random (hashes or public keys): the first 8 bytes suffice.
    size_t h = 0;
    for (int i = 0; i < 8; ++i) h = (h << 8) | id.bytes[static_cast<size_t>(i)];
    return h;
  }
};
