// Multi-node gossip simulation: GossipNodes (Host + router + discovery) on
// the in-memory SimNetwork under a ManualClock, all on one io_context. The
// run is reproducible from the printed seed (CAIRN_TEST_SEED) and takes well
// under a second of wall time per simulated minute.

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <iostream>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "gossip_sim_cluster.hpp"
#include "support/test_util.hpp"

namespace cairn::p2p {
namespace {

using namespace std::chrono_literals;
using test::SimCluster;

constexpr size_t kNodes = 60;
constexpr uint32_t kShards = 6;

// Node i serves shard i % 6; every fifth node serves a second shard.
std::vector<std::vector<ShardId>> layout() {
  std::vector<std::vector<ShardId>> out(kNodes);
  for (size_t i = 0; i < kNodes; ++i) {
    out[i].push_back(ShardId(static_cast<uint32_t>(i % kShards)));
    if (i % 5 == 0) out[i].push_back(ShardId(static_cast<uint32_t>((i + 3) % kShards)));
    std::sort(out[i].begin(), out[i].end());
  }
  return out;
}

bool serves(const SimCluster::Node& n, ShardId s) {
  return std::find(n.shards.begin(), n.shards.end(), s) != n.shards.end();
}

// Mesh degree bounds for every live node and served shard: [min(D_low, live
// subscribers - 1), D_high]. Returns a description of the first violation.
std::string mesh_violation(SimCluster& c) {
  for (size_t i = 0; i < c.size(); ++i) {
    auto& n = c.node(i);
    if (!n.alive()) continue;
    for (ShardId s : n.shards) {
      size_t live = 0;
      for (size_t j = 0; j < c.size(); ++j)
        if (c.node(j).alive() && serves(c.node(j), s)) ++live;
      const size_t low = std::min<size_t>(4, live - 1);
      const size_t deg = n.router().mesh(s).size();
      if (deg < low || deg > 12) {
        return "node " + std::to_string(i) + " shard " + std::to_string(s.value) + " mesh " +
               std::to_string(deg) + " (want " + std::to_string(low) + "..12)";
      }
    }
  }
  return "";
}

struct Publication {
  MessageId id;
  ShardId shard;
  size_t from;
};

// Publishes one message per shard from a random live subscriber.
std::vector<Publication> publish_round(SimCluster& c, std::mt19937_64& rng, int round) {
  std::vector<Publication> out;
  for (uint32_t s = 0; s < kShards; ++s) {
    std::vector<size_t> subs;
    for (size_t i = 0; i < c.size(); ++i) {
      if (c.node(i).alive() && serves(c.node(i), ShardId(s))) subs.push_back(i);
    }
    const size_t from = subs[rng() % subs.size()];
    Bytes data = cairn::test::random_bytes(rng, 200);
    data[0] = static_cast<uint8_t>(round);
    auto id = c.publish(from, ShardId(s), data);
    EXPECT_TRUE(id);
    out.push_back({*id, ShardId(s), from});
  }
  return out;
}

void expect_delivered(SimCluster& c, const std::vector<Publication>& pubs) {
  for (const auto& p : pubs) {
    for (size_t i = 0; i < c.size(); ++i) {
      auto& n = c.node(i);
      if (!n.alive()) continue;
      auto it = n.delivered.find(p.id);
      const size_t count = it == n.delivered.end() ? 0 : it->second;
      if (serves(n, p.shard)) {
        // The publisher does not deliver to itself.
        EXPECT_EQ(count, i == p.from ? 0u : 1u) << "node " << i << " shard " << p.shard.value;
      } else {
        EXPECT_EQ(count, 0u) << "node " << i << " outside shard " << p.shard.value << " got it";
      }
    }
  }
}

// Copies received per first delivery, over every live node and message so
// far, and the mean mesh degree it should be compared with.
struct Traffic {
  double duplicate_factor = 0;
  double mean_mesh_degree = 0;
  uint64_t copies = 0;
  uint64_t first = 0;
};

Traffic traffic(SimCluster& c) {
  Traffic t;
  size_t degrees = 0, meshes = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    if (!c.node(i).alive()) continue;
    const auto& st = c.node(i).router().stats();
    t.copies += st.received;
    t.first += st.first_received;
    for (ShardId sh : c.node(i).shards) {
      degrees += c.node(i).router().mesh(sh).size();
      ++meshes;
    }
  }
  t.duplicate_factor =
      t.first == 0 ? 0 : static_cast<double>(t.copies) / static_cast<double>(t.first);
  t.mean_mesh_degree = meshes == 0 ? 0 : static_cast<double>(degrees) / static_cast<double>(meshes);
  return t;
}

// Steps one heartbeat interval at a time until every mesh is in range;
// returns the number of heartbeats it took, or -1 when `limit` passed.
int heartbeats_until_meshes_in_range(SimCluster& c, int limit) {
  for (int hb = 1; hb <= limit; ++hb) {
    c.run_for(1s);
    if (mesh_violation(c).empty()) return hb;
  }
  return -1;
}

// Publishes `rounds` rounds (one message per shard, 100 ms apart), waits
// for propagation, and checks delivery to exactly the subscribers.
void publish_and_check(SimCluster& c, std::mt19937_64& rng, int rounds, int tag) {
  std::vector<Publication> pubs;
  for (int r = 0; r < rounds; ++r) {
    auto round = publish_round(c, rng, tag * 100 + r);
    pubs.insert(pubs.end(), round.begin(), round.end());
    c.run_for(100ms);
  }
  c.run_for(3s);
  expect_delivered(c, pubs);
  for (size_t i = 0; i < c.size(); ++i) {
    if (!c.node(i).alive()) continue;
    EXPECT_EQ(c.node(i).router().stats().ignored, 0u)
        << "node " << i << " was sent a message of a shard it does not serve";
  }
}

constexpr std::chrono::seconds kWarmup{30};

// The 60-node cluster after warm-up, with every mesh in range.
std::unique_ptr<SimCluster> warmed_up(std::mt19937_64& rng) {
  auto c = std::make_unique<SimCluster>(layout(), std::vector<size_t>{0, 1}, rng());
  c->start();
  c->run_for(kWarmup);
  EXPECT_EQ(mesh_violation(*c), "");
  return c;
}

// Node indexes in random order.
std::vector<size_t> shuffled(size_t n, std::mt19937_64& rng) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  return order;
}

