#include "node/uploader.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <string>

#include "cairn/core/log.hpp"
#include "cairn/erasure/file.hpp"
#include "cairn/p2p/identity.hpp"
#include "cairn/shards/ingest.hpp"

namespace cairn::node {

// A blocked caller re-reads the injected clock at least this often (real
// time), so that deadlines follow a simulation's manual clock too.
constexpr auto kWaitSlice = std::chrono::milliseconds(20);

struct Uploader::Waiter {
  uint32_t want = 1;     // replicas asked for
  size_t remaining = 0;  // admitted blobs not yet acknowledged
  uint32_t min_confirmed = std::numeric_limits<uint32_t>::max();
  std::optional<Error> error;
  std::condition_variable cv;
  ProgressFn progress;
  uint64_t total = 0;       // bytes of the original content
  uint64_t done_bytes = 0;  // payload bytes of acknowledged data blobs
  // PutOptions::phases and what it was last told (caller's thread only).
  PhaseFn phases;
  uint64_t admitted = 0;    // admit() calls for this waiter (remaining counts down from it)
  bool encoded = false;     // every blob is admitted
  uint32_t need_acked = 0;  // most replicas any acknowledged blob needed
  std::optional<UploadPhase> last_phase;
  TimePoint last_phase_at{};
};

struct Uploader::Entry {
  std::shared_ptr<erasure::CommittedBlob> blob;  // plain; shared with readers via find()
  uint32_t size = 0;
  bool is_data = true;  // counts toward progress
  std::optional<contracts::BlobRecord> reg;
  uint32_t requested = 1;  // most replicas any waiter asked for
  uint32_t want = 1;       // requested, capped by the shard's registered nodes
  std::set<NodeId> confirmed;
  bool registering = false;
  bool local_running = false;
  bool local_failed = false;
  std::optional<Error> local_error;  // the latest failure to store this node's own replica
  TimePoint created;
  TimePoint last_progress;
  std::vector<std::shared_ptr<Waiter>> waiters;
};

Uploader::Uploader(NodeContext& ctx, Notices& notices)
    : ctx_(ctx),
      notices_(notices),
      uploads_(ctx.metrics.counter("cairn_upload_requests_total", "Upload calls (files and blobs) accepted.")),
      upload_failures_(ctx.metrics.counter("cairn_upload_failures_total",
                                           "Upload calls that returned an error (timeouts included).")),
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
                                         metrics::Histogram::latency_buckets())) {
  ctx.metrics.gauge_fn("cairn_upload_blobs_in_flight", "Blobs accepted and not yet acknowledged.",
                       [this] { return static_cast<double>(in_flight()); });
}

Uploader::~Uploader() { ctx_.metrics.remove_fns("cairn_upload_blobs_in_flight"); }

size_t Uploader::in_flight() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

std::shared_ptr<const erasure::CommittedBlob> Uploader::find(const BlobId& id) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  return it == entries_.end() ? nullptr : it->second.blob;
}

void Uploader::job_started() {
  std::lock_guard lock(mu_);
  ++jobs_running_;
}

void Uploader::job_finished() {
  std::lock_guard lock(mu_);
  if (--jobs_running_ == 0) jobs_cv_.notify_all();
}

uint32_t Uploader::replica_cap(ShardId shard) const {
  const size_t count = ctx_.chain.serving_count(shard, ctx_.self, ctx_.served.serves(shard));
  return static_cast<uint32_t>(std::min<size_t>(std::max<size_t>(1, count), UINT32_MAX));
}

// ---- the calls ----

