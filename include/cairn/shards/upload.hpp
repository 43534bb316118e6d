#pragma once
// The upload pipeline (docs/node-protocol.md, "Upload"): the uploading
// node's side, as a state machine behind ports. For every blob of an upload:
//   1. persist the payload in the store's pending column family (so a
//      registered blob is never only in memory),
//   2. register it on the chain (UploadChain::register_blob),
//   3. once its index is known: store this node's own sealed replica when it
//      serves the shard (that is a confirmation), and announce the blob on
//      the shard's subnet (UploadGossip::announce),
//   4. count stored confirmations from serving nodes (confirmed()); at
//      min_replicas the blob is acknowledged, dropped from memory and from
//      the pending store.
// Blobs left pending by a crash or stop are resumed by resume().
//
// An upload (begin()) groups the blobs one caller waits for: it completes
// (UploadCallbacks::done, exactly once) when every blob it added is
// acknowledged and seal() was called, fails when one of its blobs fails
// (persist or registration), times out at exactly its deadline, and is
// cancelled by stop(). A timeout or stop leaves its blobs pending: they keep
// replicating (and resume after a restart).
//
// Threading: no threads of its own, no clock but the injected one. State
// lives on `executor` (the node's network thread): begin(), add(), seal(),
// abandon() and confirmed() may be called from any thread (they post to
// it); tick() and stop() only on the executor; find() and in_flight() from
// any thread (a small lock); resume() on any thread but the executor's
// (it reads the store, then posts). Store work (persist, own replica,
// erase) runs on the WorkerPool; a full pool is offered the persist again
// after kBusyRetry, the own replica at the next tick(). Port completions
// may arrive on any thread: they are posted to the executor. Callbacks
// (UploadCallbacks) run on the executor: keep them short, never block.
//
// Bounded: at most UploadSettings::max_blobs_in_flight blobs are held (a
// blob already in flight is shared, not counted twice); add() beyond it
// waits, in order, until one is acknowledged or fails, or the upload's
// deadline passes. Resumed blobs never wait (they were admitted before).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cairn/core/asio_fwd.hpp"
#include "cairn/core/clock.hpp"
#include "cairn/core/ids.hpp"
#include "cairn/core/result.hpp"
#include "cairn/core/worker_pool.hpp"
#include "cairn/erasure/codec.hpp"
#include "cairn/erasure/commitment.hpp"
#include "cairn/shards/ingest.hpp"
#include "cairn/shards/registry.hpp"
#include "cairn/shards/settings.hpp"
#include "cairn/shards/store.hpp"

namespace cairn::shards {

// Where an upload stands once its bytes are in (UploadCallbacks::phase;
// the node's NDJSON progress stream).
struct UploadPhase {
  uint64_t blobs = 0;         // blobs admitted so far, data and manifest
  bool encoded = false;       // every blob is cut and admitted: `blobs` is final
  uint64_t registered = 0;    // of which the chain has registered (index known)
  uint64_t acknowledged = 0;  // of which have `need` confirmed replicas
  // Fewest confirmed replicas over the blobs (an acknowledged blob counts
  // what it had when acknowledged); 0 before every blob has one.
  uint32_t confirmed = 0;
  // Replicas a blob needs: min_replicas capped by the nodes registered for
  // its shard, the most over the blobs; 0 until a blob is registered.
  uint32_t need = 0;
  bool operator==(const UploadPhase&) const = default;
};

// How often UploadCallbacks::phase is called at most (virtual time): a
// terminal redraws at this rate, and an upload's few seconds of
// replication show as steps.
inline constexpr std::chrono::milliseconds kPhaseInterval{100};

// A full worker pool is offered a refused persist again after this long.
// 20 ms: short against an upload's seconds, long enough that a burst does
// not spin on the pool.
inline constexpr std::chrono::milliseconds kBusyRetry{20};

// The chain and the registry as the upload engine sees them. The node
// implements it over contracts::ChainClient and its served-shard set.
class UploadChain {
 public:
  using Registered = std::function<void(Result<RegisteredBlob>)>;
  virtual ~UploadChain() = default;
  // Registers blob `id` of `size` payload bytes (PutBlob; a blob already
  // registered answers with its record). Must not block; `done` runs
  // exactly once, on any thread, never inside this call: the record, or
  // the error (Errc::cancelled when the chain link is stopping: the blob
  // then stays pending and is neither failed nor acknowledged).
  virtual void register_blob(const BlobId& id, uint32_t size, Registered done) = 0;
  // Whether this node serves `shard` (then it stores its own replica).
  virtual bool serves(ShardId shard) const = 0;
  // Nodes that can confirm a replica in `shard`: those the registry lists
  // for it, this node included when it serves it. Cheap (cached).
  virtual size_t serving_count(ShardId shard) const = 0;
  // Whether the registry lists `node` for `shard`: only those confirmations
  // (and this node's own) count. Cheap (cached).
  virtual bool listed(ShardId shard, const NodeId& node) const = 0;
};

// The shard subnets. Must not block; called on the executor or a worker.
class UploadGossip {
 public:
  virtual ~UploadGossip() = default;
  // Tells `shard`'s serving nodes that this node holds blob `id` (registered
  // at `index`, `size` payload bytes) and serves its fragments (find()).
  virtual void announce(ShardId shard, const BlobId& id, BlobIndex index, uint32_t size) = 0;
  // Tells `shard` (and this node's uploads) that this node stored its own
  // sealed replica of `id`.
  virtual void stored(ShardId shard, const BlobId& id, BlobIndex index) = 0;
};

// What happened, for metrics and caches. Every method has a no-op default;
// each runs on the executor or a worker and must not block.
class UploadObserver {
 public:
  virtual ~UploadObserver() = default;
  // A blob entered the pipeline (a resumed one too).
  virtual void accepted(const BlobId& /*id*/, uint32_t /*bytes*/) {}
  // A blob reached its replicas `latency` after it was accepted.
  virtual void acknowledged(const BlobId& /*id*/, Duration /*latency*/) {}
  // A blob failed (persist or registration): its uploads fail.
  virtual void failed(const BlobId& /*id*/, const Error& /*error*/) {}
  // tick() announced `blobs` blobs again.
  virtual void reannounced(size_t /*blobs*/) {}
  // This node stored its own replica of `id`.
  virtual void stored_locally(const BlobId& /*id*/, BlobIndex /*index*/) {}
  // Storing this node's own replica failed (retried by tick()).
  virtual void local_store_failed(const BlobId& /*id*/, BlobIndex /*index*/,
                                  const Error& /*error*/) {}
};

struct UploadRequest {
  // Confirmed replicas every blob needs; capped per blob at the shard's
  // serving_count(); at least 1.
  uint32_t min_replicas = 1;
  // The upload fails with Errc::timeout this long after begin() (virtual
  // time) unless it completed.
  Duration timeout = std::chrono::seconds(120);
};

struct UploadOutcome {
  // Fewest confirmed replicas over the upload's blobs when each was
  // acknowledged (>= the min_replicas asked for, as capped).
  uint32_t replicas = 0;
  // The registered record of the first blob added (put_blob's answer).
  RegisteredBlob first;
  // The phase with every blob acknowledged.
  UploadPhase phase;
};

// Callbacks of one upload; all run on the executor.
struct UploadCallbacks {
  // The phase changed: at most every kPhaseInterval, and once more when
  // the upload completes (in UploadOutcome::phase instead). Optional.
  std::function<void(const UploadPhase&)> phase;
  // Exactly once: the outcome, or Errc::timeout (the deadline), the first
  // failing blob's error, or Errc::cancelled (stop()). Not called after
  // abandon().
  std::function<void(Result<UploadOutcome>)> done;
};

using UploadHandle = uint64_t;  // 0 is never a valid handle

class UploadEngine {
 public:
  // Runs `fn` on the executor later, never inline. Callable from any thread.
  using Post = std::function<void(std::function<void()>)>;

