#include "cairn/erasure/codec.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "erasure/test_params.hpp"
#include "support/test_util.hpp"

namespace cairn::erasure {
namespace {

NetworkParams make_params(uint32_t k, uint32_t m, uint32_t fragment_size, uint32_t chunk_size) {
  return test::blob_geometry(k, m, k * fragment_size, chunk_size);
}

std::shared_ptr<const Codec> make_codec(const NetworkParams& p) {
  auto c = Codec::create(p);
  EXPECT_TRUE(c) << c.error().to_string();
  return *c;
}

// A codec and one random payload of `length` bytes encoded with it.
struct Encoded {
  std::shared_ptr<const Codec> codec;
  Bytes payload;
  Result<EncodedBlob> blob;
};
Encoded encode_random(const NetworkParams& p, size_t length, uint64_t salt) {
  auto codec = make_codec(p);
  auto rng = test::seeded_rng(salt);
  Bytes payload = test::random_bytes(rng, length);
  auto blob = codec->encode(payload);
  return {codec, std::move(payload), std::move(blob)};
}

// Calls f(lost) for every set of fragment indexes of size <= max_lost.
template <class F>
void for_each_loss_pattern(uint32_t n, uint32_t max_lost, F&& f) {
  std::vector<uint32_t> lost;
  auto rec = [&](auto&& self, uint32_t start) -> void {
    f(lost);
    if (lost.size() == max_lost) return;
    for (uint32_t i = start; i < n; ++i) {
      lost.push_back(i);
      self(self, i + 1);
      lost.pop_back();
    }
  };
  rec(rec, 0);
}

std::vector<FragmentRef> survivors(const EncodedBlob& blob, const std::vector<uint32_t>& lost) {
  std::vector<FragmentRef> out;
  for (uint32_t i = 0; i < blob.fragments; ++i) {
    if (std::find(lost.begin(), lost.end(), i) == lost.end()) out.push_back({i, blob.fragment(i)});
  }
  return out;
}

struct Case {
  const char* name;
  NetworkParams params;
};

class EveryLossPattern : public ::testing::TestWithParam<Case> {};

// Every pattern of up to m lost fragments decodes to the payload and rebuilds
// exactly the lost fragments; every pattern of m+1 losses is refused.
TEST_P(EveryLossPattern, RoundTripsAndRefusesMoreThanM) {
  const NetworkParams p = GetParam().params;
  const uint32_t n = p.total_fragments();
  // A payload shorter than the blob, so decode must also honour the length.
  // Plain references, not a structured binding: the lambdas below capture them.
  const Encoded e = encode_random(p, p.blob_size - p.fragment_size() / 2 - 3,
                                  p.data_fragments * 1000 + p.parity_fragments);
  const auto& codec = e.codec;
  const Bytes& payload = e.payload;
  const auto& blob = e.blob;
  ASSERT_TRUE(blob);
  ASSERT_EQ(blob->fragments, n);
  ASSERT_EQ(blob->fragment_size, p.fragment_size());
  // Systematic: the data fragments are the zero-padded payload.
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), blob->data.begin()));
  EXPECT_TRUE(std::all_of(blob->data.begin() + static_cast<std::ptrdiff_t>(payload.size()),
                          blob->data.begin() + static_cast<std::ptrdiff_t>(p.blob_size),
                          [](uint8_t b) { return b == 0; }));

  size_t patterns = 0;
  for_each_loss_pattern(n, p.parity_fragments, [&](const std::vector<uint32_t>& lost) {
    ++patterns;
    const auto available = survivors(*blob, lost);
    auto decoded = codec->decode(available, static_cast<uint32_t>(payload.size()));
    ASSERT_TRUE(decoded) << decoded.error().to_string();
    ASSERT_EQ(*decoded, payload) << "lost " << ::testing::PrintToString(lost);
    if (lost.empty()) return;
    auto rebuilt = codec->reconstruct(available, lost);
    ASSERT_TRUE(rebuilt) << rebuilt.error().to_string();
    for (size_t j = 0; j < lost.size(); ++j) {
      const ByteSpan got = ByteSpan(*rebuilt).subspan(j * p.fragment_size(), p.fragment_size());
      const ByteSpan want = blob->fragment(lost[j]);
      ASSERT_TRUE(std::equal(got.begin(), got.end(), want.begin()))
          << "fragment " << lost[j] << " of lost " << ::testing::PrintToString(lost);
    }
  });
  EXPECT_GT(patterns, size_t{1});

  // m + 1 losses: never garbage, always too_many_losses.
  size_t refused = 0;
  for_each_loss_pattern(n, p.parity_fragments + 1, [&](const std::vector<uint32_t>& lost) {
    if (lost.size() != p.parity_fragments + 1) return;
    ++refused;
    const auto available = survivors(*blob, lost);
    auto decoded = codec->decode(available, static_cast<uint32_t>(payload.size()));
    ASSERT_FALSE(decoded);
    ASSERT_EQ(decoded.error().code, Errc::too_many_losses);
    const uint32_t wanted[] = {lost[0]};
    auto rebuilt = codec->reconstruct(available, wanted);
    ASSERT_FALSE(rebuilt);
    ASSERT_EQ(rebuilt.error().code, Errc::too_many_losses);
  });
  EXPECT_GT(refused, size_t{0});
}

