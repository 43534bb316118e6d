#include "node/uploader.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "cairn/erasure/file.hpp"
#include "cairn/p2p/clock.hpp"
#include "node/sync_link.hpp"

namespace cairn::node {

// One blocking call: what the engine's callbacks (network thread) left for
// the calling thread. Under Uploader::mu_.
struct Uploader::Call {
  std::condition_variable cv;
  std::optional<Status> admitted;                     // the latest add()
  std::optional<Result<shards::UploadOutcome>> done;  // the upload's end
  std::optional<UploadPhase> phase;                   // newest phase not yet told
  std::optional<UploadPhase> told;                    // last phase told (caller's thread)
};

// The engine's ports over the node.
class Uploader::Ports final : public shards::UploadChain, public shards::UploadGossip, public shards::UploadObserver {
 public:
  Ports(NodeContext& ctx, Notices& notices)
      : ctx_(ctx),
        notices_(notices),
        blobs_accepted_(ctx.metrics.counter("cairn_upload_blobs_total", "Blobs entering the upload pipeline.")),
        blobs_acknowledged_(ctx.metrics.counter("cairn_upload_blobs_acknowledged_total",
                                                "Blobs that reached min_replicas confirmations.")),
        bytes_accepted_(ctx.metrics.counter("cairn_upload_bytes_total", "Payload bytes of blobs accepted for upload.")),
        reannounced_(ctx.metrics.counter("cairn_upload_reannounced_total",
                                         "Blobs announced again after a quiet reannounce interval.")),
        local_failures_(ctx.metrics.counter("cairn_upload_local_store_failures_total",
                                            "Failed writes of this node's own replica of an uploaded blob.")),
        ack_latency_(ctx.metrics.histogram("cairn_upload_ack_seconds",
                                           "Time from accepting a blob to its min_replicas-th confirmation.",
                                           metrics::Histogram::latency_buckets())) {}

  // ---- UploadChain ----
  void register_blob(const BlobId& id, uint32_t size, Registered done) override {
    ctx_.chain.register_blob(id, size, [done = std::move(done)](Result<contracts::BlobRecord> r) {
      if (!r) {
        done(tl::unexpected(r.error()));
      } else {
        done(registered_blob(*r));
      }
    });
  }
  bool serves(ShardId shard) const override { return ctx_.served.serves(shard); }
  size_t serving_count(ShardId shard) const override {
    return ctx_.chain.serving_count(shard, ctx_.self, ctx_.served.serves(shard));
  }
  bool listed(ShardId shard, const NodeId& node) const override {
    const auto nodes = ctx_.chain.nodes(shard);
    return std::any_of(nodes.begin(), nodes.end(), [&](const contracts::NodeRecord& r) { return r.node_id == node; });
  }

  // ---- UploadGossip ----
  void announce(ShardId shard, const BlobId& id, BlobIndex index, uint32_t size) override {
    notices_.announce(shard, wire::NoticeEntry{id, index, size});
  }
  void stored(ShardId shard, const BlobId& id, BlobIndex index) override {
    notices_.stored(shard, wire::NoticeEntry{id, index, 0});
  }

  // ---- UploadObserver ----
  void accepted(const BlobId&, uint32_t bytes) override {
    blobs_accepted_.inc();
    bytes_accepted_.inc(bytes);
  }
  void acknowledged(const BlobId&, Duration latency) override {
    blobs_acknowledged_.inc();
    ack_latency_.observe(std::chrono::duration<double>(latency).count());
  }
  void reannounced(size_t blobs) override { reannounced_.inc(blobs); }
  void stored_locally(const BlobId& id, BlobIndex) override { ctx_.holders.add(id, ctx_.self); }
  void local_store_failed(const BlobId&, BlobIndex, const Error&) override { local_failures_.inc(); }

