#pragma once
// The ports the epoch driver (epoch_driver.hpp) is driven through: the
// chain, the peers, the kept responses and an observer, plus its settings
// and the epoch results it records. The node implements them over its chain
// client, gossip and request/response, its store and its metrics
// (tools/node/challenger.cpp); tests implement them in memory.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cairn/contracts/header.hpp"
#include "cairn/core/bytes.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/erasure/merkle.hpp"
#include "cairn/sampling/response.hpp"

namespace cairn::sampling {

// Storage challenges and replica-count proofs (docs/design.md section 7,
// docs/proof-format.md): this node's walk and anchor every epoch, and the
// responses of its shards' peers it verifies and keeps for proofs.
struct ChallengeSettings {
  // Answer the epoch challenge of every served shard (walk, SubmitResponse,
  // gossip the response) and verify and keep peers' responses. Default
  // true. Off: the node proves nothing and counts as missing every epoch.
  bool enabled = true;
  // Epochs whose responses are kept (RocksDB) to assemble proofs from, per
  // shard, counted back from the newest. Default 64 (~8.5 min of 8-block
  // epochs of 1 s blocks; ~210 KB per response and node). More: older
  // proofs stay servable, at that disk cost.
  uint32_t retain_epochs = 64;
  // Gossiped responses waiting for verification on the worker pool
  // (~210 KB each: ~13 MiB at the default). Default 64; beyond it new ones
  // are dropped (cairn_challenge_responses_dropped_total) and their nodes
  // are missing from this node's proofs of that epoch.
  uint32_t max_verify_queue = 64;
  // Blocks after the deadline (e*E + D) before the epoch's result is
  // recorded (own result, invalid and missing peers): responses are opened
  // and gossiped after their anchor block, so the last ones arrive then.
  // Default 2. A proof for the epoch is served from the same block on.
  uint32_t settle_blocks = 2;
  // A SubmitResponse without a receipt after this many blocks is submitted
  // again (fresh nonce) while the window is open. Default 1: the window is
  // only D blocks long.
  uint32_t resubmit_blocks = 1;
  // Score charged to a connected peer whose signed response fails
  // verification (the Host bans at its ban threshold, default -100).
  // Default 50. Applied by the node's EpochPeers::charge.
  double invalid_response_penalty = 50;
};

// ---- what the driver records ----

// A registered node of a shard that did not count in an epoch.
struct PeerEpochResult {
  NodeId node;
  std::string endpoint;  // as registered; may be empty
  std::string reason;    // why it did not count
};

// One finished epoch of one served shard, as this node saw it.
struct EpochResult {
  ShardId shard;
  Epoch epoch;
  BlockNumber start_block;  // e*E
  uint64_t blob_count = 0;  // blobs challenged (registered in the shard at e*E)
  // This node's own answer: "anchored" (response anchored, opened, kept and
  // gossiped), "failed" (see own_detail), "disabled" (challenges off).
  std::string own;
  std::string own_detail;   // the error when own is "failed"
  double walk_seconds = 0;  // this node's sequential walk
  BlockNumber anchored_in;  // block holding this node's anchor (0: none)
  // Distinct nodes whose valid, anchored response this node holds (itself
  // included): the replica count a proof from this node shows.
  uint32_t valid = 0;
  std::vector<PeerEpochResult> invalid;  // a response failed verification
  std::vector<PeerEpochResult> missing;  // no valid anchored response reached this node
};

// Finished epochs kept per shard (EpochDriver::history): 32 epochs of 8
// blocks at 1 s cover the last ~4 minutes of a dev chain and a few hours of
// a real one; each entry lists at most the shard's registered nodes, so the
// history stays small.
inline constexpr size_t kEpochHistory = 32;

// A replica-count proof file (docs/proof-format.md) as the node serves it.
struct EpochProof {
  ShardId shard;
  Epoch epoch;
  uint32_t replicas = 0;  // distinct nodes counted
  Bytes bytes;            // the encoded proof (cairn verify reads it)
};

// ---- the chain ----

// A response commitment anchored on chain, and its path in responses_root
// of block `anchored_in` (tree size: that header's response_count).
struct AnchoredCommitment {
  NodeId node;
  Hash32 commitment{};
  BlockNumber anchored_in{};
  erasure::MerkleProof path;  // empty in EpochChain::anchored() lists
};

// What became of a submitted anchor transaction once a block included it.
struct AnchorReceipt {
  BlockNumber block{};
  bool ok = false;         // anchored by this transaction
  bool duplicate = false;  // refused: an anchor of this node, shard and epoch already exists
  std::string detail;      // the refusal, for logs ("deadline_passed (...)")
};

// A registered node of a shard.
struct ShardMember {
  NodeId node;
  std::string endpoint;
  BlockNumber registered_in{};  // block of its latest registration
};

// Where a blob is registered.
struct BlobPlace {
  BlobIndex index{};
  BlockNumber registered_in{};
};

// The chain as the driver sees it. Members marked blocking may wait on the
// chain (a JSON-RPC call): the driver calls them from its job queues only.
// Every member may be called from any thread.
class EpochChain {
 public:
  virtual ~EpochChain() = default;
  virtual const contracts::ChainInfo& info() const = 0;
  // The newest head this node's chain view holds (proofs are judged against
  // it); nullopt before the first. Non-blocking (a cached view).
  virtual std::optional<BlockNumber> head() = 0;
  // Blocking. Headers of blocks that exist; not_found beyond the head.
  virtual Result<contracts::BlockHeader> header(BlockNumber number) = 0;
  virtual Result<std::vector<contracts::BlockHeader>> headers(BlockNumber from, uint32_t count) = 0;
  // Blocking. randomness(b) of docs/chain.md.
  virtual Result<Hash32> randomness(BlockNumber number) = 0;
  // The shards this node answers for now: served here and open on chain.
  // Non-blocking (a cached view).
  virtual std::vector<ShardId> shards() = 0;
  // The registered nodes of `shard`. Non-blocking (a cached view).
  virtual std::vector<ShardMember> members(ShardId shard) = 0;
  // Blocking. Where blob `id` is registered; not_found when it is not.
  virtual Result<BlobPlace> blob(const BlobId& id) = 0;
  // Blocking. Every commitment anchored for (shard, epoch) (paths empty).
  virtual Result<std::vector<AnchoredCommitment>> anchored(ShardId shard, Epoch epoch) = 0;
  // Blocking. The anchor of `node` for (shard, epoch) with its path;
  // not_found when there is none.
  virtual Result<AnchoredCommitment> anchor(const NodeId& node, ShardId shard, Epoch epoch) = 0;
  // Submits SubmitResponse{this node, shard, epoch, commitment}. Non-blocking:
  // `done` runs once, on any thread, with the transaction's hash once the
  // chain admitted it, or the refusal.
  virtual void submit_anchor(ShardId shard, Epoch epoch, const Hash32& commitment,
                             std::function<void(Result<Hash32>)> done) = 0;
  // Blocking. nullopt while no block includes the transaction.
  virtual Result<std::optional<AnchorReceipt>> receipt(const Hash32& tx) = 0;
};

// ---- the peers ----

class EpochPeers {
 public:
  virtual ~EpochPeers() = default;
  // Gossips this node's signed response on its shard's topic. Any thread,
  // non-blocking; failures are the implementation's to log.
  virtual void publish(const Response& response) = 0;
  // Asks `node` for its kept response of (shard, epoch). Non-blocking:
  // `done` runs exactly once, on any thread, with the decoded response (not
  // yet verified) or the failure (not connected, timeout, refused,
  // malformed). Implementations bound the wait (the driver's proofs wait
  // for these answers).
  virtual void fetch(const NodeId& node, ShardId shard, Epoch epoch,
                     std::function<void(Result<Response>)> done) = 0;
  // `node` signed a response that failed verification. Any thread.
  virtual void charge(const NodeId& node) = 0;
};

// ---- the kept responses ----

// Valid responses by (shard, epoch, node), encoded (docs/proof-format.md
// "Response format"). Blocking; called from the driver's job queues.
class ResponseStore {
 public:
  virtual ~ResponseStore() = default;
  virtual Status put(ShardId shard, Epoch epoch, const NodeId& node, ByteSpan response) = 0;
  // not_found when none is kept.
  virtual Result<Bytes> get(ShardId shard, Epoch epoch, const NodeId& node) = 0;
  // Every kept response of (shard, epoch) (at most kMaxProofResponses), by node id.
  virtual Result<std::vector<std::pair<NodeId, Bytes>>> list(ShardId shard, Epoch epoch) = 0;
  // Removes the responses of `shard` of every epoch before `before`.
  virtual Status prune(ShardId shard, Epoch before) = 0;
};

// ---- the observer ----

// What the driver did, for metrics. Called on the driver's job queues; must
// be cheap and must not call back into the driver.
class EpochObserver {
 public:
  virtual ~EpochObserver() = default;
  virtual void walked(ShardId, Epoch, double /*seconds*/) {}  // own walk done, commitment ready
  virtual void anchored(ShardId, Epoch, BlockNumber) {}       // own anchor inside the window
  virtual void own_failed(ShardId, Epoch) {}                  // own answer abandoned this epoch
  virtual void verified(double /*seconds*/) {}  // a peer's response judged (any verdict)
  virtual void valid(const NodeId&) {}          // ... valid and kept
  virtual void invalid(const NodeId&) {}        // ... failed verification
  virtual void fetched() {}                     // a response asked of its node arrived
  virtual void dropped() {}                     // a response refused: queue full
  virtual void recorded(const EpochResult&) {}  // an epoch settled
};

}  // namespace cairn::sampling
