// Shard sync between whole nodes in deterministic simulation.

#include <gtest/gtest.h>

#include "cairn/shards/store.hpp"
#include "sim/sim_network.hpp"

namespace cairn::sim {
namespace {

using namespace std::chrono_literals;

void no_scrub(node::NodeSettings& s) {
  s.upload.min_replicas = 1;
  // The damaged fragment must stay damaged.
  s.storage.scrub.enabled = false;
}

// The only holder of a blob has one damaged data fragment. A new node syncs
// the shard from it: the sync asks for the k data fragments with at_least =
// k, and the holder substitutes a parity fragment for the damaged one
// (docs/sync-and-scrub.md), so k good fragments arrive and the blob is
// rebuilt. Without at_least on the wire the holder answers k - 1 fragments
// and the new node never gets the blob.
TEST(SimSync, AHolderWithADamagedDataFragmentServesParityInItsPlace) {
  SimNetwork sim(SimNetwork::default_params());
  sim.add(no_scrub);
  ASSERT_TRUE(sim.run_until([&] { return sim.meshed(); }, 30s));
  auto rng = test::seeded_rng(11);
  const Bytes payload = test::random_bytes(rng, 30'000);
  auto r = sim.upload(0, payload, 30s);
  ASSERT_TRUE(r) << r.error().to_string();

  sim.stop(0);
  {
    auto store = shards::Store::open(std::filesystem::path(sim.settings(0).data_dir) / "store",
                                     sim.chain().info().params, sim.settings(0).storage.store);
    ASSERT_TRUE(store) << store.error().to_string();
    auto frag = (*store)->get_fragment(r->index, FragmentIndex{0});
    ASSERT_TRUE(frag) << frag.error().to_string();
    (*frag)[17] ^= 0x40;
    ASSERT_TRUE((*store)->put_fragment(r->index, FragmentIndex{0}, *frag));
    ASSERT_TRUE((*store)->close());
  }
  sim.restart(0);
  sim.add(no_scrub);
  const int64_t joined = sim.now_ms();
  ASSERT_TRUE(sim.run_until([&] { return sim.blobs_stored(1) == 1; }, 60s))
      << "the new node never got the blob from the damaged holder";
  std::cout << "[ sim      ] synced " << sim.now_ms() - joined << " ms (virtual) after joining"
            << std::endl;
  sim.stop(0);
  auto read = sim.call([&] { return sim.node(1).service().read_blob(r->id); });
  ASSERT_TRUE(read) << read.error().to_string();
  EXPECT_EQ(*read, payload);
}

}  // namespace
}  // namespace cairn::sim
