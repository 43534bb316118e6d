#include "node/replicator.hpp"

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>

#include "cairn/core/log.hpp"
#include "cairn/erasure/commitment.hpp"
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

}  // namespace

struct Replicator::Pull {
  BlobId id;
  BlobIndex index;
  uint32_t size = 0;
  NodeId origin;
  NodeId via;
  int attempts = 0;
  Clock::time_point started;
};

struct Replicator::Retry {
  explicit Retry(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;
  std::deque<std::pair<Clock::time_point, std::shared_ptr<Pull>>> waiting;
  bool armed = false;
};

Replicator::Replicator(NodeContext& ctx, Notices& notices, Uploader& uploader, shards::FragmentGather& gather,
                       shards::RemoteFragments& remote)
    : ctx_(ctx),
      notices_(notices),
      uploader_(uploader),
      gather_(gather),
      remote_(remote),
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
  if (stopped_) return;
  // Candidates in order: the announcer, nodes that confirmed it, the peer
  // that forwarded the announcement.
  shards::GatherRequest req;
  req.id = pull->id;
  req.index = pull->index;
  for (uint32_t f = 0; f < ctx_.params.total_fragments(); ++f) req.wanted.push_back(FragmentIndex{uint8_t(f)});
  req.at_least = ctx_.params.data_fragments;
  req.deadline = std::chrono::duration_cast<cairn::Duration>(ctx_.settings.upload.pull_timeout);
  const auto add = [&](const NodeId& n) {
    if (n != ctx_.self && std::find(req.peers.begin(), req.peers.end(), n) == req.peers.end()) req.peers.push_back(n);
  };
  add(pull->origin);
  for (const NodeId& h : ctx_.holders.get(pull->id)) add(h);
  add(pull->via);
  std::weak_ptr<bool> alive = alive_;
  gather_.gather(std::move(req), [this, pull, alive](Result<shards::Gathered> got) {
    if (alive.expired() || !*alive.lock()) return;
    on_gathered(pull, std::move(got));
  });
}

void Replicator::on_gathered(const std::shared_ptr<Pull>& pull, Result<shards::Gathered> got) {
  if (stopped_) return;
  if (!got) {
    pull_failures_.inc();
    CAIRN_LOG(log::Level::debug, "node", "pulling blob " << pull->id.hex() << ": " << got.error().to_string());
    retry_later(pull, got.error().message);
    return;
  }
  bytes_pulled_.inc(got->reply.data.size());
  auto gathered = std::make_shared<shards::Gathered>(std::move(*got));
  std::weak_ptr<bool> alive = alive_;
  auto st = ctx_.submit([this, pull, gathered, alive] {
    // Verify against the registry and the id, then seal and store.
    bool store_failed = false;  // the fragments were good; this node's store refused them
    Status outcome = [&]() -> Status {
      auto reg = ctx_.chain.lookup_blob(pull->id);
      if (!reg) return tl::unexpected(reg.error());
      if (reg->index != pull->index || reg->size != pull->size) {
        return make_error(Errc::verification_failed, "the announcement disagrees with the chain registry (index " +
                                                         std::to_string(reg->index.value) + ", size " +
                                                         std::to_string(reg->size) + ")");
      }
      auto blob = shards::verify_fetched(*ctx_.codec, shards::RegisteredBlob{reg->index, reg->commitment, reg->size},
                                         std::move(gathered->reply));
      if (!blob) return tl::unexpected(blob.error());
      auto stored = shards::ingest_committed(ctx_.store, pull->index, std::move(*blob), ctx_.sealer.get());
      if (!stored) {
        store_failed = true;
        return tl::unexpected(with_context(stored.error(), "storing the pulled replica here"));
      }
      return {};
    }();
    ctx_.post([this, pull, gathered, outcome, store_failed, alive] {
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
        // Not the peers' fault: retry later (a full disk recovers by
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
                "pull of blob " << pull->id.hex() << " failed: " << outcome.error().to_string());
      if (code == Errc::verification_failed || code == Errc::invalid_argument) {
        // Every fragment matched its root, yet the blob does not verify
        // (bytes past its registered length, or an announcement the
        // registry contradicts): the peers that served it sent bad data.
        bad_fragments_.inc();
        for (const NodeId& peer : gathered->served) remote_.report(peer, shards::PeerVerdict::invalid_data);
      }
      retry_later(pull, outcome.error().message);
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
