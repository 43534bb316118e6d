#include "sim/sim_network.hpp"

#include <array>
#include <iostream>
#include <random>
#include <stdexcept>

#include "cairn/p2p/transport.hpp"
#include "node/local_network.hpp"

namespace cairn::sim {
namespace {

// Block timestamps follow the manual clock from a fixed Unix time.
class ClockTime final : public contracts::TimeSource {
 public:
  explicit ClockTime(p2p::ManualClock& clock) : clock_(clock) {}
  uint64_t now_ms() override {
    return kStartUnixMs +
           static_cast<uint64_t>(
               std::chrono::duration_cast<std::chrono::milliseconds>(clock_.elapsed()).count());
  }

 private:
  static constexpr uint64_t kStartUnixMs = 1'800'000'000'000;
  p2p::ManualClock& clock_;
};

}  // namespace

SimNetwork::SimNetwork(const erasure::NetworkParams& params, uint64_t seed)
    : seed_(seed),
      clock_(io_),
      net_(io_.get_executor(), clock_, seed),
      time_(std::make_shared<ClockTime>(clock_)) {
  std::cout << "[ sim      ] seed " << seed_ << " (CAIRN_TEST_SEED replays it)" << std::endl;
  contracts::DevChainSettings dcs;
  dcs.db_path = (dir_ / "chain").string();
  dcs.verify_threads = 1;
  std::mt19937_64 rng(seed_);
  std::array<uint8_t, 32> key_seed{};
  for (auto& b : key_seed) b = static_cast<uint8_t>(rng());
  auto chain = contracts::DevChain::open(dcs, SigningKey::from_seed(key_seed), params, time_);
  if (!chain)
    throw std::runtime_error("opening the simulation's dev chain: " + chain.error().to_string());
  chain_ = std::move(*chain);
  chain_->start(io_.get_executor(), clock_);
}

SimNetwork::~SimNetwork() {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].node) stop(i);
  }
  chain_->stop();
  clock_.settle();
}

erasure::NetworkParams SimNetwork::default_params() {
  auto p = erasure::NetworkParams::localnet();
  p.block_time_ms = 100;
  return p;
}

Result<node::PutBlobResult> SimNetwork::upload(size_t i, ByteSpan payload,
                                               std::chrono::milliseconds limit) {
  auto put = spawn([&] { return node(i).service().put_blob(payload, {}); });
  const auto returned = [&] {
    return put.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  };
  // The call reaches the uploader before virtual time moves on.
  settle_until([&] {
    auto st = node(i).service().status();
    return returned() || (st && st->pending_uploads > 0);
  });
  if (!run_until(returned, limit)) {
    // Give up: the node stops waiting once its own deadline passes.
    while (!returned()) clock_.advance(std::chrono::seconds(1));
    (void)put.get();
    return make_error(Errc::timeout, "the upload did not return within " +
                                         std::to_string(limit.count()) + " ms of virtual time");
  }
  return put.get();
}

std::string SimNetwork::name(size_t i) const {
  const uint32_t crashes = i < nodes_.size() ? nodes_[i].crashes : 0;
  return "n" + std::to_string(i) + (crashes > 0 ? "r" + std::to_string(crashes) : std::string());
}

int64_t SimNetwork::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.elapsed()).count();
}

bool SimNetwork::run_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  return clock_.run_until(done, limit);
}

node::Node& SimNetwork::add(const std::function<void(node::NodeSettings&)>& tweak) {
  const size_t i = nodes_.size();
  // The in-process network's settings (fast discovery, refreshes and
  // heartbeats); open() sets the simulated listen address.
  node::NodeSettings s = node::LocalNetwork::node_settings(dir_ / ("n" + std::to_string(i)));
  s.metrics.listen.clear();  // no listener threads: everything runs on the simulation's io_context
  for (const auto& n : nodes_) {
    if (n.node) {
      s.bootstrap.push_back(n.node->p2p_address());
      break;
    }
  }
  if (tweak) tweak(s);
  nodes_.push_back(Slot{s, nullptr});
  return open(i);
}

node::Node& SimNetwork::open(size_t i) {
  nodes_[i].settings.listen = name(i) + ":0";
  node::NodeOptions o;
  o.chain = chain_;
  o.clock = &clock_;
  o.io = &io_;
  // Stopping waits for goodbyes to cross the simulated links.
  o.idle = [this] { clock_.advance(std::chrono::milliseconds(1)); };
  o.seed = seed_ * 1000 + i;
  o.transport = [this, i](const asio::any_io_executor&) { return net_.make_transport(name(i)); };
  auto n = node::Node::open(nodes_[i].settings, o);
  if (!n) throw std::runtime_error("opening sim node " + name(i) + ": " + n.error().to_string());
  if (auto st = (*n)->start(); !st) {
    throw std::runtime_error("starting sim node " + name(i) + ": " + st.error().to_string());
  }
  nodes_[i].node = std::move(*n);
  return *nodes_[i].node;
}

void SimNetwork::stop(size_t i) {
  if (!nodes_.at(i).node) return;
  (void)nodes_[i].node->stop();
  nodes_[i].node.reset();
  clock_.settle();
}

void SimNetwork::crash(size_t i) {
  if (!nodes_.at(i).node) return;
  net_.crash(name(i), /*reset=*/true);
  stop(i);
  ++nodes_[i].crashes;
}

node::Node& SimNetwork::restart(size_t i) {
  if (nodes_.at(i).node) stop(i);
  return open(i);
}

bool SimNetwork::settle_until(const std::function<bool()>& done,
                              std::chrono::milliseconds real_limit) {
  const auto give_up = std::chrono::steady_clock::now() + real_limit;
  for (;;) {
    clock_.settle();
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= give_up) return false;
    std::this_thread::yield();
  }
}

uint64_t SimNetwork::blobs_stored(size_t i) {
  auto st = node(i).service().status();
  return st ? st->blobs_stored : 0;
}

bool SimNetwork::meshed() {
  std::vector<node::Node*> live;
  for (auto& n : nodes_) {
    if (n.node) live.push_back(n.node.get());
  }
  return node::LocalNetwork::meshed(live, *chain_);
}

uint64_t SimNetwork::counter(size_t i, const std::string& name) {
  return node(i).metrics().counter(name, "").value();
}

}  // namespace cairn::sim