INSTANTIATE_TEST_SUITE_P(Params, EveryLossPattern,
                         ::testing::Values(Case{"default_k8_m4", NetworkParams::defaults()},
                                           Case{"k4_m2", make_params(4, 2, 4096, 512)},
                                           Case{"k10_m6", make_params(10, 6, 96, 32)},
                                           Case{"k1_m3", make_params(1, 3, 64, 64)},
                                           Case{"k3_m1", make_params(3, 1, 200, 8)}),
                         [](const ::testing::TestParamInfo<Case>& param_info) {
                           return std::string(param_info.param.name);
                         });

TEST(Codec, WithoutParityEncodesAndNeedsEveryFragment) {
  const auto [codec, payload, blob] = encode_random(make_params(4, 0, 64, 64), 200, 3);
  ASSERT_TRUE(blob);
  EXPECT_EQ(*codec->decode(survivors(*blob, {}), 200), payload);
  auto short_one = codec->decode(survivors(*blob, {2}), 200);
  ASSERT_FALSE(short_one);
  EXPECT_EQ(short_one.error().code, Errc::too_many_losses);
}

TEST(Codec, ExtraAndShuffledFragmentsDecode) {
  const auto [codec, payload, blob] = encode_random(NetworkParams::defaults(), 100000, 4);
  ASSERT_TRUE(blob);
  auto available = survivors(*blob, {1, 6});
  auto rng = test::seeded_rng(40);
  std::shuffle(available.begin(), available.end(), rng);
  EXPECT_EQ(*codec->decode(available, 100000), payload);
  // Only the first fragment is needed for a short length, even if others are lost.
  EXPECT_EQ(*codec->decode(survivors(*blob, {1, 2, 3, 4}), 10),
            Bytes(payload.begin(), payload.begin() + 10));
  EXPECT_EQ(*codec->decode(survivors(*blob, {0, 1, 2, 3}), 0), Bytes{});
}

TEST(Codec, ReconstructReturnsWantedInCallerOrderWithRepeats) {
  const auto [codec, payload, blob] = encode_random(NetworkParams::defaults(), 131072, 5);
  ASSERT_TRUE(blob);
  const auto available = survivors(*blob, {0, 9, 11});
  const uint32_t wanted[] = {11, 3, 0, 11, 9};
  auto out = codec->reconstruct(available, wanted);
  ASSERT_TRUE(out);
  ASSERT_EQ(out->size(), 5u * blob->fragment_size);
  for (size_t j = 0; j < 5; ++j) {
    const ByteSpan want = blob->fragment(wanted[j]);
    EXPECT_EQ(0, std::memcmp(out->data() + j * blob->fragment_size, want.data(), want.size())) << j;
  }
}

TEST(Codec, RejectsMalformedInput) {
  const NetworkParams p = NetworkParams::defaults();
  const auto [codec, payload, blob] = encode_random(p, 5000, 6);
  ASSERT_TRUE(blob);
  auto expect_invalid = [](const auto& r, const char* what) {
    ASSERT_FALSE(r) << what;
    EXPECT_EQ(r.error().code, Errc::invalid_argument) << what << ": " << r.error().message;
  };

  expect_invalid(codec->encode(Bytes(p.blob_size + 1)), "payload over blob_size");

  auto available = survivors(*blob, {});
  expect_invalid(codec->decode(available, p.blob_size + 1), "length over blob_size");

  auto dup = survivors(*blob, {5});
  dup.push_back({0, blob->fragment(0)});
  expect_invalid(codec->decode(dup, 5000), "duplicate index");

  auto out_of_range = survivors(*blob, {5});
  out_of_range.push_back({12, blob->fragment(5)});
  expect_invalid(codec->decode(out_of_range, 5000), "index >= n");
  out_of_range.back().index = 255;
  expect_invalid(codec->decode(out_of_range, 5000), "index 255");

  auto short_fragment = survivors(*blob, {});
  short_fragment[3].data = short_fragment[3].data.first(100);
  expect_invalid(codec->decode(short_fragment, 5000), "short fragment");

  const uint32_t bad_wanted[] = {12};
  expect_invalid(codec->reconstruct(available, bad_wanted), "wanted index >= n");

  EncodedBlob wrong_shape = *blob;
  wrong_shape.data.resize(wrong_shape.data.size() - 1);
  expect_invalid(codec->encode_parity(wrong_shape), "encode_parity on a short blob");
  wrong_shape = *blob;
  wrong_shape.fragments = 11;
  expect_invalid(codec->encode_parity(wrong_shape), "encode_parity with 11 fragments");
}