 private:
  NodeContext& ctx_;
  Notices& notices_;
  metrics::Counter& blobs_accepted_;
  metrics::Counter& blobs_acknowledged_;
  metrics::Counter& bytes_accepted_;
  metrics::Counter& reannounced_;
  metrics::Counter& local_failures_;
  metrics::Histogram& ack_latency_;
};

Uploader::Uploader(NodeContext& ctx, Notices& notices)
    : ctx_(ctx),
      ports_(std::make_unique<Ports>(ctx, notices)),
      engine_(
          *ports_, *ports_, *ports_, ctx.store, ctx.pool, ctx.codec, ctx.sealer, ctx.clock, ctx.io.get_executor(),
          [&ctx](std::function<void()> fn) { ctx.post(std::move(fn)); }, ctx.self, ctx.settings.upload),
      uploads_(ctx.metrics.counter("cairn_upload_requests_total", "Upload calls (files and blobs) accepted.")),
      upload_failures_(ctx.metrics.counter("cairn_upload_failures_total",
                                           "Upload calls that returned an error (timeouts included).")) {
  ctx.metrics.gauge_fn("cairn_upload_blobs_in_flight", "Blobs accepted and not yet acknowledged.",
                       [this] { return static_cast<double>(in_flight()); });
}

Uploader::~Uploader() { ctx_.metrics.remove_fns("cairn_upload_blobs_in_flight"); }

size_t Uploader::in_flight() const { return engine_.in_flight(); }

std::shared_ptr<const erasure::CommittedBlob> Uploader::find(const BlobId& id) const { return engine_.find(id); }

void Uploader::tick() { engine_.tick(); }

void Uploader::on_stored(const wire::Notice& notice) {
  for (const auto& e : notice.entries) engine_.confirmed(notice.node, e.id);
}

Status Uploader::resume() {
  auto resumed = engine_.resume();
  if (!resumed) return tl::unexpected(resumed.error());
  return {};
}

void Uploader::stop(std::chrono::milliseconds timeout, bool network_running) {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (const auto& c : calls_) c->cv.notify_all();
  }
  // The engine lives on the network thread; one that never ran leaves
  // nobody else to touch it.
  if (network_running) {
    (void)ctx_.run_on_io([this] { engine_.stop(); });
  } else {
    engine_.stop();
  }
  // Store writes already queued finish while the network is still up (an
  // own replica's stored notice goes out), for up to `timeout` of real time
  // (the stop's bound, not the engine's clock); the rest finish when the
  // node drains its pool. A pool without threads runs them on the node's
  // io_context, which the caller pumped before.
  if (ctx_.pool.threads() == 0) return;
  cairn::Clock& real = p2p::real_clock();
  const auto give_up = real.now() + timeout;
  while (engine_.store_jobs() > 0 && real.now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// ---- the blocking calls ----

shards::UploadHandle Uploader::begin(const std::shared_ptr<Call>& call, const PutOptions& options) {
  const auto& up = ctx_.settings.upload;
  shards::UploadRequest request;
  request.min_replicas = std::max<uint32_t>(1, options.min_replicas.value_or(up.min_replicas));
  request.timeout = std::chrono::duration_cast<Duration>(options.timeout.value_or(up.ack_timeout));
  shards::UploadCallbacks cb;
  std::weak_ptr<Call> weak = call;
  if (options.phases) {
    cb.phase = [this, weak](const UploadPhase& p) {
      auto c = weak.lock();
      if (!c) return;
      std::lock_guard lock(mu_);
      c->phase = p;
      c->cv.notify_all();
    };
  }
  cb.done = [this, weak](Result<shards::UploadOutcome> r) {
    auto c = weak.lock();
    if (!c) return;
    std::lock_guard lock(mu_);
    c->done = std::move(r);
    c->cv.notify_all();
  };
  {
    std::lock_guard lock(mu_);
    calls_.insert(call);
  }
  return engine_.begin(request, std::move(cb));
}

void Uploader::close(const std::shared_ptr<Call>& call) {
  std::lock_guard lock(mu_);
  calls_.erase(call);
}

void Uploader::wait(Call& call, const PutOptions& options, const std::function<bool()>& ready) {
  std::unique_lock lock(mu_);
  for (;;) {
    if (call.phase && options.phases) {
      const UploadPhase p = *call.phase;
      call.phase.reset();
      if (call.told == p) continue;
      call.told = p;
      // The callback may block (a slow HTTP client): never under mu_.
      lock.unlock();
      options.phases(p);
      lock.lock();
      continue;
    }
    if (ready() || stopping_) return;
    call.cv.wait(lock);
  }
}

Status Uploader::add(const std::shared_ptr<Call>& call, shards::UploadHandle handle,
                     std::shared_ptr<erasure::CommittedBlob> blob, const PutOptions& options) {
  {
    std::lock_guard lock(mu_);
    call->admitted.reset();
  }
  std::weak_ptr<Call> weak = call;
  engine_.add(handle, std::move(blob), [this, weak](Status st) {
    auto c = weak.lock();
    if (!c) return;
    std::lock_guard lock(mu_);
    c->admitted = std::move(st);
    c->cv.notify_all();
  });
  wait(*call, options, [&] { return call->admitted.has_value(); });
  std::lock_guard lock(mu_);
  // A refused add of an upload that already ended: its end says why.
  if (call->done && !*call->done && (!call->admitted || !*call->admitted)) return tl::unexpected(call->done->error());
  if (!call->admitted) return make_error(Errc::cancelled, "the node is stopping");
  return *call->admitted;
}

Result<shards::UploadOutcome> Uploader::finish(const std::shared_ptr<Call>& call, shards::UploadHandle handle,
                                               std::string what, const PutOptions& options) {
  const std::string name = what;
  engine_.seal(handle, std::move(what));
  wait(*call, options, [&] { return call->done.has_value(); });
  std::optional<Result<shards::UploadOutcome>> done;
  std::optional<UploadPhase> told;
  {
    std::lock_guard lock(mu_);
    done = std::move(call->done);
    told = call->told;
  }
  close(call);
  if (!done) {
    return make_error(Errc::cancelled, "uploading " + name +
                                           ": the node is stopping; its blobs stay pending and resume at the "
                                           "next start");
  }
  if (*done && options.phases && told != (*done)->phase) options.phases((*done)->phase);
  return std::move(*done);
}

Result<PutFileResult> Uploader::put_file(ByteSpan content, const PutOptions& options) {
  uploads_.inc();
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      upload_failures_.inc();
      return make_error(Errc::cancelled, "the node is stopping");
    }
  }
  auto call = std::make_shared<Call>();
  const auto handle = begin(call, options);
  erasure::FileOptions fopts;
  fopts.compress = options.compress;
  auto summary = erasure::encode_file(*ctx_.codec, content, fopts, [&](const erasure::BlobPiece& piece) -> Status {
    return add(call, handle, std::make_shared<erasure::CommittedBlob>(piece.blob), options);
  });
  if (!summary) {
    upload_failures_.inc();
    // Blobs already admitted keep replicating; only this caller gives up.
    engine_.abandon(handle);
    close(call);
    return tl::unexpected(
        with_context(summary.error(), "uploading a file of " + std::to_string(content.size()) + " bytes"));
  }
  auto out = finish(call, handle, "file " + summary->id.hex(), options);
  if (!out) {
    upload_failures_.inc();
    return tl::unexpected(out.error());
  }
  return put_file_result(*summary, out->replicas);
}

