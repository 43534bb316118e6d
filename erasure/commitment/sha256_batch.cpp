#include "sha256_batch.hpp"

#define OPENSSL_SUPPRESS_DEPRECATED  // see sha256.cpp
#include <openssl/sha.h>

#include <cstdlib>
#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define CAIRN_HAVE_SHA_NI 1
#else
#define CAIRN_HAVE_SHA_NI 0
#endif

namespace cairn::erasure::detail {

void hash_prefixed_portable(uint8_t prefix, const uint8_t* data, size_t len, size_t count,
                            Hash32* out) {
  for (size_t i = 0; i < count; ++i) {
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, &prefix, 1);
    SHA256_Update(&ctx, data + i * len, len);
    SHA256_Final(out[i].data(), &ctx);
  }
}

#if CAIRN_HAVE_SHA_NI

namespace {

alignas(16) constexpr uint32_t kRoundConstants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

alignas(16) constexpr uint32_t kInitialState[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

// SHA-NI keeps the eight state words as ABEF and CDGH.
struct Lane {
  __m128i abef;
  __m128i cdgh;
};

#define CAIRN_SHA_TARGET __attribute__((target("sha,sse4.1,ssse3")))

CAIRN_SHA_TARGET inline __m128i load(const void* p) {
  return _mm_loadu_si128(static_cast<const __m128i*>(p));
}

CAIRN_SHA_TARGET inline Lane initial_lane() {
  const __m128i abcd = _mm_shuffle_epi32(load(&kInitialState[0]), 0xB1);  // CDAB
  const __m128i efgh = _mm_shuffle_epi32(load(&kInitialState[4]), 0x1B);  // HGFE
  return Lane{_mm_alignr_epi8(abcd, efgh, 8), _mm_blend_epi16(efgh, abcd, 0xF0)};
}

CAIRN_SHA_TARGET inline void store_digest(const Lane& lane, Hash32& out) {
  const __m128i feba = _mm_shuffle_epi32(lane.abef, 0x1B);
  const __m128i dchg = _mm_shuffle_epi32(lane.cdgh, 0xB1);
  const __m128i abcd = _mm_blend_epi16(feba, dchg, 0xF0);  // words A..D in memory order
  const __m128i efgh = _mm_alignr_epi8(dchg, feba, 8);     // words E..H
  const __m128i bswap = _mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out.data()), _mm_shuffle_epi8(abcd, bswap));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out.data() + 16), _mm_shuffle_epi8(efgh, bswap));
}

// Compresses `blocks` consecutive 64-byte blocks into each of two lanes. The
// two dependency chains are interleaved group by group so the core overlaps
// them.
CAIRN_SHA_TARGET void compress_x2(Lane& lane_a, Lane& lane_b, const uint8_t* pa, const uint8_t* pb,
                                  size_t blocks) {
  // Work on copies: through the references the compiler must assume the two
  // lanes alias and would store and reload the state after every round.
  Lane a = lane_a;
  Lane b = lane_b;
  const __m128i byte_order = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
  for (size_t blk = 0; blk < blocks; ++blk, pa += 64, pb += 64) {
    const Lane saved_a = a;
    const Lane saved_b = b;
    // Message schedule, four words per slot; slot g % 4 holds W[4g .. 4g+3].
    __m128i wa[4], wb[4];
    for (int i = 0; i < 4; ++i) {
      wa[i] = _mm_shuffle_epi8(load(pa + 16 * i), byte_order);
      wb[i] = _mm_shuffle_epi8(load(pb + 16 * i), byte_order);
    }
#pragma GCC unroll 16
    for (int g = 0; g < 16; ++g) {
      if (g >= 4) {
        // W[g] = msg2(msg1(W[g-4], W[g-3]) + (W[g-2], W[g-1] shifted by one word), W[g-1])
        __m128i& xa = wa[g & 3];
        __m128i& xb = wb[g & 3];
        xa = _mm_sha256msg1_epu32(xa, wa[(g + 1) & 3]);
        xb = _mm_sha256msg1_epu32(xb, wb[(g + 1) & 3]);
        xa = _mm_add_epi32(xa, _mm_alignr_epi8(wa[(g + 3) & 3], wa[(g + 2) & 3], 4));
        xb = _mm_add_epi32(xb, _mm_alignr_epi8(wb[(g + 3) & 3], wb[(g + 2) & 3], 4));
        xa = _mm_sha256msg2_epu32(xa, wa[(g + 3) & 3]);
        xb = _mm_sha256msg2_epu32(xb, wb[(g + 3) & 3]);
      }
      const __m128i k = _mm_load_si128(reinterpret_cast<const __m128i*>(&kRoundConstants[4 * g]));
      const __m128i ma = _mm_add_epi32(wa[g & 3], k);
      const __m128i mb = _mm_add_epi32(wb[g & 3], k);
      a.cdgh = _mm_sha256rnds2_epu32(a.cdgh, a.abef, ma);
      b.cdgh = _mm_sha256rnds2_epu32(b.cdgh, b.abef, mb);
      a.abef = _mm_sha256rnds2_epu32(a.abef, a.cdgh, _mm_shuffle_epi32(ma, 0x0E));
      b.abef = _mm_sha256rnds2_epu32(b.abef, b.cdgh, _mm_shuffle_epi32(mb, 0x0E));
    }
    a.abef = _mm_add_epi32(a.abef, saved_a.abef);
    a.cdgh = _mm_add_epi32(a.cdgh, saved_a.cdgh);
    b.abef = _mm_add_epi32(b.abef, saved_b.abef);
    b.cdgh = _mm_add_epi32(b.cdgh, saved_b.cdgh);
  }
  lane_a = a;
  lane_b = b;
}