Result<PutFileResult> Uploader::put_file(ByteSpan content, const PutOptions& options) {
  uploads_.inc();
  const auto& up = ctx_.settings.upload;
  const auto deadline = ctx_.clock.now() + options.timeout.value_or(up.ack_timeout);
  auto waiter = std::make_shared<Waiter>();
  waiter->want = std::max<uint32_t>(1, options.min_replicas.value_or(up.min_replicas));
  waiter->progress = options.progress;
  waiter->phases = options.phases;
  waiter->total = content.size();

  erasure::FileOptions fopts;
  fopts.compress = options.compress;
  auto summary = erasure::encode_file(*ctx_.codec, content, fopts, [&](const erasure::BlobPiece& piece) -> Status {
    auto st = admit(waiter, std::make_shared<erasure::CommittedBlob>(piece.blob), deadline,
                    /*persisted=*/false, /*is_data=*/!piece.is_manifest);
    if (st && waiter->phases) {
      std::unique_lock lock(mu_);
      report_phase(waiter, lock, /*force=*/false);
    }
    return st;
  });
  if (!summary) {
    upload_failures_.inc();
    // Blobs already admitted keep replicating; only this caller gives up.
    std::lock_guard lock(mu_);
    for (auto& [id, e] : entries_) std::erase(e.waiters, waiter);
    return tl::unexpected(
        with_context(summary.error(), "uploading a file of " + std::to_string(content.size()) + " bytes"));
  }
  {
    std::lock_guard lock(mu_);
    waiter->encoded = true;
  }
  auto st = wait(waiter, deadline, "file " + summary->id.hex());
  if (!st) {
    upload_failures_.inc();
    return tl::unexpected(st.error());
  }
  if (waiter->progress) waiter->progress(content.size(), content.size());
  if (waiter->phases) {
    std::unique_lock lock(mu_);
    report_phase(waiter, lock, /*force=*/true);
  }
  return put_file_result(*summary,
                         waiter->min_confirmed == std::numeric_limits<uint32_t>::max() ? 0 : waiter->min_confirmed);
}

Result<PutBlobResult> Uploader::put_blob(ByteSpan payload, const PutOptions& options) {
  uploads_.inc();
  if (payload.size() > ctx_.params.blob_size) {
    upload_failures_.inc();
    return make_error(Errc::invalid_argument, "blob of " + std::to_string(payload.size()) +
                                                  " bytes exceeds blob_size " + std::to_string(ctx_.params.blob_size));
  }
  const auto& up = ctx_.settings.upload;
  const auto deadline = ctx_.clock.now() + options.timeout.value_or(up.ack_timeout);
  auto blob = std::make_shared<erasure::CommittedBlob>();
  CAIRN_TRY_STATUS(erasure::encode_and_commit_into(*ctx_.codec, payload, *blob));
  const BlobId id = blob->commitment.id;
  auto waiter = std::make_shared<Waiter>();
  waiter->want = std::max<uint32_t>(1, options.min_replicas.value_or(up.min_replicas));
  waiter->progress = options.progress;
  waiter->phases = options.phases;
  waiter->total = payload.size();
  waiter->encoded = true;  // one blob, admitted next
  if (auto st = admit(waiter, std::move(blob), deadline, /*persisted=*/false, /*is_data=*/true); !st) {
    upload_failures_.inc();
    return tl::unexpected(st.error());
  }
  if (auto st = wait(waiter, deadline, "blob " + id.hex()); !st) {
    upload_failures_.inc();
    return tl::unexpected(st.error());
  }
  if (waiter->phases) {
    std::unique_lock lock(mu_);
    report_phase(waiter, lock, /*force=*/true);
  }
  auto reg = ctx_.chain.lookup_blob(id);
  if (!reg) return tl::unexpected(reg.error());
  PutBlobResult r;
  r.id = id;
  r.size = static_cast<uint32_t>(payload.size());
  r.index = reg->index;
  r.shard = ctx_.params.shard_of(reg->index);
  r.replicas = waiter->min_confirmed == std::numeric_limits<uint32_t>::max() ? 0 : waiter->min_confirmed;
  return r;
}

