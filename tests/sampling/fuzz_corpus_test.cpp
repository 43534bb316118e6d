// Replays the committed fuzz corpora (tests/fuzz/corpus/sampling_response,
// sampling_proof) through the fuzz harnesses in the normal test run, plus
// seeded mutations of a valid proof and response, so every input that once
// found a bug, and the seeds, keep decoding without a crash or a broken
// contract.

#include <gtest/gtest.h>

#include <filesystem>

#include "fuzz/sampling_proof_fuzz.hpp"
#include "fuzz/sampling_response_fuzz.hpp"
#include "support/test_util.hpp"

namespace cairn::sampling {
namespace {

size_t replay(const std::string& name, int (*harness)(const uint8_t*, size_t)) {
  const std::filesystem::path dir = std::filesystem::path(CAIRN_FUZZ_CORPUS_DIR) / name;
  EXPECT_TRUE(std::filesystem::is_directory(dir)) << dir;
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const Bytes input = cairn::test::read_file(e.path());
    EXPECT_EQ(harness(input.data(), input.size()), 0) << e.path();
    ++n;
  }
  return n;
}

TEST(SamplingFuzzCorpus, EveryCorpusInputDecodesSafely) {
  EXPECT_GE(replay("sampling_response", fuzz::response_one_input), 8u)
      << "the seed corpus is missing";
  EXPECT_GE(replay("sampling_proof", fuzz::proof_one_input), 8u) << "the seed corpus is missing";
}

// Byte flips, truncations and splices of the golden proof and of its first
// response.
TEST(SamplingFuzzCorpus, MutatedValidInputsDecodeSafely) {
  const Bytes proof =
      cairn::test::read_file(std::filesystem::path(CAIRN_SAMPLING_DATA_DIR) / "proof_v1.bin");
  // The first response: after magic, version, sequencer, params, time,
  // shard, epoch, header count, headers, entry count and the anchor path.
  ByteReader r(proof);
  ByteSpan skip;
  r.view(8 + 1 + 32 + contracts::kParamsBytes + 8 + 4 + 8, skip);
  uint16_t headers = 0;
  r.read_be(headers);
  r.view(size_t{headers} * contracts::kHeaderBytes + 4, skip);
  ASSERT_TRUE(erasure::MerkleProof::read(r));
  uint32_t len = 0;
  ByteSpan response;
  ASSERT_TRUE(r.read_be(len) && r.view(len, response));

  auto rng = cairn::test::seeded_rng(61);
  using Harness = int (*)(const uint8_t*, size_t);
  const std::vector<std::pair<Bytes, Harness>> inputs = {
      {proof, &fuzz::proof_one_input},
      {Bytes(response.begin(), response.end()), &fuzz::response_one_input}};
  for (const auto& [input, harness] : inputs) {
    for (int i = 0; i < 300; ++i) {
      Bytes m = input;
      switch (rng() % 3) {
        case 0:
          for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k)
            m[rng() % m.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
          break;
        case 1:
          m.resize(rng() % m.size());
          break;
        default: {
          const size_t at = rng() % m.size();
          const Bytes junk = cairn::test::random_bytes(rng, rng() % 64);
          m.insert(m.begin() + static_cast<std::ptrdiff_t>(at), junk.begin(), junk.end());
        }
      }
      EXPECT_EQ(harness(m.data(), m.size()), 0);
    }
  }
}

}  // namespace
}  // namespace cairn::sampling
