#include "cairn/erasure/checksum.hpp"

#include <gtest/gtest.h>

#include "support/test_util.hpp"

namespace cairn::erasure {
namespace {

// Check values from the CRC catalogue (CRC-32/ISCSI) and RFC 3720 B.4.
TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(crc32c(as_bytes("123456789")), 0xE3069283u);
  EXPECT_EQ(crc32c(ByteSpan{}), 0u);
  EXPECT_EQ(crc32c(Bytes(32, 0x00)), 0x8A9136AAu);
  EXPECT_EQ(crc32c(Bytes(32, 0xFF)), 0x62A8AB43u);
  Bytes ascending(32);
  for (size_t i = 0; i < ascending.size(); ++i) ascending[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(crc32c(ascending), 0x46DD794Eu);
}

TEST(Crc32c, SeedMakesItIncremental) {
  auto rng = test::seeded_rng(41);
  const Bytes data = test::random_bytes(rng, 10000);
  const uint32_t whole = crc32c(data);
  for (size_t cut : {size_t{0}, size_t{1}, size_t{63}, size_t{4096}, data.size()}) {
    const ByteSpan all(data);
    EXPECT_EQ(crc32c(all.subspan(cut), crc32c(all.first(cut))), whole) << "cut at " << cut;
  }
}

TEST(Crc32c, DetectsEverySingleBitFlip) {
  auto rng = test::seeded_rng(42);
  Bytes data = test::random_bytes(rng, 256);
  const uint32_t good = crc32c(data);
  for (size_t bit = 0; bit < data.size() * 8; ++bit) {
    data[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_NE(crc32c(data), good) << "bit " << bit;
    data[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
  }
}

}  // namespace
}  // namespace cairn::erasure