Result<PutBlobResult> Uploader::put_blob(ByteSpan payload, const PutOptions& options) {
  uploads_.inc();
  if (payload.size() > ctx_.params.blob_size) {
    upload_failures_.inc();
    return make_error(Errc::invalid_argument, "blob of " + std::to_string(payload.size()) +
                                                  " bytes exceeds blob_size " + std::to_string(ctx_.params.blob_size));
  }
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      upload_failures_.inc();
      return make_error(Errc::cancelled, "the node is stopping");
    }
  }
  auto blob = std::make_shared<erasure::CommittedBlob>();
  CAIRN_TRY_STATUS(erasure::encode_and_commit_into(*ctx_.codec, payload, *blob));
  const BlobId id = blob->commitment.id;
  auto call = std::make_shared<Call>();
  const auto handle = begin(call, options);
  if (auto st = add(call, handle, std::move(blob), options); !st) {
    upload_failures_.inc();
    engine_.abandon(handle);
    close(call);
    return tl::unexpected(st.error());
  }
  auto out = finish(call, handle, "blob " + id.hex(), options);
  if (!out) {
    upload_failures_.inc();
    return tl::unexpected(out.error());
  }
  PutBlobResult r;
  r.id = id;
  r.size = static_cast<uint32_t>(payload.size());
  r.index = out->first.index;
  r.shard = ctx_.params.shard_of(r.index);
  r.replicas = out->replicas;
  return r;
}

}  // namespace cairn::node
