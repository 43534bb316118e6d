#include "commitment/sha256_batch.hpp"

#include <gtest/gtest.h>

#include <bit>

#include "cairn/erasure/merkle.hpp"
#include "cairn/erasure/sha256.hpp"
#include "support/test_util.hpp"

namespace cairn::erasure {
namespace {

using HashFn = void (*)(uint8_t, const uint8_t*, size_t, size_t, Hash32*);

// Every message length around the block boundaries (the head/middle/tail
// split and the one-or-two padding blocks) against plain SHA-256.
void check_against_sha256(HashFn fn) {
  auto rng = test::seeded_rng(21);
  const Bytes data = test::random_bytes(rng, 5 * 4200);
  std::vector<size_t> lengths;
  for (size_t len = 0; len <= 300; ++len) lengths.push_back(len);
  for (size_t len :
       std::initializer_list<size_t>{511, 512, 513, 1023, 1024, 1025, 4095, 4096, 4097})
    lengths.push_back(len);
  for (size_t len : lengths) {
    for (size_t count : std::initializer_list<size_t>{1, 2, 3, 5}) {
      std::vector<Hash32> out(count);
      const uint8_t prefix = static_cast<uint8_t>(len * 31 + count);
      fn(prefix, data.data() + 7, len, count, out.data());
      for (size_t i = 0; i < count; ++i) {
        const Hash32 want =
            sha256({ByteSpan(&prefix, 1), ByteSpan(data).subspan(7 + i * len, len)});
        ASSERT_EQ(to_hex(out[i]), to_hex(want))
            << "len " << len << " count " << count << " i " << i;
      }
    }
  }
}

TEST(Sha256Batch, PortableMatchesSha256) { check_against_sha256(detail::hash_prefixed_portable); }

TEST(Sha256Batch, DispatchMatchesSha256) { check_against_sha256(detail::hash_prefixed); }

TEST(Sha256Batch, ShaNiLanesMatchSha256) {
  if (!detail::sha_ni_supported()) GTEST_SKIP() << "this CPU has no SHA-NI";
  check_against_sha256(detail::hash_prefixed_sha_ni);
}

Hash32 recursive_root(std::span<const Hash32> l) {
  if (l.size() == 1) return l[0];
  const size_t k = std::bit_floor(l.size() - 1);
  return merkle_node_hash(recursive_root(l.first(k)), recursive_root(l.subspan(k)));
}

TEST(Sha256Batch, LevelByLevelRootIsTheRfc6962Root) {
  std::vector<Hash32> leaves;
  for (size_t n = 1; n <= 300; ++n) {
    uint8_t b[8];
    put_be<uint64_t>(b, n);
    leaves.push_back(merkle_leaf_hash(ByteSpan(b, 8)));
    ASSERT_EQ(merkle_root(leaves), recursive_root(leaves)) << n;
  }
}

}  // namespace
}  // namespace cairn::erasure
