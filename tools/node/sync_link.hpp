#pragma once
// The node's adapters between the chain client and the engines' ports: the
// chain registry as a shards::Registry (shard sync and scrub,
// docs/sync-and-scrub.md) and as the p2p layer's EndpointSource, the chain
// client's observer as metrics, and peers' fragments over p2p
// request/response (fragments_request, docs/node-protocol.md) as a
// shards::RemoteFragments.
//
// Threading: ChainRegistry blocks (chain queries): the engines call it on
// the worker pool. RegistryEndpoints answers from the client's memory.
// PeerFragments never blocks: fetches are posted to the network thread, and
// their completions run there.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cairn/contracts/chain_client.hpp"
#include "cairn/p2p/discovery.hpp"
#include "cairn/shards/registry.hpp"
#include "cairn/shards/remote.hpp"
#include "node/context.hpp"

namespace cairn::node {

// A chain record as the engines see it (without the block).
inline shards::RegisteredBlob registered_blob(const contracts::BlobRecord& r) {
  return shards::RegisteredBlob{r.index, r.commitment, r.size};
}

class ChainRegistry final : public shards::Registry {
 public:
  // Blobs registered in the last `settle_blocks` blocks are not listed yet
  // (SyncSettings::settle_blocks).
  ChainRegistry(contracts::ChainClient& chain, const erasure::NetworkParams& params, uint32_t settle_blocks);

  Result<uint64_t> blob_count(ShardId shard) override;
  // One chain call per Chain::kMaxBlobRange blobs, plus one for the settled
  // count.
  Result<std::vector<shards::RegisteredBlob>> blobs(ShardId shard, BlobIndex from, size_t limit) override;
  Result<BlockNumber> head() override;
  // Not held back by settle_blocks: the chain client's memory, else the chain.
  Result<shards::RegisteredBlob> lookup(const BlobId& id) override;

 private:
  contracts::ChainClient& chain_;
  erasure::NetworkParams params_;
  uint32_t settle_blocks_;
};

// The registered nodes of a shard as peers to dial (never blocks).
class RegistryEndpoints final : public p2p::EndpointSource {
 public:
  explicit RegistryEndpoints(contracts::ChainClient& chain) : chain_(chain) {}
  // The shard's registered nodes with an endpoint, except this one;
  // not_found when there are none.
  Result<std::vector<p2p::PeerRecord>> endpoints_for_shard(ShardId shard) override;

 private:
  contracts::ChainClient& chain_;
};

// The chain client's reports as the cairn_chain_* metrics.
class ChainMetrics final : public contracts::ChainClientObserver {
 public:
  explicit ChainMetrics(metrics::Registry& metrics);
  void txs_submitted(size_t count) override { txs_submitted_.inc(count); }
  void tx_failed() override { txs_failed_.inc(); }
  void blob_registered(double seconds) override {
    blobs_registered_.inc();
    register_latency_.observe(seconds);
  }
  void head(const contracts::BlockHeader& header) override;

 private:
  metrics::Counter& txs_submitted_;
  metrics::Counter& txs_failed_;
  metrics::Counter& blobs_registered_;
  metrics::Gauge& head_gauge_;
  metrics::Gauge& head_time_gauge_;  // the head block's sequencer timestamp, Unix seconds
  metrics::Histogram& register_latency_;
};

class PeerFragments final : public shards::RemoteFragments {
 public:
  explicit PeerFragments(NodeContext& ctx);
  ~PeerFragments() override;

  // Nodes the chain registry lists for `shard`, except this one.
  std::vector<NodeId> peers(ShardId shard) override;
  // Errc::cancelled at once when the network thread is gone, invalid_argument
  // when the request asks for more than the n fragments a blob has. A
  // registered peer without a session is dialed first (one dial per peer,
  // the fetches for it wait); an unreachable peer answers io_error, a peer
  // without the blob not_found. request.at_least travels in a version 2
  // fragments request, with fetch.request_timeout as its deadline; a peer
  // that refuses version 2 (invalid_request: a
  // node speaking only version 1) gets the request again as version 1,
  // without at_least, and every later one too (docs/node-protocol.md 5).
  Result<shards::FetchHandle> fetch(const NodeId& peer, const shards::FragmentRequest& request,
                                    shards::FetchCallback done) override;
  void cancel(shards::FetchHandle handle) override;
  // invalid_data lowers the peer's score in the p2p layer (enough of it
  // bans the peer); the other verdicts change nothing here.
  void report(const NodeId& peer, shards::PeerVerdict verdict) override;

 private:
  struct Pending;
  void send(shards::FetchHandle handle);  // network thread
  // Completes a pending fetch (any thread; no-op when already finished).
  void complete(shards::FetchHandle handle, Result<shards::FragmentReply> result);

  NodeContext& ctx_;
  // Fetches waiting for a dial to their peer (network thread only).
  std::unordered_map<NodeId, std::vector<shards::FetchHandle>> dialing_;
  // Peers that refused a version 2 fragments request, for this node's
  // lifetime (network thread only). Bounded by the registered nodes.
  std::unordered_set<NodeId> v1_only_;
  std::atomic<shards::FetchHandle> next_{1};
  std::mutex mu_;
  std::unordered_map<shards::FetchHandle, std::shared_ptr<Pending>> pending_;
};

}  // namespace cairn::node
