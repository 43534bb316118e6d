// Replays the fuzz corpora of the gossip and peer-exchange decoders in the
// normal suite: seeds named valid_* must decode, invalid_* must be refused,
// and every file (including ones a fuzzing run added) must satisfy the
// fuzz properties.

#include <gtest/gtest.h>

#include <filesystem>

#include "fuzz/gossip_fuzz_checks.hpp"
#include "support/test_util.hpp"

namespace cairn::p2p {
namespace {

std::filesystem::path corpus_dir(const char* name) {
  return std::filesystem::path(__FILE__).parent_path().parent_path() / "fuzz" / "corpus" / name;
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
    const Bytes input = test::read_file(entry.path());
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

TEST(GossipCorpus, GossipRpcSeedsReplay) { replay("gossip_rpc", fuzz::check_gossip_rpc); }
TEST(GossipCorpus, PeerExchangeSeedsReplay) { replay("peer_exchange", fuzz::check_peer_exchange); }

}  // namespace
}  // namespace cairn::p2p
