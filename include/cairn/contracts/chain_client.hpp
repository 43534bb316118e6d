#pragma once
// ChainClient: a node's one connection to consensus. It makes, on its own
// executor, every blocking Chain call (a network thread never does), and keeps
// in memory what other components must answer without blocking:
//   - the registry of nodes per shard (peer endpoints, min_replicas caps,
//     blob holders' endpoints), refreshed periodically and on
//     NodeRegistered events;
//   - recent blob registrations (id -> index, size), learned from each
//     block's events;
//   - the head.
// It batches PutBlob transactions (one submit_many per batch), resolves each
// to its index from block events or receipts, resubmits lost ones, and
// keeps this node's RegisterNode current.
//
// Threading: the client's work (head processing, submissions, refreshes)
// runs on the executor it is given, which must be serial (one thread, or a
// strand) and may block on chain calls: never a network thread. Time and
// timers come from the injected Clock, so a test can run the client on a
// manual clock. Every public method is thread-safe. Callbacks (listeners,
// the observer, RegisterDone) run on the executor: keep them short and never
// wait for the chain there.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cairn/contracts/chain.hpp"
#include "cairn/core/asio_fwd.hpp"
#include "cairn/core/clock.hpp"
#include "cairn/core/ed25519.hpp"

namespace cairn::contracts {

struct ChainClientSettings {
  // PutBlob transactions per submit_many call.
  uint32_t register_batch = 256;
  // Registry (nodes per shard) refresh period.
  std::chrono::milliseconds registry_refresh{10000};
  // A PutBlob without a receipt after this many blocks is submitted again
  // (with a fresh nonce). Default 8.
  uint64_t resubmit_after_blocks = 8;
  // Shards beyond the open ones whose node lists are kept too (auto nodes
  // register them ahead).
  uint32_t refresh_ahead_shards = 8;
};

// What the client reports as it works, for metrics. Runs on the client's
// executor; the defaults ignore everything.
class ChainClientObserver {
 public:
  virtual ~ChainClientObserver() = default;
  // Transactions handed to the chain (admitted or not).
  virtual void txs_submitted(size_t /*count*/) {}
  // A transaction refused at admission or rejected by the contract.
  virtual void tx_failed() {}
  // A registration resolved to its index, `seconds` after it was asked for.
  virtual void blob_registered(double /*seconds*/) {}
  // The newest head seen (at start and then once per block).
  virtual void head(const BlockHeader& /*header*/) {}
};

class ChainClient final {
 public:
  using RegisterDone = std::function<void(Result<BlobRecord>)>;
  using HeadListener = std::function<void(const BlockHeader&)>;

  // `chain`, `clock` and `observer` (optional) must outlive the client.
  // Call start() to begin.
  ChainClient(std::shared_ptr<Chain> chain, const SigningKey& identity,
              ChainClientSettings settings, const asio::any_io_executor& executor, Clock& clock,
              ChainClientObserver* observer = nullptr);
  ~ChainClient();  // stop()
  ChainClient(const ChainClient&) = delete;
  ChainClient& operator=(const ChainClient&) = delete;

  // Reads the head, our nonce and the registry (blocking, on the caller's
  // thread), then subscribes to heads. Errors of the first chain calls are
  // returned.
  Status start();
  // Waits for a task running on the executor, then nothing of the client
  // runs there any more; outstanding registrations get Errc::cancelled.
  // Call it from the executor's thread outside the client's callbacks, or
  // when no thread runs the executor (its timers are destroyed here).
  void stop();

  Chain& chain() noexcept { return *chain_; }
  // The identity the client transacts as.
  NodeId self() const { return identity_.public_key(); }
  const ChainInfo& info() const { return chain_->info(); }

  // Registers a blob (PutBlob) unless the registry already lists it; `done`
  // runs once on the executor with the registry entry or the error
  // (the contract's rejection reason, cancelled on stop).
  void register_blob(const BlobId& id, uint32_t size, RegisterDone done);

  // Builds one transaction with this node's next nonce and submits it, on
  // the executor (the one owner of the nonce); `done` runs there with
  // the transaction hash or the admission error (cancelled when stopping).
  // A conflict (nonce race) refreshes the nonce for the next transaction.
  using TxBuilder = std::function<Bytes(uint64_t nonce)>;
  void submit_tx(TxBuilder build, std::function<void(Result<Hash32>)> done);

  // Keeps RegisterNode{self, endpoint, shards} current on the chain:
  // submitted now and again whenever the arguments change.
  void set_registration(std::string endpoint, std::vector<ShardId> shards);
  bool registered() const;

  // Registry answers from memory. Nodes exclude none (callers filter self).
  std::vector<NodeRecord> nodes(ShardId shard) const;
  std::optional<NodeRecord> node(const NodeId& id) const;
  // Nodes the registry lists for `shard`, counting `self` once when
  // `self_serves` even if its registration is not in yet.
  size_t serving_count(ShardId shard, const NodeId& self, bool self_serves) const;
  // A recently registered blob, from memory; nullopt when not seen recently.
  std::optional<BlobRecord> recent_blob(const BlobId& id) const;
  // The registry entry of `id`, from memory or (blocking) from the chain.
  // not_found when the chain has no such blob. Never call on the network thread.
  Result<BlobRecord> lookup_blob(const BlobId& id);
  Result<BlobRecord> lookup_index(BlobIndex index);

  std::optional<BlockHeader> head() const;
  // Shards open now: 0 .. (blob_count / blobs_per_shard), inclusive.
  uint32_t open_shards() const;

  // Listeners (add before start()); run on the executor, in block
  // order.
  void on_head(HeadListener listener);

 private:
  struct Waiting {
    BlobId id;
    uint32_t size = 0;
    std::optional<Hash32> tx;
    uint64_t submitted_at = 0;  // head number when submitted
    TimePoint since;            // first asked
    std::vector<RegisterDone> done;
  };

  struct Runner;
  // Runs `task` on the executor, then schedule() (any thread).
  void post(std::function<void()> task);
  void schedule();
  void arm_refresh(Duration delay);
  void process_head(const BlockHeader& header);
  // One batch; false when the chain put some back for a later retry.
  bool submit_registrations();
  void refresh_registry();
  void submit_node_registration();
  void remember_blob(const BlobRecord& blob);
  void resolve(const BlobId& id, Result<BlobRecord> result);

  std::shared_ptr<Chain> chain_;
  SigningKey identity_;
  ChainClientSettings settings_;
  Clock& clock_;
  ChainClientObserver* observer_;

  mutable std::mutex mu_;
  bool stopping_ = false;
  size_t queued_heads_ = 0;
  bool refresh_wanted_ = false;  // a block asked for a registry refresh
  std::unique_ptr<Runner> runner_;
  Subscription head_sub_;

  // executor state (guarded by mu_ where also read by other threads)
  uint64_t next_nonce_ = 0;
  std::map<BlobId, Waiting> waiting_;  // registrations in progress
  std::vector<BlobId> to_submit_;      // ids in waiting_ without a tx yet
  std::map<uint32_t, std::vector<NodeRecord>> shard_nodes_;
  std::unordered_map<BlobId, BlobRecord> recent_;
  std::deque<BlobId> recent_order_;
  std::optional<BlockHeader> head_;
  std::string reg_endpoint_;
  std::vector<ShardId> reg_shards_;
  bool reg_wanted_ = false;
  std::optional<Hash32> reg_tx_;
  uint64_t reg_submitted_at_ = 0;
  bool registered_ = false;
  uint32_t last_open_ = 0;  // open shards at the last head
  std::vector<HeadListener> head_listeners_;
};

}  // namespace cairn::contracts
