// A small replica-count proof built from fixed keys and payloads (nothing
// depends on the test seed) must equal, byte for byte, the committed file
// tests/sampling/data/proof_v1.bin: the format of docs/proof-format.md is
// pinned, and the C test program (tests/verify_c) verifies the same file.
// Set CAIRN_REGENERATE_GOLDEN=1 to rewrite the files after a deliberate
// format change (which needs a new version).

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "sampling_test_util.hpp"

namespace cairn::sampling {
namespace {

std::array<uint8_t, 32> filled(uint8_t v) {
  std::array<uint8_t, 32> s{};
  s.fill(v);
  return s;
}

struct Golden {
  Bytes proof;
  Bytes genesis;
  NodeId sequencer;
};

Golden build_golden() {
  const erasure::NetworkParams params = test::tiny_params();
  test::TestChain chain(params, SigningKey::from_seed(filled(0x01)), 1'700'000'000'000);
  auto codec = *erasure::Codec::create(params);
  std::vector<erasure::CommittedBlob> blobs;
  for (uint8_t b = 0; b < 3; ++b) {
    Bytes payload(params.blob_size - 10 * b);
    for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i * 7 + b * 31);
    blobs.push_back(*erasure::encode_and_commit(*codec, payload));
    chain.put_blob(blobs.back().commitment.id);
  }
  std::vector<std::unique_ptr<test::TestNode>> nodes;
  for (uint8_t n = 0; n < 2; ++n) {
    nodes.push_back(std::make_unique<test::TestNode>(
        params, SigningKey::from_seed(filled(0x10 + n)), chain.paths()));
    for (size_t j = 0; j < blobs.size(); ++j) nodes.back()->replica->add(BlobIndex{j}, blobs[j]);
  }
  const Epoch e{1};
  chain.produce_until(BlockNumber{params.epoch_blocks});
  auto responses = test::answer_epoch(chain, test::honest(nodes), ShardId{0}, e);
  chain.produce_until(BlockNumber{params.epoch_blocks + params.deadline_blocks});
  auto a = assemble_replica_proof(chain.info(), ShardId{0}, e, chain.epoch_headers(e), responses);
  EXPECT_TRUE(a && a->excluded.empty());
  return Golden{a->proof.encode(), chain.info().encode(), chain.info().sequencer};
}

TEST(GoldenProof, FixedInputsGiveTheCommittedFile) {
  const Golden g = build_golden();
  const std::filesystem::path dir = std::filesystem::path(CAIRN_SAMPLING_DATA_DIR);
  if (const char* regen = std::getenv("CAIRN_REGENERATE_GOLDEN");
      regen != nullptr && *regen == '1') {
    cairn::test::write_file(dir / "proof_v1.bin", g.proof);
    cairn::test::write_file(dir / "genesis_v1.bin", g.genesis);
    GTEST_SKIP() << "rewrote " << dir;
  }
  const Bytes committed = cairn::test::read_file(dir / "proof_v1.bin");
  EXPECT_EQ(committed, g.proof) << "the proof format or a derivation changed: bump kProofVersion / "
                                   "kWalkVersion and regenerate (CAIRN_REGENERATE_GOLDEN=1)";
  EXPECT_EQ(cairn::test::read_file(dir / "genesis_v1.bin"), g.genesis);
  auto report = verify_replica_proof(committed, TrustRoot::key(g.sequencer));
  ASSERT_TRUE(report) << report.error().to_string();
  EXPECT_EQ(report->replicas(), 2u);
  EXPECT_EQ(report->blob_count, 3u);
  // The sequencer key the C test pins.
  EXPECT_EQ(g.sequencer.hex(), CAIRN_GOLDEN_SEQUENCER);
}

}  // namespace
}  // namespace cairn::sampling