Status Uploader::wait(const std::shared_ptr<Waiter>& waiter, TimePoint deadline, const std::string& what) {
  std::unique_lock lock(mu_);
  const auto settled = [&] { return waiter->remaining == 0 || waiter->error.has_value() || stopping_; };
  bool finished = false;
  if (waiter->phases) {
    // Wake every kPhaseInterval to tell the caller how far the blobs got.
    while (!(finished = settled()) && ctx_.clock.now() < deadline) {
      report_phase(waiter, lock, /*force=*/false);
      finished = waiter->cv.wait_for(lock, kWaitSlice, settled);
      if (finished) break;
    }
  } else {
    while (!(finished = settled()) && ctx_.clock.now() < deadline) {
      finished = waiter->cv.wait_for(lock, kWaitSlice, settled);
    }
  }
  if (waiter->error) return tl::unexpected(*waiter->error);
  if (finished && waiter->remaining == 0) return {};
  // Timed out or stopping: the blobs stay pending and keep replicating.
  size_t left = 0;
  std::optional<Error> local_error;  // why this node holds no replica of one of them
  for (auto& [id, e] : entries_) {
    if (std::erase(e.waiters, waiter) > 0) {
      ++left;
      if (!local_error && e.local_error) local_error = e.local_error;
    }
  }
  if (stopping_) {
    return make_error(Errc::cancelled, "uploading " + what + ": the node is stopping; " + std::to_string(left) +
                                           " blob(s) stay pending and resume at the next start");
  }
  return make_error(
      Errc::timeout,
      "uploading " + what + ": " + std::to_string(left) + " blob(s) did not reach " + std::to_string(waiter->want) +
          " confirmed replica(s) in time; they stay pending and keep replicating" +
          (local_error ? "; this node could not store its own replica: " + local_error->to_string() : std::string()));
}

Status Uploader::admit(const std::shared_ptr<Waiter>& waiter, std::shared_ptr<erasure::CommittedBlob> blob,
                       TimePoint deadline, bool persisted, bool is_data) {
  const BlobId id = blob->commitment.id;
  const uint32_t size = blob->encoded.length;
  {
    std::unique_lock lock(mu_);
    if (!waiter) {
      // Resumed from the pending store: never waits for space.
    } else if (!wait_for_room(lock, id, deadline)) {
      return make_error(
          Errc::timeout,
          "the upload window (" + std::to_string(ctx_.settings.upload.max_blobs_in_flight) + " blobs) stayed full");
    }
    if (stopping_) return make_error(Errc::cancelled, "the node is stopping");
    auto [it, inserted] = entries_.try_emplace(id);
    Entry& e = it->second;
    if (inserted) e.requested = waiter ? waiter->want : std::max<uint32_t>(1, ctx_.settings.upload.min_replicas);
    if (waiter) {
      e.waiters.push_back(waiter);
      ++waiter->remaining;
      ++waiter->admitted;
      e.requested = std::max(e.requested, waiter->want);
    }
    if (!inserted) return {};
    e.blob = std::move(blob);
    e.is_data = is_data;
    e.size = size;
    e.created = e.last_progress = ctx_.clock.now();
    e.registering = true;
  }
  blobs_accepted_.inc();
  bytes_accepted_.inc(size);
  if (persisted) {
    ctx_.chain.register_blob(id, size,
                             [this, id](Result<contracts::BlobRecord> r) { on_registered(id, std::move(r)); });
    return {};
  }
  // Persist off the caller's thread when the pool has room (fsyncs of
  // concurrent uploads then share a group commit); on a full pool the
  // caller writes itself, which is the backpressure a burst needs.
  job_started();
  auto job = [this, id] {
    persist_and_register(id);
    job_finished();
  };
  if (!ctx_.submit(job, [this] { job_finished(); })) job();
  return {};
}

bool Uploader::wait_for_room(std::unique_lock<std::mutex>& lock, const BlobId& id, TimePoint deadline) {
  const auto room = [&] {
    return stopping_ || entries_.size() < ctx_.settings.upload.max_blobs_in_flight || entries_.count(id) > 0;
  };
  while (!room()) {
    if (ctx_.clock.now() >= deadline) return false;
    space_cv_.wait_for(lock, kWaitSlice, room);
  }
  return true;
}

