// Replays the fuzz corpora of the gossip and peer-exchange decoders in the
// normal suite: seeds named valid_* must decode, invalid_* must be refused,
// and every file (including ones a fuzzing run added) must satisfy the
// fuzz properties.

#include <gtest/gtest.h>

#include <filesystem>

#include "fuzz/p2p_gossip_fuzz.hpp"
#include "support/test_util.hpp"

namespace cairn::p2p {
namespace {

std::filesystem::path corpus_dir(const char* name) {
  return std::filesystem::path(CAIRN_FUZZ_CORPUS_DIR) / name;
}

template <class Check>
void replay(const char* name, Check check) {
  const auto dir = corpus_dir(name);
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  size_t files = 0, valid = 0, invalid = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    ++files;
    const std::string file = entry.path().filename().string();
    const Bytes input = cairn::test::read_file(entry.path());
    const auto r = check(ByteSpan(input));
    EXPECT_EQ(r.violation, "") << file;
    if (file.rfind("valid_", 0) == 0) {
      ++valid;
      EXPECT_TRUE(r.decoded) << file << " should decode";
    } else if (file.rfind("invalid_", 0) == 0) {
      ++invalid;
      EXPECT_FALSE(r.decoded) << file << " should be refused";
    }
  }
  EXPECT_GT(valid, 0u);
  EXPECT_GT(invalid, 0u);
  std::cout << "[corpus] " << name << ": " << files << " files replayed\n";
}

TEST(GossipCorpus, GossipRpcSeedsReplay) { replay("p2p_gossip_rpc", fuzz::check_gossip_rpc); }
TEST(GossipCorpus, PeerExchangeSeedsReplay) {
  replay("p2p_peer_exchange", fuzz::check_peer_exchange);
}

TEST(GossipCorpus, RandomInputsKeepTheProperties) {
  auto rng = cairn::test::seeded_rng(32);
  for (int i = 0; i < 2000; ++i) {
    Bytes input = cairn::test::random_bytes(rng, rng() % 512);
    // A plausible version byte reaches past the first check more often.
    if (!input.empty()) input[0] = 1;
    EXPECT_EQ(fuzz::check_gossip_rpc(input).violation, "");
    EXPECT_EQ(fuzz::check_peer_exchange(input).violation, "");
  }
}

}  // namespace
}  // namespace cairn::p2p
