#pragma once
// Byte vocabulary: owned buffers, views, fixed-size hashes, hex and
// big-endian integer encoding used by every wire, disk and proof format.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cairn {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;
using MutableByteSpan = std::span<uint8_t>;
using Hash32 = std::array<uint8_t, 32>;

inline ByteSpan as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

inline std::string to_hex(ByteSpan b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.resize(b.size() * 2);
  for (size_t i = 0; i < b.size(); ++i) {
    out[2 * i] = kDigits[b[i] >> 4];
    out[2 * i + 1] = kDigits[b[i] & 0x0f];
  }
  return out;
}

namespace detail {
constexpr int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace detail

// Decodes hex (either case, no prefix). nullopt on odd length or a non-hex digit.
inline std::optional<Bytes> from_hex(std::string_view s) {
  if (s.size() % 2 != 0) return std::nullopt;
  Bytes out(s.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = detail::hex_value(s[2 * i]);
    int lo = detail::hex_value(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<uint8_t>((hi << 4) | lo);
  }
  return out;
}

// Decodes exactly N bytes of hex.
template <size_t N>
std::optional<std::array<uint8_t, N>> from_hex_fixed(std::string_view s) {
  if (s.size() != 2 * N) return std::nullopt;
  auto v = from_hex(s);
  if (!v) return std::nullopt;
  std::array<uint8_t, N> out{};
  for (size_t i = 0; i < N; ++i) out[i] = (*v)[i];
  return out;
}

// Big-endian fixed-width integers (all persisted and wire integers are BE).
template <class UInt>
inline void put_be(uint8_t* dst, UInt v) noexcept {
  for (size_t i = 0; i < sizeof(UInt); ++i) {
    dst[sizeof(UInt) - 1 - i] = static_cast<uint8_t>(v & 0xff);
    v = static_cast<UInt>(v >> 8);
  }
}

template <class UInt>
inline UInt get_be(const uint8_t* src) noexcept {
  UInt v = 0;
  for (size_t i = 0; i < sizeof(UInt); ++i) v = static_cast<UInt>((v << 8) | src[i]);
  return v;
}

template <class UInt>
inline void append_be(Bytes& out, UInt v) {
  uint8_t buf[sizeof(UInt)];
  put_be<UInt>(buf, v);
  out.insert(out.end(), buf, buf + sizeof(UInt));
}

inline void append(Bytes& out, ByteSpan b) { out.insert(out.end(), b.begin(), b.end()); }

// Bounds-checked sequential reader for untrusted bytes. Every read returns
// false instead of running past the end; callers turn that into an Error.
class ByteReader {
 public:
  explicit ByteReader(ByteSpan data) noexcept : data_(data) {}

  size_t remaining() const noexcept { return data_.size() - pos_; }
  size_t position() const noexcept { return pos_; }
  bool done() const noexcept { return pos_ == data_.size(); }

  template <class UInt>
  bool read_be(UInt& v) noexcept {
    if (remaining() < sizeof(UInt)) return false;
    v = get_be<UInt>(data_.data() + pos_);
    pos_ += sizeof(UInt);
    return true;
  }

  bool read(MutableByteSpan out) noexcept {
    if (remaining() < out.size()) return false;
    for (size_t i = 0; i < out.size(); ++i) out[i] = data_[pos_ + i];
    pos_ += out.size();
    return true;
  }

  // A view of the next n bytes (valid as long as the underlying buffer).
  bool view(size_t n, ByteSpan& out) noexcept {
    if (remaining() < n) return false;
    out = data_.subspan(pos_, n);
    pos_ += n;
    return true;
  }

 private:
  ByteSpan data_;
  size_t pos_ = 0;
};

}  // namespace cairn
