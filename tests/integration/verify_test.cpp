// `cairn verify FILE`: a user checks a replica-count proof file offline.
// Uses the committed golden proof (2 replicas of shard 0, epoch 1, blobs
// 0..2; tests/sampling/golden_test.cpp builds it from fixed inputs).

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "support/process.hpp"
#include "support/test_util.hpp"

namespace cairn::test {
namespace {

const std::filesystem::path kData = CAIRN_SAMPLING_DATA_DIR;
const std::string kSequencer = CAIRN_GOLDEN_SEQUENCER;

std::string proof_path() { return (kData / "proof_v1.bin").string(); }

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(CairnVerify, ValidProofPrintsCountAndBlobs) {
  auto r = run({cairn_binary(), "verify", proof_path(), "--trust", kSequencer});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "valid: 2 replicas of shard 0 at epoch 1")) << r.out;
  EXPECT_TRUE(contains(r.out, "blobs      0..2 (3 challenged at block 4)")) << r.out;
  EXPECT_TRUE(contains(r.out, "pinned by --trust")) << r.out;
  EXPECT_EQ(r.err, "");

  auto json = run({cairn_binary(), "verify", proof_path(), "--trust", "0x" + kSequencer, "--json"});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  for (const char* field :
       {"\"valid\":true", "\"ok\":true", "\"replicas\":2", "\"shard\":0", "\"epoch\":1",
        "\"first_blob\":0", "\"last_blob\":2", "\"trust\":\"sequencer_key\""}) {
    EXPECT_TRUE(contains(json.out, field)) << field << " in " << json.out;
  }
}

TEST(CairnVerify, MinReplicasDecidesTheExitCode) {
  auto two =
      run({cairn_binary(), "verify", proof_path(), "--trust", kSequencer, "--min-replicas", "2"});
  EXPECT_EQ(two.exit_code, 0) << two.err;
  auto three =
      run({cairn_binary(), "verify", proof_path(), "--trust", kSequencer, "--min-replicas", "3"});
  EXPECT_EQ(three.exit_code, 1);
  EXPECT_TRUE(contains(three.err, "2 replicas, fewer than --min-replicas 3")) << three.err;
  // "valid:" is printed only when the command passes.
  EXPECT_TRUE(contains(two.out, "valid: 2 replicas")) << two.out;
  EXPECT_FALSE(contains(three.out, "valid:")) << three.out;
  EXPECT_TRUE(contains(
      three.out, "too few replicas: 2 replicas of shard 0 at epoch 1, fewer than --min-replicas 3"))
      << three.out;
  auto json = run({cairn_binary(), "verify", proof_path(), "--trust", kSequencer, "--min-replicas",
                   "3", "--json"});
  EXPECT_EQ(json.exit_code, 1);
  EXPECT_TRUE(contains(json.out, "\"valid\":true") && contains(json.out, "\"ok\":false"))
      << json.out;
}

TEST(CairnVerify, GenesisRecordAsBinaryOrHexIsATrustRoot) {
  TempDir dir;
  const Bytes genesis = read_file(kData / "genesis_v1.bin");
  write_file(dir / "genesis.hex", as_bytes("0x" + to_hex(genesis) + "\n"));
  for (const std::string& trust :
       {(kData / "genesis_v1.bin").string(), (dir / "genesis.hex").string(), to_hex(genesis)}) {
    auto r = run({cairn_binary(), "verify", proof_path(), "--trust", trust});
    EXPECT_EQ(r.exit_code, 0) << trust << ": " << r.err;
    EXPECT_TRUE(contains(r.out, "genesis record")) << r.out;
  }
}

TEST(CairnVerify, RefusesAnotherTrustRootAndWarnsWithoutOne) {
  std::string other = kSequencer;
  other[0] = other[0] == '0' ? '1' : '0';
  auto r = run({cairn_binary(), "verify", proof_path(), "--trust", other});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, "invalid proof")) << r.err;
  EXPECT_TRUE(contains(r.err, "sequencer")) << r.err;

  auto unpinned = run({cairn_binary(), "verify", proof_path()});
  EXPECT_EQ(unpinned.exit_code, 0) << unpinned.err;
  EXPECT_TRUE(contains(unpinned.out, "NOT pinned")) << unpinned.out;
  EXPECT_TRUE(contains(unpinned.err, "warning: no --trust")) << unpinned.err;

  auto bad = run({cairn_binary(), "verify", proof_path(), "--trust", "not-a-key"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(contains(bad.err, "--trust")) << bad.err;
  auto missing = run({cairn_binary(), "verify", "/nonexistent/proof.bin"});
  EXPECT_EQ(missing.exit_code, 2);
}

TEST(CairnVerify, FlippedBytesMakeItFail) {
  TempDir dir;
  const Bytes good = read_file(proof_path());
  auto rng = seeded_rng(71);
  // First and last byte, then seeded positions (the unit tests flip every byte in-process).
  std::vector<size_t> positions = {0, good.size() - 1};
  for (int i = 0; i < 10; ++i) positions.push_back(rng() % good.size());
  for (size_t pos : positions) {
    Bytes bad = good;
    bad[pos] ^= 0x10;
    write_file(dir / "tampered.bin", bad);
    auto r = run({cairn_binary(), "verify", (dir / "tampered.bin").string(), "--trust", kSequencer,
                  "--json"});
    EXPECT_EQ(r.exit_code, 1) << "byte " << pos << " flipped: " << r.out;
    EXPECT_TRUE(contains(r.out, "\"valid\":false")) << r.out;
    EXPECT_TRUE(contains(r.err, "invalid proof")) << r.err;
  }
}

}  // namespace
}  // namespace cairn::test
