#include "node/notices.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include "cairn/core/log.hpp"
#include "cairn/p2p/gossip_node.hpp"

namespace cairn::node {

Notices::Notices(NodeContext& ctx)
    : ctx_(ctx),
      sent_(ctx.metrics.counter("cairn_node_notices_sent_total", "Signed announce/stored notices gossiped.")),
      received_(ctx.metrics.counter("cairn_node_notices_received_total", "Valid notices received from peers.")),
      invalid_(ctx.metrics.counter("cairn_node_notices_invalid_total",
                                   "Notices rejected (malformed, bad signature, wrong shard).")),
      publish_failed_(ctx.metrics.counter("cairn_node_notices_publish_failed_total",
                                          "Notices the gossip router refused to publish.")) {}

Notices::~Notices() = default;

void Notices::attach(p2p::GossipNode& gossip) {
  timer_ = ctx_.clock.make_timer(ctx_.io.get_executor());
  gossip.set_validator(
      [this](const NodeId& from, p2p::TopicId topic, ByteSpan data, std::shared_ptr<const void>& decoded) {
        if (wire::is_response_message(data)) {
          if (!validate_response_) return p2p::Validation::ignore;
          std::shared_ptr<const sampling::Response> response;
          const p2p::Validation v = validate_response_(from, topic, data, response);
          decoded = std::move(response);
          return v;
        }
        auto n = wire::decode_notice(data, topic, ctx_.params);
        if (!n) {
          invalid_.inc();
          CAIRN_LOG(log::Level::debug, "node",
                    "rejecting a notice on shard " << topic.value << ": " << n.error().to_string());
          return n.error().code == Errc::unsupported ? p2p::Validation::ignore : p2p::Validation::reject;
        }
        return p2p::Validation::accept;
      });
  gossip.set_handler([this](const p2p::GossipDeliver& d) {
    if (!d.data) return;
    if (wire::is_response_message(*d.data)) {
      auto response = std::static_pointer_cast<const sampling::Response>(d.decoded);
      if (on_response_ && response) on_response_(d.from, d.topic, std::move(response));
      return;
    }
    // The validator checked the signature of exactly these bytes.
    auto n = wire::decode_notice(*d.data, d.topic, ctx_.params, /*check_signature=*/false);
    if (!n) return;
    received_.inc();
    if (n->kind == wire::NoticeKind::stored) {
      for (const auto& e : n->entries) ctx_.holders.add(e.id, n->node);
      if (on_stored_) on_stored_(d.from, d.topic, *n);
    } else if (on_announce_) {
      on_announce_(d.from, d.topic, *n);
    }
  });
}

void Notices::announce(ShardId shard, const wire::NoticeEntry& entry) {
  queue(wire::NoticeKind::announce, shard, entry);
}

void Notices::stored(ShardId shard, const wire::NoticeEntry& entry) { queue(wire::NoticeKind::stored, shard, entry); }

void Notices::queue(wire::NoticeKind kind, ShardId shard, const wire::NoticeEntry& entry) {
  bool schedule = false, full = false;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    auto& list = pending_[{static_cast<uint8_t>(kind), shard.value}];
    list.push_back(entry);
    full = list.size() >= wire::kMaxNoticeEntries;
    if (!flush_scheduled_ || full) {
      schedule = true;
      flush_scheduled_ = true;
    }
  }
  if (!schedule) return;
  ctx_.post([this, full] {
    if (!timer_) return;
    if (full) {
      flush();
      return;
    }
    timer_->expires_after(kFlushDelay, [this] { flush(); });
  });
}

void Notices::flush() {
  decltype(pending_) batches;
  {
    std::lock_guard lock(mu_);
    batches.swap(pending_);
    flush_scheduled_ = false;
    if (stopped_) return;
  }
  if (ctx_.gossip == nullptr) return;
  for (auto& [key, entries] : batches) {
    const ShardId shard{key.second};
    if (static_cast<wire::NoticeKind>(key.first) == wire::NoticeKind::announce && !ctx_.served.serves(shard) &&
        followed_.insert(shard.value).second) {
      // An upload landed in a shard this node does not serve: follow that
      // shard's subnet (without serving it), so the announcement reaches
      // the shard's nodes and their stored notices, the upload's
      // confirmations, come back. Kept for the node's lifetime: at most
      // one subscription per shard.
      ctx_.gossip->subscribe(shard);
    }
    for (size_t off = 0; off < entries.size(); off += wire::kMaxNoticeEntries) {
      wire::Notice n;
      n.kind = static_cast<wire::NoticeKind>(key.first);
      n.node = ctx_.self;
      n.timestamp_ms = unix_ms();
      const size_t end = std::min(entries.size(), off + wire::kMaxNoticeEntries);
      n.entries.assign(entries.begin() + static_cast<std::ptrdiff_t>(off),
                       entries.begin() + static_cast<std::ptrdiff_t>(end));
      auto bytes = wire::encode_notice(n, shard, ctx_.params, ctx_.identity);
      if (!bytes) {
        CAIRN_LOG(log::Level::error, "node", "encoding a notice: " << bytes.error().to_string());
        continue;
      }
      auto id = ctx_.gossip->publish(shard, std::move(*bytes));
      if (id) {
        sent_.inc();
      } else {
        publish_failed_.inc();
        CAIRN_LOG(log::Level::debug, "node",
                  "publishing a notice on shard " << shard.value << ": " << id.error().to_string());
      }
    }
  }
}

void Notices::stop() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    pending_.clear();
  }
  if (timer_) timer_->cancel();
}

}  // namespace cairn::node
