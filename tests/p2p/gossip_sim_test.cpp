// Multi-node gossip simulation. TEMPORARY backend: a small event queue that
// stands in for the in-memory transport until it lands; the scenario below
// is what stays.

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <iostream>
#include <map>
#include <numeric>
#include <queue>
#include <random>
#include <set>

#include "cairn/p2p/discovery.hpp"
#include "cairn/p2p/gossip.hpp"
#include "support/test_util.hpp"

namespace cairn::p2p {
namespace {

using namespace std::chrono_literals;

class DevCluster {
 public:
  struct Node {
    NodeId id;
    std::string name;
    std::vector<ShardId> shards;
    std::unique_ptr<GossipRouter> router;
    std::unique_ptr<Discovery> discovery;
    bool alive = true;
    std::set<size_t> conns;
    std::map<MessageId, size_t> delivered;
  };

  DevCluster(const std::vector<std::vector<ShardId>>& shards, std::vector<size_t> bootstrap, uint64_t seed)
      : rng_(seed) {
    for (size_t i = 0; i < shards.size(); ++i) {
      Node n;
      put_be<uint64_t>(n.id.bytes.data(), seed);
      put_be<uint32_t>(n.id.bytes.data() + 8, static_cast<uint32_t>(i));
      n.name = "n" + std::to_string(i) + ":1";
      n.shards = shards[i];
      n.router = std::make_unique<GossipRouter>(n.id, GossipSettings{}, rng_());
      DiscoverySettings ds;
      for (size_t b : bootstrap) {
        if (b != i) ds.bootstrap.push_back("n" + std::to_string(b) + ":1");
      }
      n.discovery = std::make_unique<Discovery>(n.id, n.name, n.shards, ds, rng_());
      by_name_[n.name] = i;
      nodes_.push_back(std::move(n));
    }
  }

  void start() {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      for (ShardId s : nodes_[i].shards) nodes_[i].router->subscribe(s, now_);
      nodes_[i].discovery->tick(now_);
      pump(i);
      const auto phase = std::chrono::milliseconds(rng_() % 1000);
      schedule(phase, [this, i] { heartbeat(i); });
    }
  }

  void run_for(Duration d) {
    const TimePoint end = now_ + d;
    while (!events_.empty() && events_.top().at <= end) {
      Event e = events_.top();
      events_.pop();
      now_ = e.at;
      e.fn();
    }
    now_ = end;
  }

  size_t size() const { return nodes_.size(); }
  Node& node(size_t i) { return nodes_[i]; }
  TimePoint now() const { return now_; }

  Result<MessageId> publish(size_t i, ShardId s, Bytes data) {
    auto r = nodes_[i].router->publish(s, std::move(data), now_);
    pump(i);
    return r;
  }

  void kill(size_t i) {
    nodes_[i].alive = false;
    for (size_t j : nodes_[i].conns) {
      schedule(kLatency, [this, i, j] { drop(j, i); });
    }
    nodes_[i].conns.clear();
  }

  void partition(const std::set<size_t>& side_a) {
    side_a_ = side_a;
    partitioned_ = true;
    const uint64_t epoch = ++partition_epoch_;
    schedule(45s, [this, epoch] {
      if (!partitioned_ || epoch != partition_epoch_) return;
      for (size_t i = 0; i < nodes_.size(); ++i) {
        for (size_t j : std::set<size_t>(nodes_[i].conns)) {
          if (!reachable(i, j)) drop(i, j);
        }
      }
    });
  }
  void heal() {
    partitioned_ = false;
    auto held = std::move(held_);
    held_.clear();
    for (auto& fn : held) schedule(kLatency, std::move(fn));
  }

 private:
  static constexpr Duration kLatency = 5ms;
  struct Event {
    TimePoint at;
    uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Event& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };

  void schedule(Duration d, std::function<void()> fn) {
    events_.push(Event{now_ + d, seq_++, std::move(fn)});
  }
  bool reachable(size_t a, size_t b) const {
    return !partitioned_ || (side_a_.count(a) != 0) == (side_a_.count(b) != 0);
  }

  void heartbeat(size_t i) {
    if (!nodes_[i].alive) return;
    nodes_[i].router->heartbeat(now_);
    nodes_[i].discovery->tick(now_);
    pump(i);
    schedule(1s, [this, i] { heartbeat(i); });
  }