  // Everything passed by reference must outlive the engine. `sealer` seals
  // this node's own replicas (nullptr stores them plain); `codec` re-encodes
  // resumed payloads; `self` is this node's id (its own replica confirms).
  UploadEngine(UploadChain& chain, UploadGossip& gossip, UploadObserver& observer, Store& store,
               WorkerPool& pool, std::shared_ptr<const erasure::Codec> codec,
               std::shared_ptr<const ReplicaTransform> sealer, Clock& clock,
               const asio::any_io_executor& executor, Post post, NodeId self,
               const UploadSettings& settings);
  ~UploadEngine();
  UploadEngine(const UploadEngine&) = delete;
  UploadEngine& operator=(const UploadEngine&) = delete;

  // Starts an upload; its deadline timer starts now. Any thread.
  UploadHandle begin(UploadRequest request, UploadCallbacks callbacks);
  // Adds a committed (plain, unsealed) blob to upload `handle`. `admitted`
  // runs once on the executor: ok when the blob is in the window (its
  // pipeline started, or it joined the same blob already in flight), or
  // Errc::timeout (the window stayed full until the deadline), or the
  // upload's failure, or Errc::cancelled (stop(), unknown handle). Any
  // thread.
  void add(UploadHandle handle, std::shared_ptr<erasure::CommittedBlob> blob,
           std::function<void(Status)> admitted);
  // Every blob is added; `what` names the upload in its errors ("file
  // <id>"). Any thread.
  void seal(UploadHandle handle, std::string what);
  // The caller gives up (it failed to cut its blobs): the upload ends
  // without calling `done`; its blobs keep replicating. Any thread.
  void abandon(UploadHandle handle);

  // Loads every pending upload from the store and restarts its pipeline
  // (nobody waits for them). Blocking store reads and encoding on the
  // calling thread (not the executor), then posts. The number resumed, or
  // the store's error listing them; unreadable ones are dropped.
  Result<size_t> resume();

  // A stored confirmation of `id` from `node` (any thread).
  void confirmed(const NodeId& node, const BlobId& id);

  // Maintenance, executor only, every second or so: re-announces blobs
  // without progress for reannounce_interval, retries failed own-replica
  // writes, forgets upload-less blobs stuck for ack_timeout (they stay in
  // the pending store), re-checks replica caps as the registry refreshes.
  void tick();

  // The plain encoded blob while it is in flight: what a peer pulling it is
  // served. nullptr when not in flight. Any thread.
  std::shared_ptr<const erasure::CommittedBlob> find(const BlobId& id) const;
  // Blobs in flight. Any thread.
  size_t in_flight() const;
  // Store jobs (persists, own replicas, erased pending records) queued on
  // the pool or running. Any thread.
  size_t store_jobs() const;

  // Executor only. Fails every upload with Errc::cancelled (their blobs
  // stay pending) and every queued add(); later calls are refused the same
  // way and port completions are ignored. Store jobs already queued run to
  // their end (the pool's drain waits for them). Idempotent.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace cairn::shards
