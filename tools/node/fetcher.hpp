#pragma once
// The read path (docs/node-protocol.md, "Fetch"), both sides.
//
// Fetching a blob: from the uploads in flight, else the local store
// (unsealed and checked on a worker), else the network through the one
// fragment gather (shards::FragmentGather, docs/node-protocol.md "Fetch"):
// the shard's holders in preference order (known holders, then registered
// nodes; connected and fastest first; successive blobs start at successive
// holders), k verified fragments enough, and a decode on a worker. A decode
// that used parity is checked again by re-encoding against the id.
//
// Serving: answers fragments_request from in-flight uploads or the store
// (reading and unsealing on the worker pool).
//
// Threading: fetch() from threads that may block (API threads: it waits
// for room in a full worker pool), never the network thread or a worker;
// callbacks run on a worker or the network thread.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "cairn/shards/gather.hpp"
#include "cairn/shards/reader.hpp"
#include "node/context.hpp"
#include "node/uploader.hpp"

namespace cairn::p2p {
class Responder;
}

namespace cairn::node {

class Fetcher {
 public:
  using Done = std::function<void(Result<Bytes>)>;

  // `gather` runs on the network thread and must outlive the fetcher.
  Fetcher(NodeContext& ctx, Uploader& uploader, shards::FragmentGather& gather);
  ~Fetcher();
  Fetcher(const Fetcher&) = delete;
  Fetcher& operator=(const Fetcher&) = delete;

  // Fetches the payload of `id`. `done` runs exactly once (on a worker, the
  // network thread, or inline when the blob is in flight here).
  // (Blocking reads: shards::ObjectReader::fetch_blob over FetcherBlobs.)
  void fetch(const BlobId& id, Done done);

  // Asks the shard's connected registered nodes and known holders whether
  // they hold `id` (through the gather's probe); returns those that do.
  // Blocking.
  std::vector<NodeId> probe(const BlobId& id, ShardId shard, std::chrono::milliseconds timeout);

  // Network thread: answers one fragments_request.
  void serve(const NodeId& from, ByteSpan payload, p2p::Responder responder);

  // Network thread: fail gathers in progress, stop serving.
  void stop();

 private:
  void fetch_local(const BlobId& id, Done done);
  void fetch_remote(const BlobId& id, const contracts::BlobRecord& reg, Done done);  // any thread
  // Network thread: decodes gathered fragments on a worker.
  void decode(const BlobId& id, const contracts::BlobRecord& reg, shards::FragmentReply reply, double started,
              Done done);
  // Network thread: queues `job` on the worker pool, offering it again
  // every kBusyRetry while the pool is full; `cancel` (may be empty) runs
  // instead when the node stops first.
  void submit_job(std::function<void()> job, std::function<void()> cancel);
  std::vector<NodeId> candidates(const BlobId& id, ShardId shard) const;  // network thread

  NodeContext& ctx_;
  Uploader& uploader_;
  shards::FragmentGather& gather_;
  std::shared_ptr<bool> alive_;
  bool stopped_ = false;
  size_t rotation_ = 0;  // network thread: where the next gather starts
  // Network thread: jobs waiting for room in a full pool (submit_job).
  std::map<uint64_t, std::unique_ptr<Timer>> retry_timers_;
  uint64_t next_retry_ = 1;

  metrics::Counter& local_reads_;
  metrics::Counter& inflight_reads_;
  metrics::Counter& remote_reads_;
  metrics::Counter& read_failures_;
  metrics::Counter& served_requests_;
  metrics::Counter& served_bytes_;
  metrics::Counter& served_not_found_;
  metrics::Histogram& remote_latency_;
};

// The fetcher as the object reader's blob source (shards::ObjectReader).
class FetcherBlobs final : public shards::BlobSource {
 public:
  FetcherBlobs(NodeContext& ctx, Fetcher& fetcher) : ctx_(ctx), fetcher_(fetcher) {}
  void fetch(const BlobId& id, Done done) override { fetcher_.fetch(id, std::move(done)); }
  // The chain client's registry entry.
  Result<shards::RegisteredBlob> lookup(const BlobId& id) override;
  bool stopped() const override { return ctx_.io_stopped.load(); }

 private:
  NodeContext& ctx_;
  Fetcher& fetcher_;
};

}  // namespace cairn::node