TEST(Codec, EncodeIntoReusesTheBufferAndMatchesEncode) {
  auto codec = make_codec(NetworkParams::defaults());
  auto rng = test::seeded_rng(7);
  EncodedBlob reused;
  ASSERT_TRUE(codec->encode_into(test::random_bytes(rng, 131072), reused));
  const uint8_t* buffer = reused.data.data();
  // A shorter payload afterwards must not leave old bytes in the padding.
  const Bytes small = test::random_bytes(rng, 777);
  ASSERT_TRUE(codec->encode_into(small, reused));
  EXPECT_EQ(reused.data.data(), buffer);
  auto fresh = codec->encode(small);
  ASSERT_TRUE(fresh);
  EXPECT_EQ(reused.data, fresh->data);
  EXPECT_EQ(reused.length, 777u);
  // On error the output is left alone.
  EXPECT_FALSE(codec->encode_into(Bytes(131073), reused));
  EXPECT_EQ(reused.data, fresh->data);
}

TEST(Codec, CachesDecodeTablesPerPatternWithinItsBound) {
  // k=10, m=6 has 14893 loss patterns of up to 6 fragments: more decode
  // tables than the cache holds, so eviction runs.
  const Encoded e = encode_random(make_params(10, 6, 64, 64), 640, 8);
  const auto& codec = e.codec;
  const Bytes& payload = e.payload;
  const auto& blob = e.blob;
  ASSERT_TRUE(blob);

  const auto lost = std::vector<uint32_t>{0, 3, 7};
  ASSERT_EQ(*codec->decode(survivors(*blob, lost), 640), payload);
  const CodecStats first = codec->stats();
  EXPECT_EQ(first.cache_misses, 1u);
  ASSERT_EQ(*codec->decode(survivors(*blob, lost), 640), payload);
  const CodecStats second = codec->stats();
  EXPECT_EQ(second.cache_hits, first.cache_hits + 1);
  EXPECT_EQ(second.cache_misses, first.cache_misses);

  for_each_loss_pattern(16, 6, [&](const std::vector<uint32_t>& l) {
    auto available = survivors(*blob, l);
    ASSERT_TRUE(codec->reconstruct(available, l));
  });
  const CodecStats after = codec->stats();
  EXPECT_EQ(after.cache_capacity, Codec::kDecodeCacheBytes);
  EXPECT_LE(after.cache_bytes, after.cache_capacity);
  EXPECT_GT(after.cache_entries, 100u);
  EXPECT_GT(after.cache_misses, after.cache_entries);  // some patterns were evicted
  // Decoding still works after eviction.
  EXPECT_EQ(*codec->decode(survivors(*blob, lost), 640), payload);
}

TEST(Codec, SharedBetweenThreads) {
  const NetworkParams p = make_params(6, 3, 1024, 256);
  auto codec = make_codec(p);
  auto rng = test::seeded_rng(9);
  std::vector<Bytes> payloads;
  std::vector<EncodedBlob> blobs;
  for (int i = 0; i < 8; ++i) {
    payloads.push_back(test::random_bytes(rng, p.blob_size - static_cast<size_t>(i)));
    blobs.push_back(*codec->encode(payloads.back()));
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (uint64_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 local(test::test_seed() + t);
      for (int round = 0; round < 400; ++round) {
        const size_t b = local() % blobs.size();
        std::vector<uint32_t> lost;
        for (uint32_t i = 0; i < p.total_fragments(); ++i) {
          if (lost.size() < p.parity_fragments && local() % 3 == 0) lost.push_back(i);
        }
        auto decoded =
            codec->decode(survivors(blobs[b], lost), static_cast<uint32_t>(payloads[b].size()));
        if (!decoded || *decoded != payloads[b]) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace cairn::erasure