  void drop(size_t i, size_t j) {
    if (nodes_[i].conns.erase(j) == 0) return;
    nodes_[i].router->remove_peer(nodes_[j].id, now_);
    nodes_[i].discovery->peer_disconnected(nodes_[j].id, now_);
    pump(i);
    if (nodes_[j].alive && nodes_[j].conns.count(i) != 0) {
      schedule(kLatency, [this, i, j] { drop(j, i); });
    }
  }

  void deliver(size_t from, size_t to, std::function<void()> fn) {
    auto guarded = [this, from, to, fn = std::move(fn)] {
      if (!nodes_[to].alive || nodes_[to].conns.count(from) == 0) return;
      fn();
      pump(to);
    };
    if (!reachable(from, to)) {
      held_.push_back(std::move(guarded));
      return;
    }
    schedule(kLatency, std::move(guarded));
  }

  void connect(size_t i, size_t j, const std::string& address) {
    auto add = [this](size_t a, size_t b, bool outbound) {
      nodes_[a].conns.insert(b);
      nodes_[a].router->add_peer(nodes_[b].id, outbound, now_);
      nodes_[a].discovery->peer_connected(nodes_[b].id, nodes_[b].name, outbound, now_);
    };
    if (nodes_[i].conns.count(j) == 0) {
      add(i, j, true);
      add(j, i, false);
    }
    nodes_[i].discovery->dial_result(address, nodes_[j].id, now_);
    pump(i);
    pump(j);
  }

  void pump(size_t i) {
    Node& n = nodes_[i];
    for (auto& out : n.router->take_outputs()) {
      if (auto* send = std::get_if<GossipSend>(&out)) {
        auto j = index_of(send->peer);
        auto bytes = encode_gossip_rpc(send->rpc);
        EXPECT_TRUE(bytes);
        deliver(i, j, [this, i, j, b = std::move(*bytes)] {
          nodes_[j].router->handle_frame(nodes_[i].id, b, now_);
        });
      } else if (auto* d = std::get_if<GossipDeliver>(&out)) {
        ++n.delivered[d->id];
      } else if (auto* x = std::get_if<GossipDisconnect>(&out)) {
        const size_t j = index_of(x->peer);
        drop(i, j);
      }
    }
    for (auto& out : n.discovery->take_outputs()) {
      if (auto* dial = std::get_if<DiscoveryDial>(&out)) {
        auto it = by_name_.find(dial->address);
        const std::string address = dial->address;
        if (it == by_name_.end() || !nodes_[it->second].alive) {
          schedule(kLatency, [this, i, address] {
            nodes_[i].discovery->dial_result(address, make_error(Errc::io_error, "refused"), now_);
            pump(i);
          });
          continue;
        }
        const size_t j = it->second;
        if (!reachable(i, j)) {
          schedule(10s, [this, i, address] {
            nodes_[i].discovery->dial_result(address, make_error(Errc::timeout, "connect"), now_);
            pump(i);
          });
          continue;
        }
        schedule(3 * kLatency, [this, i, j, address] {
          if (!nodes_[i].alive) return;
          if (!nodes_[j].alive || !reachable(i, j)) {
            nodes_[i].discovery->dial_result(address, make_error(Errc::io_error, "refused"), now_);
            pump(i);
            return;
          }
          connect(i, j, address);
        });
      } else if (auto* send = std::get_if<DiscoverySend>(&out)) {
        const size_t j = index_of(send->peer);
        auto bytes = encode_peer_exchange(send->px);
        EXPECT_TRUE(bytes);
        deliver(i, j, [this, i, j, b = std::move(*bytes)] {
          EXPECT_TRUE(nodes_[j].discovery->handle_frame(nodes_[i].id, b, now_));
        });
      } else if (auto* drop_out = std::get_if<DiscoveryDisconnect>(&out)) {
        const size_t j = index_of(drop_out->peer);
        schedule(kLatency, [this, i, j] { drop(i, j); });
      }
    }
  }

  size_t index_of(const NodeId& id) const {
    return get_be<uint32_t>(id.bytes.data() + 8);
  }

