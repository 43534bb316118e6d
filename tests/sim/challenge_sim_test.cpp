// Storage challenges between whole nodes in deterministic simulation: the
// epochs run on the dev chain's blocks at exact virtual times.

#include <gtest/gtest.h>

#include <optional>

#include "sim/sim_network.hpp"

namespace cairn::sim {
namespace {

using namespace std::chrono_literals;

// 100 ms blocks, 10-block epochs whose anchors are due within 4 blocks, and
// a short walk (the store is tiny).
erasure::NetworkParams challenge_params() {
  auto p = SimNetwork::default_params();
  p.epoch_blocks = 10;
  p.deadline_blocks = 4;
  p.walk_steps = 2048;
  return p;
}

void tweak(node::NodeSettings& s) {
  s.upload.min_replicas = 3;
  s.challenge.settle_blocks = 3;
}

// Node i's recorded result of the first epoch starting after block `after`.
std::optional<node::EpochChallengeStatus> epoch_after(SimNetwork& sim, size_t i, uint64_t after) {
  auto st = sim.node(i).service().status();
  if (!st) return std::nullopt;
  for (const auto& c : st->challenges) {
    if (c.start_block.value > after) return c;
  }
  return std::nullopt;
}

// Three nodes hold a blob: every epoch, each node anchors its response in
// the window and counts all three. A node restarted in the middle of an
// epoch answers the next one, and the others count it again.
TEST(SimChallenge, EveryHolderIsCountedAndARestartedNodeAnswersTheNextEpoch) {
  SimNetwork sim(challenge_params());
  for (int i = 0; i < 3; ++i) sim.add(tweak);
  ASSERT_TRUE(sim.run_until([&] { return sim.meshed(); }, 30s));
  auto rng = test::seeded_rng(5);
  const Bytes payload = test::random_bytes(rng, 20'000);
  auto r = sim.upload(0, payload, 30s);
  ASSERT_TRUE(r) << r.error().to_string();
  const uint64_t uploaded = sim.chain().head()->number.value;

  std::optional<node::EpochChallengeStatus> first;
  ASSERT_TRUE(sim.run_until(
      [&] {
        first = epoch_after(sim, 0, uploaded);
        return first.has_value();
      },
      20s))
      << "no epoch recorded after block " << uploaded;
  EXPECT_EQ(first->own, "anchored") << first->own_detail;
  EXPECT_EQ(first->valid, 3u);
  EXPECT_TRUE(first->missing.empty());
  EXPECT_TRUE(first->invalid.empty());
  const uint64_t e = first->start_block.value;
  EXPECT_EQ(e % 10, 0u);
  EXPECT_GT(first->anchored_in.value, e);
  EXPECT_LE(first->anchored_in.value, e + 4) << "anchored after the window";

  // Restart node 2 five blocks into the next epoch.
  ASSERT_TRUE(sim.run_until([&] { return sim.chain().head()->number.value >= e + 15; }, 10s));
  sim.restart(2);
  const uint64_t restarted = sim.chain().head()->number.value;
  std::optional<node::EpochChallengeStatus> after;
  ASSERT_TRUE(sim.run_until(
      [&] {
        after = epoch_after(sim, 2, restarted);
        return after && epoch_after(sim, 0, restarted).has_value();
      },
      20s));
  EXPECT_EQ(after->own, "anchored") << after->own_detail;
  EXPECT_EQ(after->start_block.value, (restarted / 10 + 1) * 10)
      << "not the epoch right after the restart";
  const auto seen_by_0 = epoch_after(sim, 0, restarted);
  EXPECT_EQ(seen_by_0->valid, 3u) << "node 0 did not count the restarted node";
}

}  // namespace
}  // namespace cairn::sim
