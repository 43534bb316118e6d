// Replays the committed fuzz corpus (tests/fuzz/corpus/p2p_frame) through the
// fuzz harness in the normal test run, so every input that once found a bug,
// and the seeds, keep being decoded without crashing or breaking a contract.

#include <gtest/gtest.h>

#include <filesystem>

#include "fuzz/p2p_frame_fuzz.hpp"
#include "support/test_util.hpp"

namespace cairn::p2p {
namespace {

TEST(FrameFuzzCorpus, EveryCorpusInputDecodesSafely) {
  const std::filesystem::path dir = std::filesystem::path(CAIRN_FUZZ_CORPUS_DIR) / "p2p_frame";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const Bytes input = cairn::test::read_file(e.path());
    EXPECT_EQ(fuzz::frame_one_input(input.data(), input.size()), 0) << e.path();
    ++n;
  }
  EXPECT_GE(n, 8u) << "the seed corpus is missing";
}

TEST(FrameFuzzCorpus, RandomInputsDecodeSafely) {
  auto rng = cairn::test::seeded_rng(31);
  for (int i = 0; i < 2000; ++i) {
    Bytes input = cairn::test::random_bytes(rng, rng() % 2048);
    // Plausible length prefixes reach the decoders more often than random ones.
    if (input.size() > 5)
      put_be<uint32_t>(input.data() + 1, static_cast<uint32_t>(input.size() - 5));
    EXPECT_EQ(fuzz::frame_one_input(input.data(), input.size()), 0);
  }
}

}  // namespace
}  // namespace cairn::p2p