void Uploader::persist_and_register(const BlobId& id) {
  std::shared_ptr<erasure::CommittedBlob> blob;
  uint32_t size = 0;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    blob = it->second.blob;
    size = it->second.size;
  }
  shards::PendingUpload pending;
  pending.payload.assign(blob->encoded.data.begin(), blob->encoded.data.begin() + size);
  pending.created_at_ms = unix_ms();
  if (auto st = ctx_.store.put_pending(id, pending); !st) {
    std::vector<std::function<void()>> after;
    {
      std::lock_guard lock(mu_);
      fail_locked(id, with_context(st.error(), "persisting pending blob " + id.hex()), after);
    }
    for (auto& f : after) f();
    return;
  }
  ctx_.chain.register_blob(id, size, [this, id](Result<contracts::BlobRecord> r) { on_registered(id, std::move(r)); });
}

void Uploader::on_registered(const BlobId& id, Result<contracts::BlobRecord> reg) {
  std::vector<std::function<void()>> after;
  bool serve = false;
  ShardId shard;
  wire::NoticeEntry entry;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    Entry& e = it->second;
    e.registering = false;
    if (!reg) {
      if (reg.error().code == Errc::cancelled) return;  // stopping: stays pending
      fail_locked(id, reg.error(), after);
    } else {
      e.reg = *reg;
      shard = ctx_.params.shard_of(reg->index);
      e.last_progress = ctx_.clock.now();
      serve = ctx_.served.serves(shard) && !e.local_running;
      if (serve) e.local_running = true;
      entry = wire::NoticeEntry{id, reg->index, e.size};
      check_done_locked(id, after);
    }
  }
  for (auto& f : after) f();
  if (!reg) return;
  notices_.announce(shard, entry);
  if (serve) store_locally(id);
}

void Uploader::store_locally(const BlobId& id) {
  job_started();
  auto job = [this, id] {
    std::shared_ptr<erasure::CommittedBlob> blob;
    BlobIndex index;
    {
      std::lock_guard lock(mu_);
      auto it = entries_.find(id);
      if (it == entries_.end() || !it->second.reg) {
        job_finished();
        return;
      }
      blob = it->second.blob;
      index = it->second.reg->index;
    }
    // ingest_committed seals in place: give it a copy, the plain blob keeps
    // serving pulls.
    auto stored = shards::ingest_committed(ctx_.store, index, *blob, ctx_.sealer.get());
    bool ok = static_cast<bool>(stored);
    std::optional<Error> error;
    if (!ok) {
      error = stored.error();
      local_failures_.inc();
      CAIRN_LOG(log::Level::warn, "node",
                "storing own replica of blob " << id.hex() << " at index " << index.value << ": "
                                               << stored.error().to_string());
    }
    {
      std::vector<std::function<void()>> after;
      {
        std::lock_guard lock(mu_);
        auto it = entries_.find(id);
        if (it != entries_.end()) {
          it->second.local_running = false;
          it->second.local_failed = !ok;
          it->second.local_error = error;
          // Remote confirmations may have been waiting for this write.
          if (!ok) check_done_locked(id, after);
        }
      }
      for (auto& f : after) f();
    }
    if (ok) {
      ctx_.holders.add(id, ctx_.self);
      notices_.stored(ctx_.params.shard_of(index), wire::NoticeEntry{id, index, 0});
      confirm(id, ctx_.self);
    }
    job_finished();
  };
  if (auto st = ctx_.submit(job,
                            [this, id] {
                              {
                                std::lock_guard lock(mu_);
                                auto it = entries_.find(id);
                                if (it != entries_.end()) {
                                  it->second.local_running = false;
                                  it->second.local_failed = true;
                                }
                              }
                              job_finished();
                            });
      !st) {
    // Pool full or stopping: tick() retries.
    std::lock_guard lock(mu_);
    auto it = entries_.find(id);
    if (it != entries_.end()) {
      it->second.local_running = false;
      it->second.local_failed = true;
    }
    if (--jobs_running_ == 0) jobs_cv_.notify_all();
  }
}

void Uploader::on_stored(const wire::Notice& notice) {
  for (const auto& e : notice.entries) confirm(e.id, notice.node);
}

