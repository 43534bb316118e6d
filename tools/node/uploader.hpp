#pragma once
// The node's side of shards::UploadEngine (the upload pipeline,
// cairn/shards/upload.hpp): the engine's ports over the chain client, the
// served-shard set, the notices and the metrics, and the blocking calls the
// HTTP API and NodeService make.
//
// Threading: put_* block their caller (API threads; never the network
// thread, which runs the engine) until the engine's callback; tick() runs on
// the network thread; find() and in_flight() from any thread; resume() and
// stop() from the thread starting or stopping the node.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>

#include "cairn/erasure/commitment.hpp"
#include "cairn/shards/upload.hpp"
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
  // Periodic maintenance (network thread): UploadEngine::tick().
  void tick();

  // The plain (unsealed) encoded blob while it is in flight: what a peer
  // pulling it is served. nullptr when not in flight.
  std::shared_ptr<const erasure::CommittedBlob> find(const BlobId& id) const;
  size_t in_flight() const;

  // Stops accepting uploads and wakes every waiting caller with
  // Errc::cancelled (their blobs stay pending and resume at the next
  // start), then waits up to `timeout` for store writes already queued
  // (the rest finish when the node drains its worker pool).
  // `network_running`: the network thread (or the caller's io_context)
  // runs; otherwise the engine is stopped on this thread.
  void stop(std::chrono::milliseconds timeout, bool network_running);

 private:
  struct Call;
  class Ports;

  // Starts an upload for `call` in the engine.
  shards::UploadHandle begin(const std::shared_ptr<Call>& call, const PutOptions& options);
  // Adds `blob` to the upload and waits until the engine admitted it.
  Status add(const std::shared_ptr<Call>& call, shards::UploadHandle handle,
             std::shared_ptr<erasure::CommittedBlob> blob, const PutOptions& options);
  // Seals the upload and waits for its outcome.
  Result<shards::UploadOutcome> finish(const std::shared_ptr<Call>& call, shards::UploadHandle handle, std::string what,
                                       const PutOptions& options);
  // Waits until `ready()` or the node stops, telling options.phases the
  // newest phase meanwhile (on this thread, mu_ released).
  void wait(Call& call, const PutOptions& options, const std::function<bool()>& ready);
  void close(const std::shared_ptr<Call>& call);

  NodeContext& ctx_;
  std::unique_ptr<Ports> ports_;
  shards::UploadEngine engine_;

  mutable std::mutex mu_;
  std::set<std::shared_ptr<Call>> calls_;  // calls waiting (stop wakes them)
  bool stopping_ = false;

  metrics::Counter& uploads_;
  metrics::Counter& upload_failures_;
};

}  // namespace cairn::node
