#pragma once
// The uploading side of the upload protocol (docs/node-protocol.md,
// "Upload"). For every blob of an upload:
//   1. persist the payload in the store's pending column family (so a
//      registered blob is never only in memory),
//   2. register it on the chain (PutBlob, batched by the chain client),
//   3. once its index is known: store this node's own sealed replica when
//      it serves the shard (that is a confirmation), and announce the blob
//      on the shard's subnet, serving its fragments from memory,
//   4. count stored notices from serving nodes; at min_replicas the blob is
//      acknowledged, dropped from memory and from the pending store.
// Blobs left pending by a crash or stop are resumed at the next start.
//
// Threading: put_* block their caller (API threads); the rest is called
// from the network thread, the chain thread or workers, all under one mutex
// held only for bookkeeping (never across I/O).

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>
#include <vector>

#include "cairn/erasure/commitment.hpp"
#include "node/context.hpp"
#include "node/node_service.hpp"
#include "node/notices.hpp"

namespace cairn::node {

class Uploader {
 public:
  Uploader(NodeContext& ctx, Notices& notices);
  ~Uploader();
  Uploader(const Uploader&) = delete;
  Uploader& operator=(const Uploader&) = delete;

  Result<PutFileResult> put_file(ByteSpan content, const PutOptions& options);
  Result<PutBlobResult> put_blob(ByteSpan payload, const PutOptions& options);

  // Loads every pending upload from the store and restarts its pipeline
  // (no caller waits for them). Blocking; call before serving the API.
  Status resume();

  // A stored notice from a peer (network thread).
  void on_stored(const wire::Notice& notice);
  // Periodic maintenance (any thread): re-announce blobs without progress,
  // retry failed local writes, forget waiterless blobs stuck too long.
  void tick();

  // The plain (unsealed) encoded blob while it is in flight: what a peer
  // pulling it is served. nullptr when not in flight.
  std::shared_ptr<const erasure::CommittedBlob> find(const BlobId& id) const;
  size_t in_flight() const;

  // Stops accepting uploads, wakes every waiting caller with
  // Errc::cancelled (their blobs stay pending) and waits up to `timeout`
  // for local writes already started to finish.
  void stop(std::chrono::milliseconds timeout);

 private:
  struct Waiter;
  struct Entry;

  Status admit(const std::shared_ptr<Waiter>& waiter, std::shared_ptr<erasure::CommittedBlob> blob, TimePoint deadline,
               bool persisted, bool is_data);
  // Under `lock` (mu_): waits until the upload window has room for `id`
  // (or the uploader stops); false when `deadline` passes first.
  bool wait_for_room(std::unique_lock<std::mutex>& lock, const BlobId& id, TimePoint deadline);
  void persist_and_register(const BlobId& id);
  void on_registered(const BlobId& id, Result<contracts::BlobRecord> reg);
  void store_locally(const BlobId& id);
  void confirm(const BlobId& id, const NodeId& node);
  // Under mu_: acknowledges and drops `id` when it has enough confirmations.
  void check_done_locked(const BlobId& id, std::vector<std::function<void()>>& after);
  void fail_locked(const BlobId& id, const Error& error, std::vector<std::function<void()>>& after);
  Status wait(const std::shared_ptr<Waiter>& waiter, TimePoint deadline, const std::string& what);
  // Under mu_: the waiter's blobs, as PutOptions::phases reports them.
  UploadPhase phase_locked(const Waiter& waiter) const;
  // Caller's thread, `lock` holding mu_: calls waiter->phases (mu_ released
  // meanwhile) when the phase changed and kPhaseInterval passed since the
  // last call, or with `force` whenever it changed.
  void report_phase(const std::shared_ptr<Waiter>& waiter, std::unique_lock<std::mutex>& lock, bool force);
  void job_started();
  void job_finished();
  uint32_t replica_cap(ShardId shard) const;

  NodeContext& ctx_;
  Notices& notices_;

  mutable std::mutex mu_;
  std::condition_variable space_cv_;
  std::condition_variable jobs_cv_;
  std::unordered_map<BlobId, Entry> entries_;
  size_t jobs_running_ = 0;
  bool stopping_ = false;

  metrics::Counter& uploads_;
  metrics::Counter& upload_failures_;
  metrics::Counter& blobs_accepted_;
  metrics::Counter& blobs_acknowledged_;
  metrics::Counter& bytes_accepted_;
  metrics::Counter& reannounced_;
  metrics::Counter& local_failures_;
  metrics::Histogram& ack_latency_;
};

}  // namespace cairn::node