void Uploader::confirm(const BlobId& id, const NodeId& node) {
  std::vector<std::function<void()>> after;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    if (!it->second.confirmed.insert(node).second) return;
    it->second.last_progress = ctx_.clock.now();
    check_done_locked(id, after);
  }
  for (auto& f : after) f();
}

void Uploader::check_done_locked(const BlobId& id, std::vector<std::function<void()>>& after) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  if (!e.reg || e.local_running) return;
  // The cap follows the registry as it refreshes (nodes joining the shard).
  const ShardId shard = ctx_.params.shard_of(e.reg->index);
  e.want = std::min(e.requested, replica_cap(shard));
  if (e.confirmed.size() < e.want) return;
  // Only this node and nodes the registry lists for the shard count: a
  // stored notice signed by any other key proves no replica anyone serves.
  const auto listed = ctx_.chain.nodes(shard);
  const auto confirmed =
      static_cast<uint32_t>(std::count_if(e.confirmed.begin(), e.confirmed.end(), [&](const NodeId& n) {
        return n == ctx_.self || std::any_of(listed.begin(), listed.end(),
                                             [&](const contracts::NodeRecord& r) { return r.node_id == n; });
      }));
  if (confirmed < e.want) return;
  for (auto& w : e.waiters) {
    w->min_confirmed = std::min(w->min_confirmed, confirmed);
    w->need_acked = std::max(w->need_acked, e.want);
    if (e.is_data) w->done_bytes += e.size;
    if (--w->remaining == 0) w->cv.notify_all();
    if (w->progress) {
      auto progress = w->progress;
      const uint64_t done = std::min(w->done_bytes, w->total), total = w->total;
      after.push_back([progress, done, total] { progress(done, total); });
    }
  }
  ack_latency_.observe(std::chrono::duration<double>(ctx_.clock.now() - e.created).count());
  blobs_acknowledged_.inc();
  entries_.erase(it);
  space_cv_.notify_all();
  // The pending copy is no longer needed; failing to erase it only means a
  // harmless re-check at the next start.
  after.push_back([this, id] { (void)ctx_.submit([this, id] { (void)ctx_.store.erase_pending(id); }); });
}

void Uploader::fail_locked(const BlobId& id, const Error& error, std::vector<std::function<void()>>& after) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  for (auto& w : it->second.waiters) {
    if (!w->error) w->error = error;
    w->cv.notify_all();
  }
  CAIRN_LOG(log::Level::warn, "node", "upload of blob " << id.hex() << " failed: " << error.to_string());
  entries_.erase(it);
  space_cv_.notify_all();
  after.push_back([this, id] { (void)ctx_.submit([this, id] { (void)ctx_.store.erase_pending(id); }); });
}

UploadPhase Uploader::phase_locked(const Waiter& waiter) const {
  UploadPhase p;
  p.blobs = waiter.admitted;
  p.encoded = waiter.encoded;
  p.acknowledged = waiter.admitted - waiter.remaining;
  p.registered = p.acknowledged;
  p.need = waiter.need_acked;
  uint32_t fewest = waiter.min_confirmed;
  std::map<uint32_t, uint32_t> caps;  // shard -> replica_cap, asked once per shard
  for (const auto& [id, e] : entries_) {
    const auto n = static_cast<uint64_t>(
        std::count_if(e.waiters.begin(), e.waiters.end(), [&](const auto& w) { return w.get() == &waiter; }));
    if (n == 0) continue;
    fewest = std::min(fewest, static_cast<uint32_t>(std::min<size_t>(e.confirmed.size(), UINT32_MAX)));
    if (!e.reg) continue;
    p.registered += n;
    const ShardId shard = ctx_.params.shard_of(e.reg->index);
    auto [cap, inserted] = caps.try_emplace(shard.value, 0);
    if (inserted) cap->second = replica_cap(shard);
    p.need = std::max(p.need, std::min(e.requested, cap->second));
  }
  p.confirmed = fewest == std::numeric_limits<uint32_t>::max() ? 0 : fewest;
  return p;
}