TEST(GossipSim, SixtyNodesMeshInRangeAndDeliverOnlyToSubscribers) {
  auto rng = cairn::test::seeded_rng(1);
  auto cluster = warmed_up(rng);
  SimCluster& c = *cluster;
  for (size_t i = 0; i < c.size(); ++i) {
    for (ShardId s : c.node(i).shards) {
      EXPECT_GE(c.node(i).gossip->discovery().connected_in_shard(s), 4u) << "node " << i;
    }
  }
  publish_and_check(c, rng, 10, 1);
  const Traffic t = traffic(c);
  std::cout << "[sim] duplicate factor " << t.duplicate_factor << " (" << t.copies << " copies / "
            << t.first << " first deliveries), mean mesh degree " << t.mean_mesh_degree << "\n";
  // Each node forwards a message once per mesh link and the publisher's
  // flood adds at most one copy per subscriber: the factor stays near the
  // mesh degree. More would mean duplicates are being re-forwarded.
  EXPECT_GE(t.duplicate_factor, 1.0);
  EXPECT_LE(t.duplicate_factor, 1.25 * t.mean_mesh_degree);
  EXPECT_LE(t.duplicate_factor, 12.0);
}

TEST(GossipSim, MeshesHealAfterTwentyPercentOfNodesDie) {
  auto rng = cairn::test::seeded_rng(2);
  auto cluster = warmed_up(rng);
  SimCluster& c = *cluster;
  const auto order = shuffled(c.size(), rng);
  for (size_t k = 0; k < c.size() / 5; ++k) c.kill(order[k]);
  // Peers see the resets one link latency later; the next heartbeat of each
  // survivor grafts replacements from its connected peers.
  constexpr int kHealBound = 3;
  const int heal = heartbeats_until_meshes_in_range(c, 30);
  std::cout << "[sim] meshes back in range " << heal << " heartbeat(s) after killing "
            << c.size() / 5 << " of " << c.size() << " nodes (bound " << kHealBound << ")\n";
  EXPECT_GE(heal, 1) << mesh_violation(c);
  EXPECT_LE(heal, kHealBound);

  // Discovery restores the per-shard connection floor and delivery is whole.
  c.run_for(10s);
  EXPECT_EQ(mesh_violation(c), "");
  publish_and_check(c, rng, 3, 2);
}

TEST(GossipSim, HealedPartitionReconverges) {
  auto rng = cairn::test::seeded_rng(3);
  auto cluster = warmed_up(rng);
  SimCluster& c = *cluster;
  const auto order = shuffled(c.size(), rng);
  std::set<size_t> side(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(c.size() / 2));
  c.partition(side);
  // Longer than the idle timeout (45 s): every connection across the split
  // is gone and each side meshes on its own.
  c.run_for(120s);
  size_t across = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    for (const auto& peer : c.node(i).gossip->host().peers()) {
      for (size_t j = 0; j < c.size(); ++j) {
        if (c.node(j).gossip->id() == peer.id && side.count(i) != side.count(j)) ++across;
      }
    }
  }
  EXPECT_EQ(across, 0u);

  c.heal();
  // Nodes short of peers keep dialing (known records with backoff, bootstrap
  // every bootstrap_refresh = 30 s), so the two sides meet again within that.
  constexpr int kReconvergeBound = 35;
  const int back = heartbeats_until_meshes_in_range(c, 60);
  std::cout << "[sim] meshes back in range " << back << " heartbeat(s) after the partition healed"
            << " (bound " << kReconvergeBound << ")\n";
  EXPECT_GE(back, 1) << mesh_violation(c);
  EXPECT_LE(back, kReconvergeBound);
  c.run_for(10s);
  publish_and_check(c, rng, 3, 3);
}

}  // namespace
}  // namespace cairn::p2p
