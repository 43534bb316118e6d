#pragma once
// The epoch challenge driver (docs/design.md section 7, docs/proof-format.md
// "In the node"): a node's side of the storage challenge, on the chain's
// block clock.
//   - at block e*E, for every shard it answers for that held blobs then,
//     walk this node's sealed replica (run_walk over the ProverSource),
//     anchor the walk's commitment before block e*E+D (receipts checked;
//     resubmitted while the window is open), open the steps the anchor block
//     picks, keep the signed response and publish it;
//   - verify peers' responses (screen() is the cheap part, for a gossip
//     validator; the walk, openings and anchor on the worker queue, at most
//     settings.max_verify_queue at a time) and keep the valid ones (pruned
//     after settings.retain_epochs); a node whose signed response fails is
//     charged through EpochPeers::charge;
//   - one block before an epoch settles, fetch from their nodes the anchored
//     responses no gossip brought;
//   - settings.settle_blocks after each deadline, record the epoch's result
//     per shard: this node's own answer, and the registered nodes without a
//     valid anchored response (invalid or missing);
//   - assemble replica-count proofs from the chain's headers and the kept
//     responses (assemble_replica_proof).
//
// Execution: no threads of its own and no real time. Work runs as jobs on
// two injected queues: `own` (the driver's steps and this node's walk,
// anchor and opening; it must run one job at a time, and the node gives it
// a thread of its own so a busy shared pool cannot make it miss a
// deadline) and `workers` (peers' verifications, proofs). Durations are read
// from the injected Clock. on_head(), screen(), received() and proof() only
// queue work and may be called from any thread (a network thread
// included); every member is thread-safe.

#include <functional>
#include <memory>
#include <vector>

#include "cairn/core/clock.hpp"
#include "cairn/core/ed25519.hpp"
#include "cairn/core/result.hpp"
#include "cairn/erasure/params.hpp"
#include "cairn/sampling/epoch_ports.hpp"
#include "cairn/sampling/walk.hpp"

namespace cairn::sampling {

// Queues `run` without blocking, or refuses (busy when full, cancelled when
// shutting down). On success exactly one of `run` or `cancel` is invoked,
// once: WorkerPool::try_submit's contract (cairn/core/worker_pool.hpp).
using JobQueue = std::function<Status(std::function<void()> run, std::function<void()> cancel)>;

// Where the driver runs. Every reference must outlive the driver and every
// job it queued.
struct EpochEnv {
  Clock& clock;
  JobQueue own;
  JobQueue workers;
};

// What the driver is driven through. Every reference must outlive the
// driver and every job it queued.
struct EpochPorts {
  EpochChain& chain;
  EpochPeers& peers;
  ResponseStore& store;
  // This node's sealed replica. Used from `own` jobs only (one at a time).
  ProverSource& replica;
  EpochObserver* observer = nullptr;  // may be null
};

// What screen() says about a peer's response before it is queued.
enum class Admission : uint8_t {
  accept,  // verify it
  ignore,  // not worth verifying now (this node's own, stale, already held); not the sender's fault
  reject,  // can never count (anchored outside its window): the signer's fault
};

class EpochDriver {
 public:
  // `identity` signs this node's responses; its public key is this node's id.
  EpochDriver(const erasure::NetworkParams& params, const SigningKey& identity,
              const ChallengeSettings& settings, EpochEnv env, EpochPorts ports);
  // stop().
  ~EpochDriver();
  EpochDriver(const EpochDriver&) = delete;
  EpochDriver& operator=(const EpochDriver&) = delete;

  // A new chain head. Schedules a driver step on `own` (a busy queue skips
  // this head: every step works from the latest one).
  void on_head(const contracts::BlockHeader& head);

  // The cheap checks of a peer's response whose signature the caller
  // checked (wire decoding does): whose, which epoch, which anchor block,
  // already held.
  Admission screen(const Response& response) const;
  // Queues a screened response for full verification (dropped, and counted
  // by the observer, when settings.max_verify_queue are queued already).
  void received(std::shared_ptr<const Response> response);

  // The replica-count proof of (shard, epoch), assembled on `workers` from
  // the chain's headers and the kept responses after asking the nodes of
  // anchored responses this node lacks for their bodies. `done` runs once,
  // on any thread: conflict before the epoch settled, not_found when its
  // responses were pruned or none is held, the chain's errors.
  void proof(ShardId shard, Epoch epoch, std::function<void(Result<EpochProof>)> done);
  // The proof of the latest settled epoch covering blob `id`.
  void latest_proof(const BlobId& id, std::function<void(Result<EpochProof>)> done);

  // The latest recorded epoch of every shard, by shard.
  std::vector<EpochResult> status() const;
  // The last kEpochHistory recorded epochs of every shard, by shard, oldest
  // first within a shard.
  std::vector<EpochResult> history() const;
  // Peers' responses waiting for or under verification.
  size_t verifying() const;

  // No new work is scheduled; queued jobs return at once, responses waiting
  // for their anchor block are let go. Call before the queues shut down.
  void stop();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace cairn::sampling