// The padded message prefix || data splits into: a head block (the prefix and
// the first 63 data bytes) when the message fills at least one block, middle
// blocks read in place at data + 64 * i - 1, and one or two tail blocks
// holding the rest, the 0x80 terminator and the bit length.
struct Layout {
  size_t full_blocks;  // whole 64-byte blocks of message bytes (head included)
  size_t tail_blocks;  // 1 or 2
};

Layout layout_for(size_t len) {
  const size_t total = len + 1;
  const size_t full = total / 64;
  const size_t rest = total - full * 64;
  return Layout{full, rest + 9 <= 64 ? size_t{1} : size_t{2}};
}

void fill_head(uint8_t prefix, const uint8_t* data, uint8_t* head) {
  head[0] = prefix;
  std::memcpy(head + 1, data, 63);
}

void fill_tail(uint8_t prefix, const uint8_t* data, size_t len, const Layout& l, uint8_t* tail) {
  const size_t total = len + 1;
  const size_t start = l.full_blocks * 64;  // message offset of the tail
  const size_t rest = total - start;
  std::memset(tail, 0, 128);
  if (l.full_blocks == 0) {
    tail[0] = prefix;
    if (len > 0) std::memcpy(tail + 1, data, len);
  } else if (rest > 0) {
    std::memcpy(tail, data + start - 1, rest);
  }
  tail[rest] = 0x80;
  uint8_t* bits = tail + l.tail_blocks * 64 - 8;
  put_be<uint64_t>(bits, uint64_t{total} * 8);
}

}  // namespace

bool sha_ni_supported() noexcept {
  static const bool supported = [] {
    if (const char* off = std::getenv("CAIRN_DISABLE_SHA_NI");
        off != nullptr && *off != '\0' && std::strcmp(off, "0") != 0) {
      return false;
    }
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid(1, &a, &b, &c, &d) == 0) return false;
    const bool ssse3 = (c & bit_SSSE3) != 0;
    const bool sse41 = (c & bit_SSE4_1) != 0;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d) == 0) return false;
    return ssse3 && sse41 && (b & bit_SHA) != 0;
  }();
  return supported;
}

namespace {
__attribute__((target("avx"))) void vzeroupper() { _mm256_zeroupper(); }
}  // namespace

void clear_upper_vector_state() noexcept {
  static const bool avx = __builtin_cpu_supports("avx");
  if (avx) vzeroupper();
}

CAIRN_SHA_TARGET void hash_prefixed_sha_ni(uint8_t prefix, const uint8_t* data, size_t len,
                                           size_t count, Hash32* out) {
  clear_upper_vector_state();
  const Layout l = layout_for(len);
  alignas(16) uint8_t head_a[64], head_b[64];
  alignas(16) uint8_t tail_a[128], tail_b[128];
  size_t i = 0;
  for (; i + 1 < count; i += 2) {
    const uint8_t* da = data + i * len;
    const uint8_t* db = da + len;
    Lane a = initial_lane();
    Lane b = initial_lane();
    if (l.full_blocks > 0) {
      fill_head(prefix, da, head_a);
      fill_head(prefix, db, head_b);
      compress_x2(a, b, head_a, head_b, 1);
      compress_x2(a, b, da + 63, db + 63, l.full_blocks - 1);
    }
    fill_tail(prefix, da, len, l, tail_a);
    fill_tail(prefix, db, len, l, tail_b);
    compress_x2(a, b, tail_a, tail_b, l.tail_blocks);
    store_digest(a, out[i]);
    store_digest(b, out[i + 1]);
  }
  if (i < count) hash_prefixed_portable(prefix, data + i * len, len, 1, out + i);
}

void hash_prefixed(uint8_t prefix, const uint8_t* data, size_t len, size_t count, Hash32* out) {
  if (count >= 2 && sha_ni_supported()) {
    hash_prefixed_sha_ni(prefix, data, len, count, out);
  } else {
    hash_prefixed_portable(prefix, data, len, count, out);
  }
}

#else  // !CAIRN_HAVE_SHA_NI

bool sha_ni_supported() noexcept { return false; }

void clear_upper_vector_state() noexcept {}

void hash_prefixed_sha_ni(uint8_t prefix, const uint8_t* data, size_t len, size_t count,
                          Hash32* out) {
  hash_prefixed_portable(prefix, data, len, count, out);
}

void hash_prefixed(uint8_t prefix, const uint8_t* data, size_t len, size_t count, Hash32* out) {
  hash_prefixed_portable(prefix, data, len, count, out);
}

#endif

}  // namespace cairn::erasure::detail
