#include "node/replicator.hpp"

#include <algorithm>
#include <utility>
#include <vector>

#include "cairn/core/log.hpp"

namespace cairn::node {

Replicator::Replicator(NodeContext& ctx, Notices& notices, const Uploader& uploader, Hint hint)
    : ctx_(ctx),
      notices_(notices),
      uploader_(uploader),
      hint_(std::move(hint)),
      latency_(ctx.metrics.histogram("cairn_replicate_seconds",
                                     "Time from an announced blob's hint to its stored replica.",
                                     metrics::Histogram::latency_buckets())) {}

void Replicator::stop() { stopped_.store(true); }

void Replicator::on_announce(const NodeId& via, ShardId shard, const wire::Notice& notice) {
  if (stopped_.load() || !ctx_.served.serves(shard) || notice.node == ctx_.self) return;
  for (const wire::NoticeEntry& e : notice.entries) {
    // This node's own upload stores its replica itself.
    if (uploader_.find(e.id) != nullptr) continue;
    shards::BlobHint h;
    h.id = e.id;
    h.index = e.index;
    h.length = e.size;
    const auto add = [&](const NodeId& n) {
      if (n != ctx_.self && std::find(h.peers.begin(), h.peers.end(), n) == h.peers.end()) h.peers.push_back(n);
    };
    add(notice.node);
    for (const NodeId& n : ctx_.holders.get(e.id)) add(n);
    add(via);
    if (auto st = hint_(shard, std::move(h)); !st && st.error().code != Errc::busy) {
      CAIRN_LOG(log::Level::debug, "node", "announced blob " << e.id.hex() << ": " << st.error().to_string());
    }
  }
}

void Replicator::hint_done(ShardId shard, const shards::RegisteredBlob& blob, shards::HintOutcome outcome,
                           Duration waited) {
  if (outcome != shards::HintOutcome::stored && outcome != shards::HintOutcome::already_held) return;
  if (outcome == shards::HintOutcome::stored) {
    latency_.observe(std::chrono::duration<double>(waited).count());
    ctx_.holders.add(blob.id, ctx_.self);
  }
  if (stopped_.load()) return;
  notices_.stored(shard, wire::NoticeEntry{blob.id, blob.index, 0});
}

}  // namespace cairn::node
