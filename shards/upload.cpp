#include "cairn/shards/upload.hpp"

#include <algorithm>
#include <atomic>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include <asio/any_io_executor.hpp>

#include "cairn/core/log.hpp"

namespace cairn::shards {
namespace {

constexpr const char* kUploadLog = "upload";
constexpr uint32_t kNoConfirmation = std::numeric_limits<uint32_t>::max();

uint64_t pending_created_ms() {
  // Only recorded in the pending record (for operators), never compared.
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

struct UploadEngine::Impl : std::enable_shared_from_this<Impl> {
  struct Upload {
    UploadRequest request;
    UploadCallbacks cb;
    std::string what = "an upload";
    TimePoint deadline{};
    uint64_t admitted = 0;   // blobs admitted (remaining counts down from it)
    uint64_t remaining = 0;  // admitted blobs not yet acknowledged
    bool encoded = false;    // seal() was called
    uint32_t min_confirmed = kNoConfirmation;
    uint32_t need_acked = 0;  // most replicas any acknowledged blob needed
    std::optional<BlobId> first_id;
    std::optional<RegisteredBlob> first;
    std::optional<UploadPhase> last_phase;
    TimePoint last_phase_at{};
    std::unique_ptr<Timer> deadline_timer;
    std::unique_ptr<Timer> phase_timer;
  };

  struct Entry {
    std::shared_ptr<erasure::CommittedBlob> blob;  // plain; shared with readers via find()
    uint32_t size = 0;
    std::optional<RegisteredBlob> reg;
    uint32_t requested = 1;  // most replicas any upload asked for
    uint32_t want = 1;       // requested, capped by the shard's serving nodes
    std::set<NodeId> confirmed;
    bool local_running = false;
    bool local_failed = false;
    std::optional<Error> local_error;  // the latest failure to store this node's own replica
    TimePoint created{};
    TimePoint last_progress{};
    std::vector<UploadHandle> uploads;
  };

  struct Queued {  // an add() waiting for room in the window
    UploadHandle handle;
    std::shared_ptr<erasure::CommittedBlob> blob;
    std::function<void(Status)> admitted;
  };

  Impl(UploadChain& ch, UploadGossip& g, UploadObserver& o, Store& st, WorkerPool& p,
       std::shared_ptr<const erasure::Codec> c, std::shared_ptr<const ReplicaTransform> s,
       Clock& cl, const asio::any_io_executor& ex, Post po, NodeId se, const UploadSettings& set)
      : chain(ch),
        gossip(g),
        observer(o),
        store(st),
        pool(p),
        codec(std::move(c)),
        sealer(std::move(s)),
        clock(cl),
        executor(ex),
        post(std::move(po)),
        self(se),
        settings(set) {
    settings.max_blobs_in_flight = std::max<uint32_t>(1, settings.max_blobs_in_flight);
    settings.min_replicas = std::max<uint32_t>(1, settings.min_replicas);
  }

  UploadChain& chain;
  UploadGossip& gossip;
  UploadObserver& observer;
  Store& store;
  WorkerPool& pool;
  std::shared_ptr<const erasure::Codec> codec;
  std::shared_ptr<const ReplicaTransform> sealer;
  Clock& clock;
  asio::any_io_executor executor;
  Post post;
  NodeId self;
  UploadSettings settings;

  // Executor only.
  std::map<UploadHandle, Upload> uploads;
  std::unordered_map<BlobId, Entry> entries;
  std::deque<Queued> queued;
  std::vector<BlobId> persist_deferred;  // persists the full pool refused
  std::unique_ptr<Timer> busy_timer;
  bool stopped = false;

  // Any thread.
  std::atomic<UploadHandle> next_handle{1};
  std::atomic<size_t> store_jobs{0};
  mutable std::mutex visible_mu;
  std::unordered_map<BlobId, std::shared_ptr<const erasure::CommittedBlob>> visible;

  ShardId shard_of(BlobIndex index) const { return codec->params().shard_of(index); }

  // Runs `fn(impl)` on the executor if the engine still lives.
  void later(std::function<void(Impl&)> fn) {
    post([weak = weak_from_this(), fn = std::move(fn)] {
      if (auto self_ = weak.lock()) fn(*self_);
    });
  }

  uint32_t replica_cap(ShardId shard) const {
    const size_t count = chain.serving_count(shard);
    return static_cast<uint32_t>(std::min<size_t>(std::max<size_t>(1, count), UINT32_MAX));
  }

  // ---- uploads ----

  void begin(UploadHandle h, UploadRequest request, UploadCallbacks cb) {
    if (stopped) {
      if (cb.done) cb.done(make_error(Errc::cancelled, "the node is stopping"));
      return;
    }
    Upload& u = uploads[h];
    u.request = request;
    u.request.min_replicas = std::max<uint32_t>(1, request.min_replicas);
    u.cb = std::move(cb);
    u.deadline = clock.now() + request.timeout;
    u.deadline_timer = clock.make_timer(executor);
    u.deadline_timer->expires_after(request.timeout, [this, h] { expire(h); });
  }

  void add(UploadHandle h, std::shared_ptr<erasure::CommittedBlob> blob,
           std::function<void(Status)> admitted) {
    if (stopped) {
      admitted(make_error(Errc::cancelled, "the node is stopping"));
      return;
    }
    if (uploads.count(h) == 0) {
      admitted(make_error(Errc::cancelled, "the upload has ended"));
      return;
    }
    Queued q{h, std::move(blob), std::move(admitted)};
    // FIFO: nothing overtakes an add() already waiting for room.
    if (queued.empty() && has_room(q.blob->commitment.id)) {
      admit(std::move(q));
    } else {
      queued.push_back(std::move(q));
    }
  }

  bool has_room(const BlobId& id) const {
    return entries.size() < settings.max_blobs_in_flight || entries.count(id) > 0;
  }

  void admit_queued() {
    while (!stopped && !queued.empty() && has_room(queued.front().blob->commitment.id)) {
      Queued q = std::move(queued.front());
      queued.pop_front();
      admit(std::move(q));
    }
  }

  void admit(Queued q) {
    auto it = uploads.find(q.handle);
    if (it == uploads.end()) {
      q.admitted(make_error(Errc::cancelled, "the upload has ended"));
      return;
    }
    Upload& u = it->second;
    const BlobId id = q.blob->commitment.id;
    ++u.admitted;
    ++u.remaining;
    if (!u.first_id) u.first_id = id;
    const bool fresh = entries.count(id) == 0;
    Entry& e = entries[id];
    if (fresh) {
      e.requested = u.request.min_replicas;
      start(id, e, std::move(q.blob), /*persisted=*/false);
    }
    e.requested = std::max(e.requested, u.request.min_replicas);
    e.uploads.push_back(q.handle);
    q.admitted({});
    if (!fresh && e.reg && u.first_id == id && !u.first) u.first = e.reg;
    // An entry already registered may need no more confirmations.
    if (!fresh) check_done(id);
    report_phase(q.handle, /*force=*/false);
  }

  // Starts the pipeline of a new entry `e` of blob `id`.
  void start(const BlobId& id, Entry& e, std::shared_ptr<erasure::CommittedBlob> blob,
             bool persisted) {
    e.size = blob->encoded.length;
    e.blob = std::move(blob);
    e.created = e.last_progress = clock.now();
    {
      std::lock_guard lock(visible_mu);
      visible[id] = e.blob;
    }
    observer.accepted(id, e.size);
    if (persisted) {
      register_blob(id, e.size);
    } else {
      persist(id);
    }
  }

  void seal(UploadHandle h, std::string what) {
    auto it = uploads.find(h);
    if (it == uploads.end()) return;
    it->second.encoded = true;
    it->second.what = std::move(what);
    if (!complete_if_done(h)) report_phase(h, /*force=*/false);
  }

  void abandon(UploadHandle h) {
    std::erase_if(queued, [&](const Queued& q) { return q.handle == h; });
    detach(h);
    uploads.erase(h);
  }

  // Removes upload `h` from its entries; the blobs keep replicating.
  // Returns how many it was still waiting for and the first own-replica
  // error among them.
  std::pair<size_t, std::optional<Error>> detach(UploadHandle h) {
    size_t left = 0;
    std::optional<Error> local_error;
    for (auto& [id, e] : entries) {
      if (std::erase(e.uploads, h) > 0) {
        ++left;
        if (!local_error && e.local_error) local_error = e.local_error;
      }
    }
    return {left, local_error};
  }

  // Ends upload `h` with `result` (callbacks after the state is updated).
  void finish(UploadHandle h, Result<UploadOutcome> result) {
    auto it = uploads.find(h);
    if (it == uploads.end()) return;
    auto done = std::move(it->second.cb.done);
    std::vector<std::function<void(Status)>> refused;
    for (auto q = queued.begin(); q != queued.end();) {
      if (q->handle == h) {
        refused.push_back(std::move(q->admitted));
        q = queued.erase(q);
      } else {
        ++q;
      }
    }
    detach(h);
    uploads.erase(it);
    const Status why = result ? Status{} : Status(tl::unexpected(result.error()));
    for (auto& r : refused) r(why ? make_error(Errc::cancelled, "the upload has ended") : why);
    if (done) done(std::move(result));
  }

  // Whether an add() of upload `h` waits for room.
  bool waiting(UploadHandle h) const {
    return std::any_of(queued.begin(), queued.end(),
                       [&](const Queued& q) { return q.handle == h; });
  }

  // Completes upload `h` when it is sealed and every blob is acknowledged.
  bool complete_if_done(UploadHandle h) {
    auto it = uploads.find(h);
    if (it == uploads.end()) return true;
    Upload& u = it->second;
    if (!u.encoded || u.remaining > 0 || waiting(h)) return false;
    UploadOutcome out;
    out.replicas = u.min_confirmed == kNoConfirmation ? 0 : u.min_confirmed;
    if (u.first) out.first = *u.first;
    out.phase = phase(h, u);
    finish(h, std::move(out));
    return true;
  }

  void expire(UploadHandle h) {
    auto it = uploads.find(h);
    if (it == uploads.end()) return;
    const Upload& u = it->second;
    const bool window = waiting(h);
    if (u.admitted == 0 && window) {
      finish(h, make_error(Errc::timeout, "the upload window (" +
                                              std::to_string(settings.max_blobs_in_flight) +
                                              " blobs) stayed full"));
      return;
    }
    const std::string what = u.what;
    const uint32_t want = u.request.min_replicas;
    auto [left, local_error] = detach(h);
    std::string msg = "uploading " + what + ": " + std::to_string(left) +
                      " blob(s) did not reach " + std::to_string(want) +
                      " confirmed replica(s) in time; they stay pending and keep replicating";
    if (window) {
      msg += "; the upload window (" + std::to_string(settings.max_blobs_in_flight) +
             " blobs) stayed full";
    }
    if (local_error)
      msg += "; this node could not store its own replica: " + local_error->to_string();
    finish(h, make_error(Errc::timeout, msg));
  }

  // ---- phases ----

  UploadPhase phase(UploadHandle h, const Upload& u) const {
    UploadPhase p;
    p.blobs = u.admitted;
    p.encoded = u.encoded;
    p.acknowledged = u.admitted - u.remaining;
    p.registered = p.acknowledged;
    p.need = u.need_acked;
    uint32_t fewest = u.min_confirmed;
    std::map<uint32_t, uint32_t> caps;  // shard -> replica_cap, asked once per shard
    for (const auto& [id, e] : entries) {
      const auto n = static_cast<uint64_t>(std::count(e.uploads.begin(), e.uploads.end(), h));
      if (n == 0) continue;
      fewest =
          std::min(fewest, static_cast<uint32_t>(std::min<size_t>(e.confirmed.size(), UINT32_MAX)));
      if (!e.reg) continue;
      p.registered += n;
      const ShardId shard = shard_of(e.reg->index);
      auto [cap, inserted] = caps.try_emplace(shard.value, 0);
      if (inserted) cap->second = replica_cap(shard);
      p.need = std::max(p.need, std::min(e.requested, cap->second));
    }
    p.confirmed = fewest == kNoConfirmation ? 0 : fewest;
    return p;
  }

  // Tells upload `h` its phase when it changed: at once when kPhaseInterval
  // passed since the last report (or `force`), else when it has (one timer,
  // armed strictly in the future, so it never re-fires at the same instant).
  void report_phase(UploadHandle h, bool force) {
    auto it = uploads.find(h);
    if (it == uploads.end() || !it->second.cb.phase) return;
    Upload& u = it->second;
    const auto now = clock.now();
    const bool first = !u.last_phase;
    if (!force && !first && now - u.last_phase_at < kPhaseInterval) {
      if (!u.phase_timer) u.phase_timer = clock.make_timer(executor);
      if (!u.phase_timer->armed()) {
        u.phase_timer->expires_after(u.last_phase_at + kPhaseInterval - now,
                                     [this, h] { report_phase(h, false); });
      }
      return;
    }
    const UploadPhase p = phase(h, u);
    if (u.last_phase == p) return;
    u.last_phase = p;
    u.last_phase_at = now;
    u.cb.phase(p);
  }

  void report_phases(const Entry& e) {
    for (UploadHandle h : e.uploads) report_phase(h, false);
  }

  // ---- the pipeline ----

  // Queues a store job on the pool, counted in store_jobs until it ran or
  // was cancelled; neither runs once the engine is gone.
  Status submit(std::function<void(Impl&)> run, std::function<void(Impl&)> cancel = {}) {
    store_jobs.fetch_add(1);
    auto weak = weak_from_this();
    auto st = pool.try_submit(
        [weak, run = std::move(run)] {
          if (auto im = weak.lock()) {
            run(*im);
            im->store_jobs.fetch_sub(1);
          }
        },
        [weak, cancel = std::move(cancel)] {
          if (auto im = weak.lock()) {
            if (cancel) cancel(*im);
            im->store_jobs.fetch_sub(1);
          }
        });
    if (!st) store_jobs.fetch_sub(1);
    return st;
  }

  void persist(const BlobId& id) {
    auto it = entries.find(id);
    if (it == entries.end()) return;
    auto blob = it->second.blob;
    const uint32_t size = it->second.size;
    auto st = submit(
        [id, blob, size](Impl& im) {
          PendingUpload pending;
          pending.payload.assign(blob->encoded.data.begin(), blob->encoded.data.begin() + size);
          pending.created_at_ms = pending_created_ms();
          auto put = im.store.put_pending(id, pending);
          im.later([id, put = std::move(put)](Impl& impl) { impl.persisted(id, put); });
        },
        [id](Impl& im) {
          im.later([id](Impl& impl) {
            impl.persisted(id, make_error(Errc::cancelled, "the worker pool is shutting down"));
          });
        });
    if (!st) {
      if (st.error().code == Errc::busy) {
        defer_persist(id);
      } else {
        persisted(id, st);
      }
    }
  }

  void defer_persist(const BlobId& id) {
    persist_deferred.push_back(id);
    if (!busy_timer) busy_timer = clock.make_timer(executor);
    if (busy_timer->armed()) return;
    busy_timer->expires_after(kBusyRetry, [this] {
      auto ids = std::move(persist_deferred);
      persist_deferred.clear();
      for (const auto& deferred : ids)
        persist(deferred);  // refused again: re-armed kBusyRetry later
    });
  }

  void persisted(const BlobId& id, const Status& st) {
    if (stopped) return;
    auto it = entries.find(id);
    if (it == entries.end()) return;
    if (!st) {
      if (st.error().code == Errc::cancelled) return;  // stopping: the blob stays with its uploads
      fail(id, with_context(st.error(), "persisting pending blob " + id.hex()));
      return;
    }
    register_blob(id, it->second.size);
  }

  void register_blob(const BlobId& id, uint32_t size) {
    chain.register_blob(id, size, [weak = weak_from_this(), id](Result<RegisteredBlob> reg) {
      auto impl = weak.lock();
      if (!impl) return;
      impl->later(
          [id, reg = std::move(reg)](Impl& im) mutable { im.registered(id, std::move(reg)); });
    });
  }

  void registered(const BlobId& id, Result<RegisteredBlob> reg) {
    if (stopped) return;
    auto it = entries.find(id);
    if (it == entries.end()) return;
    Entry& e = it->second;
    if (!reg) {
      if (reg.error().code == Errc::cancelled) return;  // stopping: stays pending
      fail(id, with_context(reg.error(), "registering blob " + id.hex()));
      return;
    }
    e.reg = *reg;
    e.last_progress = clock.now();
    for (UploadHandle h : e.uploads) {
      auto u = uploads.find(h);
      if (u != uploads.end() && u->second.first_id == id && !u->second.first)
        u->second.first = *reg;
    }
    const ShardId shard = shard_of(reg->index);
    const bool serve = chain.serves(shard) && !e.local_running;
    if (serve) e.local_running = true;
    const uint32_t size = e.size;
    const BlobIndex index = reg->index;
    gossip.announce(shard, id, index, size);
    if (serve) store_locally(id);
    report_phases(e);
    check_done(id);
  }

  void store_locally(const BlobId& id) {
    auto it = entries.find(id);
    if (it == entries.end() || !it->second.reg) return;
    const BlobIndex index = it->second.reg->index;
    auto blob = it->second.blob;
    auto st = submit(
        [id, index, blob](Impl& im) {
          // ingest_committed seals in place: give it a copy, the plain blob
          // keeps serving pulls.
          auto stored = ingest_committed(im.store, index, *blob, im.sealer.get());
          Status result = stored ? Status{} : Status(tl::unexpected(stored.error()));
          im.later([id, index, result = std::move(result)](Impl& impl) {
            impl.stored_locally(id, index, result);
          });
        },
        [id, index](Impl& im) {
          im.later([id, index](Impl& impl) {
            impl.stored_locally(id, index,
                                make_error(Errc::cancelled, "the worker pool is shutting down"));
          });
        });
    if (!st) {
      // Pool full or stopping: tick() retries.
      it->second.local_running = false;
      it->second.local_failed = true;
    }
  }

  void stored_locally(const BlobId& id, BlobIndex index, const Status& st) {
    if (stopped) return;
    auto it = entries.find(id);
    if (!st) {
      if (st.error().code != Errc::cancelled) {
        observer.local_store_failed(id, index, st.error());
        CAIRN_LOG(log::Level::warn, kUploadLog,
                  "storing own replica of blob " << id.hex() << " at index " << index.value << ": "
                                                 << st.error().to_string());
      }
      if (it == entries.end()) return;
      it->second.local_running = false;
      it->second.local_failed = true;
      if (st.error().code != Errc::cancelled) it->second.local_error = st.error();
      // Remote confirmations may have been waiting for this write.
      check_done(id);
      return;
    }
    observer.stored_locally(id, index);
    gossip.stored(shard_of(index), id, index);
    if (it == entries.end()) return;
    it->second.local_running = false;
    it->second.local_failed = false;
    it->second.local_error.reset();
    confirm(self, id);
  }

  void confirm(const NodeId& node, const BlobId& id) {
    if (stopped) return;
    auto it = entries.find(id);
    if (it == entries.end()) return;
    if (!it->second.confirmed.insert(node).second) return;
    it->second.last_progress = clock.now();
    if (!check_done(id)) report_phases(it->second);
  }

  // Acknowledges and drops `id` when it has enough confirmations; true when
  // it did.
  bool check_done(const BlobId& id) {
    auto it = entries.find(id);
    if (it == entries.end()) return false;
    Entry& e = it->second;
    if (!e.reg || e.local_running) return false;
    // The cap follows the registry as it refreshes (nodes joining the shard).
    const ShardId shard = shard_of(e.reg->index);
    e.want = std::min(e.requested, replica_cap(shard));
    if (e.confirmed.size() < e.want) return false;
    // Only this node and nodes the registry lists for the shard count: a
    // stored notice signed by any other key proves no replica anyone serves.
    const auto confirmed = static_cast<uint32_t>(
        std::count_if(e.confirmed.begin(), e.confirmed.end(),
                      [&](const NodeId& n) { return n == self || chain.listed(shard, n); }));
    if (confirmed < e.want) return false;
    const auto handles = std::move(e.uploads);
    for (UploadHandle h : handles) {
      auto u = uploads.find(h);
      if (u == uploads.end()) continue;
      Upload& up = u->second;
      up.min_confirmed = std::min(up.min_confirmed, confirmed);
      up.need_acked = std::max(up.need_acked, e.want);
      --up.remaining;
    }
    observer.acknowledged(id, clock.now() - e.created);
    drop(it);
    // The pending copy is no longer needed; failing to erase it only means
    // a harmless re-check at the next start.
    erase_pending(id);
    for (UploadHandle h : handles) {
      if (!complete_if_done(h)) report_phase(h, false);
    }
    admit_queued();
    return true;
  }

  void drop(std::unordered_map<BlobId, Entry>::iterator it) {
    {
      std::lock_guard lock(visible_mu);
      visible.erase(it->first);
    }
    entries.erase(it);
  }

  void erase_pending(const BlobId& id) {
    (void)submit([id](Impl& im) { (void)im.store.erase_pending(id); });
  }

  void fail(const BlobId& id, const Error& error) {
    auto it = entries.find(id);
    if (it == entries.end()) return;
    CAIRN_LOG(log::Level::warn, kUploadLog,
              "upload of blob " << id.hex() << " failed: " << error.to_string());
    observer.failed(id, error);
    const auto handles = std::move(it->second.uploads);
    drop(it);
    erase_pending(id);
    for (UploadHandle h : handles) finish(h, tl::unexpected(error));
    admit_queued();
  }

  // ---- maintenance ----

  void tick() {
    if (stopped) return;
    const auto now = clock.now();
    std::vector<BlobId> retry_local, check;
    size_t reannounced = 0;
    bool freed = false;
    for (auto it = entries.begin(); it != entries.end();) {
      Entry& e = it->second;
      if (e.reg && now - e.last_progress >= settings.reannounce_interval) {
        if (e.uploads.empty() && now - e.created >= settings.ack_timeout) {
          // Nobody waits and nothing moved for a whole ack timeout: free the
          // window. The payload stays in the pending store and resumes at
          // the next start.
          CAIRN_LOG(
              log::Level::warn, kUploadLog,
              "blob " << it->first.hex() << " has " << e.confirmed.size() << " of " << e.want
                      << " replicas after "
                      << std::chrono::duration_cast<std::chrono::seconds>(now - e.created).count()
                      << " s; keeping it pending on disk only");
          {
            std::lock_guard lock(visible_mu);
            visible.erase(it->first);
          }
          it = entries.erase(it);
          freed = true;
          continue;
        }
        e.last_progress = now;
        ++reannounced;
        gossip.announce(shard_of(e.reg->index), it->first, e.reg->index, e.size);
      }
      if (e.reg && e.local_failed && !e.local_running && chain.serves(shard_of(e.reg->index))) {
        e.local_failed = false;
        e.local_running = true;
        retry_local.push_back(it->first);
      }
      // The replica cap may have changed with the registry: re-check.
      if (e.reg) check.push_back(it->first);
      ++it;
    }
    if (reannounced > 0) observer.reannounced(reannounced);
    for (const auto& id : retry_local) store_locally(id);
    for (const auto& id : check) check_done(id);
    if (freed) admit_queued();
  }

  void stop() {
    if (stopped) return;
    // Callbacks first see every upload failed, then nothing more.
    std::vector<UploadHandle> handles;
    for (const auto& [h, u] : uploads) handles.push_back(h);
    for (UploadHandle h : handles) {
      auto it = uploads.find(h);
      if (it == uploads.end()) continue;
      auto [left, err] = detach(h);
      (void)err;
      finish(h,
             make_error(Errc::cancelled, "uploading " + it->second.what +
                                             ": the node is stopping; " + std::to_string(left) +
                                             " blob(s) stay pending and resume at the next start"));
    }
    stopped = true;
    for (auto& q : queued) q.admitted(make_error(Errc::cancelled, "the node is stopping"));
    queued.clear();
    if (busy_timer) busy_timer->cancel();
  }
};

UploadEngine::UploadEngine(UploadChain& chain, UploadGossip& gossip, UploadObserver& observer,
                           Store& store, WorkerPool& pool,
                           std::shared_ptr<const erasure::Codec> codec,
                           std::shared_ptr<const ReplicaTransform> sealer, Clock& clock,
                           const asio::any_io_executor& executor, Post post, NodeId self,
                           const UploadSettings& settings)
    : impl_(std::make_shared<Impl>(chain, gossip, observer, store, pool, std::move(codec),
                                   std::move(sealer), clock, executor, std::move(post), self,
                                   settings)) {}

UploadEngine::~UploadEngine() = default;

UploadHandle UploadEngine::begin(UploadRequest request, UploadCallbacks callbacks) {
  const UploadHandle h = impl_->next_handle.fetch_add(1);
  impl_->later([h, request, cb = std::move(callbacks)](Impl& im) mutable {
    im.begin(h, request, std::move(cb));
  });
  return h;
}

void UploadEngine::add(UploadHandle handle, std::shared_ptr<erasure::CommittedBlob> blob,
                       std::function<void(Status)> admitted) {
  impl_->later([handle, blob = std::move(blob), admitted = std::move(admitted)](Impl& im) mutable {
    im.add(handle, std::move(blob), std::move(admitted));
  });
}

void UploadEngine::seal(UploadHandle handle, std::string what) {
  impl_->later(
      [handle, what = std::move(what)](Impl& im) mutable { im.seal(handle, std::move(what)); });
}

void UploadEngine::abandon(UploadHandle handle) {
  impl_->later([handle](Impl& im) { im.abandon(handle); });
}

void UploadEngine::confirmed(const NodeId& node, const BlobId& id) {
  impl_->later([node, id](Impl& im) { im.confirm(node, id); });
}

void UploadEngine::tick() { impl_->tick(); }

void UploadEngine::stop() { impl_->stop(); }

std::shared_ptr<const erasure::CommittedBlob> UploadEngine::find(const BlobId& id) const {
  std::lock_guard lock(impl_->visible_mu);
  auto it = impl_->visible.find(id);
  return it == impl_->visible.end() ? nullptr : it->second;
}

size_t UploadEngine::store_jobs() const { return impl_->store_jobs.load(); }

size_t UploadEngine::in_flight() const {
  std::lock_guard lock(impl_->visible_mu);
  return impl_->visible.size();
}

Result<size_t> UploadEngine::resume() {
  auto& im = *impl_;
  auto ids = im.store.list_pending(std::numeric_limits<size_t>::max());
  if (!ids) return tl::unexpected(with_context(ids.error(), "listing pending uploads"));
  size_t resumed = 0;
  for (const BlobId& id : *ids) {
    auto pending = im.store.get_pending(id);
    if (!pending) {
      CAIRN_LOG(
          log::Level::warn, kUploadLog,
          "pending upload " << id.hex() << " unreadable, dropped: " << pending.error().to_string());
      (void)im.store.erase_pending(id);
      continue;
    }
    auto blob = std::make_shared<erasure::CommittedBlob>();
    auto st = erasure::encode_and_commit_into(*im.codec, pending->payload, *blob);
    if (!st || blob->commitment.id != id) {
      CAIRN_LOG(log::Level::error, kUploadLog,
                "pending upload " << id.hex() << " does not encode to its id; dropped");
      (void)im.store.erase_pending(id);
      continue;
    }
    im.later([id, blob = std::move(blob)](Impl& impl) mutable {
      if (impl.stopped || impl.entries.count(id) > 0) return;
      Impl::Entry& e = impl.entries[id];
      e.requested = impl.settings.min_replicas;
      impl.start(id, e, std::move(blob), /*persisted=*/true);
    });
    ++resumed;
  }
  if (resumed > 0)
    CAIRN_LOG(log::Level::info, kUploadLog, "resumed " << resumed << " pending upload blob(s)");
  return resumed;
}

}  // namespace cairn::shards
