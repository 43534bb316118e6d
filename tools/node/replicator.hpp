#pragma once
// The serving side of the upload protocol (docs/node-protocol.md,
// "Replication"): for every announced blob of a served shard that this node
// does not hold, gather k verified fragments through the one fragment
// gather (the announcer first, then nodes that confirmed it, then the peer
// that forwarded the announcement), check them against the chain registry
// and the blob id (re-encoding the parity and recomputing the commitment),
// seal, store, and gossip a stored notice, which is the uploader's
// confirmation.
//
// Threading: network thread, except the verify/store jobs on the worker pool.
// Bounded: max_concurrent_pulls pulls at once, max_pull_queue waiting.

#include <deque>
#include <memory>
#include <unordered_set>

#include "cairn/shards/gather.hpp"
#include "cairn/shards/remote.hpp"
#include "node/context.hpp"
#include "node/notices.hpp"
#include "node/uploader.hpp"

namespace cairn::node {

class Replicator {
 public:
  // `gather` (network thread) and `remote` (where verdicts about peers go)
  // must outlive the replicator.
  Replicator(NodeContext& ctx, Notices& notices, Uploader& uploader, shards::FragmentGather& gather,
             shards::RemoteFragments& remote);
  ~Replicator();
  Replicator(const Replicator&) = delete;
  Replicator& operator=(const Replicator&) = delete;

  // Network thread.
  void on_announce(const NodeId& via, ShardId shard, const wire::Notice& notice);
  void stop();

 private:
  struct Pull;
  struct Retry;
  void pump();
  void start(const std::shared_ptr<Pull>& pull);
  void request(const std::shared_ptr<Pull>& pull);
  void on_gathered(const std::shared_ptr<Pull>& pull, Result<shards::Gathered> got);
  void retry_later(const std::shared_ptr<Pull>& pull, const std::string& why);
  void arm_retry();
  void finish(const std::shared_ptr<Pull>& pull, bool stored);

  NodeContext& ctx_;
  Notices& notices_;
  Uploader& uploader_;
  shards::FragmentGather& gather_;
  shards::RemoteFragments& remote_;
  std::deque<std::shared_ptr<Pull>> queue_;
  std::unordered_set<BlobId> known_;  // queued, active or waiting to retry
  size_t active_ = 0;
  bool stopped_ = false;
  std::shared_ptr<bool> alive_;
  std::unique_ptr<Retry> retry_;

  metrics::Counter& announced_;
  metrics::Counter& pulled_;
  metrics::Counter& already_held_;
  metrics::Counter& pull_failures_;
  metrics::Counter& bad_fragments_;
  metrics::Counter& store_failures_;
  metrics::Counter& dropped_;
  metrics::Counter& bytes_pulled_;
  metrics::Histogram& pull_latency_;
};

}  // namespace cairn::node