  std::mt19937_64 rng_;
  std::vector<Node> nodes_;
  std::map<std::string, size_t> by_name_;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  std::vector<std::function<void()>> held_;
  std::set<size_t> side_a_;
  bool partitioned_ = false;
  uint64_t partition_epoch_ = 0;
  uint64_t seq_ = 0;
  TimePoint now_{};
};

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

bool serves(const DevCluster::Node& n, ShardId s) {
  return std::find(n.shards.begin(), n.shards.end(), s) != n.shards.end();
}

// Mesh degree bounds for every live node and served shard: [min(D_low, live
// subscribers - 1), D_high]. Returns a description of the first violation.
std::string mesh_violation(DevCluster& c) {
  for (size_t i = 0; i < c.size(); ++i) {
    auto& n = c.node(i);
    if (!n.alive) continue;
    for (ShardId s : n.shards) {
      size_t live = 0;
      for (size_t j = 0; j < c.size(); ++j) if (c.node(j).alive && serves(c.node(j), s)) ++live;
      const size_t low = std::min<size_t>(4, live - 1);
      const size_t deg = n.router->mesh(s).size();
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
std::vector<Publication> publish_round(DevCluster& c, std::mt19937_64& rng, int round) {
  std::vector<Publication> out;
  for (uint32_t s = 0; s < kShards; ++s) {
    std::vector<size_t> subs;
    for (size_t i = 0; i < c.size(); ++i) {
      if (c.node(i).alive && serves(c.node(i), ShardId(s))) subs.push_back(i);
    }
    const size_t from = subs[rng() % subs.size()];
    Bytes data = test::random_bytes(rng, 200);
    data[0] = static_cast<uint8_t>(round);
    auto id = c.publish(from, ShardId(s), data);
    EXPECT_TRUE(id);
    out.push_back({*id, ShardId(s), from});
  }
  return out;
}

void expect_delivered(DevCluster& c, const std::vector<Publication>& pubs) {
  for (const auto& p : pubs) {
    for (size_t i = 0; i < c.size(); ++i) {
      auto& n = c.node(i);
      if (!n.alive) continue;
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

TEST(GossipSim, SixtyNodesSixSubnets) {
  const uint64_t seed = test::test_seed();
  std::cout << "[sim] seed " << seed << "\n";
  auto rng = test::seeded_rng(42);
  DevCluster c(layout(), {0, 1}, seed);
  c.start();
  c.run_for(30s);
  EXPECT_EQ(mesh_violation(c), "");

  auto pubs = publish_round(c, rng, 1);
  c.run_for(5s);
  expect_delivered(c, pubs);
  uint64_t received = 0, first = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    received += c.node(i).router->stats().received;
    first += c.node(i).router->stats().first_received;
  }
  const double dup = static_cast<double>(received) / static_cast<double>(first);
  std::cout << "[sim] duplicate factor " << dup << " (" << received << " copies / " << first
            << " first deliveries)\n";
  {
    size_t sum = 0, cnt = 0;
    for (size_t i = 0; i < c.size(); ++i)
      for (ShardId sh : c.node(i).shards) { sum += c.node(i).router->mesh(sh).size(); ++cnt; }
    std::cout << "[sim] mean mesh degree " << static_cast<double>(sum) / static_cast<double>(cnt) << "\n";
  }

  // Kill 20%.
  std::vector<size_t> order(c.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  for (size_t k = 0; k < 12; ++k) c.kill(order[k]);
  int heal = -1;
  for (int hb = 1; hb <= 30; ++hb) {
    c.run_for(1s);
    if (mesh_violation(c).empty()) {
      heal = hb;
      break;
    }
  }
  std::cout << "[sim] meshes healed " << heal << " heartbeats after killing 12 nodes\n";
  EXPECT_GE(heal, 1);
  c.run_for(10s);
  EXPECT_EQ(mesh_violation(c), "");
  pubs = publish_round(c, rng, 2);
  c.run_for(5s);
  expect_delivered(c, pubs);

  // 50/50 partition for 2 minutes, then heal.
  std::set<size_t> side;
  std::vector<size_t> live;
  for (size_t i = 0; i < c.size(); ++i) if (c.node(i).alive) live.push_back(i);
  std::shuffle(live.begin(), live.end(), rng);
  for (size_t k = 0; k < live.size() / 2; ++k) side.insert(live[k]);
  c.partition(side);
  c.run_for(120s);
  std::cout << "[sim] during partition: " << mesh_violation(c) << "\n";
  c.heal();
  int reconverge = -1;
  for (int hb = 1; hb <= 120; ++hb) {
    c.run_for(1s);
    if (mesh_violation(c).empty()) {
      reconverge = hb;
      break;
    }
  }
  std::cout << "[sim] reconverged " << reconverge << " heartbeats after heal\n";
  c.run_for(10s);
  pubs = publish_round(c, rng, 3);
  c.run_for(5s);
  expect_delivered(c, pubs);
}

}  // namespace
}  // namespace cairn::p2p
