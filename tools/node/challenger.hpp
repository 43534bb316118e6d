#pragma once
// Challenger: the node's side of the storage challenge. The engine is
// sampling::EpochDriver (cairn/sampling/epoch_driver.hpp: walk, anchor,
// open, verify peers, record epochs, assemble proofs); this file plugs the
// node into its ports:
//   - the chain: the chain client (heads, headers, SubmitResponse and its
//     receipts, anchored responses, the registry's nodes) and the served
//     shards;
//   - the peers: gossip on the shard's topic (publish; the validator decodes
//     a response once and hands it on) and challenge_response_request over
//     request/response (fetch and serve), the peer score (charge);
//   - the kept responses: shards::Store; the replica: shards::StoreProver;
//   - the observer: the cairn_challenge_* metrics.
//
// Threading: on_head runs on the chain thread and only schedules; validate,
// received and serve run on the network thread and only decode, check a
// signature and queue; the driver, this node's walk, anchor and opening run
// on the challenger's own one-thread pool (created here, passed to the
// driver as its `own` queue, so a busy shared pool cannot make the node miss
// its deadline), peers' verifications and proofs on the worker pool;
// proof()/latest_proof() block and are for API threads. All members are
// thread-safe.

#include <memory>
#include <vector>

#include "cairn/contracts/header.hpp"
#include "cairn/core/worker_pool.hpp"
#include "cairn/p2p/gossip.hpp"
#include "cairn/p2p/request.hpp"
#include "cairn/sampling/epoch_driver.hpp"
#include "cairn/sampling/response.hpp"
#include "cairn/shards/prover.hpp"
#include "node/context.hpp"
#include "node/node_service.hpp"

namespace cairn::node {

class Challenger {
 public:
  // `clock` gives the walk and verification times.
  Challenger(NodeContext& ctx, Clock& clock);
  ~Challenger();
  Challenger(const Challenger&) = delete;
  Challenger& operator=(const Challenger&) = delete;

  // Chain thread: a new head. Schedules the epoch driver.
  void on_head(const contracts::BlockHeader& head);

  // Network thread: the gossip validator for response messages (structure,
  // topic, signature, then EpochDriver::screen; reject charges the sending
  // peer), leaving the decoded response in `decoded` on accept, and the
  // handler of accepted ones (queued for full verification).
  p2p::Validation validate(const NodeId& from, ShardId shard, ByteSpan data,
                           std::shared_ptr<const sampling::Response>& decoded);
  void received(const NodeId& from, ShardId shard, std::shared_ptr<const sampling::Response> response);

  // Network thread: answers a peer's challenge_response_request (a kept
  // valid response of (shard, epoch, node), read on the pool).
  void serve(const NodeId& from, ByteSpan payload, p2p::Responder responder);

  // No new work is scheduled; the own pool's queued jobs are cancelled and
  // it is joined. Call before the worker pool drains.
  void stop();

  // The latest recorded epoch of every served shard, by shard.
  std::vector<EpochChallengeStatus> status() const;
  // The last kChallengeHistoryEpochs recorded epochs of every served shard,
  // by shard, oldest first within a shard (NodeStatus::challenge_history).
  std::vector<EpochChallengeStatus> history() const;
  // NodeService::replica_proof / latest_proof. Blocking.
  Result<ProofFile> proof(ShardId shard, Epoch epoch);
  Result<ProofFile> latest_proof(const BlobId& id);

  class Chain;
  class Peers;
  class Responses;
  class Metrics;

 private:
  NodeContext& ctx_;
  std::unique_ptr<Chain> chain_;
  std::unique_ptr<Peers> peers_;
  std::unique_ptr<Responses> responses_;
  std::unique_ptr<Metrics> metrics_;
  shards::StoreProver prover_;
  // The driver and this node's own answer (walk, anchor, opening) run on a
  // thread of their own, never queued behind the shared worker pool's
  // serving, sync and scrub jobs: a pool kept full by a peer's resync must
  // not make the node miss its response deadline. One thread (walks are
  // sequential by nature, and the prover serves one at a time);
  // kMaxOwnPhases queued phases (a walk per served shard, then its anchor
  // and opening).
  static constexpr uint32_t kMaxOwnPhases = 4096;
  std::unique_ptr<WorkerPool> own_pool_;
  std::unique_ptr<sampling::EpochDriver> driver_;
};

}  // namespace cairn::node