void Uploader::report_phase(const std::shared_ptr<Waiter>& waiter, std::unique_lock<std::mutex>& lock, bool force) {
  const auto now = ctx_.clock.now();
  if (!force && now - waiter->last_phase_at < kPhaseInterval) return;
  const UploadPhase p = phase_locked(*waiter);
  if (waiter->last_phase == p) return;
  waiter->last_phase = p;
  waiter->last_phase_at = now;
  // The callback may block (a slow HTTP client): never under mu_.
  lock.unlock();
  waiter->phases(p);
  lock.lock();
}

void Uploader::tick() {
  const auto now = ctx_.clock.now();
  const auto& up = ctx_.settings.upload;
  std::vector<std::pair<ShardId, wire::NoticeEntry>> announce;
  std::vector<BlobId> retry_local;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    for (auto it = entries_.begin(); it != entries_.end();) {
      Entry& e = it->second;
      if (e.reg && now - e.last_progress >= up.reannounce_interval) {
        if (e.waiters.empty() && now - e.created >= up.ack_timeout) {
          // Nobody waits and nothing moved for a whole ack timeout: free the
          // window. The payload stays in the pending store and resumes at
          // the next start.
          CAIRN_LOG(log::Level::warn, "node",
                    "blob " << it->first.hex() << " has " << e.confirmed.size() << " of " << e.want
                            << " replicas after "
                            << std::chrono::duration_cast<std::chrono::seconds>(now - e.created).count()
                            << " s; keeping it pending on disk only");
          it = entries_.erase(it);
          space_cv_.notify_all();
          continue;
        }
        e.last_progress = now;
        announce.emplace_back(ctx_.params.shard_of(e.reg->index), wire::NoticeEntry{it->first, e.reg->index, e.size});
      }
      if (e.reg && e.local_failed && !e.local_running && ctx_.served.serves(ctx_.params.shard_of(e.reg->index))) {
        e.local_failed = false;
        e.local_running = true;
        retry_local.push_back(it->first);
      }
      ++it;
    }
  }
  // The replica cap may have changed with the registry: re-check.
  std::vector<std::function<void()>> after;
  {
    std::lock_guard lock(mu_);
    std::vector<BlobId> ids;
    for (const auto& [id, e] : entries_) {
      if (e.reg) ids.push_back(id);
    }
    for (const auto& id : ids) check_done_locked(id, after);
  }
  for (auto& f : after) f();
  reannounced_.inc(announce.size());
  for (const auto& [shard, entry] : announce) notices_.announce(shard, entry);
  for (const auto& id : retry_local) store_locally(id);
}

Status Uploader::resume() {
  auto ids = ctx_.store.list_pending(std::numeric_limits<size_t>::max());
  if (!ids) return tl::unexpected(with_context(ids.error(), "listing pending uploads"));
  size_t resumed = 0;
  for (const BlobId& id : *ids) {
    auto pending = ctx_.store.get_pending(id);
    if (!pending) {
      CAIRN_LOG(log::Level::warn, "node",
                "pending upload " << id.hex() << " unreadable, dropped: " << pending.error().to_string());
      (void)ctx_.store.erase_pending(id);
      continue;
    }
    auto blob = std::make_shared<erasure::CommittedBlob>();
    auto st = erasure::encode_and_commit_into(*ctx_.codec, pending->payload, *blob);
    if (!st || blob->commitment.id != id) {
      CAIRN_LOG(log::Level::error, "node", "pending upload " << id.hex() << " does not encode to its id; dropped");
      (void)ctx_.store.erase_pending(id);
      continue;
    }
    CAIRN_TRY_STATUS(admit(nullptr, std::move(blob), ctx_.clock.now(), /*persisted=*/true, /*is_data=*/true));
    ++resumed;
  }
  if (resumed > 0) CAIRN_LOG(log::Level::info, "node", "resumed " << resumed << " pending upload blob(s)");
  return {};
}

void Uploader::stop(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  stopping_ = true;
  for (auto& [id, e] : entries_) {
    for (auto& w : e.waiters) w->cv.notify_all();
  }
  space_cv_.notify_all();
  jobs_cv_.wait_for(lock, timeout, [&] { return jobs_running_ == 0; });
}

}  // namespace cairn::node
