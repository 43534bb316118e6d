#include "node/local_network.hpp"

#include <asio/any_io_executor.hpp>
#include <thread>

#include "cairn/p2p/clock.hpp"

namespace cairn::node {

using namespace std::chrono_literals;

NodeSettings LocalNetwork::node_settings(const std::filesystem::path& data_dir) {
  NodeSettings s;
  s.data_dir = data_dir.string();
  s.listen = "127.0.0.1:0";
  s.api.listen.clear();
  s.discovery.chain_refresh = 500ms;
  s.discovery.bootstrap_retry = 500ms;
  s.chain.registry_refresh = 500ms;
  s.gossip.heartbeat_interval = 200ms;
  s.fetch.hedge_after = 500ms;
  s.stop_timeout = 5s;
  return s;
}

LocalNetwork::LocalNetwork(std::filesystem::path dir, std::shared_ptr<contracts::DevChain> chain)
    : dir_(std::move(dir)), chain_(std::move(chain)) {
  resume_blocks();
}

void LocalNetwork::pause_blocks() {
  producer_.stop();
  chain_->stop();
}

void LocalNetwork::resume_blocks() {
  chain_->start(producer_.executor(), p2p::real_clock());
  producer_.start();
}

Result<std::unique_ptr<LocalNetwork>> LocalNetwork::open(const std::filesystem::path& dir,
                                                         const erasure::NetworkParams& params) {
  contracts::DevChainSettings dcs;
  dcs.db_path = (dir / "chain").string();
  auto chain = contracts::DevChain::open(dcs, SigningKey::generate(), params);
  if (!chain) return tl::unexpected(with_context(chain.error(), "opening the local network's dev chain"));
  std::shared_ptr<contracts::DevChain> shared(std::move(*chain));
  return std::unique_ptr<LocalNetwork>(new LocalNetwork(dir, std::move(shared)));
}

LocalNetwork::~LocalNetwork() {
  for (size_t i = 0; i < nodes_.size(); ++i) (void)remove(i);
  pause_blocks();
}

std::filesystem::path LocalNetwork::dir(size_t i) const { return dir_ / ("node" + std::to_string(i)); }

Result<Node*> LocalNetwork::add(const std::function<void(NodeSettings&)>& tweak,
                                const std::function<void(NodeOptions&)>& inject) {
  const size_t i = nodes_.size();
  auto s = node_settings(dir(i));
  for (const auto& n : nodes_) {
    if (n) {
      s.bootstrap.push_back(n->p2p_address());
      break;
    }
  }
  if (tweak) tweak(s);
  NodeOptions o;
  o.chain = chain_;
  o.seed = 1000 + i;
  if (inject) inject(o);
  auto n = Node::open(s, o);
  if (!n) return tl::unexpected(with_context(n.error(), "opening local node " + std::to_string(i)));
  if (auto st = (*n)->start(); !st)
    return tl::unexpected(with_context(st.error(), "starting local node " + std::to_string(i)));
  nodes_.push_back(std::move(*n));
  return nodes_.back().get();
}

Status LocalNetwork::remove(size_t i) {
  if (i >= nodes_.size() || !nodes_[i]) return {};
  auto st = nodes_[i]->stop();
  nodes_[i].reset();
  return st;
}

bool LocalNetwork::meshed() {
  std::vector<Node*> live;
  for (auto& n : nodes_) {
    if (n) live.push_back(n.get());
  }
  return meshed(live, *chain_);
}

bool LocalNetwork::meshed(const std::vector<Node*>& live, contracts::Chain& chain) {
  for (Node* n : live) {
    auto st = n->service().status();
    if (!st || !st->chain.registered || st->peers.size() + 1 < live.size()) return false;
  }
  // The registry lists them all (min_replicas caps and reads use it).
  return chain.nodes(ShardId{0}).value_or(std::vector<contracts::NodeRecord>{}).size() >= live.size();
}

bool LocalNetwork::wait_meshed(std::chrono::milliseconds limit) {
  cairn::Clock& real = p2p::real_clock();
  const auto deadline = real.now() + limit;
  while (real.now() < deadline) {
    if (meshed()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return meshed();
}

}  // namespace cairn::node
