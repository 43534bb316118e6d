#pragma once
// Challenger: the node's side of the storage challenge (docs/design.md section 7,
// docs/proof-format.md). Driven by the chain clock:
//   - at block e*E, for every served shard that held blobs then, walk this
//     node's sealed replica (sampling::run_walk over shards::StoreProver),
//     anchor the walk's commitment with SubmitResponse before block e*E+D
//     (receipts checked; resubmitted while the window is open), open the
//     steps the anchor block picks, keep the signed response in the store and
//     gossip it on the shard's topic;
//   - verify the responses peers gossip (signature in the gossip validator;
//     the walk, openings and anchor on the worker pool, through a bounded
//     queue) and keep the valid ones in the store (pruned after
//     challenge.retain_epochs); a node whose signed response fails is
//     charged challenge.invalid_response_penalty;
//   - challenge.settle_blocks after each deadline, record the epoch's result
//     per shard: this node's own answer, and the registered nodes without a
//     valid anchored response (invalid or missing): metrics and status;
//   - assemble replica-count proofs from the chain's headers and the kept
//     responses (sampling::assemble_replica_proof).
//
// Threading: on_head runs on the chain thread and only schedules; validate
// and received run on the network thread and only decode, check a
// signature and queue; the driver, this node's walk, anchor and opening
// run on the challenger's own thread, peers' verifications on the worker
// pool; proof()/latest_proof() block and
// are for API threads. All members are thread-safe.

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cairn/contracts/header.hpp"
#include "cairn/p2p/gossip.hpp"
#include "cairn/p2p/request.hpp"
#include "cairn/sampling/challenge.hpp"
#include "cairn/sampling/response.hpp"
#include "node/context.hpp"
#include "node/node_service.hpp"

namespace cairn::node {

class Challenger {
 public:
  explicit Challenger(NodeContext& ctx);
  ~Challenger();
  Challenger(const Challenger&) = delete;
  Challenger& operator=(const Challenger&) = delete;

  // Chain thread: a new head. Schedules the epoch driver on the pool.
  void on_head(const contracts::BlockHeader& head);

  // Network thread: the gossip validator for response messages (structure,
  // topic, signature, epoch in range; reject charges the sending peer) and
  // the handler of accepted ones (queued for full verification).
  p2p::Validation validate(const NodeId& from, ShardId shard, ByteSpan data);
  void received(const NodeId& from, ShardId shard, const std::shared_ptr<const Bytes>& data);

  // Network thread: answers a peer's challenge_response_request (a kept
  // valid response of (shard, epoch, node), read on the pool).
  void serve(const NodeId& from, ByteSpan payload, p2p::Responder responder);

  // No new work is scheduled; jobs already queued return at once. Call
  // before the worker pool drains.
  void stop();

  // The latest recorded epoch of every served shard, by shard.
  std::vector<EpochChallengeStatus> status() const;
  // The last kChallengeHistoryEpochs recorded epochs of every served shard,
  // by shard, oldest first within a shard (NodeStatus::challenge_history).
  std::vector<EpochChallengeStatus> history() const;
  // NodeService::replica_proof / latest_proof. Blocking.
  Result<ProofFile> proof(ShardId shard, Epoch epoch);
  Result<ProofFile> latest_proof(const BlobId& id);

 private:
  struct Own;
  using Key = std::pair<uint32_t, uint64_t>;  // shard, epoch
  struct Verdicts {
    std::set<NodeId> valid;
    std::map<NodeId, std::string> invalid;
  };

  void schedule();
  void drive();
  void step(const contracts::BlockHeader& head);
  std::vector<ShardId> open_served_shards() const;

  // Own response, each phase a pool job or a chain-thread callback.
  void start_walk(const std::shared_ptr<Own>& own);
  // Queues one phase's job on the pool; a refusal or a cancel fails `own`.
  void run_phase(const std::shared_ptr<Own>& own, const char* what, std::function<void()> job);
  void walk(const std::shared_ptr<Own>& own);
  void submit_anchor(const std::shared_ptr<Own>& own);
  void check_anchor(const std::shared_ptr<Own>& own, uint64_t head);
  void open(const std::shared_ptr<Own>& own);
  void fail(Own& own, std::string why);
  void publish(ShardId shard, Bytes message);

  // Peers' responses. `done` (may be empty) runs once the response is
  // judged, dropped or abandoned.
  using Done = std::function<void()>;
  struct Batch;
  // Queues a counted verification on the worker pool; false (and `done`
  // called, the count released) when the pool refuses it.
  bool submit_verify(std::shared_ptr<sampling::Response> response, Done done);
  bool enqueue(std::shared_ptr<sampling::Response> response, Done done);
  void verify(std::shared_ptr<sampling::Response> response, Done done);
  void verify_one(const sampling::Response& response);
  // Asks the nodes that anchored a response for (shard, epoch) this node
  // lacks for its body (request/response); `done` runs when every answer
  // has been judged or has failed.
  void fetch_missing(ShardId shard, Epoch epoch, Done done);
  void judge_invalid(const sampling::Response& response, const std::string& why);
  void verify_done();

  void evaluate(ShardId shard, Epoch epoch);
  void prune(ShardId shard, Epoch current);
  Result<sampling::EpochChallenge> challenge_for(ShardId shard, Epoch epoch);

  NodeContext& ctx_;
  const uint64_t epoch_blocks_;
  const uint64_t deadline_blocks_;

  mutable std::mutex mu_;
  bool stopping_ = false;
  std::optional<contracts::BlockHeader> head_;
  bool driving_ = false;
  bool again_ = false;
  std::atomic<uint64_t> head_number_{0};
  uint64_t first_head_ = UINT64_MAX;  // the first head the driver saw (driver only)
  std::map<Key, std::shared_ptr<Own>> own_;
  std::map<Key, Verdicts> verdicts_;
  std::map<Key, sampling::EpochChallenge> challenges_;
  std::set<Key> empty_;  // (shard, epoch) with no blob at e*E
  // Responses whose anchor block this node's chain view has not reached.
  std::deque<std::pair<std::shared_ptr<sampling::Response>, Done>> waiting_;
  size_t verifying_ = 0;                    // queued, running or waiting verifications
  std::map<uint32_t, uint64_t> evaluated_;  // shard -> last recorded epoch
  // shard -> its finished epochs, oldest first, at most kChallengeHistoryEpochs.
  std::map<uint32_t, std::deque<EpochChallengeStatus>> history_;

  metrics::Counter& produced_;
  metrics::Counter& anchored_;
  metrics::Counter& own_failed_;
  metrics::Counter& verified_;
  metrics::Counter& invalid_;
  metrics::Counter& missing_;
  metrics::Counter& fetched_;
  metrics::Counter& dropped_;
  metrics::Histogram& walk_seconds_;
  metrics::Histogram& verify_seconds_;

  // The driver and this node's own answer (walk, anchor, opening) run on a
  // thread of their own, never queued behind the shared worker pool's
  // serving, sync and scrub jobs: a pool kept full by a peer's resync must
  // not make the node miss its response deadline. One thread (walks are
  // sequential by nature); kMaxOwnPhases queued phases (a walk per served
  // shard, then its anchor and opening).
  // Declared last: destroyed (and joined) first.
  static constexpr uint32_t kMaxOwnPhases = 4096;
  WorkerPool own_pool_;
};

}  // namespace cairn::node
