#pragma once
// The serving side of the upload protocol (docs/node-protocol.md,
// "Replication"), as a hint to shard sync: every announced blob of a
// served shard that is not this node's own upload in flight becomes a
// shards::SyncEngine hint, with the announcer first among its peers, then
// nodes that confirmed it, then the peer that forwarded the announcement.
// The sync engine checks the blob against the store and the chain registry
// and fetches, verifies, seals and stores it at once through its own path;
// when the hint ends with the blob held here, this adapter gossips the
// stored notice, which is the uploader's confirmation.
//
// Threading: on_announce() and stop() on the network thread; hint_done()
// on any thread (the engine's). The cairn_replicate_* counters are the
// engine's hint counters (node.cpp); the latency histogram is here.

#include <atomic>
#include <functional>

#include "cairn/shards/sync.hpp"
#include "node/context.hpp"
#include "node/notices.hpp"
#include "node/uploader.hpp"

namespace cairn::node {

class Replicator final : public shards::SyncObserver {
 public:
  // Hands a hint to the sync engine (shards::SyncEngine::hint).
  using Hint = std::function<Status(ShardId, shards::BlobHint)>;

  // Everything passed by reference must outlive the replicator.
  Replicator(NodeContext& ctx, Notices& notices, const Uploader& uploader, Hint hint);
  Replicator(const Replicator&) = delete;
  Replicator& operator=(const Replicator&) = delete;

  // Network thread.
  void on_announce(const NodeId& via, ShardId shard, const wire::Notice& notice);
  void stop();

  // Any thread: confirms a blob held here with a stored notice.
  void hint_done(ShardId shard, const shards::RegisteredBlob& blob, shards::HintOutcome outcome,
                 Duration waited) override;

 private:
  NodeContext& ctx_;
  Notices& notices_;
  const Uploader& uploader_;
  Hint hint_;
  std::atomic<bool> stopped_{false};
  metrics::Histogram& latency_;
};

}  // namespace cairn::node
