#pragma once
// ChainLink: the node's one connection to consensus. It owns a thread that
// makes every blocking Chain call (the network thread never does), and
// keeps in memory what other components must answer without blocking:
//   - the registry of nodes per shard (the p2p EndpointSource, min_replicas
//     caps, blob holders' endpoints), refreshed periodically and on
//     NodeRegistered events;
//   - recent blob registrations (id -> index, size), learned from each
//     block's events;
//   - the head.
// It batches PutBlob transactions (one submit_many per batch), resolves each
// to its index from block events or receipts, resubmits lost ones, and
// keeps this node's RegisterNode current.
//
// Threading: every public method is thread-safe. Callbacks run on the chain
// thread: keep them short and never wait for the chain there.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cairn/contracts/chain.hpp"
#include "cairn/core/ed25519.hpp"
#include "cairn/p2p/discovery.hpp"
#include "node/metrics.hpp"

namespace cairn::node {

struct ChainLinkSettings {
  // PutBlob transactions per submit_many call.
  uint32_t register_batch = 256;
  // Registry (nodes per shard) refresh period.
  std::chrono::milliseconds registry_refresh{10000};
  // A PutBlob without a receipt after this many blocks is submitted again
  // (with a fresh nonce). Default 8.
  uint64_t resubmit_after_blocks = 8;
  // Shards beyond the open ones whose node lists are kept too (auto nodes
  // register them ahead: ServedShards::kAutoLookahead).
  uint32_t refresh_ahead_shards = 8;
};

class ChainLink final : public p2p::EndpointSource {
 public:
  using RegisterDone = std::function<void(Result<contracts::BlobRecord>)>;
  using HeadListener = std::function<void(const contracts::BlockHeader&)>;

  // `chain` must outlive the link. Call start() to begin.
  ChainLink(std::shared_ptr<contracts::Chain> chain, const SigningKey& identity,
            ChainLinkSettings settings, metrics::Registry& metrics);
  ~ChainLink() override;  // stop()
  ChainLink(const ChainLink&) = delete;
  ChainLink& operator=(const ChainLink&) = delete;

  // Reads the head, our nonce and the registry, subscribes to heads and
  // starts the thread. Errors of the first chain calls are returned.
  Status start();
  // Stops the thread; outstanding registrations get Errc::cancelled.
  void stop();

  contracts::Chain& chain() noexcept { return *chain_; }
  const contracts::ChainInfo& info() const { return chain_->info(); }

  // Registers a blob (PutBlob) unless the registry already lists it; `done`
  // runs once on the chain thread with the registry entry or the error
  // (the contract's rejection reason, cancelled on stop).
  void register_blob(const BlobId& id, uint32_t size, RegisterDone done);

  // Builds one transaction with this node's next nonce and submits it, on
  // the chain thread (the one owner of the nonce); `done` runs there with
  // the transaction hash or the admission error (cancelled when stopping).
  // A conflict (nonce race) refreshes the nonce for the next transaction.
  using TxBuilder = std::function<Bytes(uint64_t nonce)>;
  void submit_tx(TxBuilder build, std::function<void(Result<Hash32>)> done);

  // Keeps RegisterNode{self, endpoint, shards} current on the chain:
  // submitted now and again whenever the arguments change.
  void set_registration(std::string endpoint, std::vector<ShardId> shards);
  bool registered() const;

  // Registry answers from memory. Nodes exclude none (callers filter self).
  std::vector<contracts::NodeRecord> nodes(ShardId shard) const;
  std::optional<contracts::NodeRecord> node(const NodeId& id) const;
  // Nodes the registry lists for `shard`, counting `self` once when
  // `self_serves` even if its registration is not in yet.
  size_t serving_count(ShardId shard, const NodeId& self, bool self_serves) const;
  // A recently registered blob, from memory; nullopt when not seen recently.
  std::optional<contracts::BlobRecord> recent_blob(const BlobId& id) const;
  // The registry entry of `id`, from memory or (blocking) from the chain.
  // not_found when the chain has no such blob. Never call on the network thread.
  Result<contracts::BlobRecord> lookup_blob(const BlobId& id);
  Result<contracts::BlobRecord> lookup_index(BlobIndex index);

  std::optional<contracts::BlockHeader> head() const;
  // Shards open now: 0 .. (blob_count / blobs_per_shard), inclusive.
  uint32_t open_shards() const;

  // Listeners (add before start()); run on the chain thread, in block order.
  void on_head(HeadListener listener);

  // p2p::EndpointSource: answered from memory (never blocks).
  Result<std::vector<p2p::PeerRecord>> endpoints_for_shard(ShardId shard) override;

 private:
  struct Waiting {
    BlobId id;
    uint32_t size = 0;
    std::optional<Hash32> tx;
    uint64_t submitted_at = 0;  // head number when submitted
    std::chrono::steady_clock::time_point since;  // first asked
    std::vector<RegisterDone> done;
  };

  void run();
  void post(std::function<void()> task);
  void process_head(const contracts::BlockHeader& header);
  void submit_registrations();
  void refresh_registry();
  void submit_node_registration();
  void remember_blob(const contracts::BlobRecord& blob);
  void resolve(const BlobId& id, Result<contracts::BlobRecord> result);

  std::shared_ptr<contracts::Chain> chain_;
  SigningKey identity_;
  ChainLinkSettings settings_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::thread thread_;
  contracts::Subscription head_sub_;

  // chain-thread state (guarded by mu_ where also read by other threads)
  uint64_t next_nonce_ = 0;
  std::map<BlobId, Waiting> waiting_;        // registrations in progress
  std::vector<BlobId> to_submit_;            // ids in waiting_ without a tx yet
  std::map<uint32_t, std::vector<contracts::NodeRecord>> shard_nodes_;
  std::unordered_map<BlobId, contracts::BlobRecord> recent_;
  std::deque<BlobId> recent_order_;
  std::optional<contracts::BlockHeader> head_;
  std::string reg_endpoint_;
  std::vector<ShardId> reg_shards_;
  bool reg_wanted_ = false;
  std::optional<Hash32> reg_tx_;
  uint64_t reg_submitted_at_ = 0;
  bool registered_ = false;
  uint32_t last_open_ = 0;  // open shards at the last head
  std::chrono::steady_clock::time_point next_refresh_{};
  std::vector<HeadListener> head_listeners_;

  metrics::Counter& txs_submitted_;
  metrics::Counter& txs_failed_;
  metrics::Counter& blobs_registered_;
  metrics::Gauge& head_gauge_;
  metrics::Gauge& head_time_gauge_;  // the head block's sequencer timestamp, Unix seconds
  metrics::Histogram& register_latency_;
};

}  // namespace cairn::node
