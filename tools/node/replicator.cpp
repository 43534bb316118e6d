#include "node/replicator.hpp"

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>

#include "cairn/core/log.hpp"
#include "cairn/erasure/commitment.hpp"
#include "cairn/p2p/gossip_node.hpp"
#include "cairn/p2p/host.hpp"
#include "cairn/p2p/identity.hpp"
#include "cairn/p2p/request.hpp"
#include "cairn/shards/ingest.hpp"
#include "cairn/shards/serve.hpp"

namespace cairn::node {
namespace {

using Clock = std::chrono::steady_clock;

// A pull that found no connected holder, or whose holders all failed, is
// tried again after kRetryDelay, at most kMaxAttempts rounds; after that the
// blob is left to shard sync (and the uploader's re-announcements).
constexpr auto kRetryDelay = std::chrono::seconds(1);
constexpr int kMaxAttempts = 30;
// Score charged to a peer that served fragments not matching the blob id.
constexpr double kBadFragmentsPenalty = 25;

}  // namespace

struct Replicator::Pull {
  BlobId id;
  BlobIndex index;
  uint32_t size = 0;
  NodeId origin;
  NodeId via;
  std::vector<NodeId> tried;  // this round
  int attempts = 0;
  Clock::time_point started;
};

struct Replicator::Retry {
  explicit Retry(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;
  std::deque<std::pair<Clock::time_point, std::shared_ptr<Pull>>> waiting;
  bool armed = false;
};

Replicator::Replicator(NodeContext& ctx, Notices& notices, Uploader& uploader)
    : ctx_(ctx),
      notices_(notices),
      uploader_(uploader),
      alive_(std::make_shared<bool>(true)),
      retry_(std::make_unique<Retry>(ctx.io)),
      announced_(ctx.metrics.counter("cairn_replicate_announced_total",
                                     "Announced blobs of served shards queued for pulling.")),
      pulled_(
          ctx.metrics.counter("cairn_replicate_stored_total", "Announced blobs pulled, verified, sealed and stored.")),
      already_held_(ctx.metrics.counter("cairn_replicate_already_held_total",
                                        "Announced blobs this node already held (confirmed again).")),
      pull_failures_(ctx.metrics.counter("cairn_replicate_pull_failures_total",
                                         "Fragment pulls that failed (peer error, timeout, bad data).")),
      bad_fragments_(ctx.metrics.counter("cairn_replicate_bad_fragments_total",
                                         "Pulls whose fragments did not match the blob id or registry.")),
      store_failures_(ctx.metrics.counter("cairn_replicate_store_failures_total",
                                          "Pulled and verified replicas this node's store failed to write.")),
      dropped_(ctx.metrics.counter("cairn_replicate_dropped_total",
                                   "Announced blobs given up on (queue full or no holder answered).")),
      bytes_pulled_(ctx.metrics.counter("cairn_replicate_bytes_total", "Fragment bytes received by pulls.")),
      pull_latency_(ctx.metrics.histogram("cairn_replicate_seconds", "Time from starting a pull to the stored replica.",
                                          metrics::Histogram::latency_buckets())) {
  ctx.metrics.gauge_fn("cairn_replicate_queue", "Announced blobs waiting to be pulled.",
                       [this] { return static_cast<double>(queue_.size()); });
}

Replicator::~Replicator() {
  *alive_ = false;
  ctx_.metrics.remove_fns("cairn_replicate_queue");
}

void Replicator::stop() {
  stopped_ = true;
  *alive_ = false;
  queue_.clear();
  retry_->timer.cancel();
  retry_->waiting.clear();
}

void Replicator::on_announce(const NodeId& via, ShardId shard, const wire::Notice& notice) {
  if (stopped_ || !ctx_.served.serves(shard) || notice.node == ctx_.self) return;
  for (const wire::NoticeEntry& e : notice.entries) {
    if (known_.count(e.id) > 0 || uploader_.find(e.id) != nullptr) continue;
    // Queued, running and waiting to retry: every pull this node holds.
    if (known_.size() >= ctx_.settings.upload.max_pull_queue) {
      dropped_.inc();
      continue;
    }
    auto pull = std::make_shared<Pull>();
    pull->id = e.id;
    pull->index = e.index;
    pull->size = e.size;
    pull->origin = notice.node;
    pull->via = via;
    known_.insert(e.id);
    queue_.push_back(std::move(pull));
    announced_.inc();
  }
  pump();
}

void Replicator::pump() {
  while (!stopped_ && active_ < ctx_.settings.upload.max_concurrent_pulls && !queue_.empty()) {
    auto pull = std::move(queue_.front());
    queue_.pop_front();
    ++active_;
    start(pull);
  }
}

void Replicator::start(const std::shared_ptr<Pull>& pull) {
  pull->started = Clock::now();
  pull->tried.clear();
  // Held already (an earlier announcement, sync, or a re-announcement of a
  // blob whose confirmation the uploader missed)? Then only confirm again.
  std::weak_ptr<bool> alive = alive_;
  auto st = ctx_.submit([this, pull, alive] {
    auto rec = ctx_.store.get_blob(pull->id);
    const bool held = rec && rec->index == pull->index;
    ctx_.post([this, pull, alive, held] {
      if (alive.expired() || !*alive.lock()) return;
      if (held) {
        already_held_.inc();
        notices_.stored(ctx_.params.shard_of(pull->index), wire::NoticeEntry{pull->id, pull->index, 0});
        finish(pull, false);
      } else {
        request(pull);
      }
    });
  });
  if (!st) retry_later(pull, "worker pool busy");
}

void Replicator::request(const std::shared_ptr<Pull>& pull) {
  if (stopped_ || ctx_.rr == nullptr || ctx_.gossip == nullptr) return;
  // Candidates in order: the announcer, nodes that confirmed it, the peer
  // that forwarded the announcement. Connected ones only; each once a round.
  std::vector<NodeId> candidates{pull->origin};
  for (const NodeId& h : ctx_.holders.get(pull->id)) candidates.push_back(h);
  candidates.push_back(pull->via);
  p2p::Host& host = ctx_.gossip->host();
  for (const NodeId& peer : candidates) {
    if (peer == ctx_.self || !host.is_connected(peer)) continue;
    if (std::find(pull->tried.begin(), pull->tried.end(), peer) != pull->tried.end()) continue;
    pull->tried.push_back(peer);
    wire::FragmentsRequest req{pull->id, {}};
    for (uint32_t f = 0; f < ctx_.params.data_fragments; ++f) req.fragments.push_back(static_cast<uint8_t>(f));
    p2p::RequestOptions opts;
    opts.timeout = std::chrono::duration_cast<cairn::Duration>(ctx_.settings.upload.pull_timeout);
    std::weak_ptr<bool> alive = alive_;
    auto id = ctx_.rr->request(
        peer, p2p::MessageType::fragments_request, wire::encode_fragments_request(req),
        [this, pull, peer, alive](Result<Bytes> body) {
          if (alive.expired() || !*alive.lock()) return;
          on_response(pull, peer, std::move(body));
        },
        opts);
    if (id) return;
    // busy / not connected any more: next candidate.
  }
  retry_later(pull, "no connected holder answered");
}

void Replicator::on_response(const std::shared_ptr<Pull>& pull, const NodeId& peer, Result<Bytes> body) {
  if (stopped_) return;
  if (!body) {
    pull_failures_.inc();
    CAIRN_LOG(log::Level::debug, "node",
              "pulling blob " << pull->id.hex() << " from " << p2p::short_id(peer) << ": " << body.error().to_string());
    request(pull);
    return;
  }
  bytes_pulled_.inc(body->size());
  auto shared_body = std::make_shared<Bytes>(std::move(*body));
  std::weak_ptr<bool> alive = alive_;
  auto st = ctx_.submit([this, pull, peer, shared_body, alive] {
    // Verify against the registry and the id, then seal and store.
    bool store_failed = false;  // the fragments were good; this node's store refused them
    Status outcome = [&]() -> Status {
      auto resp = wire::decode_fragments_response(*shared_body, ctx_.params);
      if (!resp) return tl::unexpected(resp.error());
      auto reg = ctx_.chain.lookup_blob(pull->id);
      if (!reg) return tl::unexpected(reg.error());
      if (reg->index != pull->index || reg->size != pull->size) {
        return make_error(Errc::verification_failed, "the announcement disagrees with the chain registry (index " +
                                                         std::to_string(reg->index.value) + ", size " +
                                                         std::to_string(reg->size) + ")");
      }
      auto blob = shards::verify_fetched(*ctx_.codec, shards::RegisteredBlob{reg->index, reg->commitment, reg->size},
                                         wire::to_reply(*resp, ctx_.params.fragment_size()));
      if (!blob) return tl::unexpected(blob.error());
      auto stored = shards::ingest_committed(ctx_.store, pull->index, std::move(*blob), ctx_.sealer.get());
      if (!stored) {
        store_failed = true;
        return tl::unexpected(with_context(stored.error(), "storing the pulled replica here"));
      }
      return {};
    }();
    ctx_.post([this, pull, peer, outcome, store_failed, alive] {
      if (alive.expired() || !*alive.lock()) return;
      if (outcome) {
        pulled_.inc();
        pull_latency_.observe(std::chrono::duration<double>(Clock::now() - pull->started).count());
        ctx_.holders.add(pull->id, ctx_.self);
        notices_.stored(ctx_.params.shard_of(pull->index), wire::NoticeEntry{pull->id, pull->index, 0});
        finish(pull, true);
        return;
      }
      if (store_failed) {
        // Not the peer's fault: asking other holders would only fetch the
        // same fragments again. Retry later (a full disk recovers by
        // itself; after an I/O error only a restart does, and sync fetches
        // what the retries gave up on).
        store_failures_.inc();
        CAIRN_LOG(log::Level::warn, "node", "pull of blob " << pull->id.hex() << ": " << outcome.error().to_string());
        retry_later(pull, "this node's store failed to write it");
        return;
      }
      pull_failures_.inc();
      const Errc code = outcome.error().code;
      CAIRN_LOG(log::Level::info, "node",
                "pull of blob " << pull->id.hex() << " from " << p2p::short_id(peer)
                                << " failed: " << outcome.error().to_string());
      if (code == Errc::verification_failed || code == Errc::invalid_argument) {
        bad_fragments_.inc();
        if (ctx_.gossip) {
          ctx_.gossip->host().adjust_score(peer, -kBadFragmentsPenalty,
                                           "served fragments that do not match the blob id");
        }
      }
      if (code == Errc::too_many_losses) {
        // The holder lacks some fragments itself: not a lie; try another.
      } else if (code == Errc::not_found && outcome.error().message.find("not registered") != std::string::npos) {
        retry_later(pull, "not registered on the chain yet");
        return;
      }
      request(pull);
    });
  });
  if (!st) retry_later(pull, "worker pool busy");
}

void Replicator::retry_later(const std::shared_ptr<Pull>& pull, const std::string& why) {
  if (stopped_) return;
  if (++pull->attempts >= kMaxAttempts) {
    dropped_.inc();
    CAIRN_LOG(log::Level::warn, "node",
              "giving up pulling blob " << pull->id.hex() << " after " << pull->attempts << " rounds (" << why
                                        << "); sync will fetch it");
    finish(pull, false);
    return;
  }
  // Off the active count while it waits, so other pulls proceed. They start
  // from a posted pump, not from here: called from start() on a full pool,
  // pumping here would recurse once per queued pull.
  --active_;
  retry_->waiting.emplace_back(Clock::now() + kRetryDelay, pull);
  arm_retry();
  std::weak_ptr<bool> alive = alive_;
  ctx_.post([this, alive] {
    if (alive.expired() || !*alive.lock()) return;
    pump();
  });
}

void Replicator::arm_retry() {
  if (retry_->armed || retry_->waiting.empty()) return;
  retry_->armed = true;
  std::weak_ptr<bool> alive = alive_;
  retry_->timer.expires_at(retry_->waiting.front().first);
  retry_->timer.async_wait([this, alive](const std::error_code& ec) {
    if (ec || alive.expired() || !*alive.lock()) return;
    retry_->armed = false;
    const auto now = Clock::now();
    while (!retry_->waiting.empty() && retry_->waiting.front().first <= now) {
      queue_.push_back(std::move(retry_->waiting.front().second));
      retry_->waiting.pop_front();
    }
    arm_retry();
    pump();
  });
}

void Replicator::finish(const std::shared_ptr<Pull>& pull, bool /*stored*/) {
  known_.erase(pull->id);
  --active_;
  pump();
}

}  // namespace cairn::node
