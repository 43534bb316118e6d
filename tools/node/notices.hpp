#pragma once
// Notices: the signed announce / stored messages on each shard's gossip
// subnet (docs/node-protocol.md). Outgoing entries from any thread are
// batched per (kind, shard) and flushed, signed, on the network thread
// within kFlushDelay (or at once when a batch is full). Incoming notices are
// checked by the gossip validator (structure and signature; invalid ones
// charge the forwarding peer) and handed to the registered handlers on the
// network thread. Every stored notice also feeds the HolderCache.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <utility>
#include <vector>

#include "cairn/p2p/gossip.hpp"
#include "node/context.hpp"
#include "node/wire.hpp"

namespace cairn::node {

class Notices {
 public:
  // A peer-forwarded notice: `via` is the peer that sent this copy.
  using Handler = std::function<void(const NodeId& via, ShardId shard, const wire::Notice&)>;

  static constexpr auto kFlushDelay = std::chrono::milliseconds(5);

  explicit Notices(NodeContext& ctx);
  ~Notices();
  Notices(const Notices&) = delete;
  Notices& operator=(const Notices&) = delete;

  // Network thread: installs the gossip validator and handler.
  void attach(p2p::GossipNode& gossip);
  void on_announce(Handler h) { on_announce_ = std::move(h); }
  void on_stored(Handler h) { on_stored_ = std::move(h); }
  // Storage-challenge responses share the shard topics: messages that
  // wire::is_response_message() recognises go to these (network thread)
  // instead of the notice decoder. The validator decodes; what it leaves in
  // `decoded` on accept is what the handler gets (decoded once). Set before
  // attach().
  using RawValidator = std::function<p2p::Validation(const NodeId& from, ShardId shard, ByteSpan data,
                                                     std::shared_ptr<const sampling::Response>& decoded)>;
  using RawHandler =
      std::function<void(const NodeId& from, ShardId shard, std::shared_ptr<const sampling::Response> response)>;
  void on_response(RawValidator validate, RawHandler handle) {
    validate_response_ = std::move(validate);
    on_response_ = std::move(handle);
  }

  // Any thread.
  void announce(ShardId shard, const wire::NoticeEntry& entry);
  void stored(ShardId shard, const wire::NoticeEntry& entry);
  // Network thread: stop flushing (pending entries are dropped; the
  // uploader re-announces and sync catches up after a restart).
  void stop();

 private:
  void queue(wire::NoticeKind kind, ShardId shard, const wire::NoticeEntry& entry);
  void flush();  // network thread

  NodeContext& ctx_;
  Handler on_announce_;
  Handler on_stored_;
  RawValidator validate_response_;
  RawHandler on_response_;
  std::mutex mu_;
  std::map<std::pair<uint8_t, uint32_t>, std::vector<wire::NoticeEntry>> pending_;
  bool flush_scheduled_ = false;
  bool stopped_ = false;
  std::unique_ptr<Timer> timer_;
  // Shards this node does not serve but has announced uploads into: it
  // follows their subnets (network thread only; see flush()).
  std::set<uint32_t> followed_;

  metrics::Counter& sent_;
  metrics::Counter& received_;
  metrics::Counter& invalid_;
  metrics::Counter& publish_failed_;
};

}  // namespace cairn::node
